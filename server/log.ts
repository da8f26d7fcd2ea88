// Access log: one line per request with what an operator needs (method, route, status, sizes,
// duration) and nothing a request carries. The route is the matched route template of the
// public surface; any other path is logged as "-" so a path chosen by the client never
// reaches the log. Bodies, prompts, completions, keys and nonces have no field here at all.
import process from 'node:process';

export interface RequestLogRecord {
  method: string;
  /** One of the public routes, or null when none matched. */
  route: string | null;
  status: number;
  bytesIn: number;
  bytesOut: number;
  durationMs: number;
  /** Set when the client went away or the server cancelled before the response ended. */
  aborted?: boolean;
}

export interface Logger {
  request(rec: RequestLogRecord): void;
  /** Operational messages (start, stop). Callers pass fixed text, never request content. */
  info(message: string): void;
}

const KNOWN_METHODS = new Set(['GET', 'HEAD', 'POST', 'PUT', 'PATCH', 'DELETE', 'OPTIONS', 'CONNECT', 'TRACE']);

/** Pure: the log line for one request. */
export function formatRequestLog(rec: RequestLogRecord, at: Date = new Date()): string {
  // "-": no request line was received (Node answered the connection itself, e.g. a 408).
  const method = rec.method === '-' || KNOWN_METHODS.has(rec.method) ? rec.method : 'OTHER';
  const parts = [
    at.toISOString(),
    method,
    rec.route ?? '-',
    String(Math.trunc(rec.status)),
    `in=${Math.max(0, Math.trunc(rec.bytesIn))}`,
    `out=${Math.max(0, Math.trunc(rec.bytesOut))}`,
    `ms=${Math.max(0, rec.durationMs).toFixed(1)}`,
  ];
  if (rec.aborted) parts.push('aborted');
  return parts.join(' ');
}

/**
 * Pure: the same record as one JSON object per line (for log collectors), with exactly the
 * fields of the text line and nothing more.
 */
export function formatRequestLogJson(rec: RequestLogRecord, at: Date = new Date()): string {
  return JSON.stringify({
    time: at.toISOString(),
    method: KNOWN_METHODS.has(rec.method) ? rec.method : 'OTHER',
    route: rec.route ?? '-',
    status: Math.trunc(rec.status),
    bytes_in: Math.max(0, Math.trunc(rec.bytesIn)),
    bytes_out: Math.max(0, Math.trunc(rec.bytesOut)),
    ms: Number(Math.max(0, rec.durationMs).toFixed(1)),
    ...(rec.aborted && { aborted: true }),
  });
}

export type LogFormat = 'text' | 'json';

export function createLogger(sink: (line: string) => void = (line) => process.stderr.write(line + '\n'), format: LogFormat = 'text'): Logger {
  if (format === 'json') {
    return {
      request: (rec) => sink(formatRequestLogJson(rec)),
      info: (message) => sink(JSON.stringify({ time: new Date().toISOString(), msg: message })),
    };
  }
  return {
    request: (rec) => sink(formatRequestLog(rec)),
    info: (message) => sink(`${new Date().toISOString()} ${message}`),
  };
}

/** A logger that drops everything (tests that do not look at the log). */
export const silentLogger: Logger = { request: () => {}, info: () => {} };

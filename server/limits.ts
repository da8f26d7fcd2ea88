// Every limit and timeout of the server in one validated object. Defaults are for a single
// small model on a few cores; `sealed serve` maps flags and environment variables onto it.
import { z } from 'zod';
import { ServerError } from './errors.js';

const int = (min: number, max: number) => z.number().int().min(min).max(max);

export const limitsSchema = z.strictObject({
  /** Largest request body accepted on the outer route and by the inner app (bytes). */
  maxBodyBytes: int(1024, 64 * 1024 * 1024),
  /** Largest `max_tokens` a request may ask for. */
  maxTokensCeiling: int(1, 1 << 20),
  /** Generations running in the engine at once. */
  maxConcurrentGenerations: int(1, 1024),
  /** Generations waiting for a slot; beyond this the request is refused as overloaded. */
  maxQueue: int(0, 65536),
  /** Longest a generation may wait in the queue (ms). */
  queueTimeoutMs: int(1, 3_600_000),
  /** Longest one generation may run (ms); it is cancelled then. */
  generationTimeoutMs: int(1, 24 * 3_600_000),
  /** Time allowed to receive a whole request, headers and body (ms). */
  requestTimeoutMs: int(100, 3_600_000),
  /** Time allowed to receive the request headers (ms). */
  headersTimeoutMs: int(100, 3_600_000),
  /** Live attested sessions (memory: each holds a key pair, its replay entries, and its evidence until used). */
  maxSessions: int(1, 10_000_000),
  /** Lifetime of a session and its key (seconds). */
  sessionLifetimeSeconds: int(1, 7 * 24 * 3600),
  /** A session that has carried no authenticated request this long after its creation ends (seconds). */
  sessionUnusedTimeoutSeconds: int(1, 7 * 24 * 3600),
  /** Attestations per client address: sustained per second, and the burst above it. */
  attestationRate: z.number().positive().max(1_000_000),
  attestationBurst: int(1, 1_000_000),
  /** Attestations per second from every address together. */
  attestationRateTotal: z.number().positive().max(1_000_000),
  /** Generations one session may have running or waiting at once. */
  maxConcurrentPerSession: int(1, 1024),
  /** Open connections at once; more are closed as they arrive. */
  maxConnections: int(1, 1_000_000),
  /** Request bytes buffered across all connections at once; beyond it requests get 503 before more is read. */
  maxBufferedBytes: int(64 * 1024, 16 * 1024 * 1024 * 1024),
  /** Encapsulated requests one session accepts (bounds its replay entries). */
  maxRequestsPerSession: int(1, 1_000_000),
  /** Grace period for running requests on shutdown before they are cancelled (ms). */
  shutdownGraceMs: int(0, 3_600_000),
  /** Pad each event of a streamed (chunked OHTTP) response to a size bucket, hiding token lengths. */
  streamPadding: z.boolean(),
});

export type Limits = z.infer<typeof limitsSchema>;

export const DEFAULT_LIMITS: Readonly<Limits> = Object.freeze({
  maxBodyBytes: 1024 * 1024,
  maxTokensCeiling: 1024,
  maxConcurrentGenerations: 16,
  maxQueue: 64,
  queueTimeoutMs: 30_000,
  generationTimeoutMs: 300_000,
  requestTimeoutMs: 30_000,
  headersTimeoutMs: 10_000,
  maxSessions: 20_000,
  sessionLifetimeSeconds: 600,
  sessionUnusedTimeoutSeconds: 60,
  attestationRate: 2,
  attestationBurst: 10,
  attestationRateTotal: 100,
  maxConcurrentPerSession: 4,
  maxConnections: 2048,
  maxBufferedBytes: 64 * 1024 * 1024,
  maxRequestsPerSession: 1024,
  shutdownGraceMs: 10_000,
  streamPadding: true,
});

/** Bytes allowed per token of context in bodyBytesForContext. */
export const BODY_BYTES_PER_TOKEN = 32;
/** Fixed room in bodyBytesForContext (bytes). */
export const BODY_BYTES_FIXED = 64 * 1024;

/**
 * The default `maxBodyBytes` for a model whose context holds `contextLength` tokens:
 * contextLength x 32 bytes (a token's text, JSON-escaped, with its share of the message
 * structure) + 64 KiB (the JSON around the prompt, the Binary HTTP and OHTTP framing), within
 * the schema's bounds. A larger body could not fit the context anyway, and every byte allowed
 * is a byte a slow client can make the server hold.
 */
export function bodyBytesForContext(contextLength: number): number {
  const n = Math.max(0, Math.floor(contextLength)) * BODY_BYTES_PER_TOKEN + BODY_BYTES_FIXED;
  return Math.min(64 * 1024 * 1024, Math.max(1024, n));
}

/** Defaults overridden by `overrides`; throws ServerError('bad_config') naming the first bad key. */
export function resolveLimits(overrides: Partial<Limits> = {}): Limits {
  const merged = { ...DEFAULT_LIMITS, ...stripUndefined(overrides) };
  const parsed = limitsSchema.safeParse(merged);
  if (!parsed.success) {
    const issue = parsed.error.issues[0];
    const key = issue?.path.join('.') || 'limits';
    throw new ServerError('bad_config', `invalid limit ${key}: ${issue?.message ?? 'invalid'}`);
  }
  if (parsed.data.headersTimeoutMs > parsed.data.requestTimeoutMs) {
    throw new ServerError('bad_config', 'invalid limit headersTimeoutMs: must not exceed requestTimeoutMs');
  }
  // A body the buffer budget can never hold would be refused with 503 forever: say so at start.
  if (parsed.data.maxBodyBytes > parsed.data.maxBufferedBytes) {
    throw new ServerError('bad_config', 'invalid limit maxBodyBytes: must not exceed maxBufferedBytes');
  }
  return parsed.data;
}

function stripUndefined<T extends object>(o: T): Partial<T> {
  const out: Partial<T> = {};
  for (const [k, v] of Object.entries(o)) if (v !== undefined) (out as Record<string, unknown>)[k] = v;
  return out;
}

// Starting and stopping the public server. Stopping is graceful: refuse new work (503 with
// Retry-After, /readyz 503) while the listener stays open, let running requests finish and their
// responses be written within the grace period, cancel the rest, and only then close the
// listener and every connection and destroy every session key. The engine and evidence
// provider belong to the caller.
import * as nodeCrypto from 'node:crypto';
import type { Server } from 'node:http';
import type { AddressInfo, Socket } from 'node:net';
import { createAdaptorServer } from '@hono/node-server';
import type { EvidenceProvider } from '../enclave/providers/types.js';
import { useNodeCrypto } from '../transport/node-backend.js';
import { createApp, createRuntime, type ServerRuntime } from './app.js';
import type { InferenceEngine } from './engine.js';
import type { Limits } from './limits.js';
import type { ProxyTrust } from './client-address.js';
import { markAnswered } from './answered.js';
import { capConnections, type ConnectionCap } from './connections.js';
import { silentLogger, type Logger } from './log.js';
import { problemStatus, rawProblemResponse, type ProblemKind } from './problem.js';

export interface StartOptions {
  engine: InferenceEngine;
  provider: EvidenceProvider;
  limits: Limits;
  host: string;
  /** 0 picks a free port. */
  port: number;
  logger?: Logger;
  /** Set when the server sits behind proxies whose client-address header is to be believed. */
  proxyTrust?: ProxyTrust;
}

export interface RunningServer {
  readonly url: string;
  readonly host: string;
  readonly port: number;
  readonly runtime: ServerRuntime;
  readonly connections: ConnectionCap;
  /** Graceful stop; resolves once connections are closed and keys are wiped. Idempotent. */
  close(): Promise<void>;
}

/** After cancelling, how long to wait for cancelled requests to unwind before cutting connections. */
const CANCEL_SETTLE_MS = 2000;

/** A quarter of the shorter timeout (so each fires at most 25% late), between 50 ms and 1 s. */
export function connectionsCheckingInterval(limits: Pick<Limits, 'headersTimeoutMs' | 'requestTimeoutMs'>): number {
  const shorter = Math.min(limits.headersTimeoutMs, limits.requestTimeoutMs);
  return Math.max(50, Math.min(1000, Math.floor(shorter / 4)));
}

export async function startServer(opts: StartOptions): Promise<RunningServer> {
  // The gateway does one X25519 and many AEAD operations per request: use OpenSSL for both.
  useNodeCrypto(nodeCrypto);
  const logger = opts.logger ?? silentLogger;
  const runtime = createRuntime(opts.limits);
  const app = createApp({
    engine: opts.engine, provider: opts.provider, limits: opts.limits, logger, runtime,
    ...(opts.proxyTrust && { proxyTrust: opts.proxyTrust }),
  });
  const server = createAdaptorServer({
    fetch: app.fetch,
    serverOptions: {
      requestTimeout: opts.limits.requestTimeoutMs,
      headersTimeout: opts.limits.headersTimeoutMs,
      // Node checks both timeouts only this often (30 s by default), so a slow client would
      // otherwise hold its socket up to 30 s past them; check often enough to honour them.
      connectionsCheckingInterval: connectionsCheckingInterval(opts.limits),
      keepAliveTimeout: 5000,
    },
  }) as Server;

  server.on('clientError', (err: NodeJS.ErrnoException, socket: Socket) => answerClientError(err, socket, logger));
  const connections = capConnections(server, opts.limits.maxConnections);
  // While draining, every response closes its connection, so clients reconnect (elsewhere).
  server.prependListener('request', (_req, res) => {
    if (runtime.tracker.draining) res.setHeader('connection', 'close');
  });

  await new Promise<void>((resolve, reject) => {
    const onError = (e: Error) => reject(e);
    server.once('error', onError);
    server.listen(opts.port, opts.host, () => {
      server.off('error', onError);
      resolve();
    });
  });
  const addr = server.address() as AddressInfo;
  const hostForUrl = addr.family === 'IPv6' ? `[${addr.address}]` : addr.address;

  let closing: Promise<void> | undefined;
  const close = () => {
    closing ??= (async () => {
      runtime.tracker.drain();
      // The listener and every connection stay open meanwhile: a new client gets a 503 with
      // Retry-After, not a refused connection, and each response now closes its connection.
      // Idle keep-alive connections are not cut early either: a client may be sending on one
      // right now, and would get a reset instead of its 503.
      if (!(await runtime.tracker.waitIdle(opts.limits.shutdownGraceMs))) {
        runtime.tracker.abortAll();
        await runtime.tracker.waitIdle(CANCEL_SETTLE_MS);
      }
      const closed = new Promise<void>((resolve) => server.close(() => resolve()));
      server.closeAllConnections();
      runtime.sessions.close();
      await closed;
    })();
    return closing;
  };

  return { url: `http://${hostForUrl}:${addr.port}`, host: addr.address, port: addr.port, runtime, connections, close };
}

/** Node's parser error codes with their own status; any other parse error is 400. */
const CLIENT_ERRORS: Record<string, ProblemKind> = {
  ERR_HTTP_REQUEST_TIMEOUT: 'request_timeout',
  HPE_HEADER_OVERFLOW: 'headers_too_large',
  HPE_CHUNK_EXTENSIONS_OVERFLOW: 'too_large',
};

/**
 * Answers what Node's HTTP layer refuses (unparseable requests, header or request timeouts) with
 * a problem document like every other outer error, instead of Node's bare status line. Nothing
 * from the request (`err.rawPacket`) is read or echoed. As Node does, no answer is written once a
 * response on this connection has started, nor to a socket that can no longer be written.
 *
 * The log gets the status the client got: when a request is in the app (its body was arriving),
 * the app's line carries it (markAnswered); otherwise (headers never completed) a line is
 * written here, with no method or route, since none was received.
 */
function answerClientError(err: NodeJS.ErrnoException, socket: Socket, logger: Logger): void {
  const current = (socket as Socket & { _httpMessage?: { headersSent?: boolean } })._httpMessage;
  if (err.code === 'ECONNRESET' || !socket.writable || current?.headersSent) {
    socket.destroy();
    return;
  }
  const kind = CLIENT_ERRORS[err.code ?? ''] ?? 'bad_request';
  const answer = rawProblemResponse(kind);
  const written = { status: problemStatus(kind), bytesOut: Buffer.byteLength(answer) };
  if (current) markAnswered(current, written);
  else logger.request({ method: '-', route: null, ...written, bytesIn: 0, durationMs: 0 });
  socket.end(answer, () => socket.destroy());
}

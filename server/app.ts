// The public HTTP surface of contract version 2, exactly: GET /v1/sessions/{sid}/attestation,
// POST /v1/sessions/{sid}/ohttp, GET /healthz, GET /readyz (plus CORS preflights for them). Every
// other method and path is a 404 problem document. Nothing here reads or logs what is inside the
// encryption, and the session id never reaches the log.
import { Hono, type Context } from 'hono';
import { cors } from 'hono/cors';
import { isSessionId } from '../enclave/binding.js';
import { buildEvidence } from '../enclave/evidence.js';
import { hexToBytes } from '../transport/bytes.js';
import type { EvidenceProvider } from '../enclave/providers/types.js';
import { nodeAnswer } from './answered.js';
import { declaredLength } from './body.js';
import { ByteBudget, meterBody } from './budget.js';
import { requestAddressKey, type ProxyTrust } from './client-address.js';
import type { InferenceEngine } from './engine.js';
import { isServerError } from './errors.js';
import { handleChunked, handlePlain, MEDIA, type GatewayDeps } from './gateway.js';
import { createInnerApp } from './inner/app.js';
import { GenerationLimiter } from './limiter.js';
import type { Limits } from './limits.js';
import { silentLogger, type Logger, type RequestLogRecord } from './log.js';
import { ohttp, type OhttpKeyConfig } from './ohttp.js';
import { PROBLEM_HEADERS, problemJson, problemStatus, type ProblemKind } from './problem.js';
import { AttestationRateLimiter } from './rate.js';
import { SessionStore } from './sessions.js';
import { RequestTracker, whenResponseCloses, type NodeResponse } from './tracker.js';
import { bodyFromIncoming, isIncomingBody } from './node-body.js';

/** The mutable state one server owns: sessions (keys), attestation limits, requests in flight. */
export interface ServerRuntime {
  sessions: SessionStore<OhttpKeyConfig>;
  attestationRate: AttestationRateLimiter;
  tracker: RequestTracker;
  /** Request body bytes held across all connections (maxBufferedBytes). */
  budget: ByteBudget;
  /** Admission for generations (running and queued), shared with the inner app so both can be counted. */
  generations: GenerationLimiter;
  /** False until the server accepts requests; /readyz answers 503 meanwhile and while draining. */
  ready: boolean;
}

export function createRuntime(limits: Limits, opts: { now?: () => number; sweepIntervalMs?: number } = {}): ServerRuntime {
  const sessions = new SessionStore<OhttpKeyConfig>({
    generateKey: ohttp.generateKey,
    maxSessions: limits.maxSessions,
    lifetimeMs: limits.sessionLifetimeSeconds * 1000,
    unusedTimeoutMs: limits.sessionUnusedTimeoutSeconds * 1000,
    maxRequestsPerSession: limits.maxRequestsPerSession,
    ...(opts.now && { now: opts.now }),
    ...(opts.sweepIntervalMs !== undefined && { sweepIntervalMs: opts.sweepIntervalMs }),
  });
  const attestationRate = new AttestationRateLimiter({
    perAddressRate: limits.attestationRate,
    perAddressBurst: limits.attestationBurst,
    totalRate: limits.attestationRateTotal,
    ...(opts.now && { now: opts.now }),
  });
  const generations = new GenerationLimiter({
    concurrency: limits.maxConcurrentGenerations,
    maxQueue: limits.maxQueue,
    queueTimeoutMs: limits.queueTimeoutMs,
    maxPerSession: limits.maxConcurrentPerSession,
  });
  return { sessions, attestationRate, tracker: new RequestTracker(), budget: new ByteBudget(limits.maxBufferedBytes), generations, ready: true };
}

export interface AppDeps {
  engine: InferenceEngine;
  provider: EvidenceProvider;
  limits: Limits;
  logger?: Logger;
  /** Made from `limits` when absent; pass one to control it from outside (lifecycle, tests). */
  runtime?: ServerRuntime;
  /** Set when the server sits behind a proxy whose client-address header is to be believed. */
  proxyTrust?: ProxyTrust;
}

/**
 * What @hono/node-server passes as the environment: the Node request (for the peer address) and
 * response (to learn when a response has really been written). Absent when the app is called
 * directly (tests).
 */
type Bindings = { incoming?: { socket?: { remoteAddress?: string } }; outgoing?: NodeResponse };
type Env = { Bindings: Bindings; Variables: { rec: RequestLogRecord; deferLog: boolean; start: number; sid: string } };

const PLAIN_ROUTES = new Set(['/healthz', '/readyz']);
/** The session routes; the log names the template, never the session. */
const SESSION_ROUTE = /^\/v1\/sessions\/([^/]*)\/(attestation|ohttp)$/;
const NONCE_RE = /^[0-9a-fA-F]{64}$/;
const JSON_HEADERS = { 'content-type': 'application/json', 'cache-control': 'no-store' } as const;
const enc = new TextEncoder();

export function createApp(deps: AppDeps): Hono<Env> {
  const { engine, provider, limits } = deps;
  const logger = deps.logger ?? silentLogger;
  const runtime = deps.runtime ?? createRuntime(limits);
  const { sessions, tracker } = runtime;
  const inner = createInnerApp({ engine, limits, limiter: runtime.generations });
  const gatewayDeps: GatewayDeps = {
    sessions,
    inner: { fetch: (req, env) => inner.fetch(req, env) },
    maxBodyBytes: limits.maxBodyBytes,
    streamPadding: limits.streamPadding,
  };
  // Encapsulated requests admitted at once (opened, being served): every generation slot and
  // queue place, no more. Requests still uploading are bounded by the request timeout instead.
  const maxInflight = limits.maxConcurrentGenerations + limits.maxQueue;
  const modelDigest = engine.model.digest;

  const app = new Hono<Env>();

  // Access log: one line per request, written when the response body is complete.
  app.use('*', async (c, next) => {
    const start = performance.now();
    const rec: RequestLogRecord = { method: c.req.method, route: null, status: 0, bytesIn: 0, bytesOut: 0, durationMs: 0 };
    c.set('rec', rec);
    c.set('deferLog', false);
    c.set('start', start);
    await next();
    rec.status = c.res.status;
    // Node may have answered instead of the app (a request timeout while the body arrived): log what the client got.
    const byNode = nodeAnswer(c.env?.outgoing);
    if (byNode) Object.assign(rec, byNode);
    // A streamed response logs itself when its body ends.
    if (c.get('deferLog')) return;
    rec.durationMs = performance.now() - start;
    logger.request(rec);
  });

  // Only the contract's routes exist: HEAD (which Hono would answer as GET) and any other path are 404.
  app.use('*', async (c, next) => {
    if (c.req.method === 'HEAD') return problem(c, 'not_found');
    const path = c.req.path;
    if (PLAIN_ROUTES.has(path)) {
      c.get('rec').route = path;
      return next();
    }
    const m = SESSION_ROUTE.exec(path);
    if (!m) return problem(c, 'not_found');
    c.get('rec').route = `/v1/sessions/{sid}/${m[2]}`;
    if (c.req.method !== 'OPTIONS' && !isSessionId(m[1])) return problem(c, 'bad_session');
    c.set('sid', m[1]!);
    await next();
  });

  app.use(
    '*',
    cors({ origin: '*', allowMethods: ['GET', 'POST', 'OPTIONS'], allowHeaders: ['content-type'], exposeHeaders: ['retry-after'], maxAge: 600 }),
  );

  app.get('/healthz', (c) => send(c, 200, JSON.stringify({ status: 'ok' }), JSON_HEADERS));

  app.get('/readyz', (c) => {
    if (!runtime.ready || tracker.draining || sessions.closed) return problem(c, tracker.draining ? 'shutting_down' : 'not_ready');
    return send(c, 200, JSON.stringify({ status: 'ready' }), JSON_HEADERS);
  });

  app.get('/v1/sessions/:sid/attestation', async (c) => {
    if (!runtime.ready) return problem(c, 'not_ready');
    if (tracker.draining) return problem(c, 'shutting_down');
    const nonces = c.req.queries('nonce');
    if (!nonces || nonces.length !== 1 || !NONCE_RE.test(nonces[0]!)) return problem(c, 'bad_nonce');
    const nonceHex = nonces[0]!.toLowerCase();
    const sid = c.get('sid');

    // A retried GET (its answer was lost on the way) is answered from the session it already made,
    // without spending the address's allowance again: it creates nothing.
    const retry = sessions.retryEvidence(sid, nonceHex);
    if (retry) {
      try {
        return send(c, 200, await retry, JSON_HEADERS);
      } catch {
        return problem(c, 'internal');
      }
    }

    const rate = runtime.attestationRate.check(requestAddressKey(c.env?.incoming?.socket?.remoteAddress, c.req.raw.headers, deps.proxyTrust));
    if (!rate.ok) return problem(c, rate.scope === 'address' ? 'attestation_rate' : 'attestation_rate_total', rate.retryAfterSeconds);

    let begun;
    try {
      begun = sessions.begin(sid, nonceHex);
    } catch (e) {
      if (isServerError(e, 'session_live')) return problem(c, 'session_live');
      if (isServerError(e, 'too_many_sessions')) {
        return problem(c, 'too_many_sessions', (e as { retryAfterSeconds?: number }).retryAfterSeconds ?? 1);
      }
      if (isServerError(e, 'closed')) return problem(c, 'shutting_down');
      return problem(c, 'internal');
    }
    const session = begun.session;
    const evidence = buildEvidence({
      provider,
      session: sid,
      keyConfig: session.encodedConfig,
      expiresAt: new Date(session.expiresAt),
      model: { id: engine.model.id, digest: modelDigest },
      nonce: hexToBytes(nonceHex),
    }).then((doc) => JSON.stringify(doc));
    // A retry of this same GET (same nonce) while the evidence is made waits for this one.
    begun.setEvidence(evidence);
    try {
      return send(c, 200, await evidence, JSON_HEADERS);
    } catch (e) {
      // A session whose evidence could not be made is useless to the client: destroy it now.
      sessions.destroy(sid);
      // The code is a fixed identifier (e.g. a provider failure), safe for the operator's log.
      const code = (e as { code?: unknown }).code;
      logger.info(`attestation failed: ${typeof code === 'string' && /^[a-z0-9_]{1,64}$/.test(code) ? code : 'internal'}`);
      return problem(c, 'internal');
    }
  });

  app.post('/v1/sessions/:sid/ohttp', async (c) => {
    if (tracker.draining) return problem(c, 'shutting_down');
    const type = mediaType(c.req.header('content-type'));
    if (type !== MEDIA.req && type !== MEDIA.chunkedReq) return problem(c, 'media_type');
    let declared: number | null;
    try {
      declared = declaredLength(c.req.raw.headers);
    } catch {
      return problem(c, 'bad_request');
    }
    if (declared !== null && declared > limits.maxBodyBytes) return problem(c, 'too_large');
    // Cheap early refusal when every place is already taken; the gateway admits for real.
    if (tracker.admitted >= maxInflight) return problem(c, 'overloaded');
    // Unknown, ended or expired: 422 before any body is read, so the client attests anew at once.
    const session = sessions.get(c.get('sid'));
    if (!session) return problem(c, 'unknown_key');

    const rec = c.get('rec');
    // Under Node, the body straight from the message (node-body.ts); elsewhere the Request's.
    const incoming = c.env?.incoming;
    const rawBody = isIncomingBody(incoming) ? bodyFromIncoming(incoming) : c.req.raw.body;
    const metered = meterBody(rawBody, declared, runtime.budget, (n) => (rec.bytesIn += n));
    if (!metered) return problem(c, 'buffer_full');
    const tracked = tracker.track(c.req.raw.signal);
    // Done means written: under Node, when its response closes (sent, or the connection cut),
    // so that a shutdown never closes a connection under a response still being written.
    const nodeRes = c.env?.outgoing;
    if (nodeRes) {
      whenResponseCloses(nodeRes, () => {
        metered.release();
        tracked.done();
      });
    }
    const settle = () => {
      metered.release();
      if (!nodeRes) tracked.done();
    };
    const body = metered.body;
    // Streamed: the request stays tracked, and its log line waits, until the body is done.
    const start = c.get('start');
    const greq = {
      signal: tracked.signal,
      admit: () => tracked.admit(maxInflight),
      onStreamBytes: (n: number) => (rec.bytesOut += n),
      onStreamEnd: (aborted: boolean) => {
        settle();
        rec.status = 200;
        rec.durationMs = performance.now() - start;
        if (aborted) rec.aborted = true;
        logger.request(rec);
      },
    };
    let result;
    try {
      result =
        type === MEDIA.req
          ? await handlePlain(gatewayDeps, session, body, greq)
          : await handleChunked(gatewayDeps, session, body, greq);
    } catch {
      settle();
      return problem(c, 'internal');
    }
    // The body has been read and opened: its bytes are no longer held.
    metered.release();
    if (!result.ok) {
      settle();
      return problem(c, metered.overBudget ? 'buffer_full' : result.problem);
    }
    const headers = { 'content-type': result.contentType, 'cache-control': 'no-store' };
    if (result.body instanceof Uint8Array) {
      settle();
      return send(c, 200, result.body, headers);
    }
    // The stream counts its bytes and writes the log line itself when it ends (greq above).
    c.set('deferLog', true);
    // Declared chunked so that @hono/node-server writes the head at once: without it, it first
    // tries to read the whole body for a Content-Length and, finding the first event not ready
    // (the model is still on the prompt), waits a timer tick before it gives up: a millisecond or
    // more added to every stream's first token.
    return new Response(result.body, { status: 200, headers: { ...headers, incremental: '?1', 'transfer-encoding': 'chunked' } });
  });

  app.notFound((c) => problem(c, 'not_found'));
  app.onError((_err, c) => problem(c, 'internal'));

  return app;

  function send(c: Context<Env>, status: number, body: string | Uint8Array, headers: Record<string, string>): Response {
    const bytes = typeof body === 'string' ? enc.encode(body) : body;
    c.get('rec').bytesOut = bytes.byteLength;
    return new Response(bytes as Uint8Array<ArrayBuffer>, { status, headers });
  }

  function problem(c: Context<Env>, kind: ProblemKind, retryAfterSeconds?: number): Response {
    const retry = retryAfterSeconds ?? RETRY_AFTER_DEFAULT[kind];
    const headers: Record<string, string> = { ...PROBLEM_HEADERS };
    if (retry !== undefined) headers['retry-after'] = String(Math.max(1, Math.ceil(retry)));
    return send(c, problemStatus(kind), problemJson(kind), headers);
  }
}

/** Retry-After for refusals whose wait the server cannot compute exactly (seconds). */
const RETRY_AFTER_DEFAULT: Partial<Record<ProblemKind, number>> = {
  overloaded: 1,
  buffer_full: 1,
  shutting_down: 5,
  not_ready: 5,
  session_request_limit: 1,
};

function mediaType(v: string | undefined): string {
  return (v ?? '').split(';')[0]!.trim().toLowerCase();
}

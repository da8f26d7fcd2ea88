// The public HTTP surface, exactly CONTRACT.md's: GET /v1/attestation, POST /v1/ohttp,
// GET /healthz (plus CORS preflights for them). Every other method and path is a 404 problem
// document. Nothing here reads or logs what is inside the encryption.
import { Hono, type Context } from 'hono';
import { cors } from 'hono/cors';
import { buildEvidence } from '../enclave/evidence.js';
import { hexToBytes } from '../transport/bytes.js';
import type { EvidenceProvider } from '../enclave/providers/types.js';
import { declaredLength } from './body.js';
import type { InferenceEngine } from './engine.js';
import { isServerError } from './errors.js';
import { handleChunked, handlePlain, MEDIA, type GatewayDeps } from './gateway.js';
import { createInnerApp } from './inner/app.js';
import type { Limits } from './limits.js';
import { silentLogger, type Logger, type RequestLogRecord } from './log.js';
import { ohttp, type OhttpKeyConfig } from './ohttp.js';
import { PROBLEM_HEADERS, problemJson, problemStatus, type ProblemKind } from './problem.js';
import { ReplayCache } from './replay.js';
import { SessionStore } from './sessions.js';
import { counter, watchStream } from './streams.js';
import { RequestTracker } from './tracker.js';

/** The mutable state one server owns: sessions (keys), replay cache, requests in flight. */
export interface ServerRuntime {
  sessions: SessionStore<OhttpKeyConfig>;
  replay: ReplayCache;
  tracker: RequestTracker;
}

export function createRuntime(limits: Limits, now?: () => number): ServerRuntime {
  const replay = new ReplayCache(limits.maxRequestsPerSession);
  const sessions = new SessionStore<OhttpKeyConfig>({
    generateKey: ohttp.generateKey,
    replay,
    maxSessions: limits.maxSessions,
    lifetimeMs: limits.keyLifetimeSeconds * 1000,
    sessionsPerSecond: limits.sessionsPerSecond,
    sessionBurst: limits.sessionBurst,
    ...(now && { now }),
  });
  return { sessions, replay, tracker: new RequestTracker() };
}

export interface AppDeps {
  engine: InferenceEngine;
  provider: EvidenceProvider;
  limits: Limits;
  logger?: Logger;
  /** Made from `limits` when absent; pass one to control it from outside (lifecycle, tests). */
  runtime?: ServerRuntime;
}

type Env = { Variables: { rec: RequestLogRecord; deferLog: boolean; start: number } };

const ROUTES = new Set(['/v1/attestation', '/v1/ohttp', '/healthz']);
const NONCE_RE = /^[0-9a-fA-F]{64}$/;
const JSON_HEADERS = { 'content-type': 'application/json', 'cache-control': 'no-store' } as const;
const enc = new TextEncoder();

export function createApp(deps: AppDeps): Hono<Env> {
  const { engine, provider, limits } = deps;
  const logger = deps.logger ?? silentLogger;
  const runtime = deps.runtime ?? createRuntime(limits);
  const { sessions, tracker } = runtime;
  const inner = createInnerApp({ engine, limits });
  const gatewayDeps: GatewayDeps = {
    sessions,
    replay: runtime.replay,
    inner: { fetch: (req) => inner.fetch(req) },
    maxBodyBytes: limits.maxBodyBytes,
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
    // A streamed response logs itself when its body ends.
    if (c.get('deferLog')) return;
    rec.durationMs = performance.now() - start;
    logger.request(rec);
  });

  // Only CONTRACT's routes exist: HEAD (which Hono would answer as GET) and any other path are 404.
  app.use('*', async (c, next) => {
    if (c.req.method === 'HEAD' || !ROUTES.has(c.req.path)) return problem(c, 'not_found');
    c.get('rec').route = c.req.path;
    await next();
  });

  app.use(
    '*',
    cors({ origin: '*', allowMethods: ['GET', 'POST', 'OPTIONS'], allowHeaders: ['content-type'], maxAge: 600 }),
  );

  app.get('/healthz', (c) => send(c, 200, JSON.stringify({ status: 'ok' }), JSON_HEADERS));

  app.get('/v1/attestation', async (c) => {
    if (tracker.draining) return problem(c, 'shutting_down');
    const nonces = c.req.queries('nonce');
    if (!nonces || nonces.length !== 1 || !NONCE_RE.test(nonces[0]!)) return problem(c, 'bad_nonce');
    const nonce = hexToBytes(nonces[0]!);
    let session;
    try {
      session = sessions.create();
    } catch (e) {
      if (isServerError(e, 'too_many_sessions')) return problem(c, 'too_many_sessions');
      if (isServerError(e, 'session_rate')) return problem(c, 'session_rate');
      if (isServerError(e, 'closed')) return problem(c, 'shutting_down');
      return problem(c, 'internal');
    }
    try {
      const evidence = await buildEvidence({
        provider,
        keyId: session.keyId,
        keyConfig: session.encodedConfig,
        expiresAt: new Date(session.expiresAt),
        model: { id: engine.model.id, digest: modelDigest },
        nonce,
      });
      return send(c, 200, JSON.stringify(evidence), JSON_HEADERS);
    } catch (e) {
      // A session whose evidence could not be made is useless to the client: destroy it now.
      sessions.destroy(session.keyId);
      // The code is a fixed identifier (e.g. a provider failure), safe for the operator's log.
      const code = (e as { code?: unknown }).code;
      logger.info(`attestation failed: ${typeof code === 'string' && /^[a-z0-9_]{1,64}$/.test(code) ? code : 'internal'}`);
      return problem(c, 'internal');
    }
  });

  app.post('/v1/ohttp', async (c) => {
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

    const rec = c.get('rec');
    const tracked = tracker.track(c.req.raw.signal);
    const body = c.req.raw.body?.pipeThrough(counter((n) => (rec.bytesIn += n))) ?? null;
    const greq = { signal: tracked.signal, admit: () => tracked.admit(maxInflight) };
    let result;
    try {
      result =
        type === MEDIA.req
          ? await handlePlain(gatewayDeps, body, greq)
          : await handleChunked(gatewayDeps, body, greq);
    } catch {
      tracked.done();
      return problem(c, 'internal');
    }
    if (!result.ok) {
      tracked.done();
      return problem(c, result.problem);
    }
    const headers = { 'content-type': result.contentType, 'cache-control': 'no-store' };
    if (result.body instanceof Uint8Array) {
      tracked.done();
      return send(c, 200, result.body, headers);
    }
    // Streamed: the request stays tracked, and its log line waits, until the body is done.
    c.set('deferLog', true);
    const start = c.get('start');
    const finish = (aborted: boolean) => {
      tracked.done();
      rec.status = 200;
      rec.durationMs = performance.now() - start;
      if (aborted) rec.aborted = true;
      logger.request(rec);
    };
    const counted = watchStream(result.body, (n) => (rec.bytesOut += n), finish);
    return new Response(counted, { status: 200, headers: { ...headers, incremental: '?1' } });
  });

  app.notFound((c) => problem(c, 'not_found'));
  app.onError((_err, c) => problem(c, 'internal'));

  return app;

  function send(c: Context<Env>, status: number, body: string | Uint8Array, headers: Record<string, string>): Response {
    const bytes = typeof body === 'string' ? enc.encode(body) : body;
    c.get('rec').bytesOut = bytes.byteLength;
    return new Response(bytes as Uint8Array<ArrayBuffer>, { status, headers });
  }

  function problem(c: Context<Env>, kind: ProblemKind): Response {
    return send(c, problemStatus(kind), problemJson(kind), { ...PROBLEM_HEADERS });
  }
}

function mediaType(v: string | undefined): string {
  return (v ?? '').split(';')[0]!.trim().toLowerCase();
}

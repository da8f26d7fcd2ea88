// Unit tests of the server's pure parts: replay cache, sessions (key ids, expiry, wipe, limits),
// token bucket, generation limiter, configuration, access log and problem documents.
import assert from 'node:assert/strict';
import { test } from 'node:test';
import { parseServeConfig } from '../server/config.js';
import { isServerError } from '../server/errors.js';
import { GenerationLimiter } from '../server/limiter.js';
import { DEFAULT_LIMITS, resolveLimits } from '../server/limits.js';
import { formatRequestLog } from '../server/log.js';
import { OHTTP_KEY_PROBLEM_TYPE, problemJson, problemStatus } from '../server/problem.js';
import { TokenBucket } from '../server/rate.js';
import { ReplayCache } from '../server/replay.js';
import { SessionStore } from '../server/sessions.js';
import { ohttp } from '../server/ohttp.js';

const enc = (n: number) => new Uint8Array(32).fill(n);

test('replay cache: fresh, replay, full, forget, unrecord', () => {
  const r = new ReplayCache(2);
  assert.equal(r.record(5, enc(1)), 'fresh');
  assert.equal(r.record(5, enc(1)), 'replay');
  assert.equal(r.has(5, enc(1)), true);
  // Same enc under another key id is a different request.
  assert.equal(r.record(6, enc(1)), 'fresh');
  assert.equal(r.record(5, enc(2)), 'fresh');
  // Full: refuses rather than forgetting (which would reopen old requests to replay).
  assert.equal(r.record(5, enc(3)), 'full');
  assert.equal(r.record(5, enc(1)), 'replay');
  r.unrecord(5, enc(2));
  assert.equal(r.record(5, enc(3)), 'fresh');
  assert.equal(r.size, 3);
  r.forget(5);
  assert.equal(r.holds(5), false);
  assert.equal(r.has(5, enc(1)), false);
  assert.equal(r.holds(6), true);
});

function store(opts: { max?: number; lifetimeMs?: number; rate?: number; burst?: number; now: () => number; replay?: ReplayCache }) {
  const replay = opts.replay ?? new ReplayCache(16);
  return {
    replay,
    sessions: new SessionStore({
      generateKey: ohttp.generateKey,
      replay,
      maxSessions: opts.max ?? 256,
      lifetimeMs: opts.lifetimeMs ?? 60_000,
      sessionsPerSecond: opts.rate ?? 1000,
      sessionBurst: opts.burst ?? 1000,
      now: opts.now,
    }),
  };
}

test('sessions: distinct key ids, real X25519 keys, expiry by the clock wipes the key', () => {
  let now = 1_000_000;
  const { sessions, replay } = store({ now: () => now, lifetimeMs: 1000 });
  const a = sessions.create();
  const b = sessions.create();
  assert.notEqual(a.keyId, b.keyId);
  assert.equal(a.config.keyId, a.keyId);
  assert.equal(a.encodedConfig[0], a.keyId);
  assert.equal(a.privateKey.length, 32);
  assert.equal(a.expiresAt, 1_001_000);
  assert.ok(a.privateKey.some((x) => x !== 0));
  replay.record(a.keyId, enc(9));
  now += 999;
  assert.equal(sessions.get(a.keyId), a);
  now += 1;
  assert.equal(sessions.get(a.keyId), undefined, 'expired at expiresAt');
  assert.ok(a.privateKey.every((x) => x === 0), 'private key wiped');
  assert.equal(replay.holds(a.keyId), false, 'replay entries dropped with the key');
  sessions.close();
  assert.ok(b.privateKey.every((x) => x === 0), 'close wipes every key');
  assert.throws(() => sessions.create(), (e) => isServerError(e, 'closed'));
});

test('sessions: live limit (429 kind) and the key id space is reused last-freed-last', () => {
  const now = 0;
  const { sessions } = store({ now: () => now, max: 3 });
  const ids = [sessions.create(), sessions.create(), sessions.create()].map((s) => s.keyId);
  assert.deepEqual(ids, [0, 1, 2]);
  assert.throws(() => sessions.create(), (e) => isServerError(e, 'too_many_sessions'));
  sessions.destroy(1);
  // A free id is reused only after all never-used ones: 3, not the just-freed 1.
  assert.equal(sessions.create().keyId, 3);
  sessions.close();
});

test('sessions: all 256 key ids, then an id comes back only after destruction', () => {
  const { sessions } = store({ now: () => 0, max: 256 });
  const seen = new Set<number>();
  for (let i = 0; i < 256; i++) seen.add(sessions.create().keyId);
  assert.equal(seen.size, 256);
  assert.throws(() => sessions.create(), (e) => isServerError(e, 'too_many_sessions'));
  sessions.destroy(77);
  assert.equal(sessions.create().keyId, 77);
  sessions.close();
  assert.throws(() => new SessionStore({ generateKey: ohttp.generateKey, replay: new ReplayCache(1), maxSessions: 257, lifetimeMs: 1, sessionsPerSecond: 1, sessionBurst: 1 }), (e) => isServerError(e, 'bad_config'));
});

test('sessions: rate of new sessions (token bucket) refills with time', () => {
  let now = 0;
  const { sessions } = store({ now: () => now, rate: 2, burst: 2 });
  sessions.create();
  sessions.create();
  assert.throws(() => sessions.create(), (e) => isServerError(e, 'session_rate'));
  now += 500; // one token at 2/s
  sessions.create();
  assert.throws(() => sessions.create(), (e) => isServerError(e, 'session_rate'));
  sessions.close();
});

test('token bucket: burst, refill, clock going backwards refills nothing', () => {
  let now = 10_000;
  const b = new TokenBucket(1, 3, () => now);
  assert.ok(b.tryTake() && b.tryTake() && b.tryTake());
  assert.equal(b.tryTake(), false);
  now -= 5000;
  assert.equal(b.tryTake(), false);
  now += 6000;
  assert.equal(b.tryTake(), true);
  assert.equal(b.tryTake(), false);
});

test('generation limiter: concurrency, FIFO queue, overload, queue timeout, abort', async () => {
  const l = new GenerationLimiter({ concurrency: 1, maxQueue: 2, queueTimeoutMs: 50 });
  const p1 = await l.acquire();
  const order: number[] = [];
  const w2 = l.acquire().then((p) => (order.push(2), p));
  const w3 = l.acquire().then((p) => (order.push(3), p));
  await assert.rejects(l.acquire(), (e) => isServerError(e, 'overloaded'));
  assert.equal(l.queued, 2);
  p1.release();
  p1.release(); // idempotent: must not free a second slot
  const p2 = await w2;
  assert.equal(l.active, 1);
  p2.release();
  const p3 = await w3;
  assert.deepEqual(order, [2, 3]);
  // Timeout while waiting.
  await assert.rejects(l.acquire(), (e) => isServerError(e, 'queue_timeout'));
  // Abort while waiting.
  const ac = new AbortController();
  const w = l.acquire(ac.signal);
  ac.abort(new Error('gone'));
  await assert.rejects(w, /gone/);
  assert.equal(l.queued, 0);
  p3.release();
  assert.equal(l.active, 0);
});

test('limits: defaults valid; bad values refused with the key named', () => {
  assert.deepEqual(resolveLimits({}), { ...DEFAULT_LIMITS });
  assert.throws(() => resolveLimits({ maxSessions: 257 }), (e) => isServerError(e, 'bad_config') && /maxSessions/.test(e.message));
  assert.throws(() => resolveLimits({ maxBodyBytes: 1.5 }), (e) => isServerError(e, 'bad_config'));
  assert.throws(() => resolveLimits({ headersTimeoutMs: 50_000, requestTimeoutMs: 40_000 }), (e) => isServerError(e, 'bad_config'));
});

test('serve config: defaults, env, flags win over env, errors name the flag', () => {
  const d = parseServeConfig([], {});
  assert.ok(d !== 'help');
  assert.equal(d.port, 8080);
  assert.equal(d.host, '127.0.0.1');
  assert.equal(d.modelDir, 'models/stories260K');
  assert.equal(d.platform, 'auto');
  assert.equal(d.threads, undefined);
  assert.equal(d.limits.keyLifetimeSeconds, 600);

  const e = parseServeConfig(['--port', '9000', '--key-lifetime', '30'], {
    PORT: '7000',
    HOST: '0.0.0.0',
    SEALED_PLATFORM: 'simulated',
    SEALED_THREADS: '2',
    SEALED_KEY_LIFETIME: '99',
    SEALED_MAX_SESSIONS: '10',
    SEALED_SESSION_RATE: '0.5',
  });
  assert.ok(e !== 'help');
  assert.equal(e.port, 9000);
  assert.equal(e.host, '0.0.0.0');
  assert.equal(e.platform, 'simulated');
  assert.equal(e.threads, 2);
  assert.equal(e.limits.keyLifetimeSeconds, 30);
  assert.equal(e.limits.maxSessions, 10);
  assert.equal(e.limits.sessionsPerSecond, 0.5);

  assert.equal(parseServeConfig(['--help'], {}), 'help');
  assert.throws(() => parseServeConfig(['--platform', 'sgx'], {}), (x) => isServerError(x, 'bad_config') && /--platform/.test(x.message));
  assert.throws(() => parseServeConfig([], { PORT: '70000' }), (x) => isServerError(x, 'bad_config') && /PORT/.test(x.message));
  assert.throws(() => parseServeConfig(['--max-sessions', '300'], {}), (x) => isServerError(x, 'bad_config') && /--max-sessions/.test(x.message));
  assert.throws(() => parseServeConfig(['--threads', '1e3'], {}), (x) => isServerError(x, 'bad_config'));
  assert.throws(() => parseServeConfig(['--bogus'], {}), (x) => isServerError(x, 'bad_config'));
  assert.throws(() => parseServeConfig(['positional'], {}), (x) => isServerError(x, 'bad_config'));
});

test('access log line: fields only, unknown routes and methods not echoed', () => {
  const at = new Date('2026-11-27T00:00:00Z');
  assert.equal(
    formatRequestLog({ method: 'POST', route: '/v1/ohttp', status: 200, bytesIn: 237, bytesOut: 482, durationMs: 12.345 }, at),
    '2026-11-27T00:00:00.000Z POST /v1/ohttp 200 in=237 out=482 ms=12.3',
  );
  assert.equal(
    formatRequestLog({ method: 'BREW', route: null, status: 404, bytesIn: 0, bytesOut: 55, durationMs: 0.04, aborted: true }, at),
    '2026-11-27T00:00:00.000Z OTHER - 404 in=0 out=55 ms=0.0 aborted',
  );
});

test('problem documents: CONTRACT statuses and the ohttp-key type', () => {
  const expect: Record<string, number> = {
    bad_request: 400, too_large: 413, media_type: 415, unknown_key: 422, replay: 409,
    too_many_sessions: 429, session_rate: 429, overloaded: 503, not_found: 404,
  };
  for (const [kind, status] of Object.entries(expect)) {
    assert.equal(problemStatus(kind as never), status);
    const doc = JSON.parse(problemJson(kind as never));
    assert.equal(doc.status, status);
    assert.equal(typeof doc.title, 'string');
  }
  assert.equal(JSON.parse(problemJson('unknown_key')).type, OHTTP_KEY_PROBLEM_TYPE);
  assert.equal(OHTTP_KEY_PROBLEM_TYPE, 'https://iana.org/assignments/http-problem-types#ohttp-key');
});

// Unit tests of the server's pure parts: replay guard, sessions (ids, key ids, expiry, unused
// timeout, eviction, wipe), attestation rate limits, client addresses, generation limiter, configuration, access log and problem documents.
import assert from 'node:assert/strict';
import { test } from 'node:test';
import { parseServeConfig } from '../server/config.js';
import { isServerError } from '../server/errors.js';
import { GenerationLimiter } from '../server/limiter.js';
import { DEFAULT_LIMITS, resolveLimits } from '../server/limits.js';
import { formatRequestLog } from '../server/log.js';
import { OHTTP_KEY_PROBLEM_TYPE, problemJson, problemStatus } from '../server/problem.js';
import { AttestationRateLimiter, RateBucket } from '../server/rate.js';
import { ReplayGuard } from '../server/replay.js';
import { clientAddressKey, requestAddressKey } from '../server/client-address.js';
import { SessionStore } from '../server/sessions.js';
import { ohttp } from '../server/ohttp.js';

const enc = (n: number) => new Uint8Array(32).fill(n);

test('replay guard: fresh, replay, full, provisional, unrecord, clear', () => {
  const r = new ReplayGuard(2);
  assert.equal(r.record(enc(1)), 'fresh');
  assert.equal(r.record(enc(1)), 'replay');
  assert.equal(r.has(enc(1)), true);
  assert.equal(r.record(enc(2)), 'fresh');
  // Full: refuses rather than forgetting (which would reopen old requests to replay).
  assert.equal(r.record(enc(3)), 'full');
  assert.equal(r.record(enc(1)), 'replay');
  // Provisional records (unauthenticated headers) never count against the bound until confirmed.
  assert.equal(r.record(enc(4), { provisional: true }), 'fresh');
  assert.equal(r.record(enc(4)), 'replay', 'a concurrent copy of a provisional request is a replay');
  assert.equal(r.confirm(enc(4)), 'full');
  r.unrecord(enc(2));
  assert.equal(r.confirm(enc(4)), 'fresh');
  assert.equal(r.confirmed, 2);
  assert.equal(r.size, 2);
  r.clear();
  assert.equal(r.has(enc(1)), false);
  assert.equal(r.size, 0);
});

const SID = (n: number) => Buffer.from(new Uint8Array(16).fill(n)).toString('base64url');
const NONCE = 'ab'.repeat(32);

function store(opts: { max?: number; lifetimeMs?: number; unusedMs?: number; now: () => number; maxRequests?: number; bytes?: number[] }) {
  const bytes = opts.bytes ?? [];
  return new SessionStore({
    generateKey: ohttp.generateKey,
    maxSessions: opts.max ?? 100,
    lifetimeMs: opts.lifetimeMs ?? 60_000,
    unusedTimeoutMs: opts.unusedMs ?? 10_000,
    maxRequestsPerSession: opts.maxRequests ?? 16,
    now: opts.now,
    sweepIntervalMs: 0,
    ...(bytes.length > 0 && { randomByte: () => bytes.shift()! }),
  });
}

function begin<C>(s: SessionStore<C>, sid: string, nonce = NONCE) {
  return s.begin(sid, nonce).session;
}

test('sessions: named by the client, real X25519 keys under a random key id, expiry (whole seconds) wipes the key', () => {
  let now = 1_000_500;
  const sessions = store({ now: () => now, lifetimeMs: 2000, bytes: [200, 7] });
  const a = begin(sessions, SID(1));
  const b = begin(sessions, SID(2));
  assert.equal(a.id, SID(1));
  assert.equal(a.keyId, 200, 'the key id is the random byte drawn, not a counter');
  assert.equal(b.keyId, 7);
  assert.equal(a.config.keyId, a.keyId);
  assert.equal(a.encodedConfig[0], a.keyId);
  assert.equal(a.privateKey.length, 32);
  assert.ok(a.privateKey.some((x) => x !== 0));
  // 1_000_500 + 2000, rounded down to a whole second: the evidence signs seconds and the key must be gone by then.
  assert.equal(a.expiresAt, 1_002_000);
  sessions.markUsed(a);
  a.replay.record(enc(9));
  now = 1_001_999;
  assert.equal(sessions.get(SID(1)), a);
  now = 1_002_000;
  assert.equal(sessions.get(SID(1)), undefined, 'expired at expiresAt');
  assert.ok(a.privateKey.every((x) => x === 0), 'private key wiped');
  assert.equal(a.replay.size, 0, 'replay entries dropped with the key');
  sessions.close();
  assert.ok(b.privateKey.every((x) => x === 0), 'close wipes every key');
  assert.throws(() => sessions.begin(SID(3), NONCE), (e) => isServerError(e, 'closed'));
});

test('sessions: a retried attestation (same sid, same nonce, unused) gets the same evidence; anything else is 409', async () => {
  let now = 0;
  const sessions = store({ now: () => now, unusedMs: 5000 });
  const first = sessions.begin(SID(1), NONCE);
  assert.equal(sessions.retryEvidence(SID(1), NONCE), undefined, 'no evidence yet, nothing to repeat');
  first.setEvidence(Promise.resolve('{"doc":1}'));
  assert.equal(await sessions.retryEvidence(SID(1), NONCE), '{"doc":1}');
  assert.equal(sessions.retryEvidence(SID(1), 'cd'.repeat(32)), undefined, 'another nonce');
  assert.equal(sessions.retryEvidence(SID(2), NONCE), undefined, 'another session');
  // Whatever is not a retry, for a live sid, is 409.
  assert.throws(() => sessions.begin(SID(1), NONCE), (e) => isServerError(e, 'session_live'));
  assert.throws(() => sessions.begin(SID(1), 'cd'.repeat(32)), (e) => isServerError(e, 'session_live'), 'another nonce');
  sessions.markUsed(first.session);
  assert.equal(sessions.retryEvidence(SID(1), NONCE), undefined, 'after use the evidence is gone');
  assert.throws(() => sessions.begin(SID(1), NONCE), (e) => isServerError(e, 'session_live'), 'after use');
  // Past its unused timeout a session answers no retry.
  const second = sessions.begin(SID(2), NONCE);
  second.setEvidence(Promise.resolve('{"doc":2}'));
  now = 5000;
  assert.equal(sessions.retryEvidence(SID(2), NONCE), undefined, 'ended unused');
  sessions.sweep();
  assert.equal(sessions.size, 1, 'the used session stays; the unused one is gone');
  sessions.close();
});

test('sessions: unused sessions end after the unused timeout; used ones live to their expiry', () => {
  let now = 0;
  const sessions = store({ now: () => now, unusedMs: 5000, lifetimeMs: 60_000 });
  const unused = begin(sessions, SID(1));
  const used = begin(sessions, SID(2));
  sessions.markUsed(used);
  assert.equal(sessions.unusedCount, 1);
  now = 4999;
  assert.equal(sessions.get(SID(1)), unused);
  now = 5000;
  sessions.sweep();
  assert.equal(sessions.get(SID(1)), undefined);
  assert.ok(unused.privateKey.every((x) => x === 0));
  assert.equal(sessions.get(SID(2)), used);
  now = 59_999;
  assert.equal(sessions.get(SID(2)), used);
  now = 60_000;
  sessions.sweep();
  assert.equal(sessions.size, 0);
  assert.ok(used.privateKey.every((x) => x === 0));
  sessions.close();
});

test('sessions: when full, the oldest never-used session is evicted; full of used sessions is 429 with the wait', () => {
  let now = 0;
  const sessions = store({ now: () => now, max: 3, lifetimeMs: 30_000, unusedMs: 20_000 });
  const a = begin(sessions, SID(1));
  now = 1;
  const b = begin(sessions, SID(2));
  now = 2;
  const c = begin(sessions, SID(3));
  sessions.markUsed(a);
  now = 3;
  const d = begin(sessions, SID(4));
  assert.equal(sessions.get(SID(2)), undefined, 'b, the oldest never used, made room');
  assert.ok(b.privateKey.every((x) => x === 0));
  assert.equal(sessions.get(SID(1)), a, 'a is in use and stays, though older');
  sessions.markUsed(c);
  sessions.markUsed(d);
  now = 10_000;
  assert.throws(
    () => sessions.begin(SID(5), NONCE),
    (e) => isServerError(e, 'too_many_sessions') && (e as { retryAfterSeconds?: number }).retryAfterSeconds === 20,
    'every session in use: refused, with the seconds until the first one (a) expires',
  );
  assert.equal(sessions.size, 3);
  sessions.close();
});

test('sessions: bad configuration refused', () => {
  const base = { generateKey: ohttp.generateKey, maxSessions: 1, lifetimeMs: 1000, unusedTimeoutMs: 1, maxRequestsPerSession: 1, sweepIntervalMs: 0 };
  assert.throws(() => new SessionStore({ ...base, maxSessions: 0 }), (e) => isServerError(e, 'bad_config'));
  assert.throws(() => new SessionStore({ ...base, lifetimeMs: 999 }), (e) => isServerError(e, 'bad_config'));
  assert.throws(() => new SessionStore({ ...base, unusedTimeoutMs: 0 }), (e) => isServerError(e, 'bad_config'));
});

test('rate bucket (GCRA): burst, exact wait, refill, reservation', () => {
  const b = new RateBucket(2, 3); // one place every 500 ms, 3 at once
  assert.ok(b.take(0).ok && b.take(0).ok && b.take(0).ok);
  assert.deepEqual(b.take(0), { ok: false, waitMs: 500 });
  assert.deepEqual(b.take(400), { ok: false, waitMs: 100 });
  assert.ok(b.take(500).ok);
  assert.equal(b.reserve(500), 1000, 'the next place, held ahead');
  assert.deepEqual(b.take(1000), { ok: false, waitMs: 500 }, 'the reserved place is gone');
  assert.equal(b.isFull(2499), false);
  assert.equal(b.isFull(2500), true, 'every place taken has been earned back');
  assert.throws(() => new RateBucket(0, 1), RangeError);
  assert.throws(() => new RateBucket(1, 0), RangeError);
});

test('attestation limits: per address with Retry-After; addresses do not share a bucket', () => {
  let now = 0;
  const l = new AttestationRateLimiter({ perAddressRate: 1, perAddressBurst: 2, totalRate: 1000, now: () => now });
  assert.ok(l.check('a').ok && l.check('a').ok);
  assert.deepEqual(l.check('a'), { ok: false, retryAfterSeconds: 1, scope: 'address' });
  assert.ok(l.check('b').ok, 'another address has its own allowance');
  now = 1000;
  assert.ok(l.check('a').ok);
});

test('attestation limits: over the total, each refused address holds the next place and gets it at its Retry-After', () => {
  let now = 0;
  // Total: 2 per second (burst 2). Per address: generous.
  const l = new AttestationRateLimiter({ perAddressRate: 100, perAddressBurst: 100, totalRate: 2, now: () => now });
  assert.ok(l.check('s1').ok && l.check('s2').ok);
  // Strangers s1..s4 keep asking; each gets one reservation, later ones further ahead.
  const hints = ['s1', 's2', 's3', 's4'].map((a) => l.check(a));
  assert.deepEqual(hints.map((h) => (h.ok ? 0 : h.retryAfterSeconds)), [1, 1, 2, 2]);
  // A newcomer queues behind them, not behind every future request of theirs.
  const newcomer = l.check('new');
  assert.ok(!newcomer.ok && newcomer.scope === 'total');
  const wait = newcomer.ok ? 0 : newcomer.retryAfterSeconds;
  assert.equal(wait, 3);
  // Asking again early changes nothing: the same place, the remaining time.
  now = 1000;
  assert.deepEqual(l.check('new'), { ok: false, retryAfterSeconds: 2, scope: 'total' });
  // The strangers come back at their times and get their places; asking again queues them behind.
  assert.ok(l.check('s1').ok && l.check('s2').ok);
  assert.ok(!l.check('s1').ok);
  now = 3000;
  assert.ok(l.check('new').ok, 'the newcomer gets in exactly at its Retry-After');
});

test('attestation limits: a reservation not claimed in time lapses; the table of addresses is bounded', () => {
  let now = 0;
  const l = new AttestationRateLimiter({
    perAddressRate: 1, perAddressBurst: 1, totalRate: 1, reservationGraceMs: 1000, maxAddresses: 3, now: () => now,
  });
  assert.ok(l.check('x').ok);
  assert.ok(!l.check('y').ok); // reserved at 1000
  now = 5000;
  assert.ok(l.check('y').ok, 'lapsed: served anew from the bucket, which has refilled');
  for (const a of ['p', 'q', 'r', 's']) l.check(a);
  assert.ok(l.trackedAddresses <= 3);
});

test('client address keys: IPv4 as is, IPv4-mapped as IPv4, IPv6 by its /64; proxy header only from a trusted peer', () => {
  assert.equal(clientAddressKey('127.0.0.2'), '127.0.0.2');
  assert.equal(clientAddressKey('::ffff:10.1.2.3'), '10.1.2.3');
  assert.equal(clientAddressKey('2001:db8:1:2:aaaa::1'), '2001:db8:1:2::/64');
  assert.equal(clientAddressKey('2001:db8:1:2:bbbb:cccc:dddd:eeee'), '2001:db8:1:2::/64');
  assert.equal(clientAddressKey('::1'), '0:0:0:0::/64');
  assert.equal(clientAddressKey(undefined), 'unknown');
  assert.equal(clientAddressKey('not-an-address'), 'unknown');
  assert.equal(clientAddressKey('300.1.2.3'), 'unknown');
  assert.equal(clientAddressKey('2001:db8::1%eth0'), '2001:db8:0:0::/64', 'a zone does not make another client');
  const h = new Headers({ 'x-forwarded-for': '203.0.113.9, 198.51.100.7' });
  const trust = { proxies: ['10.0.0.5'], header: 'x-forwarded-for' };
  assert.equal(requestAddressKey('10.0.0.5', h, trust), '198.51.100.7', 'the entry the trusted proxy appended');
  assert.equal(requestAddressKey('::ffff:10.0.0.5', h, trust), '198.51.100.7');
  assert.equal(requestAddressKey('192.0.2.1', h, trust), '192.0.2.1', 'anyone else: the header is not believed');
  assert.equal(requestAddressKey('192.0.2.1', h, undefined), '192.0.2.1');
  assert.equal(requestAddressKey('10.0.0.5', new Headers(), trust), 'proxy-without-address');
  const ranges = { proxies: ['10.244.0.0/16', 'fd00::/8', '192.0.2.7'], header: 'x-forwarded-for' };
  assert.equal(requestAddressKey('10.244.3.9', h, ranges), '198.51.100.7', 'a balancer pod inside the trusted range');
  assert.equal(requestAddressKey('::ffff:10.244.200.1', h, ranges), '198.51.100.7');
  assert.equal(requestAddressKey('10.245.0.1', h, ranges), '10.245.0.1', 'just outside the /16');
  assert.equal(requestAddressKey('fd12:3456::1', h, ranges), '198.51.100.7');
  assert.equal(requestAddressKey('fe80::1', h, ranges), 'fe80:0:0:0::/64');
  assert.equal(requestAddressKey('192.0.2.7', h, ranges), '198.51.100.7');
  assert.equal(requestAddressKey('192.0.2.8', h, ranges), '192.0.2.8');
  // Two trusted hops (ingress, then balancer): the client is the last address no trusted proxy owns.
  const chain = new Headers({ 'x-forwarded-for': '203.0.113.1, 198.51.100.20, 10.244.1.5' });
  assert.equal(requestAddressKey('10.244.2.7', chain, ranges), '198.51.100.20', 'not the ingress pod, not the client-supplied left part');
  assert.equal(requestAddressKey('10.244.2.7', new Headers({ 'x-forwarded-for': '10.244.1.5, 10.244.1.6' }), ranges), '10.244.1.5', 'all trusted: the leftmost');
  assert.equal(requestAddressKey('10.244.2.7', new Headers({ 'x-forwarded-for': 'junk, 10.244.1.5' }), ranges), 'proxy-without-address');
  assert.equal(requestAddressKey('10.0.0.5', new Headers({ 'x-forwarded-for': 'evil<script>' }), trust), 'proxy-without-address');
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
  assert.throws(() => resolveLimits({ maxSessions: 0 }), (e) => isServerError(e, 'bad_config') && /maxSessions/.test(e.message));
  assert.equal(resolveLimits({ maxSessions: 100_000 }).maxSessions, 100_000, 'no one-byte ceiling any more');
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
  assert.equal(d.limits.sessionLifetimeSeconds, 600);
  assert.equal(d.limits.maxSessions, 20_000);

  const e = parseServeConfig(['--port', '9000', '--session-lifetime', '30', '--session-unused-timeout', '7', '--attestation-burst', '3'], {
    PORT: '7000',
    HOST: '0.0.0.0',
    SEALED_PLATFORM: 'simulated',
    SEALED_THREADS: '2',
    SEALED_SESSION_LIFETIME: '99',
    SEALED_MAX_SESSIONS: '10',
    SEALED_ATTESTATION_RATE: '0.5',
    SEALED_ATTESTATION_RATE_TOTAL: '12.5',
    SEALED_MAX_CONCURRENT_PER_SESSION: '2',
  });
  assert.ok(e !== 'help');
  assert.equal(e.port, 9000);
  assert.equal(e.host, '0.0.0.0');
  assert.equal(e.platform, 'simulated');
  assert.equal(e.threads, 2);
  assert.equal(e.limits.sessionLifetimeSeconds, 30);
  assert.equal(e.limits.sessionUnusedTimeoutSeconds, 7);
  assert.equal(e.limits.maxSessions, 10);
  assert.equal(e.limits.attestationRate, 0.5);
  assert.equal(e.limits.attestationBurst, 3);
  assert.equal(e.limits.attestationRateTotal, 12.5);
  assert.equal(e.limits.maxConcurrentPerSession, 2);

  assert.equal(e.proxyTrust, undefined, 'no proxy is trusted unless named');
  const p = parseServeConfig(['--trust-proxy', '10.0.0.5, 10.0.0.6', '--proxy-address-header', 'X-Real-IP'], {});
  assert.ok(p !== 'help');
  assert.deepEqual(p.proxyTrust, { proxies: ['10.0.0.5', '10.0.0.6'], header: 'x-real-ip' });
  const q = parseServeConfig([], { SEALED_TRUST_PROXY: '::1' });
  assert.ok(q !== 'help');
  assert.deepEqual(q.proxyTrust, { proxies: ['::1'], header: 'x-forwarded-for' });
  assert.throws(() => parseServeConfig(['--proxy-address-header', 'x-real-ip'], {}), (x) => isServerError(x, 'bad_config') && /--trust-proxy/.test(x.message));
  assert.throws(() => parseServeConfig(['--trust-proxy', 'proxy.example'], {}), (x) => isServerError(x, 'bad_config'));
  assert.throws(() => parseServeConfig(['--trust-proxy', '10.0.0.0/33'], {}), (x) => isServerError(x, 'bad_config'));
  const cidr = parseServeConfig(['--trust-proxy', '10.244.0.0/16,fd00::/8'], {});
  assert.ok(cidr !== 'help');
  assert.deepEqual(cidr.proxyTrust?.proxies, ['10.244.0.0/16', 'fd00::/8']);
  assert.throws(() => parseServeConfig(['--trust-proxy', '10.0.0.5', '--proxy-address-header', 'a b'], {}), (x) => isServerError(x, 'bad_config'));

  assert.equal(parseServeConfig(['--help'], {}), 'help');
  assert.throws(() => parseServeConfig(['--platform', 'sgx'], {}), (x) => isServerError(x, 'bad_config') && /--platform/.test(x.message));
  assert.throws(() => parseServeConfig([], { PORT: '70000' }), (x) => isServerError(x, 'bad_config') && /PORT/.test(x.message));
  assert.throws(() => parseServeConfig(['--max-sessions', '0'], {}), (x) => isServerError(x, 'bad_config') && /--max-sessions/.test(x.message));
  // Version 1's flags are gone, not silently accepted.
  assert.throws(() => parseServeConfig(['--key-lifetime', '30'], {}), (x) => isServerError(x, 'bad_config'));
  assert.throws(() => parseServeConfig(['--threads', '1e3'], {}), (x) => isServerError(x, 'bad_config'));
  assert.throws(() => parseServeConfig(['--bogus'], {}), (x) => isServerError(x, 'bad_config'));
  assert.throws(() => parseServeConfig(['positional'], {}), (x) => isServerError(x, 'bad_config'));
});

test('access log line: fields only, unknown routes and methods not echoed', () => {
  const at = new Date('2026-11-27T00:00:00Z');
  assert.equal(
    formatRequestLog({ method: 'POST', route: '/v1/sessions/{sid}/ohttp', status: 200, bytesIn: 237, bytesOut: 482, durationMs: 12.345 }, at),
    '2026-11-27T00:00:00.000Z POST /v1/sessions/{sid}/ohttp 200 in=237 out=482 ms=12.3',
  );
  assert.equal(
    formatRequestLog({ method: 'BREW', route: null, status: 404, bytesIn: 0, bytesOut: 55, durationMs: 0.04, aborted: true }, at),
    '2026-11-27T00:00:00.000Z OTHER - 404 in=0 out=55 ms=0.0 aborted',
  );
});

test('problem documents: CONTRACT statuses and the ohttp-key type', () => {
  const expect: Record<string, number> = {
    bad_request: 400, bad_session: 400, too_large: 413, media_type: 415, unknown_key: 422, replay: 409, session_live: 409,
    too_many_sessions: 429, attestation_rate: 429, attestation_rate_total: 429, overloaded: 503, shutting_down: 503,
    not_ready: 503, not_found: 404,
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

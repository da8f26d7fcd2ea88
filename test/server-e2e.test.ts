// End to end over real sockets: the public server on 127.0.0.1 (port 0) with the bundled model
// and the simulated SEV-SNP provider, driven by a client built on transport/: attestation and
// binding, chat and text completions plain and streamed, the inner OpenAI errors, every outer
// error of CONTRACT.md, CORS, cancellation when the client leaves, and graceful shutdown.
import assert from 'node:assert/strict';
import { after, before, describe, test } from 'node:test';
import { verifyEvidence } from '../enclave/evidence.js';
import { createProvider, type EvidenceProvider } from '../enclave/providers/index.js';
import { Engine } from '../engine/index.js';
import { startServer, type RunningServer } from '../server/lifecycle.js';
import { resolveLimits } from '../server/limits.js';
import { createLogger } from '../server/log.js';
import { encapsulateRequest } from '../transport/ohttp.js';
import { encodeRequest } from '../transport/bhttp.js';
import {
  attest, bindingHolds, hex, sendChunked, sendPlain, sseData, streamedText, type Attested,
} from './fixtures/server/client.js';

const MODEL_DIR = new URL('../models/stories260K', import.meta.url).pathname;
const MARKER = `zebra-${crypto.randomUUID()}`;

let engine: Engine;
let provider: EvidenceProvider;
let server: RunningServer;
let base: string;
const logLines: string[] = [];

before(async () => {
  engine = await Engine.create({ modelDir: MODEL_DIR, threads: 1 });
  provider = await createProvider('simulated', { simulation: { modelDigest: engine.model.digest } });
  server = await startServer({
    engine,
    provider,
    limits: resolveLimits({ maxBodyBytes: 64 * 1024, maxTokensCeiling: 600 }),
    host: '127.0.0.1',
    port: 0,
    logger: createLogger((l) => logLines.push(l)),
  });
  base = server.url;
});

after(async () => {
  await server.close();
  provider.close?.();
  await engine.close();
});

async function greedyAlone(prompt: string | number[], maxTokens: number): Promise<string> {
  let text = '';
  for await (const ev of engine.generate({ prompt, maxTokens, temperature: 0 })) if (ev.type === 'delta') text += ev.text;
  return text;
}

const chat = (content: string, extra: Record<string, unknown> = {}) => ({
  model: 'stories260K',
  messages: [{ role: 'user', content }],
  max_tokens: 40,
  temperature: 0,
  ...extra,
});

describe('attestation', () => {
  test('evidence has the CONTRACT shape, binds nonce, key and model, and verifies', async () => {
    const a = await attest(base);
    const ev = a.evidence;
    assert.equal(ev.version, 2);
    assert.equal(ev.session, a.sid);
    assert.equal(ev.platform, 'sev-snp');
    assert.equal(ev.simulated, true);
    assert.equal(ev.model.id, 'stories260K');
    assert.equal(ev.model.digest, engine.model.digest);
    assert.match(ev.expiresAt, /^\d{4}-\d\d-\d\dT\d\d:\d\d:\d\dZ$/);
    const ttl = Date.parse(ev.expiresAt) - Date.now();
    assert.ok(ttl > 590_000 && ttl <= 600_000, 'default lifetime is 10 minutes');
    assert.equal(Buffer.from(ev.evidence.report, 'base64').length, 1184);
    assert.ok(bindingHolds(a), 'reportData = the v2 binding of every field, and in the report');
    // The whole check a client makes: signature chain, policy, binding, model pin, session.
    const v = await verifyEvidence(ev, { nonce: a.nonce, session: a.sid, allowSimulation: true, policy: { modelDigest: engine.model.digest } });
    assert.equal(v.ok, true);
    // Evidence for another nonce must not verify.
    const other = crypto.getRandomValues(new Uint8Array(32));
    await assert.rejects(verifyEvidence(ev, { nonce: other, allowSimulation: true }), (e: { code?: string }) => e.code === 'binding_mismatch');
    // Without --allow-simulation it is refused.
    await assert.rejects(verifyEvidence(ev, { nonce: a.nonce }), (e: { code?: string }) => e.code === 'simulation_not_allowed');
    // A fresh key pair per session.
    const b = await attest(base);
    assert.notEqual(b.evidence.session, ev.session);
    assert.notEqual(hex(b.config.publicKey), hex(a.config.publicKey));
    await assert.rejects(verifyEvidence(ev, { nonce: a.nonce, session: b.sid, allowSimulation: true }), (e: { code?: string }) => e.code === 'session_mismatch');
    assert.deepEqual(a.config.suites.map((s) => s.aeadId), [1, 2, 3]);
  });

  test('nonce is required and must be 64 hex digits', async () => {
    for (const q of ['', '?nonce=', '?nonce=abc', `?nonce=${'g'.repeat(64)}`, `?nonce=${'a'.repeat(66)}`, `?nonce=${'a'.repeat(64)}&nonce=${'b'.repeat(64)}`]) {
      const r = await fetch(`${base}/v1/sessions/${Buffer.from(crypto.getRandomValues(new Uint8Array(16))).toString('base64url')}/attestation${q}`);
      assert.equal(r.status, 400, q);
      assert.equal(r.headers.get('content-type'), 'application/problem+json');
      assert.ok(!(await r.text()).includes('abc'));
    }
  });
});

describe('completions through OHTTP', () => {
  let a: Attested;
  before(async () => {
    a = await attest(base);
  });

  test('chat completion over plain OHTTP equals the greedy engine output, with usage', async () => {
    const prompt = 'Once upon a time, a little dog';
    const { outer, inner } = await sendPlain(base, a, { method: 'POST', path: '/v1/chat/completions', json: chat(prompt) });
    assert.equal(outer.status, 200);
    assert.equal(outer.headers.get('content-type'), 'message/ohttp-res');
    assert.equal(inner!.status, 200);
    const body = JSON.parse(inner!.text);
    assert.equal(body.object, 'chat.completion');
    assert.equal(body.model, 'stories260K');
    assert.match(body.id, /^chatcmpl-/);
    assert.equal(body.choices.length, 1);
    assert.equal(body.choices[0].message.role, 'assistant');
    const ids = engine.chatPrompt([{ role: 'user', content: prompt }]);
    assert.equal(body.choices[0].message.content, await greedyAlone(ids, 40));
    assert.equal(body.choices[0].finish_reason, 'length');
    assert.deepEqual(body.usage, { prompt_tokens: ids.length, completion_tokens: 40, total_tokens: ids.length + 40 });
  });

  test('streamed chat over chunked OHTTP: one sealed chunk per SSE event, ending [DONE]', async () => {
    const prompt = 'The cat sat on the mat';
    const { outer, inner } = await sendChunked(base, a, {
      method: 'POST',
      path: '/v1/chat/completions',
      json: chat(prompt, { stream: true, stream_options: { include_usage: true } }),
    });
    assert.equal(outer.status, 200);
    assert.equal(outer.headers.get('content-type'), 'message/ohttp-chunked-res');
    assert.equal(inner!.status, 200);
    assert.equal(inner!.complete, true);
    assert.ok(inner!.headers.some(([n, v]) => n === 'content-type' && v.startsWith('text/event-stream')));
    // Each Binary HTTP body chunk is exactly one event, padded (by default) with one comment line.
    for (const c of inner!.chunks) assert.match(c, /^data: [^\n]*\n: p*\n\n$/);
    const events = sseData(inner!.text);
    assert.equal(events.at(-1), '[DONE]');
    const first = JSON.parse(events[0]!);
    assert.equal(first.object, 'chat.completion.chunk');
    assert.deepEqual(first.choices[0].delta, { role: 'assistant', content: '' });
    const usageChunk = JSON.parse(events.at(-2)!);
    assert.deepEqual(usageChunk.choices, []);
    assert.equal(usageChunk.usage.completion_tokens, 40);
    const finish = JSON.parse(events.at(-3)!);
    assert.equal(finish.choices[0].finish_reason, 'length');
    const ids = engine.chatPrompt([{ role: 'user', content: prompt }]);
    assert.equal(streamedText(events), await greedyAlone(ids, 40));
    assert.ok(events.length > 10, 'many events, not one');
  });

  test('streamed chat over plain OHTTP arrives whole, same text', async () => {
    const prompt = 'The cat sat on the mat';
    const { inner } = await sendPlain(base, a, { method: 'POST', path: '/v1/chat/completions', json: chat(prompt, { stream: true }) });
    assert.equal(inner!.status, 200);
    const events = sseData(inner!.text);
    assert.equal(events.at(-1), '[DONE]');
    const ids = engine.chatPrompt([{ role: 'user', content: prompt }]);
    assert.equal(streamedText(events), await greedyAlone(ids, 40));
  });

  test('text completions (plain and streamed, chunked) and models', async () => {
    const prompt = 'Lily went to the park';
    const req = { model: 'stories260K', prompt, max_tokens: 25, temperature: 0 };
    const plain = await sendPlain(base, a, { method: 'POST', path: '/v1/completions', json: req });
    const body = JSON.parse(plain.inner!.text);
    assert.equal(body.object, 'text_completion');
    const expected = await greedyAlone(prompt, 25);
    assert.equal(body.choices[0].text, expected);
    assert.equal(body.usage.completion_tokens, 25);
    const streamed = await sendChunked(base, a, { method: 'POST', path: '/v1/completions', json: { ...req, stream: true } });
    assert.equal(streamedText(sseData(streamed.inner!.text)), expected);
    // Default max_tokens for /v1/completions is OpenAI's 16.
    const dflt = await sendPlain(base, a, { method: 'POST', path: '/v1/completions', json: { model: 'stories260K', prompt, temperature: 0 } });
    assert.equal(JSON.parse(dflt.inner!.text).usage.completion_tokens, 16);

    const models = await sendPlain(base, a, { method: 'GET', path: '/v1/models' });
    assert.equal(models.inner!.status, 200);
    const list = JSON.parse(models.inner!.text);
    assert.equal(list.object, 'list');
    assert.deepEqual(list.data.map((m: { id: string }) => m.id), ['stories260K']);
  });

  test('inner errors are sealed OpenAI errors with matching status', async () => {
    const cases: Array<{ req: Parameters<typeof sendPlain>[2]; status: number; code: string | null; param?: string | null }> = [
      { req: { method: 'POST', path: '/v1/chat/completions', json: { ...chat('hi'), model: `gpt-${MARKER}` } }, status: 404, code: 'model_not_found', param: 'model' },
      { req: { method: 'POST', path: '/v1/chat/completions', json: chat('hi', { max_tokens: 601 }) }, status: 400, code: 'invalid_value', param: 'max_tokens' },
      { req: { method: 'POST', path: '/v1/chat/completions', json: chat('hi', { max_tokens: 600 }) }, status: 400, code: 'context_length_exceeded' },
      { req: { method: 'POST', path: '/v1/chat/completions', json: { model: 'stories260K' } }, status: 400, code: 'missing_required_parameter', param: 'messages' },
      { req: { method: 'POST', path: '/v1/chat/completions', json: chat('hi', { temperature: 7 }) }, status: 400, code: 'invalid_value', param: 'temperature' },
      { req: { method: 'POST', path: '/v1/chat/completions', json: chat('hi', { n: 2 }) }, status: 400, code: 'invalid_value', param: 'n' },
      { req: { method: 'POST', path: '/v1/chat/completions', json: chat('hi', { [MARKER]: 1 }) }, status: 400, code: 'unknown_parameter', param: null },
      { req: { method: 'POST', path: '/v1/chat/completions', body: new TextEncoder().encode(`{${MARKER}`), contentType: 'application/json' }, status: 400, code: 'invalid_json' },
      { req: { method: 'POST', path: '/v1/chat/completions', body: new TextEncoder().encode('x'), contentType: 'text/plain' }, status: 415, code: 'unsupported_media_type' },
      { req: { method: 'GET', path: `/v1/${MARKER}` }, status: 404, code: 'unknown_url' },
      { req: { method: 'POST', path: '/v1/models' }, status: 404, code: 'unknown_url' },
    ];
    for (const c of cases) {
      const { outer, inner } = await sendPlain(base, a, c.req);
      assert.equal(outer.status, 200, 'the outer request succeeded; the error is inside');
      assert.equal(inner!.status, c.status, JSON.stringify(c.req.json ?? c.req.path));
      const err = JSON.parse(inner!.text).error;
      assert.deepEqual(Object.keys(err).sort(), ['code', 'message', 'param', 'type']);
      assert.equal(err.code, c.code);
      if (c.param !== undefined) assert.equal(err.param, c.param);
      assert.ok(!inner!.text.includes(MARKER), 'no request content echoed');
    }
  });

  test('a streamed generation is cancelled when the client goes away', async () => {
    let activeAtFirstChunk = -1;
    const { inner } = await sendChunked(
      base,
      a,
      { method: 'POST', path: '/v1/completions', json: { model: 'stories260K', prompt: 'Once upon a time', max_tokens: 480, temperature: 0, stream: true } },
      (_t, i) => {
        if (i < 3) return true;
        activeAtFirstChunk = engine.stats().active;
        return false; // hang up
      },
    );
    assert.equal(inner!.complete, false);
    // Events reached the client while the engine was still generating: they were flushed, not buffered.
    assert.equal(activeAtFirstChunk, 1);
    const t0 = Date.now();
    while (engine.stats().active > 0 && Date.now() - t0 < 3000) await new Promise((r) => setTimeout(r, 10));
    assert.equal(engine.stats().active, 0, 'generation cancelled');
    assert.equal(server.runtime.tracker.size, 0);
  });
});

describe('outer errors (problem documents)', () => {
  async function expectProblem(res: Response, status: number) {
    assert.equal(res.status, status);
    assert.equal(res.headers.get('content-type'), 'application/problem+json');
    const text = await res.text();
    const doc = JSON.parse(text);
    assert.equal(doc.status, status);
    assert.ok(!text.includes(MARKER), 'nothing from the request is echoed');
    return doc;
  }

  test('replay 409, unknown key 422, garbage 400, media type 415, too large 413', async () => {
    const a = await attest(base);
    const first = await sendPlain(base, a, { method: 'POST', path: '/v1/chat/completions', json: chat('hi', { max_tokens: 2 }) });
    assert.equal(first.outer.status, 200);
    const post = (body: Uint8Array, type = 'message/ohttp-req') =>
      fetch(`${base}/v1/sessions/${a.sid}/ohttp`, { method: 'POST', headers: { 'content-type': type }, body: body as Uint8Array<ArrayBuffer> });

    await expectProblem(await post(first.encapsulated), 409);

    // Mismatched key: a valid encapsulation to another key id than the session's.
    const otherId = { ...a.config, keyId: (a.config.keyId + 128) % 256 };
    const doc = await expectProblem(await post(encapsulateRequest(otherId, new Uint8Array(8)).bytes), 422);
    assert.equal(doc.type, 'https://iana.org/assignments/http-problem-types#ohttp-key');
    // Unknown session: a well-formed sid nobody attested, and a request sealed to a live session's key sent there.
    const stranger = Buffer.from(crypto.getRandomValues(new Uint8Array(16))).toString('base64url');
    const unknown = await fetch(`${base}/v1/sessions/${stranger}/ohttp`, {
      method: 'POST', headers: { 'content-type': 'message/ohttp-req' }, body: encapsulateRequest(a.config, new Uint8Array(8)).bytes as Uint8Array<ArrayBuffer>,
    });
    assert.equal((await expectProblem(unknown, 422)).type, 'https://iana.org/assignments/http-problem-types#ohttp-key');
    // A malformed sid is 400, not 422: the client has a bug, not an old session.
    for (const bad of ['', 'short', 'A'.repeat(23), `${'A'.repeat(21)}B`, `${'A'.repeat(21)}%`]) {
      const r = await fetch(`${base}/v1/sessions/${bad}/ohttp`, { method: 'POST', headers: { 'content-type': 'message/ohttp-req' }, body: MARKER });
      await expectProblem(r, 400);
    }

    // Garbage: random bytes under a live key id, too-short bodies, an empty body.
    const garbage = crypto.getRandomValues(new Uint8Array(200));
    garbage.set([a.config.keyId, 0x00, 0x20, 0x00, 0x01, 0x00, 0x01]);
    garbage.set(new TextEncoder().encode(MARKER), 60);
    await expectProblem(await post(garbage), 400);
    await expectProblem(await post(garbage.subarray(0, 20)), 400);
    await expectProblem(await post(new Uint8Array(0)), 400);
    // Chunked: a well-framed first chunk (length 32) that does not authenticate.
    const chunkedGarbage = garbage.slice(0, 39 + 1 + 32 + 1 + 20);
    chunkedGarbage[39] = 32;
    chunkedGarbage[39 + 1 + 32] = 0;
    await expectProblem(await post(chunkedGarbage, 'message/ohttp-chunked-req'), 400);
    // An unsupported suite under a live key id.
    const badSuite = garbage.slice();
    badSuite.set([0x00, 0x09], 5);
    await expectProblem(await post(badSuite), 400);

    for (const type of ['application/json', 'text/plain', 'message/ohttp-res', 'message/bhttp']) {
      await expectProblem(await post(first.encapsulated, type), 415);
    }
    await expectProblem(await fetch(`${base}/v1/sessions/${a.sid}/ohttp`, { method: 'POST', body: first.encapsulated as Uint8Array<ArrayBuffer> }), 415);

    // Too large: declared, and streamed without a declared length.
    await expectProblem(await post(new Uint8Array(64 * 1024 + 1)), 413);
    const big = new ReadableStream<Uint8Array>({
      start(c) {
        const chunk = new Uint8Array(16 * 1024);
        chunk[0] = a.config.keyId;
        for (let i = 0; i < 5; i++) c.enqueue(chunk);
        c.close();
      },
    });
    const res = await fetch(`${base}/v1/sessions/${a.sid}/ohttp`, {
      method: 'POST', headers: { 'content-type': 'message/ohttp-req' }, body: big, duplex: 'half',
    } as RequestInit);
    await expectProblem(res, 413);
  });

  test('an expired key is 422 (short lifetime) and wiped', async () => {
    const short = await startServer({
      engine, provider, limits: resolveLimits({ sessionLifetimeSeconds: 2 }), host: '127.0.0.1', port: 0,
    });
    try {
      const a = await attest(short.url);
      const ok = await sendPlain(short.url, a, { method: 'GET', path: '/v1/models' });
      assert.equal(ok.outer.status, 200);
      const session = short.runtime.sessions.get(a.sid)!;
      const key = session.privateKey;
      // The sweep wipes it at expiresAt even with no traffic to trigger it.
      await new Promise((r) => setTimeout(r, Date.parse(a.evidence.expiresAt) - Date.now() + 1100));
      assert.ok(key.every((b) => b === 0), 'private key overwritten at expiry');
      const late = await sendPlain(short.url, a, { method: 'GET', path: '/v1/models' });
      assert.equal(late.outer.status, 422);
      assert.equal(JSON.parse(late.outerBody!).type, 'https://iana.org/assignments/http-problem-types#ohttp-key');
      const lateChunked = await sendChunked(short.url, a, { method: 'GET', path: '/v1/models' });
      assert.equal(lateChunked.outer.status, 422);
    } finally {
      await short.close();
    }
  });

  test('every route outside the contract (version 1 included) is 404', async () => {
    const sid = Buffer.from(crypto.getRandomValues(new Uint8Array(16))).toString('base64url');
    const cases: Array<[string, string]> = [
      ['GET', '/'],
      ['GET', `/${MARKER}`],
      ['POST', '/v1/ohttp'],
      ['GET', `/v1/attestation?nonce=${'a'.repeat(64)}`],
      ['GET', `/v1/sessions/${sid}/ohttp`],
      ['PUT', `/v1/sessions/${sid}/ohttp`],
      ['POST', `/v1/sessions/${sid}/attestation`],
      ['DELETE', `/v1/sessions/${sid}/attestation`],
      ['HEAD', `/v1/sessions/${sid}/attestation`],
      ['GET', `/v1/sessions/${sid}`],
      ['GET', `/v1/sessions/${sid}/attestation/`],
      ['GET', `/v1/sessions/${sid}/models`],
      ['GET', `/v1/sessions/a/b/attestation`],
      ['GET', `/V1/SESSIONS/${sid}/ATTESTATION`],
      ['POST', '/healthz'],
      ['HEAD', '/healthz'],
      ['POST', '/readyz'],
      ['GET', '/healthz/'],
      ['GET', '/v1/models'],
      ['POST', '/v1/chat/completions'],
      ['POST', '/v1/completions'],
      ['OPTIONS', '/v1/models'],
      ['PATCH', '/healthz'],
    ];
    for (const [method, path] of cases) {
      const res = await fetch(base + path, { method, ...(method === 'POST' || method === 'PUT' ? { body: MARKER } : {}) });
      assert.equal(res.status, 404, `${method} ${path}`);
      if (method !== 'HEAD') await expectProblem(res, 404);
    }
  });

  test('CORS: any origin, preflight for the routes', async () => {
    const sid = Buffer.from(crypto.getRandomValues(new Uint8Array(16))).toString('base64url');
    for (const path of [`/v1/sessions/${sid}/ohttp`, `/v1/sessions/${sid}/attestation`, '/healthz', '/readyz']) {
      const pre = await fetch(base + path, {
        method: 'OPTIONS',
        headers: { origin: 'https://example.org', 'access-control-request-method': 'POST', 'access-control-request-headers': 'content-type' },
      });
      assert.equal(pre.status, 204, path);
      assert.equal(pre.headers.get('access-control-allow-origin'), '*');
      assert.match(pre.headers.get('access-control-allow-methods') ?? '', /POST/);
      assert.match(pre.headers.get('access-control-allow-headers') ?? '', /content-type/i);
    }
    const h = await fetch(`${base}/healthz`, { headers: { origin: 'https://example.org' } });
    assert.equal(h.headers.get('access-control-allow-origin'), '*');
  });

  test('sessions: a retried GET gets the same evidence; 409 for a live sid; eviction of the never-used; 429 only when all are in use', async () => {
    const limited = await startServer({
      engine, provider, limits: resolveLimits({ maxSessions: 2 }), host: '127.0.0.1', port: 0,
    });
    try {
      const nonce = crypto.getRandomValues(new Uint8Array(32));
      const a = await attest(limited.url, nonce);
      const again = await attest(limited.url, nonce, a.sid);
      assert.deepEqual(again.evidence, a.evidence, 'safe to retry: the same evidence again');
      assert.ok(bindingHolds(again));
      const url = (sid: string) => `${limited.url}/v1/sessions/${sid}/attestation?nonce=${hex(crypto.getRandomValues(new Uint8Array(32)))}`;
      await expectProblem(await fetch(url(a.sid)), 409); // another nonce for a live sid
      const b = await attest(limited.url);
      // Full (2). b is used, a is not: a third attestation evicts a, the oldest never used.
      assert.equal((await sendPlain(limited.url, b, { method: 'GET', path: '/v1/models' })).outer.status, 200);
      const c = await attest(limited.url);
      assert.equal((await sendPlain(limited.url, a, { method: 'GET', path: '/v1/models' })).outer.status, 422, 'a was evicted');
      assert.equal((await sendPlain(limited.url, b, { method: 'GET', path: '/v1/models' })).outer.status, 200, 'b, in use, stays');
      assert.equal((await sendPlain(limited.url, c, { method: 'GET', path: '/v1/models' })).outer.status, 200);
      // Now every live session has carried a request: a new one is 429 with the wait until the first expires.
      const full = await fetch(url(Buffer.from(crypto.getRandomValues(new Uint8Array(16))).toString('base64url')));
      await expectProblem(full, 429);
      const retry = Number(full.headers.get('retry-after'));
      assert.ok(retry > 500 && retry <= 600, `Retry-After ${retry} is the time until b expires`);
    } finally {
      await limited.close();
    }
  });

  test('attestation rate limits answer 429 with Retry-After, per address', async () => {
    const limited = await startServer({
      engine, provider, limits: resolveLimits({ attestationRate: 0.5, attestationBurst: 2 }), host: '127.0.0.1', port: 0,
    });
    try {
      const url = () =>
        `${limited.url}/v1/sessions/${Buffer.from(crypto.getRandomValues(new Uint8Array(16))).toString('base64url')}/attestation?nonce=${hex(crypto.getRandomValues(new Uint8Array(32)))}`;
      assert.equal((await fetch(url())).status, 200);
      assert.equal((await fetch(url())).status, 200);
      const refused = await fetch(url());
      const doc = await expectProblem(refused, 429);
      assert.match(doc.detail, /this address/);
      assert.equal(refused.headers.get('retry-after'), '2', 'one place every 2 s');
      assert.equal(refused.headers.get('access-control-expose-headers'), 'retry-after', 'a web page can read the hint');
    } finally {
      await limited.close();
    }
  });

  test('/readyz is 200 when serving and 503 when not ready', async () => {
    const r = await fetch(`${base}/readyz`);
    assert.equal(r.status, 200);
    assert.deepEqual(await r.json(), { status: 'ready' });
    server.runtime.ready = false;
    try {
      const n = await fetch(`${base}/readyz`);
      await expectProblem(n, 503);
      assert.ok(Number(n.headers.get('retry-after')) >= 1);
      const sid = Buffer.from(crypto.getRandomValues(new Uint8Array(16))).toString('base64url');
      await expectProblem(await fetch(`${base}/v1/sessions/${sid}/attestation?nonce=${'a'.repeat(64)}`), 503);
    } finally {
      server.runtime.ready = true;
    }
  });

  test('the server is healthy after all of it, and its log holds no content', async () => {
    const h = await fetch(`${base}/healthz`);
    assert.equal(h.status, 200);
    assert.deepEqual(await h.json(), { status: 'ok' });
    const a = await attest(base);
    const r = await sendPlain(base, a, { method: 'POST', path: '/v1/chat/completions', json: chat(MARKER, { max_tokens: 5 }) });
    assert.equal(r.inner!.status, 200);
    assert.ok(logLines.length > 20);
    for (const line of logLines) {
      assert.match(line, /^\S+Z (GET|POST|PUT|DELETE|HEAD|OPTIONS|PATCH|OTHER) (\/v1\/sessions\/\{sid\}\/attestation|\/v1\/sessions\/\{sid\}\/ohttp|\/healthz|\/readyz|-) \d{3} in=\d+ out=\d+ ms=\d+\.\d( aborted)?$/);
      assert.ok(!line.includes(MARKER));
      assert.ok(!line.includes('nonce'));
      assert.ok(!/[A-Za-z0-9_-]{22}/.test(line.replace(/^\S+Z /, '')), 'no session id in the log');
    }
  });
});

describe('shutdown', () => {
  test('close() refuses new work, wipes every key and stops listening', async () => {
    const s = await startServer({ engine, provider, limits: resolveLimits({ shutdownGraceMs: 2000 }), host: '127.0.0.1', port: 0 });
    const a = await attest(s.url);
    const b = await attest(s.url);
    const keys = [a, b].map((x) => s.runtime.sessions.get(x.sid)!.privateKey);
    // A streamed generation running at shutdown is given the grace period and finishes.
    const running = sendChunked(s.url, a, {
      method: 'POST', path: '/v1/completions', json: { model: 'stories260K', prompt: 'Once', max_tokens: 60, temperature: 0, stream: true },
    });
    await new Promise((r) => setTimeout(r, 30));
    await s.close();
    const done = await running;
    assert.equal(done.inner!.complete, true);
    for (const k of keys) assert.ok(k.every((x) => x === 0));
    assert.equal(s.runtime.sessions.size, 0);
    await assert.rejects(fetch(`${s.url}/healthz`));
  });
});

describe('limits and lifecycle', () => {
  const longStream = { model: 'stories260K', prompt: 'Once upon a time', max_tokens: 500, temperature: 0, stream: true };

  test('in-flight limit: a slow upload holds no place; a request beyond every place is 503 (outer)', async () => {
    const s = await startServer({
      engine, provider, limits: resolveLimits({ maxConcurrentGenerations: 1, maxQueue: 0 }), host: '127.0.0.1', port: 0,
    });
    try {
      const a = await attest(s.url);
      // A chunked request whose body never ends: tracked, but not admitted, so it blocks nobody.
      const { encapsulateChunkedRequest } = await import('../transport/chunked-ohttp.js');
      const e = encapsulateChunkedRequest(a.config);
      const hold = new AbortController();
      const held = fetch(`${s.url}/v1/sessions/${a.sid}/ohttp`, {
        method: 'POST',
        headers: { 'content-type': 'message/ohttp-chunked-req' },
        body: new ReadableStream<Uint8Array>({ start: (c) => c.enqueue(e.header) }),
        duplex: 'half',
        signal: hold.signal,
      } as RequestInit).catch(() => 'aborted');
      const w0 = Date.now();
      while (s.runtime.tracker.size === 0 && Date.now() - w0 < 5000) await new Promise((r) => setTimeout(r, 5));
      assert.equal(s.runtime.tracker.size, 1);
      assert.equal(s.runtime.tracker.admitted, 0);
      assert.equal((await sendPlain(s.url, a, { method: 'GET', path: '/v1/models' })).outer.status, 200);

      // A running generation holds the only place: the next request is refused outside the encryption.
      let second: Awaited<ReturnType<typeof sendPlain>> | undefined;
      const first = await sendChunked(s.url, a, { method: 'POST', path: '/v1/completions', json: longStream }, (_t, i) => {
        if (i === 0) void sendPlain(s.url, a, { method: 'GET', path: '/v1/models' }).then((r) => (second = r));
        return true;
      });
      assert.equal(first.inner!.status, 200);
      while (second === undefined && Date.now() - w0 < 10_000) await new Promise((r) => setTimeout(r, 5));
      assert.equal(second!.outer.status, 503);
      assert.equal(second!.outer.headers.get('content-type'), 'application/problem+json');
      // Refused before it was served, so it was not recorded: the same bytes are accepted later.
      const retry = await fetch(`${s.url}/v1/sessions/${a.sid}/ohttp`, {
        method: 'POST', headers: { 'content-type': 'message/ohttp-req' }, body: second!.encapsulated as Uint8Array<ArrayBuffer>,
      });
      assert.equal(retry.status, 200);
      hold.abort();
      assert.equal(await held, 'aborted');
    } finally {
      await s.close();
    }
  });

  test('generation timeout: 504 for a collected response, an error event for a stream', async () => {
    const s = await startServer({ engine, provider, limits: resolveLimits({ generationTimeoutMs: 30 }), host: '127.0.0.1', port: 0 });
    try {
      const a = await attest(s.url);
      const { max_tokens, prompt, model } = longStream;
      const collected = await sendPlain(s.url, a, { method: 'POST', path: '/v1/completions', json: { model, prompt, max_tokens, temperature: 0 } });
      assert.equal(collected.inner!.status, 504);
      assert.equal(JSON.parse(collected.inner!.text).error.code, 'timeout');
      const streamed = await sendChunked(s.url, a, { method: 'POST', path: '/v1/completions', json: longStream });
      assert.equal(streamed.inner!.complete, true);
      const events = sseData(streamed.inner!.text);
      assert.notEqual(events.at(-1), '[DONE]');
      assert.equal(JSON.parse(events.at(-1)!).error.code, 'timeout');
      assert.equal(engine.stats().active, 0);
    } finally {
      await s.close();
    }
  });

  test('shutdown past the grace period cancels what still runs', async () => {
    const s = await startServer({ engine, provider, limits: resolveLimits({ shutdownGraceMs: 0 }), host: '127.0.0.1', port: 0 });
    const a = await attest(s.url);
    let closing: Promise<void> | undefined;
    const r = await sendChunked(s.url, a, { method: 'POST', path: '/v1/completions', json: longStream }, (_t, i) => {
      if (i === 2) closing = s.close();
      return true;
    });
    await closing;
    const events = sseData(r.inner!.text);
    assert.notEqual(events.at(-1), '[DONE]', 'not presented as finished');
    assert.equal(JSON.parse(events.at(-1)!).error.code, 'shutting_down');
    assert.equal(engine.stats().active, 0);
    assert.equal(s.runtime.sessions.size, 0);
  });

  test('a replayed chunked request is 409', async () => {
    const a = await attest(base);
    const { encapsulateChunkedRequest } = await import('../transport/chunked-ohttp.js');
    const e = encapsulateChunkedRequest(a.config);
    const body = Buffer.concat([e.header, e.sealFinal(encodeRequest({ method: 'GET', scheme: 'https', authority: 'x', path: '/v1/models' }))]);
    const post = () => fetch(`${base}/v1/sessions/${a.sid}/ohttp`, { method: 'POST', headers: { 'content-type': 'message/ohttp-chunked-req' }, body });
    const ok = await post();
    assert.equal(ok.status, 200);
    await ok.arrayBuffer();
    const again = await post();
    assert.equal(again.status, 409);
  });
});

describe('compatibility and the inner app on its own', () => {
  test('the official OpenAI SDK works unmodified through OHTTP (plain and streamed)', async () => {
    const { default: OpenAI } = await import('openai');
    const { ohttpFetch } = await import('./fixtures/server/client.js');
    const a = await attest(base);
    const client = new OpenAI({ baseURL: 'https://sealed.invalid/v1', apiKey: 'unused', fetch: ohttpFetch(base, a), maxRetries: 0 });
    const prompt = 'A frog jumped';
    const expected = await greedyAlone(engine.chatPrompt([{ role: 'user', content: prompt }]), 20);
    const r = await client.chat.completions.create({ model: 'stories260K', messages: [{ role: 'user', content: prompt }], max_tokens: 20, temperature: 0 });
    assert.equal(r.choices[0]!.message.content, expected);
    assert.equal(r.usage!.completion_tokens, 20);
    const stream = await client.chat.completions.create({
      model: 'stories260K', messages: [{ role: 'user', content: prompt }], max_tokens: 20, temperature: 0, stream: true,
    });
    let text = '';
    for await (const chunk of stream) text += chunk.choices[0]?.delta?.content ?? '';
    assert.equal(text, expected);
    const models = await client.models.list();
    assert.deepEqual(models.data.map((m) => m.id), ['stories260K']);
    await assert.rejects(
      client.chat.completions.create({ model: 'nope', messages: [{ role: 'user', content: 'x' }] }),
      (e: { status?: number; code?: string }) => e.status === 404 && e.code === 'model_not_found',
    );
  });

  test('createInnerApp serves plaintext for the bench twin: body limit and overload', async () => {
    const { createInnerApp } = await import('../server/inner/app.js');
    const inner = createInnerApp({
      engine,
      limits: { ...resolveLimits({ maxBodyBytes: 2048 }), maxConcurrentGenerations: 1, maxQueue: 0 },
    });
    const post = (body: string) =>
      inner.fetch(new Request('http://twin/v1/completions', { method: 'POST', headers: { 'content-type': 'application/json' }, body }));
    const big = await post(JSON.stringify({ model: 'stories260K', prompt: 'x'.repeat(4096) }));
    assert.equal(big.status, 413);
    assert.equal(((await big.json()) as { error: { code: string } }).error.code, 'request_too_large');
    // One generation holds the only slot and there is no queue: the next is 503 overloaded.
    const first = await post(JSON.stringify({ model: 'stories260K', prompt: 'Once', max_tokens: 300, temperature: 0, stream: true }));
    assert.equal(first.status, 200);
    const second = await post(JSON.stringify({ model: 'stories260K', prompt: 'Once', max_tokens: 5 }));
    assert.equal(second.status, 503);
    assert.equal(((await second.json()) as { error: { code: string } }).error.code, 'overloaded');
    await first.body!.cancel();
    const third = await post(JSON.stringify({ model: 'stories260K', prompt: 'Once', max_tokens: 5, temperature: 0 }));
    assert.equal(third.status, 200, 'cancelling the stream freed the slot');
  });
});

describe('more of the gateway', () => {
  test('a collected (non-streamed) generation is cancelled when the client goes away', async () => {
    const a = await attest(base);
    const t0 = performance.now();
    await greedyAlone('Once upon a time', 480);
    const full = performance.now() - t0;
    const abort = new AbortController();
    const { encapsulateRequest: enc } = await import('../transport/ohttp.js');
    const json = new TextEncoder().encode(JSON.stringify({ model: 'stories260K', prompt: 'Once upon a time', max_tokens: 480, temperature: 0 }));
    const e = enc(a.config, encodeRequest({ method: 'POST', scheme: 'https', authority: 'x', path: '/v1/completions', headers: [['content-type', 'application/json']], content: json }));
    const pending = fetch(`${base}/v1/sessions/${a.sid}/ohttp`, {
      method: 'POST', headers: { 'content-type': 'message/ohttp-req' }, body: e.bytes as Uint8Array<ArrayBuffer>, signal: abort.signal,
    }).catch(() => 'aborted');
    const w0 = performance.now();
    while (engine.stats().active === 0 && performance.now() - w0 < 5000) await new Promise((r) => setTimeout(r, 2));
    assert.equal(engine.stats().active, 1, 'the generation is running');
    const c0 = performance.now();
    abort.abort();
    assert.equal(await pending, 'aborted');
    while (engine.stats().active > 0 && performance.now() - c0 < 5000) await new Promise((r) => setTimeout(r, 2));
    const stoppedAfter = performance.now() - c0;
    assert.equal(engine.stats().active, 0);
    assert.ok(stoppedAfter < full / 2, `stopped ${stoppedAfter.toFixed(0)} ms after the client left; a full run takes ${full.toFixed(0)} ms`);
  });

  test('a session past its request limit is 429 (the replay cache stays bounded)', async () => {
    const s = await startServer({ engine, provider, limits: resolveLimits({ maxRequestsPerSession: 2 }), host: '127.0.0.1', port: 0 });
    try {
      const a = await attest(s.url);
      for (let i = 0; i < 2; i++) assert.equal((await sendPlain(s.url, a, { method: 'GET', path: '/v1/models' })).outer.status, 200);
      const third = await sendPlain(s.url, a, { method: 'GET', path: '/v1/models' });
      assert.equal(third.outer.status, 429);
      assert.equal(s.runtime.sessions.get(a.sid)!.replay.size, 2);
      // A new session is not affected.
      const b = await attest(s.url);
      assert.equal((await sendPlain(s.url, b, { method: 'GET', path: '/v1/models' })).outer.status, 200);
    } finally {
      await s.close();
    }
  });

  test('a chunked request whose body arrives in pieces over time is answered', async () => {
    const a = await attest(base);
    const { encapsulateChunkedRequest } = await import('../transport/chunked-ohttp.js');
    const e = encapsulateChunkedRequest(a.config);
    const json = new TextEncoder().encode(JSON.stringify({ model: 'stories260K', prompt: 'Sam', max_tokens: 8, temperature: 0 }));
    const bhttp = encodeRequest(
      { method: 'POST', scheme: 'https', authority: 'x', path: '/v1/completions', headers: [['content-type', 'application/json']], content: json },
      { indeterminate: true },
    );
    const half = Math.floor(bhttp.length / 2);
    const body = new ReadableStream<Uint8Array>({
      async start(c) {
        c.enqueue(e.header);
        await new Promise((r) => setTimeout(r, 50));
        c.enqueue(e.sealChunk(bhttp.subarray(0, half)));
        await new Promise((r) => setTimeout(r, 50));
        c.enqueue(e.sealFinal(bhttp.subarray(half)));
        c.close();
      },
    });
    const res = await fetch(`${base}/v1/sessions/${a.sid}/ohttp`, {
      method: 'POST', headers: { 'content-type': 'message/ohttp-chunked-req' }, body, duplex: 'half',
    } as RequestInit);
    assert.equal(res.status, 200);
    const { BhttpResponseStreamDecoder } = await import('../transport/bhttp.js');
    const dec = new BhttpResponseStreamDecoder();
    const reader = e.openResponse(res.body!).getReader();
    let text = '';
    let status = 0;
    for (;;) {
      const r = await reader.read();
      for (const ev of r.done ? dec.end() : dec.push(r.value)) {
        if (ev.type === 'head') status = ev.status;
        if (ev.type === 'body') text += new TextDecoder().decode(ev.chunk);
      }
      if (r.done) break;
    }
    assert.equal(status, 200);
    assert.equal(JSON.parse(text).choices[0].text, await greedyAlone('Sam', 8));
  });
});

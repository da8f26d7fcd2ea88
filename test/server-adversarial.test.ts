// Hostile-client regressions for the server: every bad input gets a clear, correct error and
// leaves nothing behind. The inner cases run on the plaintext twin of the inner app (the same
// code the gateway calls after decryption) with the real engine and bundled model.
import assert from 'node:assert/strict';
import * as net from 'node:net';
import { after, before, describe, test } from 'node:test';
import { Engine } from '../engine/index.js';
import { ReplayGuard } from '../server/replay.js';
import { createRuntime } from '../server/app.js';
import { toInnerRequest } from '../server/bridge.js';
import { handleChunked, handlePlain, type GatewayDeps } from '../server/gateway.js';
import { createProvider } from '../enclave/providers/index.js';
import { createInnerApp } from '../server/inner/app.js';
import { startServer } from '../server/lifecycle.js';
import { resolveLimits } from '../server/limits.js';
import { ohttp } from '../server/ohttp.js';
import { encodeRequest } from '../transport/bhttp.js';
import { encapsulateChunkedRequest } from '../transport/chunked-ohttp.js';
import type { Context } from '../transport/hpke.js';
import { encapsulateRequest } from '../transport/ohttp.js';
import { attest, sendChunked, sendPlain } from './fixtures/server/client.js';

const MODEL_DIR = new URL('../models/stories260K', import.meta.url).pathname;

let engine: Engine;
let inner: ReturnType<typeof createInnerApp>;

before(async () => {
  engine = await Engine.create({ modelDir: MODEL_DIR, threads: 1 });
  inner = createInnerApp({ engine, limits: { maxBodyBytes: 64 * 1024, maxTokensCeiling: 200 } });
});

after(async () => {
  await engine.close();
});

async function post(path: string, body: unknown): Promise<{ status: number; error: { message: string; param: string | null; code: string | null } }> {
  const res = await inner.fetch(
    new Request(`http://inner.invalid${path}`, { method: 'POST', headers: { 'content-type': 'application/json' }, body: JSON.stringify(body) }),
  );
  const json = (await res.json()) as { error: { message: string; param: string | null; code: string | null } };
  return { status: res.status, error: json.error };
}

/** Whether a reported param is `field` or a path inside it (e.g. stop.1). */
const names = (param: string | null, field: string) => param === field || (param?.startsWith(`${field}.`) ?? false);

const chat = (extra: Record<string, unknown>) => ({ model: 'stories260K', messages: [{ role: 'user', content: 'hi' }], max_tokens: 2, ...extra });

describe('inner validation errors', () => {
  test('a present value of the wrong type is invalid_value, never "missing"', async () => {
    const cases: Array<[string, unknown, string]> = [
      ['/v1/chat/completions', chat({ max_tokens: '5' }), 'max_tokens'],
      ['/v1/chat/completions', chat({ max_tokens: 2.5 }), 'max_tokens'],
      ['/v1/chat/completions', chat({ seed: 1.5 }), 'seed'],
      ['/v1/chat/completions', chat({ stream: 'true' }), 'stream'],
      ['/v1/chat/completions', chat({ model: 5 }), 'model'],
      ['/v1/chat/completions', chat({ messages: [{ role: 'user', content: 'x', name: 7 }] }), 'messages.0.name'],
      ['/v1/completions', { model: 'stories260K', prompt: 'x', logprobs: 0 }, 'logprobs'],
      ['/v1/completions', { model: 'stories260K', prompt: 'x', max_tokens: null, temperature: 'hot' }, 'temperature'],
    ];
    for (const [path, body, param] of cases) {
      const r = await post(path, body);
      assert.equal(r.status, 400, JSON.stringify(body));
      assert.equal(r.error.param, param);
      assert.equal(r.error.code, 'invalid_value', `${param}: present but wrong type`);
      assert.doesNotMatch(r.error.message, /required/);
      assert.match(r.error.message, /expected /);
    }
  });

  test('a body that is not an object is invalid_value for the whole body', async () => {
    for (const body of [[1, 2], null, 'x', 5, true]) {
      const r = await post('/v1/chat/completions', body);
      assert.equal(r.status, 400);
      assert.equal(r.error.param, null);
      assert.equal(r.error.code, 'invalid_value', JSON.stringify(body));
      assert.match(r.error.message, /expected object/);
    }
  });

  test('an absent required value is still missing_required_parameter', async () => {
    const cases: Array<[string, unknown, string]> = [
      ['/v1/chat/completions', { model: 'stories260K' }, 'messages'],
      ['/v1/chat/completions', { messages: [{ role: 'user', content: 'x' }] }, 'model'],
      ['/v1/chat/completions', chat({ messages: [{ role: 'user' }] }), 'messages.0.content'],
      ['/v1/completions', { model: 'stories260K' }, 'prompt'],
    ];
    for (const [path, body, param] of cases) {
      const r = await post(path, body);
      assert.equal(r.status, 400);
      assert.equal(r.error.param, param);
      assert.equal(r.error.code, 'missing_required_parameter', param);
      assert.match(r.error.message, /a value is required/);
    }
  });
});

describe('prompts beyond the context', () => {
  test('context_length_exceeded names the prompt field of each route', async () => {
    const long = 'Once upon a time '.repeat(400);
    const cases: Array<[string, unknown, string]> = [
      ['/v1/chat/completions', chat({ messages: [{ role: 'user', content: long }] }), 'messages'],
      ['/v1/completions', { model: 'stories260K', prompt: long, max_tokens: 2 }, 'prompt'],
      ['/v1/completions', { model: 'stories260K', prompt: Array.from({ length: 600 }, () => 5), max_tokens: 2 }, 'prompt'],
      ['/v1/completions', { model: 'stories260K', prompt: 'Once', max_tokens: 200, temperature: 0 }, ''], // fits: served
    ];
    for (const [path, body, param] of cases) {
      const r = await post(path, body);
      if (param === '') {
        assert.equal(r.status, 200);
        continue;
      }
      assert.equal(r.status, 400);
      assert.equal(r.error.code, 'context_length_exceeded');
      assert.equal(r.error.param, param, path);
    }
  });

  test('context_length_exceeded names the numbers: context, prompt tokens and max_tokens', async () => {
    const r = await post('/v1/completions', { model: 'stories260K', prompt: Array.from({ length: 500 }, () => 5), max_tokens: 20 });
    assert.equal(r.status, 400);
    assert.equal(r.error.message, "This model's maximum context length is 512 tokens. However, you requested 520 tokens (500 in the prompt, 20 in the completion). Please reduce the length of the prompt or the completion.");
    const full = await post('/v1/completions', { model: 'stories260K', prompt: Array.from({ length: 512 }, () => 5) });
    assert.equal(full.status, 400);
    assert.match(full.error.message, /maximum context length is 512 tokens\. However, your prompt resulted in 512 tokens, which leaves no room/);
  });
});

describe('inner text fields', () => {
  test('lone surrogates are refused on every route and name the field (never tokenized)', async () => {
    const cases: Array<[string, unknown, string]> = [
      ['/v1/completions', { model: 'stories260K', prompt: 'ab\udc00c', max_tokens: 2 }, 'prompt'],
      ['/v1/completions', { model: 'stories260K', prompt: ['\ud800'], max_tokens: 2 }, 'prompt'],
      ['/v1/chat/completions', chat({ messages: [{ role: 'user', content: 'x\ud800' }] }), 'messages.0.content'],
      ['/v1/chat/completions', chat({ messages: [{ role: 'user', content: [{ type: 'text', text: '\udfff' }] }] }), 'messages.0.content'],
      ['/v1/chat/completions', chat({ stop: '\ud800' }), 'stop'],
    ];
    for (const [path, body, param] of cases) {
      const r = await post(path, body);
      assert.equal(r.status, 400, JSON.stringify(body));
      assert.ok(names(r.error.param, param), `${r.error.param} names ${param}`);
      assert.equal(r.error.code, 'invalid_value');
    }
    // A well-formed pair (an emoji) is text and is served.
    const ok = await inner.fetch(new Request('http://inner.invalid/v1/completions', {
      method: 'POST', headers: { 'content-type': 'application/json' },
      body: JSON.stringify({ model: 'stories260K', prompt: 'a \ud83d\ude00 b', max_tokens: 2 }),
    }));
    assert.equal(ok.status, 200);
  });

  test('stop sequences over the engine bounds are refused naming stop', async () => {
    for (const stop of ['x'.repeat(257), ['a', 'y'.repeat(300)], ['a', 'b', 'c', 'd', 'e']]) {
      const r = await post('/v1/chat/completions', chat({ stop }));
      assert.equal(r.status, 400);
      assert.ok(names(r.error.param, 'stop'), `${r.error.param} names stop`);
    }
    const ok = await post('/v1/chat/completions', chat({ stop: ['x'.repeat(256)] }));
    assert.equal(ok.status, 200);
  });
});

describe('plaintext does not outlive the request', () => {
  test('chunked OHTTP: every decrypted request chunk is wiped once read, served or refused', async () => {
    const limits = resolveLimits({ maxBodyBytes: 4096 });
    const runtime = createRuntime(limits);
    const begun = runtime.sessions.begin(Buffer.from(crypto.getRandomValues(new Uint8Array(16))).toString('base64url'), 'ab'.repeat(32));
    const session = begun.session;
    const deps: GatewayDeps = { sessions: runtime.sessions, inner: { fetch: (r, env) => inner.fetch(r, env) }, maxBodyBytes: limits.maxBodyBytes };
    // Watch the plaintext chunks the gateway reads, by identity, as transport hands them over.
    const seen: Uint8Array[] = [];
    const original = ohttp.decapsulateChunked;
    ohttp.decapsulateChunked = async (...args: Parameters<typeof original>) => {
      const d = await original(...args);
      const request = d.request.pipeThrough(new TransformStream<Uint8Array, Uint8Array>({ transform: (c, ctl) => (seen.push(c), ctl.enqueue(c)) }));
      return { ...d, request };
    };
    const send = async (content: Uint8Array, pieces: number) => {
      const e = encapsulateChunkedRequest(session.config);
      const bhttp = encodeRequest({ method: 'POST', scheme: 'https', authority: 'x', path: '/v1/chat/completions', headers: [['content-type', 'application/json']], content });
      const step = Math.ceil(bhttp.length / pieces);
      const parts = [e.header];
      for (let i = 0; i < bhttp.length; i += step) parts.push(e.sealChunk(bhttp.subarray(i, i + step)));
      parts.push(e.sealFinal());
      const body = new ReadableStream<Uint8Array>({ start: (c) => (parts.forEach((p) => c.enqueue(p)), c.close()) });
      const ac = new AbortController();
      return handleChunked(deps, session, body, { signal: ac.signal, admit: () => true });
    };
    try {
      const json = new TextEncoder().encode(JSON.stringify({ ...chat({}), messages: [{ role: 'user', content: 'a secret prompt' }] }));
      const served = await send(json, 4);
      assert.equal(served.ok, true);
      assert.ok(seen.length >= 4, 'the request arrived in several chunks');
      assert.ok(seen.some((c) => c.byteLength > 0));
      for (const c of seen) assert.ok(c.every((b) => b === 0), 'a decrypted chunk kept its plaintext');

      seen.length = 0;
      const refused = await send(new Uint8Array(6000).fill(0x61), 4); // over maxBodyBytes
      assert.deepEqual(refused, { ok: false, problem: 'too_large' });
      assert.ok(seen.length > 0);
      for (const c of seen) assert.ok(c.every((b) => b === 0), 'a refused request kept its plaintext');
    } finally {
      ohttp.decapsulateChunked = original;
      runtime.sessions.close();
    }
  });
});

describe('inner request bodies', () => {
  test('the inner app wipes the body chunks it read, and answers from them', async () => {
    const json = new TextEncoder().encode(JSON.stringify(chat({ messages: [{ role: 'user', content: 'a secret prompt' }] })));
    const chunks = [json.slice(0, 10), json.slice(10, 40), json.slice(40)];
    const body = new ReadableStream<Uint8Array>({ start: (c) => (chunks.forEach((x) => c.enqueue(x)), c.close()) });
    const res = await inner.fetch(new Request('http://inner.invalid/v1/chat/completions', {
      method: 'POST', headers: { 'content-type': 'application/json' }, body, duplex: 'half',
    } as RequestInit));
    assert.equal(res.status, 200);
    assert.equal(((await res.json()) as { object: string }).object, 'chat.completion');
    for (const c of chunks) assert.ok(c.every((b) => b === 0), 'a body chunk kept the plaintext');
  });

  test('the bridged request keeps its body when the gateway wipes the decoded content at once', async () => {
    const content = new TextEncoder().encode('{"model":"stories260K"}');
    const req = toInnerRequest(
      { method: 'POST', scheme: 'https', authority: 'x', path: '/v1/completions', headers: [['content-type', 'application/json']], content, trailers: [] } as Parameters<typeof toInnerRequest>[0],
      new AbortController().signal,
    )!;
    content.fill(0);
    assert.equal(await req.text(), '{"model":"stories260K"}');
  });
});

describe('per-request secrets do not outlive the request', () => {
  const destroyed = (c: Context) => {
    try {
      c.export(new Uint8Array(0), 32);
      return false;
    } catch (e) {
      return (e as { code?: string }).code === 'state';
    }
  };

  test('the HPKE context and the response key are wiped: served, refused, or cancelled mid-stream', async () => {
    const limits = resolveLimits({ maxBodyBytes: 16 * 1024 });
    const runtime = createRuntime(limits);
    const begun = runtime.sessions.begin(Buffer.from(crypto.getRandomValues(new Uint8Array(16))).toString('base64url'), 'ab'.repeat(32));
    const session = begun.session;
    const deps: GatewayDeps = { sessions: runtime.sessions, inner: { fetch: (r, env) => inner.fetch(r, env) }, maxBodyBytes: limits.maxBodyBytes };
    const contexts: Context[] = [];
    const sealers: Array<{ readonly finished: boolean }> = [];
    const plain0 = ohttp.decapsulate;
    const chunked0 = ohttp.decapsulateChunked;
    ohttp.decapsulate = async (...args: Parameters<typeof plain0>) => {
      const d = await plain0(...args);
      contexts.push(d.context);
      return d;
    };
    ohttp.decapsulateChunked = async (...args: Parameters<typeof chunked0>) => {
      const d = await chunked0(...args);
      contexts.push(d.context);
      sealers.push(d.responseSealer);
      return d;
    };
    const json = (extra: Record<string, unknown>) =>
      encodeRequest({ method: 'POST', scheme: 'https', authority: 'x', path: '/v1/completions', headers: [['content-type', 'application/json']],
        content: new TextEncoder().encode(JSON.stringify({ model: 'stories260K', prompt: 'Once', max_tokens: 100, temperature: 0, ...extra })) });
    const gr = (admit = true) => ({ signal: new AbortController().signal, admit: () => admit });
    const plain = (admit = true) => handlePlain(deps, session, new Blob([encapsulateRequest(session.config, json({})).bytes as Uint8Array<ArrayBuffer>]).stream(), gr(admit));
    const chunked = (extra: Record<string, unknown>, admit = true) => {
      const e = encapsulateChunkedRequest(session.config);
      return handleChunked(deps, session, new Blob([e.header as Uint8Array<ArrayBuffer>, e.sealFinal(json(extra)) as Uint8Array<ArrayBuffer>]).stream(), gr(admit));
    };
    const expectWiped = (what: string) => {
      assert.equal(contexts.length, 1, what);
      assert.ok(destroyed(contexts[0]!), `${what}: the request's HPKE context is still usable`);
      for (const s of sealers) assert.ok(s.finished, `${what}: the response key is still live`);
      contexts.length = 0;
      sealers.length = 0;
    };
    try {
      assert.equal((await plain()).ok, true);
      expectWiped('plain, served');
      assert.deepEqual(await plain(false), { ok: false, problem: 'overloaded' });
      expectWiped('plain, overloaded');

      assert.equal((await chunked({})).ok, true);
      expectWiped('chunked, served');
      assert.deepEqual(await chunked({}, false), { ok: false, problem: 'overloaded' });
      expectWiped('chunked, overloaded');

      const streamed = await chunked({ stream: true });
      assert.ok(streamed.ok && streamed.body instanceof ReadableStream);
      const reader = streamed.body.getReader();
      await reader.read(); // response header and head
      await reader.read(); // one event
      await reader.cancel(); // the client leaves
      expectWiped('chunked, stream cancelled');
    } finally {
      ohttp.decapsulate = plain0;
      ohttp.decapsulateChunked = chunked0;
      runtime.sessions.close();
    }
  });
});

describe('slow clients', () => {
  /** Writes `head` and stalls; resolves with how long the server kept the socket and its first line. */
  function stall(port: number, head: string): Promise<{ ms: number; line: string; out: string }> {
    return new Promise((resolve) => {
      const t0 = Date.now();
      const s = net.connect(port, '127.0.0.1');
      let out = '';
      s.on('data', (d) => (out += d.toString('latin1')));
      s.on('error', () => {});
      s.on('close', () => resolve({ ms: Date.now() - t0, line: out.split('\r\n')[0]!, out }));
      s.write(head);
      // Bound the test: a socket still open here failed it anyway.
      setTimeout(() => s.destroy(), 5000).unref();
    });
  }

  /** The problem document of a raw HTTP response (asserting its media type). */
  function problemOf(raw: string): { status: number } {
    const [head, body] = raw.split('\r\n\r\n');
    assert.match(head!, /\r\ncontent-type: application\/problem\+json\r\n/i, head);
    return JSON.parse(body!);
  }

  test('requests Node cannot parse get a problem document, echoing nothing, and the server stays up', async () => {
    const provider = await createProvider('simulated', { simulation: { modelDigest: engine.model.digest } });
    const s = await startServer({ engine, provider, limits: resolveLimits({}), host: '127.0.0.1', port: 0 });
    const MARK = 'zz-marker-zz';
    try {
      const cases: Array<[string, number]> = [
        [`POST /v1/sessions/AAAAAAAAAAAAAAAAAAAAAA/ohttp HTTP/1.1\r\nHost: x\r\nContent-Length: 5\r\nTransfer-Encoding: chunked\r\n\r\n0\r\n\r\n${MARK}`, 400],
        [`POST /v1/sessions/AAAAAAAAAAAAAAAAAAAAAA/ohttp HTTP/1.1\r\nHost: x\r\nContent-Length: 5\r\nContent-Length: 6\r\n\r\n${MARK}`, 400],
        [`${MARK} /healthz HTTP/1.1\r\nHost: x\r\n\r\n`, 400],
        [`GET /healthz HTTP/1.1\r\nHost: x\r\nX-${MARK}: a\x01b\r\n\r\n`, 400],
        [`POST /v1/sessions/AAAAAAAAAAAAAAAAAAAAAA/ohttp HTTP/1.1\r\nHost: x\r\nContent-Length: 99999999999999999999\r\n\r\n${MARK}`, 400],
        [`GET /healthz HTTP/1.1\r\nHost: x\r\nX-Big: ${MARK}${'a'.repeat(20_000)}\r\n\r\n`, 431],
      ];
      for (const [req, status] of cases) {
        const r = await stall(s.port, req);
        assert.ok(r.line.startsWith(`HTTP/1.1 ${status} `), r.line);
        assert.equal(problemOf(r.out).status, status);
        assert.ok(!r.out.includes(MARK));
      }
      assert.equal((await fetch(`${s.url}/healthz`)).status, 200);
    } finally {
      await s.close();
      provider.close?.();
    }
  });

  test('stalled headers and bodies are cut at the configured timeouts, not Node\'s 30 s check', async () => {
    const provider = await createProvider('simulated', { simulation: { modelDigest: engine.model.digest } });
    const s = await startServer({ engine, provider, limits: resolveLimits({ requestTimeoutMs: 400, headersTimeoutMs: 200 }), host: '127.0.0.1', port: 0 });
    try {
      // A live session, so that the stalled bodies are really being read.
      const { sid } = await attest(s.url);
      const results = await Promise.all([
        stall(s.port, `POST /v1/sessions/${sid}/ohttp HTTP/1.1\r\nHost: x\r\n`),
        stall(s.port, `POST /v1/sessions/${sid}/ohttp HTTP/1.1\r\nHost: x\r\nContent-Type: message/ohttp-req\r\nContent-Length: 100\r\n\r\nabc`),
        stall(s.port, `POST /v1/sessions/${sid}/ohttp HTTP/1.1\r\nHost: x\r\nContent-Type: message/ohttp-chunked-req\r\nTransfer-Encoding: chunked\r\n\r\n3\r\n\x00\x00\x20\r\n`),
      ]);
      for (const r of results) {
        assert.ok(r.ms < 2000, `socket held ${r.ms} ms`);
        assert.equal(r.line, 'HTTP/1.1 408 Request Timeout');
        assert.equal(problemOf(r.out).status, 408);
      }
      assert.equal(s.runtime.tracker.size, 0);
      assert.equal((await fetch(`${s.url}/healthz`)).status, 200);
    } finally {
      await s.close();
      provider.close?.();
    }
  });
});

describe('a stranger cannot spend another client\'s session', () => {
  test('replay guard: unauthenticated (provisional) records never count against the bound until confirmed', () => {
    const r = new ReplayGuard(2);
    const enc = (n: number) => new Uint8Array(32).fill(n);
    for (let i = 1; i <= 5; i++) assert.equal(r.record(enc(i), { provisional: true }), 'fresh');
    assert.equal(r.record(enc(3), { provisional: true }), 'replay', 'a pending copy is still a replay');
    assert.equal(r.record(enc(3)), 'replay');
    assert.equal(r.record(enc(10)), 'fresh', 'five pending headers leave the bound of 2 untouched');
    assert.equal(r.confirm(enc(1)), 'fresh');
    assert.equal(r.confirm(enc(2)), 'full', 'two counted: no room');
    assert.equal(r.record(enc(11)), 'full');
    r.unrecord(enc(2));
    assert.equal(r.has(enc(2)), false);
    assert.equal(r.confirm(enc(2)), 'fresh', 'a record that is gone adds nothing');
    assert.equal(r.has(enc(2)), false);
    r.clear();
    assert.equal(r.confirm(enc(4)), 'fresh');
    assert.equal(r.size, 0, 'confirming after the session ended adds nothing');
  });

  test('stalled chunked headers under a victim\'s key id do not use up its request limit', async () => {
    const provider = await createProvider('simulated', { simulation: { modelDigest: engine.model.digest } });
    const s = await startServer({ engine, provider, limits: resolveLimits({ maxRequestsPerSession: 3 }), host: '127.0.0.1', port: 0 });
    const sockets: net.Socket[] = [];
    try {
      const victim = await attest(s.url);
      // The attacker knows the session id (it is in the path) and the key id: headers with fresh random encs, then silence.
      for (let i = 0; i < 5; i++) {
        const sock = net.connect(s.port, '127.0.0.1');
        sock.on('error', () => {});
        const head = Buffer.concat([Buffer.from([victim.config.keyId, 0, 0x20, 0, 1, 0, 1]), crypto.getRandomValues(new Uint8Array(32))]);
        sock.write(`POST /v1/sessions/${victim.sid}/ohttp HTTP/1.1\r\nHost: x\r\nContent-Type: message/ohttp-chunked-req\r\nContent-Length: 500\r\n\r\n`);
        sock.write(head);
        sockets.push(sock);
      }
      const t0 = Date.now();
      const replay = s.runtime.sessions.get(victim.sid)!.replay;
      while (replay.size < 5 && Date.now() - t0 < 2000) await new Promise((r) => setTimeout(r, 10));
      assert.equal(replay.size, 5, 'the attacker\'s headers are recorded (a copy would be refused)');
      // The victim still has its whole allowance, over both framings, and no more.
      const models = { method: 'GET' as const, path: '/v1/models' };
      assert.equal((await sendPlain(s.url, victim, models)).inner?.status, 200);
      assert.equal((await sendChunked(s.url, victim, models)).inner?.status, 200);
      assert.equal((await sendChunked(s.url, victim, models)).inner?.status, 200);
      assert.equal((await sendChunked(s.url, victim, models)).outer.status, 429);
      assert.equal((await sendPlain(s.url, victim, models)).outer.status, 429);
    } finally {
      for (const sock of sockets) sock.destroy();
      await s.close();
      provider.close?.();
    }
  });
});

// The local proxy end to end: the official `openai` package, unmodified, against
// `sealed proxy` in front of the real server (engine + simulated SEV-SNP), and the
// proxy's refusals: a server that does not verify, a non-loopback address, foreign
// Host headers and cross-site "simple" requests.
import { test, before, after } from 'node:test';
import assert from 'node:assert/strict';
import { request as httpRequest } from 'node:http';
import { mkdtempSync, writeFileSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import OpenAI from 'openai';
import { SealedClient } from '../client/sdk.js';
import { startProxy, type RunningProxy } from '../client/proxy.js';
import { runProxy } from '../cli/commands/proxy.js';
import { startRealServer, type RealServer } from './fixtures/client/server.js';

let server: RealServer;
let proxy: RunningProxy;
let openai: OpenAI;
let dir: string;

before(async () => {
  server = await startRealServer();
  const client = await SealedClient.connect(server.url, { allowSimulation: true, policy: { modelDigest: server.modelDigest } });
  proxy = await startProxy({ client, host: '127.0.0.1', port: 0 });
  openai = new OpenAI({ baseURL: `${proxy.url}/v1`, apiKey: 'not-used-by-the-proxy', maxRetries: 0, timeout: 30_000 });
  dir = mkdtempSync(join(tmpdir(), 'client-proxy-'));
});
after(async () => {
  await proxy?.close();
  await server?.close();
  if (dir) rmSync(dir, { recursive: true, force: true });
});

test('openai: models.list names the attested model', async () => {
  const ids: string[] = [];
  for await (const m of openai.models.list()) ids.push(m.id);
  assert.deepEqual(ids, [server.modelId]);
});

test('openai: chat.completions.create, plain', async () => {
  const sent = server.ohttpRequests();
  const r = await openai.chat.completions.create({ model: server.modelId, messages: [{ role: 'user', content: 'Once upon a time' }], max_tokens: 12, temperature: 0 });
  assert.equal(r.object, 'chat.completion');
  assert.equal(r.choices.length, 1);
  assert.equal(typeof r.choices[0].message.content, 'string');
  assert.ok(r.choices[0].message.content!.length > 0);
  assert.ok(r.usage && r.usage.completion_tokens > 0 && r.usage.completion_tokens <= 12);
  assert.equal(server.ohttpRequests(), sent + 1, 'exactly one encrypted request reached the server');
});

test('openai: chat.completions.create, streamed chunk by chunk', async () => {
  const stream = await openai.chat.completions.create({ model: server.modelId, messages: [{ role: 'user', content: 'Once upon a time' }], max_tokens: 16, temperature: 0, stream: true });
  let text = '';
  let chunks = 0;
  let finish: string | null = null;
  for await (const chunk of stream) {
    assert.equal(chunk.object, 'chat.completion.chunk');
    const d = chunk.choices[0]?.delta?.content;
    if (d) {
      text += d;
      chunks++;
    }
    finish = chunk.choices[0]?.finish_reason ?? finish;
  }
  assert.ok(chunks >= 2, `several content chunks (got ${chunks})`);
  assert.ok(text.length > 0);
  assert.ok(finish === 'length' || finish === 'stop', `finish_reason ${finish}`);
  // Greedy decoding: the streamed text equals the plain answer for the same request.
  const plain = await openai.chat.completions.create({ model: server.modelId, messages: [{ role: 'user', content: 'Once upon a time' }], max_tokens: 16, temperature: 0 });
  assert.equal(text, plain.choices[0].message.content);
});

test('openai: completions.create, plain and streamed', async () => {
  const r = await openai.completions.create({ model: server.modelId, prompt: 'Once upon a time', max_tokens: 10, temperature: 0 });
  assert.equal(r.object, 'text_completion');
  assert.ok(r.choices[0].text.length > 0);
  let streamed = '';
  for await (const c of await openai.completions.create({ model: server.modelId, prompt: 'Once upon a time', max_tokens: 10, temperature: 0, stream: true })) {
    streamed += c.choices[0]?.text ?? '';
  }
  assert.equal(streamed, r.choices[0].text);
});

test('openai: a malformed request is a 4xx APIError, relayed from inside the encryption', async () => {
  const sent = server.ohttpRequests();
  await assert.rejects(
    openai.chat.completions.create({ model: server.modelId, messages: 'not a list' as never }),
    (e: unknown) => e instanceof OpenAI.APIError && e.status === 400,
  );
  await assert.rejects(
    openai.chat.completions.create({ model: 'no-such-model', messages: [{ role: 'user', content: 'x' }] }),
    (e: unknown) => e instanceof OpenAI.APIError && e.status === 404,
  );
  assert.equal(server.ohttpRequests(), sent + 2, 'the server answered both, encrypted');
  // Not JSON at all: the proxy answers 400 itself and sends nothing.
  const res = await fetch(`${proxy.url}/v1/chat/completions`, { method: 'POST', headers: { 'content-type': 'application/json' }, body: '{"messages": [' });
  assert.equal(res.status, 400);
  assert.equal(((await res.json()) as { error: { type: string } }).error.type, 'invalid_request_error');
  assert.equal(server.ohttpRequests(), sent + 2);
});

test('the proxy shows the verified attestation at / and answers 404 elsewhere', async () => {
  const res = await fetch(`${proxy.url}/`);
  assert.equal(res.status, 200);
  assert.match(res.headers.get('content-security-policy') ?? '', /default-src 'none'/);
  const html = await res.text();
  assert.ok(html.includes(server.measurement), 'measurement shown');
  assert.ok(html.includes(server.modelDigest), 'model digest shown');
  assert.match(html, /Simulated/);
  assert.match(html, /checks passed/);
  const missing = await fetch(`${proxy.url}/v1/embeddings`, { method: 'POST' });
  assert.equal(missing.status, 404);
});

function rawRequest(url: string, host: string, method = 'GET', headers: Record<string, string> = {}, body = ''): Promise<number> {
  return new Promise((resolve, reject) => {
    const req = httpRequest(url, { method, headers: { host, ...headers } }, (res) => {
      res.resume();
      resolve(res.statusCode ?? 0);
    });
    req.on('error', reject);
    req.end(body);
  });
}

test('the proxy refuses foreign Host headers (DNS rebinding) and non-JSON POSTs (cross-site forms)', async () => {
  const sent = server.ohttpRequests();
  assert.equal(await rawRequest(`${proxy.url}/v1/models`, 'evil.example:80'), 421);
  assert.equal(await rawRequest(`${proxy.url}/v1/models`, `localhost:${proxy.port}`), 200);
  assert.equal(await rawRequest(`${proxy.url}/v1/chat/completions`, `127.0.0.1:${proxy.port}`, 'POST', { 'content-type': 'text/plain' }, '{"messages":[]}'), 415);
  assert.equal(server.ohttpRequests(), sent + 1, 'only the allowed /v1/models was forwarded');
});

test('a non-loopback listen address is refused unless forced', async () => {
  const client = await SealedClient.connect(server.url, { allowSimulation: true });
  await assert.rejects(startProxy({ client, host: '0.0.0.0', port: 0 }), { code: 'bad_options' });
  const err: string[] = [];
  const code = await runProxy(['--url', server.url, '--listen', '0.0.0.0:0', '--allow-simulation'], { stdout: { write: () => true }, stderr: { write: (s: string) => err.push(s) } });
  assert.equal(code, 2);
  assert.match(err.join(''), /refusing to listen on non-loopback address 0\.0\.0\.0/);
});

async function proxyRefuses(args: string[], expect: RegExp): Promise<void> {
  const sent = server.ohttpRequests();
  const err: string[] = [];
  let listened = false;
  const code = await runProxy(['--url', server.url, '--listen', '127.0.0.1:0', ...args], {
    stdout: { write: () => true },
    stderr: { write: (s: string) => err.push(s) },
    signal: AbortSignal.timeout(5000),
    onListening: () => { listened = true; },
  });
  assert.equal(code, 10, err.join(''));
  assert.match(err.join(''), expect);
  assert.equal(listened, false, 'nothing listens for a rejected server');
  assert.equal(server.ohttpRequests(), sent, 'nothing was sent to the server');
}

test('sealed proxy refuses a simulated server without --allow-simulation', async () => {
  await proxyRefuses([], /^rejected: simulation_not_allowed: /m);
});

test('sealed proxy refuses a wrong measurement or model digest before listening', async () => {
  const policy = join(dir, 'wrong-measurement.json');
  writeFileSync(policy, JSON.stringify({ measurement: 'ab'.repeat(48) }));
  await proxyRefuses(['--allow-simulation', '--policy', policy], /^rejected: sev_measurement_mismatch: /m);
  writeFileSync(policy, JSON.stringify({ modelDigest: 'ab'.repeat(32) }));
  await proxyRefuses(['--allow-simulation', '--policy', policy], /^rejected: model_digest_mismatch: /m);
});

test('sealed proxy with a matching policy listens, serves, and stops on its signal', async () => {
  const policy = join(dir, 'right.json');
  writeFileSync(policy, JSON.stringify({ measurement: server.measurement, modelDigest: server.modelDigest, platforms: ['sev-snp'] }));
  const stop = new AbortController();
  const err: string[] = [];
  let models: unknown;
  const code = await runProxy(['--url', server.url, '--listen', '127.0.0.1:0', '--allow-simulation', '--policy', policy], {
    stdout: { write: () => true },
    stderr: { write: (s: string) => err.push(s) },
    signal: stop.signal,
    onListening: (p) => {
      void fetch(`${p.url}/v1/models`).then((r) => r.json()).then((j) => { models = j; }).finally(() => stop.abort());
    },
  });
  assert.equal(code, 0, err.join(''));
  assert.match(err.join(''), /verified http:\/\/127\.0\.0\.1:\d+: sev-snp \(SIMULATED/);
  assert.match(err.join(''), /pinned measurement, modelDigest, platforms/);
  assert.deepEqual((models as { data: { id: string }[] }).data.map((m) => m.id), [server.modelId]);
});

test('through the proxy, a cut-off stream makes the OpenAI client raise instead of ending short', async () => {
  const { startGateway, WORDS } = await import('./fixtures/client/gateway.js');
  const gw = await startGateway();
  const p = await startProxy({ client: await SealedClient.connect(gw.url, { allowSimulation: true }), host: '127.0.0.1', port: 0 });
  try {
    const oa = new OpenAI({ baseURL: `${p.url}/v1`, apiKey: 'x', maxRetries: 0 });
    let text = '';
    for await (const c of await oa.chat.completions.create({ model: 'fixture-model', messages: [{ role: 'user', content: 'hi' }], stream: true })) {
      text += c.choices[0]?.delta?.content ?? '';
    }
    assert.equal(text, WORDS.join(''), 'a whole stream passes');
    gw.truncateNextStreamAfter = 3;
    text = '';
    await assert.rejects(async () => {
      for await (const c of await oa.chat.completions.create({ model: 'fixture-model', messages: [{ role: 'user', content: 'hi' }], stream: true })) {
        text += c.choices[0]?.delta?.content ?? '';
      }
    });
    // Whatever arrived before the abort is a strict prefix; the client was told it is incomplete.
    assert.ok(WORDS.slice(0, 3).join('').startsWith(text), `prefix of the cut stream: ${JSON.stringify(text)}`);
  } finally {
    await p.close();
    await gw.close();
  }
});

test('when re-attestation fails verification the proxy answers 502 and sends the request nowhere', async () => {
  const { startGateway } = await import('./fixtures/client/gateway.js');
  const gw = await startGateway();
  const p = await startProxy({ client: await SealedClient.connect(gw.url, { allowSimulation: true }), host: '127.0.0.1', port: 0 });
  try {
    gw.dropKeys();
    gw.tamperNextEvidence = (e) => { e.model.digest = 'cd'.repeat(32); };
    const before = gw.inner.length;
    const res = await fetch(`${p.url}/v1/chat/completions`, { method: 'POST', headers: { 'content-type': 'application/json' }, body: JSON.stringify({ messages: [{ role: 'user', content: 'hi' }] }) });
    assert.equal(res.status, 502);
    const body = (await res.json()) as { error: { type: string; code: string } };
    assert.equal(body.error.type, 'attestation_error');
    assert.equal(body.error.code, 'binding_mismatch');
    assert.equal(gw.inner.length, before, 'no request was decrypted by the server');
    // The page routes exist only when a page is configured.
    assert.equal((await fetch(`${p.url}/chat`)).status, 404);
  } finally {
    await p.close();
    await gw.close();
  }
});

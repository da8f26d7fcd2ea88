// The access log says what the client got: a 408 answered by Node's clientError path is logged as
// 408 (also when the app was reading that request's body), and a stream the client abandoned is
// marked aborted. Lines stay content-free.
import assert from 'node:assert/strict';
import { connect } from 'node:net';
import { after, before, test } from 'node:test';
import { createProvider, type EvidenceProvider } from '../enclave/providers/index.js';
import { Engine } from '../engine/index.js';
import { startServer, type RunningServer } from '../server/lifecycle.js';
import { resolveLimits } from '../server/limits.js';
import { createLogger } from '../server/log.js';
import { attest, bhttpRequest, sendChunked, sessionUrl } from './fixtures/server/client.js';
import { encapsulateChunkedRequest } from '../transport/chunked-ohttp.js';

const MODEL_DIR = new URL('../models/stories260K', import.meta.url).pathname;
const lines: string[] = [];
let engine: Engine;
let provider: EvidenceProvider;
let server: RunningServer;

before(async () => {
  engine = await Engine.create({ modelDir: MODEL_DIR, threads: 1 });
  provider = await createProvider('simulated', { simulation: { modelDigest: engine.model.digest } });
  server = await startServer({
    engine,
    provider,
    limits: resolveLimits({ requestTimeoutMs: 600, headersTimeoutMs: 300 }),
    host: '127.0.0.1',
    port: 0,
    logger: createLogger((line) => lines.push(line)),
  });
});

after(async () => {
  await server.close();
  provider.close?.();
  await engine.close();
});

/** Sends `bytes` on a fresh connection and returns everything received until the server closes it. */
function stall(bytes: string): Promise<string> {
  const { hostname, port } = new URL(server.url);
  return new Promise((resolve, reject) => {
    const s = connect({ host: hostname, port: Number(port) }, () => s.write(bytes));
    let data = '';
    s.setEncoding('latin1');
    s.on('data', (d: string) => (data += d));
    s.on('error', reject);
    s.on('close', () => resolve(data));
  });
}

async function lineMatching(re: RegExp, ms = 3000): Promise<string> {
  const end = Date.now() + ms;
  for (;;) {
    const l = lines.find((x) => re.test(x));
    if (l) return l;
    if (Date.now() > end) throw new Error(`no log line matching ${re}: ${lines.join('\n')}`);
    await new Promise((r) => setTimeout(r, 20));
  }
}

test('a body that stops arriving: the client gets 408 and the log says 408, not what the app saw', async () => {
  const a = await attest(server.url);
  const secret = 'SECRET-BODY-BYTES';
  const got = await stall(
    `POST /v1/sessions/${a.sid}/ohttp HTTP/1.1\r\nhost: x\r\ncontent-type: message/ohttp-req\r\ncontent-length: 5000\r\n\r\n${secret}`,
  );
  assert.match(got, /^HTTP\/1\.1 408 /);
  const line = await lineMatching(/ POST \/v1\/sessions\/\{sid\}\/ohttp /);
  assert.match(line, / POST \/v1\/sessions\/\{sid\}\/ohttp 408 /);
  assert.equal(Number(/out=(\d+)/.exec(line)![1]), Buffer.byteLength(got), 'out= is what the client received');
  assert.ok(!line.includes(a.sid) && !line.includes(secret), 'no session id, no content');
  assert.equal(server.runtime.tracker.size, 0);
  assert.equal(server.runtime.budget.used, 0);
});

test('headers that never complete: 408 logged with no method or route (none was received)', async () => {
  const got = await stall('GET /healthz HTTP/1.1\r\nhost: x\r\nx-slow: ');
  assert.match(got, /^HTTP\/1\.1 408 /);
  const line = await lineMatching(/ - - 408 /);
  assert.match(line, /^\S+ - - 408 in=0 out=\d+ ms=0\.0$/);
  assert.equal(Number(/out=(\d+)/.exec(line)![1]), Buffer.byteLength(got), 'out= is what the client received');
});

test('a stream the client abandons is logged as aborted', async () => {
  const a = await attest(server.url);
  const json = { model: 'stories260K', messages: [{ role: 'user', content: 'Tell a long story' }], max_tokens: 400, temperature: 0, stream: true };
  await sendChunked(server.url, a, { method: 'POST', path: '/v1/chat/completions', json }, (_t, i) => i < 2);
  const line = await lineMatching(/ POST \/v1\/sessions\/\{sid\}\/ohttp 200 .* aborted$/);
  assert.ok(line);
  await new Promise((r) => setTimeout(r, 100));
  assert.equal(server.runtime.tracker.size, 0);
});

test('a completed stream is logged with the bytes that came in and went out, counted by the streams themselves', async () => {
  const a = await attest(server.url);
  const json = { model: 'stories260K', messages: [{ role: 'user', content: 'Once' }], max_tokens: 12, temperature: 0, stream: true };
  const e = encapsulateChunkedRequest(a.config);
  const sent = Buffer.concat([e.header, e.sealFinal(bhttpRequest({ method: 'POST', path: '/v1/chat/completions', json }))]);
  const before = lines.length;
  const res = await fetch(sessionUrl(server.url, a.sid, 'ohttp'), { method: 'POST', headers: { 'content-type': 'message/ohttp-chunked-req' }, body: sent });
  assert.equal(res.status, 200);
  const received = (await res.arrayBuffer()).byteLength;
  const line = await lineMatching(new RegExp(` POST /v1/sessions/\\{sid\\}/ohttp 200 in=${sent.length} `));
  assert.ok(lines.indexOf(line) >= before, 'this request\'s line');
  assert.equal(Number(/ in=(\d+)/.exec(line)![1]), sent.length, 'in= is the encapsulated request as sent');
  assert.equal(Number(/ out=(\d+)/.exec(line)![1]), received, 'out= is the sealed body the client received');
  assert.ok(!line.endsWith('aborted'), line);
});

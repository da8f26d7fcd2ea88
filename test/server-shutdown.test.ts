// SIGTERM with 12 requests in flight (6 streamed, 6 not), the server a child process: every one
// completes, or (grace too short) ends with a clear shutting-down error; none is lost to a socket
// error. Meanwhile the listener stays open: /readyz is 503 and new requests get 503 with
// Retry-After, not a refused connection.
import assert from 'node:assert/strict';
import { connect } from 'node:net';
import { test } from 'node:test';
import { createProvider } from '../enclave/providers/index.js';
import { Engine } from '../engine/index.js';
import { startServer } from '../server/lifecycle.js';
import { resolveLimits } from '../server/limits.js';
import { startChildServer, type ChildServer } from './fixtures/server/child.js';
import { attest, sendChunked, sendPlain, sseData, type Attested } from './fixtures/server/client.js';

const chat = (content: string, maxTokens: number, stream: boolean) => ({
  model: 'stories260K',
  messages: [{ role: 'user', content }],
  max_tokens: maxTokens,
  temperature: 0,
  stream,
});

type Outcome = { kind: 'streamed' | 'plain'; status: number; done: boolean; errorCode?: string };

/**
 * Starts 12 requests, the 6 non-streamed first; resolves `started` once all 6 streams have sent a
 * first chunk, by when every request has reached the server.
 */
function launch(base: string, sessions: Attested[], maxTokens: number) {
  let streaming = 0;
  let markStarted!: () => void;
  const started = new Promise<void>((r) => (markStarted = r));
  const streamed = async (a: Attested, i: number): Promise<Outcome> => {
    let first = true;
    const r = await sendChunked(base, a, { method: 'POST', path: '/v1/chat/completions', json: chat(`Story ${i}`, maxTokens, true) }, () => {
      if (first && ++streaming === 6) markStarted();
      first = false;
    });
    assert.equal(r.outer.status, 200, r.outerBody ?? '');
    if (r.inner!.status !== 200) {
      // Refused before its stream began: an OpenAI error body instead of events.
      return { kind: 'streamed', status: r.inner!.status, done: false, errorCode: errorCode(r.inner!.text) };
    }
    const events = sseData(r.inner!.text);
    const last = events.at(-1)!;
    if (last === '[DONE]') return { kind: 'streamed', status: 200, done: r.inner!.complete };
    return { kind: 'streamed', status: 200, done: false, errorCode: errorCode(last) };
  };
  const plain = async (a: Attested, i: number): Promise<Outcome> => {
    const r = await sendPlain(base, a, { method: 'POST', path: '/v1/chat/completions', json: chat(`Story ${i}`, maxTokens, false) });
    assert.equal(r.outer.status, 200, r.outerBody ?? '');
    if (r.inner!.status === 200) return { kind: 'plain', status: 200, done: true };
    return { kind: 'plain', status: r.inner!.status, done: false, errorCode: errorCode(r.inner!.text) };
  };
  const plains = sessions.slice(0, 6).map((a, i) => plain(a, i));
  const runs = new Promise<Array<Promise<Outcome>>>((resolve) =>
    setTimeout(() => resolve([...plains, ...sessions.slice(6).map((a, i) => streamed(a, i + 6))]), 100),
  ).then((all) => Promise.all(all));
  return { started, runs };
}

function errorCode(json: string): string {
  return (JSON.parse(json) as { error?: { code?: string } }).error?.code ?? 'none';
}

/**
 * While the server drains: /readyz and new requests answer 503 with Retry-After. Checks up to 5
 * times; once at least one round passed, a refused connection means the drain has ended.
 */
async function checkDraining(server: ChildServer, fresh: Attested): Promise<number> {
  // A signal is delivered asynchronously: a request that arrives before the child has handled it is
  // still served. Wait (briefly) for /readyz to say the drain began; everything after must be 503.
  const t0 = Date.now();
  for (;;) {
    const r = await fetch(`${server.base}/readyz`);
    await r.arrayBuffer();
    if (r.status === 503) break;
    assert.equal(r.status, 200);
    assert.ok(Date.now() - t0 < 2000, 'the drain did not begin within 2 s of SIGTERM');
    await new Promise((res) => setTimeout(res, 5));
  }
  let seen = 0;
  for (let i = 0; i < 5; i++) {
    try {
      const ready = await fetch(`${server.base}/readyz`);
      await ready.arrayBuffer();
      assert.equal(ready.status, 503);
      const att = await fetch(`${server.base}/v1/sessions/${'A'.repeat(22)}/attestation?nonce=${'00'.repeat(32)}`);
      assert.equal(att.status, 503);
      assert.ok(Number(att.headers.get('retry-after')) >= 1);
      await att.arrayBuffer();
      const r = await sendPlain(server.base, fresh, { method: 'POST', path: '/v1/chat/completions', json: chat('late', 4, false) });
      assert.equal(r.outer.status, 503);
      assert.ok(Number(r.outer.headers.get('retry-after')) >= 1);
      assert.match(r.outerBody!, /shutting down/);
      seen++;
    } catch (e) {
      if (seen > 0 && e instanceof TypeError) break; // fetch failed: the listener closed after draining
      throw e;
    }
  }
  return seen;
}

async function scenario(graceMs: number, maxTokens: number) {
  const server = await startChildServer([
    '--shutdown-grace-ms', String(graceMs),
    '--max-concurrent', '12',
    '--attestation-burst', '50',
  ]);
  try {
    const sessions = await Promise.all(Array.from({ length: 12 }, () => attest(server.base)));
    const fresh = await attest(server.base);
    const { started, runs } = launch(server.base, sessions, maxTokens);
    await started;
    const t0 = performance.now();
    server.child.kill('SIGTERM');
    const drainingChecks = await checkDraining(server, fresh);
    const outcomes = await runs; // a socket error would reject here
    const code = await server.exited;
    return { outcomes, drainingChecks, code, seconds: (performance.now() - t0) / 1000, log: server.stderr() };
  } finally {
    server.kill();
  }
}

test('SIGTERM with 12 requests in flight and grace enough: every one completes; new requests get 503 meanwhile', { timeout: 120_000 }, async () => {
  const r = await scenario(30_000, 400);
  assert.equal(r.code, 0);
  assert.ok(r.drainingChecks >= 1, '503s seen while draining');
  assert.equal(r.outcomes.length, 12);
  for (const o of r.outcomes) assert.deepEqual([o.kind, o.status, o.done], [o.kind, 200, true]);
  assert.match(r.log, /SIGTERM: shutting down/);
  assert.match(r.log, /stopped; session keys wiped/);
  process.stdout.write(`# grace 30 s: 12/12 completed; drained and exited in ${r.seconds.toFixed(1)} s\n`);
});

test('SIGTERM with a short grace: what cannot finish ends with a clear shutting-down error, never a cut connection', { timeout: 120_000 }, async () => {
  const r = await scenario(300, 500);
  assert.equal(r.code, 0);
  let completed = 0;
  for (const o of r.outcomes) {
    if (o.done) {
      completed++;
      continue;
    }
    if (o.kind === 'streamed' && o.status === 200) assert.equal(o.errorCode, 'shutting_down', 'a cut stream says why, without [DONE]');
    else assert.deepEqual([o.status, o.errorCode], [503, 'shutting_down']);
  }
  assert.ok(completed < 12, 'the grace was too short for some');
  process.stdout.write(`# grace 0.3 s: ${completed}/12 completed, ${12 - completed} ended with shutting_down\n`);
});

test('while draining, a new connection gets a 503 that closes it; the request in flight is still answered', { timeout: 60_000 }, async () => {
  const engine = await Engine.create({ modelDir: new URL('../models/stories260K', import.meta.url).pathname, threads: 1 });
  const provider = await createProvider('simulated', { simulation: { modelDigest: engine.model.digest } });
  const server = await startServer({ engine, provider, limits: resolveLimits({ shutdownGraceMs: 20_000 }), host: '127.0.0.1', port: 0 });
  const { port } = new URL(server.url);
  const open = (first: string) => {
    const sock = connect({ host: '127.0.0.1', port: Number(port) }, () => sock.write(first));
    let data = '';
    sock.setEncoding('latin1');
    sock.on('data', (d: string) => (data += d));
    const closed = new Promise<string>((resolve, reject) => {
      sock.on('error', reject);
      sock.on('close', () => resolve(data));
    });
    return { sock, closed, data: () => data };
  };
  try {
    const a = await attest(server.url);
    // A request still uploading its body: in flight, so the server keeps draining until it ends.
    const uploading = open(`POST /v1/sessions/${a.sid}/ohttp HTTP/1.1\r\nhost: x\r\ncontent-type: message/ohttp-req\r\ncontent-length: 64\r\n\r\n` + 'z'.repeat(10));
    while (server.runtime.tracker.size === 0) await new Promise((r) => setTimeout(r, 5));
    let closed = false;
    const closing = server.close().then(() => (closed = true));
    const raw = await open('GET /readyz HTTP/1.1\r\nhost: x\r\n\r\n').closed;
    assert.match(raw, /^HTTP\/1\.1 503 /);
    assert.match(raw, /\r\nretry-after: \d+\r\n/i);
    assert.match(raw, /\r\nconnection: close\r\n/i, 'the server closed the connection after answering');
    assert.equal(closed, false, 'still draining while a request is in flight');
    // The upload completes: garbage, so a problem (422: no such key id), written in full before
    // the server closes the connection.
    uploading.sock.write('z'.repeat(54));
    const answer = await uploading.closed;
    assert.match(answer, /^HTTP\/1\.1 422 /);
    const length = Number(/\r\ncontent-length: (\d+)\r\n/i.exec(answer)![1]);
    assert.equal(Buffer.byteLength(answer.slice(answer.indexOf('\r\n\r\n') + 4)), length, 'the whole body arrived');
    await closing;
  } finally {
    await server.close();
    provider.close?.();
    await engine.close();
  }
});

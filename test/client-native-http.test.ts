// The SDK's node:http transport (client/native-http.ts): what it must keep of fetch's behaviour
// (streamed bodies, bytes intact, failures as TypeError, aborts, cut connections as errors, never
// as a clean end), what it does differently on purpose (redirects answered, not followed), and
// what it hands to the platform's fetch.
import assert from 'node:assert/strict';
import http from 'node:http';
import https from 'node:https';
import type { AddressInfo } from 'node:net';
import { after, before, describe, test } from 'node:test';
import { createNodeFetch, nodeFetchIfNode } from '../client/native-http.js';
import { SealedClient } from '../client/sdk.js';

type Handler = (req: http.IncomingMessage, res: http.ServerResponse) => void;

describe('node:http transport', () => {
  let server: http.Server;
  let base: string;
  let handler: Handler = () => {};
  let connections = 0;
  const fallbackCalls: unknown[][] = [];
  const fallback = (async (...args: unknown[]) => {
    fallbackCalls.push(args);
    return new Response('from fallback', { status: 299 });
  }) as typeof fetch;
  const nodeFetch = createNodeFetch({ http, https }, fallback);

  before(async () => {
    server = http.createServer((req, res) => handler(req, res));
    server.on('connection', () => connections++);
    await new Promise<void>((r) => server.listen(0, '127.0.0.1', r));
    base = `http://127.0.0.1:${(server.address() as AddressInfo).port}`;
  });
  after(async () => {
    server.closeAllConnections();
    await new Promise<void>((r) => server.close(() => r()));
  });

  async function readAll(res: Response): Promise<string> {
    return Buffer.from(await res.arrayBuffer()).toString('utf8');
  }

  test('a POST arrives with its bytes and headers; status, headers and body come back', async () => {
    let got: { method?: string; type?: string; length?: string; body?: string } = {};
    handler = (req, res) => {
      const parts: Buffer[] = [];
      req.on('data', (d: Buffer) => parts.push(d));
      req.on('end', () => {
        got = { method: req.method, type: req.headers['content-type'], length: req.headers['content-length'], body: Buffer.concat(parts).toString('hex') };
        res.writeHead(201, { 'x-answer': 'yes', 'content-type': 'message/test' });
        res.end('done');
      });
    };
    const payload = Uint8Array.from([0, 1, 2, 250, 255]);
    const res = await nodeFetch(`${base}/p?q=1`, { method: 'POST', headers: { 'content-type': 'message/ohttp-chunked-req' }, body: payload });
    assert.equal(res.status, 201);
    assert.equal(res.headers.get('x-answer'), 'yes');
    assert.equal(res.headers.get('content-type'), 'message/test');
    assert.equal(await readAll(res), 'done');
    assert.deepEqual(got, { method: 'POST', type: 'message/ohttp-chunked-req', length: '5', body: '000102faff' });
  });

  test('a streamed body is readable piece by piece before the server has finished', async () => {
    let finish!: () => void;
    handler = (_req, res) => {
      res.writeHead(200, { 'content-type': 'text/event-stream' });
      res.write('first');
      finish = () => res.end('last');
    };
    const res = await nodeFetch(`${base}/s`);
    const reader = res.body!.getReader();
    const first = await reader.read();
    assert.equal(Buffer.from(first.value!).toString(), 'first', 'the first piece arrives while the response is still open');
    finish();
    let rest = '';
    for (;;) {
      const r = await reader.read();
      if (r.done) break;
      rest += Buffer.from(r.value).toString();
    }
    assert.equal(rest, 'last');
  });

  test('a connection cut mid-body is an error on the body, never a clean end', async () => {
    handler = (_req, res) => {
      res.writeHead(200, { 'content-type': 'text/event-stream' });
      res.write('partial');
      setTimeout(() => res.socket?.destroy(), 20);
    };
    const res = await nodeFetch(`${base}/cut`);
    const reader = res.body!.getReader();
    assert.equal(Buffer.from((await reader.read()).value!).toString(), 'partial');
    await assert.rejects(reader.read(), (e: unknown) => e instanceof TypeError);
  });

  test('an unreachable server rejects with TypeError("fetch failed") carrying the cause', async () => {
    const closed = http.createServer();
    await new Promise<void>((r) => closed.listen(0, '127.0.0.1', r));
    const port = (closed.address() as AddressInfo).port;
    await new Promise<void>((r) => closed.close(() => r()));
    await assert.rejects(nodeFetch(`http://127.0.0.1:${port}/`), (e: unknown) => e instanceof TypeError && e.message === 'fetch failed' && e.cause !== undefined);
  });

  test('abort before the answer rejects with the reason; abort while streaming errors the body and closes the connection', async () => {
    handler = () => {}; // never answers
    const ac = new AbortController();
    const pending = nodeFetch(`${base}/hang`, { signal: ac.signal });
    setTimeout(() => ac.abort(new Error('stop now')), 20);
    await assert.rejects(pending, /stop now/);
    const already = new AbortController();
    already.abort();
    await assert.rejects(nodeFetch(`${base}/hang`, { signal: already.signal }), (e: unknown) => (e as Error).name === 'AbortError');

    let serverSawClose!: Promise<void>;
    handler = (req, res) => {
      serverSawClose = new Promise((r) => res.on('close', () => r()));
      res.writeHead(200);
      res.write('x');
    };
    const ac2 = new AbortController();
    const res = await nodeFetch(`${base}/stream`, { signal: ac2.signal });
    const reader = res.body!.getReader();
    await reader.read();
    ac2.abort(new Error('user left'));
    await assert.rejects(reader.read(), /user left/);
    await serverSawClose;
  });

  test('cancelling the body closes the connection', async () => {
    let serverSawClose!: Promise<void>;
    handler = (_req, res) => {
      serverSawClose = new Promise((r) => res.on('close', () => r()));
      res.writeHead(200);
      res.write('x');
    };
    const res = await nodeFetch(`${base}/c`);
    await res.body!.cancel();
    await serverSawClose;
  });

  test('a redirect is answered as it is, not followed', async () => {
    let hits = 0;
    handler = (req, res) => {
      hits++;
      res.writeHead(307, { location: '/elsewhere' });
      res.end();
    };
    const res = await nodeFetch(`${base}/r`, { method: 'POST', body: new Uint8Array([1]) });
    assert.equal(res.status, 307);
    assert.equal(res.headers.get('location'), '/elsewhere');
    assert.equal(hits, 1, 'the POST went out once, to the server it was meant for');
  });

  test('keep-alive: sequential requests share one connection', async () => {
    const sockets = new Set<unknown>();
    handler = (req, res) => {
      sockets.add(req.socket);
      res.end('ok');
    };
    const before = connections;
    for (let i = 0; i < 5; i++) assert.equal(await readAll(await nodeFetch(`${base}/k`)), 'ok');
    assert.equal(sockets.size, 1, 'five requests, one socket');
    assert.ok(connections - before <= 1, 'at most one new connection (an earlier test may have left one open to reuse)');
  });

  test('204 and HEAD answers have no body', async () => {
    handler = (_req, res) => {
      res.writeHead(204);
      res.end();
    };
    assert.equal((await nodeFetch(`${base}/n`)).body, null);
    handler = (_req, res) => {
      res.writeHead(200, { 'content-length': '5' });
      res.end();
    };
    assert.equal((await nodeFetch(`${base}/h`, { method: 'HEAD' })).body, null);
  });

  test('requests it does not handle go to the platform fetch: streams, Request objects, other schemes, redirect options', async () => {
    fallbackCalls.length = 0;
    const stream = new ReadableStream({ start: (c) => c.close() });
    const cases: [RequestInfo | URL, RequestInit | undefined][] = [
      [`${base}/x`, { method: 'POST', body: stream, duplex: 'half' } as RequestInit],
      [new Request(`${base}/x`), undefined],
      ['data:text/plain,hi', undefined],
      [`${base}/x`, { redirect: 'manual' }],
      [`http://user:pw@127.0.0.1:1/`, undefined],
    ];
    for (const [input, init] of cases) assert.equal((await nodeFetch(input as string, init)).status, 299);
    assert.equal(fallbackCalls.length, cases.length);
  });

  test('in Node, the SDK sends over this transport unless the caller passes a fetch', async () => {
    assert.equal(typeof (await nodeFetchIfNode(fallback)), 'function');
    // undici's fetch adds sec-fetch-mode to every request; node:http adds nothing of the kind.
    const seen: (string | undefined)[] = [];
    handler = (req, res) => {
      seen.push(req.headers['sec-fetch-mode'] as string | undefined);
      res.writeHead(404, { 'content-type': 'text/plain' });
      res.end('no');
    };
    await assert.rejects(SealedClient.connect(base, { allowSimulation: true }));
    await assert.rejects(SealedClient.connect(base, { allowSimulation: true, fetch: globalThis.fetch }));
    assert.equal(seen.length, 2, 'one attestation request each');
    assert.equal(seen[0], undefined, 'the default went over node:http');
    assert.equal(seen[1], 'cors', "the caller's fetch was used as given");
  });
});

// Memory bounds that hold against a crowd: a connection cap (connection N+1 gets a 503 and is
// closed), one budget for request bytes buffered across all connections (a declared length is
// reserved before reading; a chunked body as it arrives; beyond it 503 with Retry-After), the
// default body limit from the model's context, and — with the server a child process measured
// from /proc — 1,500 slow 1 MiB uploads from 127.0.0.1 keep its RSS within a stated bound while
// /healthz answers in under 100 ms.
import assert from 'node:assert/strict';
import { connect, type Socket } from 'node:net';
import { describe, test } from 'node:test';
import { useSimulatedModel } from './fixtures/server/model.js';
import { ByteBudget, meterBody } from '../server/budget.js';
import { parseServeConfig } from '../server/config.js';
import { isServerError } from '../server/errors.js';
import { startServer, type RunningServer } from '../server/lifecycle.js';
import { bodyBytesForContext, resolveLimits, type Limits } from '../server/limits.js';
import { startChildServer } from './fixtures/server/child.js';
import { attest } from './fixtures/server/client.js';


/** A raw connection to `base` that collects what the server sends. */
function rawConnection(base: string): Promise<{ socket: Socket; received: () => string; closed: Promise<void> }> {
  const { hostname, port } = new URL(base);
  return new Promise((resolve, reject) => {
    const socket = connect({ host: hostname, port: Number(port) });
    let data = '';
    socket.setEncoding('latin1');
    socket.on('data', (d: string) => (data += d));
    socket.on('error', () => {});
    const closed = new Promise<void>((r) => socket.once('close', () => r()));
    socket.once('connect', () => resolve({ socket, received: () => data, closed }));
    socket.once('error', reject);
  });
}

async function until(cond: () => boolean, ms: number, what: string): Promise<void> {
  const end = Date.now() + ms;
  while (!cond()) {
    if (Date.now() > end) throw new Error(`timed out waiting for ${what}`);
    await new Promise((r) => setTimeout(r, 10));
  }
}

const ohttpHead = (base: string, sid: string, lengthHeader: string) =>
  `POST /v1/sessions/${sid}/ohttp HTTP/1.1\r\nhost: ${new URL(base).host}\r\ncontent-type: message/ohttp-req\r\n${lengthHeader}\r\n`;

describe('ByteBudget and meterBody', () => {
  const source = (chunks: number[]) =>
    new ReadableStream<Uint8Array>({
      start(c) {
        for (const n of chunks) c.enqueue(new Uint8Array(n));
        c.close();
      },
    });
  const drain = async (s: ReadableStream<Uint8Array>) => {
    let n = 0;
    for await (const chunk of s as unknown as AsyncIterable<Uint8Array>) n += chunk.byteLength;
    return n;
  };

  test('a declared length is reserved whole before reading, or refused; release gives it back once', async () => {
    const budget = new ByteBudget(1000);
    const a = meterBody(source([300, 300]), 600, budget)!;
    assert.equal(budget.used, 600);
    assert.equal(meterBody(source([500]), 500, budget), null, 'does not fit: refused before a byte is read');
    assert.equal(budget.used, 600, 'a refusal takes nothing');
    assert.equal(await drain(a.body!), 600);
    assert.equal(budget.used, 600, 'reading a declared body takes nothing more');
    a.release();
    a.release();
    assert.equal(budget.used, 0);
  });

  test('a body of unknown length takes each piece as it arrives; the piece that does not fit ends it', async () => {
    const budget = new ByteBudget(1000);
    const other = meterBody(null, 400, budget)!;
    const m = meterBody(source([200, 300, 200]), null, budget)!;
    await assert.rejects(drain(m.body!), (e) => isServerError(e, 'buffer_full'));
    assert.equal(m.overBudget, true);
    assert.equal(budget.used, 900, 'the pieces that fit are held until release');
    m.release();
    other.release();
    assert.equal(budget.used, 0);
  });

  test('the metered body reads its source only as it is read, stops it when a piece does not fit, and passes cancels and errors through', async () => {
    const tracked = (sizes: number[], failAt?: number) => {
      const log = { pulls: 0, cancelled: undefined as unknown };
      let i = 0;
      const stream = new ReadableStream<Uint8Array>(
        {
          pull(c) {
            log.pulls++;
            if (i === failAt) c.error(new Error('source broke'));
            else if (i < sizes.length) c.enqueue(new Uint8Array(sizes[i++]!));
            else c.close();
          },
          cancel(reason) {
            log.cancelled = reason;
          },
        },
        { highWaterMark: 0 },
      );
      return { stream, log };
    };
    const budget = new ByteBudget(1000);
    const seen: number[] = [];
    const a = tracked([100, 200, 300]);
    const m = meterBody(a.stream, null, budget, (n) => seen.push(n))!;
    assert.equal(a.log.pulls, 0, 'nothing read before the body is');
    const r = m.body!.getReader();
    assert.equal((await r.read()).value?.byteLength, 100);
    assert.ok(a.log.pulls <= 2, 'no read-ahead beyond what was asked');
    await r.cancel('client went away');
    assert.equal(a.log.cancelled, 'client went away', 'a cancel reaches the source');
    assert.deepEqual(seen, [100]);
    m.release();

    const b = tracked([600, 600]);
    const over = meterBody(b.stream, null, new ByteBudget(1000))!;
    await assert.rejects(drain(over.body!), (e) => isServerError(e, 'buffer_full'));
    assert.ok(isServerError(b.log.cancelled, 'buffer_full'), 'the source is stopped with the same error');

    const c = tracked([100], 1);
    await assert.rejects(drain(meterBody(c.stream, null, new ByteBudget(1000))!.body!), /source broke/);
  });
});

describe('in process', () => {
  const model = useSimulatedModel();

  async function withServer(overrides: Partial<Limits>, fn: (s: RunningServer) => Promise<void>): Promise<void> {
    const server = await startServer({ engine: model.engine, provider: model.provider, limits: resolveLimits(overrides), host: '127.0.0.1', port: 0 });
    try {
      await fn(server);
    } finally {
      await server.close();
    }
  }

  test('connection N+1 gets a 503 with Retry-After and is closed; a place frees when one closes', async () => {
    await withServer({ maxConnections: 3 }, async (server) => {
      const held = await Promise.all([0, 1, 2].map(() => rawConnection(server.url)));
      await until(() => server.connections.open === 3, 2000, 'three connections');
      const extra = await rawConnection(server.url);
      extra.socket.write(`GET /healthz HTTP/1.1\r\nhost: x\r\n\r\n`);
      await extra.closed;
      const text = extra.received();
      assert.match(text, /^HTTP\/1\.1 503 /);
      assert.match(text, /\r\nretry-after: 1\r\n/);
      assert.match(text, /\r\nconnection: close\r\n/);
      assert.match(text, /as many connections open as it may/);
      assert.equal(server.connections.refused, 1);
      held[0]!.socket.destroy();
      await until(() => server.connections.open === 2, 2000, 'a place to free');
      const res = await fetch(`${server.url}/healthz`);
      assert.equal(res.status, 200);
      await res.arrayBuffer();
      for (const h of held) h.socket.destroy();
    });
  });

  test('request bytes beyond --max-buffered-bytes get 503 with Retry-After before more is read; the budget returns', async () => {
    await withServer({ maxBufferedBytes: 64 * 1024, maxBodyBytes: 48 * 1024 }, async (server) => {
      const a = await attest(server.url);
      // Declared: 40 KiB is reserved before a byte of it is read...
      const first = await rawConnection(server.url);
      first.socket.write(ohttpHead(server.url, a.sid, 'content-length: 40000') + '\r\n' + 'x'.repeat(100));
      await until(() => server.runtime.budget.used === 40000, 2000, 'the reservation');
      // ...so a second 40 KiB does not fit: refused at once, its body never read.
      const second = await rawConnection(server.url);
      second.socket.write(ohttpHead(server.url, a.sid, 'content-length: 40000') + '\r\n');
      await until(() => second.received().includes('\r\n\r\n{'), 2000, 'the refusal');
      assert.match(second.received(), /^HTTP\/1\.1 503 /);
      assert.match(second.received(), /\r\nretry-after: 1\r\n/i);
      assert.match(second.received(), /as many request bytes as it may/);
      // Chunked: each piece is reserved as it arrives; the piece that does not fit ends it.
      const third = await rawConnection(server.url);
      third.socket.write(ohttpHead(server.url, a.sid, 'transfer-encoding: chunked') + '\r\n');
      for (let i = 0; i < 16 && !third.received().includes('HTTP/1.1'); i++) {
        third.socket.write(`1000\r\n${'y'.repeat(0x1000)}\r\n`);
        await new Promise((r) => setTimeout(r, 30));
      }
      await until(() => third.received().includes('\r\n\r\n{'), 2000, 'the chunked refusal');
      assert.match(third.received(), /^HTTP\/1\.1 503 /);
      assert.match(third.received(), /\r\nretry-after: 1\r\n/i);
      assert.ok(server.runtime.budget.used <= 64 * 1024);
      for (const c of [first, second, third]) c.socket.destroy();
      await until(() => server.runtime.budget.used === 0, 3000, 'every reservation to return');
      assert.equal(server.runtime.tracker.size, 0);
    });
  });

  test('the default --max-body-bytes comes from the model context: context x 32 + 64 KiB', () => {
    assert.equal(bodyBytesForContext(512), 512 * 32 + 65536);
    assert.equal(bodyBytesForContext(131072), 131072 * 32 + 65536);
    assert.equal(bodyBytesForContext(1e9), 64 * 1024 * 1024, 'within the schema bound');
    const implicit = parseServeConfig([], {});
    assert.equal(implicit !== 'help' && implicit.maxBodyBytesGiven, false);
    const given = parseServeConfig(['--max-body-bytes', '5000'], {});
    assert.ok(given !== 'help' && given.maxBodyBytesGiven && given.limits.maxBodyBytes === 5000);
    assert.throws(() => parseServeConfig(['--max-body-bytes', '200000', '--max-buffered-bytes', '100000'], {}), /--max-body-bytes: must not exceed --max-buffered-bytes/);
  });
});

describe('1,500 slow 1 MiB uploads against the server as a child process', () => {
  const CONNECTIONS = 1500;
  const BUFFERED = 32 * 1024 * 1024;
  const UPLOAD_SECONDS = 15;

  test('RSS stays within the bound and /healthz answers in under 100 ms throughout', { timeout: 180_000 }, async () => {
    const server = await startChildServer([
      '--max-connections', '2000',
      '--max-buffered-bytes', String(BUFFERED),
      '--max-body-bytes', String(1024 * 1024 + 4096),
      '--request-timeout-ms', '120000',
      '--session-unused-timeout', '600',
    ]);
    const sockets: Socket[] = [];
    try {
      const a = await attest(server.base);
      // Warm up the paths the crowd will take, then take the baseline.
      for (let i = 0; i < 3; i++) await (await fetch(`${server.base}/healthz`)).arrayBuffer();
      await new Promise((r) => setTimeout(r, 500));
      const rss0 = server.rss();
      let peak = rss0;
      let healthMax = 0;
      let healthCount = 0;
      let stop = false;
      const rssPoll = (async () => {
        while (!stop) {
          peak = Math.max(peak, server.rss());
          await new Promise((r) => setTimeout(r, 100));
        }
      })();
      const healthPoll = (async () => {
        while (!stop) {
          const t0 = performance.now();
          const res = await fetch(`${server.base}/healthz`);
          await res.arrayBuffer();
          assert.equal(res.status, 200);
          healthMax = Math.max(healthMax, performance.now() - t0);
          healthCount++;
          await new Promise((r) => setTimeout(r, 100));
        }
      })();

      const statuses = new Map<string, number>();
      let refusedWithRetryAfter = 0;
      const piece = Buffer.alloc(8192, 0x61);
      const t0 = Date.now();
      const uploads: Array<Promise<void>> = [];
      for (let i = 0; i < CONNECTIONS; i++) {
        const chunked = i % 2 === 1;
        uploads.push(
          (async () => {
            const c = await rawConnection(server.base);
            sockets.push(c.socket);
            c.socket.write(ohttpHead(server.base, a.sid, chunked ? 'transfer-encoding: chunked' : `content-length: ${1024 * 1024}`) + '\r\n');
            // A little, slowly: 8 KiB about every half second until the test ends or the server
            // answers (~240 KiB each over the run: without a budget the crowd would make the
            // server hold ~350 MiB).
            while (!stop && !c.socket.destroyed && !c.received().includes('\r\n\r\n')) {
              c.socket.write(chunked ? Buffer.concat([Buffer.from('2000\r\n'), piece, Buffer.from('\r\n')]) : piece);
              await new Promise((r) => setTimeout(r, 400 + Math.random() * 200));
            }
            const head = c.received();
            const status = /^HTTP\/1\.1 (\d{3})/.exec(head)?.[1] ?? (c.socket.destroyed ? 'closed' : 'pending');
            statuses.set(status, (statuses.get(status) ?? 0) + 1);
            if (status === '503' && /\r\nretry-after: \d+\r\n/i.test(head)) refusedWithRetryAfter++;
          })(),
        );
        // 300 new connections a second, so the crowd builds while being measured.
        if (i % 30 === 29) await new Promise((r) => setTimeout(r, 100));
      }
      while (Date.now() - t0 < UPLOAD_SECONDS * 1000) await new Promise((r) => setTimeout(r, 200));
      const rssLoaded = server.rss();
      stop = true;
      await Promise.all(uploads);
      for (const s of sockets) s.destroy();
      await Promise.all([rssPoll, healthPoll]);
      await new Promise((r) => setTimeout(r, 2000));
      const rssAfter = server.rss();

      const MiB = 1024 * 1024;
      // The bound: the budget itself, once more for the copies made while a body is opened and
      // parsed, and 40 KiB per connection (socket, HTTP parser, request and stream objects).
      const bound = 2 * BUFFERED + CONNECTIONS * 40 * 1024;
      const summary =
        `RSS idle ${(rss0 / MiB).toFixed(0)} MiB, peak ${(peak / MiB).toFixed(0)} MiB (+${((peak - rss0) / MiB).toFixed(0)} MiB, bound +${(bound / MiB).toFixed(0)} MiB), ` +
        `at 15 s ${(rssLoaded / MiB).toFixed(0)} MiB, after close ${(rssAfter / MiB).toFixed(0)} MiB; /healthz max ${healthMax.toFixed(1)} ms over ${healthCount}; ` +
        `outcomes ${JSON.stringify(Object.fromEntries(statuses))}, ${refusedWithRetryAfter} x 503 with Retry-After`;
      process.stdout.write(`# ${summary}\n`);
      assert.ok(peak - rss0 <= bound, summary);
      assert.ok(healthMax < 100, summary);
      assert.ok(healthCount >= 50, summary);
      assert.ok(refusedWithRetryAfter >= CONNECTIONS / 2, `most uploads are refused once the budget is spent: ${summary}`);
      assert.equal((statuses.get('503') ?? 0) + (statuses.get('pending') ?? 0), CONNECTIONS, summary);
    } finally {
      for (const s of sockets) s.destroy();
      server.kill();
    }
  });
});

// Fairness between sessions: the limiter serves waiting work round robin over sessions and caps
// what one session holds; on a live server, one session running 100 concurrent generations
// neither takes every place (the excess gets a sealed 429) nor delays other sessions behind its
// queue.
import assert from 'node:assert/strict';
import { describe, test } from 'node:test';
import { isServerError } from '../server/errors.js';
import { startServer } from '../server/lifecycle.js';
import { GenerationLimiter, type Permit } from '../server/limiter.js';
import { resolveLimits, type Limits } from '../server/limits.js';
import { startChildServer } from './fixtures/server/child.js';
import { useSimulatedModel } from './fixtures/server/model.js';
import { attest, sendChunked, sendPlain, sseData } from './fixtures/server/client.js';


describe('GenerationLimiter', () => {
  test('waiting work is served round robin over sessions, in order within one', async () => {
    const l = new GenerationLimiter({ concurrency: 1, maxQueue: 100, queueTimeoutMs: 10_000 });
    const order: string[] = [];
    const permits = new Map<string, Promise<Permit>>();
    const queue = (s: string, tag: string) =>
      permits.set(
        tag,
        l.acquire(undefined, s).then((p) => {
          order.push(tag);
          return p;
        }),
      );
    let current = await l.acquire(undefined, 'A');
    for (let i = 2; i <= 5; i++) queue('A', `A${i}`);
    queue('B', 'B1');
    queue('C', 'C1');
    assert.equal(l.queued, 6);
    for (let i = 0; i < 6; i++) {
      current.release();
      await new Promise((r) => setImmediate(r));
      assert.equal(order.length, i + 1, 'each release grants exactly one waiter');
      current = await permits.get(order.at(-1)!)!;
    }
    assert.deepEqual(order, ['A2', 'B1', 'C1', 'A3', 'A4', 'A5'], 'first come first served would give A2 A3 A4 A5 B1 C1');
    current.release();
    assert.equal(l.active, 0);
    assert.equal(l.queued, 0);
  });

  test('one session holds at most maxPerSession places, running and waiting together', async () => {
    const l = new GenerationLimiter({ concurrency: 1, maxQueue: 100, queueTimeoutMs: 10_000, maxPerSession: 2 });
    const running = await l.acquire(undefined, 'A');
    const ac = new AbortController();
    const waiting = l.acquire(ac.signal, 'A');
    await assert.rejects(l.acquire(undefined, 'A'), (e) => isServerError(e, 'session_busy'));
    assert.equal(l.heldBy('A'), 2);
    // Another session is not affected by A's share.
    const b = l.acquire(undefined, 'B');
    // A waiter that gives up frees its place at once.
    ac.abort(new Error('client left'));
    await assert.rejects(waiting, /client left/);
    assert.equal(l.heldBy('A'), 1);
    const again = l.acquire(undefined, 'A');
    running.release();
    (await b).release();
    (await again).release();
    assert.equal(l.heldBy('A'), 0);
    assert.equal(l.active, 0);
    assert.equal(l.queued, 0);
  });

  test('work without a session (the plaintext twin) is never capped', async () => {
    const l = new GenerationLimiter({ concurrency: 8, maxQueue: 0, queueTimeoutMs: 1000, maxPerSession: 1 });
    const permits = await Promise.all(Array.from({ length: 8 }, () => l.acquire()));
    await assert.rejects(l.acquire(), (e) => isServerError(e, 'overloaded'));
    for (const p of permits) p.release();
  });
});

describe('a session with 100 concurrent generations', () => {
  const model = useSimulatedModel();

  async function withServer(overrides: Partial<Limits>, fn: (base: string) => Promise<void>): Promise<void> {
    const limits = resolveLimits({ maxRequestsPerSession: 10_000, attestationBurst: 100, attestationRate: 100, ...overrides });
    const server = await startServer({ engine: model.engine, provider: model.provider, limits, host: '127.0.0.1', port: 0 });
    try {
      await fn(server.url);
    } finally {
      await server.close();
    }
  }

  const chat = (content: string, maxTokens: number) => ({
    model: 'stories260K',
    messages: [{ role: 'user', content }],
    max_tokens: maxTokens,
    temperature: 0,
    stream: true,
  });

  test('beyond --max-concurrent-per-session its requests get a sealed 429; other sessions complete', async () => {
    // The defaults: 16 generations at once, 4 per session.
    await withServer({}, async (base) => {
      const hog = await attest(base);
      const others = await Promise.all(Array.from({ length: 5 }, () => attest(base)));
      const hogRuns = Promise.all(
        Array.from({ length: 100 }, (_, i) =>
          sendChunked(base, hog, { method: 'POST', path: '/v1/chat/completions', json: chat(`hog ${i}`, 400) }),
        ),
      );
      // While the hog's burst is being answered, every other session gets its answer.
      await new Promise((r) => setTimeout(r, 50));
      const latencies = await Promise.all(
        others.map(async (a, i) => {
          const t0 = performance.now();
          const r = await sendPlain(base, a, { method: 'POST', path: '/v1/chat/completions', json: { ...chat(`other ${i}`, 32), stream: false } });
          assert.equal(r.outer.status, 200);
          assert.equal(r.inner!.status, 200, r.inner!.text);
          return performance.now() - t0;
        }),
      );
      const hogResults = await hogRuns;
      const statuses = hogResults.map((r) => (r.outer.status === 200 ? r.inner!.status : r.outer.status));
      const ok = statuses.filter((s) => s === 200).length;
      const limited = hogResults.filter((r) => r.inner?.status === 429);
      assert.ok(statuses.every((s) => s === 200 || s === 429), `only 200 or 429: ${statuses.join(',')}`);
      assert.ok(ok >= 4, `the hog keeps its share (${ok})`);
      assert.ok(limited.length >= 50, `most of the burst is refused (${limited.length} x 429)`);
      const err = JSON.parse(limited[0]!.inner!.text) as { error: { type: string; code: string } };
      assert.deepEqual([err.error.type, err.error.code], ['rate_limit_error', 'rate_limit_exceeded']);
      process.stdout.write(
        `# defaults (16 at once, 4 per session): hog 100 at once -> ${ok} x 200, ${limited.length} x 429; other sessions' latency ms: ${latencies.map((x) => x.toFixed(0)).join(' ')}\n`,
      );
    });
  });

  test('with room for all 100 queued, other sessions are served in turn, not behind the queue', async () => {
    await withServer({ maxConcurrentGenerations: 2, maxQueue: 200, maxConcurrentPerSession: 100, queueTimeoutMs: 120_000 }, async (base) => {
      const hog = await attest(base);
      const others = await Promise.all(Array.from({ length: 4 }, () => attest(base)));
      let hogFinished = 0;
      const t0 = performance.now();
      const hogRuns = Array.from({ length: 100 }, (_, i) =>
        sendChunked(base, hog, { method: 'POST', path: '/v1/chat/completions', json: chat(`Once upon a time ${i}`, 100) }).then((r) => {
          hogFinished++;
          return r;
        }),
      );
      // Let the hog's requests reach the queue first: first come first served would put the
      // other sessions behind all of them.
      await new Promise((r) => setTimeout(r, 1500));
      const queuedAhead = 100 - hogFinished;
      const otherRuns = others.map(async (a, i) => {
        const start = performance.now();
        const r = await sendChunked(base, a, { method: 'POST', path: '/v1/chat/completions', json: chat(`other ${i}`, 100) });
        return { r, ms: performance.now() - start, hogFinishedBefore: hogFinished };
      });
      const done = await Promise.all(otherRuns);
      const hogAll = await Promise.all(hogRuns);
      const hogSeconds = (performance.now() - t0) / 1000;
      for (const d of done) {
        assert.equal(d.r.inner!.status, 200);
        assert.equal(d.r.inner!.complete, true);
        assert.equal(sseData(d.r.inner!.text).at(-1), '[DONE]');
      }
      for (const h of hogAll) assert.equal(h.inner!.status, 200);
      assert.ok(queuedAhead >= 30, `enough of the hog's work was still waiting when the others came (${queuedAhead})`);
      // Round robin: each other session waits at most about one turn per session ahead of it,
      // so only a few of the hog's requests finish first, not the ~${queuedAhead} queued ahead.
      const worst = Math.max(...done.map((d) => d.hogFinishedBefore - (100 - queuedAhead)));
      assert.ok(worst <= 2 + 2 * others.length, `hog requests finished before another session's: ${worst} (of ${queuedAhead} waiting)`);
      process.stdout.write(
        `# round robin: ${queuedAhead} hog requests waiting; other sessions' latency ms: ${done.map((d) => d.ms.toFixed(0)).join(' ')}; ` +
          `at most ${worst} hog requests finished first; hog's 100 took ${hogSeconds.toFixed(1)} s\n`,
      );
    });
  });
});

test('a session keeping 100 generations in flight for seconds (server a child process): every other session completes', { timeout: 120_000 }, async () => {
  // Defaults except the session's request allowance, so the hog is not stopped by that instead.
  const server = await startChildServer(['--max-requests-per-session', '1000000', '--attestation-burst', '20']);
  try {
    const hog = await attest(server.base);
    const others = await Promise.all(Array.from({ length: 5 }, () => attest(server.base)));
    let stop = false;
    const hogStatuses = new Map<number, number>();
    const workers = Array.from({ length: 100 }, async (_, i) => {
      // Each worker resends at once when refused: 100 generations asked for at every moment.
      while (!stop) {
        const r = await sendChunked(server.base, hog, {
          method: 'POST',
          path: '/v1/chat/completions',
          json: { model: 'stories260K', messages: [{ role: 'user', content: `hog ${i}` }], max_tokens: 400, temperature: 0, stream: true },
        });
        const status = r.outer.status === 200 ? r.inner!.status : r.outer.status;
        hogStatuses.set(status, (hogStatuses.get(status) ?? 0) + 1);
      }
    });
    await new Promise((r) => setTimeout(r, 1000));
    const latencies: number[] = [];
    const t0 = Date.now();
    await Promise.all(
      others.map(async (a, i) => {
        while (Date.now() - t0 < 6000) {
          const start = performance.now();
          const r = await sendPlain(server.base, a, {
            method: 'POST',
            path: '/v1/chat/completions',
            json: { model: 'stories260K', messages: [{ role: 'user', content: `other ${i}` }], max_tokens: 32, temperature: 0 },
          });
          assert.equal(r.outer.status, 200, r.outerBody ?? '');
          assert.equal(r.inner!.status, 200, r.inner!.text);
          latencies.push(performance.now() - start);
        }
      }),
    );
    stop = true;
    await Promise.all(workers);
    assert.deepEqual([...hogStatuses.keys()].sort(), [200, 429], 'the hog gets its share and 429s, nothing else');
    assert.ok(latencies.length >= 10);
    latencies.sort((x, y) => x - y);
    const q = (p: number) => latencies[Math.min(latencies.length - 1, Math.floor(p * latencies.length))]!.toFixed(0);
    process.stdout.write(
      `# sustained hog (100 in flight, ${hogStatuses.get(200)} x 200, ${hogStatuses.get(429)} x 429 in ~7 s): ` +
        `${latencies.length} other requests (32 tokens) all 200, latency ms p50 ${q(0.5)} p95 ${q(0.95)} max ${q(1)}\n`,
    );
  } finally {
    server.kill();
  }
});

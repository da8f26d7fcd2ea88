// Sessions against the world (contract version 2): a stranger attesting from many addresses as
// fast as it can, never sending a request, cannot keep a client in use from working nor keep a
// new client out beyond the Retry-After hints it is given; and with the limits lifted by flags,
// thousands of sessions live at once, each used, none refused, at a measured memory cost.
//
// Traffic goes only to 127.0.0.1 (from local addresses 127.0.0.1 and 127.0.0.2 and up), in
// loops bounded in count and time.
import assert from 'node:assert/strict';
import http from 'node:http';
import { setFlagsFromString } from 'node:v8';
import { runInNewContext } from 'node:vm';
import { test } from 'node:test';
import { startServer, type RunningServer } from '../server/lifecycle.js';
import { resolveLimits } from '../server/limits.js';
import { attest, hex, newSid, sendPlain, type Attested } from './fixtures/server/client.js';
import { useSimulatedModel } from './fixtures/server/model.js';

const models = { method: 'GET' as const, path: '/v1/models' };
const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));

const model = useSimulatedModel();

/** One attestation GET from a given local address; status, Retry-After and the time it took. */
function attestFrom(agent: http.Agent, port: number): Promise<{ status: number; retryAfter: number | null }> {
  return new Promise((resolve, reject) => {
    const nonce = hex(crypto.getRandomValues(new Uint8Array(32)));
    const req = http.request({ host: '127.0.0.1', port, agent, path: `/v1/sessions/${newSid()}/attestation?nonce=${nonce}` }, (res) => {
      res.resume();
      res.on('end', () => {
        const ra = res.headers['retry-after'];
        resolve({ status: res.statusCode ?? 0, retryAfter: typeof ra === 'string' ? Number(ra) : null });
      });
    });
    req.on('error', reject);
    req.end();
  });
}

/** A client that attests the way the SDK does: on 429 it waits the Retry-After it was given, then tries again. */
async function attestPolitely(base: string, deadlineMs: number): Promise<{ session: Attested; waitedS: number; attempts: number; hints: number[] }> {
  const hints: number[] = [];
  const t0 = performance.now();
  for (let attempt = 1; performance.now() - t0 < deadlineMs; attempt++) {
    const sid = newSid();
    const nonce = crypto.getRandomValues(new Uint8Array(32));
    const res = await fetch(`${base}/v1/sessions/${sid}/attestation?nonce=${hex(nonce)}`);
    if (res.status === 200) {
      const first = await res.text();
      // The same GET again is a safe retry: the same evidence, and no allowance spent on it.
      const session = await attest(base, nonce, sid);
      assert.equal(JSON.stringify(session.evidence), JSON.stringify(JSON.parse(first)));
      return { session, waitedS: (performance.now() - t0) / 1000, attempts: attempt, hints };
    }
    assert.equal(res.status, 429, 'only ever refused as rate limited');
    await res.body?.cancel();
    const hint = Number(res.headers.get('retry-after'));
    assert.ok(Number.isInteger(hint) && hint >= 1, 'every refusal says when to come back');
    hints.push(hint);
    await sleep(hint * 1000);
  }
  throw new Error(`no session within ${deadlineMs} ms; hints ${hints.join(',')}`);
}

test('a stranger on 40 addresses attesting as fast as it can locks nobody out and disturbs no session in use', async () => {
  const server: RunningServer = await startServer({
    engine: model.engine,
    provider: model.provider,
    // Small on purpose, so the attack fills the store many times over within the test.
    limits: resolveLimits({ maxSessions: 64, attestationRate: 2, attestationBurst: 4, attestationRateTotal: 20 }),
    host: '127.0.0.1',
    port: 0,
  });
  const agents: http.Agent[] = [];
  try {
    const inUse = await attest(server.url);
    assert.equal((await sendPlain(server.url, inUse, models)).outer.status, 200);

    // The attack: 40 addresses, each in a tight loop, never waiting and never sending a request.
    let stop = false;
    const counts = { ok: 0, refused: 0 };
    for (let i = 2; i < 42; i++) agents.push(new http.Agent({ keepAlive: true, localAddress: `127.0.0.${i}` } as http.AgentOptions));
    const attack = Promise.all(
      agents.map(async (agent) => {
        while (!stop) {
          const r = await attestFrom(agent, server.port);
          if (r.status === 200) counts.ok++;
          else if (r.status === 429) counts.refused++;
          else throw new Error(`stranger got ${r.status}`);
        }
      }),
    );

    // The client in use keeps working throughout.
    const inUseLatencies: number[] = [];
    const steady = (async () => {
      while (!stop) {
        const t = performance.now();
        const r = await sendPlain(server.url, inUse, models);
        assert.equal(r.outer.status, 200, 'a session in use is never evicted or refused');
        inUseLatencies.push(performance.now() - t);
        await sleep(100);
      }
    })();

    await sleep(1500);
    // A new client during the attack gets in within the hints it is given, and its session works.
    const during = await attestPolitely(server.url, 15_000);
    assert.equal((await sendPlain(server.url, during.session, models)).outer.status, 200);
    await sleep(1000);
    stop = true;
    await Promise.all([attack, steady]);
    for (const a of agents) a.destroy();
    assert.ok(counts.ok > 40, `the stranger did get sessions (${counts.ok})`);
    assert.ok(counts.refused > counts.ok, `and far more refusals (${counts.refused})`);
    assert.ok(server.runtime.sessions.size <= 64, 'the store stays within its bound');

    // Right after the attack, a new client gets in within its hints.
    const afterwards = await attestPolitely(server.url, 10_000);
    assert.equal((await sendPlain(server.url, afterwards.session, models)).outer.status, 200);
    assert.equal((await sendPlain(server.url, inUse, models)).outer.status, 200);

    // A newcomer never waits longer than the hints it was given, plus the time the requests took.
    for (const c of [during, afterwards]) {
      const hinted = c.hints.reduce((a, b) => a + b, 0);
      assert.ok(c.waitedS <= hinted + 2, `waited ${c.waitedS.toFixed(1)} s for hints summing ${hinted} s`);
    }
    inUseLatencies.sort((a, b) => a - b);
    console.log(
      `# attack: stranger ${counts.ok} sessions, ${counts.refused} refusals; newcomer during: ${during.attempts} attempts, ` +
        `${during.waitedS.toFixed(2)} s (hints ${during.hints.join('+') || 'none'}); after: ${afterwards.attempts} attempts, ` +
        `${afterwards.waitedS.toFixed(2)} s; in-use client ${inUseLatencies.length} requests, ` +
        `p50 ${inUseLatencies[Math.floor(inUseLatencies.length / 2)]!.toFixed(1)} ms, max ${inUseLatencies.at(-1)!.toFixed(1)} ms`,
    );
  } finally {
    for (const a of agents) a.destroy();
    await server.close();
  }
});

test('with the limits lifted by flags, 2,000 sessions live at once, each used twice, none refused; memory per session measured', async () => {
  setFlagsFromString('--expose-gc');
  const gc = runInNewContext('gc') as () => void;
  const heap = () => {
    gc();
    gc();
    return process.memoryUsage().heapUsed;
  };
  const N = 2000;
  const server = await startServer({
    engine: model.engine,
    provider: model.provider,
    limits: resolveLimits({ attestationRate: 100_000, attestationBurst: 100_000, attestationRateTotal: 100_000 }),
    host: '127.0.0.1',
    port: 0,
  });
  try {
    // Warm up the paths once so that code and caches do not count as session memory.
    const warm = await attest(server.url);
    await sendPlain(server.url, warm, models);
    server.runtime.sessions.destroy(warm.sid);

    // Only what the server holds is measured: the heap with the sessions live, less the heap once
    // they are destroyed, the client's own state (a sid and key configuration each) held in both.
    const targets: Array<{ sid: string; config: Attested['config'] }> = [];
    const workers = 8;
    const each = async (f: (i: number) => Promise<void>) =>
      Promise.all(Array.from({ length: workers }, async (_, w) => {
        for (let i = w; i < N; i += workers) await f(i);
      }));
    await each(async (i) => {
      const a = await attest(server.url);
      targets[i] = { sid: a.sid, config: a.config };
    });
    assert.equal(server.runtime.sessions.size, N);
    const withUnused = heap();

    let refused = 0;
    await each(async (i) => {
      for (let k = 0; k < 2; k++) {
        const r = await sendPlain(server.url, targets[i]!, models);
        if (r.outer.status !== 200 || r.inner?.status !== 200) refused++;
      }
    });
    assert.equal(refused, 0, 'no request refused');
    assert.equal(server.runtime.sessions.size, N, 'all live at once');
    assert.equal(server.runtime.sessions.unusedCount, 0);
    const withUsed = heap();
    for (const t of targets) server.runtime.sessions.destroy(t.sid);
    const without = heap();
    const usedBytes = (withUsed - without) / N;
    const unusedBytes = (withUnused - without) / N;
    console.log(`# ${N} sessions live at once: ${(unusedBytes / 1024).toFixed(1)} KiB each before use (its evidence kept for a retried GET), ` +
      `${(usedBytes / 1024).toFixed(2)} KiB each after two requests`);
    // Bounds that would catch a leak of the evidence or of per-request state: a used session holds a
    // key pair, its key configuration and two replay entries.
    assert.ok(usedBytes < 4096, `${usedBytes.toFixed(0)} bytes per used session`);
    assert.ok(unusedBytes < 16 * 1024, `${unusedBytes.toFixed(0)} bytes per unused session`);
  } finally {
    await server.close();
  }
});

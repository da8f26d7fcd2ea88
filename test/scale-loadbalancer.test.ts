// Beyond one machine: three replicas of `sealed serve` (simulated, child processes) behind HAProxy
// with the repository's deploy/loadbalancer/haproxy.cfg. Every request of a session reaches the
// replica that attested it; when a replica dies, the sessions it held attest anew on a live one
// within one retry and complete, the others are untouched, and no request is decrypted twice.
import assert from 'node:assert/strict';
import { after, before, describe, test } from 'node:test';
import { SealedClient } from '../client/sdk.js';
import { attest, sendPlain, type Attested } from './fixtures/server/client.js';
import { freePort, haproxyPath, startBalancer, startReplica, type Balancer, type Replica } from '../bench/cluster.js';

const HAPROXY = haproxyPath();
const SKIP = HAPROXY ? false : 'haproxy is not installed (apt-get install haproxy; .ci/run installs it)';
// The replicas believe X-Forwarded-For only from the balancer, and the tests lift the per-address
// attestation limits they are not about (every client here is 127.0.0.1).
const REPLICA_ARGS = ['--trust-proxy', '127.0.0.1', '--attestation-rate', '1000', '--attestation-burst', '1000', '--attestation-rate-total', '1000'];
const ATTEST = '/v1/sessions/{sid}/attestation';
const OHTTP = '/v1/sessions/{sid}/ohttp';
const models = { method: 'GET' as const, path: '/v1/models' };

async function cluster(n: number): Promise<{ replicas: Replica[]; lb: Balancer; vcekOf: Map<string, number> }> {
  const ports = await Promise.all(Array.from({ length: n }, () => freePort()));
  const replicas = await Promise.all(ports.map((p, i) => startReplica(i + 1, p, REPLICA_ARGS)));
  const lb = await startBalancer(HAPROXY!, ports);
  // Each simulated replica signs with its own VCEK, made at its start: that tells replicas apart.
  const vcekOf = new Map<string, number>();
  for (const r of replicas) vcekOf.set((await attest(r.url)).evidence.evidence.vcek!, r.index);
  return { replicas, lb, vcekOf };
}

async function pool<T>(items: T[], width: number, f: (item: T, i: number) => Promise<void>): Promise<void> {
  let next = 0;
  await Promise.all(Array.from({ length: width }, async () => {
    while (next < items.length) {
      const i = next++;
      await f(items[i]!, i);
    }
  }));
}

describe('replicas behind HAProxy', { skip: SKIP }, () => {
  let replicas: Replica[] = [];
  let lb: Balancer | undefined;
  let vcekOf: Map<string, number>;

  before(async () => {
    ({ replicas, lb, vcekOf } = await cluster(3));
  });

  after(async () => {
    await lb?.stop();
    await Promise.all(replicas.map((r) => r.kill('SIGTERM')));
  });

  test('300 sessions, 3 requests each: all succeed, and every request of a session reaches the replica that attested it', async () => {
    const before = replicas.map((r) => r.count('GET', ATTEST, 200));
    const sessions: Attested[] = [];
    const home = new Array<number>(300);
    await pool(Array.from({ length: 300 }, (_, i) => i), 12, async (_, i) => {
      const a = await attest(lb!.url);
      sessions[i] = a;
      home[i] = vcekOf.get(a.evidence.evidence.vcek!)!;
      for (let k = 0; k < 3; k++) {
        const r = await sendPlain(lb!.url, a, models);
        // A request routed to any other replica would be 422 there: the session is unknown to it.
        assert.equal(r.outer.status, 200, `session ${i} request ${k}: ${r.outerBody ?? ''}`);
        assert.equal(r.inner?.status, 200);
      }
    });
    const perReplica = [1, 2, 3].map((n) => home.filter((h) => h === n).length);
    for (const r of replicas) {
      const attested = r.count('GET', ATTEST, 200) - before[r.index - 1]!;
      assert.equal(attested, perReplica[r.index - 1], `replica ${r.index}: attestations counted by the test and by its own log agree`);
      assert.equal(r.count('POST', OHTTP, 200), 3 * attested, `replica ${r.index} served exactly its own sessions' requests`);
      assert.equal(r.count('POST', OHTTP, 422), 0, `replica ${r.index} saw no request for a session it does not hold`);
      assert.ok(attested >= 50, `replica ${r.index} holds ${attested} of 300 sessions: the hash spreads them`);
    }
    console.log(`# 300 sessions over 3 replicas: ${perReplica.join(' / ')}; 900 requests, each on its session's replica`);
  });

  test('a streamed answer passes through the balancer as it is made, not buffered whole', async () => {
    const posts = () => replicas.reduce((n, r) => n + r.count('POST', OHTTP, 200), 0);
    const before = posts();
    const client = await SealedClient.connect(lb!.url, { allowSimulation: true });
    const t0 = performance.now();
    const arrivals: number[] = [];
    for await (const chunk of await client.complete({ prompt: 'Once upon a time', max_tokens: 400, temperature: 0, stream: true })) {
      if (chunk.choices[0]?.text) arrivals.push(performance.now() - t0);
    }
    const total = performance.now() - t0;
    assert.ok(arrivals.length >= 100, `${arrivals.length} tokens streamed`);
    // Buffered by the balancer, the first token would arrive with the last.
    assert.ok(arrivals[0]! < total / 2, `first token at ${arrivals[0]!.toFixed(0)} ms of ${total.toFixed(0)} ms`);
    // A streamed response is logged once its body has ended, a moment after the client's last read:
    // wait for that line, so the next test counts only its own requests.
    for (let t = Date.now(); posts() === before && Date.now() - t < 5000; ) await new Promise((r) => setTimeout(r, 10));
    assert.equal(posts(), before + 1);
  });

  test('a replica killed mid-run: its sessions attest anew on a live replica within one retry; the others are untouched; nothing is decrypted twice', async () => {
    const victim = replicas[1]!;
    const decryptedBefore = replicas.map((r) => r.count('POST', OHTTP, 200));
    // Which replica answered each attestation, read from the evidence the SDK fetched through the balancer.
    const homeOfSid = new Map<string, number>();
    const watching: typeof fetch = async (input, init) => {
      const res = await fetch(input, init);
      const m = /\/v1\/sessions\/([A-Za-z0-9_-]{22})\/attestation/.exec(String(input));
      if (m && res.status === 200) {
        const doc = (await res.clone().json()) as { evidence: { vcek: string } };
        homeOfSid.set(m[1]!, vcekOf.get(doc.evidence.vcek)!);
      }
      return res;
    };
    const clients = await Promise.all(
      Array.from({ length: 30 }, () => SealedClient.connect(lb!.url, { allowSimulation: true, fetch: watching })),
    );
    for (const c of clients) await c.models();
    const firstSid = clients.map((c) => c.verification.session);
    const onVictim = firstSid.map((sid) => homeOfSid.get(sid) === victim.index);
    assert.ok(onVictim.some(Boolean) && !onVictim.every(Boolean), 'some sessions, not all, live on the victim');

    await victim.kill('SIGKILL');
    for (let k = 0; k < 2; k++) await Promise.all(clients.map((c) => c.models()));

    clients.forEach((c, i) => {
      const sid = c.verification.session;
      if (onVictim[i]) {
        assert.notEqual(sid, firstSid[i], `client ${i} attested a new session`);
        assert.notEqual(homeOfSid.get(sid), victim.index, `client ${i}'s new session is on a live replica`);
      } else {
        assert.equal(sid, firstSid[i], `client ${i}, on a live replica, kept its session`);
      }
    });
    const moved = onVictim.filter(Boolean).length;
    // One new attestation per moved client (no retry storms), and 30 x 3 requests decrypted in all:
    // the request a dead replica could not answer was decrypted nowhere else, then sent once more.
    assert.equal(homeOfSid.size, 30 + moved);
    const decrypted = replicas.reduce((n, r, i) => n + r.count('POST', OHTTP, 200) - decryptedBefore[i]!, 0);
    assert.equal(decrypted, 90);
    const refusedUndecrypted = replicas.reduce((n, r) => n + r.count('POST', OHTTP, 422), 0);
    assert.equal(refusedUndecrypted, moved, 'each moved session met exactly one 422 (its old session unknown to the live replica)');
    console.log(`# replica ${victim.index} killed: ${moved} of 30 sessions re-attested once each on a live replica; 90 requests decrypted once each`);
  });
});

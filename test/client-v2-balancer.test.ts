// The client side of scale-out: when a load balancer in front answers for a replica that is gone
// (its own 502/503/504, not the server's problem documents), the SDK attests a new session (which
// the balancer places on a live replica). A request is sent again only when it cannot have been
// decrypted: after the balancer's 503 (no replica was tried), not after a 502 or 504.
import assert from 'node:assert/strict';
import { after, before, test } from 'node:test';
import { SealedClient, isSealedClientError, type SealedClientEvent } from '../client/sdk.js';
import { startRealServer, type RealServer } from './fixtures/client/server.js';

let server: RealServer;

before(async () => {
  server = await startRealServer();
});

after(async () => {
  await server.close();
});

const HAPROXY_PAGE = '<html><body><h1>503 Service Unavailable</h1>\nNo server is available to handle this request.\n</body></html>\n';

/**
 * A fetch that answers the next OHTTP POST as a balancer would: `forward` says whether the
 * request reaches the server first (a replica that died after receiving it: 502/504) or not (503).
 */
function balancerFault(status: 502 | 503 | 504, forward: boolean): { fetch: typeof fetch; arm(): void } {
  let armed = false;
  return {
    arm: () => (armed = true),
    fetch: async (input, init) => {
      if (!armed || !String(input).endsWith('/ohttp')) return fetch(input, init);
      armed = false;
      if (forward) {
        const res = await fetch(input, init);
        await res.arrayBuffer();
      }
      return new Response(status === 503 ? HAPROXY_PAGE : `<html><body><h1>${status}</h1></body></html>\n`, {
        status,
        headers: { 'content-type': 'text/html', 'cache-control': 'no-cache' },
      });
    },
  };
}

test('a balancer\'s 503 (no replica tried): a new session is attested and the request sent once more, decrypted once', async () => {
  const fault = balancerFault(503, false);
  const events: SealedClientEvent[] = [];
  const client = await SealedClient.connect(server.url, { allowSimulation: true, fetch: fault.fetch, onEvent: (e) => events.push(e) });
  const first = client.verification.session;
  const before = server.ohttpRequests();
  fault.arm();
  const models = await client.models();
  assert.equal(models.data[0]!.id, server.modelId);
  assert.notEqual(client.verification.session, first);
  assert.deepEqual(events.map((e) => (e.type === 'reattested' ? e.reason : e.type)), ['replica_unreachable']);
  assert.equal(server.ohttpRequests() - before, 1, 'the server decrypted the request exactly once');
});

for (const status of [502, 504] as const) {
  test(`a balancer's ${status} (the request may have been delivered): not sent again; the next request attests a new session`, async () => {
    const fault = balancerFault(status, true);
    const events: SealedClientEvent[] = [];
    const client = await SealedClient.connect(server.url, { allowSimulation: true, fetch: fault.fetch, onEvent: (e) => events.push(e) });
    const first = client.verification.session;
    const before = server.ohttpRequests();
    fault.arm();
    await assert.rejects(client.models(), (e) => isSealedClientError(e) && e.status === status && /not sent again/.test(e.message));
    assert.equal(server.ohttpRequests() - before, 1, 'delivered once, never re-sent');
    assert.equal(client.verification.session, first, 'nothing attested yet');
    await client.models();
    assert.notEqual(client.verification.session, first, 'the next request went to a new session');
    assert.deepEqual(events.map((e) => (e.type === 'reattested' ? e.reason : e.type)), ['replica_unreachable']);
    assert.equal(server.ohttpRequests() - before, 2);
  });
}

test('the server\'s own 503 (a problem document) is still waited out on the same session, not taken for a lost replica', async () => {
  let refuse = false;
  const f: typeof fetch = async (input, init) => {
    if (refuse && String(input).endsWith('/ohttp')) {
      refuse = false;
      return new Response(JSON.stringify({ type: 'about:blank', title: 'Service Unavailable', status: 503 }), {
        status: 503,
        headers: { 'content-type': 'application/problem+json', 'retry-after': '1' },
      });
    }
    return fetch(input, init);
  };
  const events: SealedClientEvent[] = [];
  const client = await SealedClient.connect(server.url, { allowSimulation: true, fetch: f, onEvent: (e) => events.push(e) });
  const first = client.verification.session;
  refuse = true;
  await client.models();
  assert.equal(client.verification.session, first);
  assert.deepEqual(events.map((e) => e.type), ['retrying']);
});

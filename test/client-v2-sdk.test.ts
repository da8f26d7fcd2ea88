// The SDK's session handling under contract version 2, against the scriptable gateway (real
// transport/ and enclave/ code): what is re-sent and what never is, when a new session is
// attested and how the caller is told, and the bounded waits on 429/503.
import { test, before, after } from 'node:test';
import assert from 'node:assert/strict';
import { SealedClient, SealedClientError, describeEvent, type SealedClientEvent } from '../client/sdk.js';
import { retryAfterMs } from '../client/retry.js';
import { startGateway, WORDS, type Gateway } from './fixtures/client/gateway.js';

let gw: Gateway;
before(async () => {
  gw = await startGateway();
});
after(async () => {
  await gw?.close();
});

const ohttpCount = () => gw.log.filter((l) => l === 'POST /v1/sessions/{sid}/ohttp').length;
const attestCount = () => gw.log.filter((l) => l === 'GET /v1/sessions/{sid}/attestation').length;
const hi = [{ role: 'user', content: 'hi' }];

async function connect(extra: { retry?: { retries?: number; maxWaitMs?: number } } = {}): Promise<{ client: SealedClient; events: SealedClientEvent[] }> {
  const events: SealedClientEvent[] = [];
  const client = await SealedClient.connect(gw.url, { allowSimulation: true, onEvent: (e) => events.push(e), ...extra });
  return { client, events };
}

function code(c: string, status?: number) {
  return (e: unknown) => {
    assert.ok(e instanceof SealedClientError, `expected SealedClientError, got ${String(e)}`);
    assert.equal(e.code, c, e.message);
    if (status !== undefined) assert.equal(e.status, status);
    return true;
  };
}

for (const stream of [false, true]) {
  test(`a response that does not decrypt fails its request, is not re-sent, and the next request attests a new session (stream: ${stream})`, async () => {
    const { client, events } = await connect();
    const first = client.verification.session;
    const [sent, opened, attests] = [ohttpCount(), gw.inner.length, attestCount()];
    gw.corruptNextResponse = true;
    await assert.rejects(async () => {
      const r = await client.chat({ messages: hi, stream } as never);
      if (stream) for await (const _ of r as AsyncIterable<unknown>) { /* drain */ }
    }, code('response_undecryptable'));
    assert.equal(ohttpCount(), sent + 1, 'sent once, never again');
    assert.equal(gw.inner.length, opened + 1, 'the server decrypted it once');
    assert.equal(attestCount(), attests, 'no attestation until the next request');
    assert.deepEqual(events, []);

    const chat = await client.chat({ messages: hi });
    assert.equal(chat.choices[0].message.content, WORDS.join(''));
    assert.equal(attestCount(), attests + 1);
    assert.notEqual(client.verification.session, first);
    assert.deepEqual(events, [{ type: 'reattested', reason: 'response_undecryptable', previous: first, session: client.verification.session }]);
    assert.equal(ohttpCount(), sent + 2);
  });
}

test('a chunk that does not decrypt mid-stream ends the answer with an error and retires the session', async () => {
  const { client, events } = await connect();
  const first = client.verification.session;
  const sent = ohttpCount();
  gw.corruptNextStreamAt = 3;
  let text = '';
  await assert.rejects(async () => {
    for await (const c of await client.chat({ messages: hi, stream: true })) text += c.choices[0]?.delta?.content ?? '';
  }, code('response_undecryptable'));
  // At most what authenticated before the bad chunk (a stream that errors may drop what it had queued).
  assert.ok(WORDS.slice(0, 3).join('').startsWith(text), `a prefix: ${JSON.stringify(text)}`);
  assert.equal(ohttpCount(), sent + 1, 'not re-sent');
  await client.models();
  assert.deepEqual(events, [{ type: 'reattested', reason: 'response_undecryptable', previous: first, session: client.verification.session }]);
});

test('a 422 is re-sent once, sealed to a newly attested session, and reported', async () => {
  const { client, events } = await connect();
  const first = client.verification.session;
  const [sent, opened, attests] = [ohttpCount(), gw.inner.length, attestCount()];
  gw.dropKeys();
  const chat = await client.chat({ messages: hi });
  assert.equal(chat.choices[0].message.content, WORDS.join(''));
  assert.equal(ohttpCount(), sent + 2, 'the refused request and its one re-send');
  assert.equal(gw.inner.length, opened + 1, 'decrypted exactly once');
  assert.equal(attestCount(), attests + 1);
  const now = client.verification.session;
  assert.notEqual(now, first);
  assert.deepEqual(events, [{ type: 'reattested', reason: 'session_unknown', previous: first, session: now }]);
  assert.equal(describeEvent(events[0]), 'session ended (server answered 422); attested a new session');
  // The new session carries the following requests without another attestation.
  await client.models();
  assert.equal(attestCount(), attests + 1);
});

test('a 422 under the new session too is key_rejected, and the next request tries yet another session', async () => {
  const { client, events } = await connect();
  const attests = attestCount();
  gw.alwaysKeyProblem = true;
  try {
    await assert.rejects(client.chat({ messages: hi }), code('key_rejected', 422));
    assert.equal(attestCount(), attests + 1, 'one new session per request, not a loop');
  } finally {
    gw.alwaysKeyProblem = false;
  }
  await client.models();
  assert.equal(attestCount(), attests + 2);
  assert.deepEqual(events.map((e) => e.type === 'reattested' && e.reason), ['session_unknown', 'session_unknown']);
});

test('concurrent requests that all find the session gone share one new attestation', async () => {
  const { client, events } = await connect();
  const attests = attestCount();
  gw.dropKeys();
  const all = await Promise.all([client.models(), client.models(), client.chat({ messages: hi })]);
  assert.equal(all.length, 3);
  assert.equal(attestCount(), attests + 1);
  assert.equal(events.length, 1);
});

test('a 503 is waited out per Retry-After a bounded number of times, then a typed error', async () => {
  const { client, events } = await connect({ retry: { retries: 2, maxWaitMs: 2000 } });
  const [sent, opened] = [ohttpCount(), gw.inner.length];
  gw.refuseOhttp = [{ status: 503, retryAfter: '0' }, { status: 503, retryAfter: '0' }];
  const chat = await client.chat({ messages: hi });
  assert.equal(chat.choices[0].message.content, WORDS.join(''));
  assert.equal(ohttpCount(), sent + 3);
  assert.equal(gw.inner.length, opened + 1);
  assert.deepEqual(events, [
    { type: 'retrying', what: 'request', status: 503, waitMs: 0 },
    { type: 'retrying', what: 'request', status: 503, waitMs: 0 },
  ]);

  gw.refuseOhttp = [0, 1, 2].map(() => ({ status: 503, retryAfter: '0' }));
  await assert.rejects(client.chat({ messages: hi }), code('server_error', 503));
  assert.equal(gw.refuseOhttp.length, 0, 'exactly three tries');

  // A wait longer than the client accepts is not waited at all.
  const before = ohttpCount();
  const t0 = Date.now();
  gw.refuseOhttp = [{ status: 503, retryAfter: '3600' }];
  await assert.rejects(client.chat({ messages: hi }), (e: unknown) => code('server_error', 503)(e) && /3600 s/.test((e as Error).message));
  assert.ok(Date.now() - t0 < 1000);
  assert.equal(ohttpCount(), before + 1);
});

test('a 503 waits the time it names', async () => {
  const { client } = await connect();
  gw.refuseOhttp = [{ status: 503, retryAfter: '1' }];
  const t0 = Date.now();
  await client.models();
  assert.ok(Date.now() - t0 >= 950, `waited ${Date.now() - t0} ms`);
});

test('a 429 on a request fails it and retires the session', async () => {
  const { client, events } = await connect();
  const first = client.verification.session;
  const opened = gw.inner.length;
  gw.refuseOhttp = [{ status: 429, retryAfter: '1' }];
  await assert.rejects(client.chat({ messages: hi }), code('server_error', 429));
  assert.equal(gw.inner.length, opened);
  await client.models();
  assert.deepEqual(events, [{ type: 'reattested', reason: 'session_exhausted', previous: first, session: client.verification.session }]);
});

test('a 429 on attestation is waited out per Retry-After, boundedly, then attestation_unavailable', async () => {
  const attests = attestCount();
  gw.refuseAttestation = [{ status: 429, retryAfter: '0' }];
  const { events } = await connect();
  assert.equal(attestCount(), attests + 2);
  assert.deepEqual(events, [{ type: 'retrying', what: 'attestation', status: 429, waitMs: 0 }]);

  gw.refuseAttestation = [0, 1, 2].map(() => ({ status: 429, retryAfter: '0' }));
  await assert.rejects(connect({ retry: { retries: 2 } }), code('attestation_unavailable', 429));
  assert.equal(gw.refuseAttestation.length, 0, 'three tries, then the error');

  const sent = ohttpCount();
  gw.refuseAttestation = [{ status: 429, retryAfter: '600' }];
  const t0 = Date.now();
  await assert.rejects(connect(), (e: unknown) => code('attestation_unavailable', 429)(e) && /600 s/.test((e as Error).message));
  assert.ok(Date.now() - t0 < 1000, 'no ten-minute wait');
  gw.refuseAttestation = [{ status: 503, retryAfter: '0' }, { status: 400 }];
  await assert.rejects(connect(), code('attestation_unavailable', 400));
  assert.equal(ohttpCount(), sent, 'nothing sent without a verified session');
});

test('a 429 while re-attesting fails the request that needed the new session, and nothing is sent', async () => {
  const { client } = await connect({ retry: { retries: 0 } });
  gw.dropKeys();
  gw.refuseAttestation = [{ status: 429, retryAfter: '5' }];
  const opened = gw.inner.length;
  await assert.rejects(client.chat({ messages: hi }), code('attestation_unavailable', 429));
  assert.equal(gw.inner.length, opened);
  await client.models(); // the next request attests and works
});

test('an expired session is replaced before use, and reported', async () => {
  const short = await startGateway({ ttlMs: 7_000 });
  try {
    const events: SealedClientEvent[] = [];
    const client = await SealedClient.connect(short.url, { allowSimulation: true, onEvent: (e) => events.push(e) });
    const first = client.verification.session;
    // EXPIRY_MARGIN_MS (5 s) before a key that lives 6 to 7 s.
    await new Promise((r) => setTimeout(r, Math.max(0, Date.parse(client.verification.expiresAt) - 5_000 - Date.now() + 50)));
    await client.models();
    assert.equal(short.log.filter((l) => l === 'POST /v1/sessions/{sid}/ohttp').length, 1, 'no request to the expired session');
    assert.deepEqual(events, [{ type: 'reattested', reason: 'expired', previous: first, session: client.verification.session }]);
  } finally {
    await short.close();
  }
});

test('a throwing onEvent changes nothing; malformed options are bad_options', async () => {
  const client = await SealedClient.connect(gw.url, { allowSimulation: true, onEvent: () => { throw new Error('listener bug'); } });
  gw.dropKeys();
  await client.models();
  for (const retry of [{ retries: -1 }, { retries: 1.5 }, { maxWaitMs: 'x' }, { retires: 2 }, 'often']) {
    await assert.rejects(SealedClient.connect(gw.url, { allowSimulation: true, retry: retry as never }), code('bad_options'), JSON.stringify(retry));
  }
  await assert.rejects(SealedClient.connect(gw.url, { allowSimulation: true, onEvent: 'log' as never }), code('bad_options'));
});

test('Retry-After: delay-seconds, an HTTP-date, absent or garbage', () => {
  assert.equal(retryAfterMs('7'), 7000);
  assert.equal(retryAfterMs(' 0 '), 0);
  const now = Date.parse('2026-11-30T01:00:00Z');
  assert.equal(retryAfterMs('Mon, 30 Nov 2026 01:00:09 GMT', now), 9000);
  assert.equal(retryAfterMs('Mon, 30 Nov 2026 00:59:00 GMT', now), 0);
  for (const v of [null, '', '-3', '1.5', 'soon', '99999999999']) assert.equal(retryAfterMs(v), 1000, String(v));
});

test('through the proxy: a busy re-attestation is a 503 to the OpenAI client, and nothing is sent', async () => {
  const { startProxy } = await import('../client/proxy.js');
  const client = await SealedClient.connect(gw.url, { allowSimulation: true, retry: { retries: 0 } });
  const p = await startProxy({ client, host: '127.0.0.1', port: 0 });
  try {
    gw.dropKeys();
    gw.refuseAttestation = [{ status: 429, retryAfter: '30' }];
    const opened = gw.inner.length;
    const res = await fetch(`${p.url}/v1/chat/completions`, { method: 'POST', headers: { 'content-type': 'application/json' }, body: JSON.stringify({ messages: hi }) });
    assert.equal(res.status, 429);
    assert.equal(((await res.json()) as { error: { type: string } }).error.type, 'server_busy');
    assert.equal(gw.inner.length, opened);
    const ok = await fetch(`${p.url}/v1/chat/completions`, { method: 'POST', headers: { 'content-type': 'application/json' }, body: JSON.stringify({ messages: hi }) });
    assert.equal(ok.status, 200);
  } finally {
    await p.close();
  }
});

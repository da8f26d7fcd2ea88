// SealedClient against a scriptable gateway built from the real transport/ and enclave/
// code (simulated SEV-SNP evidence, OHTTP, chunked OHTTP, Binary HTTP): verification and
// its report, refusals before anything is sent, streaming as chunks are made, truncation,
// re-attestation on 422, and typed errors.
import { test, before, after } from 'node:test';
import assert from 'node:assert/strict';
import { SealedClient, SealedClientError } from '../client/sdk.js';
import { startGateway, MODEL_DIGEST, MODEL_ID, WORDS, type Gateway } from './fixtures/client/gateway.js';

let gw: Gateway;
before(async () => {
  gw = await startGateway({ chunkDelayMs: 0 });
});
after(async () => {
  await gw?.close();
});

const hex = (b: Uint8Array) => Buffer.from(b).toString('hex');
const ohttpCount = () => gw.log.filter((l) => l === 'POST /v1/sessions/{sid}/ohttp').length;
const attestCount = () => gw.log.filter((l) => l === 'GET /v1/sessions/{sid}/attestation').length;

function rejected(code: string, reason?: string) {
  return (e: unknown) => {
    assert.ok(e instanceof SealedClientError, `expected SealedClientError, got ${String(e)}`);
    assert.equal(e.code, code, e.message);
    if (reason !== undefined) assert.equal(e.reason, reason, e.message);
    return true;
  };
}

test('connect verifies the simulated server and reports what it checked', async () => {
  const before = attestCount();
  const client = await SealedClient.connect(gw.url, { allowSimulation: true, policy: { modelDigest: MODEL_DIGEST, measurement: hex(gw.provider.measurement) } });
  const r = client.verification;
  assert.equal(attestCount(), before + 1);
  assert.equal(r.platform, 'sev-snp');
  assert.equal(r.simulated, true);
  assert.equal(r.measurement, hex(gw.provider.measurement));
  assert.deepEqual(r.model, { id: MODEL_ID, digest: MODEL_DIGEST });
  assert.match(r.nonce, /^[0-9a-f]{64}$/);
  assert.ok(Date.parse(r.expiresAt) > Date.now());
  assert.deepEqual(r.pinned, ['measurement', 'modelDigest']);
  assert.ok(Object.keys(r.tcb).length > 0, 'TCB reported');
  assert.ok(r.checks.length >= 5, `checks: ${r.checks.join('; ')}`);
  for (const want of [/binding/, /certificate chain/, /report signature/, /REPORT_DATA = reportData/, /key configuration/]) {
    assert.ok(r.checks.some((c) => want.test(c)), `checks list ${want}`);
  }
  assert.equal(r.tcb.product, 'Milan');
  assert.equal(typeof r.tcb.snp, 'number');
  // The report cannot be edited after verification.
  assert.throws(() => { (r as { measurement: string }).measurement = '00'; }, TypeError);
  assert.throws(() => { r.checks.push('made up'); }, TypeError);
  // A second connection uses a fresh nonce.
  const again = await SealedClient.connect(gw.url, { allowSimulation: true });
  assert.notEqual(again.verification.nonce, r.nonce);
});

test('a simulated server is refused unless allowSimulation, and nothing is sent', async () => {
  const sent = ohttpCount();
  await assert.rejects(SealedClient.connect(gw.url), rejected('simulation_refused', 'simulation_not_allowed'));
  await assert.rejects(SealedClient.connect(gw.url, { allowSimulation: false }), rejected('simulation_refused', 'simulation_not_allowed'));
  assert.equal(ohttpCount(), sent);
});

test('a wrong measurement or model digest in the policy is refused before any prompt is sent', async () => {
  const sent = ohttpCount();
  await assert.rejects(SealedClient.connect(gw.url, { allowSimulation: true, policy: { measurement: 'cd'.repeat(48) } }), rejected('attestation_rejected', 'sev_measurement_mismatch'));
  await assert.rejects(SealedClient.connect(gw.url, { allowSimulation: true, policy: { modelDigest: 'cd'.repeat(32) } }), rejected('attestation_rejected', 'model_digest_mismatch'));
  await assert.rejects(SealedClient.connect(gw.url, { allowSimulation: true, policy: { platforms: ['tdx'] } }), rejected('attestation_rejected', 'platform_not_allowed'));
  // A misspelt pin is an error, not "not pinned".
  await assert.rejects(SealedClient.connect(gw.url, { allowSimulation: true, policy: { measurment: 'cd'.repeat(48) } }), rejected('bad_options'));
  assert.equal(ohttpCount(), sent);
});

test('tampered evidence is refused: key swapped, binding broken, model changed, report bit flipped', async () => {
  const sent = ohttpCount();
  const tampers: [string, (e: Record<string, any>) => void][] = [
    ['keyConfig', (e) => { const other = Buffer.from(e.keyConfig, 'base64url'); other[10] ^= 1; e.keyConfig = other.toString('base64url'); }],
    ['session', (e) => { e.session = e.session.replace(/^./, (c: string) => (c === 'A' ? 'B' : 'A')); }],
    ['model id', (e) => { e.model.id = 'other-model'; }],
    ['expiresAt', (e) => { e.expiresAt = new Date(Date.parse(e.expiresAt) + 3_600_000).toISOString().replace(/\.\d{3}Z$/, 'Z'); }],
    ['model digest', (e) => { e.model.digest = 'cd'.repeat(32); }],
    ['reportData', (e) => { e.reportData = e.reportData.replace(/^./, (c: string) => (c === '0' ? '1' : '0')); }],
    ['report', (e) => { const b = Buffer.from(e.evidence.report, 'base64'); b[0x90] ^= 1; e.evidence.report = b.toString('base64'); }],
    ['simulated flag', (e) => { e.simulated = false; }],
  ];
  for (const [what, tamper] of tampers) {
    gw.tamperNextEvidence = tamper;
    await assert.rejects(SealedClient.connect(gw.url, { allowSimulation: true }), (e: unknown) => {
      assert.ok(e instanceof SealedClientError, what);
      assert.ok(['attestation_rejected', 'evidence_malformed'].includes(e.code), `${what}: ${e.code}`);
      return true;
    }, what);
  }
  assert.equal(ohttpCount(), sent);
});

test('models, chat and complete return the OpenAI JSON', async () => {
  const client = await SealedClient.connect(gw.url, { allowSimulation: true });
  const models = await client.models();
  assert.deepEqual(models.data.map((m) => m.id), [MODEL_ID]);
  const chat = await client.chat({ messages: [{ role: 'user', content: 'hi' }] });
  assert.equal(chat.object, 'chat.completion');
  assert.equal(chat.choices[0].message.content, WORDS.join(''));
  const done = await client.complete({ prompt: 'Once' });
  assert.equal(done.choices[0].text, WORDS.join(''));
});

test('a streamed chat yields each chunk as it is made and ends cleanly', async () => {
  const slow = await startGateway({ chunkDelayMs: 60 });
  try {
    const client = await SealedClient.connect(slow.url, { allowSimulation: true });
    const t0 = Date.now();
    const times: number[] = [];
    let text = '';
    for await (const chunk of await client.chat({ messages: [{ role: 'user', content: 'hi' }], stream: true })) {
      times.push(Date.now() - t0);
      text += chunk.choices[0]?.delta?.content ?? '';
    }
    assert.equal(text, WORDS.join(''));
    assert.equal(times.length, WORDS.length + 1);
    // Incremental: the first chunk arrived long before the last (60 ms apart on the server).
    assert.ok(times[times.length - 1] - times[0] >= 60 * (WORDS.length - 1), `arrival times ${times.join(',')}`);
    const completion: string[] = [];
    for await (const c of await client.complete({ prompt: 'x', stream: true })) completion.push(c.choices[0].text);
    assert.equal(completion.join(''), WORDS.join(''));
  } finally {
    await slow.close();
  }
});

test('a stream cut before its final chunk is an error, never a short answer', async () => {
  const client = await SealedClient.connect(gw.url, { allowSimulation: true });
  for (const cut of [0, 3, WORDS.length + 1]) {
    gw.truncateNextStreamAfter = cut;
    let text = '';
    await assert.rejects(async () => {
      for await (const chunk of await client.chat({ messages: [{ role: 'user', content: 'hi' }], stream: true })) {
        text += chunk.choices[0]?.delta?.content ?? '';
      }
    }, rejected('truncated'), `cut after ${cut}`);
    assert.equal(text, WORDS.slice(0, Math.min(cut, WORDS.length)).join(''));
  }
});

test('an inner 400 is a typed http_error carrying the OpenAI error', async () => {
  const client = await SealedClient.connect(gw.url, { allowSimulation: true });
  await assert.rejects(client.chat({ messages: [] }), (e: unknown) => {
    assert.ok(e instanceof SealedClientError && e.code === 'http_error' && e.status === 400);
    assert.equal((e.body as { error: { param: string } }).error.param, 'messages');
    return true;
  });
  await assert.rejects(client.chat({ messages: [], stream: true }), rejected('http_error'));
  const raw = await client.request('POST', '/v1/chat/completions', { messages: [] });
  assert.equal(raw.status, 400);
});

test('a 422 ohttp-key makes the client re-attest once and retry; a second 422 fails', async () => {
  const client = await SealedClient.connect(gw.url, { allowSimulation: true });
  const firstSession = client.verification.session;
  const attests = attestCount();
  gw.dropKeys();
  const chat = await client.chat({ messages: [{ role: 'user', content: 'hi' }] });
  assert.equal(chat.choices[0].message.content, WORDS.join(''));
  assert.equal(attestCount(), attests + 1);
  assert.notEqual(client.verification.session, firstSession);

  gw.alwaysKeyProblem = true;
  try {
    await assert.rejects(client.chat({ messages: [{ role: 'user', content: 'hi' }], stream: true }), rejected('key_rejected'));
    assert.equal(attestCount(), attests + 2, 'exactly one more attestation');
  } finally {
    gw.alwaysKeyProblem = false;
  }
});

test('re-attestation is verified like the first: a tampered one is refused and nothing is re-sent', async () => {
  const client = await SealedClient.connect(gw.url, { allowSimulation: true });
  gw.dropKeys();
  gw.tamperNextEvidence = (e) => { e.model.digest = 'cd'.repeat(32); };
  const sent = ohttpCount();
  await assert.rejects(client.chat({ messages: [{ role: 'user', content: 'hi' }] }), rejected('attestation_rejected'));
  assert.equal(ohttpCount(), sent + 1, 'only the request that got 422');
});

test('bad URLs and unreachable servers are typed errors', async () => {
  await assert.rejects(SealedClient.connect('ftp://x'), rejected('bad_options'));
  await assert.rejects(SealedClient.connect('not a url'), rejected('bad_options'));
  await assert.rejects(SealedClient.connect('http://127.0.0.1:1', { allowSimulation: true }), rejected('network'));
});

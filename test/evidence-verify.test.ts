// Evidence end to end: the simulator's evidence through buildEvidence and verifyEvidence, the
// simulation gate, every binding input, expiry, policy, and 10,000 hostile documents.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { createHash } from 'node:crypto';
import { AttestationError } from '../enclave/errors.js';
import { buildEvidence, parseEvidenceJson, verifyEvidence, type EvidenceJson } from '../enclave/evidence.js';
import { computeReportData } from '../enclave/binding.js';
import { createSimulatedProvider } from '../enclave/providers/simulated.js';
import type { EvidenceProvider } from '../enclave/providers/types.js';
import { Rng } from './fixtures/tdx/fuzz.js';

const modelDigest = createHash('sha256').update('stories260K manifest').digest('hex');
const provider = await createSimulatedProvider({ modelDigest, codeDigest: new Uint8Array(32).fill(1) });
const nonce = new Uint8Array(32).fill(0x42);
const keyConfig = Uint8Array.from({ length: 41 }, (_, i) => (i === 0 ? 7 : i)); // first byte: the key id
const session = 'c2VhbGVkLWluZmVyZW5jZQ'; // 16 bytes: "sealed-inference"
const expiresAt = new Date(Math.floor(Date.now() / 1000) * 1000 + 3600_000);
const ev = await buildEvidence({ provider, session, keyConfig, expiresAt, model: { id: 'stories260K', digest: modelDigest }, nonce });
const binding = (over: Partial<Parameters<typeof computeReportData>[0]> = {}) =>
  computeReportData({
    nonce, session, keyConfig, modelDigest: Buffer.from(modelDigest, 'hex'), modelId: 'stories260K',
    expiresAt: expiresAt.getTime() / 1000, simulated: true, ...over,
  });

const clone = (): EvidenceJson => JSON.parse(JSON.stringify(ev));
async function verdict(doc: unknown, opts: Partial<Parameters<typeof verifyEvidence>[1]> = {}): Promise<string> {
  try {
    await verifyEvidence(doc, { nonce, allowSimulation: true, ...opts });
    return 'accepted';
  } catch (e) {
    assert.ok(e instanceof AttestationError, `expected AttestationError, got ${String(e)}`);
    return e.code;
  }
}

test('buildEvidence emits the CONTRACT document', () => {
  assert.deepEqual(Object.keys(ev).sort(), ['evidence', 'expiresAt', 'keyConfig', 'model', 'platform', 'reportData', 'session', 'simulated', 'version']);
  assert.equal(ev.version, 2);
  assert.equal(ev.session, session);
  assert.equal(ev.platform, 'sev-snp');
  assert.equal(ev.simulated, true);
  assert.equal(ev.keyConfig, Buffer.from(keyConfig).toString('base64url')); // no padding
  assert.ok(!ev.keyConfig.includes('='));
  assert.match(ev.expiresAt, /^\d{4}-\d\d-\d\dT\d\d:\d\d:\d\dZ$/);
  assert.equal(ev.reportData, Buffer.from(binding()).toString('hex'));
  const report = Buffer.from(ev.evidence.report, 'base64');
  assert.equal(report.length, 1184);
  assert.equal(report.subarray(0x50, 0x90).toString('hex'), ev.reportData);
  assert.deepEqual(Object.keys(ev.evidence).sort(), ['certChain', 'report', 'vcek']);
  assert.equal(ev.evidence.certChain!.match(/BEGIN CERTIFICATE/g)!.length, 2);
});

test('buildEvidence refuses a provider whose evidence does not carry the requested REPORT_DATA', async () => {
  const liar: EvidenceProvider = {
    platform: 'sev-snp',
    simulated: true,
    async getEvidence() {
      return provider.getEvidence(new Uint8Array(64));
    },
  };
  await assert.rejects(
    buildEvidence({ provider: liar, session, keyConfig, expiresAt, model: { id: 'm', digest: modelDigest }, nonce }),
    (e: unknown) => e instanceof AttestationError && e.code === 'provider_report_data',
  );
});

test('buildEvidence refuses a bad session id and an expiry that is not whole seconds', async () => {
  const build = (over: Record<string, unknown>) =>
    buildEvidence({ provider, session, keyConfig, expiresAt, model: { id: 'm', digest: modelDigest }, nonce, ...over });
  await assert.rejects(build({ session: 'short' }), (e: unknown) => e instanceof AttestationError && e.code === 'bad_session');
  await assert.rejects(build({ expiresAt: new Date(expiresAt.getTime() + 1) }), (e: unknown) => e instanceof AttestationError && e.code === 'bad_expiry');
});

test('simulated evidence verifies with allowSimulation, with the same code as hardware', async () => {
  const { ok, report } = await verifyEvidence(ev, { nonce, allowSimulation: true });
  assert.equal(ok, true);
  assert.equal(report.platform, 'sev-snp');
  assert.equal(report.simulated, true);
  assert.equal(report.product, 'Milan');
  assert.equal(report.session, session);
  assert.deepEqual(report.keyConfig, keyConfig);
  assert.equal(report.measurement, Buffer.from(provider.measurement).toString('hex'));
  assert.equal(report.model.digest, modelDigest);
  for (const c of ['sev-snp: report signature (ECDSA P-384, VCEK)', 'REPORT_DATA = reportData', 'simulation explicitly allowed']) {
    assert.ok(report.checks.includes(c), c);
  }
  // The nonce may be given as hex; JSON text and bytes are accepted too.
  assert.equal(await verdict(JSON.stringify(ev), { nonce: Buffer.from(nonce).toString('hex') as unknown as Uint8Array }), 'accepted');
  assert.equal(await verdict(new TextEncoder().encode(JSON.stringify(ev))), 'accepted');
});

test('simulated evidence is refused without allowSimulation', async () => {
  assert.equal(await verdict(ev, { allowSimulation: false }), 'simulation_not_allowed');
  assert.equal(await verdict(ev, { allowSimulation: undefined }), 'simulation_not_allowed');
});

test('claiming hardware does not help: simulated:false is checked against the pinned AMD roots', async () => {
  const d = clone();
  d.simulated = false;
  assert.equal(await verdict(d, { allowSimulation: false }), 'binding_mismatch', 'the flag is signed');
  // Even with the binding recomputed for simulated:false, the chain must lead to AMD's pinned roots.
  d.reportData = Buffer.from(binding({ simulated: false })).toString('hex');
  const c = await verdict(d, { allowSimulation: false });
  assert.match(c, /^sev_(chain_issuer_mismatch|ark_not_pinned)$/);
});

test('binding: another nonce, session, key configuration, model, expiry or simulation flag is rejected', async () => {
  const other = nonce.slice();
  other[0] ^= 1;
  assert.equal(await verdict(ev, { nonce: other }), 'binding_mismatch');

  const k = clone();
  k.keyConfig = Buffer.from(Uint8Array.from({ length: 41 }, (_, i) => (i === 0 ? 7 : i + 1))).toString('base64url');
  assert.equal(await verdict(k), 'binding_mismatch');

  const m = clone();
  m.model.digest = '00'.repeat(32);
  assert.equal(await verdict(m), 'binding_mismatch');

  const r = clone();
  r.reportData = '00'.repeat(64);
  assert.equal(await verdict(r), 'binding_mismatch');

  // Version 2 signs every field a client acts on: none can be rewritten on the path.
  const sid = clone();
  sid.session = 'c2VhbGVkLWluZmVyZW5jZA';
  assert.equal(await verdict(sid), 'binding_mismatch');
  const id = clone();
  id.model.id = 'gpt-5';
  assert.equal(await verdict(id), 'binding_mismatch');
  const later = clone();
  later.expiresAt = new Date(expiresAt.getTime() + 86_400_000).toISOString().replace('.000Z', 'Z');
  assert.equal(await verdict(later), 'binding_mismatch');
  const earlier = clone();
  earlier.expiresAt = new Date(expiresAt.getTime() - 1000).toISOString().replace('.000Z', 'Z');
  assert.equal(await verdict(earlier), 'binding_mismatch');

  // The session must be the one the client asked for, even with a valid binding.
  assert.equal(await verdict(ev, { session }), 'accepted');
  assert.equal(await verdict(ev, { session: 'c2VhbGVkLWluZmVyZW5jZA' }), 'session_mismatch');
});

test('a substituted key with a recomputed reportData is caught by the signed REPORT_DATA', async () => {
  // The attack: keep the genuine signed report, swap in the attacker's key config, recompute the binding.
  const evil = Uint8Array.from({ length: 41 }, (_, i) => (i === 0 ? 7 : 0xee));
  const d = clone();
  d.keyConfig = Buffer.from(evil).toString('base64url');
  d.reportData = Buffer.from(binding({ keyConfig: evil })).toString('hex');
  assert.equal(await verdict(d), 'report_data_mismatch');
});

test('expiry, platform allow-list and the model pin', async () => {
  assert.equal(await verdict(ev, { now: new Date(expiresAt.getTime() + 1000) }), 'evidence_expired');
  assert.equal(await verdict(ev, { now: Math.ceil(expiresAt.getTime() / 1000) }), 'evidence_expired');
  assert.equal(await verdict(ev, { policy: { platforms: ['tdx'] } }), 'platform_not_allowed');
  assert.equal(await verdict(ev, { policy: { platforms: ['sev-snp'] } }), 'accepted');
  assert.equal(await verdict(ev, { policy: { modelDigest } }), 'accepted');
  assert.equal(await verdict(ev, { policy: { modelDigest: 'ff'.repeat(32) } }), 'model_digest_mismatch');
  const m = Buffer.from(provider.measurement).toString('hex');
  assert.equal(await verdict(ev, { policy: { measurement: m } }), 'accepted');
  assert.equal(await verdict(ev, { policy: { measurement: '00'.repeat(48) } }), 'sev_measurement_mismatch');
});

test('a simulated report with another simulator\'s chain is rejected', async () => {
  const other = await createSimulatedProvider({ modelDigest, codeDigest: new Uint8Array(32) });
  const ev2 = await buildEvidence({ provider: other, session, keyConfig, expiresAt, model: { id: 'stories260K', digest: modelDigest }, nonce });
  const swapChain = clone();
  swapChain.evidence.certChain = ev2.evidence.certChain;
  assert.match(await verdict(swapChain), /^sev_chain_(issuer_mismatch|signature_invalid)$/);
  const swapVcek = clone();
  swapVcek.evidence.vcek = ev2.evidence.vcek;
  assert.notEqual(await verdict(swapVcek), 'accepted');
  const swapReport = clone();
  swapReport.evidence.report = ev2.evidence.report;
  assert.notEqual(await verdict(swapReport), 'accepted');
});

test('strict shape', async () => {
  const cases: Array<[string, (d: any) => void]> = [
    ['extra top-level key', (d) => { d.extra = 1; }],
    ['missing key', (d) => { delete d.model; }],
    ['version 1', (d) => { d.version = 1; }],
    ['version 3', (d) => { d.version = 3; }],
    ['a version 1 keyId', (d) => { d.keyId = 7; }],
    ['session missing', (d) => { delete d.session; }],
    ['session short', (d) => { d.session = d.session.slice(1); }],
    ['session non-canonical', (d) => { d.session = d.session.slice(0, 21) + 'B'; }],
    ['session number', (d) => { d.session = 7; }],
    ['platform', (d) => { d.platform = 'sgx'; }],
    ['simulated string', (d) => { d.simulated = 'true'; }],
    ['keyConfig padded', (d) => { d.keyConfig += '='; }],
    ['keyConfig std base64', (d) => { d.keyConfig = d.keyConfig.replace(/[-_]/g, '+') + '+'; }],
    ['expiresAt offset', (d) => { d.expiresAt = d.expiresAt.replace('Z', '+00:00'); }],
    ['expiresAt impossible', (d) => { d.expiresAt = '2030-02-30T00:00:00Z'; }],
    ['expiresAt fraction', (d) => { d.expiresAt = d.expiresAt.replace('Z', '.5Z'); }],
    ['expiresAt leap second', (d) => { d.expiresAt = '2030-06-30T23:59:60Z'; }],
    ['model id over 255 bytes', (d) => { d.model.id = 'é'.repeat(128); }],
    ['model extra', (d) => { d.model.size = 1; }],
    ['model digest upper', (d) => { d.model.digest = d.model.digest.toUpperCase(); }],
    ['reportData short', (d) => { d.reportData = d.reportData.slice(2); }],
    ['report not base64', (d) => { d.evidence.report = '%%%'; }],
    ['evidence extra', (d) => { d.evidence.quote = ''; }],
    ['collateral on sev-snp', (d) => { d.evidence.collateral = {}; }],
    ['vcek number', (d) => { d.evidence.vcek = 5; }],
  ];
  for (const [name, mutate] of cases) {
    const d = clone();
    mutate(d);
    assert.equal(await verdict(d), 'evidence_malformed', name);
  }
  assert.equal(await verdict('not json'), 'evidence_malformed');
  assert.equal(await verdict([]), 'evidence_malformed');
  assert.equal(await verdict(null), 'evidence_malformed');
  const noVcek = clone();
  delete noVcek.evidence.vcek;
  assert.equal(await verdict(noVcek), 'evidence_malformed');
  const truncated = clone();
  truncated.evidence.report = Buffer.from(ev.evidence.report, 'base64').subarray(0, 1000).toString('base64');
  assert.equal(await verdict(truncated), 'sev_report_length');
});

function rng(seed: number): () => number {
  const r = new Rng(seed);
  return () => r.next();
}

const text = JSON.stringify(ev);
function mutant(next: () => number, i: number): unknown {
  switch (i % 5) {
    case 0: { // random bytes
      const n = next() % 300;
      return String.fromCharCode(...Array.from({ length: n }, () => next() % 256));
    }
    case 1: { // flipped characters of the JSON text
      const a = text.split('');
      for (let k = 1 + (next() % 8); k > 0; k--) a[next() % a.length] = String.fromCharCode(32 + (next() % 95));
      return a.join('');
    }
    case 2: // truncated JSON text
      return text.slice(0, next() % text.length);
    case 3: { // a field replaced by a value of another type
      const d: any = clone();
      const values = [null, 0, -1, 1e300, '', 'x', [], {}, true, '0'.repeat(128), 'A'.repeat(10)];
      const paths = [['version'], ['session'], ['platform'], ['simulated'], ['keyConfig'], ['expiresAt'], ['model'], ['model', 'id'],
        ['model', 'digest'], ['reportData'], ['evidence'], ['evidence', 'report'], ['evidence', 'vcek'], ['evidence', 'certChain']];
      const p = paths[next() % paths.length];
      let o = d;
      for (const k of p.slice(0, -1)) o = o[k];
      o[p[p.length - 1]] = values[next() % values.length];
      return d;
    }
    default: { // structural: delete or add keys
      const d: any = clone();
      const keys = Object.keys(d);
      if (next() % 2) delete d[keys[next() % keys.length]];
      else d[`k${next() % 10}`] = next();
      return d;
    }
  }
}

test('10,000 random and mutated documents: the evidence parser gives AttestationError only', () => {
  const next = rng(0xe71de);
  let accepted = 0;
  for (let i = 0; i < 10_000; i++) {
    try {
      parseEvidenceJson(mutant(next, i));
      accepted++;
    } catch (e) {
      assert.ok(e instanceof AttestationError, `input ${i}: ${String(e)}`);
    }
  }
  assert.ok(accepted < 10_000);
});

// Version 2 binds every field of the document a client acts on; only the platform evidence's own
// encodings could change without changing the meaning. Any accepted mutation is a hole.
function boundView(doc: unknown): string {
  return JSON.stringify(JSON.parse(typeof doc === 'string' ? doc : JSON.stringify(doc)));
}

test('300 mutated documents through the full verifier: every change to a bound field is rejected', async () => {
  const next = rng(0xbadd0c);
  const want = boundView(ev);
  for (let i = 0; i < 300; i++) {
    const m = mutant(next, i);
    if ((await verdict(m)) === 'accepted') assert.equal(boundView(m), want, `mutated input ${i} was accepted`);
  }
});

test('an AMD CRL given to verifyEvidence reaches the SEV-SNP chain check: revoked ASK refused, clean CRL accepted', async () => {
  const { buildAmdPki } = await import('./fixtures/sev-snp/amd-pki.js');
  const pki = buildAmdPki();
  const pem = (der: Uint8Array) => `-----BEGIN CERTIFICATE-----\n${Buffer.from(der).toString('base64')}\n-----END CERTIFICATE-----\n`;
  // A non-simulated provider whose reports the test PKI signs; its ARK stands in for AMD's via roots.
  const amd: EvidenceProvider = {
    platform: 'sev-snp', simulated: false,
    getEvidence: async (reportData) => ({ report: pki.report({ reportData }), vcek: pki.key, certChain: pem(pki.ask) + pem(pki.ark) }),
  };
  const doc = await buildEvidence({ provider: amd, session, keyConfig, expiresAt, model: { id: 'stories260K', digest: modelDigest }, nonce });
  const roots = { amdArk: pki.ark };
  assert.equal(await verdict(doc, { roots }), 'accepted');
  assert.equal(await verdict(doc, { roots, amdCrl: pki.crl({ revoked: [pki.serials.ask] }) }), 'sev_chain_revoked');
  const ok = await verifyEvidence(doc, { nonce, roots, amdCrl: pki.crl({ revoked: [1, 2, 3] }) });
  assert.ok(ok.report.checks.some((c) => c.endsWith('AMD CRL: not revoked')), ok.report.checks.join('; '));
  assert.equal(await verdict(doc, { roots, amdCrl: new Uint8Array([1, 2, 3]) }), 'sev_crl_malformed');
  // A policy's platforms apply to evidence as to the sev-snp verb.
  assert.equal(await verdict(doc, { roots, policy: { platforms: ['tdx'] } }), 'platform_not_allowed');
});

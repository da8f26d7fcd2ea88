// TDX evidence through verifyEvidence: the platform step is the TDX verifier (enclave/tdx/) fed with
// the evidence's collateral. A fully signed synthetic chain under a test root (the TDX tests' fixture)
// gives the accepted path, since no real quote can carry our binding; the real quote and Intel's
// collateral show the real chain verifies and only the binding then fails.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { AttestationError } from '../enclave/errors.js';
import { computeReportData } from '../enclave/binding.js';
import { verifyEvidence, type EvidenceJson } from '../enclave/evidence.js';
import { tdxFile } from './fixtures/attestation.js';
import { AT, REAL_PCK_TCB, REAL_QUOTE, REAL_TEE_TCB_SVN, buildSynthetic, setLevel } from './fixtures/tdx/synthetic.js';

const nonce = new Uint8Array(32).fill(0x17);
const keyConfig = Uint8Array.from({ length: 41 }, (_, i) => (i === 0 ? 3 : i));
const digestHex = 'cd'.repeat(32);
const session = 'dGR4LXNlc3Npb24tMDAwMQ'; // 16 bytes: "tdx-session-0001"
const bind = (kc: Uint8Array) =>
  computeReportData({ nonce, session, keyConfig: kc, modelDigest: Buffer.from(digestHex, 'hex'), modelId: 'stories260K', expiresAt: Date.parse('2023-07-01T00:00:00Z') / 1000, simulated: false });
const reportData = bind(keyConfig);
const b64 = (b: Uint8Array) => Buffer.from(b).toString('base64');
const text = (b: Uint8Array) => new TextDecoder().decode(b);

function evidenceDoc(quote: Uint8Array, c: Record<string, Uint8Array>): EvidenceJson {
  return {
    version: 2,
    session,
    platform: 'tdx',
    simulated: false,
    keyConfig: Buffer.from(keyConfig).toString('base64url'),
    expiresAt: '2023-07-01T00:00:00Z',
    model: { id: 'stories260K', digest: digestHex },
    reportData: Buffer.from(reportData).toString('hex'),
    evidence: {
      report: b64(quote),
      collateral: {
        tcbInfo: text(c.tcbInfo), tcbInfoIssuerChain: text(c.tcbInfoIssuerChain),
        qeIdentity: text(c.qeIdentity), qeIdentityIssuerChain: text(c.qeIdentityIssuerChain),
        pckCrl: b64(c.pckCrl), pckCrlIssuerChain: text(c.pckCrlIssuerChain), rootCrl: b64(c.rootCrl),
      },
    },
  };
}

const synth = buildSynthetic({
  editBody: (body) => body.set(reportData, 520),
  editTcbInfo: (t) => setLevel(t.tcbLevels[0], REAL_PCK_TCB.compSvn, 11, REAL_TEE_TCB_SVN),
});
const doc = evidenceDoc(synth.quote, synth.collateral);
const opts = { nonce, now: AT, roots: { intelRoot: synth.rootPem } };

async function verdict(d: unknown, o: Partial<Parameters<typeof verifyEvidence>[1]> = {}): Promise<string> {
  try {
    await verifyEvidence(d, { ...opts, ...o });
    return 'accepted';
  } catch (e) {
    assert.ok(e instanceof AttestationError, String(e));
    return e.code;
  }
}
const clone = (): EvidenceJson => JSON.parse(JSON.stringify(doc));

test('TDX evidence with its collateral verifies: quote, PCK chain, CRLs, TCB info, QE identity, binding', async () => {
  const { report } = await verifyEvidence(doc, opts);
  assert.equal(report.platform, 'tdx');
  assert.equal(report.simulated, false);
  assert.equal(report.measurement, Buffer.from(synth.quote.subarray(48 + 136, 48 + 184)).toString('hex')); // MRTD
  assert.equal(report.tcb.status, 'UpToDate');
  assert.ok(report.checks.includes('REPORT_DATA = reportData'));
  assert.ok(report.checks.some((c) => c.startsWith('tdx: ')));
  assert.deepEqual(report.keyConfig, keyConfig);
});

test('TDX evidence is checked against the embedded Intel root unless replaced', async () => {
  assert.match(await verdict(doc, { roots: undefined }), /^tdx_/);
});

test('binding and REPORT_DATA on TDX', async () => {
  const other = nonce.slice();
  other[5] ^= 1;
  assert.equal(await verdict(doc, { nonce: other }), 'binding_mismatch');
  const evil = Uint8Array.from({ length: 41 }, (_, i) => (i === 0 ? 3 : 0xee));
  const swapped = clone();
  swapped.keyConfig = Buffer.from(evil).toString('base64url');
  swapped.reportData = Buffer.from(bind(evil)).toString('hex');
  assert.equal(await verdict(swapped), 'report_data_mismatch');
});

test('collateral is required and checked; TDX policy pins apply', async () => {
  const none = clone();
  delete none.evidence.collateral;
  assert.match(await verdict(none), /^tdx_/);
  const crl = clone();
  const bytes = Buffer.from(crl.evidence.collateral!.pckCrl, 'base64');
  bytes[bytes.length - 5] ^= 1;
  crl.evidence.collateral!.pckCrl = bytes.toString('base64');
  assert.match(await verdict(crl), /^tdx_/);
  const extra = clone();
  (extra.evidence.collateral as Record<string, string>).bogus = '';
  assert.equal(await verdict(extra), 'evidence_malformed');
  assert.equal(await verdict(doc, { policy: { mrtd: '00'.repeat(48) } }), await verdict(doc, { policy: { mrtd: ['00'.repeat(48)] } }));
  assert.match(await verdict(doc, { policy: { mrtd: '00'.repeat(48) } }), /^tdx_/);
  assert.equal(await verdict(doc, { policy: { platforms: ['sev-snp'] } }), 'platform_not_allowed');
  const sim = clone();
  sim.simulated = true;
  assert.equal(await verdict(sim, { allowSimulation: true }), 'evidence_malformed');
  assert.equal(await verdict(sim), 'simulation_not_allowed');
});

test('the real quote with Intel\'s real collateral goes through the TDX verifier; the binding then fails', async () => {
  const r = tdxFile;
  // REAL_QUOTE: the quote file as published, with the 39 bytes after the quote's end (ignored).
  const real = evidenceDoc(REAL_QUOTE, {
    tcbInfo: r('sample_tcbInfo_response'), tcbInfoIssuerChain: r('tcb_info_issuer_chain.pem'),
    qeIdentity: r('sample_qeIdentity_response'), qeIdentityIssuerChain: r('qe_identity_issuer_chain.pem'),
    pckCrl: r('pckcrl'), pckCrlIssuerChain: r('pck_crl_issuer_chain.pem'), rootCrl: r('rootcrl.der'),
  });
  // By default Intel's TCB level matching finds no level for this (older) platform...
  assert.equal(await verdict(real, { roots: undefined }), 'tdx_tcb_not_supported');
  // ...with TCB evaluation off, the strict defaults refuse the TD itself (launched without SEPT_VE_DISABLE)...
  assert.equal(await verdict(real, { roots: undefined, policy: { tcbEvaluation: false } }), 'tdx_td_sept_ve_enabled');
  // ...and with that relaxed, quote, QE report, PCK chain and CRLs verify, and only our binding is absent.
  assert.equal(await verdict(real, { roots: undefined, policy: { tcbEvaluation: false, allowSeptVe: true } }), 'report_data_mismatch');
});

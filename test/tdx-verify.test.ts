import { test } from 'node:test';
import assert from 'node:assert/strict';
import { AttestationError } from '../enclave/errors.js';
import { verifyTdxQuote, type TdxCollateral, type VerifyTdxOptions } from '../enclave/tdx/verify.js';
import { parsePckExtensions } from '../enclave/tdx/pck.js';
import { parseQuote } from '../enclave/tdx/quote.js';
import { checkTdDefaults } from '../enclave/tdx/policy.js';
import { parseCertificates, toHex } from '../enclave/pki/index.js';
import { INTEL_SGX_ROOT_CA_PEM, INTEL_SGX_ROOT_CA_SHA256 } from '../enclave/roots/intel-sgx-root.js';
import { createHash } from 'node:crypto';
import { sevFile, tdxFile } from './fixtures/attestation.js';

const file = tdxFile;
// The real quote file as published: the quote, then 39 bytes go-tdx-guest appended (ignored, as Intel's
// library ignores them). QUOTE_END is where the quote's own length fields say it ends.
const QUOTE = file('tdx_prod_quote_SPR_E4.dat');
const QUOTE_END = 4935;
const AT = new Date(1688083200 * 1000); // 2023-06-30T00:00:00Z, inside every collateral window
const COLLATERAL: Required<TdxCollateral> = {
  tcbInfo: file('sample_tcbInfo_response'),
  tcbInfoIssuerChain: file('tcb_info_issuer_chain.pem'),
  qeIdentity: file('sample_qeIdentity_response'),
  qeIdentityIssuerChain: file('qe_identity_issuer_chain.pem'),
  pckCrl: file('pckcrl'),
  pckCrlIssuerChain: file('pck_crl_issuer_chain.pem'),
  rootCrl: file('rootcrl.der'),
};
// The real TD was launched without SEPT_VE_DISABLE, which the strict defaults refuse (see the test below).
const NO_TCB = { tcbEvaluation: false, allowSeptVe: true };

async function rejects(opts: Partial<VerifyTdxOptions> & { quote?: Uint8Array }, code: string): Promise<AttestationError> {
  let caught: unknown;
  try {
    await verifyTdxQuote(opts.quote ?? QUOTE, { collateral: COLLATERAL, at: AT, ...opts });
  } catch (e) {
    caught = e;
  }
  assert.ok(caught instanceof AttestationError, `expected rejection ${code}, got ${String(caught)}`);
  assert.equal(caught.code, code, caught.message);
  return caught;
}

function flip(b: Uint8Array, off: number, mask = 0x01): Uint8Array {
  const c = b.slice();
  c[off] ^= mask;
  return c;
}

function setChar(b: Uint8Array, off: number): Uint8Array {
  const c = b.slice();
  c[off] = c[off] === 0x32 ? 0x33 : 0x32; // another base64 digit
  return c;
}

test('embedded Intel SGX Root CA is the sample trusted_root.pem, byte for byte', () => {
  const sample = parseCertificates(file('trusted_root.pem'))[0];
  const embedded = parseCertificates(INTEL_SGX_ROOT_CA_PEM)[0];
  assert.equal(toHex(embedded.raw), toHex(sample.raw));
  assert.equal(createHash('sha256').update(embedded.raw).digest('hex'), INTEL_SGX_ROOT_CA_SHA256);
});

test('PCK certificate SGX extension matches go-tdx-guest\'s published values for this quote', () => {
  const leaf = parseCertificates(parseQuote(QUOTE).pckChainPem)[0];
  const ext = parsePckExtensions(leaf);
  assert.deepEqual([...ext.ppid], [8, 157, 223, 219, 156, 3, 89, 200, 42, 59, 199, 113, 146, 57, 87, 78]);
  assert.equal(toHex(ext.fmspc), '50806f000000');
  assert.equal(toHex(ext.pceId), '0000');
  assert.equal(ext.pceSvn, 11);
  assert.deepEqual(ext.compSvn, [3, 3, 2, 2, 2, 1, 0, 2, 0, 0, 0, 0, 0, 0, 0, 0]);
  assert.deepEqual([...ext.cpuSvn], [3, 3, 2, 2, 2, 1, 0, 2, 0, 0, 0, 0, 0, 0, 0, 0]);
  assert.equal(ext.sgxType, 1); // Scalable
});

test('real quote + real collateral at 1688083200, TCB evaluation on: every signature, chain, CRL and collateral check passes, and Intel\'s TCB level matching finds no level (TCB not supported)', async () => {
  // Intel's collateral for FMSPC 50806f000000 starts at SGX component SVNs 5,5,2,2,3,... and TDX
  // component 2 = 5; this platform's PCK certificate reports 3,3,2,2,2,... and TEE_TCB_SVN[2] = 4,
  // so QVL returns STATUS_TCB_NOT_SUPPORTED (go-tdx-guest's tests note the same and zero the SVNs).
  const e = await rejects({}, 'tdx_tcb_not_supported');
  assert.match(e.message, /below every TCB level/);
});

test('real quote + real CRLs, TCB evaluation off: accepted, with the parsed fields', async () => {
  const v = await verifyTdxQuote(QUOTE, { collateral: COLLATERAL, at: AT, policy: NO_TCB });
  assert.equal(v.quoteVersion, 4);
  assert.equal(v.bodyType, 'TD10');
  assert.equal(v.tcbEvaluated, false);
  assert.equal(v.crlsChecked, true);
  assert.equal(v.fmspc, '50806f000000');
  assert.equal(v.fields.mrTd, '6363b8043668a3ad953278e10389574d326c6749fb78aa810ecd9336923db86f22fc00b8dcd404bc10d5e119d7215cbb');
  assert.equal(toHex(v.reportData), v.fields.reportData);
  assert.ok(v.checks.some((c) => /PCK chain to the pinned Intel SGX Root CA, not revoked/.test(c)));
  assert.equal(v.trailingBytes, 39);
  assert.ok(v.checks.includes('quote v4 TD10 layout (39 bytes after its end ignored)'));
  // The same quote without its trailer verifies to the same fields.
  const cut = await verifyTdxQuote(QUOTE.subarray(0, QUOTE_END), { collateral: COLLATERAL, at: AT, policy: NO_TCB });
  assert.equal(cut.trailingBytes, 0);
  assert.deepEqual(cut.fields, v.fields);
  // Without any collateral too (the PCK chain alone, no revocation data).
  const bare = await verifyTdxQuote(QUOTE, { at: AT, policy: NO_TCB });
  assert.equal(bare.crlsChecked, false);
});

test('strict defaults refuse the real TD: SEPT_VE_DISABLE is clear; allowSeptVe accepts it', async () => {
  const e = await rejects({ policy: { tcbEvaluation: false } }, 'tdx_td_sept_ve_enabled');
  assert.match(e.message, /TD ATTRIBUTES 0x0000000040000000 has SEPT_VE_DISABLE \(bit 28\) clear, expected set/);
  const v = await verifyTdxQuote(QUOTE, { collateral: COLLATERAL, at: AT, policy: { tcbEvaluation: false, allowSeptVe: true } });
  assert.ok(v.checks.includes('TD SEPT_VE_DISABLE not required by policy'));
});

test('TCB evaluation on requires every piece of collateral', async () => {
  await rejects({ collateral: {} }, 'tdx_root_crl_missing');
  await rejects({ collateral: { ...COLLATERAL, pckCrl: undefined } }, 'tdx_pck_crl_missing');
  await rejects({ collateral: { ...COLLATERAL, tcbInfo: undefined } }, 'tdx_tcb_info_missing');
  await rejects({ collateral: { ...COLLATERAL, qeIdentityIssuerChain: undefined } }, 'tdx_qe_identity_missing');
});

test('tampered quote: header, body, signature, attestation key, QE report, QE report signature, QE auth data', async () => {
  await rejects({ quote: flip(QUOTE, 0x1e) }, 'tdx_quote_signature_invalid'); // header user data
  await rejects({ quote: flip(QUOTE, 0x0c) }, 'tdx_qe_vendor_mismatch'); // header QE vendor id
  await rejects({ quote: flip(QUOTE, 0x3c) }, 'tdx_quote_signature_invalid'); // body TEE_TCB_SVN
  await rejects({ quote: flip(QUOTE, 48 + 136) }, 'tdx_quote_signature_invalid'); // body MRTD
  await rejects({ quote: flip(QUOTE, 48 + 583, 0x80) }, 'tdx_quote_signature_invalid'); // body REPORTDATA
  await rejects({ quote: flip(QUOTE, 636 + 10) }, 'tdx_quote_signature_invalid'); // quote signature r
  await rejects({ quote: flip(QUOTE, 700 + 5) }, 'tdx_qe_report_data_mismatch'); // attestation key
  await rejects({ quote: flip(QUOTE, 770 + 20) }, 'tdx_qe_report_signature_invalid'); // QE report
  await rejects({ quote: flip(QUOTE, 770 + 320) }, 'tdx_qe_report_signature_invalid'); // QE report data
  await rejects({ quote: flip(QUOTE, 1154 + 40) }, 'tdx_qe_report_signature_invalid'); // QE report signature
  await rejects({ quote: flip(QUOTE, 1220 + 3) }, 'tdx_qe_report_data_mismatch'); // QE auth data
});

test('tampered PCK chain inside the quote: leaf, intermediate, root', async () => {
  // Offsets into the PEM text (go-tdx-guest's negative tests use the same three).
  await rejects({ quote: setChar(QUOTE, 0xb77) }, 'tdx_pck_chain_signature_invalid');
  await rejects({ quote: setChar(QUOTE, 0xf5f) }, 'tdx_pck_chain_signature_invalid');
  await rejects({ quote: setChar(QUOTE, 0x1329) }, 'tdx_pck_chain_untrusted_root');
  await rejects({ quote: setChar(QUOTE, 0xc00) }, 'tdx_pck_chain_malformed');
});

test('tampered CRLs and their issuer chain', async () => {
  const pck = COLLATERAL.pckCrl as Uint8Array;
  const root = COLLATERAL.rootCrl as Uint8Array;
  await rejects({ collateral: { ...COLLATERAL, pckCrl: flip(pck, pck.length - 2) } }, 'tdx_pck_crl_signature_invalid');
  await rejects({ collateral: { ...COLLATERAL, pckCrl: flip(pck, 200) } }, 'tdx_pck_crl_signature_invalid'); // a revoked serial
  await rejects({ collateral: { ...COLLATERAL, rootCrl: flip(root, root.length - 2) } }, 'tdx_root_crl_signature_invalid');
  await rejects({ collateral: { ...COLLATERAL, rootCrl: flip(root, 1) } }, 'tdx_root_crl_malformed');
  await rejects({ collateral: { ...COLLATERAL, pckCrl: root } }, 'tdx_pck_crl_issuer_mismatch');
  await rejects({ collateral: { ...COLLATERAL, pckCrlIssuerChain: setChar(COLLATERAL.pckCrlIssuerChain as Uint8Array, 0x2b0) } }, 'tdx_pck_crl_chain_signature_invalid');
  await rejects({ collateral: { ...COLLATERAL, pckCrlIssuerChain: COLLATERAL.tcbInfoIssuerChain } }, 'tdx_pck_crl_issuer_mismatch');
});

test('tampered TCB info and QE identity (body, signature, issuer chain) are rejected by name', async () => {
  const edit = (b: Input, from: string, to: string): Uint8Array => {
    const s = new TextDecoder().decode(b as Uint8Array);
    assert.ok(s.includes(from), from);
    return new TextEncoder().encode(s.replace(from, to));
  };
  type Input = TdxCollateral['tcbInfo'];
  await rejects({ collateral: { ...COLLATERAL, tcbInfo: edit(COLLATERAL.tcbInfo, '"tcbEvaluationDataNumber":15', '"tcbEvaluationDataNumber":16') } }, 'tdx_tcb_info_signature_invalid');
  await rejects({ collateral: { ...COLLATERAL, tcbInfo: edit(COLLATERAL.tcbInfo, '"pcesvn":11', '"pcesvn":5') } }, 'tdx_tcb_info_signature_invalid');
  await rejects({ collateral: { ...COLLATERAL, tcbInfo: edit(COLLATERAL.tcbInfo, '"signature":"f6', '"signature":"f7') } }, 'tdx_tcb_info_signature_invalid');
  // Same JSON value, different bytes: Intel signs bytes, so this must fail too.
  await rejects({ collateral: { ...COLLATERAL, tcbInfo: edit(COLLATERAL.tcbInfo, '"id":"TDX",', '"id": "TDX",') } }, 'tdx_tcb_info_signature_invalid');
  await rejects({ collateral: { ...COLLATERAL, tcbInfo: edit(COLLATERAL.tcbInfo, '{"tcbInfo":', '{"extra":1,"tcbInfo":') } }, 'tdx_tcb_info_malformed');
  await rejects({ collateral: { ...COLLATERAL, tcbInfo: COLLATERAL.qeIdentity } }, 'tdx_tcb_info_malformed');
  await rejects({ collateral: { ...COLLATERAL, tcbInfoIssuerChain: setChar(COLLATERAL.tcbInfoIssuerChain as Uint8Array, 0x2b0) } }, 'tdx_tcb_info_chain_signature_invalid');
  await rejects({ collateral: { ...COLLATERAL, tcbInfoIssuerChain: COLLATERAL.pckCrlIssuerChain } }, 'tdx_tcb_info_chain_untrusted_signer');

  await rejects({ collateral: { ...COLLATERAL, qeIdentity: edit(COLLATERAL.qeIdentity, '"isvsvn":4', '"isvsvn":3') } }, 'tdx_qe_identity_signature_invalid');
  await rejects({ collateral: { ...COLLATERAL, qeIdentity: edit(COLLATERAL.qeIdentity, '"signature":"b6', '"signature":"b7') } }, 'tdx_qe_identity_signature_invalid');
  await rejects({ collateral: { ...COLLATERAL, qeIdentity: edit(COLLATERAL.qeIdentity, '"isvprodid":2', '"isvprodid":"2"') } }, 'tdx_qe_identity_malformed');
  await rejects({ collateral: { ...COLLATERAL, qeIdentityIssuerChain: setChar(COLLATERAL.qeIdentityIssuerChain as Uint8Array, 0x2b0) } }, 'tdx_qe_identity_chain_signature_invalid');
});

test('trusted time outside a validity window is rejected, naming the artefact', async () => {
  const t = (iso: string): Date => new Date(iso);
  await rejects({ at: t('2023-06-05T00:00:00Z') }, 'tdx_pck_crl_not_yet_valid');
  await rejects({ at: t('2023-06-10T00:00:00Z') }, 'tdx_tcb_info_not_yet_valid');
  await rejects({ at: t('2023-07-08T07:26:00Z') }, 'tdx_qe_identity_expired');
  await rejects({ at: t('2023-07-10T00:00:00Z') }, 'tdx_pck_crl_expired');
  await rejects({ at: t('2024-05-01T00:00:00Z') }, 'tdx_root_crl_expired');
  await rejects({ at: t('2053-07-01T00:00:00Z'), collateral: {}, policy: NO_TCB }, 'tdx_pck_chain_expired');
  await rejects({ at: t('2017-01-01T00:00:00Z'), collateral: {}, policy: NO_TCB }, 'tdx_pck_chain_not_yet_valid');
  await rejects({ at: new Date(NaN) }, 'tdx_bad_time');
});

test('a different root of trust is refused', async () => {
  const ark = new TextDecoder().decode(sevFile('ask_ark_milan.pem')).split(/(?=-----BEGIN)/)[1];
  await rejects({ intelRoot: ark, collateral: {}, policy: NO_TCB }, 'tdx_pck_chain_untrusted_root');
  await rejects({ intelRoot: ark }, 'tdx_root_crl_issuer_mismatch');
  await rejects({ intelRoot: 'junk', collateral: {}, policy: NO_TCB }, 'tdx_intel_root_malformed');
});

test('policy pins on the real quote', async () => {
  const v = await verifyTdxQuote(QUOTE, { collateral: COLLATERAL, at: AT, policy: NO_TCB });
  const f = v.fields;
  const ok = { ...NO_TCB, mrtd: [('00').repeat(48), f.mrTd], rtmr0: f.rtmr0, rtmr1: f.rtmr1, rtmr2: f.rtmr2, rtmr3: f.rtmr3, reportData: f.reportData, tdAttributes: f.tdAttributes, xfam: f.xfam, mrSignerSeam: f.mrSignerSeam, seamAttributes: f.seamAttributes, mrSeamAllowlist: [f.mrSeam], mrConfigId: f.mrConfigId, mrOwner: f.mrOwner, mrOwnerConfig: f.mrOwnerConfig, minTeeTcbSvn: f.teeTcbSvn, qeVendorId: v.qeVendorId, fmspc: '50806F000000' };
  const all = await verifyTdxQuote(QUOTE, { collateral: COLLATERAL, at: AT, policy: ok });
  assert.ok(all.checks.some((c) => c.startsWith('policy pins: mrtd, rtmr0')));
  const wrong = (k: string, v2: unknown, code: string): Promise<AttestationError> => rejects({ policy: { ...ok, [k]: v2 } }, code);
  const other48 = 'ab'.repeat(48);
  await wrong('mrtd', other48, 'tdx_mrtd_mismatch');
  await wrong('rtmr0', other48, 'tdx_rtmr0_mismatch');
  await wrong('rtmr3', other48, 'tdx_rtmr3_mismatch');
  await wrong('reportData', 'ab'.repeat(64), 'tdx_report_data_mismatch');
  await wrong('tdAttributes', '0000000000000000', 'tdx_td_attributes_mismatch');
  await wrong('xfam', 'e7000000000000000', 'policy_invalid');
  await wrong('mrSeamAllowlist', [other48], 'tdx_mr_seam_not_allowed');
  await wrong('minTeeTcbSvn', '03000500000000000000000000000000', 'tdx_tee_tcb_svn_too_low');
  await wrong('fmspc', '50806f000001', 'tdx_fmspc_mismatch');
  await wrong('qeVendorId', '00'.repeat(16), 'tdx_qe_vendor_id_mismatch');
  await wrong('mrOwner', other48, 'tdx_mr_owner_mismatch');
  await wrong('acceptedTcbStatuses', ['Great'], 'policy_invalid');
  await wrong('mrtd', [], 'policy_invalid');
  await wrong('tcbEvaluation', 'no', 'policy_invalid');
  await wrong('allowDebug', true, 'policy_unknown_key');
  await wrong('allowMigratable', 'yes', 'policy_invalid');
  await wrong('allowSeptVe', 1, 'policy_invalid');
  // A mismatch names the reported and the expected value.
  const e = await wrong('rtmr0', other48, 'tdx_rtmr0_mismatch');
  assert.ok(e.message.includes(`rtmr0 is ${f.rtmr0}, expected ${other48}`), e.message);
});

test('TD strict defaults: debug, reserved attribute bits, MIGRATABLE, SEPT_VE_DISABLE, XFAM consistency, SEAM attributes', () => {
  const body = parseQuote(QUOTE).body;
  const relaxed = { allowMigratable: false, allowSeptVe: true };
  checkTdDefaults(body, relaxed);
  const code = (over: Partial<typeof body>, policy = relaxed): string => {
    try {
      checkTdDefaults({ ...body, ...over }, policy);
    } catch (e) {
      return (e as AttestationError).code;
    }
    return 'accepted';
  };
  const u64 = (v: bigint): Uint8Array => {
    const b = new Uint8Array(8);
    new DataView(b.buffer).setBigUint64(0, v, true);
    return b;
  };
  assert.equal(code({ tdAttributes: u64(0x40000001n) }), 'tdx_td_debug');
  assert.equal(code({ tdAttributes: u64(0x40000002n) }), 'tdx_td_attributes_reserved');
  assert.equal(code({ tdAttributes: u64(1n << 40n) }), 'tdx_td_attributes_reserved');
  assert.equal(code({ tdAttributes: u64((1n << 28n) | (1n << 63n)) }), 'accepted'); // SEPT_VE_DISABLE, PERFMON
  const strict = { allowMigratable: false, allowSeptVe: false };
  assert.equal(code({}, strict), 'tdx_td_sept_ve_enabled'); // the real TD: PKS only
  assert.equal(code({ tdAttributes: u64(1n << 28n) }, strict), 'accepted');
  assert.equal(code({ tdAttributes: u64((1n << 28n) | (1n << 29n)) }, strict), 'tdx_td_migratable');
  assert.equal(code({ tdAttributes: u64((1n << 28n) | (1n << 29n)) }, { allowMigratable: true, allowSeptVe: false }), 'accepted');
  assert.equal(code({ tdAttributes: u64(1n << 29n) }, { allowMigratable: true, allowSeptVe: true }), 'accepted');
  assert.equal(code({ xfam: u64(0x1n) }), 'tdx_xfam_invalid'); // SSE missing
  assert.equal(code({ xfam: u64(0x61ae7n | (1n << 3n)) }), 'tdx_xfam_invalid'); // MPX is not allowed in a TD
  assert.equal(code({ xfam: u64(0x61ae7n & ~(1n << 6n)) }), 'tdx_xfam_invalid'); // half of AVX-512
  assert.equal(code({ xfam: u64(0x61ae7n & ~(1n << 18n)) }), 'tdx_xfam_invalid'); // half of AMX
  assert.equal(code({ xfam: u64(0x3n) }), 'accepted');
  assert.equal(code({ seamAttributes: u64(1n) }), 'tdx_seam_attributes');
});

test('v5 sample quote (TD15): signatures over header + body descriptor + body and the PCK chain verify; TD15 fields are signed', async () => {
  const v5 = file('quote_v5_sample.dat');
  const at = new Date('2026-02-01T00:00:00Z'); // the sample's PCK certificate dates from 2026-01-27
  const v = await verifyTdxQuote(v5, { at, policy: NO_TCB });
  assert.equal(v.quoteVersion, 5);
  assert.equal(v.bodyType, 'TD15');
  assert.equal(v.fields.teeTcbSvn2, '0d010400000000000000000000000000');
  assert.equal(v.fields.tdAttributes, '0000001000000000'); // SEPT_VE_DISABLE
  await verifyTdxQuote(v5, { at, policy: { tcbEvaluation: false } }); // so the strict defaults hold
  await rejects({ quote: flip(v5, 54 + 584), at, collateral: {}, policy: NO_TCB }, 'tdx_quote_signature_invalid'); // TEE_TCB_SVN2
  await rejects({ quote: flip(v5, 54 + 647), at, collateral: {}, policy: NO_TCB }, 'tdx_quote_signature_invalid'); // MRSERVICETD
  await rejects({ quote: flip(v5, 0x1e), at, collateral: {}, policy: NO_TCB }, 'tdx_quote_signature_invalid');
  await rejects({ quote: v5, at: new Date('2026-01-01T00:00:00Z'), collateral: {}, policy: NO_TCB }, 'tdx_pck_chain_not_yet_valid');
});

test('1,000 mutated quotes through the whole verifier (with CRLs) give AttestationError only, never acceptance', async () => {
  const { Rng, mutate } = await import('./fixtures/tdx/fuzz.js');
  const rng = new Rng(0xa11);
  let accepted = 0;
  for (let i = 0; i < 1_000; i++) {
    const input = mutate(QUOTE, rng);
    // Mutations that leave the quote's own bytes intact only touch what follows its end.
    if (input.length >= QUOTE_END && input.subarray(0, QUOTE_END).every((b, j) => b === QUOTE[j])) continue;
    try {
      await verifyTdxQuote(input, { collateral: COLLATERAL, at: AT, policy: NO_TCB });
      // Every byte of a v4 quote is signed or checked (the PEM chain by its own signatures and framing).
      accepted++;
    } catch (e) {
      if (!(e instanceof AttestationError)) assert.fail(`case ${i} threw ${String(e)}`);
    }
  }
  assert.equal(accepted, 0);
});

test('every single-bit flip of the real quote is refused; flips after its end are ignored', async () => {
  // Revocation data and TCB evaluation add nothing a flip inside the quote could pass: the PCK chain,
  // QE report and quote signatures decide. allowSeptVe lets the unflipped quote through.
  const policy = { tcbEvaluation: false, allowSeptVe: true };
  await verifyTdxQuote(QUOTE, { at: AT, policy });
  const codes = new Map<string, number>();
  const total = QUOTE.length * 8;
  let next = 0;
  let ignored = 0;
  async function worker(): Promise<void> {
    while (next < total) {
      const i = next++;
      const byte = i >> 3;
      const b = QUOTE.slice();
      b[byte] ^= 1 << (i & 7);
      let code = 'accepted';
      try {
        const v = await verifyTdxQuote(b, { at: AT, policy });
        assert.equal(v.trailingBytes, QUOTE.length - QUOTE_END);
      } catch (e) {
        assert.ok(e instanceof AttestationError, String(e));
        code = e.code;
      }
      if (byte < QUOTE_END) {
        assert.notEqual(code, 'accepted', `flip of byte 0x${byte.toString(16)} bit ${i & 7} was accepted`);
        codes.set(code, (codes.get(code) ?? 0) + 1);
      } else {
        assert.equal(code, 'accepted', `a flip after the quote's end (byte ${byte}) changed the verdict`);
        ignored++;
      }
    }
  }
  await Promise.all(Array.from({ length: 8 }, worker));
  assert.equal(ignored, (QUOTE.length - QUOTE_END) * 8);
  assert.equal([...codes.values()].reduce((a, b) => a + b, 0), QUOTE_END * 8);
  assert.ok((codes.get('tdx_quote_signature_invalid') ?? 0) > 4000, JSON.stringify([...codes]));
  assert.ok((codes.get('tdx_pck_chain_signature_invalid') ?? 0) > 4000, JSON.stringify([...codes]));
});

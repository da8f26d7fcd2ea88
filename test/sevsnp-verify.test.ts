// SEV-SNP signatures, chain and policy against the real Milan evidence (go-sev-guest) and against
// reports signed by the simulated chain (to reach checks a genuine signature cannot be bent to).
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { parsePolicy } from '../enclave/policy.js';
import { encodeReport, encodeTcb, parseReport, OFF, SIGNED_LENGTH, type ReportFields } from '../enclave/sev-snp/report.js';
import { verifyReportWithVcek, verifySevSnpReport, verifyVcekChain } from '../enclave/sev-snp/verify.js';
import { createSimulatedChain, signReportBody } from '../enclave/providers/sim-chain.js';
import { ARK_GENOA_PEM, ASK_GENOA_PEM } from '../enclave/roots/amd-genoa.js';
import { ARK_MILAN_PEM } from '../enclave/roots/amd-milan.js';
import { rejectionCode, sevFile } from './fixtures/attestation.js';

const read = sevFile;
const report = read('attestation.bin');
const vcek = read('vcek.testcer');
const milanChain = new TextDecoder().decode(sevFile('ask_ark_milan.pem'));
const AT = Date.UTC(2025, 0, 1) / 1000; // inside the VCEK's validity (2022-09-24 .. 2029-09-24)
const DEBUG_OK = { allowDebug: true }; // the real report was taken from a debug-enabled guest


test('the real Milan report verifies: VCEK <- ASK <- pinned ARK, signature, VCEK extensions', async () => {
  const r = await verifySevSnpReport(report, { vcek, at: AT, policy: DEBUG_OK });
  assert.equal(r.product, 'Milan');
  assert.deepEqual(r.reportedTcb, { bootloader: 2, tee: 0, snp: 5, microcode: 68 });
  assert.equal(r.reportData.slice(0, 10), '0102030405');
  for (const c of ['report signature (ECDSA P-384, VCEK)', 'VCEK TCB = REPORTED_TCB', 'VCEK hwID = CHIP_ID', 'VMPL 0']) {
    assert.ok(r.checks.includes(c), c);
  }
  // The chain as the host sends it (ASK then ARK, the ARK byte-identical to the pinned one) works too.
  const r2 = await verifySevSnpReport(report, { vcek, certChain: milanChain, at: AT, policy: DEBUG_OK });
  assert.equal(r2.measurement, r.measurement);
});

test('strict defaults: the real report is refused because its guest policy allows debugging', async () => {
  assert.equal(await rejectionCode(verifySevSnpReport(report, { vcek, at: AT })), 'sev_policy_debug');
  await assert.rejects(verifySevSnpReport(report, { vcek, at: AT }), /guest policy 0x00000000000b0000 has DEBUG \(bit 19\) set, expected clear/);
});

test('the real report passes the firmware checks: committed = current firmware, REPORTED_TCB = CURRENT_TCB', async () => {
  const r = await verifySevSnpReport(report, { vcek, at: AT, policy: DEBUG_OK });
  assert.ok(r.checks.includes('firmware committed (COMMITTED = CURRENT), REPORTED_TCB <= CURRENT_TCB'), r.checks.join('; '));
});

test('validity is checked at the trusted time', async () => {
  assert.equal(await rejectionCode(verifySevSnpReport(report, { vcek, at: Date.UTC(2030, 0, 1) / 1000, policy: DEBUG_OK })), 'sev_chain_expired');
  assert.equal(await rejectionCode(verifySevSnpReport(report, { vcek, at: Date.UTC(2022, 0, 1) / 1000, policy: DEBUG_OK })), 'sev_chain_not_yet_valid');
  assert.equal(await rejectionCode(verifySevSnpReport(report, { vcek, at: Number.NaN, policy: DEBUG_OK })), 'sev_bad_time');
});

test('every single-bit flip of the signed bytes and of the signature is rejected', async () => {
  // The chain is validated once; each flipped report then goes through the full per-report path
  // (layout, TCB bytes, ECDSA signature, VCEK binding, policy) with the cached VCEK key.
  const v = await verifyVcekChain({ vcek, at: AT });
  const policy = parsePolicy(DEBUG_OK);
  await verifyReportWithVcek(report, v, policy); // the unmodified report passes
  const t0 = performance.now();
  const codes = new Map<string, number>();
  let flips = 0;
  // WebCrypto verifies on libuv's thread pool: a few in flight keep both cores busy.
  const total = report.length * 8;
  let next = 0;
  async function worker(): Promise<void> {
    while (next < total) {
      const i = next++;
      const byte = i >> 3;
      const bit = i & 7;
      const b = report.slice();
      b[byte] ^= 1 << bit;
      const c = await rejectionCode(verifyReportWithVcek(b, v, policy));
      assert.notEqual(c, 'accepted', `flip of byte 0x${byte.toString(16)} bit ${bit} was accepted`);
      codes.set(c, (codes.get(c) ?? 0) + 1);
      flips++;
    }
  }
  await Promise.all(Array.from({ length: 8 }, worker));
  const ms = performance.now() - t0;
  assert.equal(flips, 1184 * 8);
  // Most flips reach the signature check; reserved bytes stop at the parser.
  assert.ok((codes.get('sev_report_signature') ?? 0) > 4000, JSON.stringify([...codes]));
  assert.ok((codes.get('sev_report_reserved') ?? 0) > 3000, JSON.stringify([...codes]));
  console.log(`# ${flips} single-bit flips rejected in ${ms.toFixed(0)} ms: ${JSON.stringify(Object.fromEntries(codes))}`);
});

test('bit flips through the one-call API are rejected too (sample)', async () => {
  for (const [byte, bit] of [[0x50, 0], [0x90, 7], [0x180, 1], [0x1a0, 3], [0x2a0, 0], [0x2e8, 5]]) {
    const b = report.slice();
    b[byte] ^= 1 << bit;
    assert.notEqual(await rejectionCode(verifySevSnpReport(b, { vcek, at: AT, policy: DEBUG_OK })), 'accepted');
  }
});

test('a flipped VCEK byte is rejected (key, extensions, validity, signature and a deterministic sample)', async () => {
  const positions = [0, 4, 20, 215, 230, 400, 450, 488, 556, 672, 690, 720, 770, 900, 1200, vcek.length - 1];
  let x = 12345;
  for (let i = 0; i < 40; i++) {
    x = (x * 1103515245 + 12345) % 2 ** 31;
    positions.push(x % vcek.length);
  }
  for (const p of positions) {
    const bad = vcek.slice();
    bad[p] ^= 0x01;
    const c = await rejectionCode(verifySevSnpReport(report, { vcek: bad, at: AT, policy: DEBUG_OK }));
    assert.notEqual(c, 'accepted', `VCEK byte ${p}`);
  }
});

test('the wrong product root is rejected', async () => {
  // Genoa's ARK as the trusted root for a Milan VCEK
  assert.equal(await rejectionCode(verifySevSnpReport(report, { vcek, trustedArk: ARK_GENOA_PEM, at: AT, policy: DEBUG_OK })), 'sev_product_mismatch');
  // The host sends Genoa's ARK: it is not the pinned Milan root
  assert.equal(await rejectionCode(verifySevSnpReport(report, { vcek, ark: ARK_GENOA_PEM, at: AT, policy: DEBUG_OK })), 'sev_ark_not_pinned');
  // Genoa's ASK under the Milan root
  assert.equal(await rejectionCode(verifySevSnpReport(report, { vcek, ask: ASK_GENOA_PEM, at: AT, policy: DEBUG_OK })), 'sev_product_mismatch');
  // The pinned Milan ARK sent explicitly is fine
  await verifySevSnpReport(report, { vcek, ark: ARK_MILAN_PEM, at: AT, policy: DEBUG_OK });
});

test('a self-made chain is not AMD: a simulated VCEK is refused under the pinned roots', async () => {
  const sim = createSimulatedChain({ product: 'Milan' });
  const f = simFields(sim);
  const signed = sign(f, sim);
  const now = Date.now() / 1000;
  assert.equal(await rejectionCode(verifySevSnpReport(signed, { vcek: sim.vcek, at: now })), 'sev_chain_issuer_mismatch');
  assert.equal(await rejectionCode(verifySevSnpReport(signed, { vcek: sim.vcek, ask: sim.ask, ark: sim.ark, at: now })), 'sev_ark_not_pinned');
  // ...and accepted only when its ARK is explicitly made the trusted root (simulation).
  await verifySevSnpReport(signed, { vcek: sim.vcek, ask: sim.ask, trustedArk: sim.ark, at: now });
});

test('policy pins of CONTRACT.md', async () => {
  const v = await verifyVcekChain({ vcek, at: AT });
  const r = parseReport(report);
  const m = Buffer.from(r.measurement).toString('hex');
  const ok = async (p: object) => verifyReportWithVcek(report, v, { allowDebug: true, ...p });
  const no = (p: object) => rejectionCode(ok(p));
  await ok({ measurement: m });
  await ok({ measurement: ['00'.repeat(48), m] });
  assert.equal(await no({ measurement: '00'.repeat(48) }), 'sev_measurement_mismatch');
  await ok({ hostData: '00'.repeat(32) });
  assert.equal(await no({ hostData: '01'.repeat(32) }), 'sev_host_data_mismatch');
  await ok({ reportData: '0102030405' + '00'.repeat(59) });
  assert.equal(await no({ reportData: '00'.repeat(64) }), 'sev_report_data_mismatch');
  await ok({ idKeyDigest: '00'.repeat(48) });
  assert.equal(await no({ idKeyDigest: '11'.repeat(48) }), 'sev_id_key_digest_mismatch');
  // A pin equal to the field is met: the report has no author key, and its AUTHOR_KEY_DIGEST is zero.
  await ok({ authorKeyDigest: '00'.repeat(48) });
  assert.equal(await no({ authorKeyDigest: '01'.repeat(48) }), 'sev_author_key_digest_mismatch');
  await ok({ familyId: '00'.repeat(16), imageId: '00'.repeat(16), minGuestSvn: 0, vmpl: 0, minLaunchTcb: { snp: 5 } });
  assert.equal(await no({ imageId: '01'.repeat(16) }), 'sev_image_id_mismatch');
  assert.equal(await no({ minGuestSvn: 1 }), 'sev_guest_svn_too_low');
  assert.equal(await no({ vmpl: 1 }), 'sev_vmpl');
  assert.equal(await no({ allowSmt: false }), 'sev_policy_smt'); // the real guest policy allows SMT
  // Rejections name what the report carries and what was expected.
  await assert.rejects(ok({ hostData: '01'.repeat(32) }), new RegExp(`HOST_DATA is ${'00'.repeat(32)}, expected ${'01'.repeat(32)}`));
  await assert.rejects(ok({ measurement: '00'.repeat(48) }), new RegExp(`MEASUREMENT is ${m}, expected ${'00'.repeat(48)}`));
  await ok({ minTcb: { bootloader: 2, tee: 0, snp: 5, microcode: 68 } });
  assert.equal(await no({ minTcb: { snp: 6 } }), 'sev_tcb_too_low');
  assert.equal(await no({ minTcb: { microcode: 69 } }), 'sev_tcb_too_low');
  assert.equal(await no({ minTcb: { bootloader: 3 } }), 'sev_tcb_too_low');
  assert.equal(await no({ minTcb: { fmc: 0 } }), 'sev_tcb_too_low'); // FMC exists only on Turin
  assert.equal(await no({ mesurement: m }), 'policy_unknown_key');
  assert.equal(await no({ measurement: 'zz' }), 'policy_invalid');
  assert.equal(await no({ minTcb: { snp: 256 } }), 'policy_invalid');
  assert.equal(await no({ vmpl: 4 }), 'policy_invalid');
  assert.equal(await no({ familyId: '00'.repeat(15) }), 'policy_invalid');
  assert.equal(await no({ allowProvisionalFirmware: 1 }), 'policy_invalid');
  assert.equal(await no({ allowDebug: 'yes' }), 'policy_invalid');
});

// ---- reports signed by the simulated chain, to reach checks behind the signature ----------------

type Sim = ReturnType<typeof createSimulatedChain>;
const milan = createSimulatedChain({ product: 'Milan' });

function simFields(sim: Sim, over: Partial<ReportFields> = {}): ReportFields {
  const tcb = encodeTcb(sim.tcb, sim.product);
  const cpuid = { Milan: [0x19, 0x01], Genoa: [0x19, 0x11], Turin: [0x1a, 0x02] }[sim.product];
  return {
    version: 3, guestSvn: 1, policy: 0x30000n, familyId: new Uint8Array(16), imageId: new Uint8Array(16), vmpl: 0,
    signatureAlgo: 1, currentTcb: tcb, platformInfo: 1n, authorKeyEn: false, maskChipKey: false, signingKey: 0,
    reportData: new Uint8Array(64).fill(9), measurement: new Uint8Array(48).fill(7), hostData: new Uint8Array(32),
    idKeyDigest: new Uint8Array(48), authorKeyDigest: new Uint8Array(48), reportId: new Uint8Array(32).fill(3),
    reportIdMa: new Uint8Array(32).fill(0xff), reportedTcb: tcb, cpuidFamId: cpuid[0], cpuidModId: cpuid[1], cpuidStep: 1,
    chipId: sim.chipId, committedTcb: tcb, currentBuild: 1, currentMinor: 55, currentMajor: 1, committedBuild: 1,
    committedMinor: 55, committedMajor: 1, launchTcb: tcb, ...over,
  };
}

function sign(f: ReportFields, sim: Sim): Uint8Array {
  const b = encodeReport(f);
  const { r, s } = signReportBody(sim.vcekKey, b.subarray(0, SIGNED_LENGTH));
  b.set(r, OFF.signatureR);
  b.set(s, OFF.signatureS);
  return b;
}

async function simVerdict(over: Partial<ReportFields>, policy: object = {}, sim: Sim = milan): Promise<string> {
  const b = sign(simFields(sim, over), sim);
  return rejectionCode(verifySevSnpReport(b, { vcek: sim.vcek, certChain: undefined, ask: sim.ask, trustedArk: sim.ark, at: new Date(), policy }));
}

test('guest policy strict defaults: must-be-one, must-be-zero, debug, migration agent, VMPL', async () => {
  assert.equal(await simVerdict({}), 'accepted');
  assert.equal(await simVerdict({ policy: 0x10000n }), 'sev_policy_reserved'); // bit 17 clear
  assert.equal(await simVerdict({ policy: 0x30000n | (1n << 26n) }), 'sev_policy_reserved');
  assert.equal(await simVerdict({ policy: 0x30000n | (1n << 63n) }), 'sev_policy_reserved');
  assert.equal(await simVerdict({ policy: 0x30000n | (1n << 19n) }), 'sev_policy_debug');
  assert.equal(await simVerdict({ policy: 0x30000n | (1n << 19n) }, { allowDebug: true }), 'accepted');
  assert.equal(await simVerdict({ policy: 0x30000n | (1n << 18n) }), 'sev_policy_migration_agent');
  assert.equal(await simVerdict({ policy: 0x30000n | (1n << 20n) | (1n << 25n) }), 'accepted'); // defined bits
  assert.equal(await simVerdict({ vmpl: 1 }), 'sev_vmpl');
  assert.equal(await simVerdict({ vmpl: 3 }), 'sev_vmpl');
  // A guest under an SVSM asks from VMPL 1..3: the policy pins the VMPL it expects, and only that one.
  assert.equal(await simVerdict({ vmpl: 2 }, { vmpl: 2 }), 'accepted');
  assert.equal(await simVerdict({ vmpl: 0 }, { vmpl: 2 }), 'sev_vmpl');
  assert.equal(await simVerdict({ vmpl: 3 }, { vmpl: 2 }), 'sev_vmpl');
});

test('the VCEK must certify this chip and this TCB', async () => {
  const tcb = (p: Partial<typeof milan.tcb>) => encodeTcb({ ...milan.tcb, ...p }, 'Milan');
  assert.equal(await simVerdict({ reportedTcb: tcb({ snp: milan.tcb.snp + 1 }) }), 'sev_vcek_tcb_mismatch');
  assert.equal(await simVerdict({ reportedTcb: tcb({ microcode: 1 }) }), 'sev_vcek_tcb_mismatch');
  assert.equal(await simVerdict({ reportedTcb: tcb({ bootloader: 0 }) }), 'sev_vcek_tcb_mismatch');
  assert.equal(await simVerdict({ reportedTcb: tcb({ tee: 9 }) }), 'sev_vcek_tcb_mismatch');
  const otherChip = milan.chipId.slice();
  otherChip[63] ^= 1;
  assert.equal(await simVerdict({ chipId: otherChip }), 'sev_vcek_chip_id_mismatch');
  assert.equal(await simVerdict({ reportedTcb: tcb({}) | (1n << 16n) }), 'sev_report_reserved');
});

test('signature algorithm, signing key and CPUID product are enforced', async () => {
  assert.equal(await simVerdict({ signatureAlgo: 2 }), 'sev_signature_algo');
  assert.equal(await simVerdict({ signingKey: 1 }), 'sev_signing_key'); // VLEK named, VCEK given
  assert.equal(await simVerdict({ signingKey: 7 }), 'sev_signing_key'); // no key
  assert.equal(await simVerdict({ cpuidFamId: 0x19, cpuidModId: 0x11 }), 'sev_product_mismatch'); // Genoa CPU, Milan VCEK
  assert.equal(await simVerdict({ version: 2, cpuidFamId: undefined, cpuidModId: undefined, cpuidStep: undefined }), 'accepted');
});

test('an r or s above 384 bits is rejected, not truncated', async () => {
  const b = sign(simFields(milan), milan);
  b[OFF.signatureR + 48] = 1;
  assert.equal(await rejectionCode(verifySevSnpReport(b, { vcek: milan.vcek, ask: milan.ask, trustedArk: milan.ark, at: new Date() })), 'sev_report_signature');
});

test('Turin: FMC SPL and the 8-byte hwID', async () => {
  const turin = createSimulatedChain({ product: 'Turin' });
  assert.equal(await simVerdict({}, {}, turin), 'accepted');
  const tcb = encodeTcb({ ...turin.tcb, fmc: (turin.tcb.fmc ?? 0) + 1 }, 'Turin');
  assert.equal(await simVerdict({ reportedTcb: tcb }, {}, turin), 'sev_vcek_tcb_mismatch');
  const chip = turin.chipId.slice();
  chip[20] = 1; // beyond the 8 bytes the VCEK certifies: must be zero
  assert.equal(await simVerdict({ chipId: chip }, {}, turin), 'sev_vcek_chip_id_mismatch');
  assert.equal(await simVerdict({}, { minTcb: { fmc: (turin.tcb.fmc ?? 0) + 1 } }, turin), 'sev_tcb_too_low');
});

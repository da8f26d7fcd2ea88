// SEV-SNP firmware and policy checks on fully signed reports (test/fixtures/sev-snp/amd-pki.ts): every
// field here is one the firmware signs, so only a signed report can show a check refusing it.
// Provisional firmware, REPORTED_TCB above CURRENT_TCB, VMPL, guest SVN, launch TCB, family and image
// id, SMT and single-socket requirements; each relaxation shown to work and each rejection named.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { AttestationError } from '../enclave/errors.js';
import { encodeTcb, type ReportFields, type TcbParts } from '../enclave/sev-snp/report.js';
import { verifySevSnpReport } from '../enclave/sev-snp/verify.js';
import { buildAmdPki, type AmdPki } from './fixtures/sev-snp/amd-pki.js';

const milan = buildAmdPki();
const turin = buildAmdPki({ product: 'Turin' });

async function verdict(over: Partial<ReportFields>, policy: object = {}, p: AmdPki = milan): Promise<{ code: string; message: string }> {
  try {
    await verifySevSnpReport(p.report(over), { vcek: p.key, ask: p.ask, trustedArk: p.ark, at: new Date(), policy });
  } catch (e) {
    assert.ok(e instanceof AttestationError, String(e));
    return { code: e.code, message: e.message };
  }
  return { code: 'accepted', message: '' };
}
const code = async (over: Partial<ReportFields>, policy: object = {}, p: AmdPki = milan) => (await verdict(over, policy, p)).code;
const tcb = (t: Partial<TcbParts>, p: AmdPki = milan) => encodeTcb({ ...p.tcb, ...t }, p.product);
const RELAX = { allowProvisionalFirmware: true };

test('provisional firmware: COMMITTED_TCB below CURRENT_TCB is refused by default, accepted with allowProvisionalFirmware', async () => {
  // The VCEK certifies REPORTED_TCB; the firmware runs a newer SNP firmware (CURRENT) it has not committed.
  const over = { currentTcb: tcb({ snp: milan.tcb.snp + 1 }), committedTcb: tcb({}) };
  const v = await verdict(over);
  assert.equal(v.code, 'sev_firmware_provisional');
  assert.match(v.message, /COMMITTED_TCB 0x[0-9a-f]{16} \(bootloader 9, tee 0, snp 24, microcode 72\) differs from CURRENT_TCB 0x[0-9a-f]{16} \(bootloader 9, tee 0, snp 25, microcode 72\)/);
  assert.equal(await code(over, RELAX), 'accepted');
});

test('provisional firmware: a committed firmware version below the current one is refused by default, accepted when relaxed', async () => {
  const build = { committedBuild: 3 };
  assert.equal((await verdict(build)).code, 'sev_firmware_provisional');
  assert.match((await verdict(build)).message, /committed firmware 1\.58\.3 differs from the current firmware 1\.58\.4/);
  assert.equal(await code(build, RELAX), 'accepted');
  const minor = { committedMinor: 55, committedBuild: 9 };
  assert.equal(await code(minor), 'sev_firmware_provisional');
  assert.equal(await code(minor, RELAX), 'accepted');
});

test('committed above current is refused even when provisional firmware is allowed', async () => {
  const over = { committedTcb: tcb({ microcode: milan.tcb.microcode + 1 }) };
  assert.equal(await code(over), 'sev_committed_above_current');
  assert.equal(await code(over, RELAX), 'sev_committed_above_current');
  assert.equal(await code({ committedMajor: 2 }, RELAX), 'sev_committed_above_current');
  assert.equal(await code({ committedBuild: 5 }, RELAX), 'sev_committed_above_current');
});

test('REPORTED_TCB above CURRENT_TCB is refused by default, accepted with allowProvisionalFirmware', async () => {
  // The VCEK's TCB is the reported one; the machine runs (and committed) a lower bootloader.
  const low = tcb({ bootloader: milan.tcb.bootloader - 1 });
  const over = { currentTcb: low, committedTcb: low, launchTcb: low };
  const v = await verdict(over);
  assert.equal(v.code, 'sev_reported_tcb_above_current');
  assert.match(v.message, /REPORTED_TCB bootloader 9 is above CURRENT_TCB bootloader 8/);
  assert.equal(await code(over, RELAX), 'accepted');
  // Per component on Turin too, where the byte order differs (FMC first).
  const tlow = tcb({ fmc: 0 }, turin);
  assert.equal(await code({ currentTcb: tlow, committedTcb: tlow }, {}, turin), 'sev_reported_tcb_above_current');
  assert.equal(await code({ currentTcb: tlow, committedTcb: tlow }, RELAX, turin), 'accepted');
});

test('VMPL: 0 by default; `vmpl` pins another for a guest under an SVSM', async () => {
  const v = await verdict({ vmpl: 1 });
  assert.equal(v.code, 'sev_vmpl');
  assert.match(v.message, /requested at VMPL 1, expected VMPL 0/);
  assert.equal(await code({ vmpl: 1 }, { vmpl: 1 }), 'accepted');
  assert.equal(await code({ vmpl: 0 }, { vmpl: 1 }), 'sev_vmpl');
});

test('minimum guest SVN, minimum launch TCB, family and image id', async () => {
  assert.equal(await code({ guestSvn: 4 }, { minGuestSvn: 4 }), 'accepted');
  assert.match((await verdict({ guestSvn: 3 }, { minGuestSvn: 4 })).message, /GUEST_SVN is 3, expected at least 4/);
  const oldLaunch = tcb({ snp: milan.tcb.snp - 2 });
  assert.equal(await code({ launchTcb: oldLaunch }, { minLaunchTcb: { snp: milan.tcb.snp - 2 } }), 'accepted');
  const l = await verdict({ launchTcb: oldLaunch }, { minLaunchTcb: { snp: milan.tcb.snp } });
  assert.equal(l.code, 'sev_launch_tcb_too_low');
  assert.match(l.message, /LAUNCH_TCB snp SPL is 22, expected at least 24/);
  assert.equal(await code({}, { minLaunchTcb: { fmc: 1 } }), 'sev_launch_tcb_too_low'); // no FMC on Milan
  assert.equal(await code({}, { minLaunchTcb: { fmc: 1 } }, turin), 'accepted');
  const family = new Uint8Array(16).fill(0xfa);
  const image = new Uint8Array(16).fill(0x1a);
  const pins = { familyId: 'fa'.repeat(16), imageId: '1a'.repeat(16) };
  assert.equal(await code({ familyId: family, imageId: image }, pins), 'accepted');
  assert.equal(await code({ imageId: image }, pins), 'sev_family_id_mismatch');
  const i = await verdict({ familyId: family }, pins);
  assert.equal(i.code, 'sev_image_id_mismatch');
  assert.match(i.message, new RegExp(`IMAGE_ID is ${'00'.repeat(16)}, expected ${'1a'.repeat(16)}`));
});

test('guest policy SMT and single-socket requirements', async () => {
  const smt = 0x30000n; // bit 16 SMT, bit 17 must-be-one
  assert.equal(await code({ policy: smt }), 'accepted'); // SMT allowed unless the policy says otherwise
  assert.equal(await code({ policy: smt }, { allowSmt: false }), 'sev_policy_smt');
  assert.equal(await code({ policy: 0x20000n }, { allowSmt: false }), 'accepted');
  assert.equal(await code({ policy: smt }, { requireSingleSocket: true }), 'sev_policy_single_socket');
  assert.equal(await code({ policy: smt | (1n << 20n) }, { requireSingleSocket: true }), 'accepted');
});

test('an authorKeyDigest pin equal to the field is met, whether or not an author key was used', async () => {
  const zero = '00'.repeat(48);
  assert.equal(await code({ authorKeyEn: false }, { authorKeyDigest: zero }), 'accepted');
  const digest = new Uint8Array(48).fill(0xad);
  assert.equal(await code({ authorKeyEn: true, authorKeyDigest: digest }, { authorKeyDigest: 'ad'.repeat(48) }), 'accepted');
  assert.equal(await code({ authorKeyEn: true, authorKeyDigest: digest }, { authorKeyDigest: zero }), 'sev_author_key_digest_mismatch');
  assert.equal(await code({ authorKeyEn: false }, { authorKeyDigest: 'ad'.repeat(48) }), 'sev_author_key_digest_mismatch');
});

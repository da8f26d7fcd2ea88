// Intel's TCB evaluation, end to end through verifyTdxQuote, on a fully signed synthetic chain under a
// test root (test/fixtures/tdx/synthetic.ts): the accepted path the real (older) collateral cannot show,
// and every status / module / QE identity branch of QVL's algorithm.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { AttestationError } from '../enclave/errors.js';
import { verifyTdxQuote, type TdxVerified } from '../enclave/tdx/verify.js';
import { tdxModuleIdentityId } from '../enclave/tdx/tcb.js';
import { AT, REAL_PCK_TCB, REAL_TEE_TCB_SVN, buildSynthetic, setLevel, type SyntheticOptions } from './fixtures/tdx/synthetic.js';

const SGX = REAL_PCK_TCB.compSvn;
const matchLevel0 = (t: any): void => setLevel(t.tcbLevels[0], SGX, 11, REAL_TEE_TCB_SVN);

async function run(o: SyntheticOptions, policy: Record<string, unknown> = {}): Promise<TdxVerified> {
  const s = buildSynthetic(o);
  return verifyTdxQuote(s.quote, { collateral: s.collateral, at: AT, intelRoot: s.rootPem, policy });
}
async function rejects(o: SyntheticOptions, code: string, policy: Record<string, unknown> = {}): Promise<AttestationError> {
  let caught: unknown;
  try {
    await run(o, policy);
  } catch (e) {
    caught = e;
  }
  assert.ok(caught instanceof AttestationError, `expected ${code}, got ${String(caught)}`);
  assert.equal(caught.code, code, caught.message);
  return caught;
}

test('signed synthetic chain with a matching TCB level: accepted, TCB evaluation on, UpToDate', async () => {
  const v = await run({ editTcbInfo: matchLevel0 });
  assert.equal(v.tcbEvaluated, true);
  assert.equal(v.tcbStatus, 'UpToDate');
  assert.equal(v.qe.status, 'UpToDate');
  assert.deepEqual(v.advisoryIds, []);
  assert.equal(v.tcbEvaluationDataNumber, 15);
  assert.ok(v.checks.includes('TCB level: UpToDate'));
});

test('the real collateral\'s levels under the same chain: no level matches (TCB not supported)', async () => {
  await rejects({}, 'tdx_tcb_not_supported');
  // SGX level matches, TDX components do not (TEE_TCB_SVN[2] = 4 < 5).
  const e = await rejects({ editTcbInfo: (t) => setLevel(t.tcbLevels[1], SGX, 5, [3, 0, 5]) }, 'tdx_tcb_not_supported');
  assert.match(e.message, /TEE_TCB_SVN/);
});

test('first matching level wins; OutOfDate is refused by default with its advisories and accepted when listed', async () => {
  // Level 0 needs a higher TDX SVN; level 1 matches and is OutOfDate.
  const edit = (t: any): void => {
    setLevel(t.tcbLevels[0], SGX, 11, [3, 0, 5]);
    setLevel(t.tcbLevels[1], SGX, 11, [3, 0, 4]);
  };
  const e = await rejects({ editTcbInfo: edit }, 'tdx_tcb_out_of_date');
  assert.match(e.message, /INTEL-SA-00106/);
  const v = await run({ editTcbInfo: edit }, { acceptedTcbStatuses: ['OutOfDate'] });
  assert.equal(v.tcbStatus, 'OutOfDate');
  assert.ok(v.advisoryIds.includes('INTEL-SA-00477'));
  // PCESVN below level 0's requirement also falls through to level 1.
  await rejects({ editTcbInfo: (t) => { setLevel(t.tcbLevels[0], SGX, 12, [3]); setLevel(t.tcbLevels[1], SGX, 11, [3]); } }, 'tdx_tcb_out_of_date');
});

test('statuses: SWHardeningNeeded and ConfigurationNeeded accepted by default; Revoked and OutOfDateConfigurationNeeded refused', async () => {
  for (const s of ['SWHardeningNeeded', 'ConfigurationNeeded', 'ConfigurationAndSWHardeningNeeded']) {
    const v = await run({ editTcbInfo: (t) => { matchLevel0(t); t.tcbLevels[0].tcbStatus = s; } });
    assert.equal(v.tcbStatus, s);
  }
  await rejects({ editTcbInfo: (t) => { matchLevel0(t); t.tcbLevels[0].tcbStatus = 'Revoked'; } }, 'tdx_tcb_revoked');
  await rejects({ editTcbInfo: (t) => { matchLevel0(t); t.tcbLevels[0].tcbStatus = 'OutOfDateConfigurationNeeded'; } }, 'tdx_tcb_out_of_date_configuration_needed');
  await rejects({ editTcbInfo: (t) => { matchLevel0(t); t.tcbLevels[0].tcbStatus = 'Great'; } }, 'tdx_tcb_info_malformed');
  await rejects({ editTcbInfo: (t) => { matchLevel0(t); t.tcbLevels[0].tcbStatus = 'UpToDate'; } }, 'tdx_tcb_up_to_date', { acceptedTcbStatuses: ['SWHardeningNeeded'] });
});

test('QE identity: ISVSVN level status converges into the TCB status; mismatches are named', async () => {
  const qeLevels = (levels: any[]) => (e: any): void => { e.tcbLevels = levels; };
  const outOfDateQe = qeLevels([{ tcb: { isvsvn: 5 }, tcbDate: '2023-06-01T00:00:00Z', tcbStatus: 'UpToDate' }, { tcb: { isvsvn: 3 }, tcbDate: '2022-01-01T00:00:00Z', tcbStatus: 'OutOfDate', advisoryIDs: ['INTEL-SA-99999'] }]);
  const e = await rejects({ editTcbInfo: matchLevel0, editQeIdentity: outOfDateQe }, 'tdx_tcb_out_of_date');
  assert.match(e.message, /INTEL-SA-99999/);
  const cfg = await run({ editTcbInfo: (t) => { matchLevel0(t); t.tcbLevels[0].tcbStatus = 'ConfigurationNeeded'; }, editQeIdentity: outOfDateQe }, { acceptedTcbStatuses: ['OutOfDateConfigurationNeeded'] });
  assert.equal(cfg.tcbStatus, 'OutOfDateConfigurationNeeded');
  assert.equal(cfg.qe.status, 'OutOfDate');
  await rejects({ editTcbInfo: matchLevel0, editQeIdentity: qeLevels([{ tcb: { isvsvn: 4 }, tcbDate: '2023-06-01T00:00:00Z', tcbStatus: 'Revoked' }]) }, 'tdx_tcb_revoked');
  await rejects({ editTcbInfo: matchLevel0, editQeIdentity: qeLevels([{ tcb: { isvsvn: 9 }, tcbDate: '2023-06-01T00:00:00Z', tcbStatus: 'UpToDate' }]) }, 'tdx_qe_tcb_not_supported');
  await rejects({ editTcbInfo: matchLevel0, editQeIdentity: (q) => { q.mrsigner = '00'.repeat(32); } }, 'tdx_qe_identity_mismatch');
  await rejects({ editTcbInfo: matchLevel0, editQeIdentity: (q) => { q.isvprodid = 1; } }, 'tdx_qe_identity_mismatch');
  await rejects({ editTcbInfo: matchLevel0, editQeIdentity: (q) => { q.attributes = '13000000000000000000000000000000'; } }, 'tdx_qe_identity_mismatch');
  await rejects({ editTcbInfo: matchLevel0, editQeIdentity: (q) => { q.miscselect = '00000001'; } }, 'tdx_qe_identity_mismatch');
  await rejects({ editTcbInfo: matchLevel0, editQeIdentity: (q) => { q.id = 'QE'; } }, 'tdx_qe_identity_mismatch');
  // Masked-out attribute bits do not matter.
  const masked = await run({ editTcbInfo: matchLevel0, editQeIdentity: (q) => { q.attributes = '15000000000000000000000000000000'; q.attributesMask = 'FBFFFFFFFFFFFFFF0000000000000000'; } }).catch((x) => x);
  assert.ok(masked instanceof AttestationError && masked.code === 'tdx_qe_identity_mismatch'); // 0x15 & 0xFB = 0x11 != 0x15
  const masked2 = await run({ editTcbInfo: matchLevel0, editQeIdentity: (q) => { q.attributes = '11000000000000000000000000000000'; q.attributesMask = 'FBFFFFFFFFFFFFFF0000000000000000'; } });
  assert.equal(masked2.tcbStatus, 'UpToDate');
});

test('TDX module: version 0 checks the TCB info\'s tdxModule; version > 0 needs its TDX_NN identity and level', async () => {
  assert.equal(tdxModuleIdentityId(1), 'TDX_01');
  assert.equal(tdxModuleIdentityId(0x1a), 'TDX_1A');
  await rejects({ editTcbInfo: (t) => { matchLevel0(t); t.tdxModule.mrsigner = 'ab'.repeat(48); } }, 'tdx_module_mismatch');
  await rejects({ editTcbInfo: (t) => { matchLevel0(t); delete t.tdxModule; } }, 'tdx_tcb_info_mismatch');

  const moduleV1 = (body: Uint8Array): void => { body[1] = 1; body[0] = 2; body[2] = 4; };
  const identity = (status: string, isvsvn = 2): any => ({ id: 'TDX_01', mrsigner: '00'.repeat(48), attributes: '0000000000000000', attributesMask: 'FFFFFFFFFFFFFFFF', tcbLevels: [{ tcb: { isvsvn }, tcbDate: '2023-03-01T00:00:00Z', tcbStatus: status, advisoryIDs: ['INTEL-SA-01000'] }] });
  // With a module version the first two TDX components are not compared (level 0 asks for 3,0 / SVN 2 is lower).
  const editWith = (status: string, isvsvn?: number) => (t: any): void => { setLevel(t.tcbLevels[0], SGX, 11, [3, 0, 4]); t.tdxModuleIdentities = [identity(status, isvsvn)]; };
  const v = await run({ editBody: moduleV1, editTcbInfo: editWith('UpToDate') });
  assert.equal(v.tcbStatus, 'UpToDate');
  assert.equal(v.tdxModuleStatus, 'UpToDate');
  assert.ok(v.advisoryIds.includes('INTEL-SA-01000'));
  await rejects({ editBody: moduleV1, editTcbInfo: editWith('OutOfDate') }, 'tdx_tcb_out_of_date');
  await rejects({ editBody: moduleV1, editTcbInfo: editWith('Revoked') }, 'tdx_tcb_revoked');
  await rejects({ editBody: moduleV1, editTcbInfo: editWith('UpToDate', 3) }, 'tdx_tcb_not_supported');
  await rejects({ editBody: moduleV1, editTcbInfo: (t) => { matchLevel0(t); } }, 'tdx_tcb_info_mismatch');
  await rejects({ editBody: moduleV1, editTcbInfo: (t) => { editWith('UpToDate')(t); t.tdxModuleIdentities[0].id = 'TDX_02'; } }, 'tdx_module_mismatch');
  await rejects({ editBody: moduleV1, editTcbInfo: (t) => { editWith('UpToDate')(t); t.tdxModuleIdentities[0].mrsigner = '01'.repeat(48); } }, 'tdx_module_mismatch');
});

test('collateral/PCK binding: FMSPC, PCEID, TCB info id, evaluation data number, revoked PCK', async () => {
  await rejects({ editTcbInfo: (t) => { matchLevel0(t); t.fmspc = '00906ed50000'; } }, 'tdx_tcb_info_mismatch');
  await rejects({ editTcbInfo: (t) => { matchLevel0(t); t.pceId = '0100'; } }, 'tdx_tcb_info_mismatch');
  await rejects({ editTcbInfo: (t) => { matchLevel0(t); t.id = 'SGX'; } }, 'tdx_tcb_info_mismatch');
  await rejects({ editTcbInfo: matchLevel0 }, 'tdx_tcb_evaluation_data_number_too_low', { minTcbEvaluationDataNumber: 16 });
  assert.equal((await run({ editTcbInfo: matchLevel0 }, { minTcbEvaluationDataNumber: 15 })).tcbStatus, 'UpToDate');
  await rejects({ editTcbInfo: matchLevel0, revokePck: true }, 'tdx_pck_chain_revoked');
  await rejects({ editTcbInfo: matchLevel0, pckTcb: { ...REAL_PCK_TCB, fmspc: '50806f000001' } }, 'tdx_tcb_info_mismatch');
});

test('a debuggable TD with a valid signature is still refused (strict default)', async () => {
  await rejects({ editTcbInfo: matchLevel0, editBody: (b) => { b[120] |= 1; } }, 'tdx_td_debug');
  await rejects({ editTcbInfo: matchLevel0, editBody: (b) => { b[112] = 1; } }, 'tdx_module_mismatch'); // SEAMATTRIBUTES, caught by QVL's module check first
});

test('a migratable TD with a valid signature is refused by default; allowMigratable accepts it', async () => {
  const migratable = (b: Uint8Array): void => { b[120 + 3] |= 0x20; }; // TD ATTRIBUTES bit 29
  const e = await rejects({ editTcbInfo: matchLevel0, editBody: migratable }, 'tdx_td_migratable');
  assert.match(e.message, /TD ATTRIBUTES 0x0000000070000000 has MIGRATABLE \(bit 29\) set, expected clear/);
  const v = await run({ editTcbInfo: matchLevel0, editBody: migratable }, { allowMigratable: true });
  assert.equal(v.tcbStatus, 'UpToDate');
  assert.ok(v.checks.includes('TD MIGRATABLE allowed by policy'));
  // Without the relaxation a TD that is not migratable passes and says so.
  assert.ok((await run({ editTcbInfo: matchLevel0 })).checks.includes('TD not MIGRATABLE'));
});

test('SEPT_VE_DISABLE is required by default; allowSeptVe accepts a TD without it', async () => {
  const septVe = (b: Uint8Array): void => { b[120 + 3] &= ~0x10; }; // clear TD ATTRIBUTES bit 28
  await rejects({ editTcbInfo: matchLevel0, editBody: septVe }, 'tdx_td_sept_ve_enabled');
  assert.equal((await run({ editTcbInfo: matchLevel0, editBody: septVe }, { allowSeptVe: true })).tcbStatus, 'UpToDate');
});

test('a PCK certificate without the SGX Type item verifies (go-tdx-guest does not require it)', async () => {
  const v = await run({ editTcbInfo: matchLevel0, pckWithoutSgxType: true });
  assert.equal(v.tcbStatus, 'UpToDate');
  assert.equal(v.fmspc, REAL_PCK_TCB.fmspc);
});

test('the synthetic chain is refused under the real Intel root', async () => {
  const s = buildSynthetic({ editTcbInfo: matchLevel0 });
  await assert.rejects(verifyTdxQuote(s.quote, { collateral: s.collateral, at: AT }), (e: unknown) => e instanceof AttestationError && e.code === 'tdx_root_crl_issuer_mismatch');
  await assert.rejects(verifyTdxQuote(s.quote, { at: AT, policy: { tcbEvaluation: false } }), (e: unknown) => e instanceof AttestationError && e.code === 'tdx_pck_chain_untrusted_root');
});

test('TD 1.5 relaunch check: an out-of-date TDX module whose TEE_TCB_SVN2 meets the latest level is told to relaunch', async () => {
  // Module v1 at ISVSVN 2 is OutOfDate (latest is 3); the TCB level itself is UpToDate.
  const editBody = (b: Uint8Array): void => { b[0] = 2; b[1] = 1; b[2] = 4; };
  const editTcbInfo = (t: any): void => {
    setLevel(t.tcbLevels[0], SGX, 11, [0, 0, 4]);
    t.tdxModuleIdentities = [{ id: 'TDX_01', mrsigner: '00'.repeat(48), attributes: '0000000000000000', attributesMask: 'FFFFFFFFFFFFFFFF', tcbLevels: [
      { tcb: { isvsvn: 3 }, tcbDate: '2023-06-01T00:00:00Z', tcbStatus: 'UpToDate' },
      { tcb: { isvsvn: 2 }, tcbDate: '2023-01-01T00:00:00Z', tcbStatus: 'OutOfDate' },
    ] }];
  };
  const v4 = await rejects({ editBody, editTcbInfo }, 'tdx_tcb_out_of_date'); // TD 1.0 report: no relaunch check
  assert.ok(v4);
  await rejects({ editBody, editTcbInfo, td15TeeTcbSvn2: [3, 1, 4] }, 'tdx_tcb_td_relaunch_advised');
  const ok = await run({ editBody, editTcbInfo, td15TeeTcbSvn2: [3, 1, 4] }, { acceptedTcbStatuses: ['TDRelaunchAdvised'] });
  assert.equal(ok.quoteVersion, 5);
  assert.equal(ok.bodyType, 'TD15');
  assert.equal(ok.tcbStatus, 'TDRelaunchAdvised');
  await rejects({ editBody, editTcbInfo, td15TeeTcbSvn2: [2, 1, 4] }, 'tdx_tcb_out_of_date'); // relaunching would not help
  await rejects({ editBody, editTcbInfo, td15TeeTcbSvn2: [3, 2, 4] }, 'tdx_module_mismatch'); // no TDX_02 identity
  await rejects({ editBody, editTcbInfo: (t) => { editTcbInfo(t); t.tcbLevels[0].tcbStatus = 'ConfigurationNeeded'; }, td15TeeTcbSvn2: [3, 1, 4] }, 'tdx_tcb_td_relaunch_advised_configuration_needed');
});

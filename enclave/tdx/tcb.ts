// Intel's TCB status evaluation for TDX, as the DCAP Quote Verification Library does it
// (TcbLevelCheck, TdxModuleCheck, EnclaveReportVerifier): pure functions over already-verified
// collateral. Levels are taken in the order Intel publishes them (highest first).
import { AttestationError } from '../errors.js';
import { bytesEqual } from '../pki/verify.js';
import { toHex } from '../encoding.js';
import type { IsvTcbLevel, QeIdentity, TcbInfo, TcbLevel, TcbStatus, TdxModuleIdentity } from './collateral.js';
import type { PckExtensions } from './pck.js';
import type { QeReport, TdReportBody } from './quote.js';

export interface QeIdentityResult {
  status: TcbStatus;
  level: IsvTcbLevel;
}

/**
 * QE identity check: MISCSELECT and ATTRIBUTES under their masks, MRSIGNER, ISVPRODID, then the
 * first level whose ISVSVN the report meets. Mismatches throw; the ISVSVN level's status is returned.
 */
export function evaluateQeIdentity(id: QeIdentity, report: QeReport): QeIdentityResult {
  if (id.id !== 'TD_QE' || id.version !== 2) {
    throw new AttestationError('tdx_qe_identity_mismatch', `QE identity is ${id.id} version ${id.version}, expected TD_QE version 2`);
  }
  for (let i = 0; i < 4; i++) {
    if ((report.miscSelect[i] & id.miscSelectMask[i]) !== id.miscSelect[i]) {
      throw new AttestationError('tdx_qe_identity_mismatch', `QE MISCSELECT is ${toHex(report.miscSelect)}, expected ${toHex(id.miscSelect)} under mask ${toHex(id.miscSelectMask)}`);
    }
  }
  for (let i = 0; i < 16; i++) {
    if ((report.attributes[i] & id.attributesMask[i]) !== id.attributes[i]) {
      throw new AttestationError('tdx_qe_identity_mismatch', `QE ATTRIBUTES are ${toHex(report.attributes)}, expected ${toHex(id.attributes)} under mask ${toHex(id.attributesMask)}`);
    }
  }
  if (!bytesEqual(report.mrSigner, id.mrSigner)) {
    throw new AttestationError('tdx_qe_identity_mismatch', `QE MRSIGNER is ${toHex(report.mrSigner)}, expected ${toHex(id.mrSigner)}`);
  }
  if (report.isvProdId !== id.isvProdId) {
    throw new AttestationError('tdx_qe_identity_mismatch', `QE ISVPRODID is ${report.isvProdId}, expected ${id.isvProdId}`);
  }
  const level = id.tcbLevels.find((l) => report.isvSvn >= l.isvSvn);
  if (!level) throw new AttestationError('tdx_qe_tcb_not_supported', `QE ISVSVN is ${report.isvSvn}, below every QE identity TCB level (lowest ${Math.min(...id.tcbLevels.map((l) => l.isvSvn))})`);
  return { status: level.status, level };
}

export interface TdxTcbResult {
  /** Final status after converging the TDX level with the TDX module and QE statuses. */
  status: TcbStatus;
  /** Status of the matched TCB level alone. */
  levelStatus: TcbStatus;
  sgxLevel: TcbLevel;
  tdxLevel: TcbLevel;
  tdxModuleStatus?: TcbStatus;
  tdxModuleIdentityId?: string;
  advisoryIds: string[];
}

/** The TDX module identity id Intel uses for a module major version (TEE_TCB_SVN[1]). */
export function tdxModuleIdentityId(version: number): string {
  return `TDX_${version.toString(16).toUpperCase().padStart(2, '0')}`;
}

/**
 * Checks MRSIGNERSEAM and SEAMATTRIBUTES against the TCB info's TDX module (or, for module versions
 * > 0, the matching tdxModuleIdentities entry) and returns that identity's module TCB status.
 */
export function checkTdxModule(info: TcbInfo, body: TdReportBody): { status?: TcbStatus; identityId?: string; advisoryIds: string[] } {
  const version = body.teeTcbSvn[1];
  const isvSvn = body.teeTcbSvn[0];
  let expected = info.tdxModule;
  let identity: TdxModuleIdentity | undefined;
  if (version > 0) {
    if (!info.tdxModuleIdentities) {
      throw new AttestationError('tdx_tcb_info_mismatch', 'TDX module version is set but the TCB info has no module identities');
    }
    identity = info.tdxModuleIdentities.find((m) => m.id.toUpperCase() === tdxModuleIdentityId(version));
    if (!identity) throw new AttestationError('tdx_module_mismatch', `TEE_TCB_SVN names TDX module ${tdxModuleIdentityId(version)}, expected one of the TCB info's identities (${info.tdxModuleIdentities.map((m) => m.id).join(', ')})`);
    expected = identity;
  }
  if (!expected) throw new AttestationError('tdx_tcb_info_mismatch', 'TCB info has no TDX module description');
  if (!bytesEqual(body.mrSignerSeam, expected.mrSigner)) {
    throw new AttestationError('tdx_module_mismatch', `MRSIGNERSEAM is ${toHex(body.mrSignerSeam)}, expected ${toHex(expected.mrSigner)}`);
  }
  // QVL requires SEAMATTRIBUTES to be all zero and equal to the identity's attributes.
  for (let i = 0; i < 8; i++) {
    if (body.seamAttributes[i] !== 0 || expected.attributes[i] !== 0) {
      throw new AttestationError('tdx_module_mismatch', `SEAMATTRIBUTES are ${toHex(body.seamAttributes)} (identity ${toHex(expected.attributes)}), expected zero`);
    }
  }
  if (!identity) return { advisoryIds: [] };
  const level = identity.tcbLevels.find((l) => isvSvn >= l.isvSvn);
  if (!level) throw new AttestationError('tdx_tcb_not_supported', `TDX module ISVSVN is ${isvSvn}, below every module TCB level of ${identity.id}`);
  return { status: level.status, identityId: identity.id, advisoryIds: level.advisoryIds };
}

function convergeWithOutOfDate(levelStatus: TcbStatus, other: TcbStatus): TcbStatus {
  if (other === 'OutOfDate') {
    if (levelStatus === 'UpToDate' || levelStatus === 'SWHardeningNeeded') return 'OutOfDate';
    if (levelStatus === 'ConfigurationNeeded' || levelStatus === 'ConfigurationAndSWHardeningNeeded') return 'OutOfDateConfigurationNeeded';
  }
  if (other === 'Revoked') return 'Revoked';
  return levelStatus;
}

function higherOrEqual(have: ArrayLike<number>, need: number[], from = 0): boolean {
  for (let i = from; i < 16; i++) if (have[i] < need[i]) return false;
  return true;
}

/**
 * Intel's TCB level matching for TDX: the first level whose SGX components and PCESVN the PCK
 * certificate meets selects the SGX level; the first such level whose TDX components TEE_TCB_SVN
 * also meets (skipping the module's two bytes when a module version is reported) is the TDX level.
 * Its status is converged with the TDX module status and then the QE identity status.
 */
export function evaluateTdxTcb(info: TcbInfo, pck: PckExtensions, body: TdReportBody, qe: QeIdentityResult): TdxTcbResult {
  if (info.id !== 'TDX' || info.version !== 3) {
    throw new AttestationError('tdx_tcb_info_mismatch', `TCB info is ${info.id} version ${info.version}, expected TDX version 3`);
  }
  if (!bytesEqual(info.fmspc, pck.fmspc)) throw new AttestationError('tdx_tcb_info_mismatch', `PCK certificate FMSPC is ${toHex(pck.fmspc)}, the TCB info's is ${toHex(info.fmspc)}`);
  if (!bytesEqual(info.pceId, pck.pceId)) throw new AttestationError('tdx_tcb_info_mismatch', `PCK certificate PCEID is ${toHex(pck.pceId)}, the TCB info's is ${toHex(info.pceId)}`);
  const module = checkTdxModule(info, body);

  let sgxLevel: TcbLevel | undefined;
  let tdxLevel: TcbLevel | undefined;
  const from = body.teeTcbSvn[1] > 0 ? 2 : 0;
  for (const level of info.tcbLevels) {
    if (!higherOrEqual(pck.compSvn, level.sgxComponents) || pck.pceSvn < level.pceSvn) continue;
    sgxLevel ??= level;
    if (level.tdxComponents.length === 16 && higherOrEqual(body.teeTcbSvn, level.tdxComponents, from)) {
      tdxLevel = level;
      break;
    }
  }
  if (!sgxLevel) throw new AttestationError('tdx_tcb_not_supported', `the platform SGX TCB (PCK certificate: components ${pck.compSvn.join(',')}, PCESVN ${pck.pceSvn}) is below every TCB level`);
  if (!tdxLevel) throw new AttestationError('tdx_tcb_not_supported', `TEE_TCB_SVN ${[...body.teeTcbSvn].join(',')} is below every TDX TCB level (highest needs ${info.tcbLevels[0]?.tdxComponents.join(',') ?? 'none'})`);

  let status = tdxLevel.status;
  if (module.status) status = convergeWithOutOfDate(status, module.status);
  if (status !== 'Revoked' && body.type === 'TD15' && body.teeTcbSvn2) {
    status = checkRelaunch(info, body.teeTcbSvn2, sgxLevel.status, status, module.status ?? 'UpToDate', qe.status);
  }
  status = convergeWithOutOfDate(status, qe.status);
  const advisoryIds = [...new Set([...tdxLevel.advisoryIds, ...module.advisoryIds, ...qe.level.advisoryIds])];
  const result: TdxTcbResult = { status, levelStatus: tdxLevel.status, sgxLevel, tdxLevel, advisoryIds };
  if (module.status) {
    result.tdxModuleStatus = module.status;
    result.tdxModuleIdentityId = module.identityId;
  }
  return result;
}

const isConfigurationNeeded = (s: TcbStatus): boolean =>
  s === 'ConfigurationNeeded' || s === 'OutOfDateConfigurationNeeded' || s === 'ConfigurationAndSWHardeningNeeded'
  || s === 'TDRelaunchAdvisedConfigurationNeeded';

/**
 * QVL's TD relaunch check (TD 1.5 reports): a TD whose TDX module is out of date, on a platform whose
 * SGX TCB is fine, is told to relaunch when TEE_TCB_SVN2 (what a relaunched TD would report) already
 * meets the latest TCB level and module identity. Otherwise the status stands.
 */
export function checkRelaunch(
  info: TcbInfo, svn2: Uint8Array, sgx: TcbStatus, tdx: TcbStatus, moduleStatus: TcbStatus, qe: TcbStatus,
): TcbStatus {
  if (qe === 'OutOfDate' || qe === 'Revoked') return tdx;
  if (sgx !== 'UpToDate' && sgx !== 'SWHardeningNeeded' && sgx !== 'ConfigurationNeeded' && sgx !== 'ConfigurationAndSWHardeningNeeded') return tdx;
  if (tdx !== 'OutOfDate' && tdx !== 'OutOfDateConfigurationNeeded') return tdx;
  if (moduleStatus !== 'OutOfDate') return tdx;
  const latest = info.tcbLevels[0];
  const advised: TcbStatus = isConfigurationNeeded(sgx) || isConfigurationNeeded(tdx) ? 'TDRelaunchAdvisedConfigurationNeeded' : 'TDRelaunchAdvised';
  let moduleSvnNeeded: number;
  if (svn2[1] === 0) {
    moduleSvnNeeded = latest.tdxComponents[0];
  } else {
    const identity = info.tdxModuleIdentities?.find((m) => m.id.toUpperCase() === tdxModuleIdentityId(svn2[1]));
    if (!identity) throw new AttestationError('tdx_module_mismatch', `no TDX module identity ${tdxModuleIdentityId(svn2[1])} for TEE_TCB_SVN2`);
    moduleSvnNeeded = identity.tcbLevels[0].isvSvn;
  }
  return svn2[0] >= moduleSvnNeeded && svn2[2] >= latest.tdxComponents[2] ? advised : tdx;
}

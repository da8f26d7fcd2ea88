// SEV-SNP policy checks only (go-sev-guest's "validate" layer): the guest policy's strict defaults,
// VMPL, and the CONTRACT pins. Inputs are an already-parsed report and a parsed policy; signatures
// and chains are verify.ts's job.
import { AttestationError } from '../errors.js';
import { bytesEqual } from '../encoding.js';
import type { SevSnpPolicy } from '../policy.js';
import { decodeTcb, type SevProduct, type SevSnpReport } from './report.js';

// GUEST_POLICY bits (SEV-SNP ABI spec, "Guest Policy Structure").
export const POLICY_BIT = {
  smt: 16,
  mustBeOne: 17,
  migrateMa: 18,
  debug: 19,
  singleSocket: 20,
  cxlAllow: 21,
  memAes256Xts: 22,
  raplDis: 23,
  ciphertextHiding: 24,
  pageSwapDisable: 25,
} as const;
/** Bits 63:26 are reserved and must be zero. */
export const POLICY_RESERVED_MASK = ~((1n << 26n) - 1n) & 0xffff_ffff_ffff_ffffn;

const bit = (v: bigint, n: number) => ((v >> BigInt(n)) & 1n) === 1n;

/** Checks the report against the policy; returns the names of the checks made, throws on the first failure. */
export function checkSevSnpPolicy(r: SevSnpReport, p: SevSnpPolicy, product: SevProduct): string[] {
  const checks: string[] = [];
  const fail = (code: string, msg: string): never => {
    throw new AttestationError(code, msg);
  };
  if (!bit(r.policy, POLICY_BIT.mustBeOne)) fail('sev_policy_reserved', 'guest policy bit 17 (must be one) is zero');
  if ((r.policy & POLICY_RESERVED_MASK) !== 0n) fail('sev_policy_reserved', 'guest policy reserved bits 63:26 are set');
  checks.push('guest policy reserved bits');
  if (bit(r.policy, POLICY_BIT.debug) && !p.allowDebug) fail('sev_policy_debug', 'guest policy allows debugging');
  checks.push(p.allowDebug ? 'guest policy debug (allowed by policy)' : 'guest policy debug off');
  if (bit(r.policy, POLICY_BIT.migrateMa)) fail('sev_policy_migration_agent', 'guest policy allows a migration agent');
  checks.push('no migration agent');
  if (r.vmpl !== 0) fail('sev_vmpl', `report was requested from VMPL ${r.vmpl}, not 0`);
  checks.push('VMPL 0');

  if (p.measurement) {
    if (!p.measurement.some((m) => bytesEqual(m, r.measurement))) fail('sev_measurement_mismatch', 'MEASUREMENT is not one of the pinned values');
    checks.push('measurement pinned');
  }
  if (p.hostData) {
    if (!bytesEqual(p.hostData, r.hostData)) fail('sev_host_data_mismatch', 'HOST_DATA differs from the pinned value');
    checks.push('hostData pinned');
  }
  if (p.reportData) {
    if (!bytesEqual(p.reportData, r.reportData)) fail('sev_report_data_mismatch', 'REPORT_DATA differs from the pinned value');
    checks.push('reportData pinned');
  }
  if (p.idKeyDigest) {
    if (!bytesEqual(p.idKeyDigest, r.idKeyDigest)) fail('sev_id_key_digest_mismatch', 'ID_KEY_DIGEST differs from the pinned value');
    checks.push('idKeyDigest pinned');
  }
  if (p.authorKeyDigest) {
    if (!r.authorKeyEn) fail('sev_author_key_digest_mismatch', 'no author key was used but one is pinned');
    if (!bytesEqual(p.authorKeyDigest, r.authorKeyDigest)) {
      fail('sev_author_key_digest_mismatch', 'AUTHOR_KEY_DIGEST differs from the pinned value');
    }
    checks.push('authorKeyDigest pinned');
  }
  if (p.minTcb) {
    const tcb = decodeTcb(r.reportedTcb, product);
    for (const k of ['bootloader', 'tee', 'snp', 'microcode', 'fmc'] as const) {
      const min = p.minTcb[k];
      if (min === undefined) continue;
      if (k === 'fmc' && product !== 'Turin') fail('sev_tcb_too_low', 'minTcb.fmc applies only to Turin');
      const have = tcb[k] ?? 0;
      if (have < min) fail('sev_tcb_too_low', `REPORTED_TCB ${k} SPL ${have} is below the minimum ${min}`);
    }
    checks.push('minimum TCB');
  }
  return checks;
}

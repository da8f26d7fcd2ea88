// SEV-SNP policy checks only (go-sev-guest's "validate" layer): the guest policy's strict defaults,
// VMPL, guest SVN, the firmware relations (firmware.ts) and the CONTRACT pins. Inputs are an
// already-parsed report and a parsed policy; signatures and chains are verify.ts's job. Every
// rejection names the value the report carries and the value expected.
import { AttestationError } from '../errors.js';
import { bytesEqual, toHex } from '../encoding.js';
import type { SevSnpPolicy } from '../policy.js';
import { checkFirmware } from './firmware.js';
import type { SevProduct, SevSnpReport } from './report.js';

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

function fail(code: string, message: string): never {
  throw new AttestationError(code, message);
}

/** Checks the report against the policy; returns the names of the checks made, throws on the first failure. */
export function checkSevSnpPolicy(r: SevSnpReport, p: SevSnpPolicy, product: SevProduct): string[] {
  const checks: string[] = [];
  const gp = `guest policy 0x${r.policy.toString(16).padStart(16, '0')}`;
  if (!bit(r.policy, POLICY_BIT.mustBeOne)) fail('sev_policy_reserved', `${gp} has bit 17 clear, expected set (must be one)`);
  if ((r.policy & POLICY_RESERVED_MASK) !== 0n) {
    fail('sev_policy_reserved', `${gp} has reserved bits 63:26 = 0x${(r.policy >> 26n).toString(16)}, expected 0`);
  }
  checks.push('guest policy reserved bits');
  if (bit(r.policy, POLICY_BIT.debug) && !p.allowDebug) fail('sev_policy_debug', `${gp} has DEBUG (bit 19) set, expected clear (allowDebug to accept)`);
  checks.push(p.allowDebug ? 'guest policy debug (allowed by policy)' : 'guest policy debug off');
  if (bit(r.policy, POLICY_BIT.migrateMa)) fail('sev_policy_migration_agent', `${gp} has MIGRATE_MA (bit 18) set, expected clear: no migration agent`);
  checks.push('no migration agent');
  if (bit(r.policy, POLICY_BIT.smt) && !p.allowSmt) fail('sev_policy_smt', `${gp} has SMT (bit 16) set, expected clear (allowSmt is false)`);
  if (p.requireSingleSocket && !bit(r.policy, POLICY_BIT.singleSocket)) {
    fail('sev_policy_single_socket', `${gp} has SINGLE_SOCKET (bit 20) clear, expected set (requireSingleSocket)`);
  }
  if (!p.allowSmt || p.requireSingleSocket) checks.push('guest policy SMT / single socket as required');

  const vmpl = p.vmpl ?? 0;
  if (r.vmpl !== vmpl) fail('sev_vmpl', `report was requested at VMPL ${r.vmpl}, expected VMPL ${vmpl}` + (p.vmpl === undefined ? ' (the default; pin `vmpl` for a guest under an SVSM)' : ''));
  checks.push(`VMPL ${vmpl}`);
  if (p.minGuestSvn !== undefined) {
    if (r.guestSvn < p.minGuestSvn) fail('sev_guest_svn_too_low', `GUEST_SVN is ${r.guestSvn}, expected at least ${p.minGuestSvn}`);
    checks.push('minimum guest SVN');
  }

  checks.push(...checkFirmware(r, p, product));

  // A pin is met when the field holds exactly the pinned bytes, whatever the field means: an all-zero
  // authorKeyDigest pin matches a report whose guest was launched without an author key.
  const pin = (key: string, field: string, code: string, want: Uint8Array | undefined, have: Uint8Array): void => {
    if (!want) return;
    if (!bytesEqual(want, have)) fail(code, `${field} is ${toHex(have)}, expected ${toHex(want)} (${key})`);
    checks.push(`${key} pinned`);
  };
  if (p.measurement) {
    if (!p.measurement.some((m) => bytesEqual(m, r.measurement))) {
      fail('sev_measurement_mismatch', `MEASUREMENT is ${toHex(r.measurement)}, expected ${p.measurement.length === 1 ? toHex(p.measurement[0]) : `one of ${p.measurement.map(toHex).join(', ')}`}`);
    }
    checks.push('measurement pinned');
  }
  pin('hostData', 'HOST_DATA', 'sev_host_data_mismatch', p.hostData, r.hostData);
  pin('reportData', 'REPORT_DATA', 'sev_report_data_mismatch', p.reportData, r.reportData);
  pin('idKeyDigest', 'ID_KEY_DIGEST', 'sev_id_key_digest_mismatch', p.idKeyDigest, r.idKeyDigest);
  pin('authorKeyDigest', 'AUTHOR_KEY_DIGEST', 'sev_author_key_digest_mismatch', p.authorKeyDigest, r.authorKeyDigest);
  pin('familyId', 'FAMILY_ID', 'sev_family_id_mismatch', p.familyId, r.familyId);
  pin('imageId', 'IMAGE_ID', 'sev_image_id_mismatch', p.imageId, r.imageId);
  return checks;
}

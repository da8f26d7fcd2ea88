// SEV-SNP firmware and TCB relations inside one report (go-sev-guest's validateTcb/validateVersion),
// checked after the signature, so every value here is the firmware's own statement:
//   - provisional firmware: COMMITTED_TCB and the committed firmware version equal to CURRENT. A
//     host that has loaded firmware without committing it can roll back to the committed one, whose
//     flaws the new one was meant to fix; `allowProvisionalFirmware` accepts committed below current.
//   - REPORTED_TCB not above CURRENT_TCB: the host chooses REPORTED_TCB (to let a fleet share one
//     VCEK TCB); claiming more than is running is never a legitimate choice. Relaxed by the same key.
//   - committed above current is never accepted: firmware cannot be older than what it committed.
//   - the policy's minimum TCB (REPORTED_TCB) and minimum launch TCB (LAUNCH_TCB), per component.
// Comparisons are per component (bootloader, TEE, SNP, microcode, and FMC on Turin), never as one
// number: the byte order of TCB_VERSION differs per product.
import { AttestationError } from '../errors.js';
import type { MinTcb, SevSnpPolicy } from '../policy.js';
import { decodeTcb, type SevProduct, type SevSnpReport, type TcbParts } from './report.js';

const COMPONENTS = ['fmc', 'bootloader', 'tee', 'snp', 'microcode'] as const;

function fail(code: string, message: string): never {
  throw new AttestationError(code, message);
}

const hex64 = (v: bigint): string => '0x' + v.toString(16).padStart(16, '0');

function show(t: TcbParts): string {
  return COMPONENTS.filter((k) => t[k] !== undefined).map((k) => `${k} ${t[k]}`).join(', ');
}

/** The first component where `a` is above `b`, or undefined when a <= b in every component. */
function firstAbove(a: TcbParts, b: TcbParts): (typeof COMPONENTS)[number] | undefined {
  return COMPONENTS.find((k) => (a[k] ?? 0) > (b[k] ?? 0));
}

const version = (major: number, minor: number, build: number): string => `${major}.${minor}.${build}`;

/**
 * Committed against current firmware version as major.minor.build, in that order: -1, 0 or 1. (A build
 * number counts within one major.minor, so 1.55.9 is older than 1.58.4.)
 */
function compareVersions(r: SevSnpReport): number {
  const v = (major: number, minor: number, build: number) => (major << 16) | (minor << 8) | build;
  return Math.sign(v(r.committedMajor, r.committedMinor, r.committedBuild) - v(r.currentMajor, r.currentMinor, r.currentBuild));
}

/** Throws on the first broken relation; returns the names of the checks made. */
export function checkFirmware(r: SevSnpReport, p: SevSnpPolicy, product: SevProduct): string[] {
  const checks: string[] = [];
  const current = decodeTcb(r.currentTcb, product);
  const committed = decodeTcb(r.committedTcb, product);
  const reported = decodeTcb(r.reportedTcb, product);
  const committedVersion = version(r.committedMajor, r.committedMinor, r.committedBuild);
  const currentVersion = version(r.currentMajor, r.currentMinor, r.currentBuild);
  const cmp = compareVersions(r);

  const over = firstAbove(committed, current);
  if (over) {
    fail('sev_committed_above_current', `COMMITTED_TCB ${over} ${committed[over]} is above CURRENT_TCB ${over} ${current[over]}`);
  }
  if (cmp > 0) {
    fail('sev_committed_above_current', `committed firmware ${committedVersion} is above the current firmware ${currentVersion}`);
  }
  if (!p.allowProvisionalFirmware) {
    if (r.committedTcb !== r.currentTcb) {
      fail('sev_firmware_provisional', `COMMITTED_TCB ${hex64(r.committedTcb)} (${show(committed)}) differs from CURRENT_TCB ${hex64(r.currentTcb)} (${show(current)}): provisional firmware (allowProvisionalFirmware to accept)`);
    }
    if (cmp !== 0) {
      fail('sev_firmware_provisional', `committed firmware ${committedVersion} differs from the current firmware ${currentVersion}: provisional firmware (allowProvisionalFirmware to accept)`);
    }
    const above = firstAbove(reported, current);
    if (above) {
      fail('sev_reported_tcb_above_current', `REPORTED_TCB ${above} ${reported[above]} is above CURRENT_TCB ${above} ${current[above]} (allowProvisionalFirmware to accept)`);
    }
    checks.push('firmware committed (COMMITTED = CURRENT), REPORTED_TCB <= CURRENT_TCB');
  } else {
    checks.push('firmware: committed <= current (provisional firmware allowed by policy)');
  }

  if (p.minTcb) {
    checkMinimum(reported, p.minTcb, product, 'REPORTED_TCB', 'minTcb', 'sev_tcb_too_low');
    checks.push('minimum TCB');
  }
  if (p.minLaunchTcb) {
    checkMinimum(decodeTcb(r.launchTcb, product), p.minLaunchTcb, product, 'LAUNCH_TCB', 'minLaunchTcb', 'sev_launch_tcb_too_low');
    checks.push('minimum launch TCB');
  }
  return checks;
}

function checkMinimum(have: TcbParts, min: MinTcb, product: SevProduct, field: string, key: string, code: string): void {
  for (const k of COMPONENTS) {
    const want = min[k];
    if (want === undefined) continue;
    if (k === 'fmc' && product !== 'Turin') fail(code, `${key}.fmc is ${want}, but a ${product} TCB has no FMC component (Turin only)`);
    const got = have[k] ?? 0;
    if (got < want) fail(code, `${field} ${k} SPL is ${got}, expected at least ${want} (${key})`);
  }
}

// Verification policy (CONTRACT.md "Policy file"): parse and validate the JSON once, strictly, into
// typed values. Every key is optional (absent = not pinned); the strict defaults always apply.
// Unknown keys are refused: a misspelt pin must not silently become "not pinned".
// Common and SEV-SNP keys are parsed here; TDX keys are collected in `tdx` and interpreted by the
// TDX verifier (enclave/tdx/), which validates them.
import { AttestationError } from './errors.js';
import { badPolicyKey as bad, policyHex as hexKey, policyObject } from './policy-doc.js';
import type { Platform } from './providers/types.js';
import { defaultTdxPolicy, parseTdxPolicy, type TdxPolicy } from './tdx/policy.js';

// Only objects this module produced count as parsed policies: a JSON document shaped like a Policy
// must still go through parsePolicy.
const PARSED = new WeakSet<object>();

export interface MinTcb {
  bootloader?: number;
  tee?: number;
  snp?: number;
  microcode?: number;
  /** Turin only. */
  fmc?: number;
}

export interface SevSnpPolicy {
  /** Accepted MEASUREMENT values (48 bytes each); any one matches. */
  measurement?: Uint8Array[];
  hostData?: Uint8Array;
  reportData?: Uint8Array;
  idKeyDigest?: Uint8Array;
  authorKeyDigest?: Uint8Array;
  familyId?: Uint8Array;
  imageId?: Uint8Array;
  minTcb?: MinTcb;
  minLaunchTcb?: MinTcb;
  minGuestSvn?: number;
  /** The VMPL the report must come from; undefined means the strict default, 0. */
  vmpl?: number;
  allowDebug: boolean;
  /** COMMITTED below CURRENT (TCB or firmware version) and REPORTED_TCB above CURRENT_TCB. */
  allowProvisionalFirmware: boolean;
  /** false refuses a guest policy that lets the guest run with SMT. */
  allowSmt: boolean;
  /** true refuses a guest policy without SINGLE_SOCKET. */
  requireSingleSocket: boolean;
}

export interface Policy {
  platforms?: Platform[];
  modelDigest?: Uint8Array;
  sevSnp: SevSnpPolicy;
  /** The TDX keys (mrtd, rtmr0..3, ..., acceptedTcbStatuses), validated by enclave/tdx/policy.ts. */
  tdx: TdxPolicy;
}

export const SEV_SNP_KEYS = [
  'measurement', 'hostData', 'reportData', 'idKeyDigest', 'authorKeyDigest', 'familyId', 'imageId', 'minTcb', 'minLaunchTcb',
  'minGuestSvn', 'vmpl', 'allowDebug', 'allowProvisionalFirmware', 'allowSmt', 'requireSingleSocket',
] as const;
export const TDX_KEYS = [
  'mrtd', 'rtmr0', 'rtmr1', 'rtmr2', 'rtmr3', 'tdAttributes', 'xfam', 'mrSignerSeam', 'seamAttributes',
  'mrSeamAllowlist', 'mrConfigId', 'mrOwner', 'mrOwnerConfig', 'minTeeTcbSvn', 'minTcbEvaluationDataNumber',
  'qeVendorId', 'fmspc', 'tcbEvaluation', 'acceptedTcbStatuses', 'allowMigratable', 'allowSeptVe',
] as const;
export const COMMON_KEYS = ['platforms', 'modelDigest'] as const;
// reportData is shared: SEV-SNP's 64-byte REPORT_DATA and TDX's REPORTDATA have the same meaning.
const SHARED_KEYS = new Set<string>(['reportData']);

export function defaultPolicy(): Policy {
  const p: Policy = {
    sevSnp: { allowDebug: false, allowProvisionalFirmware: false, allowSmt: true, requireSingleSocket: false },
    tdx: defaultTdxPolicy(),
  };
  PARSED.add(p);
  return p;
}

function int(key: string, v: unknown, max: number): number {
  if (typeof v !== 'number' || !Number.isInteger(v) || v < 0 || v > max) bad(key, `expected an integer 0..${max}`);
  return v;
}

function bool(key: string, v: unknown): boolean {
  if (typeof v !== 'boolean') bad(key, 'expected a boolean');
  return v;
}

function minTcb(key: string, m: unknown): MinTcb {
  if (typeof m !== 'object' || m === null || Array.isArray(m)) bad(key, 'expected an object');
  const out: MinTcb = {};
  for (const [k, v] of Object.entries(m as Record<string, unknown>)) {
    if (k !== 'bootloader' && k !== 'tee' && k !== 'snp' && k !== 'microcode' && k !== 'fmc') bad(key, `unknown field '${k}'`);
    out[k] = int(`${key}.${k}`, v, 255);
  }
  return out;
}

/** Parses a policy document (already JSON-decoded, or a JSON string). */
export function parsePolicy(input: unknown): Policy {
  const o = policyObject(input);
  if (o === undefined) return defaultPolicy();
  const known = new Set<string>([...COMMON_KEYS, ...SEV_SNP_KEYS, ...TDX_KEYS]);
  for (const k of Object.keys(o)) if (!known.has(k)) throw new AttestationError('policy_unknown_key', `unknown policy key '${k}'`);

  const p = defaultPolicy();
  if (o.platforms !== undefined) {
    if (!Array.isArray(o.platforms) || o.platforms.length === 0) bad('platforms', 'expected a non-empty array');
    const list: Platform[] = [];
    for (const v of o.platforms) {
      if (v !== 'sev-snp' && v !== 'tdx') bad('platforms', "entries must be 'sev-snp' or 'tdx'");
      if (!list.includes(v)) list.push(v);
    }
    p.platforms = list;
  }
  if (o.modelDigest !== undefined) p.modelDigest = hexKey('modelDigest', o.modelDigest, 32);

  if (o.measurement !== undefined) {
    const list = Array.isArray(o.measurement) ? o.measurement : [o.measurement];
    if (list.length === 0) bad('measurement', 'empty list would accept nothing');
    p.sevSnp.measurement = list.map((m) => hexKey('measurement', m, 48));
  }
  if (o.hostData !== undefined) p.sevSnp.hostData = hexKey('hostData', o.hostData, 32);
  if (o.reportData !== undefined) p.sevSnp.reportData = hexKey('reportData', o.reportData, 64);
  if (o.idKeyDigest !== undefined) p.sevSnp.idKeyDigest = hexKey('idKeyDigest', o.idKeyDigest, 48);
  if (o.authorKeyDigest !== undefined) p.sevSnp.authorKeyDigest = hexKey('authorKeyDigest', o.authorKeyDigest, 48);
  if (o.familyId !== undefined) p.sevSnp.familyId = hexKey('familyId', o.familyId, 16);
  if (o.imageId !== undefined) p.sevSnp.imageId = hexKey('imageId', o.imageId, 16);
  if (o.minTcb !== undefined) p.sevSnp.minTcb = minTcb('minTcb', o.minTcb);
  if (o.minLaunchTcb !== undefined) p.sevSnp.minLaunchTcb = minTcb('minLaunchTcb', o.minLaunchTcb);
  if (o.minGuestSvn !== undefined) p.sevSnp.minGuestSvn = int('minGuestSvn', o.minGuestSvn, 0xffffffff);
  if (o.vmpl !== undefined) p.sevSnp.vmpl = int('vmpl', o.vmpl, 3);
  for (const k of ['allowDebug', 'allowProvisionalFirmware', 'allowSmt', 'requireSingleSocket'] as const) {
    if (o[k] !== undefined) p.sevSnp[k] = bool(k, o[k]);
  }
  const tdxKeys: Record<string, unknown> = {};
  for (const k of [...TDX_KEYS, ...SHARED_KEYS]) if (o[k] !== undefined) tdxKeys[k] = o[k];
  p.tdx = parseTdxPolicy(tdxKeys);
  return p;
}

/** Accepts an already-parsed Policy, a policy JSON object/string, or nothing (defaults). */
export function toPolicy(input: Policy | unknown): Policy {
  if (isPolicy(input)) return input;
  return parsePolicy(input);
}

function isPolicy(v: unknown): v is Policy {
  return typeof v === 'object' && v !== null && PARSED.has(v);
}

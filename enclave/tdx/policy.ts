// TDX policy keys of CONTRACT.md, validated strictly (unknown key or wrong type: `policy_invalid` /
// `policy_unknown_key`), and the checks they drive. Byte-valued keys are hex of the field's bytes
// exactly as they appear in the quote (TD attributes, XFAM and SEAM attributes are little-endian
// u64 in the quote, so their hex reads byte by byte, not as a number).
import { AttestationError } from '../errors.js';
import { bytesEqual } from '../pki/verify.js';
import { toHex } from '../encoding.js';
import { badPolicyKey as bad, policyHex as hexBytes, policyObject } from '../policy-doc.js';
import { TCB_VERDICT_STATUSES, type TcbStatus } from './collateral.js';

export interface TdxPolicy {
  mrtd?: Uint8Array[];
  rtmr0?: Uint8Array;
  rtmr1?: Uint8Array;
  rtmr2?: Uint8Array;
  rtmr3?: Uint8Array;
  reportData?: Uint8Array;
  tdAttributes?: Uint8Array;
  xfam?: Uint8Array;
  mrSignerSeam?: Uint8Array;
  seamAttributes?: Uint8Array;
  mrSeamAllowlist?: Uint8Array[];
  mrConfigId?: Uint8Array;
  mrOwner?: Uint8Array;
  mrOwnerConfig?: Uint8Array;
  minTeeTcbSvn?: Uint8Array;
  minTcbEvaluationDataNumber?: number;
  qeVendorId?: Uint8Array;
  fmspc?: Uint8Array;
  tcbEvaluation: boolean;
  acceptedTcbStatuses: TcbStatus[];
  /** Accept a TD with ATTRIBUTES.MIGRATABLE (bit 29). */
  allowMigratable: boolean;
  /** Accept a TD with ATTRIBUTES.SEPT_VE_DISABLE (bit 28) clear. */
  allowSeptVe: boolean;
}

export const DEFAULT_ACCEPTED_TCB_STATUSES: readonly TcbStatus[] = [
  'UpToDate', 'SWHardeningNeeded', 'ConfigurationNeeded', 'ConfigurationAndSWHardeningNeeded',
];

export const TDX_POLICY_KEYS = [
  'mrtd', 'rtmr0', 'rtmr1', 'rtmr2', 'rtmr3', 'reportData', 'tdAttributes', 'xfam', 'mrSignerSeam',
  'seamAttributes', 'mrSeamAllowlist', 'mrConfigId', 'mrOwner', 'mrOwnerConfig', 'minTeeTcbSvn',
  'minTcbEvaluationDataNumber', 'qeVendorId', 'fmspc', 'tcbEvaluation', 'acceptedTcbStatuses', 'allowMigratable', 'allowSeptVe',
] as const;

const PARSED = new WeakSet<object>();

function hexList(key: string, v: unknown, bytes: number, allowSingle: boolean): Uint8Array[] {
  const list = Array.isArray(v) ? v : allowSingle ? [v] : bad(key, 'expected an array of hex strings');
  if (list.length === 0) bad(key, 'an empty list would accept nothing');
  return list.map((x) => hexBytes(key, x, bytes));
}

export function defaultTdxPolicy(): TdxPolicy {
  const p: TdxPolicy = {
    tcbEvaluation: true, acceptedTcbStatuses: [...DEFAULT_ACCEPTED_TCB_STATUSES], allowMigratable: false, allowSeptVe: false,
  };
  PARSED.add(p);
  return p;
}

/** Validates the TDX keys of a policy document (a JSON object or JSON text). */
export function parseTdxPolicy(input: unknown): TdxPolicy {
  if (isTdxPolicy(input)) return input;
  const o = policyObject(input);
  if (o === undefined) return defaultTdxPolicy();
  for (const k of Object.keys(o)) {
    if (!(TDX_POLICY_KEYS as readonly string[]).includes(k)) throw new AttestationError('policy_unknown_key', `unknown TDX policy key '${k}'`);
  }
  const p = defaultTdxPolicy();
  if (o.mrtd !== undefined) p.mrtd = hexList('mrtd', o.mrtd, 48, true);
  for (const k of ['rtmr0', 'rtmr1', 'rtmr2', 'rtmr3', 'mrSignerSeam', 'mrConfigId', 'mrOwner', 'mrOwnerConfig'] as const) {
    if (o[k] !== undefined) p[k] = hexBytes(k, o[k], 48);
  }
  if (o.reportData !== undefined) p.reportData = hexBytes('reportData', o.reportData, 64);
  for (const k of ['tdAttributes', 'xfam', 'seamAttributes'] as const) if (o[k] !== undefined) p[k] = hexBytes(k, o[k], 8);
  if (o.mrSeamAllowlist !== undefined) p.mrSeamAllowlist = hexList('mrSeamAllowlist', o.mrSeamAllowlist, 48, false);
  if (o.minTeeTcbSvn !== undefined) p.minTeeTcbSvn = hexBytes('minTeeTcbSvn', o.minTeeTcbSvn, 16);
  if (o.minTcbEvaluationDataNumber !== undefined) {
    const v = o.minTcbEvaluationDataNumber;
    if (typeof v !== 'number' || !Number.isInteger(v) || v < 0 || v > 0xffffffff) bad('minTcbEvaluationDataNumber', 'expected a non-negative integer');
    p.minTcbEvaluationDataNumber = v;
  }
  if (o.qeVendorId !== undefined) p.qeVendorId = hexBytes('qeVendorId', o.qeVendorId, 16);
  if (o.fmspc !== undefined) p.fmspc = hexBytes('fmspc', o.fmspc, 6);
  for (const k of ['tcbEvaluation', 'allowMigratable', 'allowSeptVe'] as const) {
    if (o[k] === undefined) continue;
    if (typeof o[k] !== 'boolean') bad(k, 'expected a boolean');
    p[k] = o[k];
  }
  if (o.acceptedTcbStatuses !== undefined) {
    const v = o.acceptedTcbStatuses;
    if (!Array.isArray(v) || v.length === 0) bad('acceptedTcbStatuses', 'expected a non-empty array');
    const list: TcbStatus[] = [];
    for (const s of v) {
      if (typeof s !== 'string' || !(TCB_VERDICT_STATUSES as readonly string[]).includes(s)) bad('acceptedTcbStatuses', 'unknown TCB status');
      if (!list.includes(s as TcbStatus)) list.push(s as TcbStatus);
    }
    p.acceptedTcbStatuses = list;
  }
  return p;
}

export function isTdxPolicy(v: unknown): v is TdxPolicy {
  return typeof v === 'object' && v !== null && PARSED.has(v);
}

// ---- strict defaults for the TD itself ----

function u64le(b: Uint8Array): bigint {
  let v = 0n;
  for (let i = 7; i >= 0; i--) v = (v << 8n) | BigInt(b[i]);
  return v;
}

/** TD ATTRIBUTES bits (Intel TDX module ABI). */
export const TD_ATTR = { debug: 0, lass: 27, septVeDisable: 28, migratable: 29, pks: 30, kl: 31, tpa: 62, perfmon: 63 } as const;
/** Every bit not named above is reserved and must be zero. */
const TD_ATTR_DEFINED = [TD_ATTR.debug, TD_ATTR.lass, TD_ATTR.septVeDisable, TD_ATTR.migratable, TD_ATTR.pks, TD_ATTR.kl, TD_ATTR.tpa, TD_ATTR.perfmon]
  .reduce((m, b) => m | (1n << BigInt(b)), 0n);
/** XFAM bits the TDX module may allow (XFAM_FIXED0) and must set (XFAM_FIXED1: x87, SSE). */
export const XFAM_FIXED0 = 0x0006dbe7n;
export const XFAM_FIXED1 = 0x3n;

const hex64 = (v: bigint): string => '0x' + v.toString(16).padStart(16, '0');

/**
 * The checks that always apply: debug off, reserved TD attribute bits zero, not MIGRATABLE, and
 * SEPT_VE_DISABLE set (each of the last two relaxed by its policy key), a consistent XFAM, SEAM
 * attributes zero.
 *
 * MIGRATABLE: a migratable TD's memory and state can be exported to another platform by a migration
 * TD, so the quote vouches for this machine only until then; SEV-SNP's MIGRATE_MA is refused for the
 * same reason. SEPT_VE_DISABLE: while it is clear, the host can make the guest take a #VE on any
 * private page it blocks or removes, an injection point into the guest kernel that Linux refuses to
 * run with (it panics at boot unless the TD is debuggable). Required by default because only the
 * attribute is visible in the quote: recent kernels can also switch those #VEs off at run time
 * through a TD control the quote does not carry, and such a TD, like the go-tdx-guest sample quote's,
 * is accepted only with `allowSeptVe`.
 */
export function checkTdDefaults(
  body: { tdAttributes: Uint8Array; xfam: Uint8Array; seamAttributes: Uint8Array },
  policy: Pick<TdxPolicy, 'allowMigratable' | 'allowSeptVe'> = { allowMigratable: false, allowSeptVe: false },
): string[] {
  const attrs = u64le(body.tdAttributes);
  const has = (b: number): boolean => ((attrs >> BigInt(b)) & 1n) === 1n;
  const shown = `TD ATTRIBUTES ${hex64(attrs)}`;
  if (has(TD_ATTR.debug)) throw new AttestationError('tdx_td_debug', `${shown} has DEBUG (bit 0) set, expected clear`);
  if (attrs & ~TD_ATTR_DEFINED) {
    throw new AttestationError('tdx_td_attributes_reserved', `${shown} has reserved bits ${hex64(attrs & ~TD_ATTR_DEFINED)} set, expected 0`);
  }
  if (has(TD_ATTR.migratable) && !policy.allowMigratable) {
    throw new AttestationError('tdx_td_migratable', `${shown} has MIGRATABLE (bit 29) set, expected clear (allowMigratable to accept)`);
  }
  if (!has(TD_ATTR.septVeDisable) && !policy.allowSeptVe) {
    throw new AttestationError('tdx_td_sept_ve_enabled', `${shown} has SEPT_VE_DISABLE (bit 28) clear, expected set (allowSeptVe to accept)`);
  }
  const xfam = u64le(body.xfam);
  const bit = (n: number): boolean => ((xfam >> BigInt(n)) & 1n) === 1n;
  const allOrNone = (bits: number[]): boolean => bits.every(bit) || !bits.some(bit);
  if ((xfam & ~XFAM_FIXED0) !== 0n || (xfam & XFAM_FIXED1) !== XFAM_FIXED1
    || !allOrNone([5, 6, 7]) || !allOrNone([11, 12]) || !allOrNone([17, 18]) || (bit(5) && !bit(2))) {
    throw new AttestationError('tdx_xfam_invalid', `XFAM ${hex64(xfam)} has reserved or inconsistent bits (allowed ${hex64(XFAM_FIXED0)}, required ${hex64(XFAM_FIXED1)})`);
  }
  const seam = u64le(body.seamAttributes);
  if (seam !== 0n) throw new AttestationError('tdx_seam_attributes', `SEAM ATTRIBUTES are ${hex64(seam)}, expected 0`);
  return [
    'TD attributes (debug off, reserved bits zero), XFAM, SEAM attributes zero',
    policy.allowMigratable ? 'TD MIGRATABLE allowed by policy' : 'TD not MIGRATABLE',
    policy.allowSeptVe ? 'TD SEPT_VE_DISABLE not required by policy' : 'TD SEPT_VE_DISABLE set',
  ];
}

export interface PinnedFields {
  mrTd: Uint8Array;
  rtmr: Uint8Array[];
  reportData: Uint8Array;
  tdAttributes: Uint8Array;
  xfam: Uint8Array;
  mrSeam: Uint8Array;
  mrSignerSeam: Uint8Array;
  seamAttributes: Uint8Array;
  mrConfigId: Uint8Array;
  mrOwner: Uint8Array;
  mrOwnerConfig: Uint8Array;
  teeTcbSvn: Uint8Array;
  qeVendorId: Uint8Array;
  fmspc: Uint8Array;
}

/** The quote-field pins of the policy; returns the names of the pins checked. */
export function checkTdxPins(f: PinnedFields, p: TdxPolicy): string[] {
  const checked: string[] = [];
  const pin = (name: string, want: Uint8Array | undefined, have: Uint8Array): void => {
    if (!want) return;
    if (!bytesEqual(want, have)) throw new AttestationError(`tdx_${snake(name)}_mismatch`, `${name} is ${toHex(have)}, expected ${toHex(want)}`);
    checked.push(name);
  };
  if (p.mrtd) {
    if (!p.mrtd.some((m) => bytesEqual(m, f.mrTd))) {
      throw new AttestationError('tdx_mrtd_mismatch', `MRTD is ${toHex(f.mrTd)}, expected ${p.mrtd.length === 1 ? toHex(p.mrtd[0]) : `one of ${p.mrtd.map(toHex).join(', ')}`}`);
    }
    checked.push('mrtd');
  }
  pin('rtmr0', p.rtmr0, f.rtmr[0]);
  pin('rtmr1', p.rtmr1, f.rtmr[1]);
  pin('rtmr2', p.rtmr2, f.rtmr[2]);
  pin('rtmr3', p.rtmr3, f.rtmr[3]);
  pin('reportData', p.reportData, f.reportData);
  pin('tdAttributes', p.tdAttributes, f.tdAttributes);
  pin('xfam', p.xfam, f.xfam);
  pin('mrSignerSeam', p.mrSignerSeam, f.mrSignerSeam);
  pin('seamAttributes', p.seamAttributes, f.seamAttributes);
  pin('mrConfigId', p.mrConfigId, f.mrConfigId);
  pin('mrOwner', p.mrOwner, f.mrOwner);
  pin('mrOwnerConfig', p.mrOwnerConfig, f.mrOwnerConfig);
  pin('qeVendorId', p.qeVendorId, f.qeVendorId);
  pin('fmspc', p.fmspc, f.fmspc);
  if (p.mrSeamAllowlist) {
    if (!p.mrSeamAllowlist.some((m) => bytesEqual(m, f.mrSeam))) {
      throw new AttestationError('tdx_mr_seam_not_allowed', `MRSEAM is ${toHex(f.mrSeam)}, expected one of the ${p.mrSeamAllowlist.length} in mrSeamAllowlist`);
    }
    checked.push('mrSeamAllowlist');
  }
  if (p.minTeeTcbSvn) {
    for (let i = 0; i < 16; i++) {
      if (f.teeTcbSvn[i] < p.minTeeTcbSvn[i]) {
        throw new AttestationError('tdx_tee_tcb_svn_too_low', `TEE_TCB_SVN component ${i} is ${f.teeTcbSvn[i]}, expected at least ${p.minTeeTcbSvn[i]}`);
      }
    }
    checked.push('minTeeTcbSvn');
  }
  return checked;
}

function snake(s: string): string {
  return s.replace(/([a-z0-9])([A-Z])/g, '$1_$2').toLowerCase();
}

// Byte layout of the AMD SEV-SNP ATTESTATION_REPORT (SEV-SNP Firmware ABI specification, Table
// "ATTESTATION_REPORT Structure"), versions 2 to 5. Layout only: no signature or policy decisions
// are made here (those live in verify.ts and policy.ts, as in go-sev-guest). Parsing is strict:
// exact length, known version, every reserved byte of that version zero.
//
// What each version adds: 3 the CPUID family/model/stepping at 0x188..0x18A; 4 the mitigation
// vectors LAUNCH_MIT_VECTOR (0x1F8) and CURRENT_MIT_VECTOR (0x200). AMD's ABI revision 1.58 names the
// vectors with version 5; version-4 firmware on Turin already fills those bytes, and both reference
// parsers (go-sev-guest reads them whatever the version, virtee/sev skips them for version 4), so
// refusing them as reserved in version 4 would refuse genuine, correctly signed reports. Versions 2
// and 3 keep them reserved.
import { toHex } from '../encoding.js';
import { AttestationError } from '../errors.js';

export const REPORT_SIZE = 0x4a0; // 1184
/** The signature covers bytes [0, SIGNED_LENGTH). */
export const SIGNED_LENGTH = 0x2a0;
export const SIGNATURE_OFFSET = 0x2a0;
export const SIG_COMPONENT_SIZE = 72; // r and s, little-endian, zero-padded from 48 bytes
export const SIG_ALGO_ECDSA_P384_SHA384 = 1;
export const SUPPORTED_VERSIONS: readonly number[] = [2, 3, 4, 5];
/** First version carrying LAUNCH_MIT_VECTOR and CURRENT_MIT_VECTOR. */
export const MIT_VECTOR_VERSION = 4;

export const OFF = {
  version: 0x00,
  guestSvn: 0x04,
  policy: 0x08,
  familyId: 0x10,
  imageId: 0x20,
  vmpl: 0x30,
  signatureAlgo: 0x34,
  currentTcb: 0x38,
  platformInfo: 0x40,
  signerInfo: 0x48, // bit 0 AUTHOR_KEY_EN, bit 1 MASK_CHIP_KEY, bits 4:2 SIGNING_KEY, 31:5 reserved
  reportData: 0x50,
  measurement: 0x90,
  hostData: 0xc0,
  idKeyDigest: 0xe0,
  authorKeyDigest: 0x110,
  reportId: 0x140,
  reportIdMa: 0x160,
  reportedTcb: 0x180,
  cpuidFamId: 0x188, // version 3 and later; reserved in version 2
  cpuidModId: 0x189,
  cpuidStep: 0x18a,
  chipId: 0x1a0,
  committedTcb: 0x1e0,
  currentBuild: 0x1e8,
  currentMinor: 0x1e9,
  currentMajor: 0x1ea,
  committedBuild: 0x1ec,
  committedMinor: 0x1ed,
  committedMajor: 0x1ee,
  launchTcb: 0x1f0,
  launchMitVector: 0x1f8, // version 4 and later; reserved before
  currentMitVector: 0x200,
  signatureR: 0x2a0,
  signatureS: 0x2e8,
} as const;

/** [start, end) byte ranges that must be zero, per version. */
function reservedRanges(version: number): Array<[number, number]> {
  return [
    [0x4c, 0x50],
    version >= 3 ? [0x18b, 0x1a0] : [0x188, 0x1a0],
    [0x1eb, 0x1ec],
    [0x1ef, 0x1f0],
    version >= MIT_VECTOR_VERSION ? [0x208, 0x2a0] : [0x1f8, 0x2a0],
    [0x2a0 + 2 * SIG_COMPONENT_SIZE, REPORT_SIZE], // rest of the 512-byte signature field
  ];
}

export interface SevSnpReport {
  version: number;
  guestSvn: number;
  /** GUEST_POLICY, 64 bits. */
  policy: bigint;
  familyId: Uint8Array; // 16
  imageId: Uint8Array; // 16
  vmpl: number;
  signatureAlgo: number;
  currentTcb: bigint;
  platformInfo: bigint;
  authorKeyEn: boolean;
  maskChipKey: boolean;
  /** 0 = VCEK, 1 = VLEK, 7 = none. */
  signingKey: number;
  reportData: Uint8Array; // 64
  measurement: Uint8Array; // 48
  hostData: Uint8Array; // 32
  idKeyDigest: Uint8Array; // 48
  authorKeyDigest: Uint8Array; // 48
  reportId: Uint8Array; // 32
  reportIdMa: Uint8Array; // 32
  reportedTcb: bigint;
  /** Version 3+: CPUID family/model/stepping of the chip; undefined in version 2. */
  cpuidFamId?: number;
  cpuidModId?: number;
  cpuidStep?: number;
  chipId: Uint8Array; // 64
  committedTcb: bigint;
  currentBuild: number;
  currentMinor: number;
  currentMajor: number;
  committedBuild: number;
  committedMinor: number;
  committedMajor: number;
  launchTcb: bigint;
  /** Version 4+: the verified mitigation vectors at launch and now; undefined before. */
  launchMitVector?: bigint;
  currentMitVector?: bigint;
  /** ECDSA r and s exactly as stored: 72 bytes each, little-endian. */
  signatureR: Uint8Array;
  signatureS: Uint8Array;
  /** The bytes covered by the signature (a copy of [0, 0x2A0)). */
  signedBytes: Uint8Array;
}

function u32(b: Uint8Array, o: number): number {
  return (b[o] | (b[o + 1] << 8) | (b[o + 2] << 16) | (b[o + 3] << 24)) >>> 0;
}
function u64(b: Uint8Array, o: number): bigint {
  return BigInt(u32(b, o)) | (BigInt(u32(b, o + 4)) << 32n);
}
function putU32(b: Uint8Array, o: number, v: number): void {
  b[o] = v & 0xff;
  b[o + 1] = (v >>> 8) & 0xff;
  b[o + 2] = (v >>> 16) & 0xff;
  b[o + 3] = (v >>> 24) & 0xff;
}
function putU64(b: Uint8Array, o: number, v: bigint): void {
  for (let i = 0; i < 8; i++) b[o + i] = Number((v >> BigInt(8 * i)) & 0xffn);
}

export function parseReport(bytes: Uint8Array): SevSnpReport {
  if (!(bytes instanceof Uint8Array)) throw new AttestationError('sev_report_malformed', 'report must be bytes');
  if (bytes.length !== REPORT_SIZE) {
    throw new AttestationError('sev_report_length', `report must be ${REPORT_SIZE} bytes, got ${bytes.length}`);
  }
  // Own copy as a plain Uint8Array (Buffer#slice would return views): later mutation of the
  // caller's buffer changes nothing we returned.
  const b = new Uint8Array(bytes);
  const version = u32(b, OFF.version);
  if (!SUPPORTED_VERSIONS.includes(version)) {
    throw new AttestationError('sev_report_version', `report version is ${version}, expected one of ${SUPPORTED_VERSIONS.join(', ')}`);
  }
  for (const [s, e] of reservedRanges(version)) {
    for (let i = s; i < e; i++) {
      if (b[i] !== 0) {
        throw new AttestationError('sev_report_reserved', `reserved byte 0x${i.toString(16)} of a version ${version} report is 0x${b[i].toString(16).padStart(2, '0')}, expected 0`);
      }
    }
  }
  const signerInfo = u32(b, OFF.signerInfo);
  if (signerInfo >>> 5 !== 0) {
    throw new AttestationError('sev_report_reserved', `reserved signer-info bits 31:5 are 0x${(signerInfo >>> 5).toString(16)}, expected 0`);
  }
  // SIGNING_KEY 2..6 are reserved encodings, not keys a verifier could look for.
  const signingKey = (signerInfo >>> 2) & 7;
  if (signingKey >= 2 && signingKey <= 6) {
    throw new AttestationError('sev_report_reserved', `SIGNING_KEY is ${signingKey}, expected 0 (VCEK), 1 (VLEK) or 7 (none)`);
  }
  const v3 = version >= 3;
  const mit = version >= MIT_VECTOR_VERSION;
  const sub = (o: number, n: number) => b.slice(o, o + n);
  return {
    version,
    guestSvn: u32(b, OFF.guestSvn),
    policy: u64(b, OFF.policy),
    familyId: sub(OFF.familyId, 16),
    imageId: sub(OFF.imageId, 16),
    vmpl: u32(b, OFF.vmpl),
    signatureAlgo: u32(b, OFF.signatureAlgo),
    currentTcb: u64(b, OFF.currentTcb),
    platformInfo: u64(b, OFF.platformInfo),
    authorKeyEn: (signerInfo & 1) === 1,
    maskChipKey: (signerInfo & 2) === 2,
    signingKey,
    reportData: sub(OFF.reportData, 64),
    measurement: sub(OFF.measurement, 48),
    hostData: sub(OFF.hostData, 32),
    idKeyDigest: sub(OFF.idKeyDigest, 48),
    authorKeyDigest: sub(OFF.authorKeyDigest, 48),
    reportId: sub(OFF.reportId, 32),
    reportIdMa: sub(OFF.reportIdMa, 32),
    reportedTcb: u64(b, OFF.reportedTcb),
    cpuidFamId: v3 ? b[OFF.cpuidFamId] : undefined,
    cpuidModId: v3 ? b[OFF.cpuidModId] : undefined,
    cpuidStep: v3 ? b[OFF.cpuidStep] : undefined,
    chipId: sub(OFF.chipId, 64),
    committedTcb: u64(b, OFF.committedTcb),
    currentBuild: b[OFF.currentBuild],
    currentMinor: b[OFF.currentMinor],
    currentMajor: b[OFF.currentMajor],
    committedBuild: b[OFF.committedBuild],
    committedMinor: b[OFF.committedMinor],
    committedMajor: b[OFF.committedMajor],
    launchTcb: u64(b, OFF.launchTcb),
    launchMitVector: mit ? u64(b, OFF.launchMitVector) : undefined,
    currentMitVector: mit ? u64(b, OFF.currentMitVector) : undefined,
    signatureR: sub(OFF.signatureR, SIG_COMPONENT_SIZE),
    signatureS: sub(OFF.signatureS, SIG_COMPONENT_SIZE),
    signedBytes: sub(0, SIGNED_LENGTH),
  };
}

export type ReportFields = Omit<SevSnpReport, 'signedBytes' | 'signatureR' | 'signatureS'> & {
  signatureR?: Uint8Array;
  signatureS?: Uint8Array;
};

function putBytes(b: Uint8Array, o: number, v: Uint8Array, n: number, name: string): void {
  if (!(v instanceof Uint8Array) || v.length !== n) throw new AttestationError('sev_report_encode', `${name} must be ${n} bytes`);
  b.set(v, o);
}

/** Encodes a report (the simulator uses it). The signature is left zero unless r/s are given. */
export function encodeReport(f: ReportFields): Uint8Array {
  if (!SUPPORTED_VERSIONS.includes(f.version)) throw new AttestationError('sev_report_encode', 'unsupported version');
  if (f.signingKey < 0 || f.signingKey > 7) throw new AttestationError('sev_report_encode', 'signingKey out of range');
  const b = new Uint8Array(REPORT_SIZE);
  putU32(b, OFF.version, f.version);
  putU32(b, OFF.guestSvn, f.guestSvn);
  putU64(b, OFF.policy, f.policy);
  putBytes(b, OFF.familyId, f.familyId, 16, 'familyId');
  putBytes(b, OFF.imageId, f.imageId, 16, 'imageId');
  putU32(b, OFF.vmpl, f.vmpl);
  putU32(b, OFF.signatureAlgo, f.signatureAlgo);
  putU64(b, OFF.currentTcb, f.currentTcb);
  putU64(b, OFF.platformInfo, f.platformInfo);
  putU32(b, OFF.signerInfo, (f.authorKeyEn ? 1 : 0) | (f.maskChipKey ? 2 : 0) | (f.signingKey << 2));
  putBytes(b, OFF.reportData, f.reportData, 64, 'reportData');
  putBytes(b, OFF.measurement, f.measurement, 48, 'measurement');
  putBytes(b, OFF.hostData, f.hostData, 32, 'hostData');
  putBytes(b, OFF.idKeyDigest, f.idKeyDigest, 48, 'idKeyDigest');
  putBytes(b, OFF.authorKeyDigest, f.authorKeyDigest, 48, 'authorKeyDigest');
  putBytes(b, OFF.reportId, f.reportId, 32, 'reportId');
  putBytes(b, OFF.reportIdMa, f.reportIdMa, 32, 'reportIdMa');
  putU64(b, OFF.reportedTcb, f.reportedTcb);
  if (f.version >= 3) {
    b[OFF.cpuidFamId] = f.cpuidFamId ?? 0;
    b[OFF.cpuidModId] = f.cpuidModId ?? 0;
    b[OFF.cpuidStep] = f.cpuidStep ?? 0;
  }
  putBytes(b, OFF.chipId, f.chipId, 64, 'chipId');
  putU64(b, OFF.committedTcb, f.committedTcb);
  b[OFF.currentBuild] = f.currentBuild;
  b[OFF.currentMinor] = f.currentMinor;
  b[OFF.currentMajor] = f.currentMajor;
  b[OFF.committedBuild] = f.committedBuild;
  b[OFF.committedMinor] = f.committedMinor;
  b[OFF.committedMajor] = f.committedMajor;
  putU64(b, OFF.launchTcb, f.launchTcb);
  if (f.version >= MIT_VECTOR_VERSION) {
    putU64(b, OFF.launchMitVector, f.launchMitVector ?? 0n);
    putU64(b, OFF.currentMitVector, f.currentMitVector ?? 0n);
  }
  if (f.signatureR) putBytes(b, OFF.signatureR, f.signatureR, SIG_COMPONENT_SIZE, 'signatureR');
  if (f.signatureS) putBytes(b, OFF.signatureS, f.signatureS, SIG_COMPONENT_SIZE, 'signatureS');
  return b;
}

// ---- TCB_VERSION ----------------------------------------------------------------------------

export type SevProduct = 'Milan' | 'Genoa' | 'Turin';
export const SEV_PRODUCTS: readonly SevProduct[] = ['Milan', 'Genoa', 'Turin'];

export interface TcbParts {
  /** Turin only: the FMC SPL. */
  fmc?: number;
  bootloader: number;
  tee: number;
  snp: number;
  microcode: number;
}

/**
 * TCB_VERSION is a little-endian u64 whose byte layout depends on the product:
 * Milan/Genoa: [0] BOOT_LOADER [1] TEE [2..5] reserved [6] SNP [7] MICROCODE;
 * Turin:       [0] FMC [1] BOOT_LOADER [2] TEE [3] SNP [4..6] reserved [7] MICROCODE.
 */
export function decodeTcb(raw: bigint, product: SevProduct): TcbParts {
  const byte = (i: number) => Number((raw >> BigInt(8 * i)) & 0xffn);
  if (product === 'Turin') return { fmc: byte(0), bootloader: byte(1), tee: byte(2), snp: byte(3), microcode: byte(7) };
  return { bootloader: byte(0), tee: byte(1), snp: byte(6), microcode: byte(7) };
}

export function encodeTcb(p: TcbParts, product: SevProduct): bigint {
  const at = (v: number | undefined, i: number) => BigInt((v ?? 0) & 0xff) << BigInt(8 * i);
  if (product === 'Turin') return at(p.fmc, 0) | at(p.bootloader, 1) | at(p.tee, 2) | at(p.snp, 3) | at(p.microcode, 7);
  return at(p.bootloader, 0) | at(p.tee, 1) | at(p.snp, 6) | at(p.microcode, 7);
}

/** Reserved TCB bytes must be zero for a well-formed TCB_VERSION of the product. */
export function tcbReservedZero(raw: bigint, product: SevProduct): boolean {
  const mask = product === 'Turin' ? 0x00ffffff00000000n : 0x0000ffffffff0000n;
  return (raw & mask) === 0n;
}

/**
 * Product from a version-3 report's CPUID fields (AMD family 19h: Milan models 00h-0Fh,
 * Genoa 10h-1Fh and A0h-AFh; family 1Ah: Turin models 00h-1Fh). undefined when unknown or v2.
 */
export function productFromCpuid(r: Pick<SevSnpReport, 'cpuidFamId' | 'cpuidModId'>): SevProduct | undefined {
  if (r.cpuidFamId === undefined || r.cpuidModId === undefined) return undefined;
  const m = r.cpuidModId;
  if (r.cpuidFamId === 0x19) {
    if (m <= 0x0f) return 'Milan';
    if ((m >= 0x10 && m <= 0x1f) || (m >= 0xa0 && m <= 0xaf)) return 'Genoa';
  }
  if (r.cpuidFamId === 0x1a && m <= 0x1f) return 'Turin';
  return undefined;
}

/** A JSON-friendly view of a parsed report (hex for bytes, TCBs decoded when the product is known). */
export function reportToJson(r: SevSnpReport, product?: SevProduct): Record<string, unknown> {
  const hex = toHex;
  const h64 = (v: bigint) => '0x' + v.toString(16).padStart(16, '0');
  const tcb = (v: bigint) => (product ? { raw: h64(v), ...decodeTcb(v, product) } : { raw: h64(v) });
  return {
    version: r.version,
    guestSvn: r.guestSvn,
    policy: h64(r.policy),
    familyId: hex(r.familyId),
    imageId: hex(r.imageId),
    vmpl: r.vmpl,
    signatureAlgo: r.signatureAlgo,
    currentTcb: tcb(r.currentTcb),
    platformInfo: h64(r.platformInfo),
    authorKeyEn: r.authorKeyEn,
    maskChipKey: r.maskChipKey,
    signingKey: r.signingKey,
    reportData: hex(r.reportData),
    measurement: hex(r.measurement),
    hostData: hex(r.hostData),
    idKeyDigest: hex(r.idKeyDigest),
    authorKeyDigest: hex(r.authorKeyDigest),
    reportId: hex(r.reportId),
    reportIdMa: hex(r.reportIdMa),
    reportedTcb: tcb(r.reportedTcb),
    ...(r.version >= 3 ? { cpuidFamId: r.cpuidFamId, cpuidModId: r.cpuidModId, cpuidStep: r.cpuidStep } : {}),
    chipId: hex(r.chipId),
    committedTcb: tcb(r.committedTcb),
    currentVersion: `${r.currentMajor}.${r.currentMinor}.${r.currentBuild}`,
    committedVersion: `${r.committedMajor}.${r.committedMinor}.${r.committedBuild}`,
    launchTcb: tcb(r.launchTcb),
    ...(r.version >= MIT_VECTOR_VERSION ? { launchMitVector: h64(r.launchMitVector ?? 0n), currentMitVector: h64(r.currentMitVector ?? 0n) } : {}),
    signature: { r: hex(r.signatureR), s: hex(r.signatureS) },
  };
}

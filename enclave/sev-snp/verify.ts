// SEV-SNP signatures and certificate chain (go-sev-guest's "verify" layer):
//   report signature  ECDSA P-384 / SHA-384 over bytes [0, 0x2A0) by the VCEK or VLEK the report's
//                     SIGNING_KEY names
//   VCEK <- ASK <- ARK, or VLEK <- ASVK <- ARK: RSASSA-PSS (SHA-384, MGF1-SHA-384, salt 48); ARK
//                     self-signed and byte-identical to the pinned AMD root of the product
//   AMD CRL           when given: signed by the ARK, current, and not listing the ASK/ASVK
//   VCEK extensions   productName, bl/tee/snp/ucode(/fmc) SPLs = REPORTED_TCB, hwID = CHIP_ID
//   VLEK extensions   productName, the same SPLs = REPORTED_TCB, CSP_ID (a VLEK belongs to a cloud
//                     provider, not a chip: there is no CHIP_ID to bind)
//   validity          every certificate and the CRL at the caller's trusted time
// then the policy layer (policy.ts). Browser-safe: WebCrypto through enclave/pki, no node:crypto.
//
// Two phases are exposed so a caller verifying many reports from one platform validates the chain
// once: verifyVcekChain() -> VerifiedVcek, then verifyReportWithVcek() per report. "VCEK" in these
// names means the endorsement key, VCEK or VLEK.
import { AttestationError } from '../errors.js';
import { bytesEqual, toHex } from '../encoding.js';
import { toPolicy, type Policy } from '../policy.js';
import {
  type Certificate, type Crl, OID as PKI_OID, parseCertificates, parseCrlInput, parseDer, readDisplayString,
  readSmallInteger, TAG, verifyChain,
} from '../pki/index.js';
import { AMD_ROOTS } from '../roots/amd-roots.js';
import { checkSevSnpPolicy } from './policy.js';
import {
  decodeTcb, parseReport, productFromCpuid, SIG_ALGO_ECDSA_P384_SHA384, SIG_COMPONENT_SIZE, tcbReservedZero,
  SEV_PRODUCTS, type SevProduct, type SevSnpReport, type TcbParts,
} from './report.js';

export const VCEK_OID = {
  structVersion: '1.3.6.1.4.1.3704.1.1',
  productName: '1.3.6.1.4.1.3704.1.2',
  blSpl: '1.3.6.1.4.1.3704.1.3.1',
  teeSpl: '1.3.6.1.4.1.3704.1.3.2',
  snpSpl: '1.3.6.1.4.1.3704.1.3.3',
  ucodeSpl: '1.3.6.1.4.1.3704.1.3.8',
  fmcSpl: '1.3.6.1.4.1.3704.1.3.9',
  hwId: '1.3.6.1.4.1.3704.1.4',
  cspId: '1.3.6.1.4.1.3704.1.5',
} as const;

/** Which AMD key signed: SIGNING_KEY 0 is a VCEK, 1 a VLEK. */
export type EndorsementKind = 'VCEK' | 'VLEK';

export type CertInput = Uint8Array | string;

export interface SevSnpVerifyOptions {
  /** The VCEK or VLEK, DER or PEM. */
  vcek: CertInput;
  /** The ASK (VCEK) or ASVK (VLEK); default: the embedded one of the key's product. */
  ask?: CertInput;
  /** The ARK as sent by the platform; if given it must be byte-identical to the trusted root. */
  ark?: CertInput;
  /** PEM "ASK (or ASVK) then ARK" (the evidence JSON's certChain); an alternative to ask/ark. */
  certChain?: string;
  /** AMD's CRL for the product (DER or PEM), signed by the ARK: refuses a revoked ASK or ASVK. */
  crl?: CertInput;
  /**
   * Replaces the embedded AMD root for this call (CLI --ark, tests, simulation). Without it the
   * trusted root is the pinned AMD ARK of the product named in the VCEK.
   */
  trustedArk?: CertInput;
  /** Trusted time for every validity check: a Date or UNIX seconds. */
  at: Date | number;
  /** Parsed policy or a policy JSON object/string; default: strict defaults, nothing pinned. */
  policy?: Policy | unknown;
}

export interface VerifiedVcek {
  kind: EndorsementKind;
  product: SevProduct;
  /** Product name as the VCEK states it, e.g. "Milan-B0". */
  productName: string;
  cert: Certificate;
  chain: Certificate[];
  /** TCB SPLs the VCEK certifies. */
  tcb: TcbParts;
  /** VCEK: the chip it belongs to (64 bytes, 8 on Turin). */
  hwId?: Uint8Array;
  /** VLEK: the cloud provider it was issued to. */
  cspId?: string;
  /** Whether an AMD CRL was applied to the chain. */
  crlChecked: boolean;
  key: CryptoKey;
}

export interface SevSnpVerified {
  platform: 'sev-snp';
  product: SevProduct;
  report: SevSnpReport;
  reportedTcb: TcbParts;
  measurement: string;
  reportData: string;
  chipId: string;
  /** The endorsement key that signed: VCEK or VLEK. */
  signingKey: EndorsementKind;
  vcek: { subject: string; notBefore: string; notAfter: string; cspId?: string };
  crlChecked: boolean;
  /** What was checked, in order. */
  checks: string[];
}

function fail(code: string, message: string): never {
  throw new AttestationError(code, message);
}

function toDate(at: Date | number): Date {
  const d = typeof at === 'number' ? new Date(at * 1000) : at;
  if (!(d instanceof Date) || Number.isNaN(d.getTime())) fail('sev_bad_time', 'invalid trusted time');
  return d;
}

function oneCert(input: CertInput, code: string): Certificate {
  let list: Certificate[];
  try {
    list = parseCertificates(input);
  } catch (e) {
    throw new AttestationError(code, `certificate does not parse (${e instanceof AttestationError ? e.code : 'error'})`, { cause: e });
  }
  if (list.length !== 1) fail(code, 'expected exactly one certificate');
  return list[0];
}

function chainFromPem(pem: string): [Certificate, Certificate] {
  let list: Certificate[];
  try {
    list = parseCertificates(pem);
  } catch (e) {
    throw new AttestationError('sev_cert_chain_malformed', 'certChain does not parse', { cause: e });
  }
  if (list.length !== 2) fail('sev_cert_chain_malformed', `certChain holds ${list.length} certificates, expected 2: the ASK (or ASVK) then the ARK`);
  return [list[0], list[1]];
}

/** AMD signs ARK, ASK and VCEK with RSASSA-PSS / SHA-384 / MGF1-SHA-384 / salt 48; nothing else is AMD's. */
function requireAmdPss(c: Certificate, what: string): void {
  const a = c.signatureAlgorithm;
  if (a.oid !== PKI_OID.rsassaPss || !a.pss || a.pss.hash !== 'SHA-384' || a.pss.mgfHash !== 'SHA-384' || a.pss.saltLength !== 48) {
    fail('sev_cert_algorithm', `${what} is signed with ${a.oid}${a.pss ? ` (${a.pss.hash}, MGF1 ${a.pss.mgfHash}, salt ${a.pss.saltLength})` : ''}, expected RSASSA-PSS (SHA-384, MGF1 SHA-384, salt 48)`);
  }
}

function commonName(c: Certificate): string | undefined {
  return c.subject.attributes.find((a) => a.oid === '2.5.4.3')?.value;
}

function extValue(cert: Certificate, oid: string): Uint8Array {
  const e = cert.extensions.get(oid);
  if (!e) fail('sev_vcek_extension', `the endorsement key certificate lacks extension ${oid}`);
  return e.value;
}

function endorsementKind(cert: Certificate): EndorsementKind {
  const cn = commonName(cert);
  if (cn === 'SEV-VCEK') return 'VCEK';
  if (cn === 'SEV-VLEK') return 'VLEK';
  return fail('sev_vcek_key', `endorsement key certificate is named '${cn ?? ''}', expected SEV-VCEK or SEV-VLEK`);
}

/** CSP_ID, an IA5String naming the cloud provider a VLEK was issued to. */
function vlekCspId(cert: Certificate): string {
  try {
    const node = parseDer(extValue(cert, VCEK_OID.cspId));
    if (node.tag !== TAG.IA5_STRING) fail('sev_vcek_extension', 'VLEK CSP_ID is not an IA5String');
    return readDisplayString(node);
  } catch (e) {
    if (e instanceof AttestationError && e.code === 'sev_vcek_extension') throw e;
    throw new AttestationError('sev_vcek_extension', 'VLEK CSP_ID is malformed', { cause: e });
  }
}

function extInt(cert: Certificate, oid: string): number {
  try {
    const n = readSmallInteger(parseDer(extValue(cert, oid)));
    if (n > 255) fail('sev_vcek_extension', `extension ${oid} is ${n}, expected an SPL 0..255`);
    return n;
  } catch (e) {
    if (e instanceof AttestationError && e.code === 'sev_vcek_extension') throw e;
    throw new AttestationError('sev_vcek_extension', `VCEK extension ${oid} is malformed`, { cause: e });
  }
}

function vcekProduct(cert: Certificate): { product: SevProduct; productName: string } {
  let name: string;
  try {
    const node = parseDer(extValue(cert, VCEK_OID.productName));
    if (node.tag !== TAG.IA5_STRING) fail('sev_vcek_extension', 'VCEK productName is not an IA5String');
    name = readDisplayString(node);
  } catch (e) {
    if (e instanceof AttestationError && e.code === 'sev_vcek_extension') throw e;
    throw new AttestationError('sev_vcek_extension', 'VCEK productName is malformed', { cause: e });
  }
  const m = /^(Milan|Genoa|Turin)(-[A-Z][0-9])?$/.exec(name);
  if (!m) fail('sev_unknown_product', `productName is '${name}', expected Milan, Genoa or Turin (with an optional stepping)`);
  return { product: m[1] as SevProduct, productName: name };
}

/** hwID is carried raw in extnValue (not wrapped in an OCTET STRING): 64 bytes, 8 on Turin. */
function vcekHwId(cert: Certificate, product: SevProduct): Uint8Array {
  const v = extValue(cert, VCEK_OID.hwId);
  if (v.length !== (product === 'Turin' ? 8 : 64)) fail('sev_vcek_extension', `VCEK hwID is ${v.length} bytes, expected ${product === 'Turin' ? 8 : 64} for ${product}`);
  return v;
}

function exactBuffer(b: Uint8Array): ArrayBuffer {
  const c = new Uint8Array(b.length);
  c.set(b);
  return c.buffer;
}

/** Validates VCEK <- ASK <- ARK (or VLEK <- ASVK <- ARK) at `at` and extracts what the key certifies. */
export async function verifyVcekChain(opts: Omit<SevSnpVerifyOptions, 'policy'>): Promise<VerifiedVcek> {
  const at = toDate(opts.at);
  const vcek = oneCert(opts.vcek, 'sev_vcek_malformed');
  const kind = endorsementKind(vcek);
  const { product, productName } = vcekProduct(vcek);
  if (!SEV_PRODUCTS.includes(product)) fail('sev_unknown_product', 'unknown product');
  let crl: Crl | undefined;
  if (opts.crl !== undefined) {
    try {
      crl = parseCrlInput(opts.crl);
    } catch (e) {
      throw new AttestationError('sev_crl_malformed', `AMD CRL does not parse (${e instanceof AttestationError ? e.code : 'error'})`, { cause: e });
    }
  }

  let sentAsk: Certificate | undefined;
  let sentArk: Certificate | undefined;
  if (opts.certChain !== undefined) [sentAsk, sentArk] = chainFromPem(opts.certChain);
  if (opts.ask !== undefined) sentAsk = oneCert(opts.ask, 'sev_ask_malformed');
  if (opts.ark !== undefined) sentArk = oneCert(opts.ark, 'sev_ark_malformed');

  const trustedArk = opts.trustedArk !== undefined
    ? oneCert(opts.trustedArk, 'sev_ark_malformed')
    : oneCert(AMD_ROOTS[product].ark, 'sev_ark_malformed');
  const ica = kind === 'VCEK' ? 'ASK' : 'ASVK';
  const ask = sentAsk ?? oneCert(kind === 'VCEK' ? AMD_ROOTS[product].ask : AMD_ROOTS[product].asvk, 'sev_ask_malformed');
  if (sentArk && !bytesEqual(sentArk.raw, trustedArk.raw)) {
    fail('sev_ark_not_pinned', `the ARK sent (${sentArk.subject.text}) is not byte for byte the pinned ${commonName(trustedArk) ?? 'root'} for ${product}`);
  }
  // The chain must be the product's and the key kind's: ARK-<product> issues SEV-<product> (the ASK),
  // which issues VCEKs, and SEV-VLEK-<product> (the ASVK), which issues VLEKs.
  const icaName = kind === 'VCEK' ? `SEV-${product}` : `SEV-VLEK-${product}`;
  if (commonName(trustedArk) !== `ARK-${product}` || commonName(ask) !== icaName) {
    fail('sev_product_mismatch', `certificate chain is ${commonName(ask) ?? '?'} under ${commonName(trustedArk) ?? '?'}, expected ${icaName} under ARK-${product} for a ${product} ${kind}`);
  }
  requireAmdPss(trustedArk, 'ARK');
  requireAmdPss(ask, ica);
  requireAmdPss(vcek, kind);
  if (vcek.publicKey.type !== 'ec' || vcek.publicKey.curve !== 'P-384') fail('sev_vcek_key', `${kind} key is not ECDSA P-384`);
  // An endorsement key is an end-entity key; one that claims to be a CA is not AMD's.
  if (vcek.basicConstraints?.ca) fail('sev_vcek_key', `${kind} claims to be a CA`);

  // Self-signature of the ARK, issuer linkage, PSS signatures, CA constraints, validity at `at`, and
  // the ARK's CRL (its signature, validity and the ASK/ASVK serial) when one is given.
  const chain = await verifyChain([vcek, ask, trustedArk], {
    at, trustedRoot: trustedArk, codePrefix: 'sev_chain', ...(crl ? { crls: [crl] } : {}),
  });

  const tcb: TcbParts = {
    bootloader: extInt(vcek, VCEK_OID.blSpl),
    tee: extInt(vcek, VCEK_OID.teeSpl),
    snp: extInt(vcek, VCEK_OID.snpSpl),
    microcode: extInt(vcek, VCEK_OID.ucodeSpl),
  };
  if (product === 'Turin') tcb.fmc = extInt(vcek, VCEK_OID.fmcSpl);
  // Each kind carries its own identity and never the other's (KDS: hwID for VCEKs, CSP_ID for VLEKs).
  let hwId: Uint8Array | undefined;
  let cspId: string | undefined;
  if (kind === 'VCEK') {
    if (vcek.extensions.has(VCEK_OID.cspId)) fail('sev_vcek_extension', 'VCEK carries a CSP_ID, which only VLEKs have');
    hwId = vcekHwId(vcek, product);
  } else {
    if (vcek.extensions.has(VCEK_OID.hwId)) fail('sev_vcek_extension', 'VLEK carries a hwID, which only VCEKs have');
    cspId = vlekCspId(vcek);
  }
  let key: CryptoKey;
  try {
    key = await globalThis.crypto.subtle.importKey('raw', exactBuffer(vcek.publicKey.key), { name: 'ECDSA', namedCurve: 'P-384' }, false, ['verify']);
  } catch (e) {
    throw new AttestationError('sev_vcek_key', `${kind} public key is not a valid P-384 point`, { cause: e });
  }
  return { kind, product, productName, cert: vcek, chain, tcb, hwId, cspId, crlChecked: crl !== undefined, key };
}

/** r or s: 72 bytes little-endian whose top 24 bytes must be zero -> 48 bytes big-endian. */
function sigComponent(le: Uint8Array): Uint8Array {
  for (let i = 48; i < SIG_COMPONENT_SIZE; i++) if (le[i] !== 0) fail('sev_report_signature', 'signature component exceeds 384 bits');
  const be = new Uint8Array(48);
  for (let i = 0; i < 48; i++) be[i] = le[47 - i];
  return be;
}

/** Verifies one report against an already validated VCEK, then the policy. */
export async function verifyReportWithVcek(reportBytes: Uint8Array, v: VerifiedVcek, policyInput?: Policy | unknown): Promise<SevSnpVerified> {
  const policy = toPolicy(policyInput);
  const checks: string[] = [];
  const r = parseReport(reportBytes);
  checks.push(`report layout (version ${r.version})`);
  if (r.signatureAlgo !== SIG_ALGO_ECDSA_P384_SHA384) {
    fail('sev_signature_algo', `signature algorithm is ${r.signatureAlgo}, expected ${SIG_ALGO_ECDSA_P384_SHA384} (ECDSA P-384 with SHA-384)`);
  }
  const signer: EndorsementKind | undefined = r.signingKey === 0 ? 'VCEK' : r.signingKey === 1 ? 'VLEK' : undefined;
  if (signer !== v.kind) {
    fail('sev_signing_key', `report SIGNING_KEY is ${r.signingKey} (${signer ?? 'none'}), expected ${v.kind === 'VCEK' ? 0 : 1} for the ${v.kind} given`);
  }
  const cpuProduct = productFromCpuid(r);
  if (r.version >= 3 && cpuProduct !== v.product) {
    fail('sev_product_mismatch', `report CPUID family 0x${(r.cpuidFamId ?? 0).toString(16)} model 0x${(r.cpuidModId ?? 0).toString(16)} is ${cpuProduct ?? 'no known product'}, expected a ${v.product} part (the ${v.kind}'s)`);
  }
  for (const [name, t] of [['CURRENT_TCB', r.currentTcb], ['REPORTED_TCB', r.reportedTcb], ['COMMITTED_TCB', r.committedTcb], ['LAUNCH_TCB', r.launchTcb]] as const) {
    if (!tcbReservedZero(t, v.product)) fail('sev_report_reserved', `${name} 0x${t.toString(16).padStart(16, '0')} has reserved ${v.product} TCB bits set, expected 0`);
  }

  const sig = new Uint8Array(96);
  sig.set(sigComponent(r.signatureR), 0);
  sig.set(sigComponent(r.signatureS), 48);
  const ok = await globalThis.crypto.subtle.verify({ name: 'ECDSA', hash: 'SHA-384' }, v.key, exactBuffer(sig), exactBuffer(r.signedBytes));
  if (!ok) fail('sev_report_signature', `report signature does not verify with the ${v.kind}`);
  checks.push(`report signature (ECDSA P-384, ${v.kind})`);

  // The key is specific to one TCB (and a VCEK to one chip): it must certify exactly this report's.
  const reported = decodeTcb(r.reportedTcb, v.product);
  for (const k of ['bootloader', 'tee', 'snp', 'microcode', 'fmc'] as const) {
    if (reported[k] !== v.tcb[k]) fail('sev_vcek_tcb_mismatch', `REPORTED_TCB ${k} SPL is ${reported[k]}, the ${v.kind} certifies ${v.tcb[k]}`);
  }
  checks.push(`${v.kind} TCB = REPORTED_TCB`);
  if (v.hwId) {
    const chip = v.product === 'Turin' ? r.chipId.subarray(0, 8) : r.chipId;
    if (!bytesEqual(v.hwId, chip) || (v.product === 'Turin' && r.chipId.subarray(8).some((x) => x !== 0))) {
      fail('sev_vcek_chip_id_mismatch', `CHIP_ID is ${toHex(r.chipId)}, the VCEK's hwID is ${toHex(v.hwId)}`);
    }
    checks.push('VCEK hwID = CHIP_ID');
  } else {
    checks.push(`VLEK of cloud provider ${v.cspId ?? '?'} (no chip binding)`);
  }

  checks.push(...checkSevSnpPolicy(r, policy.sevSnp, v.product));
  return {
    platform: 'sev-snp',
    product: v.product,
    report: r,
    reportedTcb: reported,
    measurement: toHex(r.measurement),
    reportData: toHex(r.reportData),
    chipId: toHex(r.chipId),
    signingKey: v.kind,
    vcek: {
      subject: v.cert.subject.text, notBefore: v.cert.notBefore.toISOString(), notAfter: v.cert.notAfter.toISOString(),
      ...(v.cspId !== undefined ? { cspId: v.cspId } : {}),
    },
    crlChecked: v.crlChecked,
    checks,
  };
}

/** The whole SEV-SNP verification: chain, report signature, VCEK binding, policy. */
export async function verifySevSnpReport(reportBytes: Uint8Array, opts: SevSnpVerifyOptions): Promise<SevSnpVerified> {
  // Parse the report first: malformed input is reported as such before any chain work.
  parseReport(reportBytes);
  const policy = toPolicy(opts.policy);
  const v = await verifyVcekChain(opts);
  const out = await verifyReportWithVcek(reportBytes, v, policy);
  out.checks.splice(1, 0, `certificate chain ${v.kind} <- ${v.kind === 'VCEK' ? 'ASK' : 'ASVK'} <- ARK-${v.product} at ${toDate(opts.at).toISOString()}` + (v.crlChecked ? ', AMD CRL: not revoked' : ''));
  return out;
}

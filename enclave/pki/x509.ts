// X.509 v3 certificate parsing (RFC 5280 §4.1), strict DER. Trust decisions elsewhere compare the raw
// DER kept here (issuer/subject bytes, SPKI bytes), never the display strings.
import { bytesEqual, toHex } from '../encoding.js';
import { AttestationError } from '../errors.js';
import {
  type DerNode, DerReader, TAG, children, contextTag, parseDer, readBoolean, readDisplayString,
  readIntegerBytes, readOctetAlignedBitString, readOctetString, readOid, readSmallInteger, readTime,
  readBitString, readNull,
} from './der.js';

export const OID = {
  ecPublicKey: '1.2.840.10045.2.1',
  p256: '1.2.840.10045.3.1.7',
  p384: '1.3.132.0.34',
  rsaEncryption: '1.2.840.113549.1.1.1',
  rsassaPss: '1.2.840.113549.1.1.10',
  mgf1: '1.2.840.113549.1.1.8',
  sha256WithRSA: '1.2.840.113549.1.1.11',
  sha384WithRSA: '1.2.840.113549.1.1.12',
  sha512WithRSA: '1.2.840.113549.1.1.13',
  ecdsaSha256: '1.2.840.10045.4.3.2',
  ecdsaSha384: '1.2.840.10045.4.3.3',
  ecdsaSha512: '1.2.840.10045.4.3.4',
  sha1: '1.3.14.3.2.26',
  sha256: '2.16.840.1.101.3.4.2.1',
  sha384: '2.16.840.1.101.3.4.2.2',
  sha512: '2.16.840.1.101.3.4.2.3',
  basicConstraints: '2.5.29.19',
  keyUsage: '2.5.29.15',
  extKeyUsage: '2.5.29.37',
  subjectKeyId: '2.5.29.14',
  authorityKeyId: '2.5.29.35',
  crlDistributionPoints: '2.5.29.31',
  subjectAltName: '2.5.29.17',
  certificatePolicies: '2.5.29.32',
  crlNumber: '2.5.29.20',
  issuingDistributionPoint: '2.5.29.28',
  authorityInfoAccess: '1.3.6.1.5.5.7.1.1',
} as const;

export type HashName = 'SHA-1' | 'SHA-256' | 'SHA-384' | 'SHA-512';

export interface PssParams {
  hash: HashName;
  mgfHash: HashName;
  saltLength: number;
}

export interface AlgorithmIdentifier {
  oid: string;
  /** Raw DER of the parameters, if present. */
  params?: Uint8Array;
  /** Decoded RSASSA-PSS parameters when `oid` is id-RSASSA-PSS. */
  pss?: PssParams;
}

export interface Name {
  /** The Name's full DER: what issuer/subject matching compares. */
  raw: Uint8Array;
  /** `CN=..., O=...` for messages and display. */
  text: string;
  attributes: { oid: string; value: string }[];
}

export type PublicKeyInfo =
  | { raw: Uint8Array; algorithm: AlgorithmIdentifier; type: 'ec'; curve: 'P-256' | 'P-384'; key: Uint8Array }
  | { raw: Uint8Array; algorithm: AlgorithmIdentifier; type: 'rsa' | 'rsa-pss'; key: Uint8Array; pss?: PssParams };

export interface Extension {
  oid: string;
  critical: boolean;
  /** The extnValue OCTET STRING contents (the extension's own DER). */
  value: Uint8Array;
}

export interface Certificate {
  raw: Uint8Array;
  tbs: Uint8Array;
  version: number;
  /** Serial as the INTEGER content bytes (DER minimal two's complement). */
  serial: Uint8Array;
  serialHex: string;
  signatureAlgorithm: AlgorithmIdentifier;
  issuer: Name;
  subject: Name;
  notBefore: Date;
  notAfter: Date;
  publicKey: PublicKeyInfo;
  extensions: Map<string, Extension>;
  basicConstraints?: { ca: boolean; pathLen?: number };
  /** keyUsage bits (bit 0 = digitalSignature ... bit 5 = keyCertSign, bit 6 = cRLSign), if present. */
  keyUsage?: Set<number>;
  signature: Uint8Array;
}

/** Lowercase hex, the form serialHex and revoked-serial sets use. */
export { toHex };

function fail(code: string, message: string): never {
  throw new AttestationError(code, message);
}

const HASH_OIDS: Record<string, HashName> = {
  [OID.sha1]: 'SHA-1', [OID.sha256]: 'SHA-256', [OID.sha384]: 'SHA-384', [OID.sha512]: 'SHA-512',
};

/** Hash AlgorithmIdentifier: params absent or NULL. */
function parseHashAlg(node: DerNode): HashName {
  const r = DerReader.of(node, TAG.SEQUENCE);
  const oid = readOid(r.next());
  if (!r.done()) readNull(r.next());
  r.end();
  const h = HASH_OIDS[oid];
  if (!h) fail('pki_unsupported_algorithm', `unsupported hash ${oid}`);
  return h;
}

/** RFC 4055 RSASSA-PSS-params, with the defaults (SHA-1, MGF1-SHA-1, 20) made explicit. */
function parsePssParams(node: DerNode): PssParams {
  const r = DerReader.of(node, TAG.SEQUENCE);
  let hash: HashName = 'SHA-1';
  let mgfHash: HashName = 'SHA-1';
  let saltLength = 20;
  const h = r.optional(contextTag(0));
  if (h) {
    const inner = DerReader.of(h, contextTag(0));
    hash = parseHashAlg(inner.next());
    inner.end();
  }
  const m = r.optional(contextTag(1));
  if (m) {
    const inner = DerReader.of(m, contextTag(1));
    const mr = DerReader.of(inner.next(), TAG.SEQUENCE);
    inner.end();
    if (readOid(mr.next()) !== OID.mgf1) fail('pki_unsupported_algorithm', 'unsupported mask generation function');
    mgfHash = parseHashAlg(mr.next());
    mr.end();
  }
  const s = r.optional(contextTag(2));
  if (s) {
    const inner = DerReader.of(s, contextTag(2));
    saltLength = readSmallInteger(inner.next());
    inner.end();
  }
  const t = r.optional(contextTag(3));
  if (t) {
    const inner = DerReader.of(t, contextTag(3));
    if (readSmallInteger(inner.next()) !== 1) fail('pki_unsupported_algorithm', 'unsupported PSS trailer field');
    inner.end();
  }
  r.end();
  return { hash, mgfHash, saltLength };
}

export function parseAlgorithmIdentifier(node: DerNode): AlgorithmIdentifier {
  const r = DerReader.of(node, TAG.SEQUENCE);
  const oid = readOid(r.next());
  const alg: AlgorithmIdentifier = { oid };
  if (!r.done()) {
    const p = r.next();
    alg.params = p.raw;
    if (oid === OID.rsassaPss) alg.pss = parsePssParams(p);
  }
  r.end();
  return alg;
}

const NAME_LABELS: Record<string, string> = {
  '2.5.4.3': 'CN', '2.5.4.6': 'C', '2.5.4.7': 'L', '2.5.4.8': 'ST', '2.5.4.10': 'O', '2.5.4.11': 'OU',
  '2.5.4.5': 'serialNumber', '1.2.840.113549.1.9.1': 'emailAddress',
};

export function parseName(node: DerNode): Name {
  const attributes: { oid: string; value: string }[] = [];
  for (const rdn of children(tagged(node, TAG.SEQUENCE))) {
    const set = tagged(rdn, TAG.SET);
    const atvs = children(set);
    if (atvs.length === 0) fail('der_malformed', 'empty RDN');
    for (const atv of atvs) {
      const r = DerReader.of(atv, TAG.SEQUENCE);
      const oid = readOid(r.next());
      const v = r.next();
      r.end();
      let value: string;
      try {
        value = readDisplayString(v);
      } catch {
        value = '#' + toHex(v.raw);
      }
      attributes.push({ oid, value });
    }
  }
  const text = attributes.map((a) => `${NAME_LABELS[a.oid] ?? a.oid}=${a.value}`).join(', ');
  return { raw: node.raw, text, attributes };
}

/** Returns `node` after checking its tag. */
function tagged(node: DerNode, tag: number): DerNode {
  if (node.tag !== tag) fail('der_malformed', `expected tag 0x${tag.toString(16)}`);
  return node;
}

export function parseSpki(node: DerNode): PublicKeyInfo {
  const r = DerReader.of(node, TAG.SEQUENCE);
  const algorithm = parseAlgorithmIdentifier(r.next());
  const key = readOctetAlignedBitString(r.next(TAG.BIT_STRING));
  r.end();
  if (algorithm.oid === OID.ecPublicKey) {
    if (!algorithm.params) fail('pki_unsupported_key', 'EC key without curve');
    const curveOid = readOid(parseDer(algorithm.params));
    const curve = curveOid === OID.p256 ? 'P-256' : curveOid === OID.p384 ? 'P-384' : undefined;
    if (!curve) fail('pki_unsupported_key', `unsupported curve ${curveOid}`);
    const size = curve === 'P-256' ? 32 : 48;
    if (key.length !== 1 + 2 * size || key[0] !== 0x04) fail('pki_unsupported_key', 'EC key must be an uncompressed point');
    return { raw: node.raw, algorithm, type: 'ec', curve, key };
  }
  if (algorithm.oid === OID.rsaEncryption) {
    if (algorithm.params) readNull(parseDer(algorithm.params));
    parseRsaPublicKey(key);
    return { raw: node.raw, algorithm, type: 'rsa', key };
  }
  if (algorithm.oid === OID.rsassaPss) {
    parseRsaPublicKey(key);
    return { raw: node.raw, algorithm, type: 'rsa-pss', key, pss: algorithm.pss };
  }
  return fail('pki_unsupported_key', `unsupported public key algorithm ${algorithm.oid}`);
}

/** RSAPublicKey ::= SEQUENCE { modulus INTEGER, publicExponent INTEGER } (validated, not returned). */
export function parseRsaPublicKey(bytes: Uint8Array): { modulusBits: number } {
  const r = DerReader.of(parseDer(bytes), TAG.SEQUENCE);
  const n = readIntegerBytes(r.next());
  const e = readIntegerBytes(r.next());
  r.end();
  if (n[0] & 0x80 || e[0] & 0x80) fail('pki_unsupported_key', 'negative RSA parameter');
  const mod = n[0] === 0 ? n.subarray(1) : n;
  const bits = mod.length * 8 - Math.clz32(mod[0]) + 24;
  if (bits < 2048 || bits > 8192) fail('pki_unsupported_key', 'RSA modulus size out of range');
  return { modulusBits: bits };
}

/**
 * `Extensions ::= SEQUENCE SIZE (1..MAX) OF Extension`, the same grammar in certificates, CRLs and CRL
 * entries. `what` names the list in the duplicate error ('extension', 'CRL extension').
 */
export function parseExtensionList(seq: DerNode, what = 'extension'): Map<string, Extension> {
  const map = new Map<string, Extension>();
  const list = DerReader.of(seq, TAG.SEQUENCE);
  if (list.done()) fail('der_malformed', 'empty extensions');
  while (!list.done()) {
    const r = DerReader.of(list.next(), TAG.SEQUENCE);
    const oid = readOid(r.next());
    let critical = false;
    const c = r.optional(TAG.BOOLEAN);
    if (c) {
      critical = readBoolean(c);
      // DER: DEFAULT FALSE must be omitted.
      if (!critical) fail('der_malformed', 'explicit default critical=false');
    }
    const value = readOctetString(r.next(TAG.OCTET_STRING));
    r.end();
    if (map.has(oid)) fail('pki_duplicate_extension', `duplicate ${what} ${oid}`);
    map.set(oid, { oid, critical, value });
  }
  return map;
}

function parseExtensions(node: DerNode): Map<string, Extension> {
  const outer = DerReader.of(node, contextTag(3));
  const seq = outer.next(TAG.SEQUENCE);
  outer.end();
  return parseExtensionList(seq);
}

function parseBasicConstraints(value: Uint8Array): { ca: boolean; pathLen?: number } {
  const r = DerReader.of(parseDer(value), TAG.SEQUENCE);
  let ca = false;
  const c = r.optional(TAG.BOOLEAN);
  if (c) ca = readBoolean(c);
  let pathLen: number | undefined;
  const p = r.optional(TAG.INTEGER);
  if (p) pathLen = readSmallInteger(p);
  r.end();
  return pathLen === undefined ? { ca } : { ca, pathLen };
}

function parseKeyUsage(value: Uint8Array): Set<number> {
  const { unusedBits, bytes } = readBitString(parseDer(value));
  const set = new Set<number>();
  const total = bytes.length * 8 - unusedBits;
  for (let i = 0; i < total; i++) if (bytes[i >> 3] & (0x80 >> (i & 7))) set.add(i);
  return set;
}

/** The signed envelope certificates and CRLs share: SEQUENCE { tbs, signatureAlgorithm, signatureValue }. */
export interface SignedEnvelope {
  root: DerNode;
  tbsNode: DerNode;
  /** The outer AlgorithmIdentifier, whose raw DER the tbs copy must repeat exactly. */
  outerAlgNode: DerNode;
  signatureAlgorithm: AlgorithmIdentifier;
  signature: Uint8Array;
}

export function parseSignedEnvelope(der: Uint8Array): SignedEnvelope {
  const root = parseDer(der);
  const r = DerReader.of(root, TAG.SEQUENCE);
  const tbsNode = r.next(TAG.SEQUENCE);
  const outerAlgNode = r.next(TAG.SEQUENCE);
  const signatureAlgorithm = parseAlgorithmIdentifier(outerAlgNode);
  const signature = readOctetAlignedBitString(r.next(TAG.BIT_STRING));
  r.end();
  return { root, tbsNode, outerAlgNode, signatureAlgorithm, signature };
}

export function parseCertificate(der: Uint8Array): Certificate {
  const { root, tbsNode, outerAlgNode, signatureAlgorithm, signature } = parseSignedEnvelope(der);
  const t = DerReader.of(tbsNode, TAG.SEQUENCE);
  let version = 1;
  const v = t.optional(contextTag(0));
  if (v) {
    const vr = DerReader.of(v, contextTag(0));
    version = readSmallInteger(vr.next()) + 1;
    vr.end();
    if (version !== 2 && version !== 3) fail('pki_unsupported_certificate', 'unsupported certificate version');
  }
  const serial = readIntegerBytes(t.next());
  if (serial.length > 20 + 1) fail('der_malformed', 'serial number too long');
  const innerAlg = t.next(TAG.SEQUENCE);
  const issuer = parseName(t.next(TAG.SEQUENCE));
  const validity = DerReader.of(t.next(TAG.SEQUENCE), TAG.SEQUENCE);
  const notBefore = readTime(validity.next());
  const notAfter = readTime(validity.next());
  validity.end();
  const subject = parseName(t.next(TAG.SEQUENCE));
  const publicKey = parseSpki(t.next(TAG.SEQUENCE));
  // issuerUniqueID [1], subjectUniqueID [2]: allowed by the grammar, unused in practice.
  t.optional(contextTag(1, false));
  t.optional(contextTag(2, false));
  let extensions = new Map<string, Extension>();
  const e = t.optional(contextTag(3));
  if (e) {
    if (version !== 3) fail('der_malformed', 'extensions in a non-v3 certificate');
    extensions = parseExtensions(e);
  }
  t.end();
  // The signature algorithm is stated twice; a mismatch is a classic substitution vector.
  if (!bytesEqual(innerAlg.raw, outerAlgNode.raw)) fail('pki_algorithm_mismatch', 'signature algorithm fields differ');

  const cert: Certificate = {
    raw: root.raw, tbs: tbsNode.raw, version, serial, serialHex: toHex(serial), signatureAlgorithm,
    issuer, subject, notBefore, notAfter, publicKey, extensions, signature,
  };
  const bc = extensions.get(OID.basicConstraints);
  if (bc) cert.basicConstraints = parseBasicConstraints(bc.value);
  const ku = extensions.get(OID.keyUsage);
  if (ku) cert.keyUsage = parseKeyUsage(ku.value);
  return cert;
}

// ---- PEM ----

function base64ToBytes(b64: string): Uint8Array {
  if (!/^[A-Za-z0-9+/]*={0,2}$/.test(b64) || b64.length % 4 !== 0) fail('pem_malformed', 'bad base64 in PEM');
  const bin = atob(b64);
  // Canonical only (RFC 4648 section 3.5): atob ignores the unused bits of the last digit, so two
  // texts would decode to one certificate and a flipped bit there would go unnoticed.
  if (btoa(bin) !== b64) fail('pem_malformed', 'non-canonical base64 in PEM');
  const out = new Uint8Array(bin.length);
  for (let i = 0; i < bin.length; i++) out[i] = bin.charCodeAt(i);
  return out;
}

/**
 * Every `-----BEGIN <label>-----` block in `text`, decoded, in order. `label` filters (e.g.
 * 'CERTIFICATE', 'X509 CRL'); text outside blocks is ignored (Intel's chains are URL-decoded PEM
 * with nothing else, but files with comments are common). A malformed block is an error.
 */
export function parsePem(text: string, label?: string): Uint8Array[] {
  const out: Uint8Array[] = [];
  const re = /-----BEGIN ([A-Z0-9 ]+)-----([\s\S]*?)-----END ([A-Z0-9 ]+)-----/g;
  let m: RegExpExecArray | null;
  while ((m = re.exec(text)) !== null) {
    if (m[1] !== m[3]) fail('pem_malformed', 'PEM BEGIN/END labels differ');
    if (label !== undefined && m[1] !== label) continue;
    out.push(base64ToBytes(m[2].replace(/[\r\n\t ]/g, '')));
  }
  // Every BEGIN/END marker must belong to a well-formed block: a damaged header must not make a block
  // silently disappear (and a chain quietly lose a certificate).
  const all = text.match(re)?.length ?? 0;
  if ((text.match(/-----BEGIN/g)?.length ?? 0) !== all || (text.match(/-----END/g)?.length ?? 0) !== all) {
    fail('pem_malformed', 'malformed or unterminated PEM block');
  }
  return out;
}

/** Certificates from PEM text (any number) or one DER certificate. */
export function parseCertificates(input: Uint8Array | string): Certificate[] {
  if (typeof input === 'string') return parsePem(input, 'CERTIFICATE').map(parseCertificate);
  if (input.length > 0 && input[0] === 0x30) return [parseCertificate(input)];
  const text = new TextDecoder().decode(input);
  const list = parsePem(text, 'CERTIFICATE');
  if (list.length === 0) fail('pem_malformed', 'no certificate found');
  return list.map(parseCertificate);
}

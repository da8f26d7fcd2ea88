// Signature checks and chain validation over WebCrypto (globalThis.crypto.subtle), so the same code
// runs in Node and browsers. Chains are short and fixed-shape in attestation (leaf <- CA <- root), so
// this is path *validation* of a given order, not path building.
import { bytesEqual, concatBytes as concat } from '../encoding.js';
import { AttestationError } from '../errors.js';
import { DerReader, TAG, encodeTlv, parseDer, readUnsignedInteger } from './der.js';
import type { Crl } from './crl.js';
import { type AlgorithmIdentifier, type Certificate, type HashName, OID, type PublicKeyInfo } from './x509.js';

const subtle = (): SubtleCrypto => {
  const s = globalThis.crypto?.subtle;
  if (!s) throw new AttestationError('pki_no_webcrypto', 'WebCrypto is not available');
  return s;
};

/** Constant-time equality (digests, measurements, pinned values). */
export { bytesEqual };

function fail(code: string, message: string): never {
  throw new AttestationError(code, message);
}

/**
 * An exact-length ArrayBuffer copy. Not `b.slice()`: on a Node Buffer that is a view, and `.buffer`
 * would then be the whole (pooled) backing store.
 */
function buf(b: Uint8Array): ArrayBuffer {
  const copy = new Uint8Array(b.length);
  copy.set(b);
  return copy.buffer;
}

/** ECDSA-Sig-Value (DER SEQUENCE { r, s }) to IEEE P1363 r||s of `size`-byte halves, strictly. */
export function ecdsaDerToP1363(der: Uint8Array, size: number): Uint8Array {
  const r = DerReader.of(parseDer(der), TAG.SEQUENCE);
  const rr = readUnsignedInteger(r.next());
  const ss = readUnsignedInteger(r.next());
  r.end();
  if (rr.length > size || ss.length > size) fail('pki_signature_invalid', 'ECDSA signature component too large');
  const out = new Uint8Array(2 * size);
  out.set(rr, size - rr.length);
  out.set(ss, 2 * size - ss.length);
  return out;
}

/** Rebuilds an rsaEncryption SPKI around the RSAPublicKey: WebCrypto cannot import id-RSASSA-PSS SPKIs everywhere. */
function rsaSpki(key: Uint8Array): Uint8Array {
  const algId = encodeTlv(TAG.SEQUENCE, concat(encodeTlv(TAG.OID, RSA_ENCRYPTION_OID), new Uint8Array([0x05, 0x00])));
  const bits = encodeTlv(TAG.BIT_STRING, concat(new Uint8Array([0]), key));
  return encodeTlv(TAG.SEQUENCE, concat(algId, bits));
}
const RSA_ENCRYPTION_OID = new Uint8Array([0x2a, 0x86, 0x48, 0x86, 0xf7, 0x0d, 0x01, 0x01, 0x01]);

type Scheme =
  | { kind: 'ecdsa'; hash: HashName }
  | { kind: 'pkcs1'; hash: HashName }
  | { kind: 'pss'; hash: HashName; saltLength: number };

/** Maps a signatureAlgorithm to a verification scheme; anything not listed is refused. */
export function schemeOf(alg: AlgorithmIdentifier): Scheme {
  switch (alg.oid) {
    case OID.ecdsaSha256: return noParams(alg, { kind: 'ecdsa', hash: 'SHA-256' });
    case OID.ecdsaSha384: return noParams(alg, { kind: 'ecdsa', hash: 'SHA-384' });
    case OID.ecdsaSha512: return noParams(alg, { kind: 'ecdsa', hash: 'SHA-512' });
    case OID.sha256WithRSA: return nullParams(alg, { kind: 'pkcs1', hash: 'SHA-256' });
    case OID.sha384WithRSA: return nullParams(alg, { kind: 'pkcs1', hash: 'SHA-384' });
    case OID.sha512WithRSA: return nullParams(alg, { kind: 'pkcs1', hash: 'SHA-512' });
    case OID.rsassaPss: {
      const p = alg.pss;
      if (!p) return fail('pki_unsupported_algorithm', 'RSASSA-PSS without parameters');
      // WebCrypto ties MGF1's hash to the message hash; refuse the (unused in practice) split form.
      if (p.hash !== p.mgfHash || p.hash === 'SHA-1') fail('pki_unsupported_algorithm', 'unsupported RSASSA-PSS parameters');
      return { kind: 'pss', hash: p.hash, saltLength: p.saltLength };
    }
    default:
      return fail('pki_unsupported_algorithm', `unsupported signature algorithm ${alg.oid}`);
  }
}

function noParams(alg: AlgorithmIdentifier, s: Scheme): Scheme {
  if (alg.params) fail('pki_unsupported_algorithm', 'ECDSA algorithm must not have parameters');
  return s;
}
function nullParams(alg: AlgorithmIdentifier, s: Scheme): Scheme {
  if (alg.params && !(alg.params.length === 2 && alg.params[0] === 0x05 && alg.params[1] === 0x00)) {
    fail('pki_unsupported_algorithm', 'RSA algorithm parameters must be NULL');
  }
  return s;
}

/**
 * Verifies `signature` (as carried in X.509: DER ECDSA-Sig-Value for ECDSA) over `data` with the key in
 * `key`, using `alg`. Returns false on a wrong signature; throws on unusable key/algorithm combos.
 */
export async function verifySignature(
  key: PublicKeyInfo, alg: AlgorithmIdentifier, signature: Uint8Array, data: Uint8Array,
): Promise<boolean> {
  const scheme = schemeOf(alg);
  const s = subtle();
  if (scheme.kind === 'ecdsa') {
    if (key.type !== 'ec') fail('pki_key_mismatch', 'ECDSA signature with a non-EC key');
    const size = key.curve === 'P-256' ? 32 : 48;
    let p1363: Uint8Array;
    try {
      p1363 = ecdsaDerToP1363(signature, size);
    } catch (e) {
      if (e instanceof AttestationError) return false;
      throw e;
    }
    return verifyEcdsaP1363(key.key, key.curve, scheme.hash, p1363, data);
  }
  if (key.type === 'ec') fail('pki_key_mismatch', 'RSA signature with an EC key');
  // A key restricted to RSASSA-PSS (id-RSASSA-PSS SPKI) must not verify PKCS#1 v1.5, and its
  // parameters, when given, bind the hash and salt (RFC 4055 §3.1).
  if (key.type === 'rsa-pss') {
    if (scheme.kind !== 'pss') fail('pki_key_mismatch', 'PSS-only key used with PKCS#1 v1.5');
    if (key.pss && (key.pss.hash !== scheme.hash || key.pss.saltLength > scheme.saltLength)) {
      fail('pki_key_mismatch', 'PSS parameters differ from the key restriction');
    }
  }
  const name = scheme.kind === 'pss' ? 'RSA-PSS' : 'RSASSA-PKCS1-v1_5';
  const k = await s.importKey('spki', buf(rsaSpki(key.key)), { name, hash: scheme.hash }, false, ['verify']);
  const params = scheme.kind === 'pss' ? { name, saltLength: scheme.saltLength } : { name };
  return s.verify(params, k, buf(signature), buf(data));
}

/**
 * ECDSA over `data` with an uncompressed SEC1 point (or bare x||y) and an r||s signature, as TDX quotes
 * and Intel's collateral carry them.
 */
export async function verifyEcdsaP1363(
  point: Uint8Array, curve: 'P-256' | 'P-384', hash: HashName, sig: Uint8Array, data: Uint8Array,
): Promise<boolean> {
  const size = curve === 'P-256' ? 32 : 48;
  const raw = point.length === 2 * size ? concat(new Uint8Array([4]), point) : point;
  if (raw.length !== 1 + 2 * size || raw[0] !== 4) fail('pki_unsupported_key', 'bad EC point');
  if (sig.length !== 2 * size) return false;
  let key: CryptoKey;
  try {
    key = await subtle().importKey('raw', buf(raw), { name: 'ECDSA', namedCurve: curve }, false, ['verify']);
  } catch {
    return fail('pki_unsupported_key', 'EC point is not on the curve');
  }
  return subtle().verify({ name: 'ECDSA', hash }, key, buf(sig), buf(data));
}

/** Does `issuer`'s key sign `cert`? */
export async function verifyCertSignature(cert: Certificate, issuer: Certificate): Promise<boolean> {
  return verifySignature(issuer.publicKey, cert.signatureAlgorithm, cert.signature, cert.tbs);
}

/** Extensions this validator understands; an unknown critical one makes the certificate unusable (RFC 5280 §4.2). */
const KNOWN_EXTENSIONS = new Set<string>([
  OID.basicConstraints, OID.keyUsage, OID.extKeyUsage, OID.subjectKeyId, OID.authorityKeyId,
  OID.crlDistributionPoints, OID.subjectAltName, OID.certificatePolicies, OID.authorityInfoAccess,
]);

export interface ChainOptions {
  /** Trusted time for every validity check. */
  at: Date;
  /** The pinned root. The chain either ends with exactly this certificate or is issued by it. */
  trustedRoot: Certificate;
  /** CRLs to apply; each must be issued by a certificate of the chain, correctly signed and current at `at`. */
  crls?: Crl[];
  /** If true, every issuing certificate in the chain must have a CRL among `crls`. */
  requireCrls?: boolean;
  /** Critical extension OIDs the caller handles itself (e.g. vendor extensions). */
  allowedCriticalExtensions?: string[];
  /** Prefix for error codes (e.g. 'tdx_pck' gives 'tdx_pck_chain_signature_invalid'); default 'pki'. */
  codePrefix?: string;
}

/**
 * Validates `chain` (leaf first). Checks: the pinned root (identical bytes, self-signed), issuer/subject
 * linkage by raw DER, every signature, validity at `at`, CA basicConstraints + pathLen + keyCertSign on
 * issuers, unknown critical extensions, and revocation by the given CRLs (signature, issuer, validity).
 * Resolves to the full chain ending with the root; throws AttestationError otherwise.
 */
export async function verifyChain(chain: Certificate[], opts: ChainOptions): Promise<Certificate[]> {
  const code = (c: string): string => `${opts.codePrefix ?? 'pki'}_${c}`;
  if (chain.length === 0) fail(code('chain_empty'), 'empty certificate chain');
  const root = opts.trustedRoot;
  const full = [...chain];
  const last = full[full.length - 1];
  if (!bytesEqual(last.raw, root.raw)) {
    // Not the pinned root itself: it must then be issued by it. A self-issued certificate here is some
    // other (or altered) root, whatever its signature: refuse it rather than look past it.
    if (bytesEqual(last.issuer.raw, last.subject.raw)) {
      fail(code('untrusted_root'), `chain ends at ${last.subject.text}, expected the pinned root ${root.subject.text}`);
    }
    full.push(root);
  }
  if (full.length > 8) fail(code('chain_too_long'), 'certificate chain too long');
  if (!bytesEqual(root.issuer.raw, root.subject.raw)) fail(code('untrusted_root'), 'trusted root is not self-issued');
  if (!(await verifyCertSignature(root, root))) fail(code('signature_invalid'), 'trusted root self-signature is invalid');

  const allowed = new Set(opts.allowedCriticalExtensions ?? []);
  for (let i = 0; i < full.length; i++) {
    const cert = full[i];
    for (const ext of cert.extensions.values()) {
      if (ext.critical && !KNOWN_EXTENSIONS.has(ext.oid) && !allowed.has(ext.oid)) {
        fail(code('unknown_critical_extension'), `unknown critical extension ${ext.oid} in ${cert.subject.text}`);
      }
    }
    if (opts.at.getTime() < cert.notBefore.getTime()) fail(code('not_yet_valid'), `${cert.subject.text} is valid from ${cert.notBefore.toISOString()}, after the trusted time ${opts.at.toISOString()}`);
    if (opts.at.getTime() > cert.notAfter.getTime()) fail(code('expired'), `${cert.subject.text} is valid until ${cert.notAfter.toISOString()}, before the trusted time ${opts.at.toISOString()}`);
    if (i === full.length - 1) break;
    const issuer = full[i + 1];
    if (!bytesEqual(cert.issuer.raw, issuer.subject.raw)) {
      fail(code('issuer_mismatch'), `${cert.subject.text} names issuer ${cert.issuer.text}, expected ${issuer.subject.text}`);
    }
    if (!issuer.basicConstraints?.ca) fail(code('not_ca'), `${issuer.subject.text} is not a CA`);
    // pathLen counts the non-self-issued intermediates below the issuer.
    const below = i; // certificates between the issuer and the leaf, excluding the leaf itself
    if (issuer.basicConstraints.pathLen !== undefined && below > issuer.basicConstraints.pathLen) {
      fail(code('path_length'), `path length exceeded under ${issuer.subject.text}`);
    }
    if (issuer.keyUsage && !issuer.keyUsage.has(5)) fail(code('key_usage'), `${issuer.subject.text} may not sign certificates`);
    if (!(await verifyCertSignature(cert, issuer))) {
      fail(code('signature_invalid'), `signature on ${cert.subject.text} is invalid`);
    }
  }

  const crls = opts.crls ?? [];
  const covered = new Set<number>();
  for (const crl of crls) {
    const idx = full.findIndex((c) => bytesEqual(c.subject.raw, crl.issuer.raw));
    if (idx < 0) fail(code('crl_issuer_unknown'), `CRL issuer ${crl.issuer.text} is not in the chain`);
    const issuer = full[idx];
    if (issuer.keyUsage && !issuer.keyUsage.has(6)) fail(code('crl_signature_invalid'), `${issuer.subject.text} may not sign CRLs`);
    if (!(await verifySignature(issuer.publicKey, crl.signatureAlgorithm, crl.signature, crl.tbs))) {
      fail(code('crl_signature_invalid'), `CRL of ${crl.issuer.text} has an invalid signature`);
    }
    if (opts.at.getTime() < crl.thisUpdate.getTime()) fail(code('crl_not_yet_valid'), `CRL of ${crl.issuer.text} has thisUpdate ${crl.thisUpdate.toISOString()}, after the trusted time ${opts.at.toISOString()}`);
    if (!crl.nextUpdate || opts.at.getTime() > crl.nextUpdate.getTime()) {
      fail(code('crl_expired'), `CRL of ${crl.issuer.text} has nextUpdate ${crl.nextUpdate?.toISOString() ?? 'absent'}, before the trusted time ${opts.at.toISOString()}`);
    }
    for (let i = 0; i < idx; i++) {
      const cert = full[i];
      if (bytesEqual(cert.issuer.raw, crl.issuer.raw) && crl.revoked.has(cert.serialHex)) {
        fail(code('revoked'), `${cert.subject.text} (serial ${cert.serialHex}) is revoked by the CRL of ${crl.issuer.text}, expected not listed`);
      }
    }
    covered.add(idx);
  }
  if (opts.requireCrls) {
    for (let i = 1; i < full.length; i++) {
      if (!covered.has(i)) fail(code('crl_missing'), `no CRL for ${full[i].subject.text}`);
    }
  }
  return full;
}

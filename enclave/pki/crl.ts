// X.509 CRL parsing (RFC 5280 §5), strict DER. Accepts DER, PEM ("X509 CRL"), or the hex text form
// Intel's PCS uses for some CRL responses.
import { AttestationError } from '../errors.js';
import {
  type DerNode, DerReader, TAG, contextTag, parseDer, readBoolean, readIntegerBytes, readOctetAlignedBitString,
  readOctetString, readOid, readSmallInteger, readTime,
} from './der.js';
import { type AlgorithmIdentifier, type Name, parseAlgorithmIdentifier, parseName, parsePem, toHex } from './x509.js';

export interface Crl {
  raw: Uint8Array;
  tbs: Uint8Array;
  version: number;
  signatureAlgorithm: AlgorithmIdentifier;
  issuer: Name;
  thisUpdate: Date;
  nextUpdate?: Date;
  /** Revoked serials as lowercase hex of the INTEGER content bytes (same form as Certificate.serialHex). */
  revoked: Set<string>;
  /** crlExtensions OIDs with their critical flag. */
  extensions: Map<string, { critical: boolean; value: Uint8Array }>;
  signature: Uint8Array;
}

function fail(code: string, message: string): never {
  throw new AttestationError(code, message);
}

function parseExtensionList(node: DerNode): Map<string, { critical: boolean; value: Uint8Array }> {
  const map = new Map<string, { critical: boolean; value: Uint8Array }>();
  const r = DerReader.of(node, TAG.SEQUENCE);
  if (r.done()) fail('der_malformed', 'empty extensions');
  while (!r.done()) {
    const e = DerReader.of(r.next(), TAG.SEQUENCE);
    const oid = readOid(e.next());
    let critical = false;
    const c = e.optional(TAG.BOOLEAN);
    if (c) {
      critical = readBoolean(c);
      if (!critical) fail('der_malformed', 'explicit default critical=false');
    }
    const value = readOctetString(e.next(TAG.OCTET_STRING));
    e.end();
    if (map.has(oid)) fail('pki_duplicate_extension', `duplicate CRL extension ${oid}`);
    map.set(oid, { critical, value });
  }
  return map;
}

export function parseCrl(der: Uint8Array): Crl {
  const root = parseDer(der);
  const r = DerReader.of(root, TAG.SEQUENCE);
  const tbsNode = r.next(TAG.SEQUENCE);
  const outerAlgNode = r.next(TAG.SEQUENCE);
  const signatureAlgorithm = parseAlgorithmIdentifier(outerAlgNode);
  const signature = readOctetAlignedBitString(r.next(TAG.BIT_STRING));
  r.end();

  const t = DerReader.of(tbsNode, TAG.SEQUENCE);
  let version = 1;
  const v = t.optional(TAG.INTEGER);
  if (v) {
    version = readSmallInteger(v) + 1;
    if (version !== 2) fail('pki_unsupported_crl', 'unsupported CRL version');
  }
  const innerAlg = t.next(TAG.SEQUENCE);
  if (innerAlg.raw.length !== outerAlgNode.raw.length || innerAlg.raw.some((b, i) => b !== outerAlgNode.raw[i])) {
    fail('pki_algorithm_mismatch', 'CRL signature algorithm fields differ');
  }
  const issuer = parseName(t.next(TAG.SEQUENCE));
  const thisUpdate = readTime(t.next());
  let nextUpdate: Date | undefined;
  const nt = t.peekTag();
  if (nt === TAG.UTC_TIME || nt === TAG.GENERALIZED_TIME) nextUpdate = readTime(t.next());
  const revoked = new Set<string>();
  const list = t.optional(TAG.SEQUENCE);
  if (list) {
    const lr = DerReader.of(list, TAG.SEQUENCE);
    while (!lr.done()) {
      const entry = DerReader.of(lr.next(), TAG.SEQUENCE);
      const serial = readIntegerBytes(entry.next());
      readTime(entry.next());
      const ext = entry.optional(TAG.SEQUENCE);
      if (ext) {
        // Entry extensions (reason code, invalidity date) do not un-revoke; an unknown critical one
        // (e.g. certificateIssuer for indirect CRLs) would change whose serial this is: refuse.
        for (const [oid, e] of parseExtensionList(ext)) {
          if (e.critical && oid !== '2.5.29.21' && oid !== '2.5.29.24') {
            fail('pki_crl_unsupported', `unsupported critical CRL entry extension ${oid}`);
          }
        }
      }
      entry.end();
      revoked.add(toHex(serial));
    }
  }
  let extensions = new Map<string, { critical: boolean; value: Uint8Array }>();
  const ext = t.optional(contextTag(0));
  if (ext) {
    const er = DerReader.of(ext, contextTag(0));
    extensions = parseExtensionList(er.next());
    er.end();
  }
  t.end();
  for (const [oid, e] of extensions) {
    // Known critical CRL extensions we cannot honour (delta CRLs, indirect CRL scoping) are refused.
    if (e.critical) fail('pki_crl_unsupported', `unsupported critical CRL extension ${oid}`);
  }
  return {
    raw: root.raw, tbs: tbsNode.raw, version, signatureAlgorithm, issuer, thisUpdate, nextUpdate, revoked,
    extensions, signature,
  };
}

/** One CRL from DER bytes, PEM text, or hex text. */
export function parseCrlInput(input: Uint8Array | string): Crl {
  const text = typeof input === 'string' ? input : input.length > 0 && input[0] === 0x30 ? undefined : new TextDecoder().decode(input);
  if (text === undefined) return parseCrl(input as Uint8Array);
  const pem = parsePem(text, 'X509 CRL');
  if (pem.length === 1) return parseCrl(pem[0]);
  if (pem.length > 1) fail('pem_malformed', 'more than one CRL');
  const hex = text.trim();
  if (hex.length > 0 && hex.length % 2 === 0 && /^[0-9a-fA-F]+$/.test(hex)) {
    const bytes = new Uint8Array(hex.length / 2);
    for (let i = 0; i < bytes.length; i++) bytes[i] = parseInt(hex.slice(2 * i, 2 * i + 2), 16);
    return parseCrl(bytes);
  }
  return fail('pem_malformed', 'CRL is neither DER, PEM nor hex');
}

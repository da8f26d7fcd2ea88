// X.509 CRL parsing (RFC 5280 §5), strict DER. Accepts DER, PEM ("X509 CRL"), or the hex text form
// Intel's PCS uses for some CRL responses.
import { bytesEqual, fromHex } from '../encoding.js';
import { AttestationError } from '../errors.js';
import { DerReader, TAG, contextTag, readIntegerBytes, readSmallInteger, readTime } from './der.js';
import {
  type AlgorithmIdentifier, type Name, parseExtensionList, parseName, parsePem, parseSignedEnvelope, toHex,
} from './x509.js';

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

export function parseCrl(der: Uint8Array): Crl {
  const { root, tbsNode, outerAlgNode, signatureAlgorithm, signature } = parseSignedEnvelope(der);
  const t = DerReader.of(tbsNode, TAG.SEQUENCE);
  let version = 1;
  const v = t.optional(TAG.INTEGER);
  if (v) {
    version = readSmallInteger(v) + 1;
    if (version !== 2) fail('pki_unsupported_crl', 'unsupported CRL version');
  }
  const innerAlg = t.next(TAG.SEQUENCE);
  if (!bytesEqual(innerAlg.raw, outerAlgNode.raw)) {
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
        for (const [oid, e] of parseExtensionList(ext, 'CRL extension')) {
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
    extensions = parseExtensionList(er.next(), 'CRL extension');
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
  if (hex.length > 0 && hex.length % 2 === 0 && /^[0-9a-fA-F]+$/.test(hex)) return parseCrl(fromHex(hex, 'pem_malformed'));
  return fail('pem_malformed', 'CRL is neither DER, PEM nor hex');
}

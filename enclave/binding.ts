// The evidence binding of contract version 2: REPORT_DATA commits to every field of the evidence
// document a client acts on (the client's nonce, the session it named, the key configuration it
// encrypts to, the served model's digest and name, the key's expiry and whether the evidence is
// simulated), so an on-path attacker can change none of them without breaking the hardware
// signature. Length prefixes make the encoding unambiguous.
//   reportData = SHA-512("sealed-inference attestation v2" || nonce[32]
//                        || u8(len(session)) || session || u16(len(keyConfig)) || keyConfig
//                        || modelDigest[32] || u8(len(modelId)) || modelId
//                        || u64(expiresAt, Unix seconds) || u8(simulated))
import { sha512 } from '@noble/hashes/sha2.js';
import { AttestationError } from './errors.js';

export const BINDING_LABEL = 'sealed-inference attestation v2';
const LABEL_BYTES = new TextEncoder().encode(BINDING_LABEL);

/** A session id: 16 random bytes in base64url without padding (CONTRACT). */
export const SESSION_ID_RE = /^[A-Za-z0-9_-]{22}$/;

export interface BindingInput {
  nonce: Uint8Array;
  /** The client-chosen session id (ASCII, 22 base64url characters). */
  session: string;
  keyConfig: Uint8Array;
  modelDigest: Uint8Array;
  /** UTF-8, 1..255 bytes. */
  modelId: string;
  /** Unix seconds (whole). */
  expiresAt: number;
  simulated: boolean;
}

export function isSessionId(s: unknown): s is string {
  // The last character carries only 2 of its 6 bits (16 bytes = 128 bits): a canonical encoding
  // leaves the other 4 zero, so exactly one string names each 16-byte id.
  return typeof s === 'string' && SESSION_ID_RE.test(s) && 'AQgw'.includes(s[21]!);
}

export function computeReportData(input: BindingInput): Uint8Array {
  const { nonce, session, keyConfig, modelDigest, modelId, expiresAt, simulated } = input;
  if (!(nonce instanceof Uint8Array) || nonce.length !== 32) throw new AttestationError('bad_nonce', 'nonce must be 32 bytes');
  if (!isSessionId(session)) throw new AttestationError('bad_session', 'session must be 16 bytes in base64url (22 characters)');
  if (!(keyConfig instanceof Uint8Array) || keyConfig.length === 0 || keyConfig.length > 0xffff) {
    throw new AttestationError('bad_key_config', 'key configuration must be 1..65535 bytes');
  }
  if (!(modelDigest instanceof Uint8Array) || modelDigest.length !== 32) {
    throw new AttestationError('bad_model_digest', 'model digest must be 32 bytes');
  }
  const id = typeof modelId === 'string' ? new TextEncoder().encode(modelId) : new Uint8Array(0);
  if (id.length === 0 || id.length > 255) throw new AttestationError('bad_model', 'model id must be 1..255 bytes of UTF-8');
  if (!Number.isSafeInteger(expiresAt) || expiresAt < 0) throw new AttestationError('bad_expiry', 'expiresAt must be whole Unix seconds');
  if (typeof simulated !== 'boolean') throw new AttestationError('bad_simulated', 'simulated must be a boolean');

  const sid = new TextEncoder().encode(session);
  const buf = new Uint8Array(LABEL_BYTES.length + 32 + 1 + sid.length + 2 + keyConfig.length + 32 + 1 + id.length + 8 + 1);
  const view = new DataView(buf.buffer);
  let o = 0;
  buf.set(LABEL_BYTES, o); o += LABEL_BYTES.length;
  buf.set(nonce, o); o += 32;
  buf[o++] = sid.length;
  buf.set(sid, o); o += sid.length;
  view.setUint16(o, keyConfig.length); o += 2;
  buf.set(keyConfig, o); o += keyConfig.length;
  buf.set(modelDigest, o); o += 32;
  buf[o++] = id.length;
  buf.set(id, o); o += id.length;
  view.setBigUint64(o, BigInt(expiresAt)); o += 8;
  buf[o++] = simulated ? 1 : 0;
  return sha512(buf);
}

// The evidence binding of CONTRACT.md: REPORT_DATA commits to the client's nonce, the session's
// OHTTP key configuration and the served model, so a report cannot be replayed for another
// session, key or model.
//   reportData = SHA-512("sealed-inference attestation v1" || nonce[32] || u16be(len(keyConfig)) || keyConfig || modelDigest[32])
import { sha512 } from '@noble/hashes/sha2.js';
import { AttestationError } from './errors.js';

export const BINDING_LABEL = 'sealed-inference attestation v1';
const LABEL_BYTES = new TextEncoder().encode(BINDING_LABEL);

export function computeReportData(nonce: Uint8Array, keyConfig: Uint8Array, modelDigest: Uint8Array): Uint8Array {
  if (!(nonce instanceof Uint8Array) || nonce.length !== 32) throw new AttestationError('bad_nonce', 'nonce must be 32 bytes');
  if (!(keyConfig instanceof Uint8Array) || keyConfig.length === 0 || keyConfig.length > 0xffff) {
    throw new AttestationError('bad_key_config', 'key configuration must be 1..65535 bytes');
  }
  if (!(modelDigest instanceof Uint8Array) || modelDigest.length !== 32) {
    throw new AttestationError('bad_model_digest', 'model digest must be 32 bytes');
  }
  const buf = new Uint8Array(LABEL_BYTES.length + 32 + 2 + keyConfig.length + 32);
  let o = 0;
  buf.set(LABEL_BYTES, o); o += LABEL_BYTES.length;
  buf.set(nonce, o); o += 32;
  buf[o++] = keyConfig.length >> 8;
  buf[o++] = keyConfig.length & 0xff;
  buf.set(keyConfig, o); o += keyConfig.length;
  buf.set(modelDigest, o);
  return sha512(buf);
}

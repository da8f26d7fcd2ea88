/**
 * An AeadBackend over Node's native AEADs (OpenSSL), several times faster than pure JS for the small
 * chunks of a token stream. This file imports nothing from Node: the host passes its `node:crypto`
 * module in, so transport/ stays loadable in a browser. Server start-up:
 *
 *   import * as nodeCrypto from 'node:crypto';
 *   setAeadBackend(createNodeAeadBackend(nodeCrypto));
 */
import { TransportError } from './errors.js';
import { AEAD_AES_128_GCM, AEAD_AES_256_GCM, AEAD_CHACHA20_POLY1305, type AeadBackend, type AeadId } from './hpke.js';

interface CipherLike {
  setAAD(aad: Uint8Array, options?: { plaintextLength: number }): unknown;
  update(data: Uint8Array): Uint8Array;
  final(): Uint8Array;
  getAuthTag(): Uint8Array;
}
interface DecipherLike {
  setAAD(aad: Uint8Array, options?: { plaintextLength: number }): unknown;
  setAuthTag(tag: Uint8Array): unknown;
  update(data: Uint8Array): Uint8Array;
  final(): Uint8Array;
}
/** The two functions of `node:crypto` this backend uses. */
export interface NodeCryptoLike {
  createCipheriv(algorithm: string, key: Uint8Array, iv: Uint8Array, options?: { authTagLength: number }): unknown;
  createDecipheriv(algorithm: string, key: Uint8Array, iv: Uint8Array, options?: { authTagLength: number }): unknown;
}

const ALGORITHMS: Record<number, string> = {
  [AEAD_AES_128_GCM]: 'aes-128-gcm',
  [AEAD_AES_256_GCM]: 'aes-256-gcm',
  [AEAD_CHACHA20_POLY1305]: 'chacha20-poly1305',
};
const TAG = 16;

function join(a: Uint8Array, b: Uint8Array, c?: Uint8Array): Uint8Array {
  const out = new Uint8Array(a.length + b.length + (c?.length ?? 0));
  out.set(a, 0);
  out.set(b, a.length);
  if (c) out.set(c, a.length + b.length);
  return out;
}

export function createNodeAeadBackend(nodeCrypto: NodeCryptoLike): AeadBackend {
  if (typeof nodeCrypto?.createCipheriv !== 'function' || typeof nodeCrypto?.createDecipheriv !== 'function') {
    throw new TransportError('invalid_argument', 'not a node:crypto module');
  }
  const algorithm = (aeadId: AeadId): string => {
    const a = ALGORITHMS[aeadId];
    if (!a) throw new TransportError('unsupported_suite', 'unsupported AEAD');
    return a;
  };
  return {
    name: 'node:crypto',
    seal(aeadId, key, nonce, aad, pt) {
      const c = nodeCrypto.createCipheriv(algorithm(aeadId), key, nonce, { authTagLength: TAG }) as CipherLike;
      c.setAAD(aad, { plaintextLength: pt.length });
      const body = c.update(pt);
      const tail = c.final();
      return join(body, tail, c.getAuthTag());
    },
    open(aeadId, key, nonce, aad, ct) {
      if (ct.length < TAG) throw new TransportError('decrypt_failed', 'ciphertext shorter than the tag');
      const d = nodeCrypto.createDecipheriv(algorithm(aeadId), key, nonce, { authTagLength: TAG }) as DecipherLike;
      d.setAuthTag(ct.subarray(ct.length - TAG));
      d.setAAD(aad, { plaintextLength: ct.length - TAG });
      const body = d.update(ct.subarray(0, ct.length - TAG));
      let tail: Uint8Array;
      try {
        tail = d.final(); // throws when the tag does not verify; `body` is then discarded unread
      } catch {
        body.fill(0);
        throw new TransportError('decrypt_failed', 'AEAD authentication failed');
      }
      return join(body, tail);
    },
  };
}

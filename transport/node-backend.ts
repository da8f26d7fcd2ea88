/**
 * Backends over Node's native crypto (OpenSSL): AEADs several times faster than pure JS for the small
 * chunks of a token stream, and X25519 for the gateway's per-request Decap. This file imports nothing
 * from Node: the host passes its `node:crypto` module in, so transport/ stays loadable in a browser.
 * Server start-up:
 *
 *   import * as nodeCrypto from 'node:crypto';
 *   useNodeCrypto(nodeCrypto);
 */
import { TransportError } from './errors.js';
import {
  AEAD_AES_128_GCM, AEAD_AES_256_GCM, AEAD_CHACHA20_POLY1305, setAeadBackend, setX25519Backend,
  type AeadBackend, type AeadId, type X25519Backend,
} from './hpke.js';

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
/** The functions of `node:crypto` these backends use (structurally typed: no Node types needed). */
export interface NodeCryptoLike {
  createCipheriv(algorithm: string, key: Uint8Array, iv: Uint8Array, options?: { authTagLength: number }): unknown;
  createDecipheriv(algorithm: string, key: Uint8Array, iv: Uint8Array, options?: { authTagLength: number }): unknown;
}
export interface NodeKeyCryptoLike {
  createPrivateKey(input: { key: Uint8Array; format: 'der'; type: 'pkcs8' }): unknown;
  createPublicKey(input: unknown): unknown;
  diffieHellman(options: { privateKey: unknown; publicKey: unknown }): Uint8Array;
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

// DER prefixes of an X25519 private key (PKCS#8) and public key (SPKI), RFC 8410: each is followed by
// the 32 raw key bytes. Fixed bytes, so no ASN.1 parsing happens here.
const PKCS8_X25519 = Uint8Array.of(0x30, 0x2e, 0x02, 0x01, 0x00, 0x30, 0x05, 0x06, 0x03, 0x2b, 0x65, 0x6e, 0x04, 0x22, 0x04, 0x20);
const SPKI_X25519 = Uint8Array.of(0x30, 0x2a, 0x30, 0x05, 0x06, 0x03, 0x2b, 0x65, 0x6e, 0x03, 0x21, 0x00);

interface KeyObjectLike {
  export(options: { format: 'der'; type: 'spki' }): Uint8Array;
}

export function createNodeX25519Backend(nodeCrypto: NodeKeyCryptoLike): X25519Backend {
  if (typeof nodeCrypto?.createPrivateKey !== 'function' || typeof nodeCrypto?.createPublicKey !== 'function' || typeof nodeCrypto?.diffieHellman !== 'function') {
    throw new TransportError('invalid_argument', 'not a node:crypto module');
  }
  const privateKey = (sk: Uint8Array) => {
    const der = join(PKCS8_X25519, sk);
    try {
      return nodeCrypto.createPrivateKey({ key: der, format: 'der', type: 'pkcs8' });
    } finally {
      der.fill(0);
    }
  };
  return {
    name: 'node:crypto',
    sharedSecret(sk, pk) {
      const pub = nodeCrypto.createPublicKey({ key: join(SPKI_X25519, pk), format: 'der', type: 'spki' });
      // OpenSSL refuses low-order points ("failed during derivation"); hpke.ts maps that to invalid_key.
      return new Uint8Array(nodeCrypto.diffieHellman({ privateKey: privateKey(sk), publicKey: pub }));
    },
    publicKey(sk) {
      const spki = (nodeCrypto.createPublicKey(privateKey(sk)) as KeyObjectLike).export({ format: 'der', type: 'spki' });
      if (spki.length !== SPKI_X25519.length + 32) throw new TransportError('invalid_key', 'unexpected public key encoding');
      return new Uint8Array(spki.subarray(SPKI_X25519.length));
    },
  };
}

/** Installs both node:crypto backends (AEAD and X25519) process-wide. */
export function useNodeCrypto(nodeCrypto: NodeCryptoLike & NodeKeyCryptoLike): void {
  setAeadBackend(createNodeAeadBackend(nodeCrypto));
  setX25519Backend(createNodeX25519Backend(nodeCrypto));
}

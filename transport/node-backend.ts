/**
 * Backends over Node's native crypto (OpenSSL): AEADs several times faster than pure JS for the small
 * chunks of a token stream, X25519 for the gateway's per-request Decap, and HMAC for HKDF. This file imports nothing
 * from Node: the host passes its `node:crypto` module in, so transport/ stays loadable in a browser.
 * Server start-up:
 *
 *   import * as nodeCrypto from 'node:crypto';
 *   useNodeCrypto(nodeCrypto);
 */
import { bytesToHex, equalBytes, hexToBytes } from './bytes.js';
import { TransportError } from './errors.js';
import {
  AEAD_AES_128_GCM, AEAD_AES_256_GCM, AEAD_CHACHA20_POLY1305, setAeadBackend, setHmacBackend, setX25519Backend,
  type AeadBackend, type AeadId, type HmacBackend, type X25519Backend,
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
export interface NodeHmacCryptoLike {
  createHmac(algorithm: 'sha256', key: Uint8Array): { update(data: Uint8Array): { digest(): Uint8Array } };
}
export interface NodeKeyCryptoLike {
  createPrivateKey(input: { key: { kty: 'OKP'; crv: 'X25519'; d: string; x: string }; format: 'jwk' }): unknown;
  createPublicKey(input: unknown): unknown;
  diffieHellman(options: { privateKey: unknown; publicKey: unknown }): Uint8Array;
  /** Optional: with it, fresh key pairs are made natively (see createNodeX25519Backend). */
  generateKeyPairSync?(type: 'x25519'): { privateKey: unknown };
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

// DER prefix of an X25519 public key (SPKI), RFC 8410, followed by the 32 raw key bytes.
const SPKI_X25519 = Uint8Array.of(0x30, 0x2a, 0x30, 0x05, 0x06, 0x03, 0x2b, 0x65, 0x6e, 0x03, 0x21, 0x00);
const B64URL = 'ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789-_';
// Node requires "x" in an OKP private JWK but derives the public key from "d" alone; the self-test in
// createNodeX25519Backend proves that on the running Node before any real key goes through it.
const PLACEHOLDER_X = 'A'.repeat(43);
// RFC 7748, section 6.1: Alice's private and public keys.
const SELF_TEST_SK = '77076d0a7318a57d3c16c17251b26645df4c2f87ebc0992ab177fba51db92c2a';
const SELF_TEST_PK = '8520f0098930a754748b7ddcb43ef75a0dbf3a0d26381af4eba4a98eaa9b4e6a';

const B64URL_VALUE = new Map([...B64URL].map((c, i) => [c, i]));

/** Strict unpadded base64url of exactly `n` bytes (a JWK member from OpenSSL), or null. */
function fromBase64url(s: unknown, n: number): Uint8Array | null {
  if (typeof s !== 'string' || s.length !== Math.ceil((n * 8) / 6)) return null;
  const out = new Uint8Array(n);
  let acc = 0;
  let bits = 0;
  let o = 0;
  for (const c of s) {
    const v = B64URL_VALUE.get(c);
    if (v === undefined) return null;
    acc = (acc << 6) | v;
    bits += 6;
    if (bits >= 8) {
      bits -= 8;
      if (o < n) out[o++] = (acc >> bits) & 0xff;
      acc &= (1 << bits) - 1;
    }
  }
  // The leftover bits of the last character must be zero (canonical encoding).
  return o === n && acc === 0 ? out : null;
}

interface JwkExportable {
  export(options: { format: 'jwk' }): { d?: unknown; x?: unknown };
}

function base64url(bytes: Uint8Array): string {
  let out = '';
  for (let i = 0; i < bytes.length; i += 3) {
    const n = (bytes[i] << 16) | ((bytes[i + 1] ?? 0) << 8) | (bytes[i + 2] ?? 0);
    const chars = Math.min(4, Math.ceil(((bytes.length - i) * 8) / 6));
    for (let j = 0; j < chars; j++) out += B64URL[(n >> (18 - 6 * j)) & 63];
  }
  return out;
}

interface KeyObjectLike {
  export(options: { format: 'der'; type: 'spki' }): Uint8Array;
}

export function createNodeX25519Backend(nodeCrypto: NodeKeyCryptoLike): X25519Backend {
  if (typeof nodeCrypto?.createPrivateKey !== 'function' || typeof nodeCrypto?.createPublicKey !== 'function' || typeof nodeCrypto?.diffieHellman !== 'function') {
    throw new TransportError('invalid_argument', 'not a node:crypto module');
  }
  // JWK rather than PKCS#8: OpenSSL 3's DER decoder costs ~0.8 ms a key here, the JWK path ~0.09 ms.
  // The encoded "d" is a short-lived string the garbage collector frees; the bytes stay the caller's.
  const importPrivate = (sk: Uint8Array) =>
    nodeCrypto.createPrivateKey({ key: { kty: 'OKP', crv: 'X25519', d: base64url(sk), x: PLACEHOLDER_X }, format: 'jwk' });
  // Even so an import costs ~35 us (OpenSSL derives the public key again), and the gateway used the
  // session's key for every request, the client a fresh key pair once. So the key object is kept
  // beside the caller's array, for as long as that array lives, and used only while the array still
  // holds the bytes it was made from: a key wiped in place (fill(0)) is imported afresh, as zeros.
  const held = new WeakMap<Uint8Array, { bytes: Uint8Array; key: unknown }>();
  const privateKey = (sk: Uint8Array): unknown => {
    const hit = held.get(sk);
    if (hit && equalBytes(hit.bytes, sk)) return hit.key;
    const key = importPrivate(sk);
    held.set(sk, { bytes: sk.slice(), key });
    return key;
  };
  const backend: X25519Backend = {
    name: 'node:crypto',
    sharedSecret(sk, pk) {
      const pub = nodeCrypto.createPublicKey({ key: { kty: 'OKP', crv: 'X25519', x: base64url(pk) }, format: 'jwk' });
      // OpenSSL refuses low-order points ("failed during derivation"); hpke.ts maps that to invalid_key.
      return new Uint8Array(nodeCrypto.diffieHellman({ privateKey: privateKey(sk), publicKey: pub }));
    },
    publicKey(sk) {
      const spki = (nodeCrypto.createPublicKey(privateKey(sk)) as KeyObjectLike).export({ format: 'der', type: 'spki' });
      if (spki.length !== SPKI_X25519.length + 32) throw new TransportError('invalid_key', 'unexpected public key encoding');
      return new Uint8Array(spki.subarray(SPKI_X25519.length));
    },
  };
  if (bytesToHex(backend.publicKey(hexToBytes(SELF_TEST_SK))) !== SELF_TEST_PK) {
    throw new TransportError('invalid_argument', 'node:crypto X25519 self-test failed (RFC 7748 vector)');
  }
  const keygen = nodeCrypto.generateKeyPairSync;
  if (typeof keygen === 'function') {
    // OpenSSL's key generation and one JWK export: ~45 us, against ~140 us for random bytes, a JWK
    // import, a public key and a DER export (the client makes a key pair for every request).
    backend.generateKeyPair = () => {
      const key = keygen.call(nodeCrypto, 'x25519').privateKey as JwkExportable;
      const jwk = key.export({ format: 'jwk' });
      const privateKey = fromBase64url(jwk.d, 32);
      const publicKey = fromBase64url(jwk.x, 32);
      if (!privateKey || !publicKey) throw new TransportError('invalid_key', 'unexpected key pair encoding');
      // The pair's first use (the client's Encap) needs no import.
      held.set(privateKey, { bytes: privateKey.slice(), key });
      return { privateKey, publicKey };
    };
  }
  return backend;
}

export function createNodeHmacBackend(nodeCrypto: NodeHmacCryptoLike): HmacBackend {
  if (typeof nodeCrypto?.createHmac !== 'function') throw new TransportError('invalid_argument', 'not a node:crypto module');
  return {
    name: 'node:crypto',
    hmacSha256(key, data) {
      const d = nodeCrypto.createHmac('sha256', key).update(data).digest();
      // A Buffer may sit in a shared pool: a view of exactly its bytes is what the caller may wipe.
      return new Uint8Array(d.buffer, d.byteOffset, d.byteLength);
    },
  };
}

/** Installs the node:crypto backends (AEAD, X25519 and HMAC) process-wide. */
export function useNodeCrypto(nodeCrypto: NodeCryptoLike & NodeKeyCryptoLike & NodeHmacCryptoLike): void {
  setAeadBackend(createNodeAeadBackend(nodeCrypto));
  setX25519Backend(createNodeX25519Backend(nodeCrypto));
  setHmacBackend(createNodeHmacBackend(nodeCrypto));
}

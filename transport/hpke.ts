/**
 * HPKE (RFC 9180) for the one KEM this project speaks, DHKEM(X25519, HKDF-SHA256), with HKDF-SHA256 and
 * the AEADs AES-128-GCM, AES-256-GCM and ChaCha20-Poly1305, in all four modes. Built only on @noble/*
 * primitives (HKDF is RFC 5869's two lines over their HMAC); no Node-only imports, so the same code seals
 * in a browser and opens in the server.
 *
 * The mode/PSK/auth variants exist so the key schedule is pinned by every RFC 9180 vector; OHTTP uses
 * base mode only.
 */
import { x25519 } from '@noble/curves/ed25519.js';
import { hmac } from '@noble/hashes/hmac.js';
import { sha256 } from '@noble/hashes/sha2.js';
import { gcm } from '@noble/ciphers/aes.js';
import { chacha20poly1305 } from '@noble/ciphers/chacha.js';
import { concat, i2osp, randomBytes, utf8, EMPTY } from './bytes.js';
import { TransportError } from './errors.js';

export const KEM_X25519_HKDF_SHA256 = 0x0020;
export const KDF_HKDF_SHA256 = 0x0001;
export const AEAD_AES_128_GCM = 0x0001;
export const AEAD_AES_256_GCM = 0x0002;
export const AEAD_CHACHA20_POLY1305 = 0x0003;

export type AeadId = typeof AEAD_AES_128_GCM | typeof AEAD_AES_256_GCM | typeof AEAD_CHACHA20_POLY1305;

export const MODE_BASE = 0x00;
export const MODE_PSK = 0x01;
export const MODE_AUTH = 0x02;
export const MODE_AUTH_PSK = 0x03;
export type Mode = typeof MODE_BASE | typeof MODE_PSK | typeof MODE_AUTH | typeof MODE_AUTH_PSK;

/** X25519 sizes: Nsecret, Nenc, Npk, Nsk. */
const N_SECRET = 32;
const N_ENC = 32;
const N_PK = 32;
const N_SK = 32;
/** HKDF-SHA256 output length. */
const N_H = 32;
/** Upper bound on info, psk_id and exporter context: far beyond any real use, it keeps hashing bounded. */
const MAX_LABEL_INPUT = 65536;

export interface KeyPair {
  publicKey: Uint8Array;
  privateKey: Uint8Array;
}

interface AeadParams {
  Nk: number;
  Nn: number;
  Nt: number;
  seal(key: Uint8Array, nonce: Uint8Array, aad: Uint8Array, pt: Uint8Array): Uint8Array;
  open(key: Uint8Array, nonce: Uint8Array, aad: Uint8Array, ct: Uint8Array): Uint8Array;
}

/**
 * An AEAD implementation to use instead of @noble/ciphers, for hosts with a native one (Node's
 * node:crypto, see node-backend.ts). It must implement the three AEADs exactly (RFC 5116 output: ct || tag)
 * and throw on any authentication failure; the vector tests run against it.
 */
export interface AeadBackend {
  readonly name: string;
  seal(aeadId: AeadId, key: Uint8Array, nonce: Uint8Array, aad: Uint8Array, pt: Uint8Array): Uint8Array;
  open(aeadId: AeadId, key: Uint8Array, nonce: Uint8Array, aad: Uint8Array, ct: Uint8Array): Uint8Array;
}

let backend: AeadBackend | undefined;

/**
 * Routes every AEAD operation of this module (HPKE contexts, OHTTP responses, chunks) through `b`;
 * `undefined` restores @noble/ciphers. Process-wide: set it once at start-up, before any context exists.
 */
export function setAeadBackend(b: AeadBackend | undefined): void {
  backend = b;
}

/** The name of the AEAD implementation in use ('noble' by default). */
export function aeadBackendName(): string {
  return backend?.name ?? 'noble';
}

function nobleParams(aeadId: AeadId, Nk: number, cipher: typeof gcm | typeof chacha20poly1305): AeadParams {
  return {
    Nk, Nn: 12, Nt: 16,
    seal: (k, n, a, p) => (backend ? backend.seal(aeadId, k, n, a, p) : cipher(k, n, a).encrypt(p)),
    open: (k, n, a, c) => (backend ? backend.open(aeadId, k, n, a, c) : cipher(k, n, a).decrypt(c)),
  };
}

const AEADS: Record<number, AeadParams> = {
  [AEAD_AES_128_GCM]: nobleParams(AEAD_AES_128_GCM, 16, gcm),
  [AEAD_AES_256_GCM]: nobleParams(AEAD_AES_256_GCM, 32, gcm),
  [AEAD_CHACHA20_POLY1305]: nobleParams(AEAD_CHACHA20_POLY1305, 32, chacha20poly1305),
};

export function isSupportedAead(aeadId: number): aeadId is AeadId {
  return Object.prototype.hasOwnProperty.call(AEADS, aeadId);
}

/** AEAD sizes (key, nonce, tag) for a supported AEAD id. */
export function aeadSizes(aeadId: number): { Nk: number; Nn: number; Nt: number } {
  const a = AEADS[aeadId];
  if (!isSupportedAead(aeadId) || !a) throw new TransportError('unsupported_suite', 'unsupported AEAD');
  return { Nk: a.Nk, Nn: a.Nn, Nt: a.Nt };
}

/**
 * Raw AEAD with an explicit key and nonce. OHTTP's response encryption uses the AEAD directly (outside an
 * HPKE context), so it is exported; authentication failure is TransportError('decrypt_failed').
 */
export function aeadSeal(aeadId: number, key: Uint8Array, nonce: Uint8Array, aad: Uint8Array, pt: Uint8Array): Uint8Array {
  const a = aeadFor(aeadId);
  if (key.length !== a.Nk || nonce.length !== a.Nn) throw new TransportError('invalid_argument', 'AEAD key or nonce length');
  return a.seal(key, nonce, aad, pt);
}

export function aeadOpen(aeadId: number, key: Uint8Array, nonce: Uint8Array, aad: Uint8Array, ct: Uint8Array): Uint8Array {
  const a = aeadFor(aeadId);
  if (key.length !== a.Nk || nonce.length !== a.Nn) throw new TransportError('invalid_argument', 'AEAD key or nonce length');
  if (ct.length < a.Nt) throw new TransportError('decrypt_failed', 'ciphertext shorter than the tag');
  try {
    return a.open(key, nonce, aad, ct);
  } catch {
    throw new TransportError('decrypt_failed', 'AEAD authentication failed');
  }
}

function aeadFor(aeadId: number): AeadParams {
  if (!isSupportedAead(aeadId)) throw new TransportError('unsupported_suite', 'unsupported AEAD');
  return AEADS[aeadId];
}

const HPKE_V1 = utf8('HPKE-v1');

/**
 * An HMAC-SHA256 implementation to use instead of @noble/hashes (Node's native one, see node-backend.ts):
 * HKDF, and so every key schedule and OHTTP response key, runs through it. A setup runs about ten HMACs,
 * each ~4.5 us in JS and ~2 us native. It must be HMAC-SHA256 exactly; the vector tests run against it.
 */
export interface HmacBackend {
  readonly name: string;
  hmacSha256(key: Uint8Array, data: Uint8Array): Uint8Array;
}

let hmacBackend: HmacBackend | undefined;

/** Routes every HMAC of this module (HKDF) through `b`; `undefined` restores @noble/hashes. Process-wide. */
export function setHmacBackend(b: HmacBackend | undefined): void {
  hmacBackend = b;
}

/** The name of the HMAC implementation in use ('noble' by default). */
export function hmacBackendName(): string {
  return hmacBackend?.name ?? 'noble';
}

function hmacSha256(key: Uint8Array, data: Uint8Array): Uint8Array {
  const out = hmacBackend ? hmacBackend.hmacSha256(key, data) : hmac(sha256, key, data);
  if (!(out instanceof Uint8Array) || out.length !== N_H) throw new TransportError('invalid_argument', 'HMAC backend returned the wrong length');
  return out;
}

/**
 * HKDF-Extract (RFC 5869) with SHA-256: HMAC keyed by the salt. An empty salt is the RFC's default of
 * HashLen zero bytes, and HMAC pads any key with zeros to the block size, so both are the same key.
 */
export function extract(salt: Uint8Array, ikm: Uint8Array): Uint8Array {
  return hmacSha256(salt, ikm);
}

/** HKDF-Expand (RFC 5869) with SHA-256: T(i) = HMAC(prk, T(i-1) | info | i), concatenated and cut to `length`. */
export function expand(prk: Uint8Array, info: Uint8Array, length: number): Uint8Array {
  if (!Number.isInteger(length) || length < 0 || length > 255 * N_H) throw new TransportError('invalid_argument', 'HKDF output length');
  const out = new Uint8Array(length);
  const block = new Uint8Array(N_H + info.length + 1);
  block.set(info, N_H);
  let t: Uint8Array = EMPTY;
  for (let i = 1, at = 0; at < length; i++, at += N_H) {
    // T(0) is empty, so the first block is info | 1 alone.
    const input = i === 1 ? block.subarray(N_H) : block;
    input[input.length - 1] = i;
    t.fill(0);
    t = hmacSha256(prk, input);
    out.set(length - at >= N_H ? t : t.subarray(0, length - at), at);
    block.set(t, 0);
  }
  t.fill(0);
  block.fill(0);
  return out;
}

function labeledExtract(suiteId: Uint8Array, salt: Uint8Array, label: string, ikm: Uint8Array): Uint8Array {
  return extract(salt, concat(HPKE_V1, suiteId, utf8(label), ikm));
}

function labeledExpand(suiteId: Uint8Array, prk: Uint8Array, label: string, info: Uint8Array, length: number): Uint8Array {
  return expand(prk, concat(i2osp(length, 2), HPKE_V1, suiteId, utf8(label), info), length);
}

const KEM_SUITE_ID = concat(utf8('KEM'), i2osp(KEM_X25519_HKDF_SHA256, 2));

function checkLen(b: Uint8Array, n: number, what: string): void {
  if (!(b instanceof Uint8Array) || b.length !== n) throw new TransportError('invalid_key', `${what} has the wrong length`);
}

/**
 * An X25519 implementation to use instead of @noble/curves (Node's native one, see node-backend.ts).
 * `sharedSecret` must reject or return all zeros for low-order points; dh() checks the result anyway.
 */
export interface X25519Backend {
  readonly name: string;
  sharedSecret(privateKey: Uint8Array, publicKey: Uint8Array): Uint8Array;
  publicKey(privateKey: Uint8Array): Uint8Array;
  /** A fresh random key pair, when the backend makes one faster than random bytes + publicKey(). */
  generateKeyPair?(): KeyPair;
}

let x25519Backend: X25519Backend | undefined;

/** Routes every X25519 operation through `b`; `undefined` restores @noble/curves. Process-wide. */
export function setX25519Backend(b: X25519Backend | undefined): void {
  x25519Backend = b;
}

/** The name of the X25519 implementation in use ('noble' by default). */
export function x25519BackendName(): string {
  return x25519Backend?.name ?? 'noble';
}

function basePoint(sk: Uint8Array): Uint8Array {
  return x25519Backend ? x25519Backend.publicKey(sk) : x25519.getPublicKey(sk);
}

function dh(sk: Uint8Array, pk: Uint8Array): Uint8Array {
  checkLen(sk, N_SK, 'private key');
  checkLen(pk, N_PK, 'public key');
  let out: Uint8Array;
  try {
    // Both implementations reject low-order points themselves; the zero check below holds regardless.
    out = x25519Backend ? x25519Backend.sharedSecret(sk, pk) : x25519.getSharedSecret(sk, pk);
  } catch {
    throw new TransportError('invalid_key', 'X25519 rejected the public key');
  }
  let z = 0;
  for (let i = 0; i < out.length; i++) z |= out[i];
  if (z === 0) throw new TransportError('invalid_key', 'X25519 produced the all-zero value');
  return out;
}

/** DeriveKeyPair (RFC 9180 section 7.1.3) for X25519. */
export function deriveKeyPair(ikm: Uint8Array): KeyPair {
  if (!(ikm instanceof Uint8Array) || ikm.length < N_SK) throw new TransportError('invalid_argument', 'ikm must be at least 32 bytes');
  const dkpPrk = labeledExtract(KEM_SUITE_ID, EMPTY, 'dkp_prk', ikm);
  const privateKey = labeledExpand(KEM_SUITE_ID, dkpPrk, 'sk', EMPTY, N_SK);
  dkpPrk.fill(0);
  return { privateKey, publicKey: basePoint(privateKey) };
}

export function generateKeyPair(): KeyPair {
  if (x25519Backend?.generateKeyPair) {
    const kp = x25519Backend.generateKeyPair();
    checkLen(kp.privateKey, N_SK, 'private key');
    checkLen(kp.publicKey, N_PK, 'public key');
    return kp;
  }
  const privateKey = randomBytes(N_SK);
  return { privateKey, publicKey: basePoint(privateKey) };
}

export function publicKeyFromPrivate(privateKey: Uint8Array): Uint8Array {
  checkLen(privateKey, N_SK, 'private key');
  return basePoint(privateKey);
}

function extractAndExpand(dhOut: Uint8Array, kemContext: Uint8Array): Uint8Array {
  const eaePrk = labeledExtract(KEM_SUITE_ID, EMPTY, 'eae_prk', dhOut);
  const ss = labeledExpand(KEM_SUITE_ID, eaePrk, 'shared_secret', kemContext, N_SECRET);
  eaePrk.fill(0);
  return ss;
}

/** Encap / AuthEncap. `ephemeral` is for reproducing published vectors; leave it out in real use. */
export function encap(pkR: Uint8Array, skS?: Uint8Array, ephemeral?: KeyPair): { sharedSecret: Uint8Array; enc: Uint8Array } {
  checkLen(pkR, N_PK, 'recipient public key');
  const eph = ephemeral ?? generateKeyPair();
  const enc = eph.publicKey;
  checkLen(enc, N_ENC, 'ephemeral public key');
  let dhOut = dh(eph.privateKey, pkR);
  let kemContext = concat(enc, pkR);
  if (skS) {
    const pkS = publicKeyFromPrivate(skS);
    dhOut = concat(dhOut, dh(skS, pkR));
    kemContext = concat(kemContext, pkS);
  }
  const sharedSecret = extractAndExpand(dhOut, kemContext);
  dhOut.fill(0);
  if (!ephemeral) eph.privateKey.fill(0);
  return { sharedSecret, enc };
}

/**
 * Decap / AuthDecap. `pkR` may be passed when the caller already holds the recipient's public key (a
 * gateway's key configuration), saving a scalar multiplication; it must belong to skR, or every open
 * fails.
 */
export function decap(enc: Uint8Array, skR: Uint8Array, pkS?: Uint8Array, pkR?: Uint8Array): Uint8Array {
  checkLen(enc, N_ENC, 'encapsulated key');
  checkLen(skR, N_SK, 'recipient private key');
  if (pkR) checkLen(pkR, N_PK, 'recipient public key');
  let dhOut = dh(skR, enc);
  let kemContext = concat(enc, pkR ?? publicKeyFromPrivate(skR));
  if (pkS) {
    checkLen(pkS, N_PK, 'sender public key');
    dhOut = concat(dhOut, dh(skR, pkS));
    kemContext = concat(kemContext, pkS);
  }
  const ss = extractAndExpand(dhOut, kemContext);
  dhOut.fill(0);
  return ss;
}

export interface KeyScheduleResult {
  keyScheduleContext: Uint8Array;
  secret: Uint8Array;
  key: Uint8Array;
  baseNonce: Uint8Array;
  exporterSecret: Uint8Array;
}

/** KeySchedule (RFC 9180 section 5.1), exposed so tests can pin every intermediate value. */
export function keySchedule(
  aeadId: number,
  mode: Mode,
  sharedSecret: Uint8Array,
  info: Uint8Array,
  psk: Uint8Array = EMPTY,
  pskId: Uint8Array = EMPTY,
): KeyScheduleResult {
  const a = aeadFor(aeadId);
  const hasPsk = psk.length > 0;
  const hasPskId = pskId.length > 0;
  if (hasPsk !== hasPskId) throw new TransportError('invalid_argument', 'psk and psk_id must be given together');
  const pskMode = mode === MODE_PSK || mode === MODE_AUTH_PSK;
  if (pskMode !== hasPsk) throw new TransportError('invalid_argument', 'psk inputs do not match the mode');
  if (hasPsk && psk.length < 32) throw new TransportError('invalid_argument', 'psk must be at least 32 bytes');
  if (info.length > MAX_LABEL_INPUT || pskId.length > MAX_LABEL_INPUT || psk.length > MAX_LABEL_INPUT) {
    throw new TransportError('invalid_argument', 'HPKE input too long');
  }
  const suiteId = hpkeSuiteId(aeadId);
  const pskIdHash = labeledExtract(suiteId, EMPTY, 'psk_id_hash', pskId);
  const infoHash = labeledExtract(suiteId, EMPTY, 'info_hash', info);
  const keyScheduleContext = concat(Uint8Array.of(mode), pskIdHash, infoHash);
  const secret = labeledExtract(suiteId, sharedSecret, 'secret', psk);
  const key = labeledExpand(suiteId, secret, 'key', keyScheduleContext, a.Nk);
  const baseNonce = labeledExpand(suiteId, secret, 'base_nonce', keyScheduleContext, a.Nn);
  const exporterSecret = labeledExpand(suiteId, secret, 'exp', keyScheduleContext, N_H);
  return { keyScheduleContext, secret, key, baseNonce, exporterSecret };
}

function hpkeSuiteId(aeadId: number): Uint8Array {
  return concat(utf8('HPKE'), i2osp(KEM_X25519_HKDF_SHA256, 2), i2osp(KDF_HKDF_SHA256, 2), i2osp(aeadId, 2));
}

/**
 * An HPKE encryption context. Sender contexts seal, recipient contexts open; both export. The sequence
 * number advances only on success, so a failed open leaves the context usable for the genuine message.
 */
export class Context {
  readonly aeadId: AeadId;
  readonly role: 'sender' | 'recipient';
  readonly #aead: AeadParams;
  readonly #suiteId: Uint8Array;
  readonly #key: Uint8Array;
  readonly #baseNonce: Uint8Array;
  readonly #exporterSecret: Uint8Array;
  #seq = 0;
  #destroyed = false;

  constructor(role: 'sender' | 'recipient', aeadId: AeadId, ks: KeyScheduleResult) {
    this.role = role;
    this.aeadId = aeadId;
    this.#aead = aeadFor(aeadId);
    this.#suiteId = hpkeSuiteId(aeadId);
    this.#key = ks.key;
    this.#baseNonce = ks.baseNonce;
    this.#exporterSecret = ks.exporterSecret;
    ks.secret.fill(0);
  }

  /** The sequence number the next seal/open will use. */
  get seq(): number {
    return this.#seq;
  }

  /** Nonce for sequence number `seq`: base_nonce XOR I2OSP(seq, Nn). */
  nonceFor(seq: number): Uint8Array {
    const nonce = this.#baseNonce.slice();
    let v = seq;
    for (let i = nonce.length - 1; v > 0 && i >= 0; i--) {
      nonce[i] ^= v % 256;
      v = Math.floor(v / 256);
    }
    return nonce;
  }

  #checkUsable(role: 'sender' | 'recipient'): void {
    if (this.#destroyed) throw new TransportError('state', 'context destroyed');
    if (this.role !== role) throw new TransportError('state', `only a ${role} context can do this`);
    // Nn is 12 bytes, so the RFC bound is 2^96-1; we stop at 2^53-1, far beyond any real stream.
    if (this.#seq >= Number.MAX_SAFE_INTEGER) throw new TransportError('sequence_overflow', 'sequence number exhausted');
  }

  seal(aad: Uint8Array, pt: Uint8Array): Uint8Array {
    this.#checkUsable('sender');
    const ct = this.#aead.seal(this.#key, this.nonceFor(this.#seq), aad, pt);
    this.#seq++;
    return ct;
  }

  open(aad: Uint8Array, ct: Uint8Array): Uint8Array {
    this.#checkUsable('recipient');
    if (ct.length < this.#aead.Nt) throw new TransportError('decrypt_failed', 'ciphertext shorter than the tag');
    let pt: Uint8Array;
    try {
      pt = this.#aead.open(this.#key, this.nonceFor(this.#seq), aad, ct);
    } catch {
      throw new TransportError('decrypt_failed', 'AEAD authentication failed');
    }
    this.#seq++;
    return pt;
  }

  /** Secret export (RFC 9180 section 5.3). */
  export(exporterContext: Uint8Array, length: number): Uint8Array {
    if (this.#destroyed) throw new TransportError('state', 'context destroyed');
    if (exporterContext.length > MAX_LABEL_INPUT) throw new TransportError('invalid_argument', 'exporter context too long');
    if (!Number.isInteger(length) || length < 0 || length > 255 * N_H) throw new TransportError('invalid_argument', 'export length');
    return labeledExpand(this.#suiteId, this.#exporterSecret, 'sec', exporterContext, length);
  }

  /** Zero the key material; every later call fails with code 'state'. */
  destroy(): void {
    this.#key.fill(0);
    this.#baseNonce.fill(0);
    this.#exporterSecret.fill(0);
    this.#destroyed = true;
  }
}

export interface SenderSetup {
  enc: Uint8Array;
  context: Context;
}

export interface SetupSenderOptions {
  mode?: Mode;
  info?: Uint8Array;
  psk?: Uint8Array;
  pskId?: Uint8Array;
  /** Sender private key (auth modes). */
  senderPrivateKey?: Uint8Array;
  /** Fixed ephemeral key pair: only for reproducing published test vectors. */
  ephemeral?: KeyPair;
}

export interface SetupRecipientOptions {
  mode?: Mode;
  info?: Uint8Array;
  psk?: Uint8Array;
  pskId?: Uint8Array;
  /** Sender public key (auth modes). */
  senderPublicKey?: Uint8Array;
  /** The recipient's own public key, if known (skips recomputing it from the private key). */
  recipientPublicKey?: Uint8Array;
}

/**
 * One HPKE cipher suite: KEM 0x0020, KDF 0x0001 and one of the three AEADs. Construction fails with
 * 'unsupported_suite' for anything else.
 */
export class CipherSuite {
  readonly kemId = KEM_X25519_HKDF_SHA256;
  readonly kdfId = KDF_HKDF_SHA256;
  readonly aeadId: AeadId;
  readonly Nk: number;
  readonly Nn: number;
  readonly Nt: number;
  readonly Nh = N_H;
  readonly Nenc = N_ENC;
  readonly Npk = N_PK;
  readonly Nsk = N_SK;

  constructor(params: { kemId?: number; kdfId?: number; aeadId: number }) {
    if ((params.kemId ?? KEM_X25519_HKDF_SHA256) !== KEM_X25519_HKDF_SHA256) throw new TransportError('unsupported_suite', 'unsupported KEM');
    if ((params.kdfId ?? KDF_HKDF_SHA256) !== KDF_HKDF_SHA256) throw new TransportError('unsupported_suite', 'unsupported KDF');
    const a = aeadFor(params.aeadId);
    this.aeadId = params.aeadId as AeadId;
    this.Nk = a.Nk;
    this.Nn = a.Nn;
    this.Nt = a.Nt;
  }

  deriveKeyPair(ikm: Uint8Array): KeyPair {
    return deriveKeyPair(ikm);
  }

  generateKeyPair(): KeyPair {
    return generateKeyPair();
  }

  setupSender(pkR: Uint8Array, opts: SetupSenderOptions = {}): SenderSetup {
    const mode = opts.mode ?? MODE_BASE;
    const auth = mode === MODE_AUTH || mode === MODE_AUTH_PSK;
    if (auth !== !!opts.senderPrivateKey) throw new TransportError('invalid_argument', 'sender key does not match the mode');
    const { sharedSecret, enc } = encap(pkR, opts.senderPrivateKey, opts.ephemeral);
    const ks = keySchedule(this.aeadId, mode, sharedSecret, opts.info ?? EMPTY, opts.psk, opts.pskId);
    sharedSecret.fill(0);
    return { enc, context: new Context('sender', this.aeadId, ks) };
  }

  setupRecipient(enc: Uint8Array, skR: Uint8Array, opts: SetupRecipientOptions = {}): Context {
    const mode = opts.mode ?? MODE_BASE;
    const auth = mode === MODE_AUTH || mode === MODE_AUTH_PSK;
    if (auth !== !!opts.senderPublicKey) throw new TransportError('invalid_argument', 'sender key does not match the mode');
    const sharedSecret = decap(enc, skR, opts.senderPublicKey, opts.recipientPublicKey);
    const ks = keySchedule(this.aeadId, mode, sharedSecret, opts.info ?? EMPTY, opts.psk, opts.pskId);
    sharedSecret.fill(0);
    return new Context('recipient', this.aeadId, ks);
  }

  // The RFC 9180 names, thin wrappers over setupSender / setupRecipient.
  setupBaseS(pkR: Uint8Array, info: Uint8Array, ephemeral?: KeyPair): SenderSetup {
    return this.setupSender(pkR, { mode: MODE_BASE, info, ephemeral });
  }
  setupBaseR(enc: Uint8Array, skR: Uint8Array, info: Uint8Array): Context {
    return this.setupRecipient(enc, skR, { mode: MODE_BASE, info });
  }
  setupPSKS(pkR: Uint8Array, info: Uint8Array, psk: Uint8Array, pskId: Uint8Array, ephemeral?: KeyPair): SenderSetup {
    return this.setupSender(pkR, { mode: MODE_PSK, info, psk, pskId, ephemeral });
  }
  setupPSKR(enc: Uint8Array, skR: Uint8Array, info: Uint8Array, psk: Uint8Array, pskId: Uint8Array): Context {
    return this.setupRecipient(enc, skR, { mode: MODE_PSK, info, psk, pskId });
  }
  setupAuthS(pkR: Uint8Array, info: Uint8Array, skS: Uint8Array, ephemeral?: KeyPair): SenderSetup {
    return this.setupSender(pkR, { mode: MODE_AUTH, info, senderPrivateKey: skS, ephemeral });
  }
  setupAuthR(enc: Uint8Array, skR: Uint8Array, info: Uint8Array, pkS: Uint8Array): Context {
    return this.setupRecipient(enc, skR, { mode: MODE_AUTH, info, senderPublicKey: pkS });
  }
  setupAuthPSKS(pkR: Uint8Array, info: Uint8Array, psk: Uint8Array, pskId: Uint8Array, skS: Uint8Array, ephemeral?: KeyPair): SenderSetup {
    return this.setupSender(pkR, { mode: MODE_AUTH_PSK, info, psk, pskId, senderPrivateKey: skS, ephemeral });
  }
  setupAuthPSKR(enc: Uint8Array, skR: Uint8Array, info: Uint8Array, psk: Uint8Array, pskId: Uint8Array, pkS: Uint8Array): Context {
    return this.setupRecipient(enc, skR, { mode: MODE_AUTH_PSK, info, psk, pskId, senderPublicKey: pkS });
  }

  /** Single-shot base-mode seal: returns enc and the ciphertext. */
  sealBase(pkR: Uint8Array, info: Uint8Array, aad: Uint8Array, pt: Uint8Array): { enc: Uint8Array; ct: Uint8Array } {
    const { enc, context } = this.setupBaseS(pkR, info);
    const ct = context.seal(aad, pt);
    context.destroy();
    return { enc, ct };
  }

  openBase(enc: Uint8Array, skR: Uint8Array, info: Uint8Array, aad: Uint8Array, ct: Uint8Array): Uint8Array {
    const context = this.setupBaseR(enc, skR, info);
    try {
      return context.open(aad, ct);
    } finally {
      context.destroy();
    }
  }
}

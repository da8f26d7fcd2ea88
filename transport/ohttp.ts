/**
 * Oblivious HTTP (RFC 9458): key configurations (single and the `application/ohttp-keys` list form),
 * key id selection, and the Encapsulated Request / Response on both sides. The encapsulated payload is
 * opaque here (in this project, a Binary HTTP message).
 *
 * Every failure is a TransportError; a gateway maps 'unknown_key' to 422 (RFC 9458 section 5.3),
 * 'too_large' to 413 and every other code to 400, without echoing anything from the request.
 */
import { concat, i2osp, randomBytes, Reader, utf8 } from './bytes.js';
import { TransportError } from './errors.js';
import {
  AEAD_AES_128_GCM, AEAD_AES_256_GCM, AEAD_CHACHA20_POLY1305, CipherSuite, Context, KDF_HKDF_SHA256, KEM_X25519_HKDF_SHA256,
  aeadOpen, aeadSeal, aeadSizes, expand, extract, generateKeyPair, isSupportedAead, type KeyPair, type SenderSetup,
} from './hpke.js';
import { resolveLimits, type TransportLimits } from './limits.js';

export interface SymmetricSuite {
  kdfId: number;
  aeadId: number;
}

export interface KeyConfig {
  keyId: number;
  kemId: number;
  publicKey: Uint8Array;
  suites: SymmetricSuite[];
}

/** What a gateway holds per key id. */
export interface ServerKey {
  config: KeyConfig;
  privateKey: Uint8Array;
}

/** Returns the key for a key id, or undefined when it is unknown or expired. */
export type KeyLookup = (keyId: number) => ServerKey | undefined;

/** Every suite this implementation supports, in the order a fresh key configuration offers them. */
export const ALL_SUITES: readonly SymmetricSuite[] = Object.freeze([
  { kdfId: KDF_HKDF_SHA256, aeadId: AEAD_AES_128_GCM },
  { kdfId: KDF_HKDF_SHA256, aeadId: AEAD_AES_256_GCM },
  { kdfId: KDF_HKDF_SHA256, aeadId: AEAD_CHACHA20_POLY1305 },
]);

export const MEDIA_TYPE_KEYS = 'application/ohttp-keys';
export const MEDIA_TYPE_REQUEST = 'message/ohttp-req';
export const MEDIA_TYPE_RESPONSE = 'message/ohttp-res';

const LABEL_REQUEST = 'message/bhttp request';
const LABEL_RESPONSE = 'message/bhttp response';
const N_PK_X25519 = 32;
const N_ENC_X25519 = 32;
/** key_id(1) kem_id(2) kdf_id(2) aead_id(2) */
const HEADER_LENGTH = 7;

export function isSupportedSuite(s: SymmetricSuite): boolean {
  return s.kdfId === KDF_HKDF_SHA256 && isSupportedAead(s.aeadId);
}

// ---------------------------------------------------------------- key configuration

export function checkConfig(config: KeyConfig): void {
  if (!Number.isInteger(config.keyId) || config.keyId < 0 || config.keyId > 255) throw new TransportError('invalid_argument', 'key id must be 0..255');
  if (config.kemId !== KEM_X25519_HKDF_SHA256) throw new TransportError('unsupported_suite', 'unsupported KEM');
  if (!(config.publicKey instanceof Uint8Array) || config.publicKey.length !== N_PK_X25519) throw new TransportError('invalid_key', 'public key has the wrong length');
  if (config.suites.length === 0 || config.suites.length > 16383) throw new TransportError('invalid_argument', 'a key configuration lists 1..16383 suites');
  for (const s of config.suites) {
    for (const id of [s.kdfId, s.aeadId]) {
      if (!Number.isInteger(id) || id < 0 || id > 0xffff) throw new TransportError('invalid_argument', 'suite ids are 16-bit');
    }
  }
}

/** One key configuration (RFC 9458 section 3.1). */
export function encodeKeyConfig(config: KeyConfig): Uint8Array {
  checkConfig(config);
  const suites = concat(...config.suites.map((s) => concat(i2osp(s.kdfId, 2), i2osp(s.aeadId, 2))));
  return concat(Uint8Array.of(config.keyId), i2osp(config.kemId, 2), config.publicKey, i2osp(suites.length, 2), suites);
}

/** Strictly decodes exactly one key configuration; trailing bytes are an error. */
export function decodeKeyConfig(bytes: Uint8Array): KeyConfig {
  const r = new Reader(bytes);
  const config = readKeyConfig(r);
  if (!r.done) throw new TransportError('malformed', 'trailing bytes after the key configuration');
  return config;
}

function readKeyConfig(r: Reader): KeyConfig {
  const keyId = r.u8();
  const kemId = r.u16();
  // Without knowing the KEM we cannot know Npk, so an unknown KEM cannot be parsed further.
  if (kemId !== KEM_X25519_HKDF_SHA256) throw new TransportError('unsupported_suite', 'unsupported KEM');
  const publicKey = r.bytes(N_PK_X25519).slice();
  const len = r.u16();
  if (len === 0 || len % 4 !== 0) throw new TransportError('malformed', 'suite list length must be a non-zero multiple of 4');
  const sr = r.sub(len);
  const suites: SymmetricSuite[] = [];
  while (!sr.done) suites.push({ kdfId: sr.u16(), aeadId: sr.u16() });
  return { keyId, kemId, publicKey, suites };
}

/** The `application/ohttp-keys` form (RFC 9458 section 3.2): each configuration prefixed by a 2-byte length. */
export function encodeKeyConfigList(configs: readonly KeyConfig[]): Uint8Array {
  return concat(...configs.map((c) => {
    const e = encodeKeyConfig(c);
    return concat(i2osp(e.length, 2), e);
  }));
}

/**
 * Decodes `application/ohttp-keys`. Configurations with a KEM this code does not implement are skipped
 * (their length prefix lets a client step over them, as RFC 9458 intends); any framing error fails the
 * whole list.
 */
export function decodeKeyConfigList(bytes: Uint8Array): KeyConfig[] {
  if (bytes.length === 0) throw new TransportError('malformed', 'empty key configuration list');
  const r = new Reader(bytes);
  const out: KeyConfig[] = [];
  while (!r.done) {
    const len = r.u16();
    const body = r.bytes(len);
    if (len >= 3 && ((body[1] << 8) | body[2]) !== KEM_X25519_HKDF_SHA256) continue;
    out.push(decodeKeyConfig(body));
  }
  return out;
}

/** Picks the configuration with `keyId` (or the first with a supported suite). */
export function selectKeyConfig(configs: readonly KeyConfig[], keyId?: number): KeyConfig {
  const c = configs.find((k) => (keyId === undefined || k.keyId === keyId) && k.suites.some(isSupportedSuite));
  if (!c) throw new TransportError('unknown_key', 'no usable key configuration');
  return c;
}

/** The suite a client uses: `preferred` if the configuration offers it, else the first supported one offered. */
export function selectSuite(config: KeyConfig, preferred?: SymmetricSuite): SymmetricSuite {
  const offered = (s: SymmetricSuite) => config.suites.some((o) => o.kdfId === s.kdfId && o.aeadId === s.aeadId);
  if (preferred) {
    if (!isSupportedSuite(preferred) || !offered(preferred)) throw new TransportError('unsupported_suite', 'suite not offered by the key configuration');
    return { kdfId: preferred.kdfId, aeadId: preferred.aeadId };
  }
  const s = config.suites.find(isSupportedSuite);
  if (!s) throw new TransportError('unsupported_suite', 'no supported suite offered');
  return { kdfId: s.kdfId, aeadId: s.aeadId };
}

/** A fresh key pair and configuration offering `suites` (default: all three AEADs). */
export function generateKeyConfig(keyId: number, suites: readonly SymmetricSuite[] = ALL_SUITES): { config: KeyConfig; encoded: Uint8Array; privateKey: Uint8Array } {
  for (const s of suites) if (!isSupportedSuite(s)) throw new TransportError('unsupported_suite', 'cannot offer an unsupported suite');
  const kp = generateKeyPair();
  const config: KeyConfig = { keyId, kemId: KEM_X25519_HKDF_SHA256, publicKey: kp.publicKey, suites: suites.map((s) => ({ ...s })) };
  return { config, encoded: encodeKeyConfig(config), privateKey: kp.privateKey };
}

/** A KeyLookup over a fixed set of keys. */
export function keyLookup(keys: Iterable<ServerKey>): KeyLookup {
  const m = new Map<number, ServerKey>();
  for (const k of keys) m.set(k.config.keyId, k);
  return (id) => m.get(id);
}

// ---------------------------------------------------------------- shared request / response pieces

/** hdr = key_id || kem_id || kdf_id || aead_id */
export function requestHeader(keyId: number, suite: SymmetricSuite): Uint8Array {
  return concat(i2osp(keyId, 1), i2osp(KEM_X25519_HKDF_SHA256, 2), i2osp(suite.kdfId, 2), i2osp(suite.aeadId, 2));
}

/** info = label || 0x00 || hdr */
export function requestInfo(label: string, header: Uint8Array): Uint8Array {
  return concat(utf8(label), Uint8Array.of(0), header);
}

/**
 * The client's request context under `label` (plain or chunked OHTTP): the header it sends, then
 * an HPKE base-mode sender for `config`'s key with info = label || 0x00 || hdr. `config` is checked.
 */
export function setupRequestSender(config: KeyConfig, suite: SymmetricSuite, label: string, ephemeral?: KeyPair): SenderSetup & { header: Uint8Array } {
  const header = requestHeader(config.keyId, suite);
  const hpke = new CipherSuite({ kemId: config.kemId, kdfId: suite.kdfId, aeadId: suite.aeadId });
  return { header, ...hpke.setupSender(config.publicKey, { info: requestInfo(label, header), ephemeral }) };
}

/** The gateway's side of setupRequestSender, for a header already read and checked against `key`. */
export function setupRequestRecipient(key: ServerKey, suite: SymmetricSuite, header: Uint8Array, enc: Uint8Array, label: string): Context {
  const hpke = new CipherSuite({ kemId: KEM_X25519_HKDF_SHA256, kdfId: suite.kdfId, aeadId: suite.aeadId });
  return hpke.setupRecipient(enc, key.privateKey, { info: requestInfo(label, header), recipientPublicKey: key.config.publicKey });
}

export interface ParsedHeader {
  keyId: number;
  suite: SymmetricSuite;
  key: ServerKey;
}

/** Reads and checks the 7-byte header against the gateway's keys. */
export function readRequestHeader(r: Reader, lookupKey: KeyLookup): ParsedHeader {
  const keyId = r.u8();
  const kemId = r.u16();
  const suite = { kdfId: r.u16(), aeadId: r.u16() };
  const key = lookupKey(keyId);
  if (!key || key.config.keyId !== keyId) throw new TransportError('unknown_key', 'unknown key id');
  if (kemId !== key.config.kemId || kemId !== KEM_X25519_HKDF_SHA256) throw new TransportError('unsupported_suite', 'KEM does not match the key');
  if (!isSupportedSuite(suite) || !key.config.suites.some((s) => s.kdfId === suite.kdfId && s.aeadId === suite.aeadId)) {
    throw new TransportError('unsupported_suite', 'suite not offered for this key');
  }
  return { keyId, suite, key };
}

/** Length of the response nonce: max(Nn, Nk). */
export function responseNonceLength(aeadId: number): number {
  const { Nk, Nn } = aeadSizes(aeadId);
  return Math.max(Nn, Nk);
}

/**
 * RFC 9458 section 4.4 key derivation:
 * secret = Export(label, max(Nn,Nk)); salt = enc || response_nonce; prk = Extract(salt, secret);
 * key = Expand(prk, "key", Nk); nonce = Expand(prk, "nonce", Nn).
 */
export function deriveResponseKeys(context: Context, enc: Uint8Array, responseNonce: Uint8Array, label: string): { key: Uint8Array; nonce: Uint8Array } {
  const { Nk, Nn } = aeadSizes(context.aeadId);
  const len = Math.max(Nn, Nk);
  if (responseNonce.length !== len) throw new TransportError('invalid_argument', 'response nonce length');
  const secret = context.export(utf8(label), len);
  const prk = extract(concat(enc, responseNonce), secret);
  const key = expand(prk, utf8('key'), Nk);
  const nonce = expand(prk, utf8('nonce'), Nn);
  secret.fill(0);
  prk.fill(0);
  return { key, nonce };
}

// ---------------------------------------------------------------- server side

export interface DecapsulatedRequest {
  keyId: number;
  suite: SymmetricSuite;
  enc: Uint8Array;
  /** The decrypted payload (a Binary HTTP request in this project). */
  request: Uint8Array;
  /** The recipient HPKE context, for exports beyond the response key. */
  context: Context;
  /** Encapsulated Response for `response`, with a fresh random response nonce. */
  sealResponse(response: Uint8Array): Uint8Array;
}

/** The framing of an Encapsulated Request, checked against the gateway's keys; no cryptography yet. */
export interface ParsedEncapsulatedRequest extends ParsedHeader {
  header: Uint8Array;
  enc: Uint8Array;
  ct: Uint8Array;
}

export function parseEncapsulatedRequest(lookupKey: KeyLookup, bytes: Uint8Array, limits?: Partial<TransportLimits>): ParsedEncapsulatedRequest {
  const lim = resolveLimits(limits);
  if (bytes.length > lim.maxRequestSize) throw new TransportError('too_large', 'encapsulated request exceeds limit');
  const r = new Reader(bytes);
  const parsed = readRequestHeader(r, lookupKey);
  const header = bytes.slice(0, HEADER_LENGTH);
  const enc = r.bytes(N_ENC_X25519).slice();
  const ct = r.rest();
  if (ct.length < aeadSizes(parsed.suite.aeadId).Nt) throw new TransportError('truncated', 'ciphertext shorter than the tag');
  return { ...parsed, header, enc, ct };
}

export function decapsulateRequest(lookupKey: KeyLookup, bytes: Uint8Array, limits?: Partial<TransportLimits>): DecapsulatedRequest {
  const { keyId, suite, key, header, enc, ct } = parseEncapsulatedRequest(lookupKey, bytes, limits);
  const context = setupRequestRecipient(key, suite, header, enc, LABEL_REQUEST);
  const request = context.open(new Uint8Array(0), ct);
  return {
    keyId, suite, enc, request, context,
    sealResponse: (response) => encapsulateResponse(context, enc, response, randomBytes(responseNonceLength(suite.aeadId))),
  };
}

/**
 * Encapsulated Response = response_nonce || Seal(key, nonce, "", response). `responseNonce` must be
 * fresh random bytes (decapsulateRequest's sealResponse does that); a fixed one is only for vectors.
 */
export function encapsulateResponse(context: Context, enc: Uint8Array, response: Uint8Array, responseNonce: Uint8Array): Uint8Array {
  const { key, nonce } = deriveResponseKeys(context, enc, responseNonce, LABEL_RESPONSE);
  const ct = aeadSeal(context.aeadId, key, nonce, new Uint8Array(0), response);
  key.fill(0);
  return concat(responseNonce, ct);
}

// ---------------------------------------------------------------- client side

export interface EncapsulateOptions {
  /** Fixed ephemeral key pair: only for reproducing published vectors. */
  ephemeral?: KeyPair;
  limits?: Partial<TransportLimits>;
}

export interface EncapsulatedRequest {
  /** The Encapsulated Request to POST as message/ohttp-req. */
  bytes: Uint8Array;
  enc: Uint8Array;
  suite: SymmetricSuite;
  /** Opens the matching Encapsulated Response; 'decrypt_failed' on any tampering. */
  openResponse(bytes: Uint8Array): Uint8Array;
}

export function encapsulateRequest(config: KeyConfig, request: Uint8Array, suite?: SymmetricSuite, options: EncapsulateOptions = {}): EncapsulatedRequest {
  checkConfig(config);
  const lim = resolveLimits(options.limits);
  const s = selectSuite(config, suite);
  const { header, enc, context } = setupRequestSender(config, s, LABEL_REQUEST, options.ephemeral);
  const bytes = concat(header, enc, context.seal(new Uint8Array(0), request));
  if (bytes.length > lim.maxRequestSize) throw new TransportError('too_large', 'encapsulated request exceeds limit');
  return {
    bytes, enc, suite: s,
    openResponse(res: Uint8Array): Uint8Array {
      if (res.length > lim.maxResponseSize) throw new TransportError('too_large', 'encapsulated response exceeds limit');
      const nlen = responseNonceLength(s.aeadId);
      const r = new Reader(res);
      const responseNonce = r.bytes(nlen);
      const { key, nonce } = deriveResponseKeys(context, enc, responseNonce, LABEL_RESPONSE);
      try {
        return aeadOpen(s.aeadId, key, nonce, new Uint8Array(0), r.rest());
      } finally {
        key.fill(0);
      }
    },
  };
}

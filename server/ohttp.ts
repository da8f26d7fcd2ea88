// The server's view of transport/: key generation, the plain and chunked decapsulation the
// gateway needs, and a header peek for cheap refusals before any public-key work.
import { decapsulateChunkedRequest } from '../transport/chunked-ohttp.js';
import { decapsulateRequest, generateKeyConfig, type KeyConfig, type KeyLookup } from '../transport/ohttp.js';
import type { GeneratedKey } from './sessions.js';

export type OhttpKeyConfig = KeyConfig;

/** key_id(1) kem_id(2) kdf_id(2) aead_id(2), then enc (32 bytes for X25519). */
const HEADER_LENGTH = 7;
const ENC_LENGTH = 32;

export const ohttp = {
  generateKey(keyId: number): GeneratedKey<KeyConfig> {
    return generateKeyConfig(keyId);
  },

  /** Key id and enc of an encapsulated request, or null when it is too short to have them. */
  peekHeader(bytes: Uint8Array): { keyId: number; enc: Uint8Array } | null {
    if (bytes.length < HEADER_LENGTH + ENC_LENGTH) return null;
    return { keyId: bytes[0]!, enc: bytes.subarray(HEADER_LENGTH, HEADER_LENGTH + ENC_LENGTH) };
  },

  async decapsulate(lookup: KeyLookup, bytes: Uint8Array, maxRequestSize: number) {
    return decapsulateRequest(lookup, bytes, { maxRequestSize });
  },

  /** Resolves once header and enc are read; the plaintext then streams as chunks authenticate. */
  decapsulateChunked(lookup: KeyLookup, body: ReadableStream<Uint8Array>, maxRequestSize: number) {
    return decapsulateChunkedRequest(lookup, body, { maxRequestSize });
  },
};

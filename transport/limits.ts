/**
 * Size limits every transport parser enforces before it allocates or decrypts. One object is threaded
 * through OHTTP, chunked OHTTP and Binary HTTP so the server configures them in one place.
 */
import { TransportError } from './errors.js';

export interface TransportLimits {
  /** Largest encapsulated request / Binary HTTP request accepted, in bytes (chunked: the running total). */
  maxRequestSize: number;
  /** Largest encapsulated response / Binary HTTP response a client accepts, in bytes (chunked: the running total). */
  maxResponseSize: number;
  /** Largest single chunk (chunked OHTTP ciphertext chunk, or one plaintext chunk to seal). */
  maxChunkSize: number;
  /** Most fields in one Binary HTTP message, all sections together (headers, trailers, interim headers). */
  maxFieldCount: number;
  /** Longest field name or field value, and longest request control-data item, in bytes. */
  maxFieldLength: number;
}

export const DEFAULT_LIMITS: Readonly<TransportLimits> = Object.freeze({
  maxRequestSize: 1 << 20,
  maxResponseSize: 16 << 20,
  maxChunkSize: 64 << 10,
  maxFieldCount: 256,
  maxFieldLength: 16 << 10,
});

/** Defaults overlaid with the caller's values; each must be a positive safe integer. */
export function resolveLimits(partial?: Partial<TransportLimits>): TransportLimits {
  const out = { ...DEFAULT_LIMITS, ...(partial ?? {}) };
  for (const [k, v] of Object.entries(out)) {
    if (!Number.isSafeInteger(v) || v <= 0) throw new TransportError('invalid_argument', `limit ${k} must be a positive integer`);
  }
  return out;
}

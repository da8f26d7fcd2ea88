/**
 * The one error type of transport/. Every failure of a parser, a decryption or a limit check is a
 * TransportError with a stable `code`; messages describe the failure class only and never carry key
 * material, plaintext or any byte of the input.
 */
export type TransportErrorCode =
  /** Input ended before a field, section or message was complete. */
  | 'truncated'
  /** Bytes do not follow the format (bad framing indicator, non-zero padding, bad varint use, ...). */
  | 'malformed'
  /** A configured limit (message size, chunk size, field count, field length) was exceeded. */
  | 'too_large'
  /** No key configuration with this key id. */
  | 'unknown_key'
  /** KEM, KDF or AEAD identifier not supported, or not offered by the key configuration. */
  | 'unsupported_suite'
  /** AEAD authentication failed: the ciphertext, tag, AAD, key or nonce is wrong. */
  | 'decrypt_failed'
  /** A public key or Diffie-Hellman result is invalid (wrong length, low-order point). */
  | 'invalid_key'
  /** A caller passed an argument outside what the API accepts (wrong length, bad mode inputs). */
  | 'invalid_argument'
  /** The HPKE sequence number would wrap; the context must not be used further. */
  | 'sequence_overflow'
  /** An API was used out of order (e.g. a chunk after the final chunk). */
  | 'state';

/** Every code a TransportError can carry. */
export const TRANSPORT_ERROR_CODES: readonly TransportErrorCode[] = Object.freeze([
  'truncated', 'malformed', 'too_large', 'unknown_key', 'unsupported_suite', 'decrypt_failed', 'invalid_key',
  'invalid_argument', 'sequence_overflow', 'state',
]);

export class TransportError extends Error {
  readonly code: TransportErrorCode;
  constructor(code: TransportErrorCode, message: string) {
    super(message);
    this.name = 'TransportError';
    this.code = code;
  }
}

export function isTransportError(e: unknown): e is TransportError {
  return e instanceof TransportError;
}

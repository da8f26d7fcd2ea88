// Small, strict text <-> bytes helpers shared by attestation modules. Browser-safe (no Buffer).
// The codec-free helpers (hex out, concatenation, constant-time equality) are transport's, under
// the names attestation code uses; the parsers here throw AttestationError with the caller's code.
import { AttestationError } from './errors.js';

export { bytesToHex as toHex, concat as concatBytes, equalBytes as bytesEqual } from '../transport/bytes.js';

/** Strict hex: even length, [0-9a-fA-F] only, optional exact length in bytes. */
export function fromHex(s: unknown, code: string, bytes?: number): Uint8Array {
  if (typeof s !== 'string' || s.length % 2 !== 0 || !/^[0-9a-fA-F]*$/.test(s)) {
    throw new AttestationError(code, 'expected a hex string');
  }
  if (bytes !== undefined && s.length !== bytes * 2) throw new AttestationError(code, `expected ${bytes} bytes of hex`);
  const out = new Uint8Array(s.length / 2);
  for (let i = 0; i < out.length; i++) out[i] = parseInt(s.substr(i * 2, 2), 16);
  return out;
}

const B64 = 'ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/';
const B64URL = 'ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789-_';

function encode64(b: Uint8Array, alphabet: string, pad: boolean): string {
  let s = '';
  let i = 0;
  for (; i + 2 < b.length; i += 3) {
    const n = (b[i] << 16) | (b[i + 1] << 8) | b[i + 2];
    s += alphabet[n >> 18] + alphabet[(n >> 12) & 63] + alphabet[(n >> 6) & 63] + alphabet[n & 63];
  }
  const rest = b.length - i;
  if (rest === 1) {
    const n = b[i] << 16;
    s += alphabet[n >> 18] + alphabet[(n >> 12) & 63] + (pad ? '==' : '');
  } else if (rest === 2) {
    const n = (b[i] << 16) | (b[i + 1] << 8);
    s += alphabet[n >> 18] + alphabet[(n >> 12) & 63] + alphabet[(n >> 6) & 63] + (pad ? '=' : '');
  }
  return s;
}

function decode64(s: unknown, alphabet: string, padded: boolean, code: string): Uint8Array {
  if (typeof s !== 'string') throw new AttestationError(code, 'expected a base64 string');
  let body = s;
  if (padded) {
    if (s.length % 4 !== 0) throw new AttestationError(code, 'bad base64 length');
    const m = /=*$/.exec(s)![0].length;
    if (m > 2) throw new AttestationError(code, 'bad base64 padding');
    body = s.slice(0, s.length - m);
    if (m > 0 && body.length % 4 === 0) throw new AttestationError(code, 'bad base64 padding');
  }
  if (body.length % 4 === 1) throw new AttestationError(code, 'bad base64 length');
  const out = new Uint8Array(Math.floor((body.length * 3) / 4));
  let acc = 0;
  let bits = 0;
  let o = 0;
  for (let i = 0; i < body.length; i++) {
    const v = alphabet.indexOf(body[i]);
    if (v < 0) throw new AttestationError(code, 'bad base64 character');
    acc = (acc << 6) | v;
    bits += 6;
    if (bits >= 8) {
      bits -= 8;
      out[o++] = (acc >> bits) & 0xff;
    }
  }
  // Canonical form only: the unused low bits of the last character must be zero.
  if ((acc & ((1 << bits) - 1)) !== 0) throw new AttestationError(code, 'non-canonical base64');
  return out;
}

export const toBase64 = (b: Uint8Array): string => encode64(b, B64, true);
export const fromBase64 = (s: unknown, code: string): Uint8Array => decode64(s, B64, true, code);
export const toBase64Url = (b: Uint8Array): string => encode64(b, B64URL, false);
export const fromBase64Url = (s: unknown, code: string): Uint8Array => decode64(s, B64URL, false, code);

/** PEM blocks of one label, in order, as DER. */
export function pemBlocks(text: string, label: string, code: string): Uint8Array[] {
  const re = new RegExp(`-----BEGIN ${label}-----([\\s\\S]*?)-----END ${label}-----`, 'g');
  const out: Uint8Array[] = [];
  for (const m of text.matchAll(re)) out.push(fromBase64(m[1].replace(/\s+/g, ''), code));
  return out;
}

export function toPem(der: Uint8Array, label = 'CERTIFICATE'): string {
  const b = toBase64(der);
  const lines: string[] = [];
  for (let i = 0; i < b.length; i += 64) lines.push(b.slice(i, i + 64));
  return `-----BEGIN ${label}-----\n${lines.join('\n')}\n-----END ${label}-----\n`;
}

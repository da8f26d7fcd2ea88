/**
 * Byte helpers shared by every transport format: hex, concatenation, QUIC variable-length integers
 * (RFC 9000 section 16) and a bounds-checked Reader. Every overrun is a TransportError('truncated'),
 * so parsers built on Reader cannot read past their input.
 */
import { TransportError } from './errors.js';

export const EMPTY = new Uint8Array(0);

const textEncoder = new TextEncoder();
const textDecoderStrict = new TextDecoder('utf-8', { fatal: true });

export function utf8(s: string): Uint8Array {
  return textEncoder.encode(s);
}

/** Strict UTF-8 decode: invalid sequences are a 'malformed' error rather than U+FFFD. */
export function fromUtf8(b: Uint8Array): string {
  try {
    return textDecoderStrict.decode(b);
  } catch {
    throw new TransportError('malformed', 'invalid UTF-8');
  }
}

export function concat(...parts: Uint8Array[]): Uint8Array {
  return concatAll(parts);
}

/** concat over an array: for chunk lists of any length (spreading a long list would overflow the call stack). */
export function concatAll(parts: readonly Uint8Array[]): Uint8Array {
  let n = 0;
  for (const p of parts) n += p.length;
  const out = new Uint8Array(n);
  let o = 0;
  for (const p of parts) {
    out.set(p, o);
    o += p.length;
  }
  return out;
}

const HEX = '0123456789abcdef';

export function bytesToHex(b: Uint8Array): string {
  let s = '';
  for (let i = 0; i < b.length; i++) s += HEX[b[i] >> 4] + HEX[b[i] & 15];
  return s;
}

function hexNibble(c: number): number {
  if (c >= 48 && c <= 57) return c - 48;
  if (c >= 97 && c <= 102) return c - 87;
  if (c >= 65 && c <= 70) return c - 55;
  return -1;
}

export function hexToBytes(hex: string): Uint8Array {
  if (typeof hex !== 'string' || hex.length % 2 !== 0) throw new TransportError('malformed', 'hex string has odd length');
  const out = new Uint8Array(hex.length / 2);
  for (let i = 0; i < out.length; i++) {
    const hi = hexNibble(hex.charCodeAt(2 * i));
    const lo = hexNibble(hex.charCodeAt(2 * i + 1));
    if (hi < 0 || lo < 0) throw new TransportError('malformed', 'invalid hex digit');
    out[i] = (hi << 4) | lo;
  }
  return out;
}

/** Big-endian unsigned integer of `len` bytes (I2OSP). `n` must fit; callers pass small protocol ids. */
export function i2osp(n: number, len: number): Uint8Array {
  if (!Number.isSafeInteger(n) || n < 0) throw new TransportError('invalid_argument', 'i2osp: not a non-negative integer');
  const out = new Uint8Array(len);
  let v = n;
  for (let i = len - 1; i >= 0; i--) {
    out[i] = v % 256;
    v = Math.floor(v / 256);
  }
  if (v !== 0) throw new TransportError('invalid_argument', 'i2osp: integer too large');
  return out;
}

/** Constant-time equality for secrets and tags (length is not secret). */
export function equalBytes(a: Uint8Array, b: Uint8Array): boolean {
  if (a.length !== b.length) return false;
  let d = 0;
  for (let i = 0; i < a.length; i++) d |= a[i] ^ b[i];
  return d === 0;
}

/** The largest value a QUIC varint can carry: 2^62 - 1. We cap at 2^53 - 1 (safe integers). */
export const MAX_VARINT = Number.MAX_SAFE_INTEGER;

export function varintLength(n: number): number {
  if (n < 0x40) return 1;
  if (n < 0x4000) return 2;
  if (n < 0x40000000) return 4;
  return 8;
}

/** QUIC variable-length integer, shortest encoding (RFC 9000 section 16). */
export function encodeVarint(n: number): Uint8Array {
  if (!Number.isSafeInteger(n) || n < 0) throw new TransportError('invalid_argument', 'varint: not a non-negative safe integer');
  if (n < 0x40) return Uint8Array.of(n);
  if (n < 0x4000) return Uint8Array.of(0x40 | (n >> 8), n & 0xff);
  if (n < 0x40000000) return Uint8Array.of(0x80 | (n >>> 24), (n >>> 16) & 0xff, (n >>> 8) & 0xff, n & 0xff);
  const hi = Math.floor(n / 0x100000000);
  const lo = n >>> 0;
  return Uint8Array.of(0xc0 | (hi >>> 24), (hi >>> 16) & 0xff, (hi >>> 8) & 0xff, hi & 0xff,
    lo >>> 24, (lo >>> 16) & 0xff, (lo >>> 8) & 0xff, lo & 0xff);
}

/**
 * Try to decode a varint at `buf[off]`. Returns undefined when more bytes are needed (streaming
 * callers wait for them); throws 'malformed' when the value exceeds 2^53 - 1, which no length in
 * this project can legitimately reach.
 */
export function peekVarint(buf: Uint8Array, off: number, end = buf.length): { value: number; length: number } | undefined {
  if (off >= end) return undefined;
  const first = buf[off];
  const length = 1 << (first >> 6);
  if (off + length > end) return undefined;
  if (length === 1) return { value: first & 0x3f, length };
  if (length === 2) return { value: ((first & 0x3f) << 8) | buf[off + 1], length };
  if (length === 4) {
    return { value: ((first & 0x3f) * 0x1000000) + ((buf[off + 1] << 16) | (buf[off + 2] << 8) | buf[off + 3]), length };
  }
  const hi = (((first & 0x3f) << 24) | (buf[off + 1] << 16) | (buf[off + 2] << 8) | buf[off + 3]) >>> 0;
  const lo = ((buf[off + 4] << 24) | (buf[off + 5] << 16) | (buf[off + 6] << 8) | buf[off + 7]) >>> 0;
  if (hi >= 0x200000) throw new TransportError('malformed', 'varint exceeds 2^53-1');
  return { value: hi * 0x100000000 + lo, length };
}

/**
 * A bounds-checked cursor over a byte array. Reads never go past the end: they throw
 * TransportError('truncated'). Returned slices are views (subarray) into the input; callers that
 * keep them beyond the input's lifetime copy them.
 */
export class Reader {
  private readonly buf: Uint8Array;
  private pos: number;
  private readonly end: number;

  constructor(buf: Uint8Array, start = 0, end = buf.length) {
    if (start < 0 || end > buf.length || start > end) throw new TransportError('invalid_argument', 'reader bounds');
    this.buf = buf;
    this.pos = start;
    this.end = end;
  }

  get offset(): number {
    return this.pos;
  }

  get remaining(): number {
    return this.end - this.pos;
  }

  get done(): boolean {
    return this.pos >= this.end;
  }

  u8(): number {
    if (this.pos + 1 > this.end) throw new TransportError('truncated', 'input ended early');
    return this.buf[this.pos++];
  }

  u16(): number {
    if (this.pos + 2 > this.end) throw new TransportError('truncated', 'input ended early');
    const v = (this.buf[this.pos] << 8) | this.buf[this.pos + 1];
    this.pos += 2;
    return v;
  }

  bytes(n: number): Uint8Array {
    if (!Number.isSafeInteger(n) || n < 0) throw new TransportError('malformed', 'negative length');
    if (n > this.end - this.pos) throw new TransportError('truncated', 'input ended early');
    const out = this.buf.subarray(this.pos, this.pos + n);
    this.pos += n;
    return out;
  }

  /** Everything left, consuming it. */
  rest(): Uint8Array {
    return this.bytes(this.end - this.pos);
  }

  varint(): number {
    const v = peekVarint(this.buf, this.pos, this.end);
    if (!v) throw new TransportError('truncated', 'input ended inside a varint');
    this.pos += v.length;
    return v.value;
  }

  /** A varint length followed by that many bytes; the length is checked against `max` before anything is sliced. */
  lengthPrefixed(max: number): Uint8Array {
    const n = this.varint();
    if (n > max) throw new TransportError('too_large', 'field exceeds limit');
    return this.bytes(n);
  }

  /** A Reader over the next `n` bytes; this reader skips past them. */
  sub(n: number): Reader {
    if (!Number.isSafeInteger(n) || n < 0) throw new TransportError('malformed', 'negative length');
    if (n > this.end - this.pos) throw new TransportError('truncated', 'input ended early');
    const r = new Reader(this.buf, this.pos, this.pos + n);
    this.pos += n;
    return r;
  }
}

/** Cryptographically secure random bytes from WebCrypto (present in Node 20 and every browser). */
export function randomBytes(n: number): Uint8Array {
  const out = new Uint8Array(n);
  // getRandomValues caps at 65536 bytes per call.
  for (let o = 0; o < n; o += 65536) globalThis.crypto.getRandomValues(out.subarray(o, Math.min(n, o + 65536)));
  return out;
}

/**
 * A FIFO of byte chunks for incremental parsers. Bytes are copied once on the way in and joined only
 * when a caller takes a span it knows is complete, so a message trickled in one byte at a time costs
 * linear, not quadratic, work.
 */
export class ByteQueue {
  #parts: Uint8Array[] = [];
  #first = 0; // index of the first live part (shift() would make draining many parts quadratic)
  #head = 0; // offset into #parts[#first]
  #length = 0;

  get length(): number {
    return this.#length;
  }

  push(bytes: Uint8Array): void {
    if (bytes.length === 0) return;
    this.#parts.push(bytes.slice());
    this.#length += bytes.length;
  }

  /** A copy of the first min(n, length) bytes, leaving them queued. */
  peek(n: number): Uint8Array {
    const len = Math.min(n, this.#length);
    const out = new Uint8Array(len);
    let o = 0;
    for (let i = this.#first; o < len; i++) {
      const p = i === this.#first ? this.#parts[i].subarray(this.#head) : this.#parts[i];
      const k = Math.min(p.length, len - o);
      out.set(k === p.length ? p : p.subarray(0, k), o);
      o += k;
    }
    return out;
  }

  /** Removes and returns exactly n bytes; 'truncated' if fewer are queued. */
  take(n: number): Uint8Array {
    if (n > this.#length) throw new TransportError('truncated', 'input ended early');
    const out = this.peek(n);
    this.skip(n);
    return out;
  }

  skip(n: number): void {
    let left = Math.min(n, this.#length);
    this.#length -= left;
    while (left > 0) {
      const avail = this.#parts[this.#first].length - this.#head;
      if (left < avail) {
        this.#head += left;
        break;
      }
      left -= avail;
      this.#first++;
      this.#head = 0;
    }
    if (this.#first > 64 && this.#first * 2 > this.#parts.length) {
      this.#parts = this.#parts.slice(this.#first);
      this.#first = 0;
    }
  }

  /** Removes and returns everything queued. */
  takeAll(): Uint8Array {
    return this.take(this.#length);
  }

  /** The varint at the front, if all its bytes are queued. */
  peekVarint(): { value: number; length: number } | undefined {
    return peekVarint(this.peek(8), 0);
  }

  /** Drops everything, zeroing the queued bytes. */
  clear(): void {
    for (const p of this.#parts) p.fill(0);
    this.#parts = [];
    this.#first = 0;
    this.#head = 0;
    this.#length = 0;
  }
}

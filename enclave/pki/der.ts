// Strict DER reader. Only what X.509/CRL parsing needs, and only the distinguished encoding:
// definite lengths, minimal length octets, low-tag-number form. Anything else is rejected rather
// than "repaired", because a lenient parser is how two verifiers end up disagreeing about the same
// bytes. Every failure is an AttestationError with code `der_malformed` (or a more specific code).
import { AttestationError } from '../errors.js';

export const TAG = {
  BOOLEAN: 0x01,
  INTEGER: 0x02,
  BIT_STRING: 0x03,
  OCTET_STRING: 0x04,
  NULL: 0x05,
  OID: 0x06,
  ENUMERATED: 0x0a,
  UTF8_STRING: 0x0c,
  PRINTABLE_STRING: 0x13,
  T61_STRING: 0x14,
  IA5_STRING: 0x16,
  UTC_TIME: 0x17,
  GENERALIZED_TIME: 0x18,
  BMP_STRING: 0x1e,
  SEQUENCE: 0x30,
  SET: 0x31,
} as const;

/** Context-specific tag byte: [n] constructed (EXPLICIT / constructed IMPLICIT) or primitive. */
export function contextTag(n: number, constructed = true): number {
  if (n < 0 || n > 30) throw new AttestationError('der_malformed', 'context tag out of range');
  return 0x80 | (constructed ? 0x20 : 0) | n;
}

export interface DerNode {
  /** The identifier octet (low-tag-number form only). */
  readonly tag: number;
  /** The whole TLV, a view into the input. */
  readonly raw: Uint8Array;
  /** The contents octets, a view into the input. */
  readonly value: Uint8Array;
}

function fail(message: string): never {
  throw new AttestationError('der_malformed', message);
}

/** Reads one TLV at `offset` of `buf`; returns it and the offset after it. */
export function readTlv(buf: Uint8Array, offset: number): { node: DerNode; next: number } {
  if (offset >= buf.length) fail('unexpected end of data');
  const tag = buf[offset];
  if ((tag & 0x1f) === 0x1f) fail('high tag number form is not supported');
  let p = offset + 1;
  if (p >= buf.length) fail('missing length');
  const first = buf[p++];
  let length: number;
  if (first < 0x80) {
    length = first;
  } else if (first === 0x80) {
    fail('indefinite length is not DER');
  } else {
    const n = first & 0x7f;
    if (n > 4) fail('length too large');
    if (p + n > buf.length) fail('truncated length');
    if (buf[p] === 0) fail('non-minimal length');
    length = 0;
    for (let i = 0; i < n; i++) length = length * 256 + buf[p++];
    if (length < 0x80) fail('non-minimal length');
  }
  const end = p + length;
  if (end > buf.length) fail('value runs past the end of data');
  return { node: { tag, raw: buf.subarray(offset, end), value: buf.subarray(p, end) }, next: end };
}

/** Parses `buf` as exactly one TLV (no trailing bytes). */
export function parseDer(buf: Uint8Array): DerNode {
  const { node, next } = readTlv(buf, 0);
  if (next !== buf.length) fail('trailing data after DER value');
  return node;
}

/** Sequential reader over the contents of a constructed node. */
export class DerReader {
  private pos = 0;
  constructor(private readonly buf: Uint8Array) {}

  static of(node: DerNode, tag: number): DerReader {
    expectTag(node, tag);
    return new DerReader(node.value);
  }

  done(): boolean {
    return this.pos >= this.buf.length;
  }

  peekTag(): number | undefined {
    return this.pos < this.buf.length ? this.buf[this.pos] : undefined;
  }

  /** Next TLV; if `tag` is given it must match. */
  next(tag?: number): DerNode {
    const { node, next } = readTlv(this.buf, this.pos);
    if (tag !== undefined) expectTag(node, tag);
    this.pos = next;
    return node;
  }

  /** Next TLV only if its tag is `tag`. */
  optional(tag: number): DerNode | undefined {
    return this.peekTag() === tag ? this.next(tag) : undefined;
  }

  /** Asserts all contents were consumed. */
  end(): void {
    if (!this.done()) fail('unexpected extra element');
  }
}

export function expectTag(node: DerNode, tag: number): void {
  if (node.tag !== tag) fail(`expected tag 0x${tag.toString(16)}, got 0x${node.tag.toString(16)}`);
}

/** All children of a constructed node (SEQUENCE/SET/context). */
export function children(node: DerNode): DerNode[] {
  if ((node.tag & 0x20) === 0) fail('expected a constructed value');
  const r = new DerReader(node.value);
  const out: DerNode[] = [];
  while (!r.done()) out.push(r.next());
  return out;
}

// ---- primitive decoders ----

/** INTEGER contents (two's complement, minimal). Returns the raw content bytes. */
export function readIntegerBytes(node: DerNode): Uint8Array {
  expectTag(node, TAG.INTEGER);
  const v = node.value;
  if (v.length === 0) fail('empty INTEGER');
  if (v.length > 1 && ((v[0] === 0x00 && (v[1] & 0x80) === 0) || (v[0] === 0xff && (v[1] & 0x80) !== 0))) {
    fail('non-minimal INTEGER');
  }
  return v;
}

/** Non-negative INTEGER as unsigned magnitude bytes (leading sign zero dropped). */
export function readUnsignedInteger(node: DerNode): Uint8Array {
  const v = readIntegerBytes(node);
  if (v[0] & 0x80) fail('negative INTEGER where unsigned expected');
  return v[0] === 0 && v.length > 1 ? v.subarray(1) : v;
}

/** Small non-negative INTEGER as a JS number (up to 2^48). */
export function readSmallInteger(node: DerNode): number {
  const v = readUnsignedInteger(node);
  if (v.length > 6) fail('INTEGER too large');
  let n = 0;
  for (const b of v) n = n * 256 + b;
  return n;
}

export function readBoolean(node: DerNode): boolean {
  expectTag(node, TAG.BOOLEAN);
  if (node.value.length !== 1) fail('bad BOOLEAN length');
  if (node.value[0] === 0xff) return true;
  if (node.value[0] === 0x00) return false;
  return fail('non-DER BOOLEAN');
}

export function readNull(node: DerNode): void {
  expectTag(node, TAG.NULL);
  if (node.value.length !== 0) fail('bad NULL');
}

/** OBJECT IDENTIFIER as dotted decimal; minimal base-128 arcs. */
export function readOid(node: DerNode): string {
  expectTag(node, TAG.OID);
  const v = node.value;
  if (v.length === 0) fail('empty OID');
  if (v[v.length - 1] & 0x80) fail('truncated OID arc');
  const arcs: number[] = [];
  let acc = 0;
  let start = true;
  for (const b of v) {
    if (start && b === 0x80) fail('non-minimal OID arc');
    start = false;
    if (acc > 0x1fffffffffff) fail('OID arc too large');
    acc = acc * 128 + (b & 0x7f);
    if ((b & 0x80) === 0) {
      arcs.push(acc);
      acc = 0;
      start = true;
    }
  }
  const first = arcs[0];
  const head = first < 40 ? [0, first] : first < 80 ? [1, first - 40] : [2, first - 80];
  return [...head, ...arcs.slice(1)].join('.');
}

/** BIT STRING; `unusedBits` is the count of padding bits in the last octet (DER: they are zero). */
export function readBitString(node: DerNode): { unusedBits: number; bytes: Uint8Array } {
  expectTag(node, TAG.BIT_STRING);
  const v = node.value;
  if (v.length === 0) fail('empty BIT STRING');
  const unusedBits = v[0];
  if (unusedBits > 7) fail('bad BIT STRING padding');
  if (v.length === 1 && unusedBits !== 0) fail('bad BIT STRING padding');
  if (unusedBits && (v[v.length - 1] & ((1 << unusedBits) - 1)) !== 0) fail('non-zero BIT STRING padding');
  return { unusedBits, bytes: v.subarray(1) };
}

/** BIT STRING that must be octet-aligned (keys, signatures). */
export function readOctetAlignedBitString(node: DerNode): Uint8Array {
  const { unusedBits, bytes } = readBitString(node);
  if (unusedBits !== 0) fail('BIT STRING is not octet aligned');
  return bytes;
}

export function readOctetString(node: DerNode): Uint8Array {
  expectTag(node, TAG.OCTET_STRING);
  return node.value;
}

const STRING_TAGS = new Set<number>([
  TAG.UTF8_STRING, TAG.PRINTABLE_STRING, TAG.T61_STRING, TAG.IA5_STRING, TAG.BMP_STRING,
]);

/** A directory string for display only (never compared for trust decisions: raw DER is). */
export function readDisplayString(node: DerNode): string {
  if (!STRING_TAGS.has(node.tag)) fail('not a string type');
  if (node.tag === TAG.BMP_STRING) {
    if (node.value.length % 2) fail('odd BMPString length');
    let s = '';
    for (let i = 0; i < node.value.length; i += 2) s += String.fromCharCode((node.value[i] << 8) | node.value[i + 1]);
    return s;
  }
  try {
    return new TextDecoder('utf-8', { fatal: true }).decode(node.value);
  } catch {
    return fail('invalid string encoding');
  }
}

function digits(v: Uint8Array, from: number, count: number): number {
  let n = 0;
  for (let i = from; i < from + count; i++) {
    const c = v[i] - 0x30;
    if (c < 0 || c > 9) fail('bad time digit');
    n = n * 10 + c;
  }
  return n;
}

/**
 * UTCTime (YYMMDDHHMMSSZ) or GeneralizedTime (YYYYMMDDHHMMSSZ), the only forms RFC 5280 allows:
 * seconds present, Zulu, no fractions.
 */
export function readTime(node: DerNode): Date {
  const v = node.value;
  let year: number;
  let p: number;
  if (node.tag === TAG.UTC_TIME) {
    if (v.length !== 13) fail('bad UTCTime length');
    const yy = digits(v, 0, 2);
    year = yy >= 50 ? 1900 + yy : 2000 + yy;
    p = 2;
  } else if (node.tag === TAG.GENERALIZED_TIME) {
    if (v.length !== 15) fail('bad GeneralizedTime length');
    year = digits(v, 0, 4);
    p = 4;
  } else {
    return fail('expected a time');
  }
  if (v[v.length - 1] !== 0x5a) fail('time must be UTC (Z)');
  const month = digits(v, p, 2);
  const day = digits(v, p + 2, 2);
  const hour = digits(v, p + 4, 2);
  const minute = digits(v, p + 6, 2);
  const second = digits(v, p + 8, 2);
  if (month < 1 || month > 12 || day < 1 || hour > 23 || minute > 59 || second > 59) fail('time field out of range');
  const ms = Date.UTC(year, month - 1, day, hour, minute, second);
  const d = new Date(ms);
  if (d.getUTCDate() !== day || d.getUTCMonth() !== month - 1) fail('day out of range');
  return d;
}

// ---- tiny encoder: only what is needed to re-wrap keys for WebCrypto ----

export function encodeTlv(tag: number, value: Uint8Array): Uint8Array {
  const len = value.length;
  let header: number[];
  if (len < 0x80) header = [tag, len];
  else {
    const bytes: number[] = [];
    for (let n = len; n > 0; n = Math.floor(n / 256)) bytes.unshift(n & 0xff);
    header = [tag, 0x80 | bytes.length, ...bytes];
  }
  const out = new Uint8Array(header.length + len);
  out.set(header, 0);
  out.set(value, header.length);
  return out;
}

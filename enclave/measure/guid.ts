// EFI GUIDs are stored with the first three fields little-endian ("mixed
// endian", Python's uuid.bytes_le); OVMF's footer table and QEMU's kernel
// hashes table both use that form.
import { toHex } from '../encoding.js';
import { MeasureError } from './errors.js';

const GUID_RE = /^([0-9a-f]{8})-([0-9a-f]{4})-([0-9a-f]{4})-([0-9a-f]{4})-([0-9a-f]{12})$/;

export function guidToBytesLE(guid: string): Uint8Array {
  const m = GUID_RE.exec(guid.toLowerCase());
  if (!m) throw new MeasureError('invalid_argument', 'not a GUID string');
  const hex = (s: string) => Uint8Array.from(s.match(/../g)!.map((b) => parseInt(b, 16)));
  const out = new Uint8Array(16);
  out.set(hex(m[1]).reverse(), 0);
  out.set(hex(m[2]).reverse(), 4);
  out.set(hex(m[3]).reverse(), 6);
  out.set(hex(m[4]), 8);
  out.set(hex(m[5]), 10);
  return out;
}

export function guidFromBytesLE(b: Uint8Array): string {
  if (b.length !== 16) throw new MeasureError('invalid_argument', 'a GUID is 16 bytes');
  const rev = (s: number, e: number) => toHex(b.slice(s, e).reverse());
  return `${rev(0, 4)}-${rev(4, 6)}-${rev(6, 8)}-${toHex(b.subarray(8, 10))}-${toHex(b.subarray(10, 16))}`;
}

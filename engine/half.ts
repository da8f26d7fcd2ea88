/**
 * float16 bits to float32 values. A 64K-entry table (256 KiB, built once on
 * first use) makes widening a vocabulary-sized row of logits a plain lookup.
 */
let table: Float32Array | null = null;

function build(): Float32Array {
  const t = new Float32Array(65536);
  for (let h = 0; h < 65536; h++) {
    const sign = h & 0x8000 ? -1 : 1;
    const exp = (h >> 10) & 0x1f;
    const frac = h & 0x3ff;
    if (exp === 0) t[h] = sign * frac * 2 ** -24;
    else if (exp === 31) t[h] = frac === 0 ? sign * Infinity : Number.NaN;
    else t[h] = sign * (1 + frac / 1024) * 2 ** (exp - 15);
  }
  return t;
}

export function halfToFloat(bits: Uint16Array): Float32Array {
  table ??= build();
  const out = new Float32Array(bits.length);
  for (let i = 0; i < bits.length; i++) out[i] = table[bits[i]];
  return out;
}

/**
 * The raw float16 bits of a tensor's data, whichever array type
 * onnxruntime-common chose for it (Uint16Array, or Float16Array where the
 * runtime has one): the cache is copied as bits, never converted.
 */
export function halfBits(data: unknown): Uint16Array {
  if (data instanceof Uint16Array) return data;
  const view = data as ArrayBufferView & { length: number };
  return new Uint16Array(view.buffer, view.byteOffset, view.length);
}

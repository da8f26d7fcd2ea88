/**
 * Token selection over one row of logits: greedy, temperature, top-k, top-p,
 * with a seeded PRNG so that a seeded request is reproducible (per sequence,
 * independent of what else is batched beside it). Pure functions; the PRNG
 * state is the only mutable thing and belongs to one sequence.
 */
import { randomBytes } from 'node:crypto';

export interface SamplingParams {
  /** 0 selects greedy decoding. */
  readonly temperature: number;
  /** 1 keeps the whole distribution. */
  readonly topP: number;
  /** 0 keeps every token. */
  readonly topK: number;
}

/** Index of the largest logit; the lowest index wins a tie (as numpy/torch argmax). */
export function argmax(row: Float32Array): number {
  let best = 0;
  let bestVal = row[0];
  for (let i = 1; i < row.length; i++) {
    const v = row[i];
    if (v > bestVal) {
      bestVal = v;
      best = i;
    }
  }
  return best;
}

/**
 * xoshiro128** (Blackman & Vigna), seeded through splitmix32. Small, fast and
 * well studied; not for secrets (sampling needs reproducibility, not secrecy).
 */
export class Rng {
  private s0: number;
  private s1: number;
  private s2: number;
  private s3: number;

  constructor(seed: number | bigint) {
    // Fold the (up to 64-bit) seed into splitmix32's state.
    const big = BigInt.asUintN(64, BigInt(seed));
    let x = Number(big & 0xffffffffn) ^ Math.imul(Number(big >> 32n), 0x9e3779b9);
    const next = () => {
      x = (x + 0x9e3779b9) | 0;
      let z = x;
      z = Math.imul(z ^ (z >>> 16), 0x85ebca6b);
      z = Math.imul(z ^ (z >>> 13), 0xc2b2ae35);
      return (z ^ (z >>> 16)) >>> 0;
    };
    this.s0 = next();
    this.s1 = next();
    this.s2 = next();
    this.s3 = next();
    if ((this.s0 | this.s1 | this.s2 | this.s3) === 0) this.s0 = 1;
  }

  static random(): Rng {
    return new Rng(randomBytes(8).readBigUInt64LE());
  }

  nextU32(): number {
    const result = Math.imul(rotl(Math.imul(this.s1, 5), 7), 9) >>> 0;
    const t = this.s1 << 9;
    this.s2 ^= this.s0;
    this.s3 ^= this.s1;
    this.s1 ^= this.s2;
    this.s0 ^= this.s3;
    this.s2 ^= t;
    this.s3 = rotl(this.s3, 11);
    return result;
  }

  /** Uniform in [0, 1) with 53 random bits. */
  nextFloat(): number {
    const hi = this.nextU32() >>> 5; // 27 bits
    const lo = this.nextU32() >>> 6; // 26 bits
    return (hi * 67108864 + lo) / 9007199254740992;
  }
}

function rotl(x: number, k: number): number {
  return (x << k) | (x >>> (32 - k));
}

/** Picks the next token from `row` (not modified). */
export function sample(row: Float32Array, params: SamplingParams, rng: Rng): number {
  if (params.temperature <= 0) return argmax(row);
  const n = row.length;
  const topK = params.topK > 0 && params.topK < n ? params.topK : n;

  // Candidates: all tokens, or the topK largest logits.
  let idx: number[];
  if (topK < n) {
    idx = topKIndices(row, topK);
  } else {
    idx = new Array(n);
    for (let i = 0; i < n; i++) idx[i] = i;
  }
  let max = -Infinity;
  for (const i of idx) if (row[i] > max) max = row[i];
  if (max === -Infinity || Number.isNaN(max)) return argmax(row);

  const inv = 1 / params.temperature;
  const probs = new Float64Array(idx.length);
  let total = 0;
  for (let j = 0; j < idx.length; j++) {
    const p = Math.exp((row[idx[j]] - max) * inv);
    probs[j] = p;
    total += p;
  }

  if (params.topP < 1) {
    // Smallest set of most likely tokens whose mass reaches topP.
    const order = idx.map((_, j) => j).sort((a, b) => probs[b] - probs[a] || idx[a] - idx[b]);
    const cut = params.topP * total;
    let cum = 0;
    let keep = 0;
    while (keep < order.length) {
      cum += probs[order[keep]];
      keep++;
      if (cum >= cut) break;
    }
    let u = rng.nextFloat() * cum;
    for (let k = 0; k < keep; k++) {
      u -= probs[order[k]];
      if (u < 0) return idx[order[k]];
    }
    return idx[order[keep - 1]];
  }

  let u = rng.nextFloat() * total;
  for (let j = 0; j < idx.length; j++) {
    u -= probs[j];
    if (u < 0) return idx[j];
  }
  // Rounding left a sliver: take the last token with any mass.
  for (let j = idx.length - 1; j >= 0; j--) if (probs[j] > 0) return idx[j];
  return idx[0];
}

/** Indices of the k largest values (ties: lower index first), in descending order of value. */
export function topKIndices(row: Float32Array, k: number): number[] {
  // A sorted buffer of k entries; vocabularies are large and k is small.
  const vals: number[] = [];
  const ids: number[] = [];
  for (let i = 0; i < row.length; i++) {
    const v = row[i];
    if (Number.isNaN(v)) continue;
    if (vals.length === k && v <= vals[k - 1]) continue;
    let pos = vals.length;
    while (pos > 0 && vals[pos - 1] < v) pos--;
    vals.splice(pos, 0, v);
    ids.splice(pos, 0, i);
    if (vals.length > k) {
      vals.pop();
      ids.pop();
    }
  }
  return ids;
}

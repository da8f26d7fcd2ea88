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

// Scratch space for probabilities: sample() is synchronous, so one buffer
// shared by all calls is safe and saves an allocation per token.
let scratch = new Float64Array(0);
function probsBuffer(n: number): Float64Array {
  if (scratch.length < n) scratch = new Float64Array(n);
  return scratch;
}

/** Picks the next token from `row` (not modified). */
export function sample(row: Float32Array, params: SamplingParams, rng: Rng): number {
  if (params.temperature <= 0) return argmax(row);
  const n = row.length;
  const inv = 1 / params.temperature;

  if (params.topK > 0 && params.topK < n) {
    // Candidates: the topK largest logits, most likely first.
    const idx = topKIndices(row, params.topK);
    if (idx.length === 0 || row[idx[0]] === -Infinity) return argmax(row);
    const max = row[idx[0]];
    const probs = probsBuffer(idx.length);
    let total = 0;
    for (let j = 0; j < idx.length; j++) total += probs[j] = Math.exp((row[idx[j]] - max) * inv);
    const keep = nucleus(probs, idx.length, total, params.topP);
    return idx[draw(probs, keep, rng)];
  }

  let max = -Infinity;
  for (let i = 0; i < n; i++) if (row[i] > max) max = row[i];
  if (max === -Infinity || Number.isNaN(max)) return argmax(row);
  const probs = probsBuffer(n);
  let total = 0;
  for (let i = 0; i < n; i++) total += probs[i] = Math.exp((row[i] - max) * inv);

  if (params.topP < 1) {
    // Nucleus: sort the tokens with any mass by probability (ties: lower id first).
    let m = 0;
    const order = new Int32Array(n);
    for (let i = 0; i < n; i++) if (probs[i] > 0) order[m++] = i;
    const ids = order.subarray(0, m).sort((a, b) => probs[b] - probs[a] || a - b);
    const sorted = new Float64Array(m);
    for (let j = 0; j < m; j++) sorted[j] = probs[ids[j]];
    const keep = nucleus(sorted, m, total, params.topP);
    return ids[draw(sorted, keep, rng)];
  }
  return draw(probs, n, rng);
}

/** How many of the first entries of `probs` (sorted descending) reach mass topP of `total`. */
function nucleus(probs: Float64Array, n: number, total: number, topP: number): number {
  if (topP >= 1) return n;
  const cut = topP * total;
  let cum = 0;
  for (let k = 0; k < n; k++) {
    cum += probs[k];
    if (cum >= cut) return k + 1;
  }
  return n;
}

/** Draws index j < n with probability probs[j] / sum(probs[0..n)). */
function draw(probs: Float64Array, n: number, rng: Rng): number {
  let total = 0;
  for (let j = 0; j < n; j++) total += probs[j];
  let u = rng.nextFloat() * total;
  for (let j = 0; j < n; j++) {
    u -= probs[j];
    if (u < 0) return j;
  }
  // Rounding left a sliver: take the last entry with any mass.
  for (let j = n - 1; j >= 0; j--) if (probs[j] > 0) return j;
  return 0;
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

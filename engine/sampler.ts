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

/**
 * Picks the next token from `row` (not modified). Candidates are the topK
 * largest logits (ties: lower id first), then the smallest most-likely set
 * reaching mass topP; the draw walks candidates in id order. Selection uses
 * native numeric sorts of copies, never a comparator sort over the vocabulary.
 */
export function sample(row: Float32Array, params: SamplingParams, rng: Rng): number {
  if (params.temperature <= 0) return argmax(row);
  const n = row.length;
  let max = -Infinity;
  for (let i = 0; i < n; i++) if (row[i] > max) max = row[i];
  if (!(max > -Infinity)) return argmax(row);
  const inv = 1 / params.temperature;

  const ids = params.topK > 0 && params.topK < n ? topIndices(row, params.topK) : null;
  const m = ids ? ids.length : n;
  const probs = probsBuffer(m);
  let total = 0;
  for (let j = 0; j < m; j++) {
    const x = row[ids ? ids[j] : j];
    // NaN logits get no mass.
    const p = x === x ? Math.exp((x - max) * inv) : 0;
    probs[j] = p;
    total += p;
  }
  const keep = params.topP < 1 ? topMass(probs, m, params.topP * total) : null;

  let mass = 0;
  if (keep) for (let k = 0; k < keep.length; k++) mass += probs[keep[k]];
  else mass = total;
  let u = rng.nextFloat() * mass;
  const count = keep ? keep.length : m;
  let last = -1;
  for (let k = 0; k < count; k++) {
    const j = keep ? keep[k] : k;
    const p = probs[j];
    if (p > 0) last = j;
    u -= p;
    if (u < 0) return ids ? ids[j] : j;
  }
  // Rounding left a sliver: the last candidate with any mass.
  const j = last >= 0 ? last : 0;
  return ids ? ids[j] : j;
}

/** Ids of the k largest values, in ascending id order (ties at the cut: lower ids first; NaN counts as -Infinity). */
export function topIndices(values: Float32Array, k: number): Int32Array {
  const n = values.length;
  if (k >= n) return Int32Array.from({ length: n }, (_, i) => i);
  const copy = new Float64Array(n);
  for (let i = 0; i < n; i++) {
    const v = values[i];
    copy[i] = v === v ? v : -Infinity;
  }
  // The k-th largest value, in linear expected time.
  const cut = select(copy, n - k);
  let above = 0;
  for (let i = 0; i < n; i++) if (values[i] > cut) above++;
  let ties = k - above;
  const out = new Int32Array(k);
  let j = 0;
  for (let i = 0; i < n && j < k; i++) {
    const v = values[i] === values[i] ? values[i] : -Infinity;
    if (v > cut) out[j++] = i;
    else if (v === cut && ties > 0) {
      out[j++] = i;
      ties--;
    }
  }
  return out;
}

/** The value that would be at index `nth` if `a` were sorted ascending (Hoare quickselect; reorders `a`). */
function select(a: Float64Array, nth: number): number {
  let lo = 0;
  let hi = a.length - 1;
  while (lo < hi) {
    // Median of three keeps sorted and reversed inputs linear.
    const mid = (lo + hi) >>> 1;
    const x = a[lo], y = a[mid], z = a[hi];
    const pivot = x < y ? (y < z ? y : x < z ? z : x) : x < z ? x : y < z ? z : y;
    let i = lo;
    let j = hi;
    while (i <= j) {
      while (a[i] < pivot) i++;
      while (a[j] > pivot) j--;
      if (i <= j) {
        const t = a[i];
        a[i] = a[j];
        a[j] = t;
        i++;
        j--;
      }
    }
    if (nth <= j) hi = j;
    else if (nth >= i) lo = i;
    else return a[nth];
  }
  return a[nth];
}

/**
 * Positions (ascending) of the smallest set of the largest probs[0..m) whose
 * sum reaches `cut` (ties at the boundary: lower positions first).
 */
function topMass(probs: Float64Array, m: number, cut: number): Int32Array {
  // Tokens below (mass outside the nucleus) / m can never be needed: all of
  // them together hold less than that mass, and every other token is larger.
  let total = 0;
  for (let i = 0; i < m; i++) total += probs[i];
  const floor = Math.max(0, total - cut) / m;
  let n = 0;
  const cand = new Float64Array(m);
  for (let i = 0; i < m; i++) if (probs[i] > floor) cand[n++] = probs[i];
  const sorted = cand.subarray(0, n).sort();
  let cum = 0;
  let j = n - 1;
  for (; j > 0; j--) {
    cum += sorted[j];
    if (cum >= cut) break;
  }
  const c = n > 0 ? sorted[Math.max(j, 0)] : 0;
  let mass = 0;
  let count = 0;
  for (let i = 0; i < m; i++) {
    if (probs[i] > c) {
      mass += probs[i];
      count++;
    }
  }
  const keep = new Int32Array(m);
  let k = 0;
  for (let i = 0; i < m; i++) {
    const p = probs[i];
    if (p > c) keep[k++] = i;
    else if (p === c && (mass < cut || count === 0)) {
      keep[k++] = i;
      mass += p;
      count++;
    }
  }
  return keep.subarray(0, k);
}

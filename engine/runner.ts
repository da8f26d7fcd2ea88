/**
 * The runner: how one forward pass runs. It knows tensors, not requests.
 *
 * - `prefill(seq, ids)` runs a new sequence's prompt alone (batch 1, in
 *   chunks so that a long prompt never materialises [n, vocab] logits at
 *   once) and keeps its KV cache standalone.
 * - `step(seqs, tokens)` runs ONE decode step for all given sequences as one
 *   batched ONNX run. Rows of different lengths are padded; each row has its
 *   own attention mask (0 over its padding) and position ids, so a row
 *   computes what it would alone (the golden tests check its tokens; the
 *   slot tests its logits, to the last bits a batch's kernels change).
 *
 * Speed: the batch's KV cache is kept batch-shaped between steps. Two layouts:
 *
 * - slot mode (when the loader exposed the per-step key/value tensors, see
 *   graph-outputs.ts): the cache is a [batch, heads, capacity, headDim]
 *   buffer per layer that the runner owns and feeds as `past_*` in place;
 *   each row's tokens fill columns 0..len-1 (right padding, masked), and a
 *   step fetches only the logits and the one new column per layer, which is
 *   written into column len. No full cache crosses from ONNX Runtime to JS
 *   per step. A row keeps its slot while its sequence runs; a newcomer takes
 *   the row of one that left; when the longest row reaches the capacity the
 *   rows widen inside the buffers' spare room. Only when none of that
 *   fits (more sequences than rows, a quarter of the rows idle, no room
 *   left) are the rows re-packed into new buffers.
 * - plain mode (any other graph): the `present.*` outputs of one step are
 *   fed back as the next step's `past_*` inputs, re-packed when the batch's
 *   membership changes; rows are padded on the side the graph's attention
 *   needs (model.padding: left for Concat caches, right for
 *   GroupQueryAttention, which writes each row's new column at that row's
 *   length).
 *
 * - unbatched mode (model.rowsCoupled: activations quantized per tensor,
 *   so a batch's rows would change each other's numbers): each sequence
 *   keeps its standalone cache and a decode step runs it alone, one ONNX
 *   run per sequence. Slower, but a sequence's output stays independent of
 *   what it is scheduled with.
 *
 * Cache tensors are float32 or float16 as the graph declares them (float16
 * is carried as its raw bits in a Uint16Array: the runner only copies it);
 * float16 logits are widened to float32 for sampling.
 */
import { ort } from './ort.js';
import { EngineError } from './errors.js';
import type { FloatType, LoadedModel } from './model-dir.js';
import { halfBits, halfToFloat } from './half.js';

/** One layer's keys or values: float32 values, or float16 bits. */
export type KvArray = Float32Array | Uint16Array;

/** The runner's handle on one sequence's KV cache. */
export class SequenceCache {
  /** Tokens held in the cache (= position id of the next token). */
  length = 0;
  /** Standalone cache after prefill: per layer [1, H, length, D]; null once packed into the batch. */
  keys: KvArray[] | null = null;
  values: KvArray[] | null = null;
  /** Row in the current batch, or -1. */
  row = -1;
  released = false;
}

interface Batch {
  seqs: SequenceCache[];
  /** Padded length of every row's past. */
  width: number;
  keys: ort.Tensor[];
  values: ort.Tensor[];
}

/** Slot mode: buffers the runner owns and updates in place. */
interface SlotBatch {
  seqs: SequenceCache[];
  /** Columns per row: the layout is [rows, heads, cap, headDim] from the start of each buffer. */
  cap: number;
  /** Columns per row the buffers have room for: the layout grows in place up to this. */
  room: number;
  /** Per layer, [rows, heads, room, headDim] elements, of which the first [rows, heads, cap, headDim] are in use. */
  keys: KvArray[];
  values: KvArray[];
  feeds: Record<string, ort.Tensor>;
  ids: BigInt64Array;
  positions: BigInt64Array;
  /** [rows, cap + 1] in use (of room for [rows, room + 1]): 1 over each row's filled columns and over the new token's column (cap). */
  mask: BigInt64Array;
}

/**
 * Columns allocated beyond the longest row. Every spare column costs a
 * little in each step (ONNX Runtime's Concat copies and attention reads
 * the whole capacity) and running out costs one re-pack (a copy of the
 * cache): over L steps, slack s costs about L/2 x s column-steps of waste
 * and L/s re-packs of ~L columns, least at s = sqrt(2 x L). So the slack
 * follows the longest row's length instead of being one fixed number (32
 * was right for ~500-token rows and twice too wide for ~100-token ones:
 * 2-3% of a batch-32 step here).
 */
function slotSlack(longest: number): number {
  return Math.max(8, Math.round(Math.sqrt(2 * longest)));
}

/**
 * Columns the buffers get room for when they are allocated: two more growths' worth beyond the
 * capacity, so the next re-layouts happen in place. A re-pack into fresh buffers cost ~0.4 ms at
 * batch 16 here, mostly allocating and zeroing ~3 MB (and collecting the old ones later); the
 * same re-layout in place is a memmove of the rows, ~0.1 ms.
 */
function slotRoom(longest: number, cap: number, context: number): number {
  return Math.min(context, cap + 2 * slotSlack(longest));
}

export interface RunnerStats {
  /** Sequences whose KV cache the runner holds. */
  cachedSequences: number;
  /** Rows in the batch-shaped cache. */
  batchRows: number;
  steps: number;
  repacks: number;
  /** Sequences seated in a free row of the slot batch instead of a re-pack. */
  seats: number;
  /** Times the slot batch's rows were widened in place instead of re-packed. */
  grows: number;
  /** Prefill runs (one per prompt piece, or one for a group of fresh prompts). */
  prefills: number;
}

export class Runner {
  private readonly layers: number;
  private readonly heads: number;
  private readonly headDim: number;
  private readonly vocab: number;
  private batch: Batch | null = null;
  private slots: SlotBatch | null = null;
  private readonly slotMode: boolean;
  private readonly unbatched: boolean;
  private readonly stepFetches: string[];
  private readonly prefillFetches: string[];
  private readonly prefillFromNew: boolean;
  private live = new Set<SequenceCache>();
  private steps = 0;
  private repacks = 0;
  private seats = 0;
  private grows = 0;
  /** seating()'s scratch: which rows of the slot batch this step's sequences hold. */
  private rowHeld = new Uint8Array(0);
  private prefills = 0;
  private readonly emptyPast: ort.Tensor;
  private readonly kvType: FloatType;
  private readonly rightPadded: boolean;

  constructor(private readonly model: LoadedModel, private readonly prefillChunk = 256, forcePlain = false) {
    if (!Number.isInteger(prefillChunk) || prefillChunk < 1) {
      throw new EngineError('invalid_request', 'prefillChunk must be a positive integer');
    }
    this.layers = model.config.numLayers;
    this.heads = model.config.numKvHeads;
    this.headDim = model.config.headDim;
    this.vocab = model.config.vocabSize;
    const { io, stepOutputs } = model;
    this.kvType = io.kvType;
    this.rightPadded = model.padding === 'right';
    this.emptyPast = new ort.Tensor(this.kvType, this.newKv(0), [1, this.heads, 0, this.headDim]);
    this.unbatched = model.rowsCoupled;
    this.slotMode = stepOutputs !== null && !forcePlain && !this.unbatched;
    if (!model.presentOutputs && !this.slotMode) throw new EngineError('internal', 'the slot graph runs only in slot mode');
    // On the slot graph the full caches are not outputs: a prefill fetches its new columns and
    // appends them to what the sequence held (its whole cache, for a prompt's first piece).
    this.prefillFromNew = !model.presentOutputs;
    this.prefillFetches = this.prefillFromNew
      ? [io.logits, ...stepOutputs!.newKeys, ...stepOutputs!.newValues]
      : [io.logits, ...io.presentKeys, ...io.presentValues];
    this.stepFetches = this.slotMode
      ? [io.logits, ...stepOutputs!.newKeys, ...stepOutputs!.newValues]
      : this.prefillFetches;
  }

  /** Which cache layout decode steps use. */
  get mode(): 'slot' | 'plain' | 'unbatched' {
    return this.unbatched ? 'unbatched' : this.slotMode ? 'slot' : 'plain';
  }

  get vocabSize(): number {
    return this.vocab;
  }

  stats(): RunnerStats {
    return {
      cachedSequences: this.live.size,
      batchRows: this.batch ? this.batch.seqs.length : this.slots ? this.slots.seqs.length : 0,
      steps: this.steps,
      repacks: this.repacks,
      seats: this.seats,
      grows: this.grows,
      prefills: this.prefills,
    };
  }

  newSequence(): SequenceCache {
    const seq = new SequenceCache();
    this.live.add(seq);
    return seq;
  }

  /** Drops a sequence's cache now. Its batch row (if any) is dropped at the next repack; the batch is freed when empty. */
  release(seq: SequenceCache): void {
    if (seq.released) return;
    seq.released = true;
    seq.keys = null;
    seq.values = null;
    this.live.delete(seq);
    if (this.batch && this.batch.seqs.every((s) => s.released)) this.batch = null;
    if (this.slots && this.slots.seqs.every((s) => s.released)) this.slots = null;
  }

  /**
   * Runs `ids` after what `seq` already holds (normally nothing) and returns
   * the logits of the last position. The sequence must not be in a batch.
   */
  async prefill(seq: SequenceCache, ids: readonly number[]): Promise<Float32Array> {
    if (seq.released) throw new EngineError('internal', 'prefill on a released sequence');
    if (seq.row >= 0) throw new EngineError('internal', 'prefill on a batched sequence');
    if (ids.length === 0) throw new EngineError('internal', 'prefill of zero tokens');
    const { io } = this.model;
    let logits: Float32Array | null = null;
    for (let start = 0; start < ids.length; start += this.prefillChunk) {
      const chunk = ids.slice(start, start + this.prefillChunk);
      const n = chunk.length;
      const past = seq.length;
      const feeds: Record<string, ort.Tensor> = {
        [io.inputIds]: new ort.Tensor('int64', BigInt64Array.from(chunk, BigInt), [1, n]),
        [io.attentionMask]: new ort.Tensor('int64', new BigInt64Array(past + n).fill(1n), [1, past + n]),
      };
      if (io.positionIds) {
        const pos = new BigInt64Array(n);
        for (let i = 0; i < n; i++) pos[i] = BigInt(past + i);
        feeds[io.positionIds] = new ort.Tensor('int64', pos, [1, n]);
      }
      for (let l = 0; l < this.layers; l++) {
        feeds[io.pastKeys[l]] = seq.keys ? this.kvTensor(seq.keys[l], 1, past) : this.emptyPast;
        feeds[io.pastValues[l]] = seq.values ? this.kvTensor(seq.values[l], 1, past) : this.emptyPast;
      }
      const out = await this.model.session.run(feeds, this.prefillFetches);
      this.prefills++;
      if (seq.released) throw new EngineError('cancelled', 'sequence released during prefill');
      if (this.prefillFromNew) {
        const { newKeys, newValues } = this.model.stepOutputs!;
        const before = { keys: seq.keys, values: seq.values };
        seq.keys = newKeys.map((name, l) => this.appendColumns(before.keys?.[l] ?? null, past, this.present(out, name, 1, n), n));
        seq.values = newValues.map((name, l) => this.appendColumns(before.values?.[l] ?? null, past, this.present(out, name, 1, n), n));
      } else {
        seq.keys = io.presentKeys.map((name) => this.present(out, name, 1, past + n));
        seq.values = io.presentValues.map((name) => this.present(out, name, 1, past + n));
      }
      seq.length = past + n;
      // Only the last position: a copy, so the [n, vocab] block can be collected.
      logits = this.logitsOf(out, 1, n, n - 1).slice();
    }
    return logits!;
  }

  /** The longest prompt piece one prefill run takes (longer prompts are prefilled in pieces). */
  get prefillPiece(): number {
    return this.prefillChunk;
  }

  /** Whether prefillMany() may run several fresh sequences' prompts in one run (slot mode only). */
  get batchedPrefill(): boolean {
    return this.slotMode;
  }

  /**
   * Prefills fresh sequences (nothing cached yet) together: one run over their prompts, right
   * padded to the longest, each row's real positions attending only to themselves (the causal
   * mask keeps the pad after them out of reach). Returns each row's logits at its last prompt
   * token. Slot mode only: its graphs honour the attention mask over right padding, which the
   * load-time check proved. One run instead of one per prompt: when a crowd arrives at once,
   * the decoding batch waits for one prefill, not for sixteen.
   */
  async prefillMany(seqs: readonly SequenceCache[], prompts: readonly (readonly number[])[]): Promise<Float32Array[]> {
    const k = seqs.length;
    if (!this.slotMode || k === 0 || prompts.length !== k) throw new EngineError('internal', 'prefillMany needs slot mode and one prompt per sequence');
    let width = 0;
    for (let r = 0; r < k; r++) {
      const s = seqs[r];
      const n = prompts[r].length;
      if (s.released || s.row >= 0 || s.length !== 0 || n === 0 || n > this.prefillChunk) {
        throw new EngineError('internal', 'prefillMany takes fresh sequences with one-piece prompts');
      }
      width = Math.max(width, n);
    }
    const { io } = this.model;
    const ids = new BigInt64Array(k * width);
    const mask = new BigInt64Array(k * width);
    const positions = new BigInt64Array(k * width);
    for (let r = 0; r < k; r++) {
      const p = prompts[r];
      for (let i = 0; i < width; i++) {
        positions[r * width + i] = BigInt(i);
        if (i < p.length) {
          ids[r * width + i] = BigInt(p[i]);
          mask[r * width + i] = 1n;
        }
      }
    }
    const feeds: Record<string, ort.Tensor> = {
      [io.inputIds]: new ort.Tensor('int64', ids, [k, width]),
      [io.attentionMask]: new ort.Tensor('int64', mask, [k, width]),
    };
    if (io.positionIds) feeds[io.positionIds] = new ort.Tensor('int64', positions, [k, width]);
    const emptyPast = new ort.Tensor(this.kvType, this.newKv(0), [k, this.heads, 0, this.headDim]);
    for (let l = 0; l < this.layers; l++) {
      feeds[io.pastKeys[l]] = emptyPast;
      feeds[io.pastValues[l]] = emptyPast;
    }
    const out = await this.model.session.run(feeds, this.prefillFetches);
    this.prefills++;
    const keyNames = this.prefillFromNew ? this.model.stepOutputs!.newKeys : io.presentKeys;
    const valueNames = this.prefillFromNew ? this.model.stepOutputs!.newValues : io.presentValues;
    const keys = keyNames.map((name) => this.present(out, name, k, width));
    const values = valueNames.map((name) => this.present(out, name, k, width));
    const logits = this.logitsOf(out, k, width);
    const { heads, headDim } = this;
    const result: Float32Array[] = [];
    for (let r = 0; r < k; r++) {
      const s = seqs[r];
      const n = prompts[r].length;
      // Each row's own columns, as a standalone [1, H, n, D] cache (what its own prefill makes).
      const rowOf = (all: KvArray): KvArray => {
        const one = this.newKv(heads * n * headDim);
        for (let h = 0; h < heads; h++) {
          const src = ((r * heads + h) * width) * headDim;
          one.set(all.subarray(src, src + n * headDim), h * n * headDim);
        }
        return one;
      };
      result.push(logits.slice((r * width + n - 1) * this.vocab, (r * width + n) * this.vocab));
      if (s.released) continue; // cancelled while the run was in flight: nothing is kept for it
      s.keys = keys.map(rowOf);
      s.values = values.map(rowOf);
      s.length = n;
    }
    return result;
  }

  /**
   * One batched decode step: feeds `tokens[i]` to `seqs[i]` and returns the
   * logits as one [seqs.length * vocab] array (row i at i * vocab).
   */
  async step(seqs: readonly SequenceCache[], tokens: readonly number[]): Promise<Float32Array> {
    const b = seqs.length;
    if (b === 0 || tokens.length !== b) throw new EngineError('internal', 'step needs one token per sequence');
    for (const s of seqs) {
      if (s.released || s.length === 0) throw new EngineError('internal', 'step on a released or empty sequence');
    }
    if (this.unbatched) return this.stepUnbatched(seqs, tokens);
    if (this.slotMode) return this.stepSlots(seqs, tokens);
    const batch = this.ensureBatch(seqs);
    const { io } = this.model;
    const width = batch.width;

    const inputIds = new BigInt64Array(b);
    const positions = new BigInt64Array(b);
    const mask = new BigInt64Array(b * (width + 1));
    for (let r = 0; r < b; r++) {
      const s = seqs[r];
      inputIds[r] = BigInt(tokens[r]);
      positions[r] = BigInt(s.length);
      if (this.rightPadded) mask.fill(1n, r * (width + 1), r * (width + 1) + s.length + 1);
      else mask.fill(1n, r * (width + 1) + (width - s.length), (r + 1) * (width + 1));
    }
    const feeds: Record<string, ort.Tensor> = {
      [io.inputIds]: new ort.Tensor('int64', inputIds, [b, 1]),
      [io.attentionMask]: new ort.Tensor('int64', mask, [b, width + 1]),
    };
    if (io.positionIds) feeds[io.positionIds] = new ort.Tensor('int64', positions, [b, 1]);
    for (let l = 0; l < this.layers; l++) {
      feeds[io.pastKeys[l]] = batch.keys[l];
      feeds[io.pastValues[l]] = batch.values[l];
    }
    const out = await this.model.session.run(feeds, this.stepFetches);
    this.steps++;
    batch.width = width + 1;
    batch.keys = io.presentKeys.map((name) => this.checkedTensor(out, name, b, width + 1));
    batch.values = io.presentValues.map((name) => this.checkedTensor(out, name, b, width + 1));
    for (const s of seqs) if (!s.released) s.length++;
    if (batch.seqs.every((s) => s.released)) this.batch = null;
    return this.logitsOf(out, b, 1);
  }

  /** Each sequence alone, from its standalone cache: the rows of the result are independent runs. */
  private async stepUnbatched(seqs: readonly SequenceCache[], tokens: readonly number[]): Promise<Float32Array> {
    const out = new Float32Array(seqs.length * this.vocab);
    for (let r = 0; r < seqs.length; r++) {
      if (seqs[r].released) continue;
      try {
        out.set(await this.prefill(seqs[r], [tokens[r]]), r * this.vocab);
      } catch (e) {
        // A row cancelled while the others ran: its logits are not read.
        if (seqs[r].released) continue;
        throw e;
      }
    }
    this.steps++;
    return out;
  }

  /** Returns the batch for exactly `seqs` in this order, re-packing rows when membership changed. */
  private ensureBatch(seqs: readonly SequenceCache[]): Batch {
    const cur = this.batch;
    if (cur && cur.seqs.length === seqs.length && cur.seqs.every((s, i) => s === seqs[i])) return cur;
    this.repacks++;
    const b = seqs.length;
    let width = 0;
    for (const s of seqs) width = Math.max(width, s.length);
    const { heads, headDim } = this;
    const rowStride = heads * width * headDim;
    const keys: KvArray[] = [];
    const values: KvArray[] = [];
    for (let l = 0; l < this.layers; l++) {
      keys.push(this.newKv(b * rowStride));
      values.push(this.newKv(b * rowStride));
    }
    for (let r = 0; r < b; r++) {
      const s = seqs[r];
      const len = s.length;
      let srcK: (l: number) => KvArray;
      let srcV: (l: number) => KvArray;
      let srcRow: number;
      let srcWidth: number;
      if (cur && s.row >= 0 && s.row < cur.seqs.length && cur.seqs[s.row] === s) {
        srcK = (l) => this.kvData(cur.keys[l]);
        srcV = (l) => this.kvData(cur.values[l]);
        srcRow = s.row;
        srcWidth = cur.width;
      } else if (s.keys && s.values) {
        const k = s.keys;
        const v = s.values;
        srcK = (l) => k[l];
        srcV = (l) => v[l];
        srcRow = 0;
        srcWidth = len;
      } else {
        throw new EngineError('internal', 'sequence has no cache to pack');
      }
      for (let l = 0; l < this.layers; l++) {
        copyRow(srcK(l), srcRow, srcWidth, keys[l], r, width, len, heads, headDim, this.rightPadded);
        copyRow(srcV(l), srcRow, srcWidth, values[l], r, width, len, heads, headDim, this.rightPadded);
      }
    }
    // Only now detach: every source was read above.
    if (cur) for (const s of cur.seqs) s.row = -1;
    seqs.forEach((s, r) => {
      s.row = r;
      s.keys = null;
      s.values = null;
    });
    const dims = [b, heads, width, headDim];
    const batch: Batch = {
      seqs: [...seqs],
      width,
      keys: keys.map((d) => new ort.Tensor(this.kvType, d, dims)),
      values: values.map((d) => new ort.Tensor(this.kvType, d, dims)),
    };
    this.batch = batch;
    return batch;
  }

  private async stepSlots(seqs: readonly SequenceCache[], tokens: readonly number[]): Promise<Float32Array> {
    const b = seqs.length;
    const sb = this.ensureSlots(seqs);
    const rows = sb.seqs.length;
    const { heads, headDim } = this;
    const cap = sb.cap;
    // A free row (its sequence left) runs on with its last id and position: its outputs are not read.
    for (let i = 0; i < b; i++) {
      const r = seqs[i].row;
      sb.ids[r] = BigInt(tokens[i]);
      sb.positions[r] = BigInt(seqs[i].length);
    }
    const out = await this.model.session.run(sb.feeds, this.stepFetches);
    this.steps++;
    const { newKeys, newValues } = this.model.stepOutputs!;
    const rowStride = heads * cap * headDim;
    for (let l = 0; l < this.layers; l++) {
      const nk = this.kvData(this.checkedTensor(out, newKeys[l], rows, 1));
      const nv = this.kvData(this.checkedTensor(out, newValues[l], rows, 1));
      const dk = sb.keys[l];
      const dv = sb.values[l];
      for (let i = 0; i < b; i++) {
        const r = seqs[i].row;
        const len = seqs[i].length;
        for (let h = 0; h < heads; h++) {
          // headDim floats: a plain loop beats subarray()+set() (no allocation).
          const src = (r * heads + h) * headDim;
          const dst = r * rowStride + (h * cap + len) * headDim;
          for (let d = 0; d < headDim; d++) {
            dk[dst + d] = nk[src + d];
            dv[dst + d] = nv[src + d];
          }
        }
      }
    }
    let inOrder = b === rows;
    for (let i = 0; i < b; i++) {
      const s = seqs[i];
      if (s.row !== i) inOrder = false;
      // The new column is now part of the row's past.
      sb.mask[s.row * (cap + 1) + s.length] = 1n;
      if (!s.released) s.length++;
    }
    const logits = this.logitsOf(out, rows, 1);
    if (sb.seqs.every((s) => s.released)) this.slots = null;
    if (inOrder) return logits;
    // Rows seated out of the caller's order, or free rows: the caller's order, row i at i * vocab.
    const v = this.vocab;
    const ordered = new Float32Array(b * v);
    for (let i = 0; i < b; i++) ordered.set(logits.subarray(seqs[i].row * v, (seqs[i].row + 1) * v), i * v);
    return ordered;
  }

  /**
   * Whether `seqs` can be seated in the current slot batch, its rows `cap` columns wide, without a
   * re-pack: each one already in its row keeps it, and each newcomer (a standalone cache from its
   * prefill) takes a row whose sequence left, so a request finishing and the next one starting
   * copy one row, not the whole batch. Returns how many newcomers there are, with `rowHeld`
   * marking the rows kept; -1 (a re-pack is due instead) when there are more sequences than rows,
   * a newcomer as long as the capacity, a sequence listed twice, or more than a quarter of the
   * rows left idle (each free row costs a share of every step until it is compacted away). Runs
   * every step, so it allocates nothing.
   */
  private seating(cur: SlotBatch, seqs: readonly SequenceCache[], cap: number): number {
    const rows = cur.seqs.length;
    const b = seqs.length;
    if (b > rows || (rows - b) * 4 > rows) return -1;
    if (this.rowHeld.length < rows) this.rowHeld = new Uint8Array(rows);
    else this.rowHeld.fill(0, 0, rows);
    let newcomers = 0;
    for (let i = 0; i < b; i++) {
      const s = seqs[i];
      if (s.row >= 0 && s.row < rows && cur.seqs[s.row] === s) {
        if (this.rowHeld[s.row]) return -1;
        this.rowHeld[s.row] = 1;
      } else if (s.keys && s.values && s.row < 0 && s.length < cap && seqs.indexOf(s) === i) {
        newcomers++;
      } else {
        return -1;
      }
    }
    return newcomers;
  }

  /** Copies each newcomer's standalone cache into a row seating() left free. */
  private seat(cur: SlotBatch, seqs: readonly SequenceCache[]): void {
    const { heads, headDim } = this;
    const cap = cur.cap;
    let r = 0;
    for (const s of seqs) {
      if (s.row >= 0) continue;
      while (this.rowHeld[r]) r++;
      const len = s.length;
      for (let l = 0; l < this.layers; l++) {
        for (let h = 0; h < heads; h++) {
          const d = ((r * heads + h) * cap) * headDim;
          cur.keys[l].set(s.keys![l].subarray(h * len * headDim, (h + 1) * len * headDim), d);
          cur.values[l].set(s.values![l].subarray(h * len * headDim, (h + 1) * len * headDim), d);
        }
      }
      // Columns past `len` hold what the row's last sequence left there: finite, and masked out.
      cur.mask.fill(1n, r * (cap + 1), r * (cap + 1) + len);
      cur.mask.fill(0n, r * (cap + 1) + len, r * (cap + 1) + cap);
      cur.seqs[r].row = -1;
      cur.seqs[r] = s;
      s.row = r;
      s.keys = null;
      s.values = null;
      this.rowHeld[r] = 1;
      this.seats++;
    }
  }

  /**
   * Widens every row of the slot batch to `cap` columns inside its own buffers: each row's filled
   * columns move to their new place, last block first (a block only moves later in the buffer,
   * so nothing not yet moved is overwritten), and the mask is laid out again. Rows seating() marked
   * held keep their columns; any other row is free and keeps none.
   */
  private growInPlace(sb: SlotBatch, cap: number): void {
    const { heads, headDim } = this;
    const old = sb.cap;
    const rows = sb.seqs.length;
    const lens = sb.seqs.map((s, r) => (this.rowHeld[r] ? s.length : 0));
    for (let l = 0; l < this.layers; l++) {
      for (const buf of [sb.keys[l], sb.values[l]]) {
        for (let blk = rows * heads - 1; blk >= 0; blk--) {
          const n = lens[Math.floor(blk / heads)]! * headDim;
          if (n > 0) buf.copyWithin(blk * cap * headDim, blk * old * headDim, blk * old * headDim + n);
        }
      }
    }
    sb.mask.fill(0n, 0, rows * (cap + 1));
    for (let r = 0; r < rows; r++) {
      sb.mask.fill(1n, r * (cap + 1), r * (cap + 1) + lens[r]!);
      sb.mask[r * (cap + 1) + cap] = 1n;
    }
    sb.cap = cap;
    this.slotFeeds(sb);
    this.grows++;
  }

  /** The batch's feeds: the id and position tensors, and views of the buffers at the current capacity. */
  private slotFeeds(sb: SlotBatch): void {
    const { io } = this.model;
    const { heads, headDim } = this;
    const b = sb.seqs.length;
    const cap = sb.cap;
    const used = b * heads * cap * headDim;
    const dims = [b, heads, cap, headDim];
    const feeds: Record<string, ort.Tensor> = {
      [io.inputIds]: new ort.Tensor('int64', sb.ids, [b, 1]),
      [io.attentionMask]: new ort.Tensor('int64', sb.mask.subarray(0, b * (cap + 1)), [b, cap + 1]),
    };
    if (io.positionIds) feeds[io.positionIds] = new ort.Tensor('int64', sb.positions, [b, 1]);
    for (let l = 0; l < this.layers; l++) {
      feeds[io.pastKeys[l]] = new ort.Tensor(this.kvType, sb.keys[l].subarray(0, used), dims);
      feeds[io.pastValues[l]] = new ort.Tensor(this.kvType, sb.values[l].subarray(0, used), dims);
    }
    sb.feeds = feeds;
  }

  /**
   * The slot batch holding every one of `seqs` with room for one more column in its row: the
   * current one when they can be seated in it, else a re-pack of exactly `seqs`, in this order.
   */
  private ensureSlots(seqs: readonly SequenceCache[]): SlotBatch {
    const cur = this.slots;
    let maxLen = 0;
    for (const s of seqs) maxLen = Math.max(maxLen, s.length);
    const ctx = this.model.config.contextLength;
    const cap = Math.min(ctx, maxLen + slotSlack(maxLen));
    if (cur !== null) {
      // Room in every row: seat newcomers as they are. Out of room: widen in place when the
      // buffers allow it and the sequences could then be seated.
      const width = maxLen < cur.cap ? cur.cap : cap;
      const newcomers = width <= cur.room && maxLen < width ? this.seating(cur, seqs, width) : -1;
      if (newcomers >= 0) {
        if (width !== cur.cap) this.growInPlace(cur, width);
        if (newcomers > 0) this.seat(cur, seqs);
        return cur;
      }
    }
    this.repacks++;
    const b = seqs.length;
    if (maxLen >= cap) throw new EngineError('internal', 'sequence longer than the context');
    const room = slotRoom(maxLen, cap, ctx);
    const { heads, headDim } = this;
    const keys: KvArray[] = [];
    const values: KvArray[] = [];
    for (let l = 0; l < this.layers; l++) {
      keys.push(this.newKv(b * heads * room * headDim));
      values.push(this.newKv(b * heads * room * headDim));
    }
    const mask = new BigInt64Array(b * (room + 1));
    for (let r = 0; r < b; r++) {
      const s = seqs[r];
      const len = s.length;
      const fromSlots = cur !== null && s.row >= 0 && s.row < cur.seqs.length && cur.seqs[s.row] === s;
      if (!fromSlots && !(s.keys && s.values)) throw new EngineError('internal', 'sequence has no cache to pack');
      for (let l = 0; l < this.layers; l++) {
        for (let h = 0; h < heads; h++) {
          const d = ((r * heads + h) * cap) * headDim;
          if (fromSlots) {
            const src = ((s.row * heads + h) * cur.cap) * headDim;
            keys[l].set(cur.keys[l].subarray(src, src + len * headDim), d);
            values[l].set(cur.values[l].subarray(src, src + len * headDim), d);
          } else {
            const src = h * len * headDim;
            keys[l].set(s.keys![l].subarray(src, src + len * headDim), d);
            values[l].set(s.values![l].subarray(src, src + len * headDim), d);
          }
        }
      }
      mask.fill(1n, r * (cap + 1), r * (cap + 1) + len);
      mask[r * (cap + 1) + cap] = 1n;
    }
    if (cur) for (const s of cur.seqs) s.row = -1;
    seqs.forEach((s, r) => {
      s.row = r;
      s.keys = null;
      s.values = null;
    });
    const sb: SlotBatch = { seqs: [...seqs], cap, room, keys, values, feeds: {}, ids: new BigInt64Array(b), positions: new BigInt64Array(b), mask };
    this.slotFeeds(sb);
    this.slots = sb;
    return sb;
  }

  private newKv(n: number): KvArray {
    return this.kvType === 'float16' ? new Uint16Array(n) : new Float32Array(n);
  }

  private kvTensor(data: KvArray, b: number, len: number): ort.Tensor {
    return new ort.Tensor(this.kvType, data, [b, this.heads, len, this.headDim]);
  }

  private checkedTensor(out: ort.InferenceSession.ReturnType, name: string, b: number, len: number): ort.Tensor {
    const t = out[name] as ort.Tensor | undefined;
    const d = t?.dims;
    if (!t || t.type !== this.kvType || !d || d.length !== 4 || d[0] !== b || d[1] !== this.heads || d[2] !== len || d[3] !== this.headDim) {
      throw new EngineError('internal', `output '${name}' has an unexpected shape`);
    }
    return t;
  }

  private present(out: ort.InferenceSession.ReturnType, name: string, b: number, len: number): KvArray {
    return this.kvData(this.checkedTensor(out, name, b, len));
  }

  /** One sequence's [1, H, past, D] cache with [1, H, n, D] new columns after it (what Concat made). */
  private appendColumns(old: KvArray | null, past: number, added: KvArray, n: number): KvArray {
    if (past === 0 || old === null) return added;
    const { heads, headDim } = this;
    const out = this.newKv(heads * (past + n) * headDim);
    for (let h = 0; h < heads; h++) {
      out.set(old.subarray(h * past * headDim, (h + 1) * past * headDim), h * (past + n) * headDim);
      out.set(added.subarray(h * n * headDim, (h + 1) * n * headDim), (h * (past + n) + past) * headDim);
    }
    return out;
  }

  private kvData(t: ort.Tensor): KvArray {
    return this.kvType === 'float16' ? halfBits(t.data) : (t.data as Float32Array);
  }

  /** Logits as float32: all [b, n] rows, or (with `onlyRow`, for b = 1) that position's row. */
  private logitsOf(out: ort.InferenceSession.ReturnType, b: number, n: number, onlyRow?: number): Float32Array {
    const t = out[this.model.io.logits] as ort.Tensor | undefined;
    const d = t?.dims;
    if (!t || t.type !== this.model.io.logitsType || !d || d.length !== 3 || d[0] !== b || d[1] !== n || d[2] !== this.vocab) {
      throw new EngineError('internal', 'logits output has an unexpected shape');
    }
    const data = this.model.io.logitsType === 'float16' ? halfBits(t.data) : (t.data as Float32Array);
    const rows = onlyRow === undefined ? data : data.subarray(onlyRow * this.vocab, (onlyRow + 1) * this.vocab);
    return rows instanceof Uint16Array ? halfToFloat(rows) : rows;
  }
}

/**
 * Copies a row's `len` filled positions from row `srcRow` (width `srcWidth`)
 * into row `dstRow` of a [b, heads, dstWidth, headDim] buffer: the last
 * positions to the right end (left padding), or the first ones to the left
 * end (right padding).
 */
function copyRow(
  src: KvArray, srcRow: number, srcWidth: number,
  dst: KvArray, dstRow: number, dstWidth: number,
  len: number, heads: number, headDim: number, rightPadded: boolean,
): void {
  const n = len * headDim;
  const srcSkip = rightPadded ? 0 : srcWidth - len;
  const dstSkip = rightPadded ? 0 : dstWidth - len;
  for (let h = 0; h < heads; h++) {
    const s = ((srcRow * heads + h) * srcWidth + srcSkip) * headDim;
    const d = ((dstRow * heads + h) * dstWidth + dstSkip) * headDim;
    dst.set(src.subarray(s, s + n), d);
  }
}

/**
 * Load-time check that slot mode computes what plain mode computes on this
 * graph (two sequences of different lengths, a few batched steps). Slot
 * mode relies on the graph honouring the attention mask over right padding;
 * a graph that does not (or anything else unexpected) falls back to plain.
 */
export async function slotModeAgrees(model: LoadedModel): Promise<boolean> {
  if (!model.stepOutputs) return false;
  const vocab = model.config.vocabSize;
  const rng = (i: number) => (i * 7919 + 13) % vocab;
  const prompts = [Array.from({ length: 7 }, (_, i) => rng(i)), Array.from({ length: 3 }, (_, i) => rng(i + 50))];
  const run = async (plain: boolean): Promise<Float32Array[]> => {
    const r = new Runner(model, 256, plain);
    const seqs = prompts.map(() => r.newSequence());
    const out: Float32Array[] = [];
    try {
      for (let i = 0; i < seqs.length; i++) out.push(await r.prefill(seqs[i], prompts[i]));
      for (let step = 0; step < 3; step++) {
        out.push((await r.step(seqs, [rng(100 + step), rng(200 + step)])).slice());
      }
    } finally {
      for (const s of seqs) r.release(s);
    }
    return out;
  };
  try {
    const a = await run(false);
    const b = await run(true);
    for (let i = 0; i < a.length; i++) {
      if (a[i].length !== b[i].length) return false;
      let scale = 1;
      for (const v of b[i]) scale = Math.max(scale, Math.abs(v));
      for (let j = 0; j < a[i].length; j++) {
        if (!(Math.abs(a[i][j] - b[i][j]) <= 1e-4 * scale)) return false;
      }
    }
    return true;
  } catch {
    return false;
  }
}

/**
 * How a loaded model decodes, decided once for the engine and the bench's ceiling alike: slot
 * mode where the graph exposes the step outputs, its rows are independent and the load-time
 * check agrees, then on the slot graph (no full caches as outputs); plain mode otherwise. Either
 * way the model handed back no longer holds the way to the slot graph (it keeps the graph's bytes).
 */
export async function chooseDecoding(loaded: LoadedModel): Promise<{ model: LoadedModel; slot: boolean }> {
  const slot = loaded.stepOutputs !== null && !loaded.rowsCoupled && (await slotModeAgrees(loaded));
  if (!loaded.toSlotGraph) return { model: loaded, slot };
  if (slot) return { model: await loaded.toSlotGraph(), slot };
  return { model: { ...loaded, toSlotGraph: null }, slot };
}

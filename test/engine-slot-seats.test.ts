// Slot mode seats a newcomer in the row a finished sequence left, and widens its rows inside the
// buffers it has, instead of re-packing the whole batch; every row still computes what it
// computes alone.
import { test, before, after } from 'node:test';
import assert from 'node:assert/strict';
import { loadModelDir, type LoadedModel } from '../engine/model-dir.js';
import { chooseDecoding, Runner, type SequenceCache } from '../engine/runner.js';

let model: LoadedModel;
before(async () => {
  const chosen = await chooseDecoding(await loadModelDir(new URL('../models/stories260K', import.meta.url).pathname, { threads: 1 }));
  assert.equal(chosen.slot, true);
  model = chosen.model;
});
after(async () => {
  await model.session.release();
});

const VOCAB = 512;
/** A fixed, model-independent token stream per sequence (no sampling: logits are compared, not text). */
const prompt = (seed: number, n: number) => Array.from({ length: n }, (_, i) => 1 + ((seed * 131 + i * 37) % (VOCAB - 1)));
const tokenAt = (seed: number, step: number) => 1 + ((seed * 17 + step * 53) % (VOCAB - 1));

/** Logits of `steps` decode steps of one sequence run alone, after its prompt. */
async function alone(seed: number, promptLength: number, steps: number): Promise<Float32Array[]> {
  const r = new Runner(model);
  const s = r.newSequence();
  const out = [await r.prefill(s, prompt(seed, promptLength))];
  for (let k = 0; k < steps; k++) out.push((await r.step([s], [tokenAt(seed, k)])).slice());
  r.release(s);
  return out;
}

/**
 * Batched and alone differ in the last bits (the runtime's kernels block a batch differently), so
 * rows are compared as the load-time slot-mode check compares them, and by their argmax. A row
 * seated wrongly (another row's cache, a stale mask, logits in the wrong order) is off by whole units.
 */
function assertSameRow(actual: Float32Array, expected: Float32Array, what: string): void {
  assert.equal(actual.length, expected.length, what);
  let scale = 1;
  for (const v of expected) scale = Math.max(scale, Math.abs(v));
  let worst = 0;
  let argA = 0;
  let argE = 0;
  for (let j = 0; j < expected.length; j++) {
    worst = Math.max(worst, Math.abs(actual[j]! - expected[j]!));
    if (actual[j]! > actual[argA]!) argA = j;
    if (expected[j]! > expected[argE]!) argE = j;
  }
  assert.ok(worst <= 1e-4 * scale, `${what}: off by ${worst}`);
  assert.equal(argA, argE, `${what}: another next token`);
}

interface Tracked { seed: number; len: number; cache: SequenceCache; logits: Float32Array[] }

/** A runner, and sequences on it whose every logits row is kept: prefilled by track(), stepped together by step(). */
function schedule() {
  const r = new Runner(model);
  const track = async (seed: number, len: number): Promise<Tracked> => {
    const cache = r.newSequence();
    return { seed, len, cache, logits: [await r.prefill(cache, prompt(seed, len))] };
  };
  const step = async (batch: Tracked[]) => {
    const out = await r.step(batch.map((t) => t.cache), batch.map((t) => tokenAt(t.seed, t.logits.length - 1)));
    batch.forEach((t, i) => t.logits.push(out.slice(i * VOCAB, (i + 1) * VOCAB)));
  };
  return { r, track, step };
}

test('a newcomer takes a free row without a re-pack, too many free rows are compacted away, and no row changes what it computes', async () => {
  const { r, track, step } = schedule();
  const [a, b, c, d] = [await track(1, 7), await track(2, 3), await track(3, 12), await track(4, 5)];
  // Packed once, with room for 8 more columns after the longest prompt (12): the phases below
  // stay within it (3 + 2 + 2 steps), so any re-pack they show is a membership change.
  for (let k = 0; k < 3; k++) await step([a, b, c, d]);
  const packed = r.stats().repacks;

  // One of four leaves: its row idles (a quarter of the rows), nothing is re-packed.
  r.release(b.cache);
  for (let k = 0; k < 2; k++) await step([a, c, d]);
  assert.equal(r.stats().repacks, packed);
  assert.equal(r.stats().batchRows, 4);

  // A fresh sequence is seated in that row: one row copied, still no re-pack, and it is listed
  // last while its row is second (the logits come back in the caller's order).
  const e = await track(5, 4);
  for (let k = 0; k < 2; k++) await step([a, c, d, e]);
  assert.equal(r.stats().seats, 1);
  assert.equal(r.stats().repacks, packed);
  assert.deepEqual([a, c, d, e].map((t) => t.cache.row), [0, 2, 3, 1]);

  // Two of four leave: half the rows would idle, so the batch is re-packed to the two left.
  r.release(c.cache);
  r.release(d.cache);
  for (let k = 0; k < 2; k++) await step([a, e]);
  assert.equal(r.stats().repacks, packed + 1);
  assert.equal(r.stats().batchRows, 2);

  // A newcomer longer than the rows' capacity cannot be seated: a re-pack makes room instead.
  r.release(a.cache);
  const f = await track(6, 90);
  for (let k = 0; k < 2; k++) await step([e, f]);
  assert.equal(r.stats().seats, 1);
  assert.equal(r.stats().repacks, packed + 2);

  for (const t of [a, b, c, d, e, f]) {
    const expected = await alone(t.seed, t.len, t.logits.length - 1);
    assert.equal(t.logits.length, expected.length);
    t.logits.forEach((row, k) => assertSameRow(row, expected[k]!, `sequence ${t.seed}, step ${k}`));
  }
  r.release(e.cache);
  r.release(f.cache);
  assert.equal(r.stats().cachedSequences, 0);
  assert.equal(r.stats().batchRows, 0);
});

test('rows widen in place while the buffers have room (a free row and a newcomer included), and are re-packed when they do not', async () => {
  const { r, track, step } = schedule();
  // Longest prompt 9: capacity 9 + 8 = 17 columns, buffers with room for 17 + 2 x 8 = 33.
  const [a, b, c, d] = [await track(11, 5), await track(12, 9), await track(13, 3), await track(14, 7)];
  for (let k = 0; k < 3; k++) await step([a, b, c, d]);
  assert.deepEqual([r.stats().repacks, r.stats().grows], [1, 0]);
  // b at 12 columns. One leaves; a newcomer comes just as b reaches the capacity: the rows widen
  // to 25 in place (the free row carries nothing over) and the newcomer is seated in the free row.
  r.release(c.cache);
  for (let k = 0; k < 5; k++) await step([a, b, d]);
  assert.equal(b.cache.length, 17);
  const e = await track(15, 4);
  await step([a, b, d, e]);
  assert.deepEqual([r.stats().repacks, r.stats().grows, r.stats().seats], [1, 1, 1]);
  assert.equal(e.cache.row, 2);
  // Widened again at 25 (to 33, the room), then the next widening needs new buffers: a re-pack.
  for (let k = 0; k < 8; k++) await step([a, b, d, e]);
  assert.deepEqual([r.stats().repacks, r.stats().grows], [1, 2]);
  for (let k = 0; k < 8; k++) await step([a, b, d, e]);
  assert.deepEqual([r.stats().repacks, r.stats().grows], [2, 2]);
  for (let k = 0; k < 3; k++) await step([a, b, d, e]);

  for (const t of [a, b, c, d, e]) {
    const expected = await alone(t.seed, t.len, t.logits.length - 1);
    assert.equal(t.logits.length, expected.length);
    t.logits.forEach((row, k) => assertSameRow(row, expected[k]!, `sequence ${t.seed}, step ${k}`));
  }
  for (const t of [a, b, d, e]) r.release(t.cache);
  assert.equal(r.stats().batchRows, 0);
});

test('more sequences than the batch has rows: a re-pack, not a seat', async () => {
  const r = new Runner(model);
  const s = r.newSequence();
  await r.prefill(s, prompt(7, 5));
  await r.step([s], [3]);
  const t = r.newSequence();
  await r.prefill(t, prompt(8, 5));
  const before = r.stats();
  await r.step([s, t], [4, 5]);
  assert.equal(r.stats().seats, before.seats);
  assert.equal(r.stats().repacks, before.repacks + 1);
  assert.equal(r.stats().batchRows, 2);
  r.release(s);
  r.release(t);
});

import { test } from 'node:test';
import assert from 'node:assert/strict';
import { argmax, Rng, sample, topIndices } from '../engine/sampler.js';

const greedy = { temperature: 0, topP: 1, topK: 0 };

test('argmax takes the largest logit and the lowest index on a tie', () => {
  assert.equal(argmax(new Float32Array([0.1, 3, -2, 3, 1])), 1);
  assert.equal(argmax(new Float32Array([-5])), 0);
  assert.equal(argmax(new Float32Array([-Infinity, -1e30, -Infinity])), 1);
  assert.equal(sample(new Float32Array([1, 2, 9, 3]), greedy, new Rng(1)), 2);
});

test('the PRNG is reproducible per seed, differs across seeds, and is uniform in [0,1)', () => {
  const a = new Rng(42);
  const b = new Rng(42);
  const c = new Rng(43);
  const xs = Array.from({ length: 1000 }, () => a.nextFloat());
  assert.deepEqual(xs, Array.from({ length: 1000 }, () => b.nextFloat()));
  assert.notDeepEqual(xs.slice(0, 10), Array.from({ length: 10 }, () => c.nextFloat()));
  assert.ok(xs.every((x) => x >= 0 && x < 1));
  const mean = xs.reduce((s, x) => s + x, 0) / xs.length;
  assert.ok(Math.abs(mean - 0.5) < 0.05, `mean ${mean}`);
  // Large and negative seeds are accepted and distinct.
  assert.notEqual(new Rng(-1).nextU32(), new Rng(Number.MAX_SAFE_INTEGER).nextU32());
});

test('xoshiro128** matches the reference output for a known state', () => {
  // Reference: xoshiro128starstar.c with s = {1, 2, 3, 4}: first outputs 11520, 0, 5927040, 70819200.
  const r = new Rng(0) as unknown as { s0: number; s1: number; s2: number; s3: number; nextU32(): number };
  r.s0 = 1; r.s1 = 2; r.s2 = 3; r.s3 = 4;
  assert.deepEqual([r.nextU32(), r.nextU32(), r.nextU32(), r.nextU32()], [11520, 0, 5927040, 70819200]);
});

test('topIndices returns the ids of the k largest, in id order, lower ids first on a tie', () => {
  const row = new Float32Array([0.5, 9, -1, 7, 7, 3]);
  assert.deepEqual([...topIndices(row, 3)], [1, 3, 4]);
  assert.deepEqual([...topIndices(row, 1)], [1]);
  assert.deepEqual([...topIndices(row, 2)], [1, 3]);
  assert.deepEqual([...topIndices(row, 4)], [1, 3, 4, 5]);
  assert.deepEqual([...topIndices(row, 6)], [0, 1, 2, 3, 4, 5]);
  assert.deepEqual([...topIndices(new Float32Array([2, 2, 2, 1]), 2)], [0, 1]);
  // NaN counts as -Infinity: the tie at -Infinity goes to the lower id.
  assert.deepEqual([...topIndices(new Float32Array([Number.NaN, 1, -Infinity]), 2)], [0, 1]);
  // Against a reference: sort by (value desc, id asc), take k, sort ids.
  const rng = new Rng(8);
  for (let t = 0; t < 300; t++) {
    const n = 1 + Math.floor(rng.nextFloat() * 40);
    const v = Float32Array.from({ length: n }, () => Math.floor(rng.nextFloat() * 6));
    const k = 1 + Math.floor(rng.nextFloat() * n);
    const ref = [...v.keys()].sort((a, b) => v[b] - v[a] || a - b).slice(0, k).sort((a, b) => a - b);
    assert.deepEqual([...topIndices(v, k)], ref);
  }
});

function histogram(row: Float32Array, params: { temperature: number; topP: number; topK: number }, n: number, seed = 7) {
  const rng = new Rng(seed);
  const h = new Array(row.length).fill(0);
  for (let i = 0; i < n; i++) h[sample(row, params, rng)]++;
  return h;
}

test('temperature sampling follows softmax(logits / T)', () => {
  const logits = new Float32Array([Math.log(0.5), Math.log(0.3), Math.log(0.2)]);
  const n = 20000;
  const h = histogram(logits, { temperature: 1, topP: 1, topK: 0 }, n);
  [0.5, 0.3, 0.2].forEach((p, i) => assert.ok(Math.abs(h[i] / n - p) < 0.02, `token ${i}: ${h[i] / n} vs ${p}`));
  // T = 0.5 squares the probabilities before normalising: 25:9:4.
  const h2 = histogram(logits, { temperature: 0.5, topP: 1, topK: 0 }, n);
  [25 / 38, 9 / 38, 4 / 38].forEach((p, i) => assert.ok(Math.abs(h2[i] / n - p) < 0.02, `T=0.5 token ${i}`));
});

test('top-k and top-p keep only the allowed tokens', () => {
  const probs = [0.4, 0.25, 0.2, 0.1, 0.05];
  const logits = new Float32Array(probs.map(Math.log));
  const n = 5000;
  const k2 = histogram(logits, { temperature: 1, topP: 1, topK: 2 }, n);
  assert.equal(k2[2] + k2[3] + k2[4], 0);
  assert.ok(Math.abs(k2[0] / n - 0.4 / 0.65) < 0.03);
  // top-p 0.6: {0.4, 0.25} reaches 0.65 >= 0.6; nothing else.
  const p6 = histogram(logits, { temperature: 1, topP: 0.6, topK: 0 }, n);
  assert.equal(p6[2] + p6[3] + p6[4], 0);
  assert.ok(p6[1] > 0);
  // top-p small enough keeps only the most likely token.
  assert.deepEqual(histogram(logits, { temperature: 1, topP: 0.1, topK: 0 }, 200), [200, 0, 0, 0, 0]);
  // top-k 1 is greedy.
  assert.deepEqual(histogram(logits, { temperature: 1.5, topP: 1, topK: 1 }, 200), [200, 0, 0, 0, 0]);
  // -Infinity logits are never drawn.
  const masked = new Float32Array([0, -Infinity, 0]);
  assert.equal(histogram(masked, { temperature: 1, topP: 1, topK: 0 }, 2000)[1], 0);
});

test('sampling never mutates the logits row', () => {
  const row = new Float32Array([1, 2, 3, 4]);
  const copy = row.slice();
  sample(row, { temperature: 0.7, topP: 0.9, topK: 3 }, new Rng(3));
  assert.deepEqual(row, copy);
});

test('degenerate rows (all -Infinity, NaN) fall back to argmax instead of failing', () => {
  const rng = new Rng(1);
  const allMasked = new Float32Array([-Infinity, -Infinity, -Infinity]);
  for (const p of [{ temperature: 1, topP: 1, topK: 0 }, { temperature: 1, topP: 0.5, topK: 0 }, { temperature: 1, topP: 1, topK: 2 }]) {
    assert.equal(sample(allMasked, p, rng), 0);
  }
  const r = sample(new Float32Array([Number.NaN, 1, 2]), { temperature: 1, topP: 1, topK: 2 }, rng);
  assert.ok(r === 1 || r === 2);
});

test('random rows: draws stay inside the reference top-k / top-p set and cover it', () => {
  const rng = new Rng(77);
  for (let t = 0; t < 60; t++) {
    const n = 2 + Math.floor(rng.nextFloat() * 10);
    const row = Float32Array.from({ length: n }, () => Math.round((rng.nextFloat() * 6 - 3) * 2) / 2);
    const temperature = 0.5 + rng.nextFloat();
    const topK = rng.nextFloat() < 0.5 ? 0 : 1 + Math.floor(rng.nextFloat() * n);
    const topP = rng.nextFloat() < 0.3 ? 1 : 0.2 + 0.8 * rng.nextFloat();
    // Reference: order by (logit desc, id asc); cut to topK; softmax; smallest prefix reaching topP.
    let order = [...row.keys()].sort((a, b) => row[b] - row[a] || a - b);
    if (topK > 0) order = order.slice(0, topK);
    const max = row[order[0]];
    const p = order.map((i) => Math.exp((row[i] - max) / temperature));
    const total = p.reduce((a, b) => a + b, 0);
    let cum = 0;
    let keep = order.length;
    if (topP < 1) {
      for (let k = 0; k < order.length; k++) {
        cum += p[k];
        if (cum >= topP * total * (1 - 1e-12)) {
          keep = k + 1;
          break;
        }
      }
    }
    const allowed = new Set(order.slice(0, keep));
    const kept = p.slice(0, keep).reduce((a, b) => a + b, 0);
    const seen = new Set<number>();
    const draw = new Rng(t);
    for (let d = 0; d < 600; d++) {
      const id = sample(row, { temperature, topP, topK }, draw);
      assert.ok(allowed.has(id), `drew ${id} outside ${[...allowed]} (row ${row}, T ${temperature}, k ${topK}, p ${topP})`);
      seen.add(id);
    }
    order.slice(0, keep).forEach((id, k) => {
      if (p[k] / kept > 0.03) assert.ok(seen.has(id), `never drew ${id}`);
    });
  }
});

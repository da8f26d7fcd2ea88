// The slot-mode graph rewrite: only extra outputs are added, they hold the
// new cache column, and anything unrecognised leaves the graph alone (null).
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { readFileSync } from 'node:fs';
import { ort } from '../engine/ort.js';
import { dropGraphOutputs, exposeStepOutputs } from '../engine/graph-outputs.js';
import { EngineError } from '../engine/errors.js';
import { Rng } from '../engine/sampler.js';
import { loadModelDir } from '../engine/model-dir.js';
import { chooseDecoding, Runner, slotModeAgrees } from '../engine/runner.js';

const model = new Uint8Array(readFileSync(new URL('../models/stories260K/onnx/model.onnx', import.meta.url)));
const L = [0, 1, 2, 3, 4];
const names = {
  presentKeys: L.map((l) => `present.${l}.key`),
  presentValues: L.map((l) => `present.${l}.value`),
  pastKeys: L.map((l) => `past_key_values.${l}.key`),
  pastValues: L.map((l) => `past_key_values.${l}.value`),
};
const expose = (bytes: Uint8Array) =>
  exposeStepOutputs(bytes, names.presentKeys, names.presentValues, names.pastKeys, names.pastValues);

test('the new key/value of each layer become extra outputs holding the last column of present.*', async () => {
  const r = expose(model);
  assert.ok(r);
  assert.equal(r.newKeys.length, 5);
  assert.ok(r.model.length > model.length && r.model.length < model.length + 1024, 'only a few output entries added');
  const original = await ort.InferenceSession.create(model, { intraOpNumThreads: 1 });
  const edited = await ort.InferenceSession.create(r.model, { intraOpNumThreads: 1 });
  try {
    assert.deepEqual(edited.inputNames, original.inputNames);
    assert.deepEqual(edited.outputNames.slice(0, original.outputNames.length), original.outputNames);
    assert.deepEqual(edited.outputNames.slice(original.outputNames.length).sort(), [...r.newKeys, ...r.newValues].sort());
    const b = 2, H = 4, D = 8, past = 5;
    const rng = new Rng(11);
    const feeds: Record<string, ort.Tensor> = {
      input_ids: new ort.Tensor('int64', BigInt64Array.from([17n, 300n]), [b, 1]),
      attention_mask: new ort.Tensor('int64', new BigInt64Array(b * (past + 1)).fill(1n), [b, past + 1]),
      position_ids: new ort.Tensor('int64', BigInt64Array.from([5n, 5n]), [b, 1]),
    };
    for (const n of [...names.pastKeys, ...names.pastValues]) {
      feeds[n] = new ort.Tensor('float32', Float32Array.from({ length: b * H * past * D }, () => rng.nextFloat() - 0.5), [b, H, past, D]);
    }
    const a = await original.run(feeds);
    const e = await edited.run(feeds);
    // Same computation: identical logits and caches.
    assert.deepEqual((e.logits as ort.Tensor).data, (a.logits as ort.Tensor).data);
    L.forEach((l) => {
      for (const [present, added] of [[names.presentKeys[l], r.newKeys[l]], [names.presentValues[l], r.newValues[l]]]) {
        const p = a[present] as ort.Tensor;
        const n = e[added] as ort.Tensor;
        assert.deepEqual(n.dims, [b, H, 1, D]);
        for (let row = 0; row < b; row++) {
          for (let h = 0; h < H; h++) {
            const last = ((row * H + h) * (past + 1) + past) * D;
            assert.deepEqual(n.data.slice((row * H + h) * D, (row * H + h + 1) * D), p.data.slice(last, last + D));
          }
        }
      }
    });
  } finally {
    await original.release();
    await edited.release();
  }
});

test('graphs it does not recognise are left alone (null), never a throw', () => {
  // Truncated or garbage bytes.
  assert.equal(expose(model.subarray(0, 1000)), null);
  assert.equal(expose(new TextEncoder().encode('not a protobuf at all')), null);
  assert.equal(expose(new Uint8Array([0x3a, 0xff, 0xff, 0xff, 0xff, 0x0f])), null);
  // Names that no Concat produces.
  assert.equal(exposeStepOutputs(model, ['nope'], ['nope'], ['x'], ['y']), null);
  // A Concat whose first input is not the layer's past (layers swapped).
  assert.equal(exposeStepOutputs(model, names.presentKeys, names.presentValues, [...names.pastKeys].reverse(), names.pastValues), null);
  // Random byte flips anywhere: either a valid rewrite or null.
  const rng = new Rng(3);
  for (let i = 0; i < 200; i++) {
    const m = model.slice();
    for (let k = 0; k < 4; k++) m[Math.floor(rng.nextFloat() * 4096)] = Math.floor(rng.nextFloat() * 256);
    const r = expose(m);
    assert.ok(r === null || r.newKeys.length === 5);
  }
});

test('the load-time check accepts slot mode for the bundled model and rejects wrong wiring', async () => {
  const m = await loadModelDir(new URL('../models/stories260K', import.meta.url).pathname, { threads: 1 });
  try {
    assert.ok(m.stepOutputs);
    assert.equal(await slotModeAgrees(m), true);
    assert.equal(await slotModeAgrees({ ...m, stepOutputs: null }), false);
    // Each layer's new column written into another layer's cache: must be caught.
    const swapped = { newKeys: [...m.stepOutputs.newKeys].reverse(), newValues: m.stepOutputs.newValues };
    assert.equal(await slotModeAgrees({ ...m, stepOutputs: swapped }), false);
  } finally {
    await m.session.release();
  }
  const plainOnly = await loadModelDir(new URL('../models/stories260K', import.meta.url).pathname, { threads: 1, fastDecode: false });
  await plainOnly.session.release();
  assert.equal(plainOnly.stepOutputs, null);
});

test('the slot graph drops the full caches from the outputs and computes the same logits and new columns', async () => {
  const r = expose(model)!;
  const slot = dropGraphOutputs(r.model, [...names.presentKeys, ...names.presentValues]);
  assert.ok(slot);
  const exposed = await ort.InferenceSession.create(r.model, { intraOpNumThreads: 1 });
  const slim = await ort.InferenceSession.create(slot, { intraOpNumThreads: 1 });
  try {
    assert.deepEqual(slim.inputNames, exposed.inputNames);
    assert.deepEqual(slim.outputNames, exposed.outputNames.filter((n) => !n.startsWith('present.')), 'only the present.* outputs are gone, the rest in order');
    const b = 3, H = 4, D = 8, past = 6;
    const rng = new Rng(5);
    const feeds: Record<string, ort.Tensor> = {
      input_ids: new ort.Tensor('int64', BigInt64Array.from([17n, 300n, 2n]), [b, 1]),
      attention_mask: new ort.Tensor('int64', new BigInt64Array(b * (past + 1)).fill(1n), [b, past + 1]),
      position_ids: new ort.Tensor('int64', BigInt64Array.from([6n, 6n, 6n]), [b, 1]),
    };
    for (const n of [...names.pastKeys, ...names.pastValues]) {
      feeds[n] = new ort.Tensor('float32', Float32Array.from({ length: b * H * past * D }, () => rng.nextFloat() - 0.5), [b, H, past, D]);
    }
    const fetches = ['logits', ...r.newKeys, ...r.newValues];
    const a = await exposed.run(feeds, fetches);
    const s = await slim.run(feeds, fetches);
    for (const name of fetches) assert.deepEqual((s[name] as ort.Tensor).data, (a[name] as ort.Tensor).data, name);
    // And a prefill from an empty past: the new columns are the whole cache present.* held.
    const n = 5;
    const pre: Record<string, ort.Tensor> = {
      input_ids: new ort.Tensor('int64', BigInt64Array.from([1n, 17n, 300n, 2n, 9n]), [1, n]),
      attention_mask: new ort.Tensor('int64', new BigInt64Array(n).fill(1n), [1, n]),
      position_ids: new ort.Tensor('int64', BigInt64Array.from([0n, 1n, 2n, 3n, 4n]), [1, n]),
    };
    for (const name of [...names.pastKeys, ...names.pastValues]) pre[name] = new ort.Tensor('float32', new Float32Array(0), [1, H, 0, D]);
    const full = await exposed.run(pre);
    const cols = await slim.run(pre, fetches);
    L.forEach((l) => {
      assert.deepEqual((cols[r.newKeys[l]] as ort.Tensor).data, (full[names.presentKeys[l]] as ort.Tensor).data);
      assert.deepEqual((cols[r.newValues[l]] as ort.Tensor).data, (full[names.presentValues[l]] as ort.Tensor).data);
    });
  } finally {
    await exposed.release();
    await slim.release();
  }
});

test('dropping outputs the graph does not have, or one of them twice, leaves the graph alone (null)', () => {
  const r = expose(model)!;
  assert.equal(dropGraphOutputs(r.model, ['present.0.key', 'no-such-output']), null);
  assert.equal(dropGraphOutputs(model.subarray(0, 100), ['present.0.key']), null);
  assert.ok(dropGraphOutputs(r.model, ['present.0.key']));
});

test('the engine serves slot mode from the slot graph; the plain path keeps the full caches', async () => {
  const loaded = await loadModelDir(new URL('../models/stories260K', import.meta.url).pathname, { threads: 1 });
  assert.equal(loaded.presentOutputs, true);
  assert.ok(loaded.toSlotGraph);
  const slot = await loaded.toSlotGraph!();
  try {
    assert.equal(slot.presentOutputs, false);
    assert.equal(slot.toSlotGraph, null);
    assert.ok(!slot.session.outputNames.some((n) => n.startsWith('present.')));
    // A runner on it must be in slot mode: the plain path would need the caches it no longer has.
    assert.throws(() => new Runner(slot, 256, true), (e: unknown) => e instanceof EngineError && e.code === 'internal');
    const r = new Runner(slot, 256);
    assert.equal(r.mode, 'slot');
  } finally {
    await slot.session.release();
  }
});

test('chooseDecoding: slot mode on the slot graph where the check agrees; plain on the loaded graph otherwise, never keeping the way to the slot graph', async () => {
  const bundled = await chooseDecoding(await loadModelDir(new URL('../models/stories260K', import.meta.url).pathname, { threads: 1 }));
  try {
    assert.equal(bundled.slot, true);
    assert.equal(bundled.model.presentOutputs, false);
    assert.equal(bundled.model.toSlotGraph, null);
  } finally {
    await bundled.model.session.release();
  }
  // 8-bit weights quantized per tensor at run time couple a batch's rows: no slot mode, and the
  // loaded graph (which still has present.*) is what decodes.
  const q8 = await chooseDecoding(await loadModelDir(new URL('./fixtures/models/stories260K-variants', import.meta.url).pathname, { threads: 1, modelFile: 'q8' }));
  try {
    assert.equal(q8.slot, false);
    assert.equal(q8.model.presentOutputs, true);
    assert.equal(q8.model.toSlotGraph, null, 'the graph bytes it would hold are let go');
  } finally {
    await q8.model.session.release();
  }
});

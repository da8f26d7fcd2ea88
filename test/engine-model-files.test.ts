// Which graph of a model directory is served (several under onnx/, as on the hub), which external data
// files it names, and that those are hashed into the manifest and never resolved outside the directory.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { createHash } from 'node:crypto';
import { cp, mkdtemp, readFile, rm, symlink, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { computeModelDigest, EngineError, loadModelDir } from '../engine/index.js';
import { resolveChoice } from '../engine/model-files.js';
import { scanGraphBytes, scanGraphFile } from '../engine/onnx-scan.js';

const VARIANTS = new URL('./fixtures/models/stories260K-variants', import.meta.url).pathname;
const BUNDLED = new URL('../models/stories260K', import.meta.url).pathname;
const OFFERED = ['model.onnx', 'model_fp16.onnx', 'model_q4.onnx', 'model_q4f16.onnx', 'model_quantized.onnx'];
const sha256 = (b: Uint8Array) => createHash('sha256').update(b).digest('hex');

function isInvalid(...mentions: (string | RegExp)[]) {
  return (e: unknown) => {
    assert.ok(e instanceof EngineError, `expected EngineError, got ${String(e)}`);
    assert.equal(e.code, 'model_invalid');
    for (const m of mentions) {
      if (typeof m === 'string') assert.ok(e.message.includes(m), `"${e.message}" mentions ${m}`);
      else assert.match(e.message, m);
    }
    return true;
  };
}

test('a directory with several graphs is refused without a choice, listing them', async () => {
  await assert.rejects(loadModelDir(VARIANTS, { threads: 1 }), isInvalid('5 graphs', OFFERED.join(', '), '--model-file'));
  await assert.rejects(computeModelDigest(VARIANTS), isInvalid(OFFERED.join(', ')));
});

test('a wrong choice is refused, listing what the directory offers', async () => {
  for (const bad of ['int8', 'model_int8.onnx', 'bnb4', '../model.onnx', 'onnx/../model.onnx', '/etc/passwd', '', 'config.json']) {
    await assert.rejects(loadModelDir(VARIANTS, { threads: 1, modelFile: bad }), isInvalid('onnx/ offers: ' + OFFERED.join(', ')), bad);
  }
});

test('a choice is a file name, a stem, an onnx/ path or a transformers.js dtype', () => {
  for (const [choice, file] of [
    ['model_q4.onnx', 'model_q4.onnx'], ['model_q4', 'model_q4.onnx'], ['onnx/model_q4.onnx', 'model_q4.onnx'], ['q4', 'model_q4.onnx'],
    ['fp16', 'model_fp16.onnx'], ['q4f16', 'model_q4f16.onnx'], ['fp32', 'model.onnx'], ['model', 'model.onnx'],
  ] as const) {
    assert.equal(resolveChoice(choice, OFFERED), file, choice);
  }
  assert.equal(resolveChoice('q8', OFFERED), 'model_quantized.onnx');
  assert.equal(resolveChoice('fp16', ['model.onnx']), null);
});

test('the manifest holds the side files, the chosen graph and exactly the external data it names', async () => {
  const expectFiles = async (choice: string, graph: string, data: string[]) => {
    const { manifest, digest } = await computeModelDigest(VARIANTS, choice);
    const paths = ['config.json', 'generation_config.json', `onnx/${graph}`, ...data.map((d) => `onnx/${d}`), 'tokenizer.json', 'tokenizer_config.json'].sort();
    assert.deepEqual(manifest.files.map((f) => f.path), paths, choice);
    for (const f of manifest.files) {
      const bytes = await readFile(join(VARIANTS, f.path));
      assert.equal(f.sha256, sha256(bytes), f.path);
      assert.equal(f.size, bytes.length, f.path);
    }
    return digest;
  };
  const q4 = await expectFiles('q4', 'model_q4.onnx', ['model_q4.onnx_data']);
  const split = await expectFiles('fp32', 'model.onnx', ['model.onnx_data', 'model.onnx_data_1']);
  const fp16 = await expectFiles('fp16', 'model_fp16.onnx', []);
  assert.equal(new Set([q4, split, fp16]).size, 3, 'each variant has its own digest');
  const m = await loadModelDir(VARIANTS, { threads: 1, modelFile: 'model_q4' });
  await m.session.release();
  assert.equal(m.digest, q4);
  assert.equal(m.variant, 'model_q4.onnx');
});

test('the graph scan finds external data locations and operators, from bytes or through positioned reads', async () => {
  const path = join(VARIANTS, 'onnx', 'model.onnx');
  const fromBytes = scanGraphBytes(await readFile(path), 'onnx/model.onnx');
  const fromFile = scanGraphFile(path, 'onnx/model.onnx');
  assert.deepEqual(fromBytes.externalFiles, ['model.onnx_data', 'model.onnx_data_1']);
  assert.deepEqual(fromFile.externalFiles, fromBytes.externalFiles);
  assert.deepEqual([...fromFile.ops].sort(), [...fromBytes.ops].sort());
  assert.ok(fromBytes.ops.has(':MatMul') && !fromBytes.ops.has('com.microsoft:MatMulNBits'));
  assert.ok(scanGraphFile(join(VARIANTS, 'onnx', 'model_q4.onnx'), 'q4').ops.has('com.microsoft:MatMulNBits'));
  const bundled = scanGraphBytes(await readFile(join(BUNDLED, 'onnx', 'model.onnx')), 'onnx/model.onnx');
  assert.deepEqual(bundled.externalFiles, []);
  assert.throws(() => scanGraphBytes(new TextEncoder().encode('not a graph at all'), 'x.onnx'), isInvalid('x.onnx'));
});

/** A copy of the q4 variant alone, edited; returns the refusal. */
async function q4Copy(edit: (dir: string, outside: string) => Promise<void>): Promise<unknown> {
  const dir = await mkdtemp(join(tmpdir(), 'engine-files-'));
  const outside = await mkdtemp(join(tmpdir(), 'engine-outside-'));
  try {
    await cp(VARIANTS, dir, { recursive: true });
    for (const f of ['model.onnx', 'model.onnx_data', 'model.onnx_data_1', 'model_fp16.onnx', 'model_q4f16.onnx', 'model_q4f16.onnx_data', 'model_quantized.onnx']) {
      await rm(join(dir, 'onnx', f));
    }
    await edit(dir, outside);
    try {
      const m = await loadModelDir(dir, { threads: 1 });
      await m.session.release();
    } catch (e) {
      return e;
    }
    return null;
  } finally {
    await rm(dir, { recursive: true, force: true });
    await rm(outside, { recursive: true, force: true });
  }
}

/** Rewrites the graph's external data location (same length, so the protobuf stays valid). */
const relocate = (to: string) => async (dir: string) => {
  const p = join(dir, 'onnx', 'model_q4.onnx');
  const bytes = await readFile(p);
  const from = Buffer.from('model_q4.onnx_data');
  assert.equal(to.length, from.length);
  let n = 0;
  for (let i = bytes.indexOf(from); i >= 0; i = bytes.indexOf(from, i + 1), n++) Buffer.from(to).copy(bytes, i);
  assert.ok(n > 0);
  await writeFile(p, bytes);
};

test('external data is resolved only inside the model directory', async () => {
  // The lone graph is served without a choice.
  assert.equal(await q4Copy(async () => {}), null);
  const escape = await q4Copy(async (dir) => {
    await relocate('../model_q4.onnx_d')(dir);
    await cp(join(VARIANTS, 'onnx', 'model_q4.onnx_data'), join(dir, 'model_q4.onnx_d'));
  });
  isInvalid('../model_q4.onnx_d', 'outside the model directory')(escape);
  isInvalid('/tmp/model_q4.onnx', 'absolute path')(await q4Copy(relocate('/tmp/model_q4.onnx')));
  isInvalid('model_q4.onnx_data', 'not a file')(await q4Copy((dir) => rm(join(dir, 'onnx', 'model_q4.onnx_data'))));
  const linked = await q4Copy(async (dir, outside) => {
    await cp(join(VARIANTS, 'onnx', 'model_q4.onnx_data'), join(outside, 'weights'));
    await rm(join(dir, 'onnx', 'model_q4.onnx_data'));
    await symlink(join(outside, 'weights'), join(dir, 'onnx', 'model_q4.onnx_data'));
  });
  isInvalid('link that leads outside')(linked);
  // The graph itself may not lead out either.
  isInvalid('onnx/model_q4.onnx is a link that leads outside the model directory')(await q4Copy(async (dir, outside) => {
    await cp(join(dir, 'onnx', 'model_q4.onnx'), join(outside, 'graph.onnx'));
    await rm(join(dir, 'onnx', 'model_q4.onnx'));
    await symlink(join(outside, 'graph.onnx'), join(dir, 'onnx', 'model_q4.onnx'));
  }));
  // A link into the model directory but out of onnx/ is refused too (ONNX Runtime would refuse it later)...
  isInvalid('link that leads outside')(await q4Copy(async (dir) => {
    await cp(join(dir, 'onnx', 'model_q4.onnx_data'), join(dir, 'weights.bin'));
    await rm(join(dir, 'onnx', 'model_q4.onnx_data'));
    await symlink(join(dir, 'weights.bin'), join(dir, 'onnx', 'model_q4.onnx_data'));
  }));
  // ...and one that stays inside onnx/ is fine.
  assert.equal(await q4Copy(async (dir) => {
    await cp(join(dir, 'onnx', 'model_q4.onnx_data'), join(dir, 'onnx', 'weights.bin'));
    await rm(join(dir, 'onnx', 'model_q4.onnx_data'));
    await symlink('weights.bin', join(dir, 'onnx', 'model_q4.onnx_data'));
  }), null);
});

test('a graph over the in-memory limit is scanned by positioned reads, hashed as a stream and loaded by path', async () => {
  const golden = JSON.parse(await readFile(new URL('./fixtures/stories260K-golden-greedy-200.json', import.meta.url), 'utf8')) as {
    generated_ids: number[];
  };
  const pinned = JSON.parse(await readFile(new URL('./fixtures/engine/stories260K-manifest.json', import.meta.url), 'utf8')) as { digest: string };
  const { Runner } = await import('../engine/runner.js');
  const progress: string[] = [];
  const m = await loadModelDir(BUNDLED, { threads: 1, graphInMemoryLimit: 0, onProgress: (l) => progress.push(l) });
  try {
    // Same digest as from the bytes; no rewrite of a graph that was not read, so plain decoding.
    assert.equal(m.digest, pinned.digest);
    assert.equal(m.stepOutputs, null);
    assert.ok(progress.some((l) => l.startsWith('loaded onnx/model.onnx')), progress.join(' | '));
    const r = new Runner(m, 256, true);
    const seq = r.newSequence();
    let logits = await r.prefill(seq, [1]);
    const out: number[] = [];
    for (let i = 0; i < 32; i++) {
      let best = 0;
      for (let j = 1; j < logits.length; j++) if (logits[j] > logits[best]) best = j;
      out.push(best);
      logits = await r.step([seq], [best]);
    }
    r.release(seq);
    assert.deepEqual(out, golden.generated_ids.slice(0, 32));
  } finally {
    await m.session.release();
  }
});

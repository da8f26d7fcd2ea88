// Model directory loading: the manifest and digest come from the bytes read,
// and a directory the engine cannot drive is refused with model_invalid and a
// message that names what is missing.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { createHash } from 'node:crypto';
import { cp, mkdtemp, readFile, rm, stat, writeFile } from 'node:fs/promises';
import { readFileSync } from 'node:fs';
import { availableParallelism, tmpdir } from 'node:os';
import { join } from 'node:path';
import { computeModelDigest, EngineError, loadModelDir, canonicalJson, Engine } from '../engine/index.js';

const MODEL_DIR = new URL('../models/stories260K', import.meta.url).pathname;
const pinned = JSON.parse(readFileSync(new URL('./fixtures/engine/stories260K-manifest.json', import.meta.url), 'utf8')) as {
  manifest: { files: { path: string; size: number; sha256: string }[] };
  digest: string;
};
const sha256 = (b: Uint8Array | string) => createHash('sha256').update(b).digest('hex');

test('the bundled model loads: config, graph names and KV layout come from config.json and the session', async () => {
  const m = await loadModelDir(MODEL_DIR, { threads: 1 });
  try {
    assert.equal(m.id, 'stories260K');
    assert.deepEqual(
      { ...m.config, eosTokenIds: [...m.config.eosTokenIds] },
      { numLayers: 5, numKvHeads: 4, headDim: 8, vocabSize: 512, contextLength: 512, bosTokenId: 1, eosTokenIds: [2] },
    );
    assert.equal(m.io.positionIds, 'position_ids');
    assert.deepEqual(m.io.pastKeys, [0, 1, 2, 3, 4].map((l) => `past_key_values.${l}.key`));
    assert.deepEqual(m.io.presentValues, [0, 1, 2, 3, 4].map((l) => `present.${l}.value`));
    assert.equal(m.threads, 1);
  } finally {
    await m.session.release();
  }
});

test('threads default to all cores and must be a positive integer', async () => {
  const m = await loadModelDir(MODEL_DIR);
  await m.session.release();
  assert.equal(m.threads, availableParallelism());
  for (const threads of [0, -1, 1.5, Number.NaN]) {
    await assert.rejects(loadModelDir(MODEL_DIR, { threads }), (e: unknown) => e instanceof EngineError && e.code === 'invalid_request');
  }
});

test('manifest: every loaded file with size and SHA-256 of its bytes; digest = SHA-256 of canonical JSON', async () => {
  const { manifest, digest } = await computeModelDigest(MODEL_DIR);
  const expectedPaths = ['config.json', 'generation_config.json', 'onnx/model.onnx', 'tokenizer.json', 'tokenizer_config.json'];
  assert.deepEqual(manifest.files.map((f) => f.path), expectedPaths);
  for (const f of manifest.files) {
    const bytes = await readFile(join(MODEL_DIR, f.path));
    assert.equal(f.size, (await stat(join(MODEL_DIR, f.path))).size);
    assert.equal(f.sha256, sha256(bytes));
  }
  // Canonical JSON written out by hand: sorted keys, no whitespace.
  const canonical =
    '{"files":[' +
    manifest.files.map((f) => `{"path":${JSON.stringify(f.path)},"sha256":"${f.sha256}","size":${f.size}}`).join(',') +
    '],"version":1}';
  assert.equal(canonicalJson(manifest), canonical);
  assert.equal(digest, sha256(canonical));
  // Pinned: the bundled model's digest (what a verifier's policy pins as modelDigest).
  assert.equal(digest, pinned.digest);
  assert.deepEqual(manifest.files, pinned.manifest.files);
  // The engine announces the same digest.
  const m = await loadModelDir(MODEL_DIR, { threads: 1 });
  await m.session.release();
  assert.equal(m.digest, digest);
});

test('canonicalJson sorts keys at every level and has no whitespace', () => {
  assert.equal(canonicalJson({ b: 1, a: [{ d: 'x', c: null }], é: true }), '{"a":[{"c":null,"d":"x"}],"b":1,"é":true}');
  assert.throws(() => canonicalJson({ a: Number.NaN }), EngineError);
});

async function withModelCopy(edit: (dir: string) => Promise<void>): Promise<EngineError> {
  const dir = await mkdtemp(join(tmpdir(), 'engine-model-'));
  try {
    await cp(MODEL_DIR, dir, { recursive: true });
    await edit(dir);
    try {
      const m = await loadModelDir(dir, { threads: 1 });
      await m.session.release();
    } catch (e) {
      assert.ok(e instanceof EngineError, `expected EngineError, got ${String(e)}`);
      return e;
    }
    assert.fail('the model directory was accepted');
  } finally {
    await rm(dir, { recursive: true, force: true });
  }
}

function assertInvalid(e: EngineError, ...mentions: (string | RegExp)[]) {
  assert.equal(e.code, 'model_invalid');
  assert.ok(!e.message.includes('\n'), 'one line');
  assert.ok(!/\bat .*\.(ts|js):\d+/.test(e.message), 'no stack trace in the message');
  for (const m of mentions) {
    if (typeof m === 'string') assert.ok(e.message.includes(m), `message "${e.message}" mentions ${m}`);
    else assert.match(e.message, m);
  }
}

test('a missing required file is named', async () => {
  for (const f of ['config.json', 'generation_config.json', 'tokenizer.json', 'tokenizer_config.json', 'onnx/model.onnx']) {
    assertInvalid(await withModelCopy((d) => rm(join(d, f))), 'missing', f);
  }
});

test('a directory that does not exist is model_invalid', async () => {
  await assert.rejects(loadModelDir('/nonexistent/model/dir', { threads: 1 }), (e: unknown) =>
    e instanceof EngineError && e.code === 'model_invalid' && e.message.includes('config.json'));
});

test('garbage in place of the ONNX graph', async () => {
  const e = await withModelCopy((d) => writeFile(join(d, 'onnx/model.onnx'), Buffer.from('this is not an onnx graph')));
  assertInvalid(e, 'onnx/model.onnx');
});

// Same-length renames keep the protobuf valid but take names away from the graph.
const renameInGraph = (from: string, to: string) => async (d: string) => {
  const p = join(d, 'onnx/model.onnx');
  const bytes = await readFile(p);
  const a = Buffer.from(from);
  const b = Buffer.from(to);
  assert.equal(a.length, b.length);
  let n = 0;
  for (let i = bytes.indexOf(a); i >= 0; i = bytes.indexOf(a, i + 1)) {
    b.copy(bytes, i);
    n++;
  }
  assert.ok(n > 0);
  await writeFile(p, bytes);
};

test('a graph without a logits output', async () => {
  assertInvalid(await withModelCopy(renameInGraph('logits', 'logitz')), "output 'logits' is missing");
});

test('a graph without past key/value inputs (no KV cache)', async () => {
  const e = await withModelCopy(renameInGraph('past_key_values', 'past_key_valuez'));
  assertInvalid(e, "input 'past_key_values.0.key' is missing", 'cannot feed');
});

test('a graph without present outputs', async () => {
  assertInvalid(await withModelCopy(renameInGraph('present.', 'presenz.')), "output 'present.0.key' is missing");
});

test('config.json that disagrees with the graph or lacks what the runner needs', async () => {
  const editConfig = (patch: Record<string, unknown>, drop: string[] = []) => async (d: string) => {
    const c = JSON.parse(await readFile(join(d, 'config.json'), 'utf8'));
    for (const k of drop) delete c[k];
    await writeFile(join(d, 'config.json'), JSON.stringify({ ...c, ...patch }));
  };
  assertInvalid(await withModelCopy(editConfig({ num_key_value_heads: 8 })), 'heads', "'past_key_values.0.key'");
  assertInvalid(await withModelCopy(editConfig({ head_dim: 16 })), 'head size');
  assertInvalid(await withModelCopy(editConfig({ num_hidden_layers: 6 })), "'past_key_values.5.key' is missing");
  assertInvalid(await withModelCopy(editConfig({ num_hidden_layers: 4 })), 'cannot feed', 'past_key_values.4');
  assertInvalid(await withModelCopy(editConfig({ vocab_size: 1000 })), 'vocab_size');
  assertInvalid(await withModelCopy(editConfig({}, ['num_hidden_layers'])), 'num_hidden_layers');
  assertInvalid(await withModelCopy(editConfig({}, ['max_position_embeddings'])), 'max_position_embeddings');
  assertInvalid(await withModelCopy(editConfig({ num_hidden_layers: '5' })), 'num_hidden_layers');
  assertInvalid(
    await withModelCopy(async (d) => {
      await editConfig({}, ['eos_token_id'])(d);
      const g = JSON.parse(await readFile(join(d, 'generation_config.json'), 'utf8'));
      delete g.eos_token_id;
      await writeFile(join(d, 'generation_config.json'), JSON.stringify(g));
    }),
    'eos_token_id',
  );
  assertInvalid(await withModelCopy((d) => writeFile(join(d, 'config.json'), '{"num_hidden_layers": 5,')), 'config.json', 'not valid JSON');
  assertInvalid(await withModelCopy((d) => writeFile(join(d, 'config.json'), '[1,2]')), 'config.json', 'object');
  assertInvalid(await withModelCopy((d) => writeFile(join(d, 'tokenizer.json'), Buffer.from([0xff, 0xfe, 0x00]))), 'tokenizer.json');
});

test('a broken tokenizer.json is refused by Engine.create with model_invalid', async () => {
  const dir = await mkdtemp(join(tmpdir(), 'engine-model-'));
  try {
    await cp(MODEL_DIR, dir, { recursive: true });
    await writeFile(join(dir, 'tokenizer.json'), JSON.stringify({ model: { type: 'NoSuchModel' } }));
    await assert.rejects(Engine.create({ modelDir: dir, threads: 1 }), (e: unknown) => {
      assert.ok(e instanceof EngineError);
      assertInvalid(e, 'tokenizer');
      return true;
    });
  } finally {
    await rm(dir, { recursive: true, force: true });
  }
});

test('optional files are in the manifest when present, and change the digest', async () => {
  const dir = await mkdtemp(join(tmpdir(), 'engine-model-'));
  try {
    await cp(MODEL_DIR, dir, { recursive: true });
    const base = await computeModelDigest(dir);
    // The digest depends on the contents, not on where the directory is.
    assert.equal(base.digest, pinned.digest);
    // A file the engine does not load is not part of the manifest.
    await writeFile(join(dir, 'README.md'), 'not loaded');
    assert.equal((await computeModelDigest(dir)).digest, base.digest);
    await writeFile(join(dir, 'chat_template.jinja'), '{% for m in messages %}{{ m.content }}{% endfor %}');
    const withTemplate = await computeModelDigest(dir);
    assert.notEqual(withTemplate.digest, base.digest);
    assert.ok(withTemplate.manifest.files.some((f) => f.path === 'chat_template.jinja'));
    // ... and the engine uses it as the chat template.
    const e = await Engine.create({ modelDir: dir, threads: 1 });
    try {
      assert.equal(e.hasChatTemplate, true);
      assert.equal(e.model.digest, withTemplate.digest);
      assert.deepEqual(e.chatPrompt([{ role: 'user', content: 'Once upon a time' }]), e.encode('Once upon a time', false));
    } finally {
      await e.close();
    }
  } finally {
    await rm(dir, { recursive: true, force: true });
  }
});

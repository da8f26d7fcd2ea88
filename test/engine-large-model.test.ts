// A model whose weight files are over 2 GiB (the old whole-file read failed with "File size … is greater
// than 2 GiB"): test/fixtures/models/large-template/model.onnx is the bundled model's graph with every external
// tensor placed beyond 2.25 GiB in model.onnx_data and model.onnx_data_1. The data files are written here,
// sparse (ftruncate, then the real weights at their offsets), and deleted afterwards. The model must load,
// hash both files as streams (checked against an independent hash), report progress, and answer with the
// bundled model's golden greedy output.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { createHash } from 'node:crypto';
import { copyFile, mkdir, mkdtemp, open, readFile, rm, stat } from 'node:fs/promises';
import { readFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { Engine, type GenerateEvent } from '../engine/index.js';

const FIXTURES = new URL('./fixtures/models/', import.meta.url).pathname;
const template = JSON.parse(readFileSync(join(FIXTURES, 'large-template', 'template.json'), 'utf8')) as {
  base: number;
  data: string[];
};
const golden = JSON.parse(readFileSync(new URL('./fixtures/stories260K-golden-greedy-200.json', import.meta.url), 'utf8')) as {
  generated_ids: number[];
};
const GiB = 2 ** 30;

/** SHA-256 of `zeros` zero bytes followed by `tail`, fed in 8 MiB pieces. */
function hashSparse(zeros: number, tail: Uint8Array): string {
  const h = createHash('sha256');
  const block = new Uint8Array(8 * 1024 * 1024);
  for (let left = zeros; left > 0; left -= block.length) h.update(left >= block.length ? block : block.subarray(0, left));
  return h.update(tail).digest('hex');
}

test('a model with external data files over 2 GiB (sparse on disk) loads, is hashed as streams and answers', async (t) => {
  assert.ok(template.base > 2 * GiB);
  const dir = await mkdtemp(join(tmpdir(), 'sealed-large-model-'));
  try {
    const src = join(FIXTURES, 'stories260K-variants');
    await mkdir(join(dir, 'onnx'));
    for (const f of ['config.json', 'generation_config.json', 'tokenizer.json', 'tokenizer_config.json']) {
      await copyFile(join(src, f), join(dir, f));
    }
    await copyFile(join(FIXTURES, 'large-template', 'model.onnx'), join(dir, 'onnx', 'model.onnx'));
    const expectedHashes = new Map<string, string>();
    for (const name of template.data) {
      const weights = await readFile(join(src, 'onnx', name));
      const fh = await open(join(dir, 'onnx', name), 'w');
      try {
        await fh.truncate(template.base + weights.length);
        await fh.write(weights, 0, weights.length, template.base);
      } finally {
        await fh.close();
      }
      const st = await stat(join(dir, 'onnx', name));
      assert.ok(st.size > 2 * GiB, `${name} is over 2 GiB`);
      assert.ok(st.blocks * 512 < 64 * 1024 * 1024, `${name} is sparse (${st.blocks * 512} bytes on disk)`);
      expectedHashes.set(`onnx/${name}`, hashSparse(template.base, weights));
    }

    const progress: string[] = [];
    const rssBefore = process.memoryUsage().rss;
    const started = process.hrtime.bigint();
    const engine = await Engine.create({ modelDir: dir, threads: 1, onProgress: (l) => progress.push(l) });
    const loadSeconds = Number(process.hrtime.bigint() - started) / 1e9;
    const rssAfter = process.memoryUsage().rss;
    try {
      const files = new Map(engine.model.manifest.files.map((f) => [f.path, f]));
      for (const [path, sha] of expectedHashes) {
        assert.equal(files.get(path)?.sha256, sha, `${path} hashed over its whole sparse length`);
        assert.ok(files.get(path)!.size > 2 * GiB);
      }
      assert.ok(progress.some((l) => l.startsWith('hashing onnx/model.onnx_data: ')), progress.join(' | '));
      assert.ok(progress.some((l) => /^loaded onnx\/model\.onnx in \d/.test(l)), progress.join(' | '));

      let done: Extract<GenerateEvent, { type: 'done' }> | undefined;
      for await (const ev of engine.generate({ prompt: [1], maxTokens: 64, temperature: 0, returnTokenIds: true })) {
        if (ev.type === 'done') done = ev;
      }
      assert.deepEqual(done?.tokenIds, golden.generated_ids.slice(0, 64));
      const figures = `load ${loadSeconds.toFixed(2)} s (two ${(template.base / GiB).toFixed(2)} GiB files hashed), ` +
        `RSS ${(rssBefore / 2 ** 20).toFixed(0)} -> ${(rssAfter / 2 ** 20).toFixed(0)} MiB, ` +
        `peak RSS ${(process.resourceUsage().maxRSS / 1024).toFixed(0)} MiB`;
      t.diagnostic(figures);
      // Nothing close to the files' size was held in memory.
      assert.ok(rssAfter - rssBefore < 512 * 2 ** 20, figures);
    } finally {
      await engine.close();
    }
  } finally {
    await rm(dir, { recursive: true, force: true });
  }
});

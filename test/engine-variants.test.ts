// The hub's export layouts (test/fixtures/models, made by generate.py there): 4-bit MatMulNBits weights with
// external data named like the hub's, float16 throughout (KV cache and logits), both, weights split over two
// external files, 8-bit weights with dynamically quantized activations, and a GroupQueryAttention graph without
// position_ids. For each, the engine's greedy output, alone and batched beside 7 other sequences (joining and
// leaving under it), in the fast and the plain decode mode, equals an oracle that runs the same graph through
// ONNX Runtime with no cache at all: the whole sequence recomputed every step, batch 1, no padding (for the
// 8-bit graph, see its case).
import { test, after } from 'node:test';
import assert from 'node:assert/strict';
import * as ort from 'onnxruntime-node';
import { join } from 'node:path';
import { Engine, type GenerateEvent } from '../engine/index.js';
import { Rng } from '../engine/sampler.js';
import { collect } from './fixtures/engine/collect.js';

const FIXTURES = new URL('./fixtures/models/', import.meta.url).pathname;
const TOKENS = 64;

/** float16 bits to a number, written out from IEEE 754 (independent of engine/half.ts). */
function f16(bits: number): number {
  const e = (bits >> 10) & 31;
  const m = bits & 1023;
  const v = e === 0 ? m / 1024 * 2 ** -14 : e === 31 ? (m ? Number.NaN : Infinity) : (1 + m / 1024) * 2 ** (e - 15);
  return bits & 0x8000 ? -v : v;
}

/**
 * Greedy tokens from ONNX Runtime, batch 1. 'recompute': no KV cache, every step feeds the whole sequence
 * from empty pasts. 'incremental': the graph's own cache, the prompt once and then one token per run,
 * presents fed back as pasts.
 */
async function oracle(graphPath: string, prompt: readonly number[], n: number, eos: number, how: 'recompute' | 'incremental'): Promise<number[]> {
  const s = await ort.InferenceSession.create(graphPath, { executionProviders: ['cpu'], intraOpNumThreads: 1 });
  try {
    const ids = [...prompt];
    const out: number[] = [];
    let past = new Map<string, ort.Tensor>();
    for (const m of s.inputMetadata) {
      if (!m.name.startsWith('past_key_values.') || !m.isTensor) continue;
      const [, heads, , dim] = m.shape as number[];
      const type = m.type as 'float32' | 'float16';
      past.set(m.name, new ort.Tensor(type, type === 'float16' ? new Uint16Array(0) : new Float32Array(0), [1, heads, 0, dim]));
    }
    const empty = new Map(past);
    let cached = 0;
    for (let step = 0; step < n; step++) {
      const L = ids.length;
      const start = how === 'recompute' ? 0 : cached;
      const fed = ids.slice(start);
      const feeds: Record<string, ort.Tensor> = {
        input_ids: new ort.Tensor('int64', BigInt64Array.from(fed, BigInt), [1, fed.length]),
        attention_mask: new ort.Tensor('int64', new BigInt64Array(L).fill(1n), [1, L]),
      };
      if (s.inputNames.includes('position_ids')) {
        feeds.position_ids = new ort.Tensor('int64', BigInt64Array.from(fed.map((_, i) => BigInt(start + i))), [1, fed.length]);
      }
      for (const [name, t] of how === 'recompute' ? empty : past) feeds[name] = t;
      const r = await s.run(feeds);
      if (how === 'incremental') {
        past = new Map([...past.keys()].map((name) => [name, r[name.replace('past_key_values.', 'present.')]]));
        cached = L;
      }
      const t = r.logits;
      const vocab = t.dims[2];
      const rows = t.dims[1];
      const data = t.data as Float32Array | Uint16Array;
      const row = Array.from(data.subarray((rows - 1) * vocab, rows * vocab), (x) => (t.type === 'float16' ? f16(x) : x));
      // Lowest index wins a tie, as numpy's argmax.
      let best = 0;
      for (let i = 1; i < vocab; i++) if (row[i] > row[best]) best = i;
      if (best === eos) break;
      out.push(best);
      ids.push(best);
    }
    return out;
  } finally {
    await s.release();
  }
}

/** A generation's done event. */
const doneOf = async (it: AsyncIterable<GenerateEvent>) => (await collect(it)).done;

interface Case {
  readonly name: string;
  readonly dir: string;
  readonly modelFile?: string;
  readonly expect: { kv: string; logits: string; mode: 'slot' | 'plain' | 'unbatched'; padding: 'left' | 'right' };
  readonly prompt: readonly number[];
  /** 'recompute' unless the layout makes a no-cache recompute a different computation (see the q8 case). */
  readonly oracle?: 'incremental';
}

const stories = join(FIXTURES, 'stories260K-variants');
// "Once upon a time, there was a" and "Tom" in stories260K's vocabulary, after BOS.
const storyPrompt = [1, 403, 407, 261, 378, 432, 383, 286, 261];
const cases: Case[] = [
  { name: '4-bit MatMulNBits, external data model_q4.onnx_data', dir: stories, modelFile: 'q4',
    expect: { kv: 'float32', logits: 'float32', mode: 'slot', padding: 'left' }, prompt: storyPrompt },
  { name: 'float16 weights, KV cache and logits', dir: stories, modelFile: 'model_fp16.onnx',
    expect: { kv: 'float16', logits: 'float16', mode: 'slot', padding: 'left' }, prompt: storyPrompt },
  { name: '4-bit weights with float16 activations (q4f16)', dir: stories, modelFile: 'model_q4f16',
    expect: { kv: 'float16', logits: 'float16', mode: 'slot', padding: 'left' }, prompt: storyPrompt },
  // Activations quantized with one scale per tensor couple a batch's rows, so the engine decodes a row at a
  // time. The same coupling runs along the sequence: recomputing the whole sequence re-quantizes every past
  // position with a new scale, a different computation from any cached decode; so the oracle here is ONNX
  // Runtime with the graph's own cache, batch 1, one token per run.
  { name: '8-bit weights as quantize_dynamic writes them (model_quantized.onnx)', dir: stories, modelFile: 'q8',
    expect: { kv: 'float32', logits: 'float32', mode: 'unbatched', padding: 'left' }, prompt: storyPrompt, oracle: 'incremental' },
  { name: 'float32 weights split over model.onnx_data and model.onnx_data_1', dir: stories, modelFile: 'fp32',
    expect: { kv: 'float32', logits: 'float32', mode: 'slot', padding: 'left' }, prompt: storyPrompt },
  { name: 'GroupQueryAttention without position_ids (random weights)', dir: join(FIXTURES, 'tiny-gqa'),
    expect: { kv: 'float32', logits: 'float32', mode: 'plain', padding: 'right' }, prompt: [1, 77, 300, 12, 451, 9] },
];

const engines: Engine[] = [];
after(async () => {
  for (const e of engines) await e.close();
});

for (const c of cases) {
  const reference = c.oracle === 'incremental' ? 'with its own cache, batch 1' : 'without a cache';
  test(`${c.name}: greedy output alone and batched equals ONNX Runtime ${reference}`, async () => {
    const plain = await Engine.create({ modelDir: c.dir, threads: 1, maxBatch: 8, fastDecode: false, ...(c.modelFile && { modelFile: c.modelFile }) });
    engines.push(plain);
    const fast = await Engine.create({ modelDir: c.dir, threads: 1, maxBatch: 8, ...(c.modelFile && { modelFile: c.modelFile }) });
    engines.push(fast);
    assert.deepEqual(fast.dtypes, { kv: c.expect.kv, logits: c.expect.logits });
    assert.equal(fast.decodeMode, c.expect.mode);
    assert.equal(fast.padding, c.expect.padding);
    assert.equal(plain.decodeMode, c.expect.mode === 'unbatched' ? 'unbatched' : 'plain');

    const graph = join(c.dir, 'onnx', fast.model.variant);
    const expected = await oracle(graph, c.prompt, TOKENS, 2, c.oracle ?? 'recompute');
    assert.equal(expected.length, TOKENS, 'the oracle runs the full length without EOS');
    // Not a degenerate loop: the reference itself has variety.
    assert.ok(new Set(expected).size >= 8, `oracle output has ${new Set(expected).size} distinct tokens`);

    for (const engine of [fast, plain]) {
      const req = { prompt: c.prompt, maxTokens: TOKENS, temperature: 0, returnTokenIds: true };
      const alone = await doneOf(engine.generate(req));
      assert.deepEqual(alone.tokenIds, expected, `${engine.decodeMode}: alone`);

      const rng = new Rng(7 + c.prompt.length);
      const vocab = 512;
      const other = (i: number) => {
        const n = 1 + Math.floor(rng.nextFloat() * 30);
        const prompt = [1, ...Array.from({ length: n }, () => 3 + Math.floor(rng.nextFloat() * (vocab - 3)))];
        return doneOf(engine.generate({ prompt, maxTokens: 10 + 15 * i, temperature: 0.8, seed: i }));
      };
      const first = [other(0), other(1), other(2)];
      const target = doneOf(engine.generate(req));
      first.push(other(3));
      await new Promise((r) => setTimeout(r, 5));
      const later = [other(4), other(5), other(6)];
      const batched = await target;
      await Promise.all([...first, ...later]);
      assert.deepEqual(batched.tokenIds, expected, `${engine.decodeMode}: batched beside 7 others`);
      assert.equal(engine.stats().cachedSequences, 0);
    }

    // The prompt prefilled in chunks of 4 (past and new tokens in one run) continues the same way. Not for
    // activations quantized per tensor: a chunk's scale differs from the whole prompt's by construction.
    if (c.oracle !== 'incremental') {
      const chunked = await Engine.create({ modelDir: c.dir, threads: 1, prefillChunk: 4, ...(c.modelFile && { modelFile: c.modelFile }) });
      engines.push(chunked);
      const r = await doneOf(chunked.generate({ prompt: c.prompt, maxTokens: TOKENS, temperature: 0, returnTokenIds: true }));
      assert.deepEqual(r.tokenIds, expected, 'prefilled in chunks of 4');
    }
  });
}

/**
 * Quick decode-speed check of the engine (the real benchmark lives in bench/).
 *
 *   node --import tsx engine/speed-check.ts [--threads N] [--tokens N] [--concurrency N] [--transformers]
 *
 * Prints single-stream and concurrent decode rates (tokens/s, greedy, from
 * BOS, ignoring EOS is not possible so counts what was generated), and with
 * --transformers the rate of @huggingface/transformers' own generate() on
 * the same model directory and thread count, for comparison.
 */
import { parseArgs } from 'node:util';
import { fileURLToPath } from 'node:url';
import { Engine } from './index.js';

const { values } = parseArgs({
  options: {
    threads: { type: 'string', default: '1' },
    tokens: { type: 'string', default: '200' },
    concurrency: { type: 'string', default: '16' },
    rounds: { type: 'string', default: '3' },
    model: { type: 'string', default: fileURLToPath(new URL('../models/stories260K', import.meta.url)) },
    transformers: { type: 'boolean', default: false },
    temperature: { type: 'string', default: '0' },
  },
});
const threads = Number(values.threads);
const tokens = Number(values.tokens);
const concurrency = Number(values.concurrency);
const rounds = Number(values.rounds);

async function run(engine: Engine, n: number): Promise<number> {
  const t0 = performance.now();
  const counts = await Promise.all(
    Array.from({ length: n }, async (_, i) => {
      let got = 0;
      for await (const ev of engine.generate({ prompt: 'Once upon a time', maxTokens: tokens, temperature: Number(values.temperature), seed: i })) {
        if (ev.type === 'done') got = ev.completionTokens;
      }
      return got;
    }),
  );
  const total = counts.reduce((a, b) => a + b, 0);
  return total / ((performance.now() - t0) / 1000);
}

const engine = await Engine.create({ modelDir: values.model, threads, maxBatch: Math.max(16, concurrency) });
await run(engine, 1); // warm-up
const best = async (n: number) => {
  let b = 0;
  for (let r = 0; r < rounds; r++) b = Math.max(b, await run(engine, n));
  return b;
};
const single = await best(1);
const multi = await best(concurrency);
console.log(`engine threads=${threads}: single stream ${single.toFixed(0)} tok/s; ${concurrency} concurrent ${multi.toFixed(0)} tok/s aggregate (${(multi / single).toFixed(2)}x)`);
await engine.close();

if (values.transformers) {
  const { AutoModelForCausalLM, AutoTokenizer, env } = await import('@huggingface/transformers');
  env.allowRemoteModels = false;
  env.allowLocalModels = true;
  env.useFSCache = false;
  const model = await AutoModelForCausalLM.from_pretrained(values.model, {
    local_files_only: true,
    dtype: 'fp32',
    session_options: { intraOpNumThreads: threads, interOpNumThreads: 1 },
  });
  const tok = await AutoTokenizer.from_pretrained(values.model, { local_files_only: true });
  const inputs = tok('Once upon a time');
  let bestRate = 0;
  for (let r = 0; r <= rounds; r++) {
    const t0 = performance.now();
    const out = (await model.generate({ ...inputs, max_new_tokens: tokens, min_new_tokens: tokens, do_sample: false })) as { dims: number[] };
    const gen = out.dims[1] - inputs.input_ids.dims[1];
    const rate = gen / ((performance.now() - t0) / 1000);
    if (r > 0) bestRate = Math.max(bestRate, rate);
  }
  console.log(`transformers.js generate() threads=${threads}: single stream ${bestRate.toFixed(0)} tok/s`);
  await model.dispose();
}

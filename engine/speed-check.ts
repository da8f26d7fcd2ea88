/**
 * Quick decode-speed check of the engine (the real benchmark lives in bench/).
 *
 *   node --import tsx engine/speed-check.ts [--threads N] [--tokens N] [--concurrency N] [--transformers]
 *
 * Prints single-stream and concurrent decode rates (generated tokens per
 * second, prompt "Once upon a time", greedy unless --temperature), and with
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
    plain: { type: 'boolean', default: false },
  },
});
const threads = Number(values.threads);
const tokens = Number(values.tokens);
const concurrency = Number(values.concurrency);
const rounds = Number(values.rounds);

/**
 * Rates are tokens per wall-clock second and per CPU second of this process:
 * on a shared, busy machine the CPU-time rate is the steadier estimate of
 * what an idle machine would do (with threads=1 all work is on this process).
 */
interface Rate {
  wall: number;
  cpu: number;
}
const fmt = (r: Rate) => `${r.wall.toFixed(0)} tok/s wall, ${r.cpu.toFixed(0)} tok/s per CPU-second`;

async function timed(fn: () => Promise<number>): Promise<Rate> {
  const c0 = process.cpuUsage();
  const t0 = performance.now();
  const tokensDone = await fn();
  const wall = (performance.now() - t0) / 1000;
  const c = process.cpuUsage(c0);
  return { wall: tokensDone / wall, cpu: tokensDone / ((c.user + c.system) / 1e6) };
}

async function run(engine: Engine, n: number): Promise<Rate> {
  return timed(() => runTokens(engine, n));
}

async function runTokens(engine: Engine, n: number): Promise<number> {
  const counts = await Promise.all(
    Array.from({ length: n }, async (_, i) => {
      let got = 0;
      for await (const ev of engine.generate({ prompt: 'Once upon a time', maxTokens: tokens, temperature: Number(values.temperature), seed: i })) {
        if (ev.type === 'done') got = ev.completionTokens;
      }
      return got;
    }),
  );
  return counts.reduce((a, b) => a + b, 0);
}

const engine = await Engine.create({ modelDir: values.model, threads, maxBatch: Math.max(16, concurrency), fastDecode: !values.plain });
await run(engine, 1); // warm-up
const best = async (f: () => Promise<Rate>) => {
  const b: Rate = { wall: 0, cpu: 0 };
  for (let r = 0; r < rounds; r++) {
    const x = await f();
    b.wall = Math.max(b.wall, x.wall);
    b.cpu = Math.max(b.cpu, x.cpu);
  }
  return b;
};
const single = await best(() => run(engine, 1));
const multi = await best(() => run(engine, concurrency));
console.log(`engine (${engine.decodeMode} decode) threads=${threads}, 1 stream: ${fmt(single)}`);
console.log(`engine (${engine.decodeMode} decode) threads=${threads}, ${concurrency} concurrent: ${fmt(multi)} (x${(multi.wall / single.wall).toFixed(2)} wall, x${(multi.cpu / single.cpu).toFixed(2)} CPU)`);
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
  const once = () =>
    timed(async () => {
      const out = (await model.generate({ ...inputs, max_new_tokens: tokens, min_new_tokens: tokens, do_sample: false })) as { dims: number[] };
      return out.dims[1] - inputs.input_ids.dims[1];
    });
  await once(); // warm-up
  console.log(`transformers.js generate() threads=${threads}, 1 stream: ${fmt(await best(once))}`);
  await model.dispose();
}

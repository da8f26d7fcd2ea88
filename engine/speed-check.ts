/**
 * Quick decode-speed check of the engine (the real benchmark lives in bench/).
 *
 *   node --import tsx engine/speed-check.ts [--threads N] [--tokens N] [--concurrency N]
 *        [--rounds N] [--temperature T] [--plain] [--transformers]
 *
 * Prints single-stream and concurrent decode rates (generated tokens per
 * second, prompt "Once upon a time", greedy unless --temperature), as the
 * median over rounds that alternate between the variants measured:
 * the engine (slot decode), with --plain also the engine in plain decode
 * mode, and with --transformers @huggingface/transformers' own generate()
 * on the same model directory and thread count.
 *
 * Rates are per wall-clock second and per CPU second of this process: on a
 * shared, busy machine the CPU-time rate is the steadier estimate of what an
 * idle machine would do (with threads=1 all work is on this process).
 */
import { parseArgs } from 'node:util';
import { fileURLToPath } from 'node:url';
import { Engine } from './index.js';

const { values } = parseArgs({
  options: {
    threads: { type: 'string', default: '1' },
    tokens: { type: 'string', default: '200' },
    concurrency: { type: 'string', default: '16' },
    rounds: { type: 'string', default: '5' },
    model: { type: 'string', default: fileURLToPath(new URL('../models/stories260K', import.meta.url)) },
    temperature: { type: 'string', default: '0' },
    plain: { type: 'boolean', default: false },
    transformers: { type: 'boolean', default: false },
  },
});
const threads = Number(values.threads);
const tokens = Number(values.tokens);
const concurrency = Number(values.concurrency);
const rounds = Number(values.rounds);
const temperature = Number(values.temperature);

interface Rate {
  wall: number;
  cpu: number;
}

async function timed(fn: () => Promise<number>): Promise<Rate> {
  const c0 = process.cpuUsage();
  const t0 = performance.now();
  const n = await fn();
  const wall = (performance.now() - t0) / 1000;
  const c = process.cpuUsage(c0);
  return { wall: n / wall, cpu: n / ((c.user + c.system) / 1e6) };
}

async function engineTokens(engine: Engine, n: number): Promise<number> {
  const counts = await Promise.all(
    Array.from({ length: n }, async (_, i) => {
      let got = 0;
      for await (const ev of engine.generate({ prompt: 'Once upon a time', maxTokens: tokens, temperature, seed: i })) {
        if (ev.type === 'done') got = ev.completionTokens;
      }
      return got;
    }),
  );
  return counts.reduce((a, b) => a + b, 0);
}

type Variant = { name: string; single: () => Promise<Rate>; multi?: () => Promise<Rate>; close: () => Promise<void> };
const variants: Variant[] = [];
for (const fastDecode of values.plain ? [true, false] : [true]) {
  const engine = await Engine.create({ modelDir: values.model, threads, maxBatch: Math.max(16, concurrency), fastDecode });
  variants.push({
    name: `engine (${engine.decodeMode} decode)`,
    single: () => timed(() => engineTokens(engine, 1)),
    multi: () => timed(() => engineTokens(engine, concurrency)),
    close: () => engine.close(),
  });
}
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
  variants.push({
    name: 'transformers.js generate()',
    single: () =>
      timed(async () => {
        const out = (await model.generate({ ...inputs, max_new_tokens: tokens, min_new_tokens: tokens, do_sample: false })) as { dims: number[] };
        return out.dims[1] - inputs.input_ids.dims[1];
      }),
    close: async () => {
      await model.dispose();
    },
  });
}

const median = (xs: number[]) => xs.slice().sort((a, b) => a - b)[Math.floor(xs.length / 2)];
const results = variants.map(() => ({ single: [] as Rate[], multi: [] as Rate[] }));
for (const v of variants) await v.single(); // warm-up
for (let r = 0; r < rounds; r++) {
  for (let i = 0; i < variants.length; i++) {
    results[i].single.push(await variants[i].single());
    if (variants[i].multi) results[i].multi.push(await variants[i].multi!());
  }
}
const fmt = (rs: Rate[]) =>
  `${median(rs.map((x) => x.wall)).toFixed(0)} tok/s wall, ${median(rs.map((x) => x.cpu)).toFixed(0)} tok/s per CPU-second`;
console.log(`threads=${threads}, ${tokens} tokens per sequence, median of ${rounds} alternating rounds`);
variants.forEach((v, i) => {
  console.log(`${v.name}, 1 stream: ${fmt(results[i].single)}`);
  if (results[i].multi.length > 0) {
    const s = median(results[i].single.map((x) => x.wall));
    const m = median(results[i].multi.map((x) => x.wall));
    console.log(`${v.name}, ${concurrency} concurrent: ${fmt(results[i].multi)} (x${(m / s).toFixed(2)} of 1 stream, wall)`);
  }
});
for (const v of variants) await v.close();

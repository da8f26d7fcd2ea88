// A short real run of the benchmark through `sealed bench`: the in-process
// engine and the plaintext twin (a child process serving the inner app), tiny
// request counts. Checks the written JSON is the CONTRACT's shape with real,
// positive measurements, and that the SVG chart is written.
import assert from 'node:assert/strict';
import { mkdtemp, readFile, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { test } from 'node:test';
import { command } from '../cli/commands/bench.js';
import { RUN_KEYS, validateContractShape } from '../bench/report.js';

test('sealed bench: engine + plaintext-http smoke run writes CONTRACT JSON and a chart', { timeout: 120_000 }, async () => {
  const dir = await mkdtemp(path.join(tmpdir(), 'bench-smoke-'));
  try {
    const json = path.join(dir, 'bench.json');
    const chart = path.join(dir, 'bench.svg');
    const code = await command.run([
      '--modes', 'engine,plaintext-http', '--concurrency', '1,2', '--requests', '2', '--max-tokens', '12',
      '--json', json, '--chart', chart,
    ]);
    assert.equal(code, 0, 'every requested mode measured');
    const doc = JSON.parse(await readFile(json, 'utf8')) as Record<string, unknown>;
    validateContractShape({ ...doc });
    assert.equal(doc.model, 'stories260K');
    assert.equal(doc.threads, 1);
    assert.equal(typeof doc.machine, 'string');
    const runs = doc.runs as Record<string, number | string>[];
    assert.deepEqual(runs.map((r) => `${r.mode}@${r.concurrency}`), ['engine@1', 'engine@2', 'plaintext-http@1', 'plaintext-http@2']);
    for (const r of runs) {
      assert.deepEqual(Object.keys(r), [...RUN_KEYS]);
      assert.equal(r.requests, 2);
      // Greedy on this prompt never meets EOS within 12 tokens: every request yields exactly max_tokens.
      assert.equal(r.tokens, 24, `${r.mode}@${r.concurrency} tokens`);
      for (const k of RUN_KEYS.slice(4)) assert.ok(typeof r[k] === 'number' && (r[k] as number) > 0, `${r.mode}@${r.concurrency} ${k} = ${r[k]}`);
      assert.ok((r.ttft_ms_p95 as number) >= (r.ttft_ms_p50 as number));
      assert.ok((r.itl_ms_p95 as number) >= (r.itl_ms_p50 as number));
      // tokens/s is tokens over wall seconds; seconds are written to 4 places and tokens/s to 1.
      const [tok, sec, tps] = [r.tokens as number, r.seconds as number, r.tokens_per_second as number];
      assert.ok(tps >= tok / (sec + 5e-5) - 0.05 && tps <= tok / (sec - 5e-5) + 0.05, `${tps} vs ${tok}/${sec}`);
    }
    assert.equal(doc.prompt_tokens, 20);
    // CPU per token: the in-process engine has no server child; the twin's CPU is read from /proc.
    const cpu = doc.cpu as { mode: string; concurrency: number; bench_cpu_us_per_token: number; server_cpu_us_per_token: number | null; server_main_cpu_us_per_token?: number | null }[];
    assert.equal(cpu.length, 4);
    for (const r of cpu) assert.ok(r.bench_cpu_us_per_token > 0, `${r.mode} bench cpu`);
    assert.ok(cpu.filter((r) => r.mode === 'engine').every((r) => r.server_cpu_us_per_token === null));
    assert.ok(cpu.filter((r) => r.mode === 'plaintext-http').every((r) => typeof r.server_cpu_us_per_token === 'number' && r.server_cpu_us_per_token >= 0));
    // The twin's main thread is part of its process: never more than the whole (ticks are 10 ms, so allow one).
    for (const r of cpu.filter((x) => x.mode === 'plaintext-http')) {
      assert.equal(typeof r.server_main_cpu_us_per_token, 'number');
      // /proc counts in 10 ms ticks and the two are read a moment apart: over 24 tokens one tick is 417 us/token.
      const tick = 10_000 / 24;
      assert.ok(r.server_main_cpu_us_per_token! >= 0 && r.server_main_cpu_us_per_token! <= r.server_cpu_us_per_token! + tick + 0.1, JSON.stringify(r));
    }
    assert.ok(cpu.filter((r) => r.mode === 'engine').every((r) => r.server_main_cpu_us_per_token === null));
    assert.ok((doc.plaintext_server_rss_mb as number) > 0, 'twin RSS read from /proc');
    // The batch-1 step alone and beside a busy core: both measured, both batch 1, every step counted.
    const nb = doc.neighbour as { alone: Record<string, number>; beside_busy_core: Record<string, number> };
    for (const side of [nb.alone, nb.beside_busy_core]) {
      assert.equal(side.batch, 1);
      assert.equal(side.steps, 1500);
      assert.ok(side.tokens_per_second > 0 && side.step_ms_p50 > 0);
    }
    const svg = await readFile(chart, 'utf8');
    assert.match(svg, /^<svg /);
    assert.equal((svg.match(/<polyline class="series"/g) ?? []).length, 2);
  } finally {
    await rm(dir, { recursive: true, force: true });
  }
});

test('sealed bench --model-dir on a fixture: the report names the model and the variant; a directory with several graphs needs --model-file', { timeout: 120_000 }, async () => {
  const variants = new URL('./fixtures/models/stories260K-variants', import.meta.url).pathname;
  const dir = await mkdtemp(path.join(tmpdir(), 'bench-variant-'));
  try {
    const json = path.join(dir, 'bench.json');
    const code = await command.run([
      '--model-dir', variants, '--model-file', 'fp16', '--modes', 'engine,plaintext-http', '--concurrency', '1', '--requests', '2',
      '--max-tokens', '12', '--json', json,
    ]);
    assert.equal(code, 0);
    const doc = JSON.parse(await readFile(json, 'utf8')) as Record<string, unknown>;
    validateContractShape({ ...doc });
    assert.equal(doc.model, 'stories260K-variants');
    assert.equal(doc.variant, 'model_fp16.onnx');
    assert.equal(doc.outputs_identical, true, 'the engine and the HTTP twin ran the same graph');
    const runs = doc.runs as Record<string, number | string>[];
    assert.deepEqual(runs.map((r) => `${r.mode}@${r.concurrency}`), ['engine@1', 'plaintext-http@1']);
    for (const r of runs) assert.equal(r.tokens, 24);
    assert.equal(await command.run(['--model-dir', variants, '--modes', 'engine', '--concurrency', '1', '--requests', '1']), 2);
  } finally {
    await rm(dir, { recursive: true, force: true });
  }
});

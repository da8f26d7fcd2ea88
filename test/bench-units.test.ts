// Unit tests of the benchmark's pure parts: order statistics, aggregation, the
// CONTRACT JSON shape, the SVG chart, targets, argument parsing, /proc parsing
// and the completion-stream reader.
import assert from 'node:assert/strict';
import { test } from 'node:test';
import { parseArgs, requestsFor, USAGE } from '../bench/args.js';
import { escapeXml, niceCeil, renderChart } from '../bench/chart.js';
import { parseProcStatCpuMs, parseProcStatus } from '../bench/child.js';
import { BenchError } from '../bench/errors.js';
import { aggregate, runClosedLoop, splitRounds, sweepOrder } from '../bench/measure.js';
import { compareOutputs, normalizeCompletion } from '../bench/outputs.js';
import { consumeCompletionStream } from '../bench/modes/plaintext-http.js';
import { RUN_KEYS, serialize, toContractJson, validateContractShape } from '../bench/report.js';
import { gaps, median, percentile } from '../bench/stats.js';
import { measureStaggered, steadyWindow } from '../bench/staggered.js';
import { formatReport } from '../bench/table.js';
import { evaluateTargets, layerBreakdown } from '../bench/targets.js';
import type { BenchReport, ModeDriver, RunResult } from '../bench/types.js';

function row(mode: RunResult['mode'], concurrency: number, tps: number, ttft = 2): RunResult {
  return {
    mode, concurrency, requests: 4, tokens: 800, seconds: 800 / tps, tokens_per_second: tps,
    ttft_ms_p50: ttft, ttft_ms_p95: ttft * 2, itl_ms_p50: 0.5, itl_ms_p95: 0.9,
  };
}

function report(runs: RunResult[]): BenchReport {
  return {
    model: 'stories260K', threads: 1, machine: 'test machine', runs, date: '2026-11-27T00:00:00.000Z',
    max_tokens: 200, prompt_tokens: 20, session_setup_ms_p50: 12.5, seal_open_us: 7.25,
    extra: { server_rss_mb: 150.5 }, targets: evaluateTargets(runs, 12.5),
  };
}

test('percentile interpolates between closest ranks (numpy type 7)', () => {
  const v = [15, 20, 35, 40, 50];
  assert.equal(percentile(v, 0), 15);
  assert.equal(percentile(v, 100), 50);
  assert.equal(percentile(v, 50), 35);
  assert.equal(percentile(v, 40), 29); // rank 1.6: 20 + 0.6 * 15
  assert.ok(Math.abs(percentile(v, 95) - 48) < 1e-9); // rank 3.8: 40 + 0.8 * 10
  assert.equal(percentile([7], 95), 7);
  assert.equal(median([4, 1, 3, 2]), 2.5);
});

test('percentile does not reorder its input and rejects bad p; no data is NaN', () => {
  const v = [3, 1, 2];
  percentile(v, 50);
  assert.deepEqual(v, [3, 1, 2]);
  assert.ok(Number.isNaN(percentile([], 50)));
  assert.throws(() => percentile(v, 101), RangeError);
  assert.throws(() => percentile(v, -1), RangeError);
  assert.throws(() => percentile(v, Number.NaN), RangeError);
});

test('gaps are successive differences', () => {
  assert.deepEqual(gaps([1, 3, 6, 10]), [2, 3, 4]);
  assert.deepEqual(gaps([5]), []);
});

test('aggregate: tokens/s over wall time, TTFT from request start, ITL pooled across requests', () => {
  const samples = [
    { startMs: 0, eventMs: [2, 3, 4], endMs: 4, tokens: 3 },
    { startMs: 10, eventMs: [14, 16, 18], endMs: 18, tokens: 3 },
  ];
  const r = aggregate('engine', 2, samples, 0.5);
  assert.equal(r.requests, 2);
  assert.equal(r.tokens, 6);
  assert.equal(r.tokens_per_second, 12);
  assert.equal(r.ttft_ms_p50, 3); // ttfts 2 and 4
  assert.equal(r.ttft_ms_p95, 3.9);
  assert.equal(r.itl_ms_p50, 1.5); // gaps 1, 1, 2, 2
  assert.equal(r.itl_ms_p95, 2);
  assert.deepEqual(Object.keys(r), [...RUN_KEYS]);
});

test('runClosedLoop issues exactly N requests with at most C in flight', async () => {
  let inFlight = 0;
  let peak = 0;
  let calls = 0;
  const driver: ModeDriver = {
    name: 'engine',
    async request(_w, onToken) {
      calls++;
      inFlight++;
      peak = Math.max(peak, inFlight);
      await new Promise((r) => setTimeout(r, 2));
      onToken();
      inFlight--;
      return { tokens: 1 };
    },
    async close() {},
  };
  const { samples, seconds } = await runClosedLoop(driver, { prompt: 'x', maxTokens: 1 }, 3, 10);
  assert.equal(calls, 10);
  assert.equal(samples.length, 10);
  assert.equal(peak, 3);
  assert.ok(seconds > 0);
});

test('runClosedLoop stops issuing after a failure and rejects', async () => {
  let calls = 0;
  const driver: ModeDriver = {
    name: 'engine',
    async request() {
      calls++;
      await new Promise((r) => setTimeout(r, 1));
      if (calls === 2) throw new BenchError('mode_failed', 'boom');
      return { tokens: 1 };
    },
    async close() {},
  };
  await assert.rejects(runClosedLoop(driver, { prompt: 'x', maxTokens: 1 }, 1, 50), { code: 'mode_failed' });
  assert.equal(calls, 2);
});

test('the JSON has the CONTRACT keys, in order, and passes the validator', () => {
  const rep = report([row('engine', 1, 1000), row('encrypted-http', 1, 950)]);
  const doc = JSON.parse(serialize(rep)) as Record<string, unknown>;
  assert.deepEqual(Object.keys(doc).slice(0, 4), ['model', 'threads', 'machine', 'runs']);
  validateContractShape({ ...doc });
  const runs = doc.runs as Record<string, unknown>[];
  assert.deepEqual(Object.keys(runs[0]), [...RUN_KEYS]);
  assert.equal(doc.session_setup_ms_p50, 12.5);
  assert.equal(doc.server_rss_mb, 150.5);
  assert.equal(doc.seal_open_us, 7.25);
  assert.ok(Array.isArray(doc.targets));
});

test('NaN percentiles are written as null, not dropped', () => {
  const r = { ...row('engine', 1, 1000), itl_ms_p50: Number.NaN };
  const doc = toContractJson(report([r])) as { runs: Record<string, unknown>[] };
  assert.equal(doc.runs[0].itl_ms_p50, null);
  validateContractShape(JSON.parse(JSON.stringify(doc)));
});

test('the validator rejects every deviation from the CONTRACT shape', () => {
  const good = (): Record<string, unknown> => JSON.parse(serialize(report([row('engine', 1, 1000)]))) as Record<string, unknown>;
  const mutate = (f: (d: Record<string, unknown> & { runs: Record<string, unknown>[] }) => void): unknown => {
    const d = good() as Record<string, unknown> & { runs: Record<string, unknown>[] };
    f(d);
    return d;
  };
  const bad: unknown[] = [
    null, [], 'x',
    mutate((d) => { delete d.model; }),
    mutate((d) => { d.threads = 0; }),
    mutate((d) => { d.threads = 1.5; }),
    mutate((d) => { d.machine = ''; }),
    mutate((d) => { (d as Record<string, unknown>).runs = {}; }),
    mutate((d) => { d.runs[0].mode = 'gpu'; }),
    mutate((d) => { delete d.runs[0].itl_ms_p95; }),
    mutate((d) => { d.runs[0].extra = 1; }),
    mutate((d) => { d.runs[0].tokens = -1; }),
    mutate((d) => { d.runs[0].requests = 2.5; }),
    mutate((d) => { d.runs[0].seconds = '1'; }),
    mutate((d) => { d.runs[0].tokens_per_second = -3; }),
    mutate((d) => {
      // Same keys, wrong order.
      const { mode, concurrency, ...rest } = d.runs[0];
      d.runs[0] = { concurrency, mode, ...rest };
    }),
  ];
  for (const [i, doc] of bad.entries()) {
    assert.throws(() => validateContractShape(doc), (e: unknown) => e instanceof BenchError && e.code === 'bad_output', `case ${i}`);
  }
});

test('targets: ratios from the same run, pass/miss/not measured', () => {
  const runs = [
    row('engine', 1, 1000, 3), row('engine', 16, 5000),
    row('transformers-js', 1, 1100),
    row('encrypted-http', 1, 920, 12), row('encrypted-http', 16, 3000), row('encrypted-http', 32, 4000),
  ];
  const t = evaluateTargets(runs, 60);
  const by = (prefix: string) => t.find((x) => x.name.startsWith(prefix))!;
  assert.ok(Math.abs(by('encrypted-http / engine').value! - 0.92) < 1e-9);
  assert.equal(by('encrypted-http / engine').pass, true);
  assert.equal(by('engine / transformers-js').pass, false);
  assert.ok(Math.abs(by('encrypted-http c>=16').value! - 4000 / 920) < 1e-3); // best level at or above 16, rounded to 3 places
  assert.equal(by('encrypted-http c>=16').pass, true);
  assert.equal(by('TTFT').value, 12);
  assert.match(by('TTFT').name, /encrypted-http/);
  assert.equal(by('TTFT').pass, false);
  assert.equal(by('session').pass, false);
  assert.equal(by('encrypted-http / engine, c=16').value, 0.6);
  assert.equal(by('encrypted-http / engine, c=16').pass, false);
  assert.equal(by('engine c=32 / engine c=16').pass, null); // engine at 32 not measured
  assert.equal(by('engine c=16 / runtime').pass, null); // no ceiling line in this run
  assert.equal(by('encrypted-http tok/s, c=32').value, 4000);
  assert.equal(by('encrypted-http tok/s, c=32').pass, false);
  const withCeiling = evaluateTargets([...runs, row('engine', 32, 4900)], 60, [{ batch: 16, width: 120, steps: 10, step_ms_p50: 3, tokens_per_second: 5500 }]);
  const c = (prefix: string) => withCeiling.find((x) => x.name.startsWith(prefix))!;
  assert.equal(c('engine c=16 / runtime').value, Math.round((5000 / 5500) * 1000) / 1000);
  assert.equal(c('engine c=16 / runtime').pass, true);
  assert.equal(c('engine c=32 / engine c=16').value, 0.98);
  assert.equal(c('engine c=32 / engine c=16').pass, false);
  assert.equal(evaluateTargets([row('encrypted-http', 1, 900, 4.9)], undefined).find((x) => x.name.startsWith('TTFT'))!.pass, true);
  const partial = evaluateTargets([row('engine', 1, 1000, 3)], undefined);
  assert.equal(partial.find((x) => x.name.startsWith('encrypted-http / engine'))!.pass, null);
  assert.equal(partial.find((x) => x.name.startsWith('TTFT'))!.value, 3); // falls back to the engine and says so
  assert.match(partial.find((x) => x.name.startsWith('TTFT'))!.name, /engine/);
  assert.equal(partial.find((x) => x.name.startsWith('session'))!.pass, null);
});

test('the table shows every run and every target verdict', () => {
  const text = formatReport(report([row('engine', 1, 1000), row('transformers-js', 1, 1100)]));
  assert.match(text, /engine\s+1\s+4\s+800/);
  assert.match(text, /transformers-js/);
  assert.match(text, /MISS/);
  assert.match(text, /not measured/);
  assert.match(text, /machine: test machine/);
  assert.match(text, /session set-up .*12\.50 ms/);
});

test('the ceiling lines: the mean-width table names its width; the longest-row step is set against the same batch, in the text and the JSON', () => {
  const rep = report([row('engine', 16, 16000)]);
  rep.ceiling = [
    { batch: 1, width: 120, steps: 100, step_ms_p50: 0.25, tokens_per_second: 4000 },
    { batch: 16, width: 120, steps: 100, step_ms_p50: 0.8, tokens_per_second: 20000 },
  ];
  rep.ceiling_longest_row = { batch: 16, width: 220, steps: 400, step_ms_p50: 1.05, tokens_per_second: 15000 };
  const text = formatReport(rep);
  assert.match(text, /every row 120 columns long, the workload's mean/);
  assert.match(text, /batch-16 step with every row 220 columns long.*15000\.0 tok\/s, p50 1\.050 ms \(0\.75x the mean-width step\)/);
  const doc = JSON.parse(serialize(rep)) as { ceiling: { width: number }[]; ceiling_longest_row: { batch: number; width: number } };
  assert.deepEqual(doc.ceiling.map((r) => r.width), [120, 120]);
  assert.deepEqual([doc.ceiling_longest_row.batch, doc.ceiling_longest_row.width], [16, 220]);
  // Without a mean-width line at that batch there is nothing to compare with: no line.
  rep.ceiling = [rep.ceiling[0]!];
  assert.doesNotMatch(formatReport(rep), /every row 220 columns long/);
});

test('steadyWindow: from the last start to the first end, counting the tokens inside; null when the workers never all ran', () => {
  const w = steadyWindow([0, 10, 20], [100, 90, 120], [5, 19, 20, 21, 50, 89.9, 90, 110]);
  assert.deepEqual(w, { tokens: 4, seconds: 0.07 }); // 20 <= t < 90
  assert.equal(steadyWindow([0, 50], [40, 90], [10, 60]), null, 'worker 0 ended before worker 1 began');
  assert.equal(steadyWindow([], [], []), null);
  assert.equal(steadyWindow([0], [10, 20], [5]), null);
});

test('measureStaggered: workers start spread apart and run their requests back to back; the rate is over the window all of them ran', async () => {
  const calls: { start: number; end: number }[] = [];
  const driver = (tokens: number): ModeDriver => ({
    name: 'engine',
    async request(_work, onToken) {
      const call = { start: performance.now(), end: 0 };
      calls.push(call);
      for (let k = 0; k < tokens; k++) {
        await new Promise((r) => setTimeout(r, 2));
        onToken();
      }
      call.end = performance.now();
      return { tokens };
    },
    async close() {},
  });
  // Four workers 15 ms apart, one request each of ~40 tokens 2 ms apart (80 ms or more).
  const run = (await measureStaggered(driver(40), { prompt: 'x', maxTokens: 40 }, 4, 1, 15))!;
  const starts = calls.map((c) => c.start).sort((a, b) => a - b);
  // Timers fire a little late now and then (the first one most): the last start comes ~45 ms after the first.
  assert.ok(starts[3]! - starts[0]! >= 30, `starts ${starts.map((t) => (t - starts[0]!).toFixed(1)).join(', ')}`);
  assert.equal(run.concurrency, 4);
  assert.equal(run.requests, 4);
  assert.equal(run.spread_ms, 15);
  // The window runs from the last start to the first end: shorter than any one request.
  const expected = (Math.min(...calls.map((c) => c.end)) - Math.max(...starts)) / 1000;
  assert.ok(Math.abs(run.seconds - expected) < 1e-3, `${run.seconds} against ${expected}`);
  assert.ok(run.tokens > 0 && run.tokens < 4 * 40);
  assert.ok(Math.abs(run.tokens_per_second - run.tokens / run.seconds) < 0.01 * run.tokens_per_second);
  // Workers that never all run at once give no number.
  calls.length = 0;
  assert.equal(await measureStaggered(driver(5), { prompt: 'x', maxTokens: 5 }, 2, 1, 80), null);
});

test('the staggered engine line: its rate, against the engine wave and encrypted-http at that level, in the text and the JSON', () => {
  const rep = report([row('engine', 16, 16000), row('encrypted-http', 16, 11200)]);
  rep.engine_staggered = { concurrency: 16, spread_ms: 11.25, requests: 64, tokens: 6500, seconds: 0.5, tokens_per_second: 13000 };
  const text = formatReport(rep);
  assert.match(text, /engine at concurrency 16 with its workers' starts spread over one request \(11\.3 ms apart\).*13000\.0 tok\/s while all 16 ran \(0\.81x its wave started together\); encrypted-http at 16 is 0\.86x it/);
  const doc = JSON.parse(serialize(rep)) as { engine_staggered: { tokens_per_second: number; spread_ms: number } };
  assert.equal(doc.engine_staggered.tokens_per_second, 13000);
  assert.equal(doc.engine_staggered.spread_ms, 11.25);
});

test('SVG chart: well-formed, one series per mode, points placed by value', () => {
  const runs = [
    row('engine', 1, 1250), row('engine', 4, 2500), row('engine', 16, 5000),
    row('encrypted-http', 1, 900), row('encrypted-http', 4, 1800), row('encrypted-http', 16, 3600),
  ];
  const svg = renderChart(runs, { title: 'a < b & "c"' });
  assert.match(svg, /^<svg xmlns="http:\/\/www\.w3\.org\/2000\/svg"/);
  assert.match(svg, /<\/svg>\n$/);
  assert.ok(svg.includes('a &lt; b &amp; &quot;c&quot;'));
  assert.equal((svg.match(/<polyline class="series"/g) ?? []).length, 2);
  assert.equal((svg.match(/<circle /g) ?? []).length, 6);
  // Well-formed: tags nest and balance, one root.
  const stack: string[] = [];
  let roots = 0;
  for (const m of svg.matchAll(/<(\/?)([a-zA-Z]+)(?:\s[^<>]*?)?(\/?)>/g)) {
    if (m[1] === '/') assert.equal(stack.pop(), m[2]);
    else if (m[3] !== '/') { if (stack.length === 0) roots++; stack.push(m[2]); }
  }
  assert.deepEqual(stack, []);
  assert.equal(roots, 1);
  assert.ok(!/&(?!(lt|gt|amp|quot|apos);)/.test(svg), 'no bare ampersand');
  // y axis runs to 5000 (nice ceiling); 5000 tok/s sits at the top of the plot, 2500 halfway.
  const cy = (mode: string, c: number): number => {
    const re = new RegExp(`<circle data-mode="${mode}" cx="[\\d.]+" cy="([\\d.]+)"[^>]*><title>${mode} c=${c}:`);
    return Number(re.exec(svg)![1]);
  };
  const top = cy('engine', 16);
  const bottom = 420 - 50; // height - bottom margin: the zero line
  assert.equal(top, 40);
  assert.ok(Math.abs(cy('engine', 4) - (top + bottom) / 2) < 0.11);
  assert.ok(cy('encrypted-http', 1) > cy('engine', 1));
});

test('niceCeil and escapeXml', () => {
  assert.equal(niceCeil(3700), 4000);
  assert.equal(niceCeil(4000), 4000);
  assert.equal(niceCeil(5200), 6000);
  assert.equal(niceCeil(8001), 10000);
  assert.equal(niceCeil(1000), 1000);
  assert.equal(niceCeil(0.35), 0.4);
  assert.equal(niceCeil(2500), 2500);
  assert.equal(niceCeil(0), 1);
  assert.equal(niceCeil(Number.NaN), 1);
  assert.equal(escapeXml(`<&>"'`), '&lt;&amp;&gt;&quot;&apos;');
});

test('parseArgs: defaults, quick, lists, strict errors', () => {
  const d = parseArgs([]);
  assert.deepEqual(d.concurrency, [1, 4, 16, 32]);
  assert.deepEqual(d.modes, ['engine', 'plaintext-http', 'encrypted-http', 'transformers-js']);
  assert.equal(d.threads, 1);
  assert.equal(d.maxTokens, 200);
  assert.equal(requestsFor(d, 1), 32);
  assert.equal(requestsFor(d, 32), 128);
  // --help states the same defaults.
  assert.match(USAGE, /default: max\(32, 4 x concurrency\); --quick: max\(8, concurrency\)/);
  const q = parseArgs(['--quick', '--json', 'out.json', '--chart=c.svg']);
  assert.deepEqual(q.concurrency, [1, 16]);
  assert.equal(q.json, 'out.json');
  assert.equal(q.chart, 'c.svg');
  assert.equal(requestsFor(q, 16), 16);
  assert.equal(requestsFor(q, 1), 8);
  const m = parseArgs(['--modes', 'transformers-js,engine', '--concurrency', '4,1,4', '--threads', '2', '--requests', '3']);
  assert.deepEqual(m.modes, ['engine', 'transformers-js']);
  assert.deepEqual(m.concurrency, [1, 4]);
  assert.equal(m.threads, 2);
  assert.equal(requestsFor(m, 4), 3);
  assert.equal(parseArgs(['--help']).help, true);
  for (const bad of [['--modes', 'gpu'], ['--threads', '0'], ['--threads', 'x'], ['--concurrency', '1,,2'], ['--json'], ['--json', '--quick'], ['--frobnicate'], ['--threads', '1e3']]) {
    assert.throws(() => parseArgs(bad), (e: unknown) => e instanceof BenchError && e.code === 'bad_args', bad.join(' '));
  }
});

test('parseProcStatus reads VmRSS and VmHWM', () => {
  const text = 'Name:\tnode\nVmPeak:\t 1000 kB\nVmHWM:\t  204800 kB\nVmRSS:\t  102400 kB\nThreads:\t11\n';
  assert.deepEqual(parseProcStatus(text), { rssMb: 100, peakMb: 200 });
  assert.equal(parseProcStatus('Name:\tnode\n'), undefined);
});

function streamOf(parts: string[]): ReadableStream<Uint8Array> {
  const enc = new TextEncoder();
  return new ReadableStream({ start(c) { for (const p of parts) c.enqueue(enc.encode(p)); c.close(); } });
}

test('consumeCompletionStream counts text chunks as they arrive and trusts usage for tokens', async () => {
  const ev = (o: unknown): string => `data: ${JSON.stringify(o)}\n\n`;
  let seen = 0;
  const { tokens, text, promptTokens } = await consumeCompletionStream(streamOf([
    ev({ choices: [{ text: 'Once', finish_reason: null }] }),
    ev({ choices: [{ text: ' upon', finish_reason: null }] }).slice(0, 7),
    ev({ choices: [{ text: ' upon', finish_reason: null }] }).slice(7),
    ev({ choices: [{ text: '', finish_reason: 'length' }] }),
    ev({ choices: [], usage: { prompt_tokens: 20, completion_tokens: 3, total_tokens: 23 } }),
    'data: [DONE]\n\n',
  ]), () => { seen++; });
  assert.equal(seen, 2);
  assert.equal(tokens, 3);
  assert.equal(text, 'Once upon');
  assert.equal(promptTokens, 20);
  // Without usage the chunk count stands in; chat deltas count too.
  const n = await consumeCompletionStream(streamOf([ev({ choices: [{ delta: { content: 'a' } }] }), 'data: [DONE]\n\n']), () => {});
  assert.deepEqual(n, { tokens: 1, text: 'a', promptTokens: undefined });
});

test('consumeCompletionStream rejects a stream cut before [DONE]', async () => {
  await assert.rejects(consumeCompletionStream(streamOf(['data: {"choices":[{"text":"a"}]}\n\n']), () => {}), { code: 'mode_failed' });
});

test('splitRounds: at most maxRounds, each at least the concurrency, sums to the total', () => {
  assert.deepEqual(splitRounds(8, 1, 2), [4, 4]);
  assert.deepEqual(splitRounds(9, 1, 2), [5, 4]);
  assert.deepEqual(splitRounds(16, 16, 2), [16]);
  assert.deepEqual(splitRounds(64, 32, 2), [32, 32]);
  assert.deepEqual(splitRounds(3, 16, 2), [3]); // fewer requests than workers: one round
  assert.deepEqual(splitRounds(5, 1, 1), [5]);
});

test('compareOutputs: the engine is the reference; only a leading space may differ', () => {
  const same = new Map([['engine', ' play outside.'], ['transformers-js', 'play outside.'], ['plaintext-http', ' play outside.']] as const);
  assert.deepEqual(compareOutputs(same), { identical: true, reference: 'engine', differing: [] });
  const diff = new Map([['transformers-js', 'play outside'], ['engine', ' play outside.'], ['encrypted-http', ' play  outside.']] as const);
  assert.deepEqual(compareOutputs(diff), { identical: false, reference: 'engine', differing: ['transformers-js', 'encrypted-http'] });
  assert.equal(compareOutputs(new Map([['plaintext-http', 'a']] as const)).reference, 'plaintext-http');
  assert.equal(compareOutputs(new Map()).identical, true);
  assert.equal(normalizeCompletion('\n  a b '), 'a b ');
});

test('seal + open of one chunk: real round trips through transport for every AEAD', async () => {
  const { measureSealOpenFor, defaultAead, CHUNK_BYTES } = await import('../bench/seal-cost.js');
  assert.equal(CHUNK_BYTES, 100);
  for (const id of [1, 2, 3]) {
    const us = measureSealOpenFor(id, 3, 10);
    assert.ok(Number.isFinite(us) && us > 0 && us < 1e6, `aead ${id}: ${us} us`);
  }
  assert.ok([1, 2, 3].includes(defaultAead()));
});

test('seal + open: both AEAD backends measured, and the backend in effect restored', async () => {
  const { measureSealOpen } = await import('../bench/seal-cost.js');
  const { aeadBackendName } = await import('../transport/hpke.js');
  const before = aeadBackendName();
  const r = await measureSealOpen({ batches: 2, perBatch: 5 });
  assert.equal(aeadBackendName(), before);
  assert.deepEqual(Object.keys(r.byAead).sort(), [
    'seal_open_us_noble_aes128gcm', 'seal_open_us_noble_aes256gcm', 'seal_open_us_noble_chacha20poly1305',
    'seal_open_us_node_aes128gcm', 'seal_open_us_node_aes256gcm', 'seal_open_us_node_chacha20poly1305',
  ]);
  for (const v of Object.values(r.byAead)) assert.ok(v > 0 && Number.isFinite(v));
  assert.equal(r.backend, before === 'noble' ? '@noble/ciphers' : 'node:crypto');
  assert.ok(Object.values(r.byAead).includes(r.default));
});

test('layerBreakdown attributes TTFT, ITL and throughput to each layer at c=1', () => {
  const e = { ...row('engine', 1, 1000, 2), itl_ms_p50: 1 };
  const p = { ...row('plaintext-http', 1, 900, 5), itl_ms_p50: 1.1 };
  const x = { ...row('encrypted-http', 1, 810, 9), itl_ms_p50: 1.25 };
  const lines = layerBreakdown([e, p, x, row('engine', 16, 5000, 1)]);
  assert.equal(lines.length, 3);
  assert.match(lines[0], /TTFT p50 2\.00 ms/);
  assert.match(lines[1], /TTFT \+3\.00 ms, ITL \+0\.10 ms, tok\/s -10\.0%/);
  assert.match(lines[2], /TTFT \+4\.00 ms, ITL \+0\.15 ms, tok\/s -10\.0%/);
  const noTwin = layerBreakdown([e, x]);
  assert.match(noTwin[1], /encrypted-http - engine\): TTFT \+7\.00 ms/);
  assert.deepEqual(layerBreakdown([row('transformers-js', 1, 1000)]), []);
});

test('parseProcStatCpuMs: utime + stime (fields 14, 15) in ms, robust to spaces and parens in the name', () => {
  const fields = (comm: string) => `4242 (${comm}) S 1 4242 4242 0 -1 4194560 1000 0 0 0 250 50 0 0 20 0 11 0 100 1000000 2000`;
  assert.equal(parseProcStatCpuMs(fields('node')), 3000); // (250 + 50) ticks at 100 Hz
  assert.equal(parseProcStatCpuMs(fields('a) b (c')), 3000);
  assert.equal(parseProcStatCpuMs('garbage'), undefined);
  assert.equal(parseProcStatCpuMs('1 (x) S 1 2'), undefined);
});

test('sweepOrder: round r of every level before round r+1 of any, every request placed once', () => {
  const order = sweepOrder([{ concurrency: 1, requests: 32 }, { concurrency: 16, requests: 64 }, { concurrency: 32, requests: 128 }], 4);
  assert.deepEqual(order.map((o) => `${o.round}:${o.concurrency}`), [
    '0:1', '0:16', '0:32', '1:1', '1:16', '1:32', '2:1', '2:16', '2:32', '3:1', '3:16', '3:32',
  ]);
  for (const c of [1, 16, 32]) {
    const mine = order.filter((o) => o.concurrency === c);
    assert.equal(mine.reduce((n, o) => n + o.count, 0), { 1: 32, 16: 64, 32: 128 }[c]);
    assert.ok(mine.every((o) => o.count >= c && o.rounds === 4));
  }
  // A level with fewer rounds (too few requests to fill more) drops out of the later ones.
  const uneven = sweepOrder([{ concurrency: 16, requests: 16 }, { concurrency: 1, requests: 3 }], 4);
  assert.deepEqual(uneven.map((o) => `${o.round}:${o.concurrency}:${o.count}`), ['0:16:16', '0:1:1', '1:1:1', '2:1:1']);
  assert.deepEqual(sweepOrder([], 4), []);
});

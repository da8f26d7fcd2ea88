// Operations: the access log as JSON (--log-format json: the text line's fields, nothing more)
// and the metrics listener (--metrics-listen, off by default): Prometheus text with aggregate
// counts and latencies only, on its own port, never on the public one. The end-to-end part runs
// `sealed serve` as a process, talks to it with the SDK, and reads its log and its metrics.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { spawn } from 'node:child_process';
import { fileURLToPath } from 'node:url';
import { createLogger, formatRequestLog, formatRequestLogJson, type RequestLogRecord } from '../server/log.js';
import { parseServeConfig } from '../server/config.js';
import { Metrics, countingEngine } from '../server/metrics.js';
import { GenerationLimiter } from '../server/limiter.js';
import { SealedClient } from '../client/sdk.js';
import type { InferenceEngine, GenerateEvent } from '../server/engine.js';

const ROOT = fileURLToPath(new URL('..', import.meta.url));

test('the JSON log line holds exactly the text line\'s fields', () => {
  const rec: RequestLogRecord = { method: 'POST', route: '/v1/sessions/{sid}/ohttp', status: 200, bytesIn: 812, bytesOut: 4096, durationMs: 12.345, aborted: true };
  const at = new Date('2026-11-30T01:02:03.456Z');
  assert.equal(formatRequestLog(rec, at), '2026-11-30T01:02:03.456Z POST /v1/sessions/{sid}/ohttp 200 in=812 out=4096 ms=12.3 aborted');
  assert.deepEqual(JSON.parse(formatRequestLogJson(rec, at)), {
    time: '2026-11-30T01:02:03.456Z', method: 'POST', route: '/v1/sessions/{sid}/ohttp', status: 200, bytes_in: 812, bytes_out: 4096, ms: 12.3, aborted: true,
  });
  const odd = JSON.parse(formatRequestLogJson({ method: 'BREW', route: null, status: 404, bytesIn: -1, bytesOut: 0, durationMs: 0.04 }, at));
  assert.deepEqual(odd, { time: '2026-11-30T01:02:03.456Z', method: 'OTHER', route: '-', status: 404, bytes_in: 0, bytes_out: 0, ms: 0 });
  const lines: string[] = [];
  const log = createLogger((l) => lines.push(l), 'json');
  log.info('stopped; session keys wiped');
  log.request(rec);
  assert.deepEqual(Object.keys(JSON.parse(lines[0]!)), ['time', 'msg']);
  assert.equal(JSON.parse(lines[1]!).route, '/v1/sessions/{sid}/ohttp');
});

test('--log-format and --metrics-listen: parsed, checked, metrics off by default', () => {
  const d = parseServeConfig([], {});
  assert.ok(d !== 'help');
  assert.equal(d.logFormat, 'text');
  assert.equal(d.metricsListen, undefined, 'no metrics listener unless asked for');
  const c = parseServeConfig(['--log-format', 'json', '--metrics-listen', '127.0.0.1:9464'], {});
  assert.ok(c !== 'help');
  assert.equal(c.logFormat, 'json');
  assert.deepEqual(c.metricsListen, { host: '127.0.0.1', port: 9464 });
  const e = parseServeConfig([], { SEALED_LOG_FORMAT: 'json', SEALED_METRICS_LISTEN: '[::1]:0' });
  assert.ok(e !== 'help');
  assert.deepEqual([e.logFormat, e.metricsListen], ['json', { host: '::1', port: 0 }]);
  for (const [args, msg] of [
    [['--log-format', 'xml'], /--log-format must be text or json/],
    [['--metrics-listen', '9464'], /--metrics-listen must be HOST:PORT/],
    [['--metrics-listen', '127.0.0.1:70000'], /--metrics-listen must be HOST:PORT/],
    [['--metrics-listen', 'a b:1'], /--metrics-listen must be HOST:PORT/],
  ] as const) {
    assert.throws(() => parseServeConfig([...args], {}), msg);
  }
});

test('Metrics: counts by route template and status, latency histograms, gauges read when scraped', async () => {
  const m = new Metrics();
  const gen = new GenerationLimiter({ concurrency: 1, maxQueue: 2, queueTimeoutMs: 10_000 });
  m.setGauges({ sessionsLive: () => 3, generationsRunning: () => gen.active, generationsQueued: () => gen.queued });
  m.observeRequest({ method: 'POST', route: '/v1/sessions/{sid}/ohttp', status: 200, bytesIn: 1, bytesOut: 1, durationMs: 30 });
  m.observeRequest({ method: 'POST', route: '/v1/sessions/{sid}/ohttp', status: 200, bytesIn: 1, bytesOut: 1, durationMs: 3000 });
  m.observeRequest({ method: 'GET', route: null, status: 404, bytesIn: 0, bytesOut: 1, durationMs: 1 });
  const permit = await gen.acquire();
  const waiting = gen.acquire();
  const text = m.render();
  assert.match(text, /^sealed_http_requests_total\{method="POST",route="\/v1\/sessions\/\{sid\}\/ohttp",status="200"\} 2$/m);
  assert.match(text, /^sealed_http_requests_total\{method="GET",route="-",status="404"\} 1$/m);
  assert.match(text, /^sealed_http_request_duration_seconds_bucket\{route="\/v1\/sessions\/\{sid\}\/ohttp",le="0\.05"\} 1$/m);
  assert.match(text, /^sealed_http_request_duration_seconds_bucket\{route="\/v1\/sessions\/\{sid\}\/ohttp",le="5"\} 2$/m);
  assert.match(text, /^sealed_http_request_duration_seconds_count\{route="\/v1\/sessions\/\{sid\}\/ohttp"\} 2$/m);
  assert.match(text, /^sealed_sessions_live 3$/m);
  assert.match(text, /^sealed_generations_running 1$/m);
  assert.match(text, /^sealed_generations_queued 1$/m);
  permit.release();
  (await waiting).release();

  // The engine wrapper counts the tokens of finished generations, and changes nothing it passes on.
  const events: GenerateEvent[] = [{ type: 'delta', text: 'a' }, { type: 'done', finishReason: 'stop', promptTokens: 7, completionTokens: 5 }];
  const fake: InferenceEngine = {
    model: { id: 'm', digest: 'd', contextLength: 8 },
    generate: () => (async function* () { yield* events; })(),
    chatPrompt: () => 'p', countTokens: () => 1, close: () => {},
  };
  const counted = countingEngine(fake, m);
  const seen: GenerateEvent[] = [];
  for await (const ev of counted.generate({ prompt: 'x', maxTokens: 5 })) seen.push(ev);
  assert.deepEqual(seen, events);
  assert.equal(counted.encode, undefined, 'no encode() where the engine has none');
  assert.match(m.render(), /^sealed_tokens_generated_total 5$/m);
  assert.match(m.render(), /^sealed_prompt_tokens_total 7$/m);
});

test('sealed serve --log-format json --metrics-listen: JSON access log, metrics on their own port, nothing per client', { timeout: 120_000 }, async () => {
  const child = spawn(process.execPath, ['--import', 'tsx', 'cli/sealed.ts', 'serve', '--platform', 'simulated', '--host', '127.0.0.1', '--port', '0', '--threads', '1',
    '--log-format', 'json', '--metrics-listen', '127.0.0.1:0'], { cwd: ROOT, env: { ...process.env, TSX_DISABLE_CACHE: '1' }, stdio: ['ignore', 'pipe', 'pipe'] });
  let stdout = '';
  let stderr = '';
  child.stdout.on('data', (b: Buffer) => (stdout += b.toString()));
  child.stderr.on('data', (b: Buffer) => (stderr += b.toString()));
  const exited = new Promise<number | null>((resolve) => child.on('exit', (code) => resolve(code)));
  try {
    const end = Date.now() + 90_000;
    let m: RegExpExecArray | null = null;
    while (!(m = /listening on (http:\/\/127\.0\.0\.1:\d+)[\s\S]*metrics at (http:\/\/127\.0\.0\.1:\d+\/metrics)/.exec(stdout))) {
      if (Date.now() > end || child.exitCode !== null) throw new Error(`server did not start: ${stdout} ${stderr}`);
      await new Promise((r) => setTimeout(r, 50));
    }
    const [, base, metricsUrl] = m;
    assert.notEqual(new URL(base!).port, new URL(metricsUrl!).port);

    const client = await SealedClient.connect(base!, { allowSimulation: true });
    const r = await client.chat({ messages: [{ role: 'user', content: 'Once upon a time' }], max_tokens: 6, temperature: 0 });
    const completion = r.usage!.completion_tokens;
    assert.ok(completion > 0);
    const sid = client.verification.session;
    const nonce = client.verification.nonce;

    // The public listener has no metrics route.
    assert.equal((await fetch(`${base}/metrics`)).status, 404);
    const res = await fetch(metricsUrl!);
    assert.equal(res.status, 200);
    assert.match(res.headers.get('content-type') ?? '', /^text\/plain; version=0\.0\.4/);
    const text = await res.text();
    assert.match(text, /^sealed_http_requests_total\{method="GET",route="\/v1\/sessions\/\{sid\}\/attestation",status="200"\} 1$/m);
    assert.match(text, /^sealed_http_requests_total\{method="POST",route="\/v1\/sessions\/\{sid\}\/ohttp",status="200"\} 1$/m);
    assert.match(text, /^sealed_http_requests_total\{method="GET",route="-",status="404"\} 1$/m);
    assert.match(text, /^sealed_sessions_live 1$/m);
    assert.match(text, /^sealed_generations_running 0$/m);
    assert.match(text, /^sealed_generations_queued 0$/m);
    assert.match(text, new RegExp(`^sealed_tokens_generated_total ${completion}$`, 'm'));
    assert.match(text, /^sealed_http_request_duration_seconds_count\{route="\/v1\/sessions\/\{sid\}\/ohttp"\} 1$/m);
    for (const secret of [sid, nonce, '127.0.0.1', 'Once upon']) assert.ok(!text.includes(secret), `metrics hold no ${secret}`);
    assert.equal((await fetch(metricsUrl!.replace('/metrics', '/'))).status, 404);
    assert.equal((await fetch(metricsUrl!, { method: 'POST' })).status, 405);

    child.kill('SIGTERM');
    assert.equal(await exited, 0, stderr);
    const lines = stderr.trim().split('\n').filter((l) => l.startsWith('{'));
    const requests = lines.map((l) => JSON.parse(l)).filter((o) => 'route' in o);
    assert.ok(requests.length >= 3, stderr);
    for (const o of requests) {
      assert.deepEqual(Object.keys(o).filter((k) => k !== 'aborted'), ['time', 'method', 'route', 'status', 'bytes_in', 'bytes_out', 'ms']);
    }
    assert.ok(requests.some((o) => o.route === '/v1/sessions/{sid}/ohttp' && o.status === 200));
    for (const secret of [sid, nonce, 'Once upon']) assert.ok(!stderr.includes(secret), `the log holds no ${secret}`);
  } finally {
    if (child.exitCode === null) child.kill('SIGKILL');
  }
});

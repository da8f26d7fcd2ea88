// `sealed serve` as a command (in-process): --help, usage errors (exit 2), and failing closed
// when the platform asked for cannot give evidence (exit 1, nothing listening).
import assert from 'node:assert/strict';
import { existsSync } from 'node:fs';
import { test } from 'node:test';
import { runServe } from '../cli/commands/serve.js';

const MODEL_DIR = new URL('../models/stories260K', import.meta.url).pathname;

/** Runs the command with its output captured and an empty environment. */
async function run(...args: string[]): Promise<{ code: number; stdout: string; stderr: string }> {
  return runWithEnv({ TSX_DISABLE_CACHE: '1' }, ...args);
}

async function runWithEnv(env: Record<string, string>, ...args: string[]): Promise<{ code: number; stdout: string; stderr: string }> {
  const out = { stdout: '', stderr: '' };
  const code = await runServe(args, {
    env,
    stdout: { write: (s: string) => (out.stdout += s) },
    stderr: { write: (s: string) => (out.stderr += s) },
  });
  return { code, ...out };
}

test('sealed serve --help lists every flag with its environment variable', async () => {
  const r = await run('--help');
  assert.equal(r.code, 0);
  for (const s of ['--port', 'PORT', '--host', 'HOST', '--model-dir', '--platform', 'SEALED_PLATFORM', 'auto | sev-snp | tdx | simulated',
    '--threads', 'SEALED_THREADS', '--session-lifetime', 'SEALED_SESSION_LIFETIME', '--session-unused-timeout', '--max-sessions', '--attestation-rate', '--attestation-burst', '--attestation-rate-total', '--max-concurrent-per-session', '--max-concurrent', '--max-body-bytes',
    '--max-tokens', '--max-concurrent', '--max-queue', '--queue-timeout-ms', '--generation-timeout-ms', '--request-timeout-ms',
    '--shutdown-grace-ms', '--model-file', 'SEALED_MODEL_FILE']) {
    assert.ok(r.stdout.includes(s), s);
  }
});

test('usage errors exit 2 and name the bad flag', async () => {
  const r = await run('--platform', 'sgx');
  assert.equal(r.code, 2);
  assert.match(r.stderr, /--platform must be one of auto, sev-snp, tdx, simulated/);
  const s = await run('--max-sessions', '0');
  assert.equal(s.code, 2);
  assert.match(s.stderr, /--max-sessions/);
});

const hasTsm = existsSync('/sys/kernel/config/tsm/report');
test('without a TEE, auto and sev-snp refuse to start (no silent simulation)', { skip: hasTsm ? 'this machine has configfs-tsm' : false }, async () => {
  for (const platform of ['auto', 'sev-snp']) {
    const r = await run('--platform', platform, '--port', '0', '--threads', '1', '--model-dir', MODEL_DIR);
    assert.equal(r.code, 1, platform);
    assert.match(r.stderr, /no evidence provider/);
    assert.doesNotMatch(r.stdout, /listening/);
  }
});

test('a model directory that does not load is exit 1', async () => {
  const r = await run('--platform', 'simulated', '--port', '0', '--model-dir', '/nonexistent/model');
  assert.equal(r.code, 1);
  assert.match(r.stderr, /cannot load the model/);
});

test('from TypeScript sources with the tsx cache on, a non-simulated server refuses to start', async () => {
  const r = await runWithEnv({}, '--platform', 'sev-snp', '--port', '0', '--model-dir', MODEL_DIR);
  assert.equal(r.code, 1);
  assert.match(r.stderr, /refusing to start: tsx's compile cache is on/);
  assert.doesNotMatch(r.stdout, /listening/);
});

const VARIANTS = new URL('./fixtures/models/stories260K-variants', import.meta.url).pathname;

test('--model-file chooses among several graphs; without it, or with a wrong one, the server lists them (exit 1)', async () => {
  const none = await run('--platform', 'simulated', '--port', '0', '--threads', '1', '--model-dir', VARIANTS);
  assert.equal(none.code, 1);
  assert.match(none.stderr, /cannot load the model: onnx\/ holds 5 graphs \(model\.onnx, model_fp16\.onnx, model_q4\.onnx, model_q4f16\.onnx, model_quantized\.onnx\); choose one with --model-file/);
  const wrong = await run('--platform', 'simulated', '--port', '0', '--threads', '1', '--model-dir', VARIANTS, '--model-file', 'int8');
  assert.equal(wrong.code, 1);
  assert.match(wrong.stderr, /model file 'int8' not found; onnx\/ offers: model\.onnx, model_fp16\.onnx, model_q4\.onnx, model_q4f16\.onnx, model_quantized\.onnx/);
  // A good choice gets past loading: it fails only at the platform (no TEE here), as the bundled model does.
  const env = { TSX_DISABLE_CACHE: '1', SEALED_MODEL_FILE: 'q4' };
  const chosen = await runWithEnv(env, '--platform', 'tdx', '--port', '0', '--threads', '1', '--model-dir', VARIANTS);
  if (!hasTsm) {
    assert.equal(chosen.code, 1);
    assert.match(chosen.stderr, /no evidence provider/);
    assert.doesNotMatch(chosen.stderr, /cannot load the model/);
  }
});

test('the start-up banner names the graph served, its cache and logits types and the decode mode it needs', { timeout: 60_000 }, async () => {
  const { spawn } = await import('node:child_process');
  const root = new URL('..', import.meta.url).pathname;
  const banner = (args: string[]) => new Promise<string>((resolve, reject) => {
    const child = spawn(process.execPath, ['--import', 'tsx', 'cli/sealed.ts', 'serve', '--platform', 'simulated', '--port', '0', '--threads', '1', ...args], {
      cwd: root, env: { ...process.env, TSX_DISABLE_CACHE: '1' }, stdio: ['ignore', 'pipe', 'pipe'],
    });
    let out = '';
    const timer = setTimeout(() => child.kill('SIGKILL'), 45_000);
    child.stdout.on('data', (d: Buffer) => {
      out += d.toString();
      if (/decode mode .*\n/.test(out)) child.kill('SIGTERM');
    });
    child.on('error', reject);
    child.on('exit', () => {
      clearTimeout(timer);
      resolve(out);
    });
  });
  const q8 = await banner(['--model-dir', VARIANTS, '--model-file', 'q8']);
  assert.match(q8, /graph onnx\/model_quantized\.onnx: KV cache float32, logits float32, decode mode unbatched \(one run per sequence/);
  const fp16 = await banner(['--model-dir', VARIANTS, '--model-file', 'model_fp16.onnx']);
  assert.match(fp16, /graph onnx\/model_fp16\.onnx: KV cache float16, logits float16, decode mode slot, in a worker thread\n/);
  const gqa = await banner(['--model-dir', new URL('./fixtures/models/tiny-gqa', import.meta.url).pathname]);
  assert.match(gqa, /graph onnx\/model\.onnx: KV cache float32, logits float32, decode mode plain \(rows right-padded for GroupQueryAttention\)/);
  const main = await banner(['--model-dir', VARIANTS, '--model-file', 'model_fp16.onnx', '--engine-thread', 'main']);
  assert.match(main, /decode mode slot, on the main thread\n/);
});

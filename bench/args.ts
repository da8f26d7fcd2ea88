// Command-line options of `sealed bench`. Strict: an unknown flag or a bad
// value is an error, not a silent default.
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import { BenchError } from './errors.js';
import { MODES } from './types.js';
import type { ModeName } from './types.js';

/** True when running the compiled JS in dist/ (production has no tsx), false under tsx from the sources. */
export const RUNNING_COMPILED = !import.meta.url.endsWith('.ts');
/** The root the code runs from: the checkout, or its dist/. */
export const CODE_ROOT = path.resolve(path.dirname(fileURLToPath(import.meta.url)), '..');
/** The checkout (where models/ lives), whichever way the code runs. */
export const REPO_ROOT = RUNNING_COMPILED ? path.resolve(CODE_ROOT, '..') : CODE_ROOT;
export const DEFAULT_MODEL_DIR = path.join(REPO_ROOT, 'models', 'stories260K');

/** Node arguments that run one of this code base's entry files (`rel` without extension) in a child process. */
export function nodeEntry(rel: string): string[] {
  return RUNNING_COMPILED ? [path.join(CODE_ROOT, `${rel}.js`)] : ['--import', 'tsx', path.join(CODE_ROOT, `${rel}.ts`)];
}

export interface BenchOptions {
  help: boolean;
  modelDir: string;
  /** Which graph under the directory's onnx/ (as `sealed serve --model-file`); undefined: its only one. */
  modelFile?: string;
  threads: number;
  json?: string;
  chart?: string;
  modes: ModeName[];
  concurrency: number[];
  quick: boolean;
  /** Requests per (mode, concurrency); undefined: chosen from the concurrency. */
  requests?: number;
  maxTokens: number;
  /** Replica counts for the balancer sweep (empty: no sweep). */
  replicas: number[];
}

export const USAGE = `usage: sealed bench [options]

Measures tokens/s, time to first token and inter-token latency of the same
greedy workload through four paths, in one run so the ratios hold:
  engine           the engine in-process (no HTTP, no encryption)
  plaintext-http   the server's inner OpenAI API served in plaintext on loopback (bench only)
  encrypted-http   the real server and SDK: attestation + chunked OHTTP streaming
  transformers-js  @huggingface/transformers' own generate() on the same model
Progress goes to stderr, the table to stdout.

options:
  --model-dir DIR      model directory (default: the bundled stories260K; --model DIR too)
  --model-file NAME    which graph under DIR/onnx/ when it holds several: a file name,
                       a stem or a dtype (q4, fp16, ...), as sealed serve --model-file
  --threads N          ONNX intra-op threads for every mode (default 1)
  --modes a,b          modes to run (default: all four)
  --concurrency 1,4    concurrency levels (default 1,4,16,32; --quick: 1,16)
  --requests N         requests per mode and level (default: max(32, 4 x concurrency); --quick: max(8, concurrency))
  --max-tokens N       completion tokens per request (default 200)
  --quick              a short run (under a minute)
  --replicas 1,2,3     also measure aggregate encrypted tokens/s through HAProxy (deploy/loadbalancer)
                       in front of that many replicas, one session per stream, at the highest
                       concurrency up to 16 (needs haproxy; the replicas share this machine)
  --json FILE          write the results as JSON (docs/PROTOCOL.md's shape)
  --chart FILE         write an SVG chart of tokens/s against concurrency
  --help               this text
`;

function positiveInt(flag: string, v: string | undefined, max: number): number {
  if (v === undefined || !/^[0-9]+$/.test(v)) throw new BenchError('bad_args', `${flag} needs a positive integer`);
  const n = Number(v);
  if (n < 1 || n > max) throw new BenchError('bad_args', `${flag} must be within 1..${max}`);
  return n;
}

function value(flag: string, v: string | undefined): string {
  if (v === undefined || v.length === 0 || v.startsWith('--')) throw new BenchError('bad_args', `${flag} needs a value`);
  return v;
}

export function parseArgs(argv: readonly string[]): BenchOptions {
  const o: BenchOptions = {
    help: false, modelDir: DEFAULT_MODEL_DIR, threads: 1, modes: [...MODES], concurrency: [], quick: false, maxTokens: 200, replicas: [],
  };
  let concurrencyGiven = false;
  for (let i = 0; i < argv.length; i++) {
    const a = argv[i];
    const eq = a.indexOf('=');
    const flag = a.startsWith('--') && eq > 0 ? a.slice(0, eq) : a;
    const inline = a.startsWith('--') && eq > 0 ? a.slice(eq + 1) : undefined;
    const next = (): string | undefined => (inline !== undefined ? inline : argv[++i]);
    switch (flag) {
      case '--help': case '-h': o.help = true; break;
      case '--quick': o.quick = true; break;
      case '--model': case '--model-dir': o.modelDir = path.resolve(value(flag, next())); break;
      case '--model-file': o.modelFile = value(flag, next()); break;
      case '--threads': o.threads = positiveInt(flag, next(), 256); break;
      case '--json': o.json = value(flag, next()); break;
      case '--chart': o.chart = value(flag, next()); break;
      case '--requests': o.requests = positiveInt(flag, next(), 100_000); break;
      case '--max-tokens': o.maxTokens = positiveInt(flag, next(), 100_000); break;
      case '--modes': {
        const list = value(flag, next()).split(',');
        for (const m of list) if (!(MODES as readonly string[]).includes(m)) throw new BenchError('bad_args', `unknown mode '${m}' (modes: ${MODES.join(', ')})`);
        o.modes = MODES.filter((m) => list.includes(m));
        break;
      }
      case '--replicas': {
        const list = value(flag, next()).split(',').map((c) => positiveInt(flag, c, 3));
        o.replicas = [...new Set(list)].sort((a, b) => a - b);
        break;
      }
      case '--concurrency': {
        const list = value(flag, next()).split(',').map((c) => positiveInt(flag, c, 4096));
        o.concurrency = [...new Set(list)].sort((a, b) => a - b);
        concurrencyGiven = true;
        break;
      }
      default: throw new BenchError('bad_args', `unknown option '${a}'`);
    }
  }
  if (!concurrencyGiven) o.concurrency = o.quick ? [1, 16] : [1, 4, 16, 32];
  return o;
}

/**
 * Requests per level: every worker four times (32 at least), fewer in a quick run. A level of
 * half a second (the old 2x) let one hiccup of a shared machine move a ratio by a tenth; the
 * targets are ratios of two levels, so each must run long enough to average such hiccups out.
 */
export function requestsFor(o: BenchOptions, concurrency: number): number {
  if (o.requests !== undefined) return o.requests;
  return o.quick ? Math.max(8, concurrency) : Math.max(32, 4 * concurrency);
}

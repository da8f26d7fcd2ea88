// The CONTRACT's `--json` document: exactly its keys for each run, plus extra
// top-level keys the CONTRACT leaves room for.
import { BenchError } from './errors.js';
import { MODES } from './types.js';
import type { BenchReport, RunResult } from './types.js';

export const RUN_KEYS = [
  'mode', 'concurrency', 'requests', 'tokens', 'seconds', 'tokens_per_second',
  'ttft_ms_p50', 'ttft_ms_p95', 'itl_ms_p50', 'itl_ms_p95',
] as const;

const REQUIRED_TOP = ['model', 'threads', 'machine', 'runs'] as const;

/** JSON has no NaN: a percentile over no data is written as null. */
function num(v: number): number | null {
  return Number.isFinite(v) ? v : null;
}

/** Builds the JSON object: CONTRACT keys first, in CONTRACT order, then extras. */
export function toContractJson(report: BenchReport): Record<string, unknown> {
  const runs = report.runs.map((r) => {
    const row: Record<string, unknown> = {};
    for (const k of RUN_KEYS) row[k] = typeof r[k] === 'number' ? num(r[k] as number) : r[k];
    return row;
  });
  const out: Record<string, unknown> = { model: report.model, threads: report.threads, machine: report.machine, runs };
  const extras: (keyof BenchReport)[] = [
    'variant', 'date', 'prompt_tokens', 'max_tokens', 'session_setup_ms_p50', 'seal_open_us', 'seal_open_backend', 'outputs_identical',
  ];
  for (const k of extras) if (report[k] !== undefined) out[k] = report[k];
  for (const [k, v] of Object.entries(report.extra)) if (!(k in out) && k !== 'targets' && k !== 'errors') out[k] = num(v);
  out.targets = report.targets;
  if (report.cpu !== undefined) out.cpu = report.cpu;
  if (report.ceiling !== undefined) out.ceiling = report.ceiling;
  if (report.ceiling_longest_row !== undefined) out.ceiling_longest_row = report.ceiling_longest_row;
  if (report.engine_staggered !== undefined) out.engine_staggered = report.engine_staggered;
  if (report.neighbour !== undefined) out.neighbour = report.neighbour;
  if (report.balancer !== undefined) out.balancer = report.balancer;
  if (report.errors !== undefined) out.errors = report.errors;
  return out;
}

export function serialize(report: BenchReport): string {
  return JSON.stringify(toContractJson(report), null, 2) + '\n';
}

/**
 * Checks a parsed document against the CONTRACT shape; throws
 * BenchError('bad_output') naming the first deviation. Used by the tests and
 * before a file is written, so a broken run never produces a file that looks valid.
 */
export function validateContractShape(doc: unknown): asserts doc is { model: string; threads: number; machine: string; runs: RunResult[] } {
  const fail = (what: string): never => { throw new BenchError('bad_output', `benchmark JSON: ${what}`); };
  if (typeof doc !== 'object' || doc === null || Array.isArray(doc)) fail('not an object');
  const d = doc as Record<string, unknown>;
  for (const k of REQUIRED_TOP) if (!(k in d)) fail(`missing ${k}`);
  if (typeof d.model !== 'string' || d.model.length === 0) fail('model must be a non-empty string');
  if (!Number.isInteger(d.threads) || (d.threads as number) < 1) fail('threads must be a positive integer');
  if (typeof d.machine !== 'string' || d.machine.length === 0) fail('machine must be a non-empty string');
  if (!Array.isArray(d.runs)) fail('runs must be an array');
  (d.runs as unknown[]).forEach((run, i) => {
    if (typeof run !== 'object' || run === null || Array.isArray(run)) fail(`runs[${i}] not an object`);
    const r = run as Record<string, unknown>;
    const keys = Object.keys(r);
    if (keys.length !== RUN_KEYS.length || RUN_KEYS.some((k, j) => keys[j] !== k)) {
      fail(`runs[${i}] keys must be exactly ${RUN_KEYS.join(', ')}`);
    }
    if (!(MODES as readonly unknown[]).includes(r.mode)) fail(`runs[${i}].mode unknown`);
    for (const k of ['concurrency', 'requests', 'tokens'] as const) {
      if (!Number.isInteger(r[k]) || (r[k] as number) < 0) fail(`runs[${i}].${k} must be a non-negative integer`);
    }
    for (const k of RUN_KEYS.slice(4)) {
      const v = r[k];
      if (v !== null && (typeof v !== 'number' || !Number.isFinite(v) || v < 0)) fail(`runs[${i}].${k} must be a non-negative number or null`);
    }
  });
}

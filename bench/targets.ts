// The targets, evaluated on ratios measured in the same run. Pure.
import type { ModeName, RunResult, TargetResult } from './types.js';

function tps(runs: readonly RunResult[], mode: ModeName, pick: (c: number) => boolean): number | null {
  const matching = runs.filter((r) => r.mode === mode && pick(r.concurrency) && r.tokens > 0);
  if (matching.length === 0) return null;
  return Math.max(...matching.map((r) => r.tokens_per_second));
}

function ratio(a: number | null, b: number | null): number | null {
  return a === null || b === null || b === 0 ? null : a / b;
}

function target(name: string, value: number | null, comparison: '>=' | '<=', threshold: number): TargetResult {
  const v = value === null || !Number.isFinite(value) ? null : value;
  return { name, value: v, comparison, threshold, pass: v === null ? null : comparison === '>=' ? v >= threshold : v <= threshold };
}

/**
 * TTFT is judged on the product path (encrypted-http at concurrency 1), falling
 * back to the engine when the encrypted mode was not run, and says which.
 */
export function evaluateTargets(runs: readonly RunResult[], sessionSetupMs: number | undefined): TargetResult[] {
  const one = (c: number): boolean => c === 1;
  const many = (c: number): boolean => c >= 16;
  const ttftRun = runs.find((r) => r.mode === 'encrypted-http' && r.concurrency === 1)
    ?? runs.find((r) => r.mode === 'engine' && r.concurrency === 1);
  return [
    target('encrypted-http / engine, c=1', ratio(tps(runs, 'encrypted-http', one), tps(runs, 'engine', one)), '>=', 0.9),
    target('engine / transformers-js, c=1', ratio(tps(runs, 'engine', one), tps(runs, 'transformers-js', one)), '>=', 1.0),
    target('encrypted-http c>=16 / c=1', ratio(tps(runs, 'encrypted-http', many), tps(runs, 'encrypted-http', one)), '>=', 4),
    target(`TTFT p50 ms (${ttftRun?.mode ?? 'encrypted-http'}, c=1)`, ttftRun?.ttft_ms_p50 ?? null, '<=', 10),
    target('session set-up p50 ms', sessionSetupMs ?? null, '<=', 50),
  ];
}

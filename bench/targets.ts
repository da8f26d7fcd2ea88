// The targets, evaluated on ratios measured in the same run. Pure.
import type { CeilingRun } from './ceiling.js';
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
  const v = value === null || !Number.isFinite(value) ? null : Math.round(value * 1000) / 1000;
  return { name, value: v, comparison, threshold, pass: v === null ? null : comparison === '>=' ? v >= threshold : v <= threshold };
}

/**
 * TTFT is judged on the product path (encrypted-http at concurrency 1), falling
 * back to the engine when the encrypted mode was not run, and says which.
 */
export function evaluateTargets(runs: readonly RunResult[], sessionSetupMs: number | undefined, ceiling?: readonly CeilingRun[]): TargetResult[] {
  const one = (c: number): boolean => c === 1;
  const many = (c: number): boolean => c >= 16;
  const at = (n: number) => (c: number): boolean => c === n;
  const ceiling16 = ceiling?.find((r) => r.batch === 16)?.tokens_per_second ?? null;
  const ttftRun = runs.find((r) => r.mode === 'encrypted-http' && r.concurrency === 1)
    ?? runs.find((r) => r.mode === 'engine' && r.concurrency === 1);
  return [
    target('encrypted-http / engine, c=1', ratio(tps(runs, 'encrypted-http', one), tps(runs, 'engine', one)), '>=', 0.9),
    target('engine / transformers-js, c=1', ratio(tps(runs, 'engine', one), tps(runs, 'transformers-js', one)), '>=', 1.0),
    target('encrypted-http c>=16 / c=1', ratio(tps(runs, 'encrypted-http', many), tps(runs, 'encrypted-http', one)), '>=', 4),
    target('encrypted-http / engine, c=16', ratio(tps(runs, 'encrypted-http', at(16)), tps(runs, 'engine', at(16))), '>=', 0.8),
    target('engine c=32 / engine c=16', ratio(tps(runs, 'engine', at(32)), tps(runs, 'engine', at(16))), '>=', 1),
    target('engine c=16 / runtime ceiling b=16', ratio(tps(runs, 'engine', at(16)), ceiling16), '>=', 0.85),
    target(`TTFT p50 ms (${ttftRun?.mode ?? 'encrypted-http'}, c=1)`, ttftRun?.ttft_ms_p50 ?? null, '<=', 5),
    target('session set-up p50 ms', sessionSetupMs ?? null, '<=', 50),
    target('encrypted-http tok/s, c=32 (reach)', tps(runs, 'encrypted-http', at(32)), '>=', 10000),
  ];
}

/**
 * Where the time goes at concurrency 1, layer by layer: the engine alone,
 * what HTTP + JSON + SSE add (plaintext-http minus engine), and what
 * attestation-bound encryption adds on top (encrypted-http minus
 * plaintext-http). Lines only for the layers measured.
 */
export function layerBreakdown(runs: readonly RunResult[]): string[] {
  const at1 = (mode: ModeName): RunResult | undefined => runs.find((r) => r.mode === mode && r.concurrency === 1 && r.tokens > 0);
  const e = at1('engine');
  const p = at1('plaintext-http');
  const x = at1('encrypted-http');
  const ms = (v: number): string => `${v >= 0 ? '+' : ''}${v.toFixed(2)} ms`;
  const pct = (a: number, b: number): string => `${((a / b - 1) * 100).toFixed(1)}%`;
  const lines: string[] = [];
  if (e) lines.push(`engine alone: TTFT p50 ${e.ttft_ms_p50.toFixed(2)} ms, ITL p50 ${e.itl_ms_p50.toFixed(3)} ms, ${e.tokens_per_second} tok/s`);
  if (e && p) lines.push(`HTTP + JSON + SSE (plaintext-http - engine): TTFT ${ms(p.ttft_ms_p50 - e.ttft_ms_p50)}, ITL ${ms(p.itl_ms_p50 - e.itl_ms_p50)}, tok/s ${pct(p.tokens_per_second, e.tokens_per_second)}`);
  if (p && x) lines.push(`OHTTP + HPKE + BHTTP (encrypted-http - plaintext-http): TTFT ${ms(x.ttft_ms_p50 - p.ttft_ms_p50)}, ITL ${ms(x.itl_ms_p50 - p.itl_ms_p50)}, tok/s ${pct(x.tokens_per_second, p.tokens_per_second)}`);
  else if (e && x) lines.push(`HTTP + encryption (encrypted-http - engine): TTFT ${ms(x.ttft_ms_p50 - e.ttft_ms_p50)}, ITL ${ms(x.itl_ms_p50 - e.itl_ms_p50)}, tok/s ${pct(x.tokens_per_second, e.tokens_per_second)}`);
  return lines;
}

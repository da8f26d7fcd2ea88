// The benchmark's orchestration: open every mode, warm each up, then sweep the
// concurrency levels with the modes interleaved at each level, so slow drift on
// a shared machine touches every mode alike and the ratios hold.
import { runBalancerSweep } from './balancer.js';
import path from 'node:path';
import type { BenchOptions } from './args.js';
import { requestsFor } from './args.js';
import { BenchError } from './errors.js';
import { describeMachine } from './machine.js';
import { aggregate, runClosedLoop, sweepOrder, timeRequest } from './measure.js';
import { compareOutputs } from './outputs.js';
import { measureSealOpen } from './seal-cost.js';
import { createEngine, engineDriver } from './modes/engine.js';
import { chooseGraph } from '../engine/model-files.js';
import { createPlaintextHttpDriver } from './modes/plaintext-http.js';
import { createTransformersJsDriver } from './modes/transformers-js.js';
import { round } from './stats.js';
import { evaluateTargets } from './targets.js';
import { ceilingRun, openCeiling, type Ceiling } from './ceiling.js';
import { measureStaggered } from './staggered.js';
import { startNeighbour } from './neighbour.js';
import { MODES } from './types.js';
import os from 'node:os';
import process from 'node:process';
import type { BenchReport, Completed, CpuRow, ModeDriver, ModeName, RequestSample, RunResult, Workload } from './types.js';

/**
 * Turns each mode takes at one concurrency level, spread over the sweep (a round is never cut
 * below one full batch: splitRounds).
 */
const MAX_ROUNDS = 4;

/** 20 tokens with BOS under the bundled model's tokenizer; greedy continues it for 200 tokens without EOS. */
export const PROMPT = 'Once upon a time, there was a little girl named Lily. She loved to';

export type Progress = (message: string, transient?: boolean) => void;

async function openDriver(mode: ModeName, o: BenchOptions, maxBatch: number): Promise<{ driver: ModeDriver; modelId?: string }> {
  switch (mode) {
    case 'engine': {
      const engine = await createEngine({ modelDir: o.modelDir, modelFile: o.modelFile, threads: o.threads, maxBatch });
      return { driver: engineDriver(engine), modelId: engine.model.id };
    }
    case 'plaintext-http':
      return { driver: await createPlaintextHttpDriver({ modelDir: o.modelDir, modelFile: o.modelFile, threads: o.threads, maxBatch }) };
    case 'encrypted-http': {
      const { createEncryptedHttpDriver } = await import('./modes/encrypted-http.js');
      const work: Workload = { prompt: PROMPT, maxTokens: o.maxTokens };
      return { driver: await createEncryptedHttpDriver({ modelDir: o.modelDir, modelFile: o.modelFile, threads: o.threads, maxBatch, work }) };
    }
    case 'transformers-js':
      return { driver: await createTransformersJsDriver({ modelDir: o.modelDir, modelFile: o.modelFile, threads: o.threads }) };
  }
}

/** Short requests one after another in the warm-up: enough for the JIT to compile a request's whole path. */
const WARM_SEQUENTIAL = 24;

/**
 * Two full requests (the first also gives the text for the cross-mode check),
 * then one burst at the top concurrency with short completions (batch shapes,
 * pools, JIT), then short requests one at a time: a request's set-up path
 * (decapsulation, parsing, the first seal) runs once per request, so the burst
 * alone leaves it cold, and TTFT at concurrency 1 would time the compiler.
 */
async function warmUp(driver: ModeDriver, work: Workload, maxConcurrency: number): Promise<Completed> {
  const first = await driver.request(work, () => {}, true);
  await timeRequest(driver, work);
  const short = { ...work, maxTokens: Math.min(work.maxTokens, 16) };
  await Promise.all(Array.from({ length: maxConcurrency }, () => timeRequest(driver, short)));
  for (let i = 0; i < WARM_SEQUENTIAL; i++) await timeRequest(driver, short);
  return first;
}

function describeError(err: unknown): { code: string; message: string } {
  if (err instanceof BenchError) return { code: err.code, message: err.message };
  const e = err as { code?: unknown; message?: unknown };
  return { code: typeof e?.code === 'string' ? e.code : 'error', message: typeof e?.message === 'string' ? e.message : String(err) };
}

export async function runBench(o: BenchOptions, progress: Progress): Promise<BenchReport> {
  const work: Workload = { prompt: PROMPT, maxTokens: o.maxTokens };
  const maxConcurrency = Math.max(...o.concurrency);
  const report: BenchReport = {
    model: path.basename(o.modelDir),
    threads: o.threads,
    machine: describeMachine(),
    runs: [],
    date: new Date().toISOString(),
    max_tokens: o.maxTokens,
    // The machine's load when the run began and ended: numbers from a busy machine should say so.
    extra: { load_avg_1m_start: round(os.loadavg()[0], 2) },
    targets: [],
  };
  // Which graph every mode runs, named in the report; a directory with several and no choice stops here.
  try {
    report.variant = await chooseGraph(o.modelDir, o.modelFile);
  } catch (err) {
    throw new BenchError('bad_args', err instanceof Error ? err.message : String(err));
  }
  const errors: NonNullable<BenchReport['errors']> = [];
  const drivers: ModeDriver[] = [];
  const texts = new Map<ModeName, string>();
  const cpuRows: CpuRow[] = [];
  const promptCounts = new Map<ModeName, number>();
  let ceiling: Ceiling | null = null;
  let ceilingWidth: number | undefined;
  const ceilingMs = new Map<number, number[]>();
  try {
    // Start every mode at once (model loads, server children booting); nothing is timed yet.
    progress(`starting ${o.modes.join(', ')}`);
    const started = await Promise.allSettled(o.modes.map((mode) => openDriver(mode, o, maxConcurrency)));
    try {
      // Past width: the prompt plus half the completion, the workload's mean length.
      ceiling = await openCeiling({ modelDir: o.modelDir, modelFile: o.modelFile, threads: o.threads, width: 20 + Math.round(o.maxTokens / 2) });
      ceilingWidth = ceiling.width;
    } catch (err) {
      errors.push({ mode: 'runtime-ceiling', ...describeError(err) });
    }
    // Warm up one mode at a time, so each warms on a machine the others leave alone.
    for (const [i, mode] of o.modes.entries()) {
      const s = started[i];
      if (s.status === 'rejected') {
        errors.push({ mode, ...describeError(s.reason) });
        progress(`${mode}: unavailable (${describeError(s.reason).code}: ${describeError(s.reason).message})`);
        continue;
      }
      const { driver, modelId } = s.value;
      if (modelId) report.model = modelId;
      progress(`${mode}: warming up`);
      try {
        const first = await warmUp(driver, work, maxConcurrency);
        if (first.text !== undefined) texts.set(mode, first.text);
        if (first.promptTokens !== undefined) promptCounts.set(mode, first.promptTokens);
        drivers.push(driver);
      } catch (err) {
        errors.push({ mode, ...describeError(err) });
        progress(`${mode}: failed in warm-up (${describeError(err).code}: ${describeError(err).message})`);
        await driver.close().catch(() => undefined);
      }
    }
    // Every mode must have seen the same prompt; the report names the count only when they agree.
    const counts = [...new Set(promptCounts.values())];
    if (counts.length === 1) report.prompt_tokens = counts[0];
    else if (counts.length > 1) {
      errors.push({ mode: [...promptCounts.keys()].join(','), code: 'prompt_mismatch', message: `modes counted different prompt lengths: ${[...promptCounts].map(([m, n]) => `${m} ${n}`).join(', ')}` });
    }
    const check = compareOutputs(texts);
    report.outputs_identical = check.identical;
    if (!check.identical) {
      errors.push({ mode: check.differing.join(','), code: 'output_mismatch', message: `greedy output differs from ${check.reference}'s` });
      progress(`WARNING: greedy output of ${check.differing.join(', ')} differs from ${check.reference}'s`);
    }
    // Every level's rounds are spread over the whole sweep: round 1 of every level (each mode in
    // turn), then round 2 of every level, and so on. The targets are ratios between modes at a
    // level and between levels, so drift on a shared machine must land on both sides of each.
    type Acc = { samples: RequestSample[]; seconds: number; benchCpuUs: number; serverCpuMs?: number; serverMainCpuMs?: number };
    const measured = new Map<number, Map<ModeDriver, Acc>>(o.concurrency.map((c) => [c, new Map()]));
    const order = sweepOrder(o.concurrency.map((c) => ({ concurrency: c, requests: requestsFor(o, c) })), MAX_ROUNDS);
    for (const { concurrency: c, round, rounds, count } of order) {
      const requests = requestsFor(o, c);
      if (ceiling) {
        try {
          // As many steps as the engine runs for this round's tokens.
          const { stepMs } = await ceiling.measure(c, Math.min(1000, Math.ceil((count * o.maxTokens) / c)));
          ceilingMs.set(c, [...(ceilingMs.get(c) ?? []), ...stepMs]);
        } catch (err) {
          errors.push({ mode: 'runtime-ceiling', ...describeError(err) });
          await ceiling.close();
          ceiling = null;
        }
      }
      const atLevel = measured.get(c)!;
      for (const driver of [...drivers]) {
        try {
          const acc = atLevel.get(driver) ?? { samples: [], seconds: 0, benchCpuUs: 0, serverCpuMs: 0, serverMainCpuMs: 0 };
          const before = acc.samples.length;
          const serverBefore = await driver.serverCpuMs?.();
          const mainBefore = await driver.serverMainCpuMs?.();
          const cpuBefore = process.cpuUsage();
          const { samples, seconds } = await runClosedLoop(driver, work, c, count, (done) => {
            progress(`${driver.name} c=${c} round ${round + 1}/${rounds}: ${before + done}/${requests} requests`, true);
          });
          const cpu = process.cpuUsage(cpuBefore);
          const serverAfter = await driver.serverCpuMs?.();
          const mainAfter = await driver.serverMainCpuMs?.();
          acc.samples.push(...samples);
          acc.seconds += seconds;
          acc.benchCpuUs += cpu.user + cpu.system;
          acc.serverCpuMs = serverBefore !== undefined && serverAfter !== undefined && acc.serverCpuMs !== undefined
            ? acc.serverCpuMs + (serverAfter - serverBefore) : undefined;
          acc.serverMainCpuMs = mainBefore !== undefined && mainAfter !== undefined && acc.serverMainCpuMs !== undefined
            ? acc.serverMainCpuMs + (mainAfter - mainBefore) : undefined;
          atLevel.set(driver, acc);
        } catch (err) {
          errors.push({ mode: driver.name, ...describeError(err) });
          progress(`${driver.name} c=${c}: failed (${describeError(err).code}); dropping the mode`);
          drivers.splice(drivers.indexOf(driver), 1);
          // A mode that failed is void at every level, not only this one.
          for (const m of measured.values()) m.delete(driver);
          await driver.close().catch(() => undefined);
        }
      }
    }
    for (const c of o.concurrency) {
      for (const [driver, { samples, seconds, benchCpuUs, serverCpuMs, serverMainCpuMs }] of measured.get(c)!) {
        const row = aggregate(driver.name, c, samples, seconds);
        report.runs.push(row);
        if (row.tokens > 0) {
          cpuRows.push({
            mode: driver.name,
            concurrency: c,
            bench_cpu_us_per_token: round(benchCpuUs / row.tokens, 1),
            server_cpu_us_per_token: serverCpuMs === undefined || driver.serverCpuMs === undefined ? null : round((serverCpuMs * 1000) / row.tokens, 1),
            server_main_cpu_us_per_token: serverMainCpuMs === undefined || driver.serverMainCpuMs === undefined ? null : round((serverMainCpuMs * 1000) / row.tokens, 1),
          });
        }
        progress(`${driver.name} c=${c}: ${row.tokens_per_second} tok/s, ttft p50 ${row.ttft_ms_p50} ms`);
      }
    }
    for (const driver of drivers) {
      const extra = await driver.extras?.().catch((err: unknown) => {
        errors.push({ mode: driver.name, ...describeError(err) });
        return {} as Record<string, number>;
      });
      const { session_setup_ms_p50: setup, ...rest } = roundAll(extra ?? {});
      if (setup !== undefined) report.session_setup_ms_p50 = setup;
      Object.assign(report.extra, rest);
    }
    const engineDriver = drivers.find((d) => d.name === 'engine');
    const engineAt = report.runs.find((r) => r.mode === 'engine' && r.concurrency === STAGGERED_CONCURRENCY);
    if (engineDriver && engineAt && Number.isFinite(engineAt.itl_ms_p50)) {
      try {
        progress(`engine c=${STAGGERED_CONCURRENCY}, starts spread over one request`);
        // One request's length at this level, spread evenly over the workers.
        const spread = (o.maxTokens * engineAt.itl_ms_p50) / STAGGERED_CONCURRENCY;
        const run = await measureStaggered(engineDriver, work, STAGGERED_CONCURRENCY, STAGGERED_PER_WORKER, spread);
        if (run) report.engine_staggered = run;
      } catch (err) {
        errors.push({ mode: 'engine-staggered', ...describeError(err) });
      }
    }
    if (ceiling) {
      try {
        progress('the runtime beside a busy core');
        report.neighbour = await measureNeighbour(ceiling);
      } catch (err) {
        errors.push({ mode: 'neighbour', ...describeError(err) });
      }
      if (o.concurrency.includes(LONGEST_ROW_BATCH)) {
        try {
          progress('the runtime with every row as long as the longest');
          const width = (report.prompt_tokens ?? 20) + o.maxTokens;
          report.ceiling_longest_row = ceilingRun(LONGEST_ROW_BATCH, width, (await ceiling.measure(LONGEST_ROW_BATCH, LONGEST_ROW_STEPS, width)).stepMs);
        } catch (err) {
          errors.push({ mode: 'runtime-ceiling', ...describeError(err) });
        }
      }
    }
    try {
      progress('seal + open of one 100-byte chunk');
      const cost = await measureSealOpen();
      report.seal_open_us = round(cost.default, 2);
      report.seal_open_backend = cost.backend;
      Object.assign(report.extra, roundAll(cost.byAead));
    } catch (err) {
      errors.push({ mode: 'seal-open', ...describeError(err) });
    }
  } finally {
    for (const driver of drivers) await driver.close().catch(() => undefined);
    await ceiling?.close();
  }
  if (ceilingMs.size > 0 && ceilingWidth !== undefined) report.ceiling = [...ceilingMs].map(([b, ms]) => ceilingRun(b, ceilingWidth!, ms));
  if (o.replicas.length > 0) {
    // After every mode's drivers are gone, so the replicas have the machine to themselves.
    const c = Math.max(...o.concurrency.filter((x) => x <= 16), Math.min(...o.concurrency));
    try {
      report.balancer = await runBalancerSweep(
        { replicas: o.replicas, concurrency: c, requests: requestsFor(o, c), threads: o.threads, modelDir: o.modelDir, modelFile: o.modelFile, work },
        progress,
      );
    } catch (err) {
      errors.push({ mode: 'balancer', ...describeError(err) });
    }
  }
  report.runs.sort((a: RunResult, b: RunResult) => MODES.indexOf(a.mode) - MODES.indexOf(b.mode) || a.concurrency - b.concurrency);
  report.extra.load_avg_1m_end = round(os.loadavg()[0], 2);
  report.targets = evaluateTargets(report.runs, report.session_setup_ms_p50, report.ceiling);
  cpuRows.sort((a, b) => MODES.indexOf(a.mode) - MODES.indexOf(b.mode) || a.concurrency - b.concurrency);
  if (cpuRows.length > 0) report.cpu = cpuRows;
  if (errors.length > 0) report.errors = errors;
  return report;
}

/** Steps per side of the neighbour comparison: a few hundred ms each at batch 1. */
const NEIGHBOUR_STEPS = 1500;
/**
 * The ceiling again at the batch of the c=16 target, with every row as long as a request's last
 * step (prompt plus completion): the padded cache a batch pays for when its rows started at
 * different times, as a server's do, and an in-process wave started together does not.
 */
const LONGEST_ROW_BATCH = 16;
/**
 * The engine again at the c=16 target's level with its workers' starts spread over one request,
 * as a server's requests arrive (bench/staggered.ts), four requests each.
 */
const STAGGERED_CONCURRENCY = 16;
const STAGGERED_PER_WORKER = 4;
const LONGEST_ROW_STEPS = 400;

/** The batch-1 step alone, then beside a spinning thread, then alone again (drift lands on both sides). */
async function measureNeighbour(ceiling: Ceiling): Promise<NonNullable<BenchReport['neighbour']>> {
  const half = NEIGHBOUR_STEPS / 2;
  const before = (await ceiling.measure(1, half)).stepMs;
  const neighbour = await startNeighbour();
  let busy: number[];
  try {
    busy = (await ceiling.measure(1, NEIGHBOUR_STEPS)).stepMs;
  } finally {
    await neighbour.stop();
  }
  const after = (await ceiling.measure(1, half)).stepMs;
  return { alone: ceilingRun(1, ceiling.width, [...before, ...after]), beside_busy_core: ceilingRun(1, ceiling.width, busy) };
}

function roundAll(values: Record<string, number>): Record<string, number> {
  return Object.fromEntries(Object.entries(values).map(([k, v]) => [k, round(v, 2)]));
}

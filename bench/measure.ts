// Turns per-request timings into one CONTRACT run row, and drives a closed
// loop of requests at a fixed concurrency.
import { gaps, percentile, round } from './stats.js';
import type { ModeDriver, ModeName, RequestSample, RunResult, Workload } from './types.js';

/** Aggregates samples measured over `seconds` of wall time into one run row. */
export function aggregate(mode: ModeName, concurrency: number, samples: readonly RequestSample[], seconds: number): RunResult {
  const ttft: number[] = [];
  const itl: number[] = [];
  let tokens = 0;
  for (const s of samples) {
    tokens += s.tokens;
    if (s.eventMs.length > 0) ttft.push(s.eventMs[0] - s.startMs);
    itl.push(...gaps(s.eventMs));
  }
  return {
    mode,
    concurrency,
    requests: samples.length,
    tokens,
    seconds: round(seconds, 4),
    tokens_per_second: seconds > 0 ? round(tokens / seconds, 1) : 0,
    ttft_ms_p50: round(percentile(ttft, 50), 3),
    ttft_ms_p95: round(percentile(ttft, 95), 3),
    itl_ms_p50: round(percentile(itl, 50), 3),
    itl_ms_p95: round(percentile(itl, 95), 3),
  };
}

/** Runs one request through a driver and records when each piece arrived. */
export async function timeRequest(driver: ModeDriver, work: Workload): Promise<RequestSample> {
  const eventMs: number[] = [];
  const startMs = performance.now();
  const { tokens } = await driver.request(work, () => { eventMs.push(performance.now()); });
  return { startMs, eventMs, endMs: performance.now(), tokens };
}

/**
 * A closed loop: `concurrency` workers each start their next request as soon
 * as the previous one ends, until `requests` have been issued. Returns the
 * samples and the wall time from the first start to the last end.
 */
export async function runClosedLoop(
  driver: ModeDriver,
  work: Workload,
  concurrency: number,
  requests: number,
  onDone?: (done: number) => void,
): Promise<{ samples: RequestSample[]; seconds: number }> {
  const samples: RequestSample[] = [];
  let issued = 0;
  let failed = false;
  const t0 = performance.now();
  const worker = async (): Promise<void> => {
    // One failure stops every worker from issuing more: the run is void.
    while (issued < requests && !failed) {
      issued++;
      try {
        samples.push(await timeRequest(driver, work));
      } catch (err) {
        failed = true;
        throw err;
      }
      onDone?.(samples.length);
    }
  };
  await Promise.all(Array.from({ length: Math.min(concurrency, requests) }, worker));
  return { samples, seconds: (performance.now() - t0) / 1000 };
}

/**
 * Splits `requests` into at most `maxRounds` rounds of at least `concurrency`
 * requests each (a round shorter than the concurrency would never fill the
 * batch), spreading any remainder over the first rounds. Pure.
 */
export function splitRounds(requests: number, concurrency: number, maxRounds: number): number[] {
  const rounds = Math.max(1, Math.min(maxRounds, Math.floor(requests / Math.max(1, concurrency))));
  const base = Math.floor(requests / rounds);
  return Array.from({ length: rounds }, (_, i) => base + (i < requests % rounds ? 1 : 0));
}

/**
 * The sweep's order: round 1 of every level, then round 2 of every level, and so on (a level
 * with fewer rounds drops out), so drift on a shared machine lands on both sides of every ratio
 * between levels. Each entry is one round of one level: its concurrency, its round number and
 * its request count. Pure.
 */
export function sweepOrder(levels: readonly { concurrency: number; requests: number }[], maxRounds: number): { concurrency: number; round: number; rounds: number; count: number }[] {
  const split = levels.map((l) => ({ concurrency: l.concurrency, rounds: splitRounds(l.requests, l.concurrency, maxRounds) }));
  const out: { concurrency: number; round: number; rounds: number; count: number }[] = [];
  const most = Math.max(0, ...split.map((s) => s.rounds.length));
  for (let round = 0; round < most; round++) {
    for (const s of split) {
      const count = s.rounds[round];
      if (count !== undefined) out.push({ concurrency: s.concurrency, round, rounds: s.rounds.length, count });
    }
  }
  return out;
}

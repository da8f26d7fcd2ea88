// A closed loop whose workers start one after another, spread over one request's length, as a
// server's requests arrive: its rows are then of every length at once, where a wave started
// together has rows of one length. Measured over the window in which every worker was running,
// so neither the spread-out start nor the drain at the end counts.
import type { ModeDriver, Workload } from './types.js';

export interface StaggeredRun {
  concurrency: number;
  /** Milliseconds between one worker's start and the next one's. */
  spread_ms: number;
  requests: number;
  /** Tokens delivered inside the window, and the window's length. */
  tokens: number;
  seconds: number;
  tokens_per_second: number;
}

/**
 * The window in which every worker was running: from the last worker's first start to the first
 * worker's last end (null when they never overlapped), and how many of the token times fall in
 * it. Pure.
 */
export function steadyWindow(starts: readonly number[], ends: readonly number[], tokenMs: readonly number[]): { tokens: number; seconds: number } | null {
  if (starts.length === 0 || starts.length !== ends.length) return null;
  const from = Math.max(...starts);
  const to = Math.min(...ends);
  if (!(to > from)) return null;
  let tokens = 0;
  for (const t of tokenMs) if (t >= from && t < to) tokens++;
  return { tokens, seconds: (to - from) / 1000 };
}

/**
 * `concurrency` workers, worker i starting i x `spreadMs` late, each running `perWorker`
 * requests back to back. Null when the workers never all ran at once (too few requests).
 */
export async function measureStaggered(
  driver: ModeDriver,
  work: Workload,
  concurrency: number,
  perWorker: number,
  spreadMs: number,
): Promise<StaggeredRun | null> {
  const tokenMs: number[] = [];
  const starts: number[] = new Array(concurrency).fill(0);
  const ends: number[] = new Array(concurrency).fill(0);
  const onToken = (): void => {
    tokenMs.push(performance.now());
  };
  await Promise.all(
    Array.from({ length: concurrency }, async (_, i) => {
      await new Promise((r) => setTimeout(r, i * spreadMs));
      starts[i] = performance.now();
      for (let k = 0; k < perWorker; k++) await driver.request(work, onToken);
      ends[i] = performance.now();
    }),
  );
  const w = steadyWindow(starts, ends, tokenMs);
  if (!w || w.tokens === 0) return null;
  return {
    concurrency,
    spread_ms: Math.round(spreadMs * 100) / 100,
    requests: concurrency * perWorker,
    tokens: w.tokens,
    seconds: Math.round(w.seconds * 10_000) / 10_000,
    tokens_per_second: Math.round((w.tokens / w.seconds) * 10) / 10,
  };
}

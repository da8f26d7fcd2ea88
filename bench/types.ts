import type { BalancerRun } from './balancer.js';
// Shapes shared by the benchmark's modules.

export const MODES = ['engine', 'plaintext-http', 'encrypted-http', 'transformers-js'] as const;
export type ModeName = (typeof MODES)[number];

/** One row of the CONTRACT's `runs` array, keys in CONTRACT order. */
export interface RunResult {
  mode: ModeName;
  concurrency: number;
  requests: number;
  tokens: number;
  seconds: number;
  tokens_per_second: number;
  ttft_ms_p50: number;
  ttft_ms_p95: number;
  itl_ms_p50: number;
  itl_ms_p95: number;
}

/** What one request measured, in milliseconds on the performance clock. */
export interface RequestSample {
  startMs: number;
  /** Arrival time of each streamed piece of output (one per token where the stream allows). */
  eventMs: number[];
  endMs: number;
  /** Completion tokens, as the producer counted them. */
  tokens: number;
}

/** A fixed, deterministic workload: the same for every mode. */
export interface Workload {
  prompt: string;
  maxTokens: number;
}

export interface Completed {
  tokens: number;
  text?: string;
  /** Prompt tokens as the producer counted them (engine done event, usage chunk, input tensor). */
  promptTokens?: number;
}

/**
 * What a mode offers the runner: one streamed greedy completion at a time
 * (called concurrently up to the sweep's concurrency), plus its own extras.
 */
export interface ModeDriver {
  readonly name: ModeName;
  /**
   * Runs one request; calls onToken() as each piece of output arrives.
   * Resolves to the completion tokens and, when `wantText` (or when it costs
   * nothing extra), the completion text for the cross-mode output check.
   */
  request(work: Workload, onToken: () => void, wantText?: boolean): Promise<Completed>;
  /** CPU ms used so far by the mode's server process, when it has its own (child servers). */
  serverCpuMs?(): Promise<number | undefined>;
  /** The same for that process's main thread alone. */
  serverMainCpuMs?(): Promise<number | undefined>;
  /** Extra numbers this mode can report (session set-up, server RSS, ...). */
  extras?(): Promise<Record<string, number>>;
  close(): Promise<void>;
}

/** Where the CPU went during one run: this process (client, or everything in-process) and the server child. */
export interface CpuRow {
  mode: ModeName;
  concurrency: number;
  bench_cpu_us_per_token: number;
  server_cpu_us_per_token: number | null;
  /** Of which the server's main thread (HTTP, JSON, sealing, writes); the rest is the engine's thread and helpers. */
  server_main_cpu_us_per_token?: number | null;
}

export interface TargetResult {
  name: string;
  value: number | null;
  threshold: number;
  comparison: '>=' | '<=';
  /** null when the run lacks what the target needs (a mode not measured). */
  pass: boolean | null;
}

export interface BenchReport {
  model: string;
  /** The graph measured under the model directory's onnx/, e.g. "model_q4.onnx". */
  variant?: string;
  threads: number;
  machine: string;
  runs: RunResult[];
  date: string;
  prompt_tokens?: number;
  max_tokens: number;
  session_setup_ms_p50?: number;
  seal_open_us?: number;
  /** The AEAD implementation behind seal_open_us. */
  seal_open_backend?: string;
  /** Whether every mode's greedy completion was the same text (the check that they did the same work). */
  outputs_identical?: boolean;
  /** Further numbers modes report (server RSS, ...), written as top-level keys. */
  extra: Record<string, number>;
  targets: TargetResult[];
  cpu?: CpuRow[];
  /** The runtime's bare batched decode step at each concurrency level (bench/ceiling.ts). */
  ceiling?: import('./ceiling.js').CeilingRun[];
  /** The batch-16 step with every row as long as the longest a request reaches (bench/run.ts, LONGEST_ROW_BATCH). */
  ceiling_longest_row?: import('./ceiling.js').CeilingRun;
  /** The engine at 16 with its workers' starts spread over one request (bench/staggered.ts). */
  engine_staggered?: import('./staggered.js').StaggeredRun;
  /** The batch-1 step alone and beside a thread spinning on another core, back to back (bench/neighbour.ts). */
  neighbour?: { alone: import('./ceiling.js').CeilingRun; beside_busy_core: import('./ceiling.js').CeilingRun };
  /** `--replicas`: aggregate encrypted tokens/s through the load balancer with 1, 2, 3 replicas. */
  balancer?: BalancerRun[];
  errors?: { mode: string; code: string; message: string }[];
}

// The runtime's own ceiling, a reference line for the engine: a bare loop of batched decode
// steps (`session.run` with fixed feeds, nothing else) on the same graph and thread count.
// What the engine adds per step (scheduling, cache upkeep, sampling, detokenizing) is the gap
// between this and the engine's own rate at the same batch size.
import { loadModelDir, type LoadedModel } from '../engine/model-dir.js';
import { ort } from '../engine/ort.js';
import { chooseDecoding } from '../engine/runner.js';
import { median } from './stats.js';

export interface CeilingRun {
  batch: number;
  /** Past columns every row had: the same for all rows, as in a batch whose rows started together. */
  width: number;
  steps: number;
  /** Median wall time of one step. */
  step_ms_p50: number;
  /** batch x steps / their total time (as the modes are measured: wall time, not a percentile). */
  tokens_per_second: number;
}

export interface Ceiling {
  /** The past width a measure() without one uses (the workload's mean length). */
  readonly width: number;
  /** `steps` timed steps of `batch` rows, each `width` past columns long (default: the one opened with). */
  measure(batch: number, steps: number, width?: number): Promise<{ stepMs: number[] }>;
  close(): Promise<void>;
}

/**
 * Opens the model once. Each step runs with every row's past `width` columns long (the
 * workload's mean length: prompt plus half the completion), fetching what the engine's decode
 * fetches (the logits, and the new cache column when the graph exposes it).
 */
export async function openCeiling(opts: { modelDir: string; modelFile?: string; threads: number; width: number }): Promise<Ceiling> {
  let model: LoadedModel = await loadModelDir(opts.modelDir, {
    threads: opts.threads,
    fastDecode: true,
    ...(opts.modelFile !== undefined && { modelFile: opts.modelFile }),
  });
  // The graph the engine decodes with: where it chooses slot mode, the one without full caches.
  model = (await chooseDecoding(model)).model;
  const { io, config, stepOutputs } = model;
  const fetches = stepOutputs && !model.rowsCoupled
    ? [io.logits, ...stepOutputs.newKeys, ...stepOutputs.newValues]
    : [io.logits, ...io.presentKeys, ...io.presentValues];
  const clampWidth = (w: number) => Math.max(1, Math.min(w, config.contextLength - 1));
  const defaultWidth = clampWidth(opts.width);
  const feedsFor = new Map<string, Record<string, ort.Tensor>>();
  const feeds = (b: number, width: number): Record<string, ort.Tensor> => {
    const have = feedsFor.get(`${b}x${width}`);
    if (have) return have;
    const kv = () => {
      const n = b * config.numKvHeads * width * config.headDim;
      return new ort.Tensor(io.kvType, io.kvType === 'float16' ? new Uint16Array(n) : new Float32Array(n), [b, config.numKvHeads, width, config.headDim]);
    };
    const f: Record<string, ort.Tensor> = {
      [io.inputIds]: new ort.Tensor('int64', new BigInt64Array(b).fill(1n), [b, 1]),
      [io.attentionMask]: new ort.Tensor('int64', new BigInt64Array(b * (width + 1)).fill(1n), [b, width + 1]),
    };
    if (io.positionIds) f[io.positionIds] = new ort.Tensor('int64', new BigInt64Array(b).fill(BigInt(width)), [b, 1]);
    for (let l = 0; l < config.numLayers; l++) {
      f[io.pastKeys[l]!] = kv();
      f[io.pastValues[l]!] = kv();
    }
    feedsFor.set(`${b}x${width}`, f);
    return f;
  };
  return {
    width: defaultWidth,
    async measure(batch, steps, width = defaultWidth) {
      const f = feeds(batch, clampWidth(width));
      await model.session.run(f, fetches); // shapes and arenas for this batch size
      const stepMs: number[] = [];
      for (let i = 0; i < steps; i++) {
        const t0 = performance.now();
        await model.session.run(f, fetches);
        stepMs.push(performance.now() - t0);
      }
      return { stepMs };
    },
    async close() {
      await model.session.release().catch(() => undefined);
    },
  };
}

export function ceilingRun(batch: number, width: number, stepMs: readonly number[]): CeilingRun {
  const total = stepMs.reduce((a, b) => a + b, 0);
  return {
    batch,
    width,
    steps: stepMs.length,
    step_ms_p50: Math.round(median(stepMs) * 1000) / 1000,
    tokens_per_second: total > 0 ? Math.round(((batch * stepMs.length) / total) * 1000 * 10) / 10 : 0,
  };
}

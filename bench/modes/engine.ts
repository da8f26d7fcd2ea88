// The engine in-process: no HTTP, no encryption. The baseline the other modes
// are measured against.
import { Engine } from '../../engine/index.js';
import { BenchError } from '../errors.js';
import type { Completed, ModeDriver, Workload } from '../types.js';

export async function createEngine(opts: { modelDir: string; modelFile?: string; threads: number; maxBatch: number }): Promise<Engine> {
  // Queue room for every request a sweep level can have waiting, so the
  // benchmark measures queueing, never refusals.
  return Engine.create({ modelDir: opts.modelDir, ...(opts.modelFile !== undefined && { modelFile: opts.modelFile }), threads: opts.threads, maxBatch: opts.maxBatch, maxQueue: Math.max(64, 4 * opts.maxBatch) });
}

/** Drives one engine; greedy (temperature 0) so every mode produces the same tokens. */
export function engineDriver(engine: Engine): ModeDriver {
  return {
    name: 'engine',
    async request(work: Workload, onToken: () => void): Promise<Completed> {
      let tokens = -1;
      let promptTokens = 0;
      let text = '';
      for await (const ev of engine.generate({ prompt: work.prompt, maxTokens: work.maxTokens, temperature: 0 })) {
        if (ev.type === 'delta') { text += ev.text; onToken(); }
        else if (ev.type === 'done') { tokens = ev.completionTokens; promptTokens = ev.promptTokens; }
      }
      if (tokens < 0) throw new BenchError('mode_failed', 'engine stream ended without a done event');
      return { tokens, text, promptTokens };
    },
    async close(): Promise<void> {
      await engine.close();
    },
  };
}

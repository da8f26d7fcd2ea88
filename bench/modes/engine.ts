// The engine in-process: no HTTP, no encryption. The baseline the other modes
// are measured against.
import { BenchError } from '../errors.js';
import type { ModeDriver, Workload } from '../types.js';

/** The slice of engine/'s interface (docs/ARCHITECTURE.md) the benchmark uses. */
export interface EngineLike {
  model: { id: string; digest: string };
  generate(req: { prompt: string; maxTokens: number; temperature?: number }, signal?: AbortSignal): AsyncIterable<
    { type: 'delta'; text: string } | { type: 'done'; finishReason: string; promptTokens: number; completionTokens: number }
  >;
  countTokens?(text: string): number;
  close(): Promise<void> | void;
}

interface EngineModule {
  Engine: { create(opts: { modelDir: string; threads?: number; maxBatch?: number; maxQueue?: number }): Promise<EngineLike> };
}

export async function createEngine(opts: { modelDir: string; threads: number; maxBatch: number }): Promise<EngineLike> {
  let mod: EngineModule;
  try {
    mod = (await import('../../engine/index.js')) as unknown as EngineModule;
  } catch (err) {
    throw new BenchError('mode_unavailable', 'engine module not available', { cause: err });
  }
  return mod.Engine.create({ modelDir: opts.modelDir, threads: opts.threads, maxBatch: opts.maxBatch, maxQueue: 4 * opts.maxBatch });
}

/** Drives one engine; greedy (temperature 0) so every mode produces the same tokens. */
export function engineDriver(engine: EngineLike): ModeDriver {
  return {
    name: 'engine',
    async request(work: Workload, onToken: () => void): Promise<number> {
      let tokens = -1;
      for await (const ev of engine.generate({ prompt: work.prompt, maxTokens: work.maxTokens, temperature: 0 })) {
        if (ev.type === 'delta') onToken();
        else if (ev.type === 'done') tokens = ev.completionTokens;
      }
      if (tokens < 0) throw new BenchError('mode_failed', 'engine stream ended without a done event');
      return tokens;
    },
    async close(): Promise<void> {
      await engine.close();
    },
  };
}

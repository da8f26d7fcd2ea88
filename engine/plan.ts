/**
 * A request checked and turned into what a generation needs. Pure and free of
 * ONNX Runtime, so the thread that takes requests can check them (and throw
 * the engine's typed errors synchronously) while the engine runs elsewhere;
 * the result is plain data that crosses to a worker thread by structured clone.
 */
import { EngineError } from './errors.js';
import type { SamplingParams } from './sampler.js';
import { isWellFormed } from './text.js';

/** A generation request, as every engine takes it (engine.ts re-exports it). */
export interface GenerateRequest {
  /** Text (encoded with the model's special tokens, i.e. BOS) or token ids used as they are. */
  readonly prompt: string | readonly number[];
  /** Most tokens to generate; default: what the context leaves after the prompt. */
  readonly maxTokens?: number;
  /** 0 = greedy. Default 1. */
  readonly temperature?: number;
  /** Default 1 (off). */
  readonly topP?: number;
  /** Default 0 (off). */
  readonly topK?: number;
  /** Makes sampling reproducible. */
  readonly seed?: number;
  /** Up to 4 strings; output ends before the first occurrence of any. */
  readonly stop?: readonly string[];
  /** Adds the generated token ids to the done event (tests, benchmarks). */
  readonly returnTokenIds?: boolean;
}

export interface PlannedRequest {
  promptIds: number[];
  maxTokens: number;
  sampling: SamplingParams;
  /** null: a random seed, drawn where the generation runs. */
  seed: number | null;
  stops: string[];
  returnTokenIds: boolean;
}

export interface PlanContext {
  readonly contextLength: number;
  readonly vocabSize: number;
  encode(text: string, addSpecialTokens: boolean): number[];
}

const MAX_STOPS = 4;
const MAX_STOP_LENGTH = 256;

export function planRequest(req: GenerateRequest, ctx: PlanContext): PlannedRequest {
  if (req === null || typeof req !== 'object') throw new EngineError('invalid_request', 'request must be an object');
  const contextLength = ctx.contextLength;
  const vocab = ctx.vocabSize;
  let promptIds: number[];
  if (typeof req.prompt === 'string') {
    if (!isWellFormed(req.prompt)) throw new EngineError('invalid_request', 'prompt is not well-formed Unicode');
    promptIds = ctx.encode(req.prompt, true);
  } else if (Array.isArray(req.prompt)) {
    promptIds = req.prompt.slice();
    for (const id of promptIds) {
      if (!Number.isSafeInteger(id) || id < 0 || id >= vocab) {
        throw new EngineError('invalid_request', 'prompt token ids must be integers within the vocabulary');
      }
    }
  } else throw new EngineError('invalid_request', 'prompt must be a string or an array of token ids');
  if (promptIds.length === 0) throw new EngineError('invalid_request', 'prompt is empty');
  if (promptIds.length >= contextLength) {
    throw new EngineError('context_length_exceeded',
      `the prompt has ${promptIds.length} tokens; this model's context length is ${contextLength}`);
  }
  const room = contextLength - promptIds.length;
  let maxTokens = room;
  if (req.maxTokens !== undefined) {
    if (!Number.isSafeInteger(req.maxTokens) || req.maxTokens < 1) {
      throw new EngineError('invalid_request', 'maxTokens must be a positive integer');
    }
    if (req.maxTokens > room) {
      throw new EngineError('context_length_exceeded',
        `the prompt has ${promptIds.length} tokens and maxTokens is ${req.maxTokens}; this model's context length is ${contextLength}`);
    }
    maxTokens = req.maxTokens;
  }
  const temperature = numberIn(req.temperature, 1, 0, 2, 'temperature');
  const topP = numberIn(req.topP, 1, 0, 1, 'topP');
  if (topP === 0) throw new EngineError('invalid_request', 'topP must be greater than 0');
  let topK = 0;
  if (req.topK !== undefined) {
    if (!Number.isSafeInteger(req.topK) || req.topK < 0) throw new EngineError('invalid_request', 'topK must be a non-negative integer');
    topK = req.topK;
  }
  let seed: number | null = null;
  if (req.seed !== undefined) {
    if (!Number.isSafeInteger(req.seed)) throw new EngineError('invalid_request', 'seed must be an integer');
    seed = req.seed;
  }
  let stops: string[] = [];
  if (req.stop !== undefined) {
    if (!Array.isArray(req.stop) || req.stop.length > MAX_STOPS) {
      throw new EngineError('invalid_request', `stop must be an array of at most ${MAX_STOPS} strings`);
    }
    for (const s of req.stop) {
      if (typeof s !== 'string' || s.length === 0 || s.length > MAX_STOP_LENGTH || !isWellFormed(s)) {
        throw new EngineError('invalid_request', `each stop sequence must be a non-empty string of at most ${MAX_STOP_LENGTH} characters`);
      }
    }
    stops = [...req.stop];
  }
  return { promptIds, maxTokens, sampling: { temperature, topP, topK }, seed, stops, returnTokenIds: req.returnTokenIds === true };
}

function numberIn(v: unknown, dflt: number, min: number, max: number, name: string): number {
  if (v === undefined) return dflt;
  if (typeof v !== 'number' || !Number.isFinite(v) || v < min || v > max) {
    throw new EngineError('invalid_request', `${name} must be a number from ${min} to ${max}`);
  }
  return v;
}

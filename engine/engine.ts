/**
 * The engine: ties model, tokenizer, runner and scheduler together and turns
 * a request into an async stream of text deltas.
 */
import { availableParallelism } from 'node:os';
import { createDetokenizer, type TextStream } from './detokenizer.js';
import { EngineError } from './errors.js';
import type { Manifest } from './manifest.js';
import { loadModelDir, type LoadedModel } from './model-dir.js';
import { chooseDecoding, Runner } from './runner.js';
import { Rng, sample } from './sampler.js';
import { Scheduler, type SchedulableSequence, type Ticket } from './scheduler.js';
import { StopMatcher } from './stop.js';
import { EventChannel, type EventSink } from './channel.js';
import type { GenerateRequest, PlannedRequest } from './plan.js';
import { TokenizerFront } from './tokenizer-front.js';
import { createTokenizer, type Tokenizer } from './tokenizer.js';

export interface EngineOptions {
  readonly modelDir: string;
  /** Which graph under onnx/ when there are several: a file name, a stem or a dtype such as q4 (model-files.ts). */
  readonly modelFile?: string;
  /** Receives progress lines while a large model is hashed and loaded (the CLI writes them to stderr). */
  readonly onProgress?: (line: string) => void;
  /** Model id announced to clients; default: the directory's name. */
  readonly modelId?: string;
  /** ONNX Runtime intra-op threads; default: all cores. */
  readonly threads?: number;
  /** Most sequences decoded together; default 16. */
  readonly maxBatch?: number;
  /** Most requests waiting for a slot before 'busy'; default 64. */
  readonly maxQueue?: number;
  /** Most prompt tokens in one prefill run (bounds the [tokens, vocab] logits); default 256. */
  readonly prefillChunk?: number;
  /** Prompt tokens prefilled between two decode steps (a long prompt is spread over several); default 512. */
  readonly prefillBudget?: number;
  /**
   * Decode steps fetch only the new cache column (slot mode) when the graph
   * allows it; default true. false keeps the plain mode (for comparison).
   */
  readonly fastDecode?: boolean;
  /**
   * Called after each scheduler iteration that produced tokens (prefill or decode step): a worker
   * thread sends the step's events in one message here, instead of one per token.
   */
  readonly afterStep?: () => void;
}

export type { GenerateRequest } from './plan.js';

export type FinishReason = 'stop' | 'length';

export type GenerateEvent =
  | { readonly type: 'delta'; readonly text: string }
  | {
      readonly type: 'done';
      readonly finishReason: FinishReason;
      readonly promptTokens: number;
      readonly completionTokens: number;
      readonly tokenIds?: readonly number[];
    };

export interface EngineModelInfo {
  readonly id: string;
  /** The graph served under onnx/, e.g. "model_q4.onnx". */
  readonly variant: string;
  readonly digest: string;
  readonly contextLength: number;
  readonly manifest: Manifest;
}

export interface EngineStats {
  /** Sequences holding a batch slot. */
  readonly active: number;
  /** Sequences waiting for a slot. */
  readonly queued: number;
  /** Sequences whose KV cache is held. */
  readonly cachedSequences: number;
  /** Decode steps run so far. */
  readonly steps: number;
  /** Times the batch cache was re-packed (membership changes it could not absorb, or growth). */
  readonly repacks: number;
  /** Sequences seated in a free row of the slot batch, no re-pack needed. */
  readonly seats: number;
  /** Times the slot batch's rows were widened in place, no re-pack needed. */
  readonly grows: number;
  /** Prefill runs so far (a group of fresh prompts prefilled together is one). */
  readonly prefills: number;
}

export class Engine extends TokenizerFront {
  readonly model: EngineModelInfo;
  readonly threads: number;
  /**
   * Cache layout of decode steps: 'slot' (one new column fetched per step),
   * 'plain', or 'unbatched' (a graph whose batch rows are coupled, run a row at a time).
   */
  readonly decodeMode: 'slot' | 'plain' | 'unbatched';
  /** Where batched rows are padded: 'right' for GroupQueryAttention graphs (model-dir.ts). */
  readonly padding: 'left' | 'right';
  /** Element types the graph exchanges: KV cache and logits. */
  readonly dtypes: { readonly kv: 'float32' | 'float16'; readonly logits: 'float32' | 'float16' };
  /** Token ids that end a generation: generation_config / config eos_token_id and tokenizer_config's eos_token. */
  readonly stopTokenIds: readonly number[];
  private closed = false;

  private constructor(
    private readonly loaded: LoadedModel,
    tokenizer: Tokenizer,
    private readonly scheduler: Scheduler,
    runner: Runner,
  ) {
    super(tokenizer, { contextLength: loaded.config.contextLength, vocabSize: loaded.config.vocabSize });
    this.decodeMode = runner.mode;
    this.padding = loaded.padding;
    this.dtypes = { kv: loaded.io.kvType, logits: loaded.io.logitsType };
    this.stopTokenIds = [...new Set([...loaded.config.eosTokenIds, ...(tokenizer.eosTokenId === null ? [] : [tokenizer.eosTokenId])])];
    this.model = {
      id: loaded.id,
      variant: loaded.variant,
      digest: loaded.digest,
      contextLength: loaded.config.contextLength,
      manifest: loaded.manifest,
    };
    this.threads = loaded.threads;
  }

  static async create(opts: EngineOptions): Promise<Engine> {
    let loaded = await loadModelDir(opts.modelDir, {
      threads: opts.threads ?? availableParallelism(),
      id: opts.modelId,
      fastDecode: opts.fastDecode !== false,
      ...(opts.modelFile !== undefined && { modelFile: opts.modelFile }),
      ...(opts.onProgress && { onProgress: opts.onProgress }),
    });
    try {
      const tokenizer = createTokenizer(loaded.tokenizerJson, loaded.tokenizerConfig, loaded.config.vocabSize, loaded.config.contextLength);
      const decoding = await chooseDecoding(loaded);
      loaded = decoding.model;
      const slot = decoding.slot;
      const runner = new Runner(loaded, opts.prefillChunk ?? 256, !slot);
      const scheduler = new Scheduler(runner, {
        maxBatch: opts.maxBatch ?? 16,
        maxQueue: opts.maxQueue ?? 64,
        prefillBudget: opts.prefillBudget ?? 512,
        ...(opts.afterStep && { afterStep: opts.afterStep }),
      });
      return new Engine(loaded, tokenizer, scheduler, runner);
    } catch (e) {
      await loaded.session.release().catch(() => {});
      throw e;
    }
  }

  /** What a second tokenizer for this model is built from (the serving side of a worker-thread engine). */
  tokenizerSource(): { tokenizerJson: Record<string, unknown>; tokenizerConfig: Record<string, unknown>; vocabSize: number; contextLength: number } {
    const { tokenizerJson, tokenizerConfig, config } = this.loaded;
    return { tokenizerJson, tokenizerConfig, vocabSize: config.vocabSize, contextLength: config.contextLength };
  }

  stats(): EngineStats {
    const s = this.scheduler.stats();
    return { active: s.active, queued: s.queued, cachedSequences: s.cachedSequences, steps: s.steps, repacks: s.repacks, seats: s.seats, grows: s.grows, prefills: s.prefills };
  }

  /**
   * Starts generating. Errors known before any work (invalid_request,
   * context_length_exceeded, busy, closed, cancelled for an aborted signal)
   * are thrown here, synchronously. The stream then yields deltas and one
   * done event; it throws EngineError('cancelled') when `signal` aborts, or
   * 'closed' when the engine closes. Leaving the loop early (break/return)
   * cancels the sequence and frees its slot at once.
   */
  generate(req: GenerateRequest, signal?: AbortSignal): AsyncIterable<GenerateEvent> {
    if (this.closed) throw new EngineError('closed', 'the engine is closed');
    if (signal?.aborted) throw new EngineError('cancelled', 'the request was cancelled');
    const plan = this.plan(req);
    const channel = new EventChannel();
    const ticket = this.start(plan, channel);
    const onAbort = () => {
      channel.fail(new EngineError('cancelled', 'the request was cancelled'));
      ticket.cancel();
    };
    signal?.addEventListener('abort', onAbort, { once: true });
    channel.onClose = () => {
      signal?.removeEventListener('abort', onAbort);
      ticket.cancel();
    };
    return channel;
  }

  /**
   * Schedules a checked request whose events go to `sink` (generate() without its stream, for
   * a worker thread that forwards events). Throws 'closed' or 'busy'.
   */
  start(plan: PlannedRequest, sink: EventSink): Ticket {
    if (this.closed) throw new EngineError('closed', 'the engine is closed');
    const seq = new GenerationSequence(plan, this.tokenizer, this.stopTokenIds, sink);
    return this.scheduler.submit(seq);
  }

  /** Fails all queued and running requests with 'closed' and releases the model. */
  async close(): Promise<void> {
    if (this.closed) return;
    this.closed = true;
    await this.scheduler.close();
    await this.loaded.session.release().catch(() => {});
  }
}

/** One request's generation logic, driven by the scheduler one token at a time. */
class GenerationSequence implements SchedulableSequence {
  readonly promptIds: readonly number[];
  private readonly detok: TextStream;
  private readonly stops: StopMatcher;
  private readonly eos: ReadonlySet<number>;
  private readonly generated: number[] = [];
  private finished = false;
  private readonly rng: Rng;

  constructor(private readonly plan: PlannedRequest, tokenizer: Tokenizer, eos: readonly number[], private readonly out: EventSink) {
    this.promptIds = plan.promptIds;
    this.rng = plan.seed === null ? Rng.random() : new Rng(plan.seed);
    this.detok = createDetokenizer(tokenizer, plan.promptIds);
    this.stops = new StopMatcher(plan.stops);
    this.eos = new Set(eos);
  }

  onLogits(row: Float32Array): number | null {
    const token = sample(row, this.plan.sampling, this.rng);
    if (this.eos.has(token)) return this.finish('stop');
    this.generated.push(token);
    const { text, stopped } = this.stops.push(this.detok.push(token));
    if (text) this.out.push({ type: 'delta', text });
    if (stopped) return this.finish('stop', false);
    if (this.generated.length >= this.plan.maxTokens) return this.finish('length');
    return token;
  }

  onRetire(error?: EngineError): void {
    if (error) this.out.fail(error);
    else if (!this.finished) this.out.end();
  }

  private finish(reason: FinishReason, flush = true): null {
    if (flush) {
      const { text, stopped } = this.stops.push(this.detok.flush());
      const rest = stopped ? text : text + this.stops.flush();
      if (rest) this.out.push({ type: 'delta', text: rest });
      if (stopped) reason = 'stop';
    }
    this.finished = true;
    this.out.push({
      type: 'done',
      finishReason: reason,
      promptTokens: this.promptIds.length,
      completionTokens: this.generated.length,
      ...(this.plan.returnTokenIds ? { tokenIds: this.generated.slice() } : {}),
    });
    this.out.end();
    return null;
  }
}

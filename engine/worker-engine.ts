/**
 * The engine in a worker thread, seen from the thread that serves: the same surface as Engine
 * (generate, chatPrompt, countTokens, encode, close). Requests are checked and tokenized here,
 * so generate() throws exactly the errors Engine.generate() throws up front, synchronously; the
 * worker (worker-thread.ts) runs ONNX Runtime, the runner and the scheduler, and sends each
 * scheduler iteration's events in one message.
 *
 * Admission is counted here: a request holds its place from generate() until the worker says it
 * ended, or until it is cancelled (the cancel reaches the worker before any later request, so
 * the worker never holds more than this side counts, and its own 'busy' never fires first).
 * If the worker dies, every stream fails with 'internal' and the engine is closed: fail closed.
 */
import process from 'node:process';
import { Worker } from 'node:worker_threads';
import { EventChannel } from './channel.js';
import type { EngineModelInfo, EngineOptions, EngineStats, GenerateEvent, GenerateRequest } from './engine.js';
import { EngineError } from './errors.js';
import { TokenizerFront } from './tokenizer-front.js';
import { createTokenizer } from './tokenizer.js';
import { deliverBatch, type BatchTarget, type FromWorker, type ToWorker, type WorkerInit, type WorkerReady } from './worker-protocol.js';

/** Engine's options; its per-step hook is the worker's own (it sends each step's events). */
export type WorkerEngineOptions = Omit<EngineOptions, 'afterStep'>;

/**
 * Built, the worker is the .js file beside this one. Run from sources, it is the .ts file, and
 * Node 20 does not carry the `--import tsx` hooks into a worker's entry, so a one-line bootstrap
 * registers tsx there first.
 */
function startWorker(workerData: WorkerInit): Worker {
  if (!import.meta.url.endsWith('.ts')) return new Worker(new URL('./worker-thread.js', import.meta.url), { workerData });
  const entry = new URL('./worker-thread.ts', import.meta.url).href;
  const tsx = import.meta.resolve('tsx/esm/api');
  const boot = `import(${JSON.stringify(tsx)}).then((m) => { m.register(); return import(${JSON.stringify(entry)}); })`;
  return new Worker(boot, { eval: true, workerData });
}

export class WorkerEngine extends TokenizerFront {
  readonly model: EngineModelInfo;
  readonly threads: number;
  readonly decodeMode: WorkerReady['decodeMode'];
  readonly padding: WorkerReady['padding'];
  readonly dtypes: WorkerReady['dtypes'];
  readonly stopTokenIds: readonly number[];
  private readonly capacity: number;
  private readonly streams = new Map<number, EventChannel>();
  private nextId = 1;
  private closed = false;
  private closing: Promise<void> | null = null;
  private workerGone!: Promise<void>;
  private readonly statsWaiters = new Map<number, { resolve: (s: EngineStats) => void; reject: (e: EngineError) => void }>();

  private constructor(private readonly worker: Worker, info: WorkerReady, opts: { maxBatch: number; maxQueue: number }) {
    super(createTokenizer(info.tokenizerJson, info.tokenizerConfig, info.vocabSize, info.model.contextLength), {
      contextLength: info.model.contextLength,
      vocabSize: info.vocabSize,
    });
    this.model = info.model;
    this.threads = info.threads;
    this.decodeMode = info.decodeMode;
    this.padding = info.padding;
    this.dtypes = info.dtypes;
    this.stopTokenIds = info.stopTokenIds;
    this.capacity = opts.maxBatch + opts.maxQueue;
    worker.on('message', (msg: FromWorker) => this.onMessage(msg));
    this.workerGone = new Promise((resolve) => {
      worker.once('exit', () => {
        this.failAll(new EngineError('internal', 'the engine thread stopped'));
        this.closed = true;
        resolve();
      });
    });
    worker.on('error', () => {
      // The stack may quote a request's content: it is not logged. 'exit' follows.
      this.failAll(new EngineError('internal', 'the engine thread failed'));
      this.closed = true;
    });
    worker.unref();
  }

  static async create(opts: WorkerEngineOptions): Promise<WorkerEngine> {
    // The runtime reads this from the process environment when it starts; a worker's
    // process.env is a copy that never reaches getenv(), so it is set here, before the thread.
    process.env.ORT_DISABLE_TELEMETRY = '1';
    const maxBatch = opts.maxBatch ?? 16;
    const maxQueue = opts.maxQueue ?? 64;
    if (!Number.isInteger(maxBatch) || maxBatch < 1) throw new EngineError('invalid_request', 'maxBatch must be a positive integer');
    if (!Number.isInteger(maxQueue) || maxQueue < 0) throw new EngineError('invalid_request', 'maxQueue must be a non-negative integer');
    const init: WorkerInit = {
      modelDir: opts.modelDir,
      maxBatch,
      maxQueue,
      ...(opts.modelFile !== undefined && { modelFile: opts.modelFile }),
      ...(opts.modelId !== undefined && { modelId: opts.modelId }),
      ...(opts.threads !== undefined && { threads: opts.threads }),
      ...(opts.prefillChunk !== undefined && { prefillChunk: opts.prefillChunk }),
      ...(opts.prefillBudget !== undefined && { prefillBudget: opts.prefillBudget }),
      ...(opts.fastDecode !== undefined && { fastDecode: opts.fastDecode }),
    };
    const worker = startWorker(init);
    let info: WorkerReady;
    try {
      let onMessage: (msg: FromWorker) => void = () => {};
      let onError: () => void = () => {};
      let onExit: () => void = () => {};
      info = await new Promise<WorkerReady>((resolve, reject) => {
        onMessage = (msg: FromWorker) => {
          if (msg.t === 'progress') opts.onProgress?.(msg.line);
          else if (msg.t === 'ready') resolve(msg.info);
          else if (msg.t === 'failed') reject(new EngineError('model_invalid', msg.message));
        };
        onError = () => reject(new EngineError('internal', 'the engine thread failed to start'));
        onExit = () => reject(new EngineError('internal', 'the engine thread stopped while loading'));
        worker.on('message', onMessage);
        worker.once('error', onError);
        worker.once('exit', onExit);
      }).finally(() => {
        // Only these: the Worker keeps listeners of its own (removeAllListeners would cut its port).
        worker.off('message', onMessage);
        worker.off('error', onError);
        worker.off('exit', onExit);
      });
    } catch (e) {
      await worker.terminate();
      // Load errors keep Engine.create's typed error and message (a file name, never content).
      throw e;
    }
    return new WorkerEngine(worker, info, { maxBatch, maxQueue });
  }

  /** Sequences admitted and not yet ended (running or waiting in the worker). */
  get inFlight(): number {
    return this.streams.size;
  }

  /** As Engine.generate(): errors known up front are thrown here; the stream fails with 'cancelled' or 'closed'. */
  generate(req: GenerateRequest, signal?: AbortSignal): AsyncIterable<GenerateEvent> {
    if (this.closed) throw new EngineError('closed', 'the engine is closed');
    if (signal?.aborted) throw new EngineError('cancelled', 'the request was cancelled');
    const plan = this.plan(req);
    if (this.streams.size >= this.capacity) throw new EngineError('busy', 'the engine is at capacity; try again later');
    const id = this.newId();
    const channel = new EventChannel();
    this.streams.set(id, channel);
    if (this.streams.size === 1) this.worker.ref();
    this.send({ t: 'gen', id, plan });
    // postMessage cloned it: this copy of the prompt is not needed any more.
    plan.promptIds.fill(0);
    const cancel = () => {
      if (this.forget(id)) this.send({ t: 'cancel', id });
    };
    const onAbort = () => {
      channel.fail(new EngineError('cancelled', 'the request was cancelled'));
      cancel();
    };
    signal?.addEventListener('abort', onAbort, { once: true });
    channel.onClose = () => {
      signal?.removeEventListener('abort', onAbort);
      cancel();
    };
    return channel;
  }

  /** The scheduler's counters as the worker sees them, after every message sent before this call. */
  stats(): Promise<EngineStats> {
    if (this.closed) return Promise.reject(new EngineError('closed', 'the engine is closed'));
    const id = this.newId();
    return new Promise((resolve, reject) => {
      this.statsWaiters.set(id, { resolve, reject });
      this.worker.ref();
      this.send({ t: 'stats', id });
    });
  }

  /** Fails every stream with 'closed', lets the worker finish its step and release the model, then ends the thread. */
  close(): Promise<void> {
    if (this.closing) return this.closing;
    this.closed = true;
    this.failAll(new EngineError('closed', 'the engine was closed'));
    this.closing = (async () => {
      this.worker.ref();
      this.send({ t: 'close' });
      const timer = setTimeout(() => void this.worker.terminate(), 10_000);
      await this.workerGone;
      clearTimeout(timer);
    })();
    return this.closing;
  }

  /** Ids travel as int32 (worker-protocol.ts): they wrap after 2^31 - 1, long after any stream that held one ended. */
  private newId(): number {
    const id = this.nextId;
    this.nextId = id >= 0x7fffffff ? 1 : id + 1;
    return id;
  }

  private send(msg: ToWorker): void {
    try {
      this.worker.postMessage(msg);
    } catch {
      this.failAll(new EngineError('internal', 'the engine thread is unreachable'));
      this.closed = true;
    }
  }

  /** Drops a stream from the count; true if it was still counted. */
  private forget(id: number): boolean {
    if (!this.streams.delete(id)) return false;
    if (this.streams.size === 0 && this.statsWaiters.size === 0 && !this.closing) this.worker.unref();
    return true;
  }

  private failAll(err: EngineError): void {
    const all = [...this.streams.values()];
    this.streams.clear();
    const waiters = [...this.statsWaiters.values()];
    this.statsWaiters.clear();
    for (const w of waiters) w.reject(err);
    for (const ch of all) {
      ch.onClose = null;
      ch.fail(err);
    }
  }

  /** Where decoded events go: made once, not per message (one message per decode step). */
  private readonly target: BatchTarget = {
    event: (id, ev) => this.streams.get(id)?.push(ev),
    end: (id) => {
      const ch = this.streams.get(id);
      if (!ch) return;
      this.forget(id);
      ch.onClose = null;
      ch.end();
    },
    fail: (id, err) => {
      const ch = this.streams.get(id);
      if (!ch) return;
      this.forget(id);
      ch.onClose = null;
      ch.fail(err);
    },
  };

  private onMessage(msg: FromWorker): void {
    if (msg.t === 'stats') {
      const w = this.statsWaiters.get(msg.id);
      this.statsWaiters.delete(msg.id);
      if (this.statsWaiters.size === 0 && this.streams.size === 0 && !this.closing) this.worker.unref();
      w?.resolve(msg.stats);
      return;
    }
    if (msg.t !== 'events') return;
    try {
      deliverBatch(msg.batch, this.target);
    } catch (e) {
      // A worker that sends garbage cannot be trusted with the rest: fail closed. It is asked to
      // close (releasing its session) rather than killed: killing a thread inside session.run can
      // abort the whole process in ONNX Runtime's teardown. close() still kills it after 10 s.
      this.failAll(e instanceof EngineError ? e : new EngineError('internal', 'the engine thread misbehaved'));
      void this.close();
    }
  }
}

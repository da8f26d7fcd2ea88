/**
 * The scheduler: what runs next (continuous batching, vLLM style). It knows
 * sequences and slots, not tensors; the runner does the tensors.
 *
 * Each iteration: admit waiting sequences into free slots (each prefilled on
 * its own; a prefill-token budget per iteration keeps decode latency of the
 * running batch bounded), then run ONE batched decode step over every active
 * sequence. A sequence that finishes or is cancelled leaves at once and its
 * cache is released. The waiting queue is bounded: a submit beyond it throws
 * EngineError('busy') instead of growing.
 */
import { EngineError } from './errors.js';
import type { Runner, SequenceCache } from './runner.js';

/** What the scheduler drives: the engine's per-request logic (sampling, text, stops). */
export interface SchedulableSequence {
  readonly promptIds: readonly number[];
  /** Logits after the last fed token: returns the next token to feed, or null when the sequence is finished. */
  onLogits(row: Float32Array): number | null;
  /** Called exactly once when the sequence leaves: error is undefined for a normal finish or a cancel. */
  onRetire(error?: EngineError): void;
}

export interface SchedulerOptions {
  /** Most sequences decoded together. */
  readonly maxBatch: number;
  /** Most sequences waiting for a slot. */
  readonly maxQueue: number;
  /** Prompt tokens prefilled per iteration before the next decode step (at least one sequence is always admitted). */
  readonly prefillBudget?: number;
}

export interface Ticket {
  /** Stops the sequence now: it leaves the queue or its slot, and its cache is released. Idempotent. */
  cancel(): void;
}

interface Entry {
  readonly seq: SchedulableSequence;
  cache: SequenceCache | null;
  next: number;
  done: boolean;
}

export interface SchedulerStats {
  active: number;
  queued: number;
  cachedSequences: number;
  steps: number;
  repacks: number;
}

export class Scheduler {
  private readonly queue: Entry[] = [];
  private active: Entry[] = [];
  private running: Promise<void> | null = null;
  private closed = false;
  private readonly prefillBudget: number;

  constructor(private readonly runner: Runner, private readonly opts: SchedulerOptions) {
    if (!Number.isInteger(opts.maxBatch) || opts.maxBatch < 1) throw new EngineError('invalid_request', 'maxBatch must be a positive integer');
    if (!Number.isInteger(opts.maxQueue) || opts.maxQueue < 0) throw new EngineError('invalid_request', 'maxQueue must be a non-negative integer');
    this.prefillBudget = opts.prefillBudget ?? 512;
  }

  stats(): SchedulerStats {
    const r = this.runner.stats();
    return {
      active: this.active.filter((e) => !e.done).length,
      queued: this.queue.length,
      cachedSequences: r.cachedSequences,
      steps: r.steps,
      repacks: r.repacks,
    };
  }

  /** Queues a sequence. Throws 'busy' when every slot is taken and the queue is full, 'closed' after close(). */
  submit(seq: SchedulableSequence): Ticket {
    if (this.closed) throw new EngineError('closed', 'the engine is closed');
    const free = this.opts.maxBatch - this.active.length;
    if (this.queue.length >= this.opts.maxQueue + Math.max(0, free)) {
      throw new EngineError('busy', 'the engine is at capacity; try again later');
    }
    const entry: Entry = { seq, cache: null, next: -1, done: false };
    this.queue.push(entry);
    this.kick();
    return { cancel: () => this.retire(entry) };
  }

  /** Fails everything queued or running with 'closed' and waits for the step in flight. */
  async close(): Promise<void> {
    this.closed = true;
    const err = new EngineError('closed', 'the engine was closed');
    for (const e of [...this.queue, ...this.active]) this.retire(e, err);
    await this.running;
  }

  private kick(): void {
    if (this.running || this.closed) return;
    this.running = this.loop().finally(() => {
      this.running = null;
      // Work may have arrived while the loop was finishing.
      if (!this.closed && (this.queue.length > 0 || this.active.length > 0)) this.kick();
    });
  }

  private retire(e: Entry, error?: EngineError): void {
    if (e.done) return;
    e.done = true;
    const qi = this.queue.indexOf(e);
    if (qi >= 0) this.queue.splice(qi, 1);
    if (e.cache) this.runner.release(e.cache);
    e.cache = null;
    try {
      e.seq.onRetire(error);
    } catch {
      // A consumer's callback must not break the loop for everyone else.
    }
  }

  private async loop(): Promise<void> {
    // Yield once so that submits in the same tick are admitted together.
    await new Promise<void>((r) => setImmediate(r));
    while (!this.closed) {
      this.active = this.active.filter((e) => !e.done);
      await this.admit();
      this.active = this.active.filter((e) => !e.done);
      if (this.active.length === 0) {
        if (this.queue.length === 0) return;
        continue;
      }
      const batch = this.active.slice();
      let logits: Float32Array;
      try {
        logits = await this.runner.step(batch.map((e) => e.cache!), batch.map((e) => e.next));
      } catch (err) {
        const error = err instanceof EngineError ? err : new EngineError('internal', 'decode step failed');
        for (const e of batch) this.retire(e, error);
        continue;
      }
      const vocab = this.runner.vocabSize;
      for (let i = 0; i < batch.length; i++) {
        const e = batch[i];
        if (e.done) continue;
        this.advance(e, logits.subarray(i * vocab, (i + 1) * vocab));
      }
    }
  }

  /** Prefills waiting sequences into free slots, within the per-iteration token budget. */
  private async admit(): Promise<void> {
    let spent = 0;
    while (!this.closed && this.queue.length > 0 && this.active.length < this.opts.maxBatch) {
      const e = this.queue[0];
      if (spent > 0 && spent + e.seq.promptIds.length > this.prefillBudget) return;
      this.queue.shift();
      spent += e.seq.promptIds.length;
      e.cache = this.runner.newSequence();
      let logits: Float32Array;
      try {
        logits = await this.runner.prefill(e.cache, e.seq.promptIds);
      } catch (err) {
        if (!e.done) this.retire(e, err instanceof EngineError ? err : new EngineError('internal', 'prefill failed'));
        continue;
      }
      if (e.done) continue;
      this.active.push(e);
      this.advance(e, logits);
    }
  }

  private advance(e: Entry, row: Float32Array): void {
    let next: number | null;
    try {
      next = e.seq.onLogits(row);
    } catch (err) {
      this.retire(e, err instanceof EngineError ? err : new EngineError('internal', 'token selection failed'));
      return;
    }
    if (next === null) this.retire(e);
    else e.next = next;
  }
}

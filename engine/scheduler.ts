/**
 * The scheduler: what runs next (continuous batching, vLLM style). It knows
 * sequences and slots, not tensors; the runner does the tensors.
 *
 * Each iteration: admit waiting sequences into free slots and prefill them
 * (FIFO, within a per-iteration prompt-token budget; in slot mode the leading
 * fresh one-piece prompts go together in one run, the rest each on its own); a long
 * prompt is prefilled in budget-sized pieces across iterations, so it never
 * stalls the running batch for more than one piece. Then run ONE batched
 * decode step over every sequence whose prompt is in. A sequence that finishes or is cancelled leaves at once and its
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
  /** Prompt tokens prefilled per iteration, between two decode steps; default 512. */
  readonly prefillBudget?: number;
  /** Called after an iteration's prefills and after each decode step, once their tokens are out. */
  readonly afterStep?: () => void;
}

export interface Ticket {
  /** Stops the sequence now: it leaves the queue or its slot, and its cache is released. Idempotent. */
  cancel(): void;
}

interface Entry {
  readonly seq: SchedulableSequence;
  cache: SequenceCache | null;
  /** Prompt tokens already in the cache. */
  prefilled: number;
  next: number;
  done: boolean;
}

export interface SchedulerStats {
  active: number;
  queued: number;
  cachedSequences: number;
  steps: number;
  repacks: number;
  seats: number;
  grows: number;
  prefills: number;
}

export class Scheduler {
  private readonly queue: Entry[] = [];
  /** Holding a slot, prompt partly prefilled. */
  private starting: Entry[] = [];
  /** Holding a slot, decoding. */
  private active: Entry[] = [];
  private running: Promise<void> | null = null;
  private closed = false;
  private readonly prefillBudget: number;

  constructor(private readonly runner: Runner, private readonly opts: SchedulerOptions) {
    if (!Number.isInteger(opts.maxBatch) || opts.maxBatch < 1) throw new EngineError('invalid_request', 'maxBatch must be a positive integer');
    if (!Number.isInteger(opts.maxQueue) || opts.maxQueue < 0) throw new EngineError('invalid_request', 'maxQueue must be a non-negative integer');
    this.prefillBudget = opts.prefillBudget ?? 512;
    if (!Number.isInteger(this.prefillBudget) || this.prefillBudget < 1) {
      throw new EngineError('invalid_request', 'prefillBudget must be a positive integer');
    }
  }

  stats(): SchedulerStats {
    const r = this.runner.stats();
    return {
      active: this.slotsUsed(),
      queued: this.queue.length,
      cachedSequences: r.cachedSequences,
      steps: r.steps,
      repacks: r.repacks,
      seats: r.seats,
      grows: r.grows,
      prefills: r.prefills,
    };
  }

  /** Queues a sequence. Throws 'busy' when every slot is taken and the queue is full, 'closed' after close(). */
  submit(seq: SchedulableSequence): Ticket {
    if (this.closed) throw new EngineError('closed', 'the engine is closed');
    const free = this.opts.maxBatch - this.slotsUsed();
    if (this.queue.length >= this.opts.maxQueue + Math.max(0, free)) {
      throw new EngineError('busy', 'the engine is at capacity; try again later');
    }
    const entry: Entry = { seq, cache: null, prefilled: 0, next: -1, done: false };
    this.queue.push(entry);
    this.kick();
    return { cancel: () => this.retire(entry) };
  }

  /** Fails everything queued or running with 'closed' and waits for the step in flight. */
  async close(): Promise<void> {
    this.closed = true;
    const err = new EngineError('closed', 'the engine was closed');
    for (const e of [...this.queue, ...this.starting, ...this.active]) this.retire(e, err);
    await this.running;
  }

  private kick(): void {
    if (this.running || this.closed) return;
    this.running = this.loop()
      .catch(() => {
        // Unreachable by design (every run is guarded); if it happens, fail
        // everyone rather than leave streams hanging or crash the process.
        const err = new EngineError('internal', 'the scheduler failed');
        for (const e of [...this.queue, ...this.starting, ...this.active]) this.retire(e, err);
        this.starting = [];
        this.active = [];
      })
      .finally(() => {
        this.running = null;
        // Work may have arrived while the loop was finishing.
        if (!this.closed && this.hasWork()) this.kick();
      });
  }

  private slotsUsed(): number {
    let n = 0;
    for (const e of this.starting) if (!e.done) n++;
    for (const e of this.active) if (!e.done) n++;
    return n;
  }

  private hasWork(): boolean {
    return this.queue.length > 0 || this.starting.length > 0 || this.active.length > 0;
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
      if (this.queue.length > 0 || this.starting.length > 0) await this.admit();
      this.active = this.active.filter((e) => !e.done);
      if (this.active.length === 0) {
        if (!this.hasWork()) return;
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
      this.stepped();
    }
  }

  private stepped(): void {
    try {
      this.opts.afterStep?.();
    } catch {
      // The hook forwards events; its failure must not stop the batch.
    }
  }

  /**
   * Gives free slots to waiting sequences, then prefills slot holders in
   * FIFO order within the budget; a sequence whose whole prompt is in gets
   * its first token and joins the decoding batch.
   */
  private async admit(): Promise<void> {
    this.starting = this.starting.filter((e) => !e.done);
    while (this.queue.length > 0 && this.slotsUsed() < this.opts.maxBatch) {
      const e = this.queue.shift()!;
      e.cache = this.runner.newSequence();
      this.starting.push(e);
    }
    let budget = this.prefillBudget;
    const group = this.freshGroup();
    if (group.length > 1) {
      for (const e of group) budget -= e.seq.promptIds.length;
      await this.prefillTogether(group);
    }
    for (const e of this.starting.slice()) {
      if (budget <= 0 || this.closed) break;
      if (e.done) continue;
      const prompt = e.seq.promptIds;
      const n = Math.min(prompt.length - e.prefilled, budget);
      budget -= n;
      let logits: Float32Array;
      try {
        logits = await this.runner.prefill(e.cache!, prompt.slice(e.prefilled, e.prefilled + n));
      } catch (err) {
        if (!e.done) this.retire(e, err instanceof EngineError ? err : new EngineError('internal', 'prefill failed'));
        continue;
      }
      if (e.done) continue;
      e.prefilled += n;
      if (e.prefilled < prompt.length) continue;
      this.starting.splice(this.starting.indexOf(e), 1);
      this.active.push(e);
      this.advance(e, logits);
    }
    this.starting = this.starting.filter((e) => !e.done);
    this.stepped();
  }

  /**
   * The leading run of slot holders (in FIFO order) whose whole prompt is still to come, fits in
   * one piece, and fits the iteration's budget, padded area included (group size x longest
   * prompt within twice the budget): prefilled together in one run when there are several.
   */
  private freshGroup(): Entry[] {
    if (!this.runner.batchedPrefill) return [];
    const group: Entry[] = [];
    let tokens = 0;
    let widest = 0;
    for (const e of this.starting) {
      if (e.done) continue;
      const n = e.seq.promptIds.length;
      const w = Math.max(widest, n);
      if (e.prefilled !== 0 || n > this.runner.prefillPiece || tokens + n > this.prefillBudget || (group.length + 1) * w > 2 * this.prefillBudget) break;
      group.push(e);
      tokens += n;
      widest = w;
    }
    return group;
  }

  private async prefillTogether(group: Entry[]): Promise<void> {
    let rows: Float32Array[];
    try {
      rows = await this.runner.prefillMany(group.map((e) => e.cache!), group.map((e) => e.seq.promptIds));
    } catch (err) {
      const error = err instanceof EngineError ? err : new EngineError('internal', 'prefill failed');
      for (const e of group) if (!e.done) this.retire(e, error);
      return;
    }
    group.forEach((e, i) => {
      if (e.done) return; // cancelled while the run was in flight
      e.prefilled = e.seq.promptIds.length;
      this.starting.splice(this.starting.indexOf(e), 1);
      this.active.push(e);
      this.advance(e, rows[i]!);
    });
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

// Admission for generations: at most `concurrency` run at once, at most `maxQueue` wait, and
// none waits longer than `queueTimeoutMs`. Waiters are served first come, first served.
import { ServerError } from './errors.js';

export interface Permit {
  /** Frees the slot; calling it more than once is harmless. */
  release(): void;
}

interface Waiter {
  grant(p: Permit): void;
  fail(e: unknown): void;
}

export class GenerationLimiter {
  readonly #concurrency: number;
  readonly #maxQueue: number;
  readonly #queueTimeoutMs: number;
  #active = 0;
  readonly #queue: Waiter[] = [];

  constructor(opts: { concurrency: number; maxQueue: number; queueTimeoutMs: number }) {
    this.#concurrency = opts.concurrency;
    this.#maxQueue = opts.maxQueue;
    this.#queueTimeoutMs = opts.queueTimeoutMs;
  }

  get active(): number {
    return this.#active;
  }

  get queued(): number {
    return this.#queue.length;
  }

  /**
   * A permit once a slot is free. Rejects with ServerError 'overloaded' when the queue is
   * full, 'queue_timeout' after waiting too long, or the signal's reason when it aborts.
   */
  acquire(signal?: AbortSignal): Promise<Permit> {
    if (signal?.aborted) return Promise.reject(signal.reason);
    if (this.#active < this.#concurrency) return Promise.resolve(this.#grant());
    if (this.#queue.length >= this.#maxQueue) {
      return Promise.reject(new ServerError('overloaded', 'the generation queue is full'));
    }
    return new Promise<Permit>((resolve, reject) => {
      const cleanup = () => {
        clearTimeout(timer);
        signal?.removeEventListener('abort', onAbort);
        const i = this.#queue.indexOf(waiter);
        if (i >= 0) this.#queue.splice(i, 1);
      };
      const waiter: Waiter = {
        grant: (p) => {
          cleanup();
          resolve(p);
        },
        fail: (e) => {
          cleanup();
          reject(e);
        },
      };
      const onAbort = () => waiter.fail(signal!.reason);
      const timer = setTimeout(
        () => waiter.fail(new ServerError('queue_timeout', 'waited too long for a generation slot')),
        this.#queueTimeoutMs,
      );
      signal?.addEventListener('abort', onAbort, { once: true });
      this.#queue.push(waiter);
    });
  }

  #grant(): Permit {
    this.#active++;
    let released = false;
    return {
      release: () => {
        if (released) return;
        released = true;
        this.#active--;
        const next = this.#queue.shift();
        if (next) next.grant(this.#grant());
      },
    };
  }
}

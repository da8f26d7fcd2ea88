// Admission for generations: at most `concurrency` run at once, at most `maxQueue` wait, none
// waits longer than `queueTimeoutMs`, and one session holds at most `maxPerSession` places
// (running or waiting). Waiters are served round robin over sessions, first come first served
// within a session, so a session that queued a hundred requests delays another session's next
// request by at most one turn, not by a hundred.
import { ServerError } from './errors.js';

export interface Permit {
  /** Frees the slot; calling it more than once is harmless. */
  release(): void;
}

interface Waiter {
  grant(p: Permit): void;
  fail(e: unknown): void;
}

/** The lane of work that carries no session (the plaintext twin): one lane, never capped. */
const NO_SESSION = '';

export class GenerationLimiter {
  readonly #concurrency: number;
  readonly #maxQueue: number;
  readonly #queueTimeoutMs: number;
  readonly #maxPerSession: number;
  #active = 0;
  #queued = 0;
  /** Waiting work per session; Map order is the rotation: a lane just served moves to the back. */
  readonly #lanes = new Map<string, Waiter[]>();
  /** Places (running or waiting) per session. */
  readonly #held = new Map<string, number>();

  constructor(opts: { concurrency: number; maxQueue: number; queueTimeoutMs: number; maxPerSession?: number }) {
    this.#concurrency = opts.concurrency;
    this.#maxQueue = opts.maxQueue;
    this.#queueTimeoutMs = opts.queueTimeoutMs;
    this.#maxPerSession = opts.maxPerSession ?? Number.POSITIVE_INFINITY;
  }

  get active(): number {
    return this.#active;
  }

  get queued(): number {
    return this.#queued;
  }

  /** Places (running or waiting) held by `session`. */
  heldBy(session: string): number {
    return this.#held.get(session) ?? 0;
  }

  /**
   * Whether `session` already holds its share, so a request of it would be refused: a cheap
   * early answer before the request is parsed and tokenized (acquire() decides for real).
   */
  atCap(session: string | undefined): boolean {
    return session !== undefined && session !== NO_SESSION && this.heldBy(session) >= this.#maxPerSession;
  }

  /**
   * A permit once a slot is free. Rejects with ServerError 'session_busy' when `session` already
   * holds its share, 'overloaded' when the queue is full, 'queue_timeout' after waiting too
   * long, or the signal's reason when it aborts. `session` must come from the server (the
   * gateway's session), never from the request.
   */
  acquire(signal?: AbortSignal, session: string = NO_SESSION): Promise<Permit> {
    if (signal?.aborted) return Promise.reject(signal.reason);
    const capped = session !== NO_SESSION;
    if (capped && this.heldBy(session) >= this.#maxPerSession) {
      return Promise.reject(new ServerError('session_busy', 'this session holds every generation place it may'));
    }
    if (this.#active < this.#concurrency) {
      this.#hold(session);
      return Promise.resolve(this.#grant(session));
    }
    if (this.#queued >= this.#maxQueue) {
      return Promise.reject(new ServerError('overloaded', 'the generation queue is full'));
    }
    this.#hold(session);
    return new Promise<Permit>((resolve, reject) => {
      let settled = false;
      const cleanup = () => {
        settled = true;
        clearTimeout(timer);
        signal?.removeEventListener('abort', onAbort);
      };
      const waiter: Waiter = {
        grant: (p) => {
          cleanup();
          resolve(p);
        },
        fail: (e) => {
          if (settled) return;
          cleanup();
          this.#unqueue(session, waiter);
          this.#unhold(session);
          reject(e);
        },
      };
      const onAbort = () => waiter.fail(signal!.reason);
      const timer = setTimeout(
        () => waiter.fail(new ServerError('queue_timeout', 'waited too long for a generation slot')),
        this.#queueTimeoutMs,
      );
      signal?.addEventListener('abort', onAbort, { once: true });
      const lane = this.#lanes.get(session);
      if (lane) lane.push(waiter);
      else this.#lanes.set(session, [waiter]);
      this.#queued++;
    });
  }

  #hold(session: string): void {
    this.#held.set(session, this.heldBy(session) + 1);
  }

  #unhold(session: string): void {
    const n = this.heldBy(session) - 1;
    if (n > 0) this.#held.set(session, n);
    else this.#held.delete(session);
  }

  #unqueue(session: string, waiter: Waiter): void {
    const lane = this.#lanes.get(session);
    const i = lane ? lane.indexOf(waiter) : -1;
    if (i < 0) return;
    lane!.splice(i, 1);
    if (lane!.length === 0) this.#lanes.delete(session);
    this.#queued--;
  }

  /** The next waiter in rotation: the first lane's oldest, that lane then going to the back. */
  #next(): { session: string; waiter: Waiter } | undefined {
    const first = this.#lanes.entries().next();
    if (first.done) return undefined;
    const [session, lane] = first.value;
    const waiter = lane.shift()!;
    this.#lanes.delete(session);
    if (lane.length > 0) this.#lanes.set(session, lane);
    this.#queued--;
    return { session, waiter };
  }

  #grant(session: string): Permit {
    this.#active++;
    let released = false;
    return {
      release: () => {
        if (released) return;
        released = true;
        this.#active--;
        this.#unhold(session);
        const next = this.#next();
        if (next) next.waiter.grant(this.#grant(next.session));
      },
    };
  }
}

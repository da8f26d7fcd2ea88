// Tracks the encapsulated requests in flight, so the server can refuse new ones when full or
// draining, wait for running ones on shutdown, and cancel those that outlive the grace period.
//
// A request is tracked from the moment it is accepted, but takes one of the limited places only
// once it is admitted: after its body has arrived and opened. A client that uploads slowly (or
// never finishes) therefore holds a socket, bounded by the request timeout, but no place.
import { ServerError } from './errors.js';

export interface TrackedRequest {
  /** Aborted when the server cancels the request (shutdown) or the client goes away. */
  readonly signal: AbortSignal;
  /** Takes a place if fewer than `max` are taken; false means overloaded. At most once per request. */
  admit(max: number): boolean;
  /** Marks the request finished (its response fully written, or its connection gone), freeing its place. Idempotent. */
  done(): void;
}

export class RequestTracker {
  readonly #live = new Set<AbortController>();
  readonly #idleWaiters: Array<() => void> = [];
  #draining = false;
  #admitted = 0;

  /** Requests accepted and not yet finished. */
  get size(): number {
    return this.#live.size;
  }

  /** Requests holding a place. */
  get admitted(): number {
    return this.#admitted;
  }

  get draining(): boolean {
    return this.#draining;
  }

  /** Refuse new work from now on. */
  drain(): void {
    this.#draining = true;
  }

  track(clientSignal?: AbortSignal): TrackedRequest {
    const ac = new AbortController();
    const onClientAbort = () => ac.abort(clientSignal?.reason);
    if (clientSignal?.aborted) ac.abort(clientSignal.reason);
    else clientSignal?.addEventListener('abort', onClientAbort, { once: true });
    this.#live.add(ac);
    let finished = false;
    let admitted = false;
    return {
      signal: ac.signal,
      admit: (max) => {
        if (finished) return false;
        if (admitted) return true;
        if (this.#admitted >= max) return false;
        admitted = true;
        this.#admitted++;
        return true;
      },
      done: () => {
        if (finished) return;
        finished = true;
        if (admitted) this.#admitted--;
        clientSignal?.removeEventListener('abort', onClientAbort);
        this.#live.delete(ac);
        if (this.#live.size === 0) for (const w of this.#idleWaiters.splice(0)) w();
      },
    };
  }

  /** Resolves true once nothing is in flight, or false after `ms`. */
  waitIdle(ms: number): Promise<boolean> {
    if (this.#live.size === 0) return Promise.resolve(true);
    return new Promise((resolve) => {
      const timer = setTimeout(() => {
        const i = this.#idleWaiters.indexOf(onIdle);
        if (i >= 0) this.#idleWaiters.splice(i, 1);
        resolve(false);
      }, ms);
      const onIdle = () => {
        clearTimeout(timer);
        resolve(true);
      };
      this.#idleWaiters.push(onIdle);
    });
  }

  /** Cancels everything in flight; the reason (ServerError 'closed') lets a stream say why. */
  abortAll(): void {
    for (const ac of this.#live) ac.abort(new ServerError('closed', 'server shutting down'));
  }
}

/** The part of Node's ServerResponse the tracker needs. */
export interface NodeResponse {
  /** True once the response has closed (written out, or its connection gone). */
  readonly destroyed: boolean;
  once(event: 'close', listener: () => void): unknown;
}

/**
 * Calls `onClosed` once, when `res` closes: after its last byte has been handed to the socket,
 * or when its connection is cut. Until then the request is in flight, so a graceful shutdown
 * waits for responses to be written rather than for handlers to return.
 */
export function whenResponseCloses(res: NodeResponse, onClosed: () => void): void {
  if (res.destroyed) queueMicrotask(onClosed);
  else res.once('close', onClosed);
}

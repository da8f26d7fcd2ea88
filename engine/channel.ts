// The consumer's end of one generation: events pushed by whoever runs the generation (the
// scheduler in this thread, or the messages of a worker thread), read once as an async stream.
import { EngineError } from './errors.js';
import type { GenerateEvent } from './engine.js';

/** Where a generation's events go. */
export interface EventSink {
  push(ev: GenerateEvent): void;
  end(): void;
  fail(err: EngineError): void;
}

/** A single-consumer async queue of events that ends, or fails with an error. */
export class EventChannel implements EventSink, AsyncIterable<GenerateEvent>, AsyncIterator<GenerateEvent> {
  private readonly items: GenerateEvent[] = [];
  private waiter: { resolve: (r: IteratorResult<GenerateEvent>) => void; reject: (e: unknown) => void } | null = null;
  private ended = false;
  private error: EngineError | null = null;
  private iterated = false;
  onClose: (() => void) | null = null;

  [Symbol.asyncIterator](): AsyncIterator<GenerateEvent> {
    if (this.iterated) throw new EngineError('invalid_request', 'a generation stream can be iterated once');
    this.iterated = true;
    return this;
  }

  push(ev: GenerateEvent): void {
    if (this.ended) return;
    if (this.waiter) {
      const w = this.waiter;
      this.waiter = null;
      w.resolve({ value: ev, done: false });
    } else this.items.push(ev);
  }

  end(): void {
    if (this.ended) return;
    this.ended = true;
    this.settleWaiter();
    this.closeOnce();
  }

  fail(err: EngineError): void {
    if (this.ended) return;
    this.error = err;
    this.ended = true;
    this.items.length = 0;
    this.settleWaiter();
    this.closeOnce();
  }

  next(): Promise<IteratorResult<GenerateEvent>> {
    if (this.items.length > 0) return Promise.resolve({ value: this.items.shift()!, done: false });
    if (this.error) {
      const e = this.error;
      this.error = null; // reported once; later calls see the end
      return Promise.reject(e);
    }
    if (this.ended) return Promise.resolve({ value: undefined, done: true });
    return new Promise((resolve, reject) => {
      this.waiter = { resolve, reject };
    });
  }

  return(): Promise<IteratorResult<GenerateEvent>> {
    this.items.length = 0;
    this.error = null;
    this.ended = true;
    this.settleWaiter();
    this.closeOnce();
    return Promise.resolve({ value: undefined, done: true });
  }

  private settleWaiter(): void {
    const w = this.waiter;
    if (!w) return;
    this.waiter = null;
    if (this.error) {
      const e = this.error;
      this.error = null;
      w.reject(e);
    } else if (this.items.length > 0) w.resolve({ value: this.items.shift()!, done: false });
    else w.resolve({ value: undefined, done: true });
  }

  private closeOnce(): void {
    const f = this.onClose;
    this.onClose = null;
    f?.();
  }
}

// A token bucket: `burst` tokens, refilled at `perSecond`. Pure apart from the injected clock.
export class TokenBucket {
  readonly #perMs: number;
  readonly #burst: number;
  readonly #now: () => number;
  #tokens: number;
  #last: number;

  constructor(perSecond: number, burst: number, now: () => number = Date.now) {
    if (!(perSecond > 0) || !(burst >= 1)) throw new RangeError('token bucket needs perSecond > 0 and burst >= 1');
    this.#perMs = perSecond / 1000;
    this.#burst = burst;
    this.#now = now;
    this.#tokens = burst;
    this.#last = now();
  }

  /** Takes one token if there is one. */
  tryTake(): boolean {
    const t = this.#now();
    // A clock that goes backwards refills nothing rather than draining the bucket.
    const elapsed = Math.max(0, t - this.#last);
    this.#last = Math.max(this.#last, t);
    this.#tokens = Math.min(this.#burst, this.#tokens + elapsed * this.#perMs);
    if (this.#tokens < 1) return false;
    this.#tokens -= 1;
    return true;
  }

  /** Gives back a token taken for an attempt that then failed for another reason. */
  refund(): void {
    this.#tokens = Math.min(this.#burst, this.#tokens + 1);
  }
}

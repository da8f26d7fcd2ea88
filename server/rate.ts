// Rate limits for attestations, per client address and in total. Pure apart from the injected
// clock.
//
// Both use GCRA (the generic cell rate algorithm): one "theoretical arrival time" per bucket
// instead of a token count, which gives the exact time until the next request would pass, so
// every refusal carries an honest Retry-After.
//
// The total limit is where strangers compete with everyone else, so a refusal there is also a
// reservation: the address is given the next free place in time and told when to come back,
// and it holds that place until then. Strangers on many addresses then queue beside a new
// client instead of winning every race for each freed place: a newcomer waits at most one
// place per address ahead of it, and gets in within the Retry-After it was given.

/** One GCRA bucket: `perSecond` sustained, `burst` at once. */
export class RateBucket {
  readonly #intervalMs: number;
  readonly #toleranceMs: number;
  /** Theoretical arrival time: when the bucket would be empty-but-allowed again, in ms. */
  #tat = -Infinity;

  constructor(perSecond: number, burst: number) {
    if (!(perSecond > 0) || !Number.isFinite(perSecond) || !(burst >= 1)) {
      throw new RangeError('a rate bucket needs perSecond > 0 and burst >= 1');
    }
    this.#intervalMs = 1000 / perSecond;
    this.#toleranceMs = (burst - 1) * this.#intervalMs;
  }

  /** Takes one place now if there is one; otherwise how many ms until there is. */
  take(now: number): { ok: true } | { ok: false; waitMs: number } {
    const earliest = this.#tat - this.#toleranceMs;
    if (now < earliest) return { ok: false, waitMs: earliest - now };
    this.#tat = Math.max(this.#tat, now) + this.#intervalMs;
    return { ok: true };
  }

  /** Takes the next place whether or not it is free yet; returns when it is (ms since the epoch). */
  reserve(now: number): number {
    const at = Math.max(now, this.#tat - this.#toleranceMs);
    this.#tat = Math.max(this.#tat, now) + this.#intervalMs;
    return at;
  }

  /** Undoes one take() for a request that was then not served. */
  giveBack(): void {
    this.#tat -= this.#intervalMs;
  }

  /** The earliest time a place is free (ms since the epoch). */
  nextFree(now: number): number {
    return Math.max(now, this.#tat - this.#toleranceMs);
  }

  /** Whether the bucket has refilled completely: then it is no different from a new one. */
  isFull(now: number): boolean {
    return now >= this.#tat;
  }
}

export interface AttestationRateOptions {
  /** Per client address: sustained per second, and the burst above it. */
  perAddressRate: number;
  perAddressBurst: number;
  /** Every address together, per second (burst: one second's worth, at least 1). */
  totalRate: number;
  /** Longest a reservation may lie ahead; past it refusals carry a hint but reserve nothing. */
  maxReservationAheadMs?: number;
  /** How long after its time a reservation is held before it lapses. */
  reservationGraceMs?: number;
  /** Addresses remembered at once (buckets and reservations); the oldest full ones go first. */
  maxAddresses?: number;
  now?: () => number;
}

export type RateVerdict = { ok: true } | { ok: false; retryAfterSeconds: number; scope: 'address' | 'total' };

interface AddressState {
  bucket: RateBucket;
  /** A place reserved in the total limit, ms since the epoch. */
  reservedAt?: number;
}

export class AttestationRateLimiter {
  readonly #opts: Required<Omit<AttestationRateOptions, 'now'>>;
  readonly #now: () => number;
  readonly #total: RateBucket;
  /** Least recently touched first. */
  readonly #addresses = new Map<string, AddressState>();

  constructor(opts: AttestationRateOptions) {
    this.#opts = {
      maxReservationAheadMs: 60_000,
      reservationGraceMs: 10_000,
      maxAddresses: 100_000,
      ...opts,
    };
    this.#now = opts.now ?? Date.now;
    this.#total = new RateBucket(opts.totalRate, Math.max(1, Math.floor(opts.totalRate)));
    // Validates the per-address parameters once, up front.
    new RateBucket(opts.perAddressRate, opts.perAddressBurst);
  }

  /** Admits one attestation from `address` (already reduced to its key: client-address.ts) or says when to retry. */
  check(address: string): RateVerdict {
    const now = this.#now();
    const state = this.#state(address, now);

    if (state.reservedAt !== undefined) {
      if (now < state.reservedAt) return refuse(state.reservedAt - now, 'total');
      // The place was paid for, in the address's own bucket and in the total, when it was reserved.
      const lapsed = now > state.reservedAt + this.#opts.reservationGraceMs;
      state.reservedAt = undefined;
      if (!lapsed) return { ok: true };
    }

    const own = state.bucket.take(now);
    if (!own.ok) return refuse(own.waitMs, 'address');
    if (this.#total.take(now).ok) return { ok: true };
    const at = this.#total.nextFree(now);
    if (at - now > this.#opts.maxReservationAheadMs) {
      state.bucket.giveBack(); // not served and nothing reserved: the address is not charged
      return refuse(at - now, 'total');
    }
    state.reservedAt = this.#total.reserve(now);
    return refuse(state.reservedAt - now, 'total');
  }

  /** Addresses currently remembered (for tests and metrics). */
  get trackedAddresses(): number {
    return this.#addresses.size;
  }

  #state(address: string, now: number): AddressState {
    let state = this.#addresses.get(address);
    if (state) {
      // Most recently touched last.
      this.#addresses.delete(address);
    } else {
      state = { bucket: new RateBucket(this.#opts.perAddressRate, this.#opts.perAddressBurst) };
      this.#prune(now);
    }
    this.#addresses.set(address, state);
    return state;
  }

  /** Keeps the table bounded: first forgets what a fresh entry would equal, then the oldest. */
  #prune(now: number): void {
    if (this.#addresses.size < this.#opts.maxAddresses) return;
    for (const [a, s] of this.#addresses) {
      if (this.#addresses.size < this.#opts.maxAddresses) return;
      if (s.reservedAt === undefined && s.bucket.isFull(now)) this.#addresses.delete(a);
    }
    while (this.#addresses.size >= this.#opts.maxAddresses) {
      const oldest = this.#addresses.keys().next().value!;
      this.#addresses.delete(oldest);
    }
  }
}

function refuse(waitMs: number, scope: 'address' | 'total'): RateVerdict {
  return { ok: false, retryAfterSeconds: Math.max(1, Math.ceil(waitMs / 1000)), scope };
}

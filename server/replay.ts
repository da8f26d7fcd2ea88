// Replay protection for one session's encapsulated requests. A request is identified by its HPKE
// `enc` (the sender's ephemeral public key, fresh for every request); a second request with the
// same `enc` in the same session is a replay. The entries live exactly as long as the session's
// key: once the key is wiped no request for it can be decrypted, so they are dropped with it.
//
// Memory is bounded: at most `maxConfirmed` authenticated requests per session. A session that
// reaches its bound refuses further requests (fail closed) instead of forgetting old entries,
// which would reopen them to replay.
//
// A chunked request is recorded when its header arrives, before anything in it is authenticated,
// so that two concurrent copies cannot both pass. Such a record is provisional: it does not count
// against the bound until the request has authenticated (confirm), because anyone who knows a
// session id can send headers; counting them would let a stranger spend another client's session.
// Provisional entries are bounded by the connections that carry them (each holds one, for at most
// the request timeout).
export type ReplayVerdict = 'fresh' | 'replay' | 'full';

export class ReplayGuard {
  readonly #maxConfirmed: number;
  /** Every recorded enc, confirmed or provisional; allocated on first use. */
  #all: Set<string> | undefined;
  #provisional: Set<string> | undefined;

  constructor(maxConfirmed: number) {
    if (!Number.isInteger(maxConfirmed) || maxConfirmed < 1) throw new RangeError('maxConfirmed must be a positive integer');
    this.#maxConfirmed = maxConfirmed;
  }

  /** Whether this enc was already recorded (a cheap check before spending work on decryption). */
  has(enc: Uint8Array): boolean {
    return this.#all?.has(encKey(enc)) ?? false;
  }

  /**
   * Records the enc unless it is already there. Check and insert are one synchronous step, so two
   * copies of one request racing through the event loop cannot both be 'fresh'. A `provisional`
   * record (unauthenticated) is never 'full'; confirm() counts it later.
   */
  record(enc: Uint8Array, opts: { provisional?: boolean } = {}): ReplayVerdict {
    const k = encKey(enc);
    if (this.#all?.has(k)) return 'replay';
    if (!opts.provisional && this.confirmed >= this.#maxConfirmed) return 'full';
    (this.#all ??= new Set()).add(k);
    if (opts.provisional) (this.#provisional ??= new Set()).add(k);
    return 'fresh';
  }

  /**
   * Makes a provisional record count, once its request has authenticated: 'full' when the session
   * has no room left (the record stays provisional; unrecord it). A record that is gone because
   * the session ended meanwhile is 'fresh', and nothing is added.
   */
  confirm(enc: Uint8Array): ReplayVerdict {
    const k = encKey(enc);
    if (!this.#provisional?.has(k)) return 'fresh';
    if (this.confirmed >= this.#maxConfirmed) return 'full';
    this.#provisional.delete(k);
    return 'fresh';
  }

  /** Removes one record: for a request whose header was recorded but which then failed to authenticate. */
  unrecord(enc: Uint8Array): void {
    const k = encKey(enc);
    this.#all?.delete(k);
    this.#provisional?.delete(k);
  }

  /** Drops every record; called when the session ends. */
  clear(): void {
    this.#all = undefined;
    this.#provisional = undefined;
  }

  /** Records, confirmed or provisional. */
  get size(): number {
    return this.#all?.size ?? 0;
  }

  get confirmed(): number {
    return (this.#all?.size ?? 0) - (this.#provisional?.size ?? 0);
  }
}

// `enc` is public (it travels in the clear), so a compact string form is fine as a set key:
// one char per byte keeps 32-byte X25519 encs at 32 UTF-16 units.
function encKey(enc: Uint8Array): string {
  let s = '';
  for (let i = 0; i < enc.length; i++) s += String.fromCharCode(enc[i]!);
  return s;
}

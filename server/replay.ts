// Replay cache for encapsulated requests. An encapsulated request is identified by its key id
// and its HPKE `enc` (the sender's ephemeral public key, fresh for every request); a second
// request with the same pair is a replay. Entries live exactly as long as the key: once the
// key is destroyed no request for it can be decrypted, so the entries are dropped with it.
//
// Memory is bounded: at most `maxPerKey` confirmed entries per key and at most 256 keys. A key
// that reaches its bound refuses further requests (fail closed) instead of forgetting old
// entries, which would reopen them to replay.
//
// A chunked request is recorded when its header arrives, before anything in it is authenticated,
// so that two concurrent copies cannot both pass. Such a record is provisional: it does not count
// against the key's bound until the request has authenticated (confirm), because anyone who knows
// a one-byte key id can send headers; counting them would let a stranger spend another client's
// session. Provisional entries are bounded by the connections that carry them (each holds one, for
// at most the request timeout).
export type ReplayVerdict = 'fresh' | 'replay' | 'full';

interface KeyEntries {
  /** Every recorded enc, confirmed or provisional. */
  all: Set<string>;
  /** Those not yet authenticated. */
  provisional: Set<string>;
}

export class ReplayCache {
  readonly #maxPerKey: number;
  readonly #seen = new Map<number, KeyEntries>();

  constructor(maxPerKey: number) {
    if (!Number.isInteger(maxPerKey) || maxPerKey < 1) throw new RangeError('maxPerKey must be a positive integer');
    this.#maxPerKey = maxPerKey;
  }

  /** Whether this pair was already recorded (a cheap check before spending work on decryption). */
  has(keyId: number, enc: Uint8Array): boolean {
    return this.#seen.get(keyId)?.all.has(encKey(enc)) ?? false;
  }

  /**
   * Records the pair unless it is already there. Check and insert are one synchronous step,
   * so two copies of one request racing through the event loop cannot both be 'fresh'.
   * A `provisional` record (unauthenticated) is never 'full'; confirm() counts it later.
   */
  record(keyId: number, enc: Uint8Array, opts: { provisional?: boolean } = {}): ReplayVerdict {
    let entries = this.#seen.get(keyId);
    const k = encKey(enc);
    if (entries?.all.has(k)) return 'replay';
    if (!opts.provisional && entries && this.#confirmed(entries) >= this.#maxPerKey) return 'full';
    if (!entries) {
      entries = { all: new Set(), provisional: new Set() };
      this.#seen.set(keyId, entries);
    }
    entries.all.add(k);
    if (opts.provisional) entries.provisional.add(k);
    return 'fresh';
  }

  /**
   * Makes a provisional record count, once its request has authenticated: 'full' when the key
   * has no room left (the record stays provisional; unrecord it). A record that is gone because
   * its key was destroyed meanwhile is 'fresh' and nothing is added for the dead key.
   */
  confirm(keyId: number, enc: Uint8Array): ReplayVerdict {
    const entries = this.#seen.get(keyId);
    const k = encKey(enc);
    if (!entries?.provisional.has(k)) return 'fresh';
    if (this.#confirmed(entries) >= this.#maxPerKey) return 'full';
    entries.provisional.delete(k);
    return 'fresh';
  }

  /** Removes one pair: for a request whose header was recorded but which then failed to authenticate. */
  unrecord(keyId: number, enc: Uint8Array): void {
    const entries = this.#seen.get(keyId);
    const k = encKey(enc);
    entries?.all.delete(k);
    entries?.provisional.delete(k);
  }

  /** Drops every entry of a key; called when the key is destroyed. */
  forget(keyId: number): void {
    this.#seen.delete(keyId);
  }

  /** Whether any entry of this key remains (the key id must not be reused while one does). */
  holds(keyId: number): boolean {
    return this.#seen.has(keyId);
  }

  get size(): number {
    let n = 0;
    for (const e of this.#seen.values()) n += e.all.size;
    return n;
  }

  clear(): void {
    this.#seen.clear();
  }

  #confirmed(entries: KeyEntries): number {
    return entries.all.size - entries.provisional.size;
  }
}

// `enc` is public (it travels in the clear), so a compact string form is fine as a map key:
// one char per byte keeps 32-byte X25519 encs at 32 UTF-16 units.
function encKey(enc: Uint8Array): string {
  let s = '';
  for (let i = 0; i < enc.length; i++) s += String.fromCharCode(enc[i]!);
  return s;
}

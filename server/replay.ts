// Replay cache for encapsulated requests. An encapsulated request is identified by its key id
// and its HPKE `enc` (the sender's ephemeral public key, fresh for every request); a second
// request with the same pair is a replay. Entries live exactly as long as the key: once the
// key is destroyed no request for it can be decrypted, so the entries are dropped with it.
//
// Memory is bounded: at most `maxPerKey` entries per key and at most 256 keys. A key that
// reaches its bound refuses further requests (fail closed) instead of forgetting old entries,
// which would reopen them to replay.
export type ReplayVerdict = 'fresh' | 'replay' | 'full';

export class ReplayCache {
  readonly #maxPerKey: number;
  readonly #seen = new Map<number, Set<string>>();

  constructor(maxPerKey: number) {
    if (!Number.isInteger(maxPerKey) || maxPerKey < 1) throw new RangeError('maxPerKey must be a positive integer');
    this.#maxPerKey = maxPerKey;
  }

  /** Whether this pair was already recorded (a cheap check before spending work on decryption). */
  has(keyId: number, enc: Uint8Array): boolean {
    return this.#seen.get(keyId)?.has(encKey(enc)) ?? false;
  }

  /**
   * Records the pair unless it is already there. Check and insert are one synchronous step,
   * so two copies of one request racing through the event loop cannot both be 'fresh'.
   */
  record(keyId: number, enc: Uint8Array): ReplayVerdict {
    let set = this.#seen.get(keyId);
    const k = encKey(enc);
    if (set?.has(k)) return 'replay';
    if (set && set.size >= this.#maxPerKey) return 'full';
    if (!set) {
      set = new Set();
      this.#seen.set(keyId, set);
    }
    set.add(k);
    return 'fresh';
  }

  /** Removes one pair: for a request whose header was recorded but which then failed to authenticate. */
  unrecord(keyId: number, enc: Uint8Array): void {
    this.#seen.get(keyId)?.delete(encKey(enc));
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
    for (const s of this.#seen.values()) n += s.size;
    return n;
  }

  clear(): void {
    this.#seen.clear();
  }
}

// `enc` is public (it travels in the clear), so a compact string form is fine as a map key:
// one char per byte keeps 32-byte X25519 encs at 32 UTF-16 units.
function encKey(enc: Uint8Array): string {
  let s = '';
  for (let i = 0; i < enc.length; i++) s += String.fromCharCode(enc[i]!);
  return s;
}

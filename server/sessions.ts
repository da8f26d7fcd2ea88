// Attested sessions: each one is an X25519 key pair under its own one-byte OHTTP key id,
// generated in memory, living `lifetime` and then destroyed: the private key is overwritten
// with zeros and dropped, and its replay entries with it. Only then does its key id return
// to the pool, at the back of the queue, so an id is reused as late as possible and a client
// holding an expired key meets "unknown key" rather than someone else's session.
import { ServerError } from './errors.js';
import { MAX_KEY_IDS } from './limits.js';
import { TokenBucket } from './rate.js';
import type { ReplayCache } from './replay.js';

/** What a key generator returns for one key id (transport's generateKeyConfig has this shape). */
export interface GeneratedKey<C> {
  config: C;
  /** The encoded key configuration (RFC 9458 section 3), as published in the evidence. */
  encoded: Uint8Array;
  privateKey: Uint8Array;
}

export interface Session<C> {
  readonly keyId: number;
  readonly config: C;
  readonly encodedConfig: Uint8Array;
  /** Zeroed when the session ends; never copied elsewhere by the server. */
  readonly privateKey: Uint8Array;
  readonly createdAt: number;
  /** Milliseconds since the epoch. */
  readonly expiresAt: number;
}

export interface SessionStoreOptions<C> {
  generateKey(keyId: number): GeneratedKey<C>;
  replay: ReplayCache;
  maxSessions: number;
  lifetimeMs: number;
  sessionsPerSecond: number;
  sessionBurst: number;
  now?: () => number;
}

interface Entry<C> {
  session: Session<C>;
  timer: ReturnType<typeof setTimeout>;
}

export class SessionStore<C> {
  readonly #opts: SessionStoreOptions<C>;
  readonly #now: () => number;
  readonly #live = new Map<number, Entry<C>>();
  /** Free key ids, least recently used first. */
  readonly #free: number[] = [];
  readonly #bucket: TokenBucket;
  #closed = false;

  constructor(opts: SessionStoreOptions<C>) {
    if (!Number.isInteger(opts.maxSessions) || opts.maxSessions < 1 || opts.maxSessions > MAX_KEY_IDS) {
      throw new ServerError('bad_config', `maxSessions must be 1..${MAX_KEY_IDS}`);
    }
    if (!(opts.lifetimeMs > 0)) throw new ServerError('bad_config', 'session lifetime must be positive');
    this.#opts = opts;
    this.#now = opts.now ?? Date.now;
    this.#bucket = new TokenBucket(opts.sessionsPerSecond, opts.sessionBurst, this.#now);
    for (let id = 0; id < MAX_KEY_IDS; id++) this.#free.push(id);
  }

  /**
   * A new session, or ServerError: 'too_many_sessions' when the live limit is reached,
   * 'session_rate' when new sessions come faster than allowed, 'closed' after close().
   */
  create(): Session<C> {
    if (this.#closed) throw new ServerError('closed', 'the session store is closed');
    this.#sweep();
    if (this.#live.size >= this.#opts.maxSessions) throw new ServerError('too_many_sessions', 'too many live sessions');
    if (!this.#bucket.tryTake()) throw new ServerError('session_rate', 'new sessions are rate limited');
    const keyId = this.#takeFreeId();
    if (keyId === undefined) {
      this.#bucket.refund();
      throw new ServerError('too_many_sessions', 'no free key id');
    }
    let key: GeneratedKey<C>;
    try {
      key = this.#opts.generateKey(keyId);
    } catch (e) {
      this.#free.unshift(keyId);
      this.#bucket.refund();
      throw e;
    }
    const createdAt = this.#now();
    const session: Session<C> = Object.freeze({
      keyId,
      config: key.config,
      encodedConfig: key.encoded,
      privateKey: key.privateKey,
      createdAt,
      expiresAt: createdAt + this.#opts.lifetimeMs,
    });
    const timer = setTimeout(() => this.destroy(keyId), this.#opts.lifetimeMs);
    // An expiry timer must not keep the process alive on its own.
    timer.unref?.();
    this.#live.set(keyId, { session, timer });
    return session;
  }

  /** The live session for a key id, or undefined when none is live (never created, expired, destroyed). */
  get(keyId: number): Session<C> | undefined {
    const entry = this.#live.get(keyId);
    if (!entry) return undefined;
    // The timer may fire late; the clock is the authority on expiry.
    if (this.#now() >= entry.session.expiresAt) {
      this.destroy(keyId);
      return undefined;
    }
    return entry.session;
  }

  /** Ends a session: wipes its private key, forgets its replay entries, frees the key id. */
  destroy(keyId: number): void {
    const entry = this.#live.get(keyId);
    if (!entry) return;
    clearTimeout(entry.timer);
    this.#live.delete(keyId);
    entry.session.privateKey.fill(0);
    this.#opts.replay.forget(keyId);
    this.#free.push(keyId);
  }

  /** Destroys every session and refuses new ones. */
  close(): void {
    this.#closed = true;
    for (const keyId of [...this.#live.keys()]) this.destroy(keyId);
  }

  get size(): number {
    return this.#live.size;
  }

  get closed(): boolean {
    return this.#closed;
  }

  #sweep(): void {
    const t = this.#now();
    for (const [keyId, entry] of this.#live) if (t >= entry.session.expiresAt) this.destroy(keyId);
  }

  #takeFreeId(): number | undefined {
    // An id is only in the free list once its key is wiped and its replay entries are gone;
    // the extra check keeps that true even if the replay cache were shared and misused.
    for (let i = 0; i < this.#free.length; i++) {
      const id = this.#free[i]!;
      if (!this.#opts.replay.holds(id)) {
        this.#free.splice(i, 1);
        return id;
      }
    }
    return undefined;
  }
}

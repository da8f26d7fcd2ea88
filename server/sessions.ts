// Attested sessions, named by the client (`sid` in the path, contract version 2). Each session
// owns one X25519 key pair under a random one-byte OHTTP key id, generated in memory when the
// session is attested and wiped (overwritten with zeros, then dropped) when the session ends:
// at its expiry, when it has carried no authenticated request within the unused timeout, when the
// store is full and it is the oldest session never used, or when the server stops.
//
// The store is bounded by `maxSessions` (memory), not by the key id's byte. A stranger who
// attests without ever sending a request can only fill it with never-used sessions, and those
// are the first to go: a new attestation evicts the oldest of them, so the attack keeps no one
// out for longer than it lasts and never touches a session in use. Only when every live session
// has carried a request is a new one refused (429, with the time until the first one expires).
//
// Sessions live in two insertion-ordered maps (creation order = expiry order, since every
// session has the same lifetime), so expiry, the unused timeout and eviction each cost O(1) per
// session ended, with no timer per session.
import { ServerError } from './errors.js';
import { ReplayGuard } from './replay.js';

/** What a key generator returns for one key id (transport's generateKeyConfig has this shape). */
export interface GeneratedKey<C> {
  config: C;
  /** The encoded key configuration (RFC 9458 section 3), as published in the evidence. */
  encoded: Uint8Array;
  privateKey: Uint8Array;
}

export interface Session<C> {
  /** The client-chosen session id. */
  readonly id: string;
  readonly keyId: number;
  readonly config: C;
  readonly encodedConfig: Uint8Array;
  /** Zeroed when the session ends; never copied elsewhere by the server. */
  readonly privateKey: Uint8Array;
  /** The nonce the session was attested with (lowercase hex): a retry with it gets the same evidence. */
  readonly nonce: string;
  readonly createdAt: number;
  /** Milliseconds since the epoch, a whole second (the evidence signs Unix seconds). */
  readonly expiresAt: number;
  /** This session's encapsulated requests seen so far (replay protection). */
  readonly replay: ReplayGuard;
}

export interface SessionStoreOptions<C> {
  generateKey(keyId: number): GeneratedKey<C>;
  maxSessions: number;
  lifetimeMs: number;
  unusedTimeoutMs: number;
  maxRequestsPerSession: number;
  now?: () => number;
  randomByte?: () => number;
  /** How often keys past their time are wiped when no traffic triggers it (ms); 0 turns it off (tests). */
  sweepIntervalMs?: number;
}

interface Entry<C> {
  session: Session<C>;
  used: boolean;
  /** The evidence document, kept while the session is unused so a retried GET gets it again. */
  evidence: Promise<string> | undefined;
}

export interface Begun<C> {
  session: Session<C>;
  /** Keeps the evidence made for the session, so that a retried GET (retryEvidence) answers the same. */
  setEvidence(evidence: Promise<string>): void;
}

export class SessionStore<C> {
  readonly #opts: SessionStoreOptions<C>;
  readonly #now: () => number;
  readonly #randomByte: () => number;
  /** Every live session, oldest first. */
  readonly #live = new Map<string, Entry<C>>();
  /** The live sessions that have carried no authenticated request yet, oldest first. */
  readonly #unused = new Map<string, Entry<C>>();
  #closed = false;
  readonly #sweeper: ReturnType<typeof setInterval> | undefined;

  constructor(opts: SessionStoreOptions<C>) {
    if (!Number.isInteger(opts.maxSessions) || opts.maxSessions < 1) throw new ServerError('bad_config', 'maxSessions must be a positive integer');
    if (!(opts.lifetimeMs >= 1000)) throw new ServerError('bad_config', 'session lifetime must be at least one second');
    if (!(opts.unusedTimeoutMs > 0)) throw new ServerError('bad_config', 'session unused timeout must be positive');
    this.#opts = opts;
    this.#now = opts.now ?? Date.now;
    this.#randomByte = opts.randomByte ?? (() => globalThis.crypto.getRandomValues(new Uint8Array(1))[0]!);
    // "The key is destroyed at expiresAt at the latest" must hold on an idle server too.
    const every = opts.sweepIntervalMs ?? 1000;
    if (every > 0) {
      this.#sweeper = setInterval(() => this.sweep(), every);
      this.#sweeper.unref?.();
    }
  }

  /**
   * Starts session `sid` attested with `nonce` (lowercase hex). A safe retry of an attestation is
   * answered from retryEvidence() before this is called. ServerError: 'session_live' (409) when
   * `sid` is live; 'too_many_sessions' (429, `retryAfterSeconds`) when full of sessions in use;
   * 'closed'.
   */
  begin(sid: string, nonce: string): Begun<C> {
    if (this.#closed) throw new ServerError('closed', 'the session store is closed');
    this.sweep();
    if (this.#live.has(sid)) throw new ServerError('session_live', 'this session id is live');
    if (this.#live.size >= this.#opts.maxSessions) {
      const oldestUnused = this.#unused.keys().next();
      if (oldestUnused.done) {
        const first = this.#live.values().next().value!;
        const seconds = Math.max(1, Math.ceil((first.session.expiresAt - this.#now()) / 1000));
        throw Object.assign(new ServerError('too_many_sessions', 'every live session is in use'), { retryAfterSeconds: seconds });
      }
      this.destroy(oldestUnused.value);
    }
    const keyId = this.#randomByte() & 0xff;
    const key = this.#opts.generateKey(keyId);
    const createdAt = this.#now();
    const session: Session<C> = Object.freeze({
      id: sid,
      keyId,
      config: key.config,
      encodedConfig: key.encoded,
      privateKey: key.privateKey,
      nonce,
      createdAt,
      // Rounded down: the evidence states whole seconds and the key must be gone by then.
      expiresAt: Math.floor((createdAt + this.#opts.lifetimeMs) / 1000) * 1000,
      replay: new ReplayGuard(this.#opts.maxRequestsPerSession),
    });
    const entry: Entry<C> = { session, used: false, evidence: undefined };
    this.#live.set(sid, entry);
    this.#unused.set(sid, entry);
    return {
      session,
      setEvidence: (evidence) => {
        if (this.#live.get(sid) === entry && !entry.used) entry.evidence = evidence;
      },
    };
  }

  /**
   * The evidence of a safe retry: `sid` is live, unused, was attested with this nonce and its
   * evidence exists. A retry costs nothing to answer, so the caller need not rate-limit it.
   */
  retryEvidence(sid: string, nonce: string): Promise<string> | undefined {
    const entry = this.#live.get(sid);
    if (!entry || entry.used || entry.session.nonce !== nonce || this.#ended(entry, this.#now())) return undefined;
    return entry.evidence;
  }

  /** The live session named `sid`, or undefined (never attested, ended, or past its time). */
  get(sid: string): Session<C> | undefined {
    const entry = this.#live.get(sid);
    if (!entry) return undefined;
    if (this.#ended(entry, this.#now())) {
      this.destroy(sid);
      return undefined;
    }
    return entry.session;
  }

  /**
   * Marks a session as carrying an authenticated request: from now on it is never evicted for
   * room nor ended as unused, and its evidence is no longer kept for retries.
   */
  markUsed(session: Session<C>): void {
    const entry = this.#live.get(session.id);
    if (!entry || entry.session !== session || entry.used) return;
    entry.used = true;
    entry.evidence = undefined;
    this.#unused.delete(session.id);
  }

  /** Whether `session` is still the live session under its id. */
  isLive(session: Session<C>): boolean {
    return this.get(session.id) === session;
  }

  /** Ends a session: wipes its private key and forgets its replay entries. */
  destroy(sid: string): void {
    const entry = this.#live.get(sid);
    if (!entry) return;
    this.#live.delete(sid);
    this.#unused.delete(sid);
    entry.evidence = undefined;
    entry.session.privateKey.fill(0);
    entry.session.replay.clear();
  }

  /** Ends every session past its expiry or unused timeout. */
  sweep(): void {
    const t = this.#now();
    for (const [sid, entry] of this.#unused) {
      if (t < entry.session.createdAt + this.#opts.unusedTimeoutMs) break;
      this.destroy(sid);
    }
    for (const [sid, entry] of this.#live) {
      if (t < entry.session.expiresAt) break;
      this.destroy(sid);
    }
  }

  /** Destroys every session and refuses new ones. */
  close(): void {
    this.#closed = true;
    if (this.#sweeper) clearInterval(this.#sweeper);
    for (const sid of [...this.#live.keys()]) this.destroy(sid);
  }

  get size(): number {
    return this.#live.size;
  }

  /** Live sessions that have carried no request yet. */
  get unusedCount(): number {
    return this.#unused.size;
  }

  get closed(): boolean {
    return this.#closed;
  }

  #ended(entry: Entry<C>, t: number): boolean {
    // Timers are not used: the clock is the authority on both limits.
    return t >= entry.session.expiresAt || (!entry.used && t >= entry.session.createdAt + this.#opts.unusedTimeoutMs);
  }
}

// Every limit and timeout of the server in one validated object. Defaults are for a single
// small model on a few cores; `sealed serve` maps flags and environment variables onto it.
import { z } from 'zod';
import { ServerError } from './errors.js';

/** OHTTP key ids are one byte: at most 256 keys can be live at once. */
export const MAX_KEY_IDS = 256;

const int = (min: number, max: number) => z.number().int().min(min).max(max);

export const limitsSchema = z.strictObject({
  /** Largest request body accepted on the outer route and by the inner app (bytes). */
  maxBodyBytes: int(1024, 64 * 1024 * 1024),
  /** Largest `max_tokens` a request may ask for. */
  maxTokensCeiling: int(1, 1 << 20),
  /** Generations running in the engine at once. */
  maxConcurrentGenerations: int(1, 1024),
  /** Generations waiting for a slot; beyond this the request is refused as overloaded. */
  maxQueue: int(0, 65536),
  /** Longest a generation may wait in the queue (ms). */
  queueTimeoutMs: int(1, 3_600_000),
  /** Longest one generation may run (ms); it is cancelled then. */
  generationTimeoutMs: int(1, 24 * 3_600_000),
  /** Time allowed to receive a whole request, headers and body (ms). */
  requestTimeoutMs: int(100, 3_600_000),
  /** Time allowed to receive the request headers (ms). */
  headersTimeoutMs: int(100, 3_600_000),
  /** Live attested sessions (each holds one OHTTP key id). */
  maxSessions: int(1, MAX_KEY_IDS),
  /** Lifetime of a session key (seconds). */
  keyLifetimeSeconds: int(1, 7 * 24 * 3600),
  /** Sustained rate of new sessions (per second) and the burst allowed above it. */
  sessionsPerSecond: z.number().positive().max(100_000),
  sessionBurst: int(1, 100_000),
  /** Encapsulated requests one session key accepts (bounds the replay cache). */
  maxRequestsPerSession: int(1, 1_000_000),
  /** Grace period for running requests on shutdown before they are cancelled (ms). */
  shutdownGraceMs: int(0, 3_600_000),
});

export type Limits = z.infer<typeof limitsSchema>;

export const DEFAULT_LIMITS: Readonly<Limits> = Object.freeze({
  maxBodyBytes: 1024 * 1024,
  maxTokensCeiling: 1024,
  maxConcurrentGenerations: 16,
  maxQueue: 64,
  queueTimeoutMs: 30_000,
  generationTimeoutMs: 300_000,
  requestTimeoutMs: 30_000,
  headersTimeoutMs: 10_000,
  maxSessions: MAX_KEY_IDS,
  keyLifetimeSeconds: 600,
  sessionsPerSecond: 10,
  sessionBurst: 64,
  maxRequestsPerSession: 1024,
  shutdownGraceMs: 10_000,
});

/** Defaults overridden by `overrides`; throws ServerError('bad_config') naming the first bad key. */
export function resolveLimits(overrides: Partial<Limits> = {}): Limits {
  const merged = { ...DEFAULT_LIMITS, ...stripUndefined(overrides) };
  const parsed = limitsSchema.safeParse(merged);
  if (!parsed.success) {
    const issue = parsed.error.issues[0];
    const key = issue?.path.join('.') || 'limits';
    throw new ServerError('bad_config', `invalid limit ${key}: ${issue?.message ?? 'invalid'}`);
  }
  if (parsed.data.headersTimeoutMs > parsed.data.requestTimeoutMs) {
    throw new ServerError('bad_config', 'invalid limit headersTimeoutMs: must not exceed requestTimeoutMs');
  }
  return parsed.data;
}

function stripUndefined<T extends object>(o: T): Partial<T> {
  const out: Partial<T> = {};
  for (const [k, v] of Object.entries(o)) if (v !== undefined) (out as Record<string, unknown>)[k] = v;
  return out;
}

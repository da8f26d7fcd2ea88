// Waiting out a server's "not now" (429, 503 with Retry-After) a bounded number of times.
// A server, or anyone between, can ask for any wait; the client never waits longer than its
// own limit, and says so instead of hanging.
import { SealedClientError } from './errors.js';

export interface RetryLimits {
  /** How many times one refusal is waited out before it becomes the error (0: never). */
  retries: number;
  /** The longest single wait accepted (ms); a longer Retry-After fails at once. */
  maxWaitMs: number;
}

export const DEFAULT_RETRY: RetryLimits = { retries: 2, maxWaitMs: 10_000 };

/** Retry-After when absent or unreadable: a refusal without a hint still gets a pause. */
const DEFAULT_WAIT_MS = 1_000;

/**
 * Retry-After (RFC 9110 section 10.2.3: delay-seconds or an HTTP-date) in milliseconds; absent
 * or malformed is the default pause, a date in the past is no wait.
 */
export function retryAfterMs(value: string | null, now = Date.now()): number {
  if (value === null) return DEFAULT_WAIT_MS;
  const v = value.trim();
  if (/^\d{1,10}$/.test(v)) return Number(v) * 1000;
  const at = Date.parse(v);
  if (!Number.isNaN(at) && /[a-z]/i.test(v)) return Math.max(0, at - now);
  return DEFAULT_WAIT_MS;
}

export function checkRetryLimits(v: unknown): RetryLimits {
  if (v === undefined) return DEFAULT_RETRY;
  if (typeof v !== 'object' || v === null) throw new SealedClientError('bad_options', 'retry must be an object');
  const o = v as Record<string, unknown>;
  for (const k of Object.keys(o)) if (k !== 'retries' && k !== 'maxWaitMs') throw new SealedClientError('bad_options', `retry has no option ${k}`);
  const retries = o.retries ?? DEFAULT_RETRY.retries;
  const maxWaitMs = o.maxWaitMs ?? DEFAULT_RETRY.maxWaitMs;
  if (!Number.isSafeInteger(retries) || (retries as number) < 0 || (retries as number) > 10) {
    throw new SealedClientError('bad_options', 'retry.retries must be an integer from 0 to 10');
  }
  if (!Number.isSafeInteger(maxWaitMs) || (maxWaitMs as number) < 0 || (maxWaitMs as number) > 300_000) {
    throw new SealedClientError('bad_options', 'retry.maxWaitMs must be an integer from 0 to 300000');
  }
  return { retries: retries as number, maxWaitMs: maxWaitMs as number };
}

/** Resolves after `ms`, or rejects with a `network` error as soon as `signal` aborts. */
export function sleep(ms: number, signal?: AbortSignal): Promise<void> {
  return new Promise((resolve, reject) => {
    const aborted = () => new SealedClientError('network', 'aborted while waiting to retry', { cause: signal?.reason });
    if (signal?.aborted) return reject(aborted());
    const onAbort = () => {
      clearTimeout(timer);
      reject(aborted());
    };
    const timer = setTimeout(() => {
      signal?.removeEventListener('abort', onAbort);
      resolve();
    }, ms);
    signal?.addEventListener('abort', onAbort, { once: true });
  });
}

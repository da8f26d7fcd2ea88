// Attestation from the client's side: fetch evidence for a fresh nonce, verify it
// completely (enclave/ does platform evidence, binding and policy), and turn it into a
// session: the key configuration to encrypt to, until when, and the report of what
// was checked. Nothing here sends a prompt; callers send only after this resolves.
import { bytesToHex, concatAll } from '../transport/bytes.js';
import { toBase64Url } from '../enclave/encoding.js';
import { verifyEvidence, type EvidenceVerification } from '../enclave/evidence.js';
import { AttestationError } from '../enclave/errors.js';
import type { Policy } from '../enclave/policy.js';
import { SealedClientError } from './errors.js';
import type { VerificationReport } from './report.js';
import { parseKeyConfig, type SessionKeyConfig } from './wire.js';
import { DEFAULT_RETRY, retryAfterMs, sleep, type RetryLimits } from './retry.js';
import type { EventListener } from './events.js';

/** Evidence documents are a few KiB (a TDX quote with collateral perhaps 100 KiB). */
const MAX_EVIDENCE_BYTES = 4 << 20;
/** Treat a session as expired this long before expiresAt, so a request in flight does not race the key's destruction. */
export const EXPIRY_MARGIN_MS = 5_000;

export interface AttestOptions {
  policy?: Policy;
  /** The policy keys the caller pinned, for the report. */
  pinned: string[];
  allowSimulation: boolean;
  fetch: typeof fetch;
  signal?: AbortSignal;
  /** How long a 429/503 answer (rate limit, server full, starting, draining) is waited out. */
  retry?: RetryLimits;
  onEvent?: EventListener;
  /** Where the attestation GET goes instead of the server (a forwarding proxy); the session path is appended as to the server's URL. */
  attestVia?: URL;
}

export interface Session {
  /** The session id this client chose; every request of the session goes under /v1/sessions/{id}/. */
  id: string;
  key: SessionKeyConfig;
  expiresAtMs: number;
  report: VerificationReport;
}

export function randomNonce(): Uint8Array {
  return globalThis.crypto.getRandomValues(new Uint8Array(32));
}

/** A fresh session id: 16 random bytes, base64url without padding (22 characters). */
export function randomSessionId(): string {
  return toBase64Url(globalThis.crypto.getRandomValues(new Uint8Array(16)));
}

/** The URL of a session's route (`attestation` or `ohttp`) under the server's base URL. */
export function sessionUrl(base: URL, sid: string, route: 'attestation' | 'ohttp'): URL {
  return new URL(`v1/sessions/${sid}/${route}`, base);
}

/**
 * Fetches and verifies evidence for a new session with a fresh id and nonce. Throws
 * SealedClientError; sends nothing else.
 */
export async function attest(base: URL, opts: AttestOptions): Promise<Session> {
  const nonce = randomNonce();
  const sid = randomSessionId();
  const url = sessionUrl(opts.attestVia ?? base, sid, 'attestation');
  url.searchParams.set('nonce', bytesToHex(nonce));
  const retry = opts.retry ?? DEFAULT_RETRY;
  let res: Response;
  for (let attempt = 0; ; attempt++) {
    try {
      res = await opts.fetch(url, { method: 'GET', headers: { accept: 'application/json' }, signal: opts.signal });
    } catch (cause) {
      throw new SealedClientError('network', 'could not reach the server for attestation', { cause });
    }
    if (res.status === 200) break;
    await res.body?.cancel().catch(() => {});
    if (res.status !== 429 && res.status !== 503) {
      throw new SealedClientError('attestation_unavailable', `attestation answered HTTP ${res.status}`, { status: res.status });
    }
    // A refused GET created no session, so asking again with the same sid and nonce is safe.
    const waitMs = retryAfterMs(res.headers.get('retry-after'));
    if (attempt >= retry.retries || waitMs > retry.maxWaitMs) {
      throw new SealedClientError(
        'attestation_unavailable',
        `attestation answered HTTP ${res.status} (server busy; it asked for a wait of ${Math.ceil(waitMs / 1000)} s${attempt > 0 ? ` after ${attempt} retries` : ''})`,
        { status: res.status },
      );
    }
    opts.onEvent?.({ type: 'retrying', what: 'attestation', status: res.status, waitMs });
    await sleep(waitMs, opts.signal);
  }
  const type = res.headers.get('content-type') ?? '';
  if (!/^application\/json\b/i.test(type)) {
    await res.body?.cancel().catch(() => {});
    throw new SealedClientError('attestation_unavailable', 'attestation is not application/json');
  }
  const evidence = parseEvidenceJson(await readBounded(res, MAX_EVIDENCE_BYTES));
  return verifySessionEvidence(evidence, nonce, sid, base, opts);
}

async function readBounded(res: Response, max: number): Promise<Uint8Array> {
  if (!res.body) return new Uint8Array(0);
  const reader = res.body.getReader();
  const parts: Uint8Array[] = [];
  let n = 0;
  for (;;) {
    let r: ReadableStreamReadResult<Uint8Array>;
    try {
      r = await reader.read();
    } catch (cause) {
      throw new SealedClientError('network', 'attestation response was cut off', { cause });
    }
    if (r.done) break;
    n += r.value.length;
    if (n > max) {
      await reader.cancel().catch(() => {});
      throw new SealedClientError('evidence_malformed', 'evidence document too large');
    }
    parts.push(r.value);
  }
  return concatAll(parts);
}

function parseEvidenceJson(bytes: Uint8Array): Record<string, unknown> {
  let value: unknown;
  try {
    value = JSON.parse(new TextDecoder('utf-8', { fatal: true }).decode(bytes));
  } catch (cause) {
    throw new SealedClientError('evidence_malformed', 'evidence is not JSON', { cause });
  }
  if (typeof value !== 'object' || value === null || Array.isArray(value)) {
    throw new SealedClientError('evidence_malformed', 'evidence is not a JSON object');
  }
  return value as Record<string, unknown>;
}

/**
 * Verifies one evidence document for `nonce`. Exported for tests and for callers that
 * obtained evidence themselves; `attest` is the normal entry.
 */
export async function verifySessionEvidence(
  evidence: Record<string, unknown>,
  nonce: Uint8Array,
  sid: string,
  base: URL,
  opts: { policy?: Policy; pinned: string[]; allowSimulation: boolean; now?: number },
): Promise<Session> {
  const now = opts.now ?? Date.now();
  let verified: EvidenceVerification;
  try {
    // One call checks the shape, platform allow-list, simulation opt-in, expiry, model pin, the
    // nonce/key/model binding, the platform signature chain and policy, and REPORT_DATA.
    verified = (await verifyEvidence(evidence, {
      nonce,
      session: sid,
      policy: opts.policy,
      allowSimulation: opts.allowSimulation,
      now: new Date(now),
    })).report;
  } catch (e) {
    throw rejection(e);
  }
  const checks = [...verified.checks];

  // What the session needs beyond the verifier's verdict.
  const key = parseKeyConfig(verified.keyConfig);
  checks.push('attested key configuration offers a suite this client supports');
  const expiresAtMs = verified.expiresAt.getTime();
  if (expiresAtMs - EXPIRY_MARGIN_MS <= now) {
    throw new SealedClientError('attestation_rejected', 'the session key expires too soon to use', { reason: 'evidence_expired' });
  }
  const report: VerificationReport = {
    server: base.origin,
    platform: verified.platform,
    simulated: verified.simulated,
    measurement: verified.measurement,
    tcb: flatTcb(verified.tcb, verified.product),
    model: { ...verified.model },
    session: sid,
    expiresAt: verified.expiresAt.toISOString(),
    verifiedAt: new Date(now).toISOString(),
    nonce: bytesToHex(nonce),
    pinned: [...opts.pinned],
    checks,
  };
  // The report is what callers show and log: nobody may edit it after verification.
  for (const v of [report.tcb, report.model, report.pinned, report.checks]) Object.freeze(v);
  return { id: sid, key, expiresAtMs, report: Object.freeze(report) };
}

/** AttestationError -> SealedClientError, keeping the verifier's code as `reason`. */
function rejection(e: unknown): SealedClientError {
  if (e instanceof AttestationError) {
    const code = e.code === 'simulation_not_allowed' ? 'simulation_refused'
      : e.code === 'evidence_malformed' ? 'evidence_malformed'
      : 'attestation_rejected';
    return new SealedClientError(code, e.message, { reason: e.code, cause: e });
  }
  return new SealedClientError('attestation_rejected', 'evidence verification failed', { reason: 'internal', cause: e });
}

/** The TCB as printable scalars (SEV-SNP SPLs are numbers; TDX may nest). */
function flatTcb(tcb: Record<string, unknown>, product: string | undefined): Record<string, string | number> {
  const out: Record<string, string | number> = {};
  if (product) out.product = product;
  for (const [k, v] of Object.entries(tcb)) {
    if (typeof v === 'number' || typeof v === 'string') out[k] = v;
    else if (typeof v === 'bigint' || typeof v === 'boolean') out[k] = String(v);
    else if (v instanceof Uint8Array) out[k] = bytesToHex(v);
  }
  return out;
}


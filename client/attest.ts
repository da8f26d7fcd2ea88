// Attestation from the client's side: fetch evidence for a fresh nonce, verify it
// completely (enclave/ does platform evidence, binding and policy), and turn it into a
// session: the key configuration to encrypt to, until when, and the report of what
// was checked. Nothing here sends a prompt; callers send only after this resolves.
import { verifyEvidence } from '../enclave/evidence.js';
import { AttestationError } from '../enclave/errors.js';
import { fromBase64Url } from '../enclave/encoding.js';
import { SealedClientError } from './errors.js';
import type { VerificationReport } from './report.js';
import { parseKeyConfig, type SessionKeyConfig } from './wire.js';

/** Evidence documents are a few KiB (a TDX quote with collateral perhaps 100 KiB). */
const MAX_EVIDENCE_BYTES = 4 << 20;
/** Treat a session as expired this long before expiresAt, so a request in flight does not race the key's destruction. */
export const EXPIRY_MARGIN_MS = 5_000;

export interface AttestOptions {
  policy?: unknown;
  allowSimulation: boolean;
  fetch: typeof fetch;
  signal?: AbortSignal;
}

export interface Session {
  key: SessionKeyConfig;
  expiresAtMs: number;
  report: VerificationReport;
}

export function randomNonce(): Uint8Array {
  return globalThis.crypto.getRandomValues(new Uint8Array(32));
}

function hex(b: Uint8Array): string {
  let s = '';
  for (const x of b) s += x.toString(16).padStart(2, '0');
  return s;
}

/** Fetches and verifies evidence for a fresh nonce. Throws SealedClientError; sends nothing else. */
export async function attest(base: URL, opts: AttestOptions): Promise<Session> {
  const nonce = randomNonce();
  const url = new URL('v1/attestation', base);
  url.searchParams.set('nonce', hex(nonce));
  let res: Response;
  try {
    res = await opts.fetch(url, { method: 'GET', headers: { accept: 'application/json' }, signal: opts.signal });
  } catch (cause) {
    throw new SealedClientError('network', 'could not reach the server for attestation', { cause });
  }
  if (res.status !== 200) {
    await res.body?.cancel().catch(() => {});
    throw new SealedClientError('attestation_unavailable', `attestation answered HTTP ${res.status}`, { status: res.status });
  }
  const type = res.headers.get('content-type') ?? '';
  if (!/^application\/json\b/i.test(type)) {
    await res.body?.cancel().catch(() => {});
    throw new SealedClientError('attestation_unavailable', 'attestation is not application/json');
  }
  const evidence = parseEvidenceJson(await readBounded(res, MAX_EVIDENCE_BYTES));
  return verifySessionEvidence(evidence, nonce, base, opts);
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
  const out = new Uint8Array(n);
  let o = 0;
  for (const p of parts) {
    out.set(p, o);
    o += p.length;
  }
  return out;
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
  base: URL,
  opts: { policy?: unknown; allowSimulation: boolean; now?: number },
): Promise<Session> {
  const checks: string[] = [];
  // Refuse simulation before any cryptography: a client that did not opt in must not
  // even appear to "verify" a simulated server. enclave/ enforces the same rule.
  if (evidence.simulated !== false && evidence.simulated !== true) {
    throw new SealedClientError('evidence_malformed', 'evidence lacks a boolean "simulated"');
  }
  if (evidence.simulated && !opts.allowSimulation) {
    throw new SealedClientError('simulation_refused', 'the server is simulated (no hardware protection); pass allowSimulation to accept it');
  }
  let result: Awaited<ReturnType<typeof verifyEvidence>>;
  const now = opts.now ?? Date.now();
  try {
    result = await verifyEvidence(evidence, {
      nonce,
      policy: opts.policy,
      allowSimulation: opts.allowSimulation,
      now: new Date(now),
    });
  } catch (e) {
    if (e instanceof AttestationError) {
      throw new SealedClientError('attestation_rejected', e.message, { reason: e.code, cause: e });
    }
    throw new SealedClientError('attestation_rejected', 'evidence verification failed', { reason: 'internal', cause: e });
  }
  checks.push(...verifierChecks(result));

  // What the session needs beyond the verifier's verdict; each is cheap and local.
  const keyConfigBytes = decodeField(() => fromBase64Url(evidence.keyConfig, 'bad_key_config'), 'keyConfig');
  const key = parseKeyConfig(keyConfigBytes);
  if (key.keyId !== evidence.keyId) {
    throw new SealedClientError('attestation_rejected', 'keyId does not match the attested key configuration', { reason: 'key_id_mismatch' });
  }
  checks.push('the attested key configuration offers DHKEM(X25519)/HKDF-SHA256 with a supported AEAD, and its key id matches');
  const expiresAtMs = typeof evidence.expiresAt === 'string' ? parseRfc3339(evidence.expiresAt) : NaN;
  if (!Number.isFinite(expiresAtMs)) throw new SealedClientError('evidence_malformed', 'expiresAt is not an RFC 3339 time');
  if (expiresAtMs - EXPIRY_MARGIN_MS <= now) {
    throw new SealedClientError('attestation_rejected', 'the session key has already expired', { reason: 'expired' });
  }
  checks.push('the session key has not expired');

  const model = evidence.model as { id?: unknown; digest?: unknown } | undefined;
  if (!model || typeof model.id !== 'string' || typeof model.digest !== 'string' || !/^[0-9a-f]{64}$/.test(model.digest)) {
    throw new SealedClientError('evidence_malformed', 'model id or digest missing');
  }
  const report: VerificationReport = {
    server: base.origin,
    platform: evidence.platform as 'sev-snp' | 'tdx',
    simulated: evidence.simulated,
    measurement: result.measurement,
    tcb: result.tcb,
    model: { id: model.id, digest: model.digest },
    keyId: key.keyId,
    expiresAt: new Date(expiresAtMs).toISOString(),
    verifiedAt: new Date(now).toISOString(),
    nonce: hex(nonce),
    pinned: pinnedKeys(opts.policy),
    checks,
  };
  return { key, expiresAtMs, report };
}

function decodeField<T>(f: () => T, name: string): T {
  try {
    return f();
  } catch (cause) {
    throw new SealedClientError('evidence_malformed', `${name} is malformed`, { cause });
  }
}

/** RFC 3339 with an explicit offset or Z; Date.parse alone accepts far more. */
export function parseRfc3339(s: string): number {
  if (!/^\d{4}-\d{2}-\d{2}T\d{2}:\d{2}:\d{2}(\.\d{1,9})?(Z|[+-]\d{2}:\d{2})$/i.test(s)) return NaN;
  return Date.parse(s);
}

function pinnedKeys(policy: unknown): string[] {
  if (typeof policy !== 'object' || policy === null) return [];
  return Object.keys(policy).filter((k) => (policy as Record<string, unknown>)[k] !== undefined).sort();
}

// Filled in against enclave/evidence.ts's result shape.
function verifierChecks(result: unknown): string[] {
  void result;
  return [];
}

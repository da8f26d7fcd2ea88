// One typed error for all of attestation (layouts, PKI, providers, policy, evidence).
// `code` is a stable, machine-readable string naming what failed (e.g. `sev_report_signature`,
// `vcek_tcb_mismatch`, `binding_mismatch`); the message is for humans and never carries
// key material, plaintext or request content.
export class AttestationError extends Error {
  readonly code: string;
  constructor(code: string, message?: string, options?: { cause?: unknown }) {
    super(message ?? code, options);
    this.name = 'AttestationError';
    this.code = code;
  }
}

export function isAttestationError(e: unknown): e is AttestationError {
  return e instanceof AttestationError;
}

/** Throws AttestationError(code) unless `cond` holds. Keeps checks to one line each. */
export function check(cond: unknown, code: string, message?: string): asserts cond {
  if (!cond) throw new AttestationError(code, message);
}

// The one typed error of the client side (SDK, proxy, chat page, `sealed chat`).
// `code` is stable and machine-readable; the message is for humans and never carries
// prompt or answer text, key material or anything echoed from a request.
export type SealedClientErrorCode =
  | 'bad_options' //        the caller gave an invalid URL, policy or parameter
  | 'network' //            fetch failed (connection refused, reset, aborted)
  | 'attestation_unavailable' // GET /v1/sessions/{sid}/attestation did not answer 200 JSON
  | 'evidence_malformed' // the evidence document is not what CONTRACT.md describes
  | 'simulation_refused' // a simulated server, and allowSimulation was not given
  | 'attestation_rejected' // verification failed; `reason` holds the verifier's code
  | 'key_rejected' //       422 ohttp-key even after one fresh attestation
  | 'server_error' //       an outer (unencrypted) problem document: 4xx/5xx, see `status` (429/503 after the bounded retries)
  | 'response_malformed' // wrong media type or unparsable response
  | 'response_undecryptable' // the response failed authentication: it may not come from the attested
  //                          session, so that request is not re-sent and the next one uses a new session
  | 'truncated' //          the response ended before its final chunk / end marker
  | 'http_error' //         the decrypted inner response is not 2xx; see `status`, `body`
  | 'stream_error' //       the server reported an error inside an event stream
  | 'internal'; //          a bug on this side; never a reason to trust a server more

export class SealedClientError extends Error {
  readonly code: SealedClientErrorCode;
  /** HTTP status, for server_error and http_error. */
  readonly status?: number;
  /** For attestation_rejected: the attestation verifier's own code (e.g. `policy_measurement`). */
  readonly reason?: string;
  /** For http_error: the decrypted OpenAI error document, if it parsed as JSON. */
  readonly body?: unknown;

  constructor(
    code: SealedClientErrorCode,
    message: string,
    extra: { status?: number; reason?: string; body?: unknown; cause?: unknown } = {},
  ) {
    super(message, extra.cause === undefined ? undefined : { cause: extra.cause });
    this.name = 'SealedClientError';
    this.code = code;
    if (extra.status !== undefined) this.status = extra.status;
    if (extra.reason !== undefined) this.reason = extra.reason;
    if (extra.body !== undefined) this.body = extra.body;
  }
}

export function isSealedClientError(e: unknown): e is SealedClientError {
  return e instanceof SealedClientError;
}

/** True for errors that mean "this server was not verified", so nothing may be sent. */
export function isVerificationFailure(e: unknown): boolean {
  return (
    e instanceof SealedClientError &&
    (e.code === 'attestation_rejected' || e.code === 'simulation_refused' || e.code === 'evidence_malformed')
  );
}

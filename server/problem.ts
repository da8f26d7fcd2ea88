// Problem documents (RFC 9457) for errors outside the encryption. Every field comes from the
// fixed table below: nothing from the request is ever echoed.
export const OHTTP_KEY_PROBLEM_TYPE = 'https://iana.org/assignments/http-problem-types#ohttp-key';

const PROBLEMS = {
  not_found: { type: 'about:blank', title: 'Not Found', status: 404 },
  bad_request: { type: 'about:blank', title: 'Bad Request', status: 400, detail: 'The request is malformed.' },
  bad_nonce: { type: 'about:blank', title: 'Bad Request', status: 400, detail: 'nonce must be 64 hexadecimal digits.' },
  bad_session: {
    type: 'about:blank',
    title: 'Bad Request',
    status: 400,
    detail: 'The session id must be 16 random bytes in base64url without padding (22 characters).',
  },
  too_large: { type: 'about:blank', title: 'Content Too Large', status: 413 },
  request_timeout: { type: 'about:blank', title: 'Request Timeout', status: 408, detail: 'The request did not arrive in time.' },
  headers_too_large: { type: 'about:blank', title: 'Request Header Fields Too Large', status: 431 },
  media_type: {
    type: 'about:blank',
    title: 'Unsupported Media Type',
    status: 415,
    detail: 'Expected message/ohttp-req or message/ohttp-chunked-req.',
  },
  unknown_key: {
    type: OHTTP_KEY_PROBLEM_TYPE,
    title: 'key identifier unknown',
    status: 422,
    detail: 'The session is unknown, has ended, or its key does not match; attest a new session.',
  },
  replay: { type: 'about:blank', title: 'Conflict', status: 409, detail: 'This encapsulated request was already received.' },
  session_live: {
    type: 'about:blank',
    title: 'Conflict',
    status: 409,
    detail: 'This session id is already live; choose a new random session id.',
  },
  too_many_sessions: {
    type: 'about:blank',
    title: 'Too Many Requests',
    status: 429,
    detail: 'Every live session is in use; retry after the time given.',
  },
  attestation_rate: {
    type: 'about:blank',
    title: 'Too Many Requests',
    status: 429,
    detail: 'Attestations from this address are rate limited; retry after the time given.',
  },
  attestation_rate_total: {
    type: 'about:blank',
    title: 'Too Many Requests',
    status: 429,
    detail: 'Attestations are rate limited; a place is held for this address after the time given.',
  },
  session_request_limit: {
    type: 'about:blank',
    title: 'Too Many Requests',
    status: 429,
    detail: 'This session has reached its request limit; fetch a new attestation.',
  },
  overloaded: { type: 'about:blank', title: 'Service Unavailable', status: 503, detail: 'The server is overloaded.' },
  buffer_full: {
    type: 'about:blank',
    title: 'Service Unavailable',
    status: 503,
    detail: 'The server holds as many request bytes as it may; retry after the time given.',
  },
  too_many_connections: {
    type: 'about:blank',
    title: 'Service Unavailable',
    status: 503,
    detail: 'The server has as many connections open as it may; retry after the time given.',
  },
  shutting_down: { type: 'about:blank', title: 'Service Unavailable', status: 503, detail: 'The server is shutting down.' },
  not_ready: { type: 'about:blank', title: 'Service Unavailable', status: 503, detail: 'The server is starting.' },
  internal: { type: 'about:blank', title: 'Internal Server Error', status: 500 },
} as const satisfies Record<string, { status: number; type: string; title: string; detail?: string }>;

export type ProblemKind = keyof typeof PROBLEMS;

export const PROBLEM_HEADERS: Readonly<Record<string, string>> = Object.freeze({
  'content-type': 'application/problem+json',
  'cache-control': 'no-store',
});

export function problemStatus(kind: ProblemKind): number {
  return PROBLEMS[kind].status;
}

/** The problem document for `kind`, serialised. */
export function problemJson(kind: ProblemKind): string {
  return JSON.stringify(PROBLEMS[kind]);
}

/** The problem document for `kind` as a Response. */
export function problemResponse(kind: ProblemKind, extraHeaders: Record<string, string> = {}): Response {
  return new Response(problemJson(kind), { status: problemStatus(kind), headers: { ...PROBLEM_HEADERS, ...extraHeaders } });
}

/**
 * The problem document for `kind` as a whole HTTP/1.1 response that closes the connection, for
 * errors Node's HTTP parser finds before any request reaches the app.
 */
export function rawProblemResponse(kind: ProblemKind, retryAfterSeconds?: number): string {
  const p = PROBLEMS[kind];
  const body = problemJson(kind);
  return (
    `HTTP/1.1 ${p.status} ${p.title}\r\n` +
    `content-type: ${PROBLEM_HEADERS['content-type']}\r\n` +
    `cache-control: ${PROBLEM_HEADERS['cache-control']}\r\n` +
    (retryAfterSeconds !== undefined ? `retry-after: ${Math.max(1, Math.ceil(retryAfterSeconds))}\r\n` : '') +
    `content-length: ${new TextEncoder().encode(body).byteLength}\r\n` +
    'connection: close\r\n\r\n' +
    body
  );
}

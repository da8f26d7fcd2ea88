// Problem documents (RFC 9457) for errors outside the encryption. Every field comes from the
// fixed table below: nothing from the request is ever echoed.
export const OHTTP_KEY_PROBLEM_TYPE = 'https://iana.org/assignments/http-problem-types#ohttp-key';

const PROBLEMS = {
  not_found: { status: 404, type: 'about:blank', title: 'Not Found' },
  bad_request: { status: 400, type: 'about:blank', title: 'Bad Request', detail: 'The request is malformed.' },
  bad_nonce: { status: 400, type: 'about:blank', title: 'Bad Request', detail: 'nonce must be 64 hexadecimal digits.' },
  too_large: { status: 413, type: 'about:blank', title: 'Content Too Large' },
  media_type: {
    status: 415,
    type: 'about:blank',
    title: 'Unsupported Media Type',
    detail: 'Expected message/ohttp-req or message/ohttp-chunked-req.',
  },
  unknown_key: {
    status: 422,
    type: OHTTP_KEY_PROBLEM_TYPE,
    title: 'key identifier unknown',
    detail: 'The key id is unknown or its session has expired; fetch a new attestation.',
  },
  replay: { status: 409, type: 'about:blank', title: 'Conflict', detail: 'This encapsulated request was already received.' },
  too_many_sessions: { status: 429, type: 'about:blank', title: 'Too Many Requests', detail: 'Too many live sessions.' },
  session_rate: { status: 429, type: 'about:blank', title: 'Too Many Requests', detail: 'New sessions are rate limited.' },
  session_request_limit: {
    status: 429,
    type: 'about:blank',
    title: 'Too Many Requests',
    detail: 'This session has reached its request limit; fetch a new attestation.',
  },
  overloaded: { status: 503, type: 'about:blank', title: 'Service Unavailable', detail: 'The server is overloaded.' },
  shutting_down: { status: 503, type: 'about:blank', title: 'Service Unavailable', detail: 'The server is shutting down.' },
  internal: { status: 500, type: 'about:blank', title: 'Internal Server Error' },
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

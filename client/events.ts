// What a client reports about its own session handling, for callers to log or show: a new
// session attested in place of one that ended, and waits on a busy server. Nothing here
// carries prompt or answer text or key material; a session id is a public routing name.

/** Why the previous session was given up. */
export type ReattestReason =
  | 'session_unknown' //        the server answered 422 ohttp-key: it no longer has the session (restart, expiry, eviction)
  | 'response_undecryptable' // a response did not decrypt; the request that got it was not re-sent
  | 'expired' //                the session's attested expiry was reached
  | 'session_exhausted' //      the server answered 429 to a request: the session's request allowance is spent
  | 'replica_unreachable'; //   a load balancer in front answered 502/503/504 itself: the replica holding the session is gone or unreachable

export type SealedClientEvent =
  | { type: 'reattested'; reason: ReattestReason; previous: string; session: string }
  | { type: 'retrying'; what: 'attestation' | 'request'; status: number; waitMs: number };

export type EventListener = (event: SealedClientEvent) => void;

const REASONS: Record<ReattestReason, string> = {
  session_unknown: 'session ended (server answered 422)',
  response_undecryptable: 'a response did not decrypt (that request was not re-sent)',
  expired: 'session key expired',
  session_exhausted: 'session request limit reached (server answered 429)',
  replica_unreachable: 'the replica holding the session is unreachable (the load balancer answered for it)',
};

/** One line for a person: `sealed chat`/`sealed proxy` print it on stderr, the page in its status. */
export function describeEvent(e: SealedClientEvent): string {
  if (e.type === 'reattested') return `${REASONS[e.reason]}; attested a new session`;
  return `server busy (HTTP ${e.status}); retrying the ${e.what} in ${Math.ceil(e.waitMs / 1000)} s`;
}

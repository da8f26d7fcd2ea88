// What the server can still link, said plainly to the user of a client: OHTTP hides the content
// of every request, but not who sends it unless a relay stands between, and never which requests
// belong together, since the session id names each one. Callers show it once, after verification.

export interface Route {
  /** Encapsulated requests go through an OHTTP relay. */
  relay: boolean;
  /** The attestation goes through a forwarding proxy. */
  attestVia: boolean;
}

const SESSION_LINK = 'the session id in every request links all requests of one session to each other (a session lasts until it expires or the server ends it)';

export function linkabilityNote(route: Route): string {
  if (route.relay && route.attestVia) {
    return `privacy: the server sees the relay's and the attestation proxy's addresses, not this machine's; ${SESSION_LINK}; the relay sees this machine's address and the session id, but not the content`;
  }
  if (route.relay) {
    return `privacy: requests go through the relay, but the attestation went straight to the server, which saw this machine's address for this session; ${SESSION_LINK}, so the server can link every relayed request to this address (--attest-via sends the attestation through a forwarding proxy)`;
  }
  if (route.attestVia) {
    return `privacy: the attestation went through a proxy, but requests go straight to the server, which sees this machine's address on each; ${SESSION_LINK} (--relay sends them through an OHTTP relay)`;
  }
  return `privacy: the server sees this machine's address on the attestation and on every request; ${SESSION_LINK} (--relay and --attest-via hide the address)`;
}

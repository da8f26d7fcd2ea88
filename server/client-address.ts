// Which address a request comes from, for the attestation rate limits. The connection's peer is
// the answer unless the operator said the server sits behind a proxy they trust: then, and only
// for connections from that proxy, the address comes from the header it sets. A header from
// anyone else is never believed, or any client could name itself a new address per request.
import { clientAddressKey } from './rate.js';

export interface ProxyTrust {
  /** Peer addresses of the proxies whose header is believed (exact, as Node reports them). */
  proxies: readonly string[];
  /** The header those proxies set, lower case; the rightmost entry is the one they appended. */
  header: string;
}

/** The rate-limit key for a request from `peer` carrying `headers`. */
export function requestAddressKey(peer: string | undefined, headers: Headers, trust: ProxyTrust | undefined): string {
  if (trust && peer !== undefined && trust.proxies.includes(normalisePeer(peer))) {
    const value = headers.get(trust.header);
    if (value !== null) {
      const entries = value.split(',').map((s) => s.trim()).filter((s) => s.length > 0);
      const last = entries[entries.length - 1];
      if (last !== undefined && /^[0-9A-Fa-f:.]{2,45}$/.test(last)) return clientAddressKey(last);
    }
    // A trusted proxy that sent no usable header: every such request shares one bucket, which
    // fails closed (it limits them together) rather than open.
    return 'proxy-without-address';
  }
  return clientAddressKey(peer);
}

function normalisePeer(peer: string): string {
  const mapped = /^::ffff:(\d{1,3}(?:\.\d{1,3}){3})$/i.exec(peer);
  return mapped ? mapped[1]! : peer.toLowerCase();
}

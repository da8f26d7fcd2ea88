// Which address a request comes from, for the attestation rate limits. The connection's peer is
// the answer unless the operator said the server sits behind a proxy they trust: then, and only
// for connections from that proxy, the address comes from the header it sets. A header from
// anyone else is never believed, or any client could name itself a new address per request.

export interface ProxyTrust {
  /**
   * The proxies whose header is believed: addresses or CIDR ranges (`10.0.0.5`, `10.244.0.0/16`,
   * `fd00::/8`), since in a cluster the balancer's pods have addresses from a range, not fixed ones.
   */
  proxies: readonly string[];
  /** The header those proxies set, lower case; the rightmost entry is the one they appended. */
  header: string;
}

/** The rate-limit key for a request from `peer` carrying `headers`. */
export function requestAddressKey(peer: string | undefined, headers: Headers, trust: ProxyTrust | undefined): string {
  if (trust && peer !== undefined && isTrustedPeer(peer, trust.proxies)) {
    const value = headers.get(trust.header);
    if (value !== null) {
      // Each trusted proxy appends the address it saw. Walking back from the right, the first
      // address that is not itself a trusted proxy is the client (a chain such as ingress ->
      // balancer -> replica has two trusted hops); anything further left is the client's own claim.
      const entries = value.split(',').map((e) => e.trim());
      for (let i = entries.length - 1; i >= 0; i--) {
        const entry = entries[i]!;
        if (!/^[0-9A-Fa-f:.]{2,45}$/.test(entry) || !isValidProxyEntry(entry)) break;
        if (i === 0 || !isTrustedPeer(entry, trust.proxies)) return clientAddressKey(entry);
      }
    }
    // A trusted proxy that sent no usable header: every such request shares one bucket, which
    // fails closed (it limits them together) rather than open.
    return 'proxy-without-address';
  }
  return clientAddressKey(peer);
}

/**
 * The key an address is limited under: an IPv4 address as it is, an IPv6 address by its /64
 * (one subscriber's usual allocation, which a stranger can otherwise walk through at will).
 * IPv4-mapped IPv6 addresses count as IPv4; anything that is not an address is 'unknown'.
 */
export function clientAddressKey(address: string | undefined): string {
  const bytes = address === undefined ? undefined : parseAddress(address);
  if (!bytes) return 'unknown';
  if (bytes.length === 4) return bytes.join('.');
  const groups: string[] = [];
  for (let i = 0; i < 8; i += 2) groups.push(((bytes[i]! << 8) | bytes[i + 1]!).toString(16));
  return `${groups.join(':')}::/64`;
}

/** Whether `peer` is one of `proxies` (addresses or CIDR ranges). Unparseable entries match nothing. */
export function isTrustedPeer(peer: string, proxies: readonly string[]): boolean {
  const address = parseAddress(peer);
  if (!address) return false;
  return proxies.some((entry) => {
    const range = parseRange(entry);
    return range !== undefined && inRange(address, range);
  });
}

/** Whether a --trust-proxy entry is an address or CIDR range this module understands. */
export function isValidProxyEntry(entry: string): boolean {
  return parseRange(entry) !== undefined;
}

interface Range {
  bytes: Uint8Array;
  prefix: number;
}

function parseRange(entry: string): Range | undefined {
  const [addr, bits, extra] = entry.trim().split('/');
  if (extra !== undefined || addr === undefined) return undefined;
  const bytes = parseAddress(addr);
  if (!bytes) return undefined;
  const max = bytes.length * 8;
  if (bits === undefined) return { bytes, prefix: max };
  if (!/^\d{1,3}$/.test(bits) || Number(bits) > max) return undefined;
  return { bytes, prefix: Number(bits) };
}

function inRange(address: Uint8Array, range: Range): boolean {
  if (address.length !== range.bytes.length) return false;
  let left = range.prefix;
  for (let i = 0; left > 0; i++, left -= 8) {
    const mask = left >= 8 ? 0xff : (0xff << (8 - left)) & 0xff;
    if ((address[i]! & mask) !== (range.bytes[i]! & mask)) return false;
  }
  return true;
}

/** 4 bytes for IPv4 (and IPv4-mapped IPv6), 16 for IPv6; undefined when it is not an address. */
function parseAddress(text: string): Uint8Array | undefined {
  const a = text.trim().toLowerCase().split('%')[0]!;
  const v4 = /^(?:::ffff:)?(\d{1,3})\.(\d{1,3})\.(\d{1,3})\.(\d{1,3})$/.exec(a);
  if (v4) {
    const parts = v4.slice(1).map(Number);
    return parts.every((n) => n <= 255) ? Uint8Array.from(parts) : undefined;
  }
  if (!a.includes(':')) return undefined;
  const halves = a.split('::');
  if (halves.length > 2) return undefined;
  const head = halves[0] ? halves[0].split(':') : [];
  const tail = halves.length === 2 && halves[1] ? halves[1].split(':') : [];
  const fill = 8 - head.length - tail.length;
  if (halves.length === 1 ? fill !== 0 : fill < 1) return undefined;
  const groups = [...head, ...Array<string>(halves.length === 2 ? fill : 0).fill('0'), ...tail];
  if (groups.some((g) => !/^[0-9a-f]{1,4}$/.test(g))) return undefined;
  const out = new Uint8Array(16);
  groups.forEach((g, i) => {
    const n = parseInt(g, 16);
    out[2 * i] = n >> 8;
    out[2 * i + 1] = n & 0xff;
  });
  return out;
}

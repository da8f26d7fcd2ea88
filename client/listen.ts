// Where the proxy may listen. Loopback only by default: whoever can reach the proxy
// can use the attested session, so exposing it is an explicit decision.
import { SealedClientError } from './errors.js';

/** 127.0.0.0/8, ::1 and localhost: the addresses only this machine can reach. */
export function isLoopbackHost(host: string): boolean {
  const h = host.replace(/^\[|\]$/g, '').toLowerCase();
  if (h === 'localhost' || h === '::1' || h === '0:0:0:0:0:0:0:1') return true;
  const m = /^(\d{1,3})\.(\d{1,3})\.(\d{1,3})\.(\d{1,3})$/.exec(h);
  return m !== null && Number(m[1]) === 127 && m.slice(2).every((x) => Number(x) <= 255);
}

/** `HOST:PORT`, `[v6]:PORT`. Port 0 picks a free port. */
export function parseListen(s: string): { host: string; port: number } {
  const m = /^(?:\[([0-9a-fA-F:.]+)\]|([^:\s[\]]+)):(\d{1,5})$/.exec(s);
  if (!m) throw new SealedClientError('bad_options', '--listen must be HOST:PORT');
  const port = Number(m[3]);
  if (port > 65535) throw new SealedClientError('bad_options', '--listen port out of range');
  return { host: m[1] ?? m[2], port };
}

// Between Binary HTTP messages and web Requests/Responses for the inner app. Scheme and
// authority of the inner request are ignored (CONTRACT): every request goes to the inner app.
import type { BhttpRequest, Field } from '../transport/bhttp.js';

/** Fields that describe one hop or the framing, not the message; they never cross the gateway. */
const HOP_FIELDS = new Set([
  'connection',
  'content-length',
  'host',
  'keep-alive',
  'proxy-connection',
  'te',
  'trailer',
  'transfer-encoding',
  'upgrade',
]);

const INNER_ORIGIN = 'http://inner.invalid';

/** The inner request as a web Request, or null when it cannot be one (then the inner answer is 400). */
export function toInnerRequest(req: BhttpRequest, signal: AbortSignal): Request | null {
  if (!req.path.startsWith('/')) return null;
  const method = req.method.toUpperCase();
  if (method !== req.method) return null; // methods are case-sensitive; ours are upper case
  try {
    const headers = new Headers();
    for (const [name, value] of req.headers) if (!HOP_FIELDS.has(name)) headers.append(name, value);
    const hasBody = req.content.length > 0;
    if (hasBody && (method === 'GET' || method === 'HEAD')) return null;
    return new Request(INNER_ORIGIN + req.path, {
      method,
      headers,
      // The Fetch standard makes the Request take its own copy of a byte-array body, so the
      // caller can wipe `req.content` at once; a copy made here would be one more left unwiped.
      ...(hasBody && { body: req.content as Uint8Array<ArrayBuffer> }),
      signal,
    });
  } catch {
    return null;
  }
}

/** The inner response's header fields for Binary HTTP (lowercase names, hop fields dropped). */
export function responseFields(headers: Headers): Field[] {
  const out: Field[] = [];
  headers.forEach((value, name) => {
    if (!HOP_FIELDS.has(name)) out.push([name.toLowerCase(), value]);
  });
  return out;
}

export function isEventStream(res: Response): boolean {
  return (res.headers.get('content-type') ?? '').split(';')[0]!.trim().toLowerCase() === 'text/event-stream';
}

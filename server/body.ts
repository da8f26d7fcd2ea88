// Reading request bodies with a hard size bound: a declared Content-Length over the bound is
// refused before reading, and a body that grows past it while streaming is cut off.
import { ServerError } from './errors.js';

/** The Content-Length header as a number, null when absent, or ServerError('bad_body') when invalid. */
export function declaredLength(headers: Headers): number | null {
  const v = headers.get('content-length');
  if (v === null) return null;
  if (!/^[0-9]{1,15}$/.test(v.trim())) throw new ServerError('bad_body', 'invalid content-length');
  return Number(v.trim());
}

/**
 * Reads the whole stream into a new array the caller owns (and may wipe).
 * ServerError('too_large') past `max` bytes (the stream is cancelled).
 *
 * By default the stream's own chunks are never modified, as they may be views into buffers
 * shared with others. With `wipeChunks`, for a stream whose chunks belong to the reader alone
 * (decrypted plaintext), each chunk is overwritten with zeros once copied, or when the read fails.
 */
export async function readLimited(
  stream: ReadableStream<Uint8Array> | null,
  max: number,
  opts: { wipeChunks?: boolean } = {},
): Promise<Uint8Array> {
  if (stream === null) return new Uint8Array(0);
  const reader = stream.getReader();
  const parts: Uint8Array[] = [];
  const wipe = () => {
    if (opts.wipeChunks) for (const p of parts) p.fill(0);
  };
  let total = 0;
  try {
    for (;;) {
      const { done, value } = await reader.read();
      if (done) break;
      parts.push(value);
      total += value.byteLength;
      if (total > max) {
        reader.cancel().catch(() => {});
        throw new ServerError('too_large', 'request body too large');
      }
    }
  } catch (e) {
    wipe();
    throw e;
  } finally {
    reader.releaseLock();
  }
  const out = new Uint8Array(total);
  let o = 0;
  for (const p of parts) {
    out.set(p, o);
    o += p.byteLength;
  }
  wipe();
  return out;
}

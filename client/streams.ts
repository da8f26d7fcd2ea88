// Web-stream helpers shared by the SDK and the wire layer.
import { concatAll } from '../transport/bytes.js';
import { SealedClientError } from './errors.js';

/** A web ReadableStream as an async iterable, through a reader (some browsers lack ReadableStream[Symbol.asyncIterator]). */
export async function* readerChunks(body: ReadableStream<Uint8Array> | null): AsyncGenerator<Uint8Array> {
  if (!body) return;
  const reader = body.getReader();
  let finished = false;
  try {
    for (;;) {
      const r = await reader.read();
      if (r.done) {
        finished = true;
        return;
      }
      yield r.value;
    }
  } finally {
    // A consumer that stops early cancels the stream, so the connection is not left hanging.
    if (!finished) await reader.cancel().catch(() => {});
    reader.releaseLock();
  }
}

/** Concatenates an async iterable of bytes, refusing more than `max` bytes. */
export async function collect(body: AsyncIterable<Uint8Array>, max: number): Promise<Uint8Array> {
  const parts: Uint8Array[] = [];
  let n = 0;
  for await (const p of body) {
    n += p.length;
    if (n > max) throw new SealedClientError('response_malformed', 'response too large');
    parts.push(p);
  }
  return concatAll(parts);
}

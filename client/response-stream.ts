// A sealed streamed response (chunked OHTTP carrying an indeterminate-length Binary HTTP
// response), decoded in one synchronous step per network read: frame and open the chunks,
// decode the Binary HTTP pieces, hand out the body bytes. A token costs one AEAD open and
// a few small parses; before this, each token crossed three web streams and four async
// generators, which cost more CPU than the decryption (and the CPU is shared with the engine
// when client and server run on one machine).
import type { BhttpResponseEvent, Field } from '../transport/bhttp.js';
import { BhttpResponseStreamDecoder } from '../transport/bhttp.js';
import { TransportError } from '../transport/errors.js';
import { SealedClientError } from './errors.js';

/** The synchronous chunk opener (transport's ChunkedResponseReader). */
export interface ChunkOpener {
  push(bytes: Uint8Array): Uint8Array[];
  end(): Uint8Array;
}

export interface ResponseHead {
  status: number;
  headers: Field[];
}

/**
 * Network bytes in, body pieces out. `head` is set once the inner response's head has been
 * decoded. Throws TransportError (from transport/) or SealedClientError: the caller maps them.
 * After a throw the decoder is unusable, as the cores under it are.
 */
export class SealedResponseDecoder {
  readonly #chunks: ChunkOpener;
  readonly #bhttp = new BhttpResponseStreamDecoder();
  #head: ResponseHead | undefined;
  #ended = false;

  constructor(chunks: ChunkOpener) {
    this.#chunks = chunks;
  }

  get head(): ResponseHead | undefined {
    return this.#head;
  }

  /** Non-empty body pieces completed by `bytes`, in order. */
  push(bytes: Uint8Array): Uint8Array[] {
    const out: Uint8Array[] = [];
    for (const pt of this.#chunks.push(bytes)) this.#take(this.#bhttp.push(pt), out);
    return out;
  }

  /**
   * The input has ended: the last body pieces. Only an authenticated final chunk and a complete
   * Binary HTTP message make a complete response; anything less is 'truncated', never short.
   */
  end(): Uint8Array[] {
    const out: Uint8Array[] = [];
    const last = this.#chunks.end();
    if (last.length) this.#take(this.#bhttp.push(last), out);
    this.#take(this.#bhttp.end(), out);
    if (!this.#head) throw new SealedClientError('truncated', 'streamed response ended before its head');
    if (!this.#ended) throw new SealedClientError('truncated', 'streamed response ended before its end');
    return out;
  }

  #take(events: BhttpResponseEvent[], out: Uint8Array[]): void {
    for (const ev of events) {
      if (!this.#head) {
        if (ev.type === 'informational') continue;
        if (ev.type !== 'head') throw new SealedClientError('response_malformed', 'streamed response has no head');
        this.#head = { status: ev.status, headers: ev.headers };
      } else if (ev.type === 'body') {
        if (this.#ended) throw new SealedClientError('response_malformed', 'content after the end of the response');
        if (ev.chunk.length) out.push(ev.chunk);
      } else if (ev.type === 'end') {
        this.#ended = true;
      } else {
        throw new SealedClientError('response_malformed', 'unexpected event in streamed response');
      }
    }
  }
}

export interface OpenedResponseStream {
  head: ResponseHead;
  /**
   * The body, one array of pieces per network read that completed any: a consumer handles a
   * whole read synchronously, so a token costs no async hop of its own. Stopping early
   * (return/break) cancels the network body.
   */
  batches: AsyncGenerator<Uint8Array[], void, undefined>;
  /** Stops reading and cancels the network body, whether or not `batches` was iterated. */
  cancel(): Promise<void>;
}

/**
 * Reads `body` until the head is decoded. Every error, from the network or the decoder, goes
 * through `fail`, which returns what to throw; the network body is cancelled on every error
 * and on an early stop, so the connection is not left hanging.
 */
export async function openResponseStream(
  body: ReadableStream<Uint8Array>,
  decoder: SealedResponseDecoder,
  fail: (e: unknown) => unknown,
): Promise<OpenedResponseStream> {
  const reader = body.getReader();
  const state = { inputDone: false, released: false };
  let first: Uint8Array[] = [];
  try {
    while (!decoder.head) {
      const piece = await read(reader, decoder, state);
      first = first.length ? first.concat(piece) : piece;
    }
  } catch (e) {
    if (!state.inputDone) reader.cancel().catch(() => {});
    reader.releaseLock();
    throw fail(e);
  }
  const gen = batches(reader, decoder, state, first, fail);
  const cancel = async (): Promise<void> => {
    await gen.return();
    // A generator never started does not run its finally: let go of the body here.
    if (state.released) return;
    state.released = true;
    if (!state.inputDone) await reader.cancel().catch(() => {});
    reader.releaseLock();
  };
  return { head: decoder.head, batches: gen, cancel };
}

/** One network read through the decoder: its body pieces (empty when it completed none). */
async function read(
  reader: ReadableStreamDefaultReader<Uint8Array>,
  decoder: SealedResponseDecoder,
  state: { inputDone: boolean },
): Promise<Uint8Array[]> {
  let r: ReadableStreamReadResult<Uint8Array>;
  try {
    r = await reader.read();
  } catch {
    // A dropped connection or an abort: the response is incomplete. The cause may carry
    // request details (a URL), so it is not kept.
    state.inputDone = true;
    throw new TransportError('truncated', 'input stream failed');
  }
  if (r.done) {
    state.inputDone = true;
    return decoder.end();
  }
  if (!(r.value instanceof Uint8Array)) throw new TransportError('invalid_argument', 'stream chunks must be Uint8Array');
  return decoder.push(r.value);
}

async function* batches(
  reader: ReadableStreamDefaultReader<Uint8Array>,
  decoder: SealedResponseDecoder,
  state: { inputDone: boolean; released: boolean },
  first: Uint8Array[],
  fail: (e: unknown) => unknown,
): AsyncGenerator<Uint8Array[], void, undefined> {
  try {
    if (first.length) yield first;
    while (!state.inputDone) {
      const pieces = await read(reader, decoder, state);
      if (pieces.length) yield pieces;
    }
  } catch (e) {
    throw fail(e);
  } finally {
    if (!state.released) {
      state.released = true;
      if (!state.inputDone) await reader.cancel().catch(() => {});
      reader.releaseLock();
    }
  }
}

/** The body as plain pieces, for callers that want the bytes rather than the batches. */
export async function* flatten(batches: AsyncIterable<Uint8Array[]>): AsyncGenerator<Uint8Array, void, undefined> {
  for await (const pieces of batches) for (const p of pieces) yield p;
}

// Padding of server-sent events, so that the size of a sealed chunk of a streamed response says
// nothing about the length of the token inside it. Each event grows to a size bucket (a power of
// two, at least MIN_BUCKET bytes) by an SSE comment line inserted before the blank line that ends
// the event: every SSE parser ignores comment lines, so the client reads the same events.
// An observer then learns only the bucket, which for token deltas is the same for nearly every
// event (a chunk's JSON is ~200 bytes; a token adds a few). Events are found by their blank line
// ("\n\n", the line ending the inner app writes), however the stream happens to be chunked.
import { concatAll } from '../transport/bytes.js';

export const MIN_BUCKET = 256;

/** The padded size for an event of `n` bytes: room for at least the shortest comment line (":\n"). */
export function bucketFor(n: number): number {
  let b = MIN_BUCKET;
  while (b < n + 2) b *= 2;
  return b;
}

const COLON = 0x3a;
const SPACE = 0x20;
const P = 0x70;
const LF = 0x0a;

/**
 * `event` (one whole event, ending with a blank line "\n\n") padded to its bucket, as a new array
 * the caller owns. An input that is not one whole event is returned as a copy unchanged: a
 * comment line may only go between lines, and the inner app always writes whole events.
 */
export function padEvent(event: Uint8Array): Uint8Array {
  const n = event.byteLength;
  if (n < 2 || event[n - 1] !== LF || event[n - 2] !== LF) return event.slice();
  const size = bucketFor(n);
  const pad = size - n; // >= 2
  const out = new Uint8Array(size);
  // Everything up to and including the last line's "\n", then the comment line, then the blank line.
  out.set(event.subarray(0, n - 1), 0);
  let o = n - 1;
  out[o++] = COLON;
  if (pad >= 3) {
    out[o++] = SPACE;
    out.fill(P, o, o + pad - 3);
    o += pad - 3;
  }
  out[o++] = LF;
  out[o] = LF;
  return out;
}

/**
 * Pads the events of a stream whatever its chunking: push() returns every event completed so far,
 * each padded (concatenated; empty when none completed), and keeps an incomplete tail until its
 * blank line arrives. Everything it holds is plaintext: wipe() when the stream ends or fails.
 */
export class EventPadder {
  #pending = new Uint8Array(0);

  push(chunk: Uint8Array): Uint8Array {
    // The inner app writes one whole event per chunk: padded straight from the chunk, without the
    // three copies (join, split, concatenate) that an event cut across chunks needs.
    if (this.#pending.byteLength === 0 && isOneEvent(chunk)) return padEvent(chunk);
    const buf = new Uint8Array(this.#pending.byteLength + chunk.byteLength);
    buf.set(this.#pending, 0);
    buf.set(chunk, this.#pending.byteLength);
    this.#pending.fill(0);
    const events: Uint8Array[] = [];
    let start = 0;
    for (let i = 1; i < buf.byteLength; i++) {
      if (buf[i] === LF && buf[i - 1] === LF) {
        events.push(padEvent(buf.subarray(start, i + 1)));
        start = i + 1;
      }
    }
    this.#pending = buf.slice(start);
    buf.fill(0);
    const out = concatAll(events);
    for (const e of events) e.fill(0);
    return out;
  }

  /** What is left at the end of the stream (an event without its blank line: sent as it is). */
  flush(): Uint8Array {
    const rest = this.#pending;
    this.#pending = new Uint8Array(0);
    return rest;
  }

  wipe(): void {
    this.#pending.fill(0);
  }
}

/** True when `bytes` is exactly one event: its first blank line is its end. */
function isOneEvent(bytes: Uint8Array): boolean {
  const n = bytes.byteLength;
  if (n < 2 || bytes[n - 1] !== LF || bytes[n - 2] !== LF) return false;
  for (let i = 1; i < n - 1; i++) if (bytes[i] === LF && bytes[i - 1] === LF) return false;
  return true;
}

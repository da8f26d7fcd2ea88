// Server-sent events as OpenAI streams them: `data: <json>` events ending with
// `data: [DONE]`. Incremental (bytes in, events out as soon as their blank line
// arrives) so tokens reach the caller as they are made. An end without [DONE] is a
// truncation, never a short answer.
import { SealedClientError } from './errors.js';

/** Largest single event we buffer; a chunk of a few tokens is far below this. */
const MAX_EVENT_BYTES = 1 << 20;

/** Splits a byte stream into SSE `data` payloads (multi-line data joined with "\n"). */
export class SseParser {
  private readonly decoder = new TextDecoder('utf-8', { fatal: true });
  private buffer = '';
  private data: string[] = [];
  private dataLength = 0;
  private sawCR = false;

  /** Feeds bytes; returns the data payloads of every event completed by them. */
  push(bytes: Uint8Array): string[] {
    let text: string;
    try {
      text = this.decoder.decode(bytes, { stream: true });
    } catch (cause) {
      throw new SealedClientError('response_malformed', 'event stream is not valid UTF-8', { cause });
    }
    return this.feed(text);
  }

  /** Ends the input; returns any event a final blank line would have completed (none, by the spec). */
  end(): void {
    try {
      this.decoder.decode();
    } catch (cause) {
      throw new SealedClientError('response_malformed', 'event stream is not valid UTF-8', { cause });
    }
    // An event without its terminating blank line is incomplete and is dropped (WHATWG SSE).
  }

  private feed(text: string): string[] {
    const events: string[] = [];
    let start = 0;
    for (let i = 0; i < text.length; i++) {
      const c = text.charCodeAt(i);
      if (c === 0x0a && this.sawCR) {
        // The LF of a CRLF pair: the CR already ended the line.
        this.sawCR = false;
        start = i + 1;
        continue;
      }
      this.sawCR = false;
      if (c === 0x0a || c === 0x0d) {
        this.sawCR = c === 0x0d;
        const line = this.buffer + text.slice(start, i);
        this.buffer = '';
        start = i + 1;
        const ev = this.line(line);
        if (ev !== undefined) events.push(ev);
      }
    }
    this.buffer += text.slice(start);
    if (this.buffer.length + this.dataLength > MAX_EVENT_BYTES) {
      throw new SealedClientError('response_malformed', 'event stream line too long');
    }
    return events;
  }

  private line(line: string): string | undefined {
    if (line === '') {
      if (this.data.length === 0) return undefined;
      const ev = this.data.join('\n');
      this.data = [];
      this.dataLength = 0;
      return ev;
    }
    if (line.startsWith(':')) return undefined; // comment / keep-alive
    const colon = line.indexOf(':');
    const field = colon < 0 ? line : line.slice(0, colon);
    let value = colon < 0 ? '' : line.slice(colon + 1);
    if (value.startsWith(' ')) value = value.slice(1);
    if (field === 'data') {
      this.dataLength += value.length + 1;
      if (this.dataLength > MAX_EVENT_BYTES) throw new SealedClientError('response_malformed', 'event too large');
      this.data.push(value);
    }
    // `event`, `id`, `retry` and unknown fields carry nothing OpenAI streams use.
    return undefined;
  }
}

/**
 * Parses an OpenAI event stream into its JSON chunks. Throws `truncated` if the stream
 * ends before `data: [DONE]`, `response_malformed` for a non-JSON event or data after
 * [DONE], and `stream_error` for an in-stream `{ "error": ... }` event.
 */
export function openAiChunks<T = unknown>(body: AsyncIterable<Uint8Array>): AsyncGenerator<T, void, undefined> {
  return chunks<T>(body);
}

/**
 * openAiChunks over a body that arrives as arrays of pieces (one per network read): the
 * events of a whole read are parsed in one go, so a token costs no async step but its own yield.
 */
export function openAiChunkBatches<T = unknown>(batches: AsyncIterable<readonly Uint8Array[]>): AsyncGenerator<T, void, undefined> {
  return chunks<T>(batches);
}

async function* chunks<T>(body: AsyncIterable<Uint8Array | readonly Uint8Array[]>): AsyncGenerator<T, void, undefined> {
  const parser = new SseParser();
  let done = false;
  for await (const item of body) {
    const pieces = item instanceof Uint8Array ? [item] : item;
    for (const bytes of pieces) {
      for (const data of parser.push(bytes)) {
        if (done) throw new SealedClientError('response_malformed', 'event after [DONE]');
        if (data === '[DONE]') {
          done = true;
          continue;
        }
        yield parseChunk<T>(data);
      }
    }
  }
  parser.end();
  if (!done) throw new SealedClientError('truncated', 'event stream ended before [DONE]');
}

function parseChunk<T>(data: string): T {
  let value: unknown;
  try {
    value = JSON.parse(data);
  } catch (cause) {
    throw new SealedClientError('response_malformed', 'event is not JSON', { cause });
  }
  if (typeof value !== 'object' || value === null || Array.isArray(value)) {
    throw new SealedClientError('response_malformed', 'event is not a JSON object');
  }
  const error = (value as { error?: unknown }).error;
  if (error !== undefined && error !== null) {
    const message = typeof error === 'object' && typeof (error as { message?: unknown }).message === 'string'
      ? (error as { message: string }).message
      : 'error event';
    throw new SealedClientError('stream_error', `server reported an error mid-stream: ${message.slice(0, 200)}`, { body: value });
  }
  return value as T;
}

/** Serialises one chunk the way OpenAI does, for re-emitting a verified stream. */
export function sseEvent(data: string): string {
  return `data: ${data}\n\n`;
}

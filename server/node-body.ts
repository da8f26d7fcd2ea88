// The request body read straight from Node's IncomingMessage as a web stream. Asking
// @hono/node-server for `c.req.raw.body` builds a full fetch Request around the message (URL
// parsing, header conversion, two stream layers over `Readable.toWeb`): about a quarter of a
// millisecond on every request's way to its first token, and two stream hops on every body
// chunk. The gateway needs only the bytes, in order, with back-pressure, and an error when the
// message is cut, which is what this gives.
import { ServerError } from './errors.js';

/** The part of Node's IncomingMessage read here. */
export interface IncomingBody {
  on(event: 'data', listener: (chunk: Uint8Array) => void): unknown;
  on(event: 'end' | 'close', listener: () => void): unknown;
  on(event: 'error', listener: (err: Error) => void): unknown;
  off(event: 'data', listener: (chunk: Uint8Array) => void): unknown;
  pause(): unknown;
  resume(): unknown;
  readonly readableEnded: boolean;
  readonly complete: boolean;
}

/** Duck-typing for the adapter's `env.incoming`, which is Node's only when served by Node. */
export function isIncomingBody(x: unknown): x is IncomingBody {
  const o = x as Partial<IncomingBody> | null;
  return (
    typeof o === 'object' && o !== null && typeof o.on === 'function' && typeof o.off === 'function' &&
    typeof o.pause === 'function' && typeof o.resume === 'function' && typeof o.readableEnded === 'boolean'
  );
}

/**
 * The message's body, one chunk per socket read, paused while unread. A message that ends
 * early (the connection cut, a request timeout) errors the stream: a cut body is never a
 * short one. Cancelling stops reading and leaves the rest to the adapter, which drains it
 * once the response is sent (as it does for a body nobody read).
 */
export function bodyFromIncoming(incoming: IncomingBody): ReadableStream<Uint8Array> {
  let done = false;
  let onData: (chunk: Uint8Array) => void = () => {};
  return new ReadableStream<Uint8Array>(
    {
      start(controller) {
        const fail = (err: unknown): void => {
          if (done) return;
          done = true;
          incoming.off('data', onData);
          controller.error(err);
        };
        onData = (chunk) => {
          if (done) return;
          controller.enqueue(chunk);
          if ((controller.desiredSize ?? 0) <= 0) incoming.pause();
        };
        incoming.pause();
        incoming.on('data', onData);
        incoming.on('end', () => {
          if (done) return;
          done = true;
          controller.close();
        });
        incoming.on('error', (err) => fail(err));
        incoming.on('close', () => {
          if (!incoming.complete) fail(new ServerError('bad_body', 'the request body was cut off'));
        });
        if (incoming.readableEnded) {
          done = true;
          controller.close();
        }
      },
      pull() {
        if (!done) incoming.resume();
      },
      cancel() {
        done = true;
        incoming.off('data', onData);
      },
    },
    { highWaterMark: 1 },
  );
}

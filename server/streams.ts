// Small web-stream helpers for the access log: counting bytes as they pass, and learning when a
// response body has ended, failed or been abandoned by the client.

/** A pass-through that reports the size of every chunk. */
export function counter(onBytes: (n: number) => void): TransformStream<Uint8Array, Uint8Array> {
  return new TransformStream({
    transform(chunk, controller) {
      onBytes(chunk.byteLength);
      controller.enqueue(chunk);
    },
  });
}

/**
 * Passes a stream through, pulling only when read (so nothing is buffered ahead of the socket),
 * counting bytes, and reporting once when it ends (false) or fails or is cancelled (true).
 */
export function watchStream(
  src: ReadableStream<Uint8Array>,
  onBytes: (n: number) => void,
  onEnd: (aborted: boolean) => void,
): ReadableStream<Uint8Array> {
  const reader = src.getReader();
  let ended = false;
  const end = (aborted: boolean) => {
    if (ended) return;
    ended = true;
    onEnd(aborted);
  };
  return new ReadableStream<Uint8Array>(
    {
      async pull(controller) {
        try {
          const r = await reader.read();
          if (r.done) {
            controller.close();
            end(false);
            return;
          }
          onBytes(r.value.byteLength);
          controller.enqueue(r.value);
        } catch (e) {
          end(true);
          controller.error(e);
        }
      },
      async cancel(reason) {
        end(true);
        await reader.cancel(reason).catch(() => {});
      },
    },
    { highWaterMark: 0 },
  );
}

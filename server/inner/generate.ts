// Running one generation and shaping it as OpenAI's response: collected (one JSON body) or
// streamed (server-sent events, one per engine delta, written as soon as the engine yields it,
// ending with `data: [DONE]`). A streamed generation is cancelled when the reader goes away.
import { engineErrorCode, type GenerateEvent, type GenerateRequest, type InferenceEngine } from '../engine.js';
import { isServerError } from '../errors.js';
import type { Permit } from '../limiter.js';
import {
  chatChunk,
  chatCompletion,
  chatUsageChunk,
  errorBody,
  textChunk,
  textCompletion,
  textUsageChunk,
  usage,
  type FinishReason,
  type ResponseMeta,
} from './openai.js';

export interface CompletionJob {
  kind: 'chat' | 'text';
  request: GenerateRequest;
  meta: ResponseMeta;
  includeUsage: boolean;
}

export async function collectCompletion(engine: InferenceEngine, job: CompletionJob, signal: AbortSignal) {
  let text = '';
  let finish: FinishReason = 'stop';
  let promptTokens = 0;
  let completionTokens = 0;
  for await (const ev of engine.generate(job.request, signal)) {
    if (ev.type === 'delta') text += ev.text;
    else {
      finish = ev.finishReason;
      promptTokens = ev.promptTokens;
      completionTokens = ev.completionTokens;
    }
  }
  // An engine that stops yielding after an abort without throwing still must not answer 200.
  signal.throwIfAborted();
  const u = usage(promptTokens, completionTokens);
  return job.kind === 'chat' ? chatCompletion(job.meta, text, finish, u) : textCompletion(job.meta, text, finish, u);
}

const enc = new TextEncoder();
const sse = (data: unknown) => enc.encode(`data: ${JSON.stringify(data)}\n\n`);
// A fresh array per use: a consumer may wipe what it was given.
const done = () => enc.encode('data: [DONE]\n\n');

/**
 * The SSE body of a streamed generation whose events are `events` (already started, so errors
 * known up front became an HTTP status). `permit` is released when the stream ends, errors or
 * is cancelled; cancelling aborts `cancel`, which the generation listens to. `deadline` tells a
 * timeout apart from other cancellations.
 */
export function streamCompletion(
  job: CompletionJob,
  events: AsyncIterable<GenerateEvent>,
  cancel: AbortController,
  signal: AbortSignal,
  deadline: AbortSignal,
  permit: Permit,
): ReadableStream<Uint8Array> {
  const iterator = events[Symbol.asyncIterator]();
  let started = false;
  let finished = false;

  const finish = () => {
    finished = true;
    permit.release();
  };

  return new ReadableStream<Uint8Array>(
    {
      async pull(controller) {
        try {
          if (!started) {
            started = true;
            if (job.kind === 'chat') {
              controller.enqueue(sse(chatChunk(job.meta, { role: 'assistant', content: '' }, null, job.includeUsage)));
              return;
            }
          }
          // Loop until something is written: a pull that enqueues nothing may not be called again.
          for (;;) {
            const r = await iterator.next();
            if (r.done) {
              signal.throwIfAborted();
              // The engine ended without its final event; end the stream cleanly as "stop".
              writeEnd(controller, 'stop', null);
              return;
            }
            const ev = r.value;
            if (ev.type === 'delta') {
              if (ev.text === '') continue;
              controller.enqueue(
                sse(
                  job.kind === 'chat'
                    ? chatChunk(job.meta, { content: ev.text }, null, job.includeUsage)
                    : textChunk(job.meta, ev.text, null, job.includeUsage),
                ),
              );
              return;
            }
            writeEnd(controller, ev.finishReason, usage(ev.promptTokens, ev.completionTokens));
            return;
          }
        } catch (e) {
          if (finished) return;
          finish();
          if (cancel.signal.aborted) return; // the reader cancelled: nobody to tell
          // A deadline, a server-side cancel (shutdown) or an engine failure: say so in-stream,
          // so the client never takes a cut stream for a finished one (no [DONE] follows).
          controller.enqueue(sse(streamError(e, deadline.aborted, signal.aborted, signal.reason)));
          controller.close();
        }
      },
      async cancel() {
        cancel.abort();
        if (!finished) finish();
        try {
          await iterator.return?.();
        } catch {
          // the engine reports cancellation by throwing; nothing to do
        }
      },
    },
    { highWaterMark: 0 },
  );

  function writeEnd(
    controller: ReadableStreamDefaultController<Uint8Array>,
    reason: FinishReason,
    u: ReturnType<typeof usage> | null,
  ): void {
    if (job.kind === 'chat') controller.enqueue(sse(chatChunk(job.meta, {}, reason, job.includeUsage)));
    else controller.enqueue(sse(textChunk(job.meta, '', reason, job.includeUsage)));
    if (job.includeUsage && u) controller.enqueue(sse(job.kind === 'chat' ? chatUsageChunk(job.meta, u) : textUsageChunk(job.meta, u)));
    controller.enqueue(done());
    controller.close();
    finish();
  }
}

function streamError(e: unknown, timedOut: boolean, cancelled: boolean, reason: unknown) {
  if (timedOut) return errorBody('The generation took too long and was cancelled.', 'server_error', null, 'timeout');
  if (cancelled && isServerError(reason, 'closed')) return errorBody('The server is shutting down.', 'server_error', null, 'shutting_down');
  if (cancelled) return errorBody('The request was cancelled.', 'server_error', null, 'cancelled');
  switch (engineErrorCode(e)) {
    case 'closed':
      return errorBody('The server is shutting down.', 'server_error', null, 'shutting_down');
    case 'context_length_exceeded':
      return errorBody('The prompt and max_tokens together exceed the model context length.', 'invalid_request_error', null, 'context_length_exceeded');
    case 'busy':
      return errorBody('The engine is currently overloaded, please try again later.', 'server_error', null, 'overloaded');
    default:
      return errorBody('The server had an error while processing the request.', 'server_error', null, 'internal_error');
  }
}

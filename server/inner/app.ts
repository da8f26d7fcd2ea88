// The OpenAI-compatible inner app. On the public server it is reached only through the OHTTP
// gateway (it is never mounted on a public route); the bench's plaintext twin serves it as-is.
// It answers POST /v1/chat/completions, POST /v1/completions, GET /v1/models and
// GET /v1/models/{id}; anything else is OpenAI's 404. Requests are validated with zod; errors are OpenAI's error JSON.
import { Hono, type Context } from 'hono';
import type { z } from 'zod';
import { readLimited, declaredLength } from '../body.js';
import { isServerError } from '../errors.js';
import { engineErrorCode, type ChatMessage, type GenerateRequest, type InferenceEngine } from '../engine.js';
import { GenerationLimiter } from '../limiter.js';
import { DEFAULT_LIMITS, type Limits } from '../limits.js';
import { chatCompletionRequestSchema, completionRequestSchema, type ChatCompletionRequest, type CompletionRequest } from './schemas.js';
import { errorResponse, modelList, modelObject, randomId, validationError } from './openai.js';
import { collectCompletion, streamCompletion, type CompletionJob } from './generate.js';

export type InnerLimits = Pick<
  Limits,
  | 'maxBodyBytes'
  | 'maxTokensCeiling'
  | 'maxConcurrentGenerations'
  | 'maxQueue'
  | 'queueTimeoutMs'
  | 'generationTimeoutMs'
  | 'maxConcurrentPerSession'
>;

/**
 * What the caller of `fetch(req, env)` says about a request. Set by the gateway from the session
 * the request was sealed to; nothing inside the request can name or change it. Absent (the
 * plaintext twin), generations share one uncapped lane.
 */
export interface InnerEnv {
  sessionId?: string;
}

export interface InnerAppOptions {
  engine: InferenceEngine;
  /** Missing limits take DEFAULT_LIMITS' values. */
  limits?: Partial<InnerLimits>;
  /** Shared admission control; one is made from `limits` when absent. */
  limiter?: GenerationLimiter;
}

/** OpenAI's default for /v1/completions when max_tokens is absent. */
const COMPLETIONS_DEFAULT_MAX_TOKENS = 16;

export function createInnerApp(opts: InnerAppOptions): Hono {
  const { engine } = opts;
  const limits: InnerLimits = { ...DEFAULT_LIMITS, ...stripUndefined(opts.limits ?? {}) };
  const limiter =
    opts.limiter ??
    new GenerationLimiter({
      concurrency: limits.maxConcurrentGenerations,
      maxQueue: limits.maxQueue,
      queueTimeoutMs: limits.queueTimeoutMs,
      maxPerSession: limits.maxConcurrentPerSession,
    });
  const created = Math.floor(Date.now() / 1000);
  const app = new Hono();

  const contextLength = engine.model.contextLength;
  app.get('/v1/models', () => json(modelList(engine.model.id, created, contextLength)));
  // A model id may hold a slash (`org/name`), which clients send unescaped.
  app.get('/v1/models/:id{.+}', (c) =>
    c.req.param('id') === engine.model.id ? json(modelObject(engine.model.id, created, contextLength)) : modelNotFound());

  app.post('/v1/chat/completions', async (c) => {
    if (limiter.atCap(sessionOf(c))) return sessionBusy();
    const parsed = await parseBody(c, limits.maxBodyBytes, chatCompletionRequestSchema);
    if (parsed instanceof Response) return parsed;
    const body: ChatCompletionRequest = parsed;
    if (body.model !== engine.model.id) return modelNotFound();
    let prompt: string | number[];
    try {
      prompt = engine.chatPrompt(body.messages.map(toChatMessage));
    } catch (e) {
      return engineFailure(e);
    }
    const requested = body.max_completion_tokens ?? body.max_tokens ?? null;
    const param = body.max_completion_tokens != null ? 'max_completion_tokens' : 'max_tokens';
    return run(c, 'chat', prompt, requested, null, param, body);
  });

  app.post('/v1/completions', async (c) => {
    if (limiter.atCap(sessionOf(c))) return sessionBusy();
    const parsed = await parseBody(c, limits.maxBodyBytes, completionRequestSchema);
    if (parsed instanceof Response) return parsed;
    const body: CompletionRequest = parsed;
    if (body.model !== engine.model.id) return modelNotFound();
    const prompt = typeof body.prompt === 'string' ? body.prompt : isStringArray(body.prompt) ? body.prompt[0]! : body.prompt;
    return run(c, 'text', prompt, body.max_tokens ?? null, COMPLETIONS_DEFAULT_MAX_TOKENS, 'max_tokens', body);
  });

  app.notFound(() => errorResponse(404, 'Unknown request URL or method.', 'invalid_request_error', null, 'unknown_url'));
  app.onError(() => errorResponse(500, 'The server had an error while processing the request.', 'server_error', null, 'internal_error'));

  async function run(
    c: Context,
    kind: 'chat' | 'text',
    prompt: string | number[],
    requestedMax: number | null,
    /** The endpoint's default when max_tokens is absent; null: whatever the context leaves. */
    defaultMax: number | null,
    maxParam: string,
    body: ChatCompletionRequest | CompletionRequest,
  ): Promise<Response> {
    if (requestedMax !== null && requestedMax > limits.maxTokensCeiling) {
      return errorResponse(
        400,
        `${maxParam} is too large: this server allows at most ${limits.maxTokensCeiling}.`,
        'invalid_request_error',
        maxParam,
        'invalid_value',
      );
    }
    let promptTokens: number;
    try {
      // Encode text once here, so the context check counts exactly what the engine will run.
      if (typeof prompt === 'string' && engine.encode) prompt = engine.encode(prompt, true);
      promptTokens = typeof prompt === 'string' ? engine.countTokens(prompt) + 1 : prompt.length;
    } catch (e) {
      return engineFailure(e);
    }
    const context = engine.model.contextLength;
    const room = context - promptTokens;
    if (room < 1 || (requestedMax !== null && requestedMax > room)) {
      return contextTooLong(context, promptTokens, requestedMax, kind === 'chat' ? 'messages' : 'prompt');
    }
    const maxTokens = requestedMax ?? Math.min(limits.maxTokensCeiling, room, defaultMax ?? room);
    const stop = body.stop == null ? undefined : typeof body.stop === 'string' ? [body.stop] : body.stop;
    const req: GenerateRequest = {
      prompt,
      maxTokens,
      ...(body.temperature != null && { temperature: body.temperature }),
      ...(body.top_p != null && { topP: body.top_p }),
      ...(body.top_k != null && { topK: body.top_k }),
      ...(body.seed != null && { seed: body.seed }),
      ...(stop !== undefined && stop.length > 0 && { stop }),
    };
    const job: CompletionJob = {
      kind,
      request: req,
      meta: { id: randomId(kind === 'chat' ? 'chatcmpl-' : 'cmpl-'), created: Math.floor(Date.now() / 1000), model: engine.model.id },
      includeUsage: body.stream_options?.include_usage === true,
    };

    // The client going away (the request's signal) and the generation deadline both cancel.
    const deadline = AbortSignal.timeout(limits.generationTimeoutMs);
    const signal = AbortSignal.any([c.req.raw.signal, deadline]);
    let permit;
    try {
      permit = await limiter.acquire(signal, sessionOf(c));
    } catch (e) {
      return admissionFailure(e, deadline, signal);
    }
    if (body.stream === true) {
      // Started here, so what the engine refuses up front (busy, too long) is an HTTP status.
      const cancel = new AbortController();
      let events;
      try {
        events = engine.generate(req, AbortSignal.any([signal, cancel.signal]));
      } catch (e) {
        permit.release();
        return engineFailure(e);
      }
      return new Response(streamCompletion(job, events, cancel, signal, deadline, permit), {
        status: 200,
        // Chunked, so that @hono/node-server sends the head at once instead of waiting a timer
        // tick for a Content-Length (the gateway drops this hop field when it encapsulates).
        headers: { 'content-type': 'text/event-stream; charset=utf-8', 'cache-control': 'no-store', 'transfer-encoding': 'chunked' },
      });
    }
    try {
      return json(await collectCompletion(engine, job, signal));
    } catch (e) {
      if (deadline.aborted) return timeoutResponse();
      if (signal.aborted && isServerError(signal.reason, 'closed')) return shuttingDown();
      return engineFailure(e);
    } finally {
      permit.release();
    }
  }

  return app;
}

function json(body: unknown, status = 200): Response {
  return new Response(JSON.stringify(body), {
    status,
    headers: { 'content-type': 'application/json', 'cache-control': 'no-store' },
  });
}

async function parseBody<S extends z.ZodType>(c: Context, maxBytes: number, schema: S): Promise<z.infer<S> | Response> {
  const type = (c.req.header('content-type') ?? '').split(';')[0]!.trim().toLowerCase();
  if (type !== 'application/json') {
    return errorResponse(415, 'Content-Type must be application/json.', 'invalid_request_error', null, 'unsupported_media_type');
  }
  let bytes: Uint8Array;
  try {
    const declared = declaredLength(c.req.raw.headers);
    if (declared !== null && declared > maxBytes) return tooLarge(maxBytes);
    // The body's chunks are this request's alone (the gateway's decrypted copy, or a socket
    // read): wiped once copied, like the copy itself below.
    bytes = await readLimited(c.req.raw.body, maxBytes, { wipeChunks: true });
  } catch (e) {
    if (isServerError(e, 'too_large')) return tooLarge(maxBytes);
    return errorResponse(400, 'The request body could not be read.', 'invalid_request_error', null, 'invalid_body');
  }
  let value: unknown;
  try {
    value = JSON.parse(new TextDecoder('utf-8', { fatal: true }).decode(bytes));
  } catch {
    return errorResponse(
      400,
      'We could not parse the JSON body of your request. The body must be valid UTF-8 JSON.',
      'invalid_request_error',
      null,
      'invalid_json',
    );
  } finally {
    bytes.fill(0);
  }
  const result = schema.safeParse(value);
  if (!result.success) return validationError(result.error, value);
  return result.data;
}

function toChatMessage(m: ChatCompletionRequest['messages'][number]): ChatMessage {
  const content = typeof m.content === 'string' ? m.content : m.content.map((p) => p.text).join('');
  return { role: m.role === 'developer' ? 'system' : m.role, content };
}

function isStringArray(v: unknown): v is string[] {
  return Array.isArray(v) && typeof v[0] === 'string';
}

function modelNotFound(): Response {
  return errorResponse(404, 'The requested model does not exist on this server.', 'invalid_request_error', 'model', 'model_not_found');
}

function tooLarge(max: number): Response {
  return errorResponse(413, `The request body exceeds ${max} bytes.`, 'invalid_request_error', null, 'request_too_large');
}

/**
 * `param` names the request's prompt field: `messages` for chat, `prompt` for completions. The
 * message gives the three numbers (OpenAI's wording, which clients already parse) so a client can
 * drop old turns or lower max_tokens and try again; counts are not content.
 */
export function contextTooLong(context: number, promptTokens: number, maxTokens: number | null, param: 'messages' | 'prompt'): Response {
  const asked = maxTokens === null
    ? `However, your ${param} resulted in ${promptTokens} tokens, which leaves no room for a completion.`
    : `However, you requested ${promptTokens + maxTokens} tokens (${promptTokens} in the ${param}, ${maxTokens} in the completion).`;
  return errorResponse(
    400,
    `This model's maximum context length is ${context} tokens. ${asked} Please reduce the length of the ${param} or the completion.`,
    'invalid_request_error',
    param,
    'context_length_exceeded',
  );
}

function timeoutResponse(): Response {
  return errorResponse(504, 'The generation took too long and was cancelled.', 'server_error', null, 'timeout');
}

function sessionBusy(): Response {
  return errorResponse(
    429,
    'This session has as many generations running or waiting as it may; retry when one has finished.',
    'rate_limit_error',
    null,
    'rate_limit_exceeded',
  );
}

function shuttingDown(): Response {
  return errorResponse(503, 'The server is shutting down.', 'server_error', null, 'shutting_down');
}

function overloaded(): Response {
  return errorResponse(503, 'The engine is currently overloaded, please try again later.', 'server_error', null, 'overloaded');
}

/** The session the gateway named for this request, if any (see InnerEnv). */
function sessionOf(c: Context): string | undefined {
  const env = c.env as InnerEnv | undefined;
  return typeof env?.sessionId === 'string' && env.sessionId !== '' ? env.sessionId : undefined;
}

function admissionFailure(e: unknown, deadline: AbortSignal, signal: AbortSignal): Response {
  if (isServerError(e, 'session_busy')) return sessionBusy();
  if (isServerError(e, 'overloaded') || isServerError(e, 'queue_timeout')) return overloaded();
  if (deadline.aborted) return timeoutResponse();
  if (isServerError(signal.reason, 'closed')) return shuttingDown();
  // The client went away while queued; nobody reads this.
  return errorResponse(499, 'The request was cancelled.', 'invalid_request_error', null, 'cancelled');
}

/** Maps an engine failure before or during a non-streamed generation to OpenAI's error. */
export function engineFailure(e: unknown): Response {
  switch (engineErrorCode(e)) {
    case 'busy':
      return overloaded();
    case 'context_length_exceeded':
      return errorResponse(400, 'The prompt and max_tokens together exceed the model context length.', 'invalid_request_error', null, 'context_length_exceeded');
    case 'invalid_request':
      return errorResponse(400, 'The request is invalid for this model.', 'invalid_request_error', null, 'invalid_value');
    case 'cancelled':
      return errorResponse(499, 'The request was cancelled.', 'invalid_request_error', null, 'cancelled');
    case 'closed':
      return shuttingDown();
    default:
      return errorResponse(500, 'The server had an error while processing the request.', 'server_error', null, 'internal_error');
  }
}

function stripUndefined<T extends object>(o: T): Partial<T> {
  return Object.fromEntries(Object.entries(o).filter(([, v]) => v !== undefined)) as Partial<T>;
}

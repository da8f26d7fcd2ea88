// OpenAI's wire shapes: the error object and the response bodies and stream chunks of chat
// completions and completions. Pure functions; messages are fixed strings, never request content.
import type { z } from 'zod';
import { isOwnMessage } from './schemas.js';

export type OpenAIErrorType = 'invalid_request_error' | 'server_error' | 'rate_limit_error';

export interface OpenAIErrorBody {
  error: { message: string; type: OpenAIErrorType; param: string | null; code: string | null };
}

export function errorBody(message: string, type: OpenAIErrorType, param: string | null, code: string | null): OpenAIErrorBody {
  return { error: { message, type, param, code } };
}

export function errorResponse(
  status: number,
  message: string,
  type: OpenAIErrorType,
  param: string | null = null,
  code: string | null = null,
): Response {
  return new Response(JSON.stringify(errorBody(message, type, param, code)), {
    status,
    headers: { 'content-type': 'application/json', 'cache-control': 'no-store' },
  });
}

/**
 * A validation failure of `input` as OpenAI's 400. The param is the path of the first issue,
 * which names a field of our schema; an unrecognised key is reported without naming it.
 */
export function validationError(error: z.ZodError, input: unknown): Response {
  const issue = error.issues[0];
  if (!issue || issue.code === 'unrecognized_keys') {
    return errorResponse(400, 'Unrecognized request argument supplied.', 'invalid_request_error', null, 'unknown_parameter');
  }
  // zod 4 leaves `input` out of its issues, so whether the value was absent or of the wrong
  // type is read from the request itself.
  const missing = (issue.code === 'invalid_type' || issue.code === 'invalid_union') && isAbsent(input, issue.path);
  const param = issue.path.length > 0 ? issue.path.map(String).join('.') : null;
  const message = param ? `Invalid value for '${param}': ${describe(issue, missing)}` : `Invalid request body: ${describe(issue, missing)}`;
  return errorResponse(400, message, 'invalid_request_error', param, missing ? 'missing_required_parameter' : 'invalid_value');
}

/** Whether nothing is at `path` in `input` (JSON has no undefined, so absent and undefined are one). */
function isAbsent(input: unknown, path: readonly PropertyKey[]): boolean {
  let v = input;
  for (const key of path) {
    if (v === null || typeof v !== 'object' || !Object.hasOwn(v, key)) return true;
    v = (v as Record<PropertyKey, unknown>)[key];
  }
  return v === undefined;
}

// zod's own messages can quote the offending input (e.g. for literals); these never do, and the
// schemas' fixed refusal sentences are quoted as they are.
function describe(issue: z.core.$ZodIssue, missing: boolean): string {
  if (!missing && isOwnMessage(issue.message)) return issue.message;
  switch (issue.code) {
    case 'invalid_type':
      return missing ? 'a value is required.' : `expected ${issue.expected}.`;
    case 'too_small':
      return `too small (minimum ${String(issue.minimum)}).`;
    case 'too_big':
      return `too big (maximum ${String(issue.maximum)}).`;
    case 'invalid_value':
      return 'not a supported value.';
    case 'invalid_union':
      return missing ? 'a value is required.' : 'does not match any accepted form.';
    case 'custom':
      return 'not a supported value.';
    default:
      return 'invalid.';
  }
}

export function randomId(prefix: string): string {
  const b = new Uint8Array(12);
  crypto.getRandomValues(b);
  let s = prefix;
  for (const x of b) s += x.toString(16).padStart(2, '0');
  return s;
}

export interface Usage {
  prompt_tokens: number;
  completion_tokens: number;
  total_tokens: number;
}

export function usage(promptTokens: number, completionTokens: number): Usage {
  return { prompt_tokens: promptTokens, completion_tokens: completionTokens, total_tokens: promptTokens + completionTokens };
}

export type FinishReason = 'stop' | 'length';

export interface ResponseMeta {
  id: string;
  created: number;
  model: string;
}

export function chatCompletion(meta: ResponseMeta, content: string, finish: FinishReason, u: Usage) {
  return {
    id: meta.id,
    object: 'chat.completion' as const,
    created: meta.created,
    model: meta.model,
    choices: [
      { index: 0, message: { role: 'assistant' as const, content, refusal: null }, logprobs: null, finish_reason: finish },
    ],
    usage: u,
  };
}

/**
 * With `usageFollows` (the client asked for `stream_options.include_usage`) the chunk carries
 * `usage: null`, as OpenAI's do, and the last chunk before [DONE] carries the counts.
 */
export function chatChunk(
  meta: ResponseMeta,
  delta: { role?: 'assistant'; content?: string },
  finish: FinishReason | null,
  usageFollows = false,
) {
  return {
    id: meta.id,
    object: 'chat.completion.chunk' as const,
    created: meta.created,
    model: meta.model,
    choices: [{ index: 0, delta, logprobs: null, finish_reason: finish }],
    ...(usageFollows && { usage: null }),
  };
}

export function chatUsageChunk(meta: ResponseMeta, u: Usage) {
  return { id: meta.id, object: 'chat.completion.chunk' as const, created: meta.created, model: meta.model, choices: [], usage: u };
}

export function textCompletion(meta: ResponseMeta, text: string, finish: FinishReason, u: Usage) {
  return {
    id: meta.id,
    object: 'text_completion' as const,
    created: meta.created,
    model: meta.model,
    choices: [{ index: 0, text, logprobs: null, finish_reason: finish }],
    usage: u,
  };
}

export function textChunk(meta: ResponseMeta, text: string, finish: FinishReason | null, usageFollows = false) {
  return {
    id: meta.id,
    object: 'text_completion' as const,
    created: meta.created,
    model: meta.model,
    choices: [{ index: 0, text, logprobs: null, finish_reason: finish }],
    ...(usageFollows && { usage: null }),
  };
}

export function textUsageChunk(meta: ResponseMeta, u: Usage) {
  return { id: meta.id, object: 'text_completion' as const, created: meta.created, model: meta.model, choices: [], usage: u };
}

/**
 * OpenAI's model object for the served model, with `context_length` (not OpenAI's; vLLM and
 * other compatible servers add it as `max_model_len` or `context_length`) so that a client
 * can keep a conversation inside the context without guessing.
 */
export function modelObject(id: string, created: number, contextLength: number) {
  return { id, object: 'model' as const, created, owned_by: 'sealed-inference', context_length: contextLength };
}

export function modelList(id: string, created: number, contextLength: number) {
  return { object: 'list' as const, data: [modelObject(id, created, contextLength)] };
}

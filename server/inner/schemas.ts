// Request bodies of the OpenAI-compatible API, validated with zod. Only parameters the engine
// honours are accepted; the few OpenAI parameters with a neutral value (n = 1, penalties 0,
// no logprobs) are accepted at that value and refused otherwise, so a client never silently
// gets something other than what it asked for. Unknown parameters are refused, as OpenAI does.
import { z } from 'zod';

const nullable = <T extends z.ZodType>(t: T) => t.nullable().optional();

// JSON can carry lone surrogates ("\ud800"), which are no text: refused here, naming the field,
// rather than tokenized into something the client did not write.
const LONE_SURROGATE = /[\uD800-\uDFFF]/u;
const text = () => z.string().refine((s) => !LONE_SURROGATE.test(s), 'not well-formed Unicode');

const textPart = z.object({ type: z.literal('text'), text: text() });

export const chatMessageSchema = z.object({
  role: z.enum(['system', 'developer', 'user', 'assistant']),
  content: z.union([text(), z.array(textPart).min(1)]),
  name: z.string().max(256).optional(),
});

/** The engine's bounds on stop sequences (engine/engine.ts), checked here so the error names `stop`. */
const MAX_STOPS = 4;
const MAX_STOP_LENGTH = 256;
const stopSequence = text().min(1).max(MAX_STOP_LENGTH);
const stop = nullable(z.union([stopSequence, z.array(stopSequence).max(MAX_STOPS)]));
const neutralPenalty = nullable(z.number().min(-2).max(2).refine((v) => v === 0, 'only 0 is supported'));

const sampling = {
  temperature: nullable(z.number().min(0).max(2)),
  top_p: nullable(z.number().gt(0).max(1)),
  /** Not in OpenAI's API; common in compatible servers. */
  top_k: nullable(z.number().int().min(0).max(1_000_000)),
  seed: nullable(z.number().int().min(-(2 ** 53) + 1).max(2 ** 53 - 1)),
  n: nullable(z.literal(1)),
  stop,
  stream: nullable(z.boolean()),
  stream_options: nullable(z.strictObject({ include_usage: z.boolean().optional() })),
  presence_penalty: neutralPenalty,
  frequency_penalty: neutralPenalty,
  user: z.string().max(256).optional(),
};

const maxTokens = nullable(z.number().int().min(1));

export const chatCompletionRequestSchema = z.strictObject({
  model: z.string().min(1).max(256),
  messages: z.array(chatMessageSchema).min(1).max(4096),
  max_tokens: maxTokens,
  max_completion_tokens: maxTokens,
  logprobs: nullable(z.literal(false)),
  ...sampling,
});

export const completionRequestSchema = z.strictObject({
  model: z.string().min(1).max(256),
  prompt: z.union([
    text(),
    z.array(text()).length(1),
    z.array(z.number().int().min(0).max(2 ** 31 - 1)).min(1),
  ]),
  max_tokens: maxTokens,
  echo: nullable(z.literal(false)),
  logprobs: z.null().optional(),
  suffix: nullable(z.literal('')),
  best_of: nullable(z.literal(1)),
  ...sampling,
});

export type ChatCompletionRequest = z.infer<typeof chatCompletionRequestSchema>;
export type CompletionRequest = z.infer<typeof completionRequestSchema>;

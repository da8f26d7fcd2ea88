// Request bodies of the OpenAI-compatible API, validated with zod. Clients send OpenAI's whole
// vocabulary, so every documented parameter falls in one of three kinds:
//   - honoured: what the engine does (sampling, stop, max tokens, streaming, usage in the stream);
//   - accepted and ignored: fields that change nothing this server does (`store: false`, `metadata`,
//     `user`, `service_tier`, `parallel_tool_calls`, `prompt_cache_key`, `safety_identifier`, and
//     neutral values such as `n: 1`, penalties 0, `logit_bias: {}`, `response_format: {type: "text"}`);
//   - refused, with `param` naming the field: any value that would ask for something the server
//     cannot do (tools, JSON mode, several choices, logprobs, audio, ...), so a client never silently
//     gets other than what it asked for.
// A key that is not OpenAI's at all is refused as `unknown_parameter`, as OpenAI does, without
// naming it: the key is the client's text, and errors echo none.
import { z } from 'zod';

const nullable = <T extends z.ZodType>(t: T) => t.nullable().optional();

// The refusal sentences written here. An error may quote one of these (they are ours), never a
// message zod composed, which can contain the input.
const OWN_MESSAGES = new Set<string>();
const own = (message: string): string => (OWN_MESSAGES.add(message), message);
/** Whether `message` is one of this module's fixed sentences. */
export const isOwnMessage = (message: string): boolean => OWN_MESSAGES.has(message);

// JSON can carry lone surrogates ("\ud800"), which are no text: refused here, naming the field,
// rather than tokenized into something the client did not write.
const LONE_SURROGATE = /[\uD800-\uDFFF]/u;
const text = () => z.string().refine((s) => !LONE_SURROGATE.test(s), own('not well-formed Unicode'));

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
const neutralPenalty = nullable(z.number().min(-2).max(2).refine((v) => v === 0, own('only 0 is supported by this server.')));

// Neutral forms of OpenAI parameters this server has no use for. Each refinement's message is a
// fixed sentence (errors quote no request content). Records are checked whole, so an error's
// param is the field and never one of the client's keys.
const anyRecord = () => z.record(z.string(), z.unknown());
const emptyLogitBias = nullable(anyRecord().refine((o) => Object.keys(o).length === 0, own('token biases are not supported by this server.')));
const noTools = nullable(z.array(z.unknown()).max(0, own('tools and functions are not supported by this server.')));
const noToolChoice = nullable(
  z.union([z.literal('none'), z.literal('auto')], { error: own('only "none" or "auto" is supported: this server calls no tools.') }),
);
const textFormat = nullable(
  z.looseObject({ type: z.string() }).refine((f) => f.type === 'text', own('only {"type": "text"} is supported by this server.')),
);
const absent = (why: string) => z.null({ error: own(why) }).optional();

/** OpenAI's `metadata`: at most 16 string pairs; kept nowhere, since this server stores nothing. */
const metadata = nullable(
  anyRecord().refine(
    (o) => Object.entries(o).length <= 16 && Object.entries(o).every(([k, v]) => k.length <= 64 && typeof v === 'string' && v.length <= 512),
    own('at most 16 string values, keys up to 64 and values up to 512 characters.'),
  ),
);

const sampling = {
  temperature: nullable(z.number().min(0).max(2)),
  top_p: nullable(z.number().gt(0).max(1)),
  /** Not in OpenAI's API; common in compatible servers. */
  top_k: nullable(z.number().int().min(0).max(1_000_000)),
  seed: nullable(z.number().int().min(-(2 ** 53) + 1).max(2 ** 53 - 1)),
  n: nullable(z.literal(1, { error: own('only 1 choice is supported by this server.') })),
  stop,
  stream: nullable(z.boolean()),
  stream_options: nullable(z.strictObject({ include_usage: nullable(z.boolean()), include_obfuscation: nullable(z.boolean()) })),
  presence_penalty: neutralPenalty,
  frequency_penalty: neutralPenalty,
  logit_bias: emptyLogitBias,
  user: nullable(z.string().max(256)),
};

const maxTokens = nullable(z.number().int().min(1));

export const chatCompletionRequestSchema = z.strictObject({
  model: z.string().min(1).max(256),
  messages: z.array(chatMessageSchema).min(1).max(4096),
  max_tokens: maxTokens,
  max_completion_tokens: maxTokens,
  logprobs: nullable(z.literal(false, { error: own('log probabilities are not supported by this server.') })),
  top_logprobs: nullable(z.literal(0, { error: own('log probabilities are not supported by this server.') })),
  // Accepted and ignored: nothing here depends on them.
  store: nullable(z.literal(false, { error: own('this server stores nothing; only false is accepted.') })),
  metadata,
  service_tier: nullable(z.enum(['auto', 'default', 'flex', 'scale', 'priority'])),
  parallel_tool_calls: nullable(z.boolean()),
  prompt_cache_key: nullable(z.string().max(1024)),
  safety_identifier: nullable(z.string().max(256)),
  response_format: textFormat,
  modalities: nullable(z.array(z.literal('text', { error: own('only text output is supported by this server.') })).max(1)),
  // Refused unless absent, empty or neutral: this server cannot do what they ask.
  tools: noTools,
  tool_choice: noToolChoice,
  functions: noTools,
  function_call: noToolChoice,
  audio: absent('audio output is not supported by this server.'),
  prediction: absent('predicted outputs are not supported by this server.'),
  web_search_options: absent('web search is not supported by this server.'),
  reasoning_effort: absent('this model does not reason; reasoning_effort is not supported.'),
  verbosity: absent('verbosity is not supported by this server.'),
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

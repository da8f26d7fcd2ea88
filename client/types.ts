// The OpenAI-compatible shapes the SDK passes through. Deliberately loose: the
// server defines the full schema; the SDK only needs the fields it reads.

export interface ChatMessage {
  role: 'system' | 'user' | 'assistant' | (string & {});
  content: string;
}

/** What chat and plain completions share: the model and the sampling knobs. */
export interface SamplingParams {
  /** Defaults to the attested model's id. */
  model?: string;
  max_tokens?: number;
  temperature?: number;
  top_p?: number;
  stop?: string | string[];
  seed?: number;
  stream?: boolean;
  [key: string]: unknown;
}

export interface ChatParams extends SamplingParams {
  messages: ChatMessage[];
}

export interface CompletionParams extends SamplingParams {
  prompt: string;
}

export interface Usage {
  prompt_tokens: number;
  completion_tokens: number;
  total_tokens: number;
}

export interface ChatCompletion {
  id: string;
  object: 'chat.completion';
  created: number;
  model: string;
  choices: { index: number; message: ChatMessage; finish_reason: string | null }[];
  usage?: Usage;
  [key: string]: unknown;
}

export interface ChatCompletionChunk {
  id: string;
  object: 'chat.completion.chunk';
  created: number;
  model: string;
  choices: { index: number; delta: { role?: string; content?: string }; finish_reason: string | null }[];
  [key: string]: unknown;
}

export interface Completion {
  id: string;
  object: 'text_completion';
  created: number;
  model: string;
  choices: { index: number; text: string; finish_reason: string | null }[];
  usage?: Usage;
  [key: string]: unknown;
}

export interface ModelList {
  object: 'list';
  data: { id: string; object: 'model'; created?: number; owned_by?: string; [key: string]: unknown }[];
}

/** A decrypted inner HTTP response, whole. */
export interface InnerResponse {
  status: number;
  headers: Record<string, string>;
  body: Uint8Array;
}

/** A decrypted inner HTTP response whose body arrives as it is produced. */
export interface InnerStreamResponse {
  status: number;
  headers: Record<string, string>;
  /** Yields body bytes as they are decrypted; throws SealedClientError('truncated') if the response was cut. */
  body: AsyncIterable<Uint8Array>;
}

export interface RequestOptions {
  signal?: AbortSignal;
}

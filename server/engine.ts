// The part of engine/'s Engine the server uses, as a structural type, so the inner app can be
// driven by the real Engine or by anything else with the same surface (the bench's twin).
export interface ChatMessage {
  role: 'system' | 'user' | 'assistant';
  content: string;
}

export interface GenerateRequest {
  prompt: string | number[];
  maxTokens: number;
  temperature?: number;
  topP?: number;
  topK?: number;
  seed?: number;
  stop?: string[];
}

export type GenerateEvent =
  | { type: 'delta'; text: string }
  | { type: 'done'; finishReason: 'stop' | 'length'; promptTokens: number; completionTokens: number };

export interface EngineModelInfo {
  readonly id: string;
  /** Hex SHA-256 of the model manifest. */
  readonly digest: string;
  readonly contextLength: number;
}

export interface InferenceEngine {
  readonly model: EngineModelInfo;
  generate(req: GenerateRequest, signal?: AbortSignal): AsyncIterable<GenerateEvent>;
  chatPrompt(messages: ChatMessage[]): string | number[];
  countTokens(text: string): number;
  /** Token ids of `text` with the model's special tokens (BOS), as generate() would encode it. */
  encode?(text: string, addSpecialTokens?: boolean): number[];
  close(): Promise<void> | void;
}

/** Engine error codes the server maps to HTTP statuses (engine/errors.ts). */
export function engineErrorCode(e: unknown): string | undefined {
  if (e instanceof Error && e.name === 'EngineError' && typeof (e as { code?: unknown }).code === 'string') {
    return (e as unknown as { code: string }).code;
  }
  return undefined;
}

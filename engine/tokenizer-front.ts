// What both engines (in this thread, or in a worker) answer on the thread that takes requests:
// tokenizing, the chat template, and checking a request into a plan. One place, so the engine in
// a worker throws exactly the errors, at exactly the moment, the engine in this thread does.
import { planRequest, type GenerateRequest, type PlannedRequest } from './plan.js';
import { EngineError } from './errors.js';
import type { ChatMessage, Tokenizer } from './tokenizer.js';

export abstract class TokenizerFront {
  protected constructor(
    protected readonly tokenizer: Tokenizer,
    private readonly limits: { readonly contextLength: number; readonly vocabSize: number },
  ) {}

  /** Prompt token ids for a conversation (chat template, or the plain fallback for a model without one). */
  chatPrompt(messages: readonly ChatMessage[]): number[] {
    return this.tokenizer.chatPrompt(messages);
  }

  /** Tokens of `text` without special tokens. */
  countTokens(text: string): number {
    if (typeof text !== 'string') throw new EngineError('invalid_request', 'text must be a string');
    return this.tokenizer.encode(text, false).length;
  }

  /** Token ids of `text`, with BOS when `addSpecialTokens` (default true). */
  encode(text: string, addSpecialTokens = true): number[] {
    return this.tokenizer.encode(text, addSpecialTokens);
  }

  get hasChatTemplate(): boolean {
    return this.tokenizer.hasChatTemplate;
  }

  /** The prompt text a conversation renders to through the chat template (null without one). */
  renderChat(messages: readonly ChatMessage[]): string | null {
    return this.tokenizer.renderChat(messages);
  }

  /** Checks a request and tokenizes its prompt: throws the errors generate() throws up front. */
  plan(req: GenerateRequest): PlannedRequest {
    return planRequest(req, {
      contextLength: this.limits.contextLength,
      vocabSize: this.limits.vocabSize,
      encode: (text, special) => this.tokenizer.encode(text, special),
    });
  }
}

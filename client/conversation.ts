// A conversation that lasts: the history a chat client sends with each turn, kept inside the
// model's context by dropping the oldest turns, with a bounded max_tokens so that one answer
// cannot fill the context and refuse every later turn. Shared by `sealed chat` and the page.
//
// The client does not have the model's tokenizer, so it counts in UTF-8 bytes and learns how
// many tokens a byte costs from the server: from `usage.prompt_tokens` of each answer, and from
// a context_length_exceeded refusal, which names the context length and the prompt's tokens. A
// refusal of that kind is answered by dropping turns and sending again, once; the server refused
// it before generating anything, so nothing is repeated.
import { SealedClientError } from './errors.js';
import type { SealedClient } from './sdk.js';
import type { ChatMessage, ChatParams } from './types.js';

/** Tokens per answer when the caller sets none: a few sentences, a quarter of a small context. */
export const DEFAULT_MAX_TOKENS = 128;
/** Chat templates wrap every message in a few tokens; counted as this many bytes each. */
const MESSAGE_OVERHEAD_BYTES = 8;
/** The learned rate is from other text: leave this much room besides. */
const SAFETY = 1.15;

export interface ConversationOptions {
  /** Tokens per answer; default DEFAULT_MAX_TOKENS, at most a quarter of the context once known. */
  maxTokens?: number;
  temperature?: number;
  /** A system message kept at the start of every request (never dropped). */
  system?: string;
  /** The model's context length, when the caller knows it (GET /v1/models/{id} `context_length`); otherwise learned from the server. */
  contextLength?: number;
}

export interface TurnResult {
  text: string;
  /** Earlier messages dropped before this turn to fit the context (0 most of the time). */
  dropped: number;
  finishReason: string | null;
}

/** A refusal the server made to a request it read (an inner 4xx), with its own message; undefined otherwise. */
export function refusalOf(e: unknown): { status: number; code: string | null; message: string } | undefined {
  if (!(e instanceof SealedClientError) || e.code !== 'http_error' || e.status === undefined || e.status < 400 || e.status > 499) return undefined;
  const err = (e.body as { error?: { message?: unknown; code?: unknown } } | undefined)?.error;
  const message = typeof err?.message === 'string' ? err.message.slice(0, 500) : `HTTP ${e.status}`;
  return { status: e.status, code: typeof err?.code === 'string' ? err.code : null, message };
}

/** The numbers a context_length_exceeded message names (server/inner/app.ts, OpenAI's wording). */
export function parseContextError(message: string): { contextLength: number; promptTokens: number } | undefined {
  const ctx = /maximum context length is (\d+) tokens/.exec(message);
  const prompt = /\((\d+) in the (?:messages|prompt)\b/.exec(message) ?? /resulted in (\d+) tokens/.exec(message);
  if (!ctx || !prompt) return undefined;
  const contextLength = Number(ctx[1]);
  const promptTokens = Number(prompt[1]);
  if (!Number.isSafeInteger(contextLength) || contextLength < 1 || !Number.isSafeInteger(promptTokens)) return undefined;
  return { contextLength, promptTokens };
}

const enc = new TextEncoder();
function weight(messages: readonly ChatMessage[]): number {
  let n = 0;
  for (const m of messages) n += enc.encode(m.content).length + MESSAGE_OVERHEAD_BYTES;
  return n;
}

export class Conversation {
  private history: ChatMessage[] = [];
  private contextLength: number | undefined;
  /** Tokens per byte of weight; 1 until the server said otherwise (byte-level tokenizers never exceed it by much). */
  private tokensPerByte = 1;
  private readonly opts: ConversationOptions;

  constructor(private readonly client: SealedClient, opts: ConversationOptions = {}) {
    if (opts.maxTokens !== undefined && (!Number.isSafeInteger(opts.maxTokens) || opts.maxTokens < 1)) {
      throw new SealedClientError('bad_options', 'maxTokens must be a positive integer');
    }
    if (opts.contextLength !== undefined && (!Number.isSafeInteger(opts.contextLength) || opts.contextLength < 2)) {
      throw new SealedClientError('bad_options', 'contextLength must be an integer above 1');
    }
    this.opts = { ...opts };
    this.contextLength = opts.contextLength;
  }

  /** What the next turn would build on (a copy). */
  get messages(): ChatMessage[] {
    return this.history.map((m) => ({ ...m }));
  }

  /** "New chat": forget every turn. */
  reset(): void {
    this.history = [];
  }

  /** max_tokens for the next request. */
  maxTokens(): number {
    if (this.opts.maxTokens !== undefined) return this.opts.maxTokens;
    return this.contextLength === undefined ? DEFAULT_MAX_TOKENS : Math.max(1, Math.min(DEFAULT_MAX_TOKENS, Math.floor(this.contextLength / 4)));
  }

  /**
   * Sends `text` with as much of the history as fits, streaming the answer's text to `onDelta`.
   * The history changes only when the answer arrived whole (the turn joins it, and the turns
   * dropped to fit leave it); a failed turn changes nothing. Throws SealedClientError (see refusalOf).
   */
  async send(text: string, onDelta: (delta: string) => void = () => {}, signal?: AbortSignal): Promise<TurnResult> {
    const user: ChatMessage = { role: 'user', content: text };
    let dropped = 0;
    for (let attempt = 0; ; attempt++) {
      const { kept, removed } = this.fit([...this.history, user]);
      dropped = removed;
      const maxTokens = this.maxTokens();
      let answered = false;
      try {
        const r = await this.stream(kept, maxTokens, (d) => {
          answered = true;
          onDelta(d);
        }, signal);
        this.history = [...kept, { role: 'assistant', content: r.text }];
        return { text: r.text, dropped, finishReason: r.finishReason };
      } catch (e) {
        const refusal = refusalOf(e);
        const numbers = refusal?.code === 'context_length_exceeded' ? parseContextError(refusal.message) : undefined;
        if (!numbers || answered) throw e;
        this.learn(numbers.promptTokens, kept, numbers.contextLength);
        // Once, and only if the numbers now say something smaller would fit: a latest message
        // that alone exceeds the context stays the server's refusal.
        const next = this.fit([...this.history, user]);
        if (attempt > 0 || (next.removed <= removed && this.maxTokens() >= maxTokens)) throw e;
      }
    }
  }

  private async stream(messages: ChatMessage[], maxTokens: number, onDelta: (d: string) => void, signal?: AbortSignal): Promise<{ text: string; finishReason: string | null }> {
    const params: ChatParams & { stream: true } = { messages, stream: true, max_tokens: maxTokens, stream_options: { include_usage: true } };
    if (this.opts.temperature !== undefined) params.temperature = this.opts.temperature;
    if (this.opts.system !== undefined) params.messages = [{ role: 'system', content: this.opts.system }, ...messages];
    let text = '';
    let finishReason: string | null = null;
    for await (const chunk of await this.client.chat(params, { signal })) {
      const choice = chunk.choices?.[0];
      const delta = choice?.delta?.content;
      if (typeof delta === 'string' && delta.length > 0) {
        text += delta;
        onDelta(delta);
      }
      if (choice?.finish_reason) finishReason = choice.finish_reason;
      const usage = (chunk as { usage?: { prompt_tokens?: unknown } | null }).usage;
      if (usage && typeof usage.prompt_tokens === 'number') this.learn(usage.prompt_tokens, params.messages);
    }
    return { text, finishReason };
  }

  /** Calibrates the byte-to-token rate on what the server counted for `sent`. */
  private learn(promptTokens: number, sent: readonly ChatMessage[], contextLength?: number): void {
    if (contextLength !== undefined) this.contextLength = contextLength;
    const w = weight(this.opts.system !== undefined && sent[0]?.role !== 'system' ? [{ role: 'system', content: this.opts.system }, ...sent] : sent);
    if (w > 0 && Number.isFinite(promptTokens) && promptTokens > 0) this.tokensPerByte = promptTokens / w;
  }

  private estimate(messages: readonly ChatMessage[]): number {
    const sys = this.opts.system !== undefined ? [{ role: 'system', content: this.opts.system }] : [];
    return Math.ceil(weight([...sys, ...messages]) * this.tokensPerByte * SAFETY);
  }

  /**
   * Drops the oldest turns (a user message and the answers after it) until the estimate leaves
   * room for max_tokens. The latest message always stays. Unknown context, or a max_tokens that
   * leaves no room at all: nothing is dropped.
   */
  private fit(messages: ChatMessage[]): { kept: ChatMessage[]; removed: number } {
    if (this.contextLength === undefined) return { kept: messages, removed: 0 };
    const budget = this.contextLength - this.maxTokens();
    // max_tokens alone fills the context, or the latest message alone does not fit: dropping turns
    // cannot help, so keep them and let the server's refusal stand.
    if (budget < 1 || this.estimate(messages.slice(-1)) > budget) return { kept: messages, removed: 0 };
    let start = 0;
    while (start < messages.length - 1 && this.estimate(messages.slice(start)) > budget) {
      start++;
      while (start < messages.length - 1 && messages[start]!.role !== 'user') start++;
    }
    return { kept: messages.slice(start), removed: start };
  }
}

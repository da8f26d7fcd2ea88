/**
 * Tokenizer and chat template, on @huggingface/tokenizers and @huggingface/jinja: the two
 * libraries transformers.js' PreTrainedTokenizer wraps, used the way it uses them for a
 * decoder-only model (encode/decode by the tokenizer, the template rendered by jinja with the
 * conversation, the generation prompt flag and the special tokens). Taking them directly keeps
 * transformers.js, and the ONNX Runtime Web and sharp it depends on, out of production.
 *
 * The tokenizer is constructed from the parsed tokenizer.json and tokenizer_config.json that
 * the model loader read and hashed; neither library opens a file or the network. Nothing is
 * cached or written.
 */
import { Tokenizer as HfTokenizer } from '@huggingface/tokenizers';
import { Template } from '@huggingface/jinja';
import { EngineError } from './errors.js';
import { isWellFormed } from './text.js';
import { buildPieceTable, type PieceTable } from './pieces.js';

export type ChatRole = 'system' | 'user' | 'assistant' | 'developer' | 'tool';

export interface ChatMessage {
  readonly role: ChatRole;
  /** Plain text, or OpenAI-style content parts of which only `text` parts are allowed. */
  readonly content: string | readonly { readonly type: 'text'; readonly text: string }[];
}

export interface Tokenizer {
  /** Token ids of `text`, with the model's special tokens (BOS) when `addSpecialTokens` (default true). */
  encode(text: string, addSpecialTokens?: boolean): number[];
  /** Text of `ids`, special tokens skipped. */
  decode(ids: readonly number[]): string;
  /** Prompt ids for a conversation, ending where the assistant's reply starts. */
  chatPrompt(messages: readonly ChatMessage[]): number[];
  /** The text the chat template renders for a conversation (with the generation prompt), or null without a template. */
  renderChat(messages: readonly ChatMessage[]): string | null;
  /** tokenizer_config.json's eos_token as one token id (chat models end a turn with it), when it is one. */
  readonly eosTokenId: number | null;
  readonly hasChatTemplate: boolean;
  /** Byte table for fast streaming detokenization, when verified for this tokenizer. */
  readonly pieceTable: PieceTable | null;
}

/** The special tokens a chat template may refer to, as transformers.js passes them. */
const SPECIAL_TOKEN_KEYS = ['bos_token', 'eos_token', 'unk_token', 'sep_token', 'pad_token', 'cls_token', 'mask_token'] as const;

/** A special token of tokenizer_config.json: a string, or an AddedToken object. */
function specialToken(config: Record<string, unknown>, key: string): string | null {
  const item = config[key];
  if (!item) return null;
  if (typeof item === 'string') return item;
  if (typeof item === 'object' && (item as { __type?: unknown }).__type === 'AddedToken' && typeof (item as { content?: unknown }).content === 'string') {
    return (item as { content: string }).content;
  }
  throw new Error(`${key} is neither a string nor an AddedToken`);
}

/** tokenizer_config.json's chat_template: one template, or the `default` of a named list. */
function chatTemplateOf(config: Record<string, unknown>): string | null {
  const t = config.chat_template;
  if (t === undefined || t === null) return null;
  if (typeof t === 'string') return t;
  if (Array.isArray(t)) {
    const named = t.find((e) => e && typeof e === 'object' && (e as { name?: unknown }).name === 'default');
    if (named && typeof (named as { template?: unknown }).template === 'string') return (named as { template: string }).template;
  }
  throw new Error('chat_template is neither a string nor a list with a "default" template');
}

const ROLES = new Set(['system', 'user', 'assistant', 'developer', 'tool']);

/** Validates messages and flattens content parts to text. */
export function normalizeMessages(messages: unknown): { role: ChatRole; content: string }[] {
  if (!Array.isArray(messages) || messages.length === 0) {
    throw new EngineError('invalid_request', 'messages must be a non-empty array');
  }
  return messages.map((m, i) => {
    if (m === null || typeof m !== 'object') throw new EngineError('invalid_request', `messages[${i}] must be an object`);
    const { role, content } = m as { role?: unknown; content?: unknown };
    if (typeof role !== 'string' || !ROLES.has(role)) {
      throw new EngineError('invalid_request', `messages[${i}].role must be one of ${[...ROLES].join(', ')}`);
    }
    let text: string;
    if (typeof content === 'string') text = content;
    else if (Array.isArray(content)) {
      text = content
        .map((p, j) => {
          if (p === null || typeof p !== 'object' || (p as { type?: unknown }).type !== 'text' ||
            typeof (p as { text?: unknown }).text !== 'string') {
            throw new EngineError('invalid_request', `messages[${i}].content[${j}] must be a text part`);
          }
          return (p as { text: string }).text;
        })
        .join('');
    } else throw new EngineError('invalid_request', `messages[${i}].content must be a string or text parts`);
    if (!isWellFormed(text)) throw new EngineError('invalid_request', `messages[${i}].content is not well-formed Unicode`);
    return { role: role as ChatRole, content: text };
  });
}

/**
 * The longest text, in UTF-16 code units, that one token of this vocabulary
 * can stand for. Unknown vocabulary shapes get a generous default.
 */
export function longestTokenLength(tokenizerJson: object): number {
  const json = tokenizerJson as { model?: { vocab?: unknown }; added_tokens?: { content?: unknown }[] };
  let longest = 0;
  const vocab = json.model?.vocab;
  const pieces: unknown[] = Array.isArray(vocab)
    ? vocab.map((entry) => (Array.isArray(entry) ? entry[0] : entry)) // Unigram: [piece, score]
    : vocab !== null && typeof vocab === 'object' ? Object.keys(vocab) : [];
  for (const piece of pieces) if (typeof piece === 'string') longest = Math.max(longest, piece.length);
  for (const added of json.added_tokens ?? []) {
    if (typeof added?.content === 'string') longest = Math.max(longest, added.content.length);
  }
  return longest > 0 ? longest : 64;
}

/**
 * Normalizers can fold several input characters into one (NFKC composition,
 * whitespace collapsing); this factor keeps the bound above any real prompt
 * that still fits the context.
 */
const NORMALIZATION_SLACK = 4;

export function createTokenizer(
  tokenizerJson: object,
  tokenizerConfig: Record<string, unknown>,
  vocabSize = 0,
  contextLength = Number.POSITIVE_INFINITY,
): Tokenizer {
  // Tokenizing runs synchronously on the event loop: a text too long to fit the
  // context whatever it tokenizes to is refused by its length, before any work.
  const maxTextLength = contextLength * longestTokenLength(tokenizerJson) * NORMALIZATION_SLACK;
  const checkLength = (length: number) => {
    if (length > maxTextLength) {
      throw new EngineError('context_length_exceeded', `the text is longer than the model's context of ${contextLength} tokens can hold`);
    }
  };
  let tok: HfTokenizer;
  let template: Template | null;
  const specialTokens: Record<string, string> = {};
  try {
    tok = new HfTokenizer(tokenizerJson, tokenizerConfig);
    for (const key of SPECIAL_TOKEN_KEYS) {
      const value = specialToken(tokenizerConfig, key);
      if (value) specialTokens[key] = value;
    }
    const source = chatTemplateOf(tokenizerConfig);
    template = source === null ? null : new Template(source);
  } catch (e) {
    const reason = e instanceof Error ? e.message.split('\n')[0].slice(0, 160) : 'unknown error';
    throw new EngineError('model_invalid', `tokenizer.json / tokenizer_config.json could not be loaded (${reason})`);
  }
  const hasChatTemplate = template !== null;

  const encode = (text: string, addSpecialTokens = true): number[] => {
    checkLength(text.length);
    return tok.encode(text, { add_special_tokens: addSpecialTokens }).ids;
  };

  const decode = (ids: readonly number[]) => (ids.length === 0 ? '' : tok.decode(ids as number[], { skip_special_tokens: true }));
  const render = (msgs: { role: ChatRole; content: string }[]): string => {
    try {
      return template!.render({ messages: msgs, add_generation_prompt: true, tools: null, documents: null, ...specialTokens });
    } catch {
      // Templates raise for conversations they do not accept (e.g. roles out of order).
      throw new EngineError('invalid_request', 'the conversation does not fit the model\'s chat template');
    }
  };
  const eosId = specialTokens.eos_token === undefined ? undefined : tok.token_to_id(specialTokens.eos_token);
  return {
    hasChatTemplate,
    eosTokenId: eosId !== undefined && eosId < (vocabSize || Infinity) ? eosId : null,
    pieceTable: buildPieceTable(tokenizerJson, vocabSize, decode),
    encode,
    decode,
    renderChat(messages) {
      if (!template) return null;
      const msgs = normalizeMessages(messages);
      checkLength(msgs.reduce((n, m) => n + m.content.length, 0));
      return render(msgs);
    },
    chatPrompt(messages) {
      const msgs = normalizeMessages(messages);
      checkLength(msgs.reduce((n, m) => n + m.content.length, 0));
      if (template) {
        // The template writes the special tokens (BOS) itself.
        return encode(render(msgs), false);
      }
      // Plain fallback for a base model without a template: it has no notion
      // of turns, so the conversation is the messages' text joined by
      // newlines, after BOS, and the model continues it.
      return encode(msgs.map((m) => m.content).join('\n'), true);
    },
  };
}

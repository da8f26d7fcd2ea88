/**
 * Incremental detokenization: turns generated token ids into text deltas
 * that never split a character, for any tokenizer decoder.
 *
 * Byte-fallback tokens (`<0xE2>` ...) and byte-level BPE make single tokens
 * decode to partial UTF-8, which the decoder renders as U+FFFD. So a delta
 * is released only once the decoded window no longer ends in U+FFFD. The
 * window is decoded together with a few tokens of left context, so that
 * decoders that treat the first token specially (SentencePiece's leading
 * space strip) produce the same text as decoding the whole sequence.
 */
import type { PieceTable } from './pieces.js';

export interface Decoder {
  decode(ids: readonly number[]): string;
  /** When present, the fast byte-stream path is used (see pieces.ts). */
  readonly pieceTable?: PieceTable | null;
}

export interface TextStream {
  /** Adds one token; returns the text it completes ('' while a character is still partial). */
  push(id: number): string;
  /** Releases whatever is held back (incomplete bytes become U+FFFD). */
  flush(): string;
}

/** The fastest exact detokenizer for this tokenizer. */
export function createDetokenizer(decoder: Decoder, promptIds: readonly number[]): TextStream {
  return decoder.pieceTable ? new ByteStreamDetokenizer(decoder.pieceTable, promptIds) : new Detokenizer(decoder, promptIds);
}

/**
 * Fast path: the token's bytes go through a streaming UTF-8 decoder, which
 * holds back an incomplete character by construction. Equivalent to
 * decoding prompt + output in one piece and taking the part after the prompt.
 */
export class ByteStreamDetokenizer implements TextStream {
  private readonly utf8 = new TextDecoder('utf-8', { ignoreBOM: true });
  /** The decoder's one leading-space strip still applies (nothing has been written yet). */
  private stripPending: boolean;

  constructor(private readonly table: PieceTable, promptIds: readonly number[]) {
    this.stripPending = table.stripLeadingSpace && !promptIds.some((id) => (table.pieces[id]?.length ?? 0) > 0);
  }

  push(id: number): string {
    let bytes = this.table.pieces[id];
    if (!bytes || bytes.length === 0) return '';
    if (this.stripPending) {
      this.stripPending = false;
      if (bytes[0] === 0x20) bytes = bytes.subarray(1);
    }
    return this.utf8.decode(bytes, { stream: true });
  }

  flush(): string {
    return this.utf8.decode();
  }
}

/** Longest a character can stay incomplete: 4 UTF-8 bytes, with slack for merges. */
const MAX_PENDING_TOKENS = 8;
/** Left context taken from the prompt. */
const CONTEXT_TOKENS = 4;

/** Generic path: re-decodes a short window through the tokenizer for each token. */
export class Detokenizer implements TextStream {
  private readonly ids: number[];
  private prefixOffset = 0;
  private readOffset: number;

  constructor(private readonly decoder: Decoder, promptIds: readonly number[]) {
    this.ids = promptIds.slice(Math.max(0, promptIds.length - CONTEXT_TOKENS));
    this.readOffset = this.ids.length;
  }

  push(id: number): string {
    this.ids.push(id);
    return this.release(false);
  }

  flush(): string {
    return this.release(true);
  }

  private release(force: boolean): string {
    if (this.readOffset >= this.ids.length) return '';
    const prefixText = this.decoder.decode(this.ids.slice(this.prefixOffset, this.readOffset));
    const newText = this.decoder.decode(this.ids.slice(this.prefixOffset));
    const pending = this.ids.length - this.readOffset;
    if (!force && newText.endsWith('\uFFFD') && pending < MAX_PENDING_TOKENS) return '';
    let start = prefixText.length;
    if (!newText.startsWith(prefixText)) {
      // The context ended inside a character that the new bytes completed:
      // emit from where the two decodings diverge, whole characters only.
      start = 0;
      while (start < prefixText.length && prefixText.charCodeAt(start) === newText.charCodeAt(start)) start++;
      if (start > 0 && isHighSurrogate(newText.charCodeAt(start - 1))) start--;
    }
    const delta = newText.slice(start);
    // Compact: keep the just-read tokens as the next left context.
    this.ids.splice(0, this.readOffset);
    this.prefixOffset = 0;
    this.readOffset = this.ids.length;
    return delta;
  }
}

function isHighSurrogate(c: number): boolean {
  return c >= 0xd800 && c <= 0xdbff;
}

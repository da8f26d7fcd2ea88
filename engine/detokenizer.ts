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
export interface Decoder {
  decode(ids: readonly number[]): string;
}

/** Longest a character can stay incomplete: 4 UTF-8 bytes, with slack for merges. */
const MAX_PENDING_TOKENS = 8;
/** Left context taken from the prompt. */
const CONTEXT_TOKENS = 4;

export class Detokenizer {
  private readonly ids: number[];
  private prefixOffset = 0;
  private readOffset: number;

  constructor(private readonly decoder: Decoder, promptIds: readonly number[]) {
    this.ids = promptIds.slice(Math.max(0, promptIds.length - CONTEXT_TOKENS));
    this.readOffset = this.ids.length;
  }

  /** Adds one token; returns the text it completes ('' while a character is still partial). */
  push(id: number): string {
    this.ids.push(id);
    return this.release(false);
  }

  /** Releases whatever is held back (incomplete bytes become U+FFFD). */
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

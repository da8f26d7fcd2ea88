/**
 * Fast path for incremental detokenization: a table of the bytes each token
 * contributes, for the two decoder families almost every open model uses
 * (SentencePiece with byte fallback: "▁" is a space and "<0xHH>" a byte;
 * byte-level BPE: each character stands for one byte). With it a sequence's
 * text is a stream of bytes fed to a streaming UTF-8 decoder, which by
 * construction never emits part of a character, at a fraction of the cost
 * of re-decoding a window through the tokenizer for every token.
 *
 * The table is only used when it reproduces the tokenizer's own decode() on
 * a sample of single tokens and random sequences at load time; otherwise
 * the engine keeps the generic (slower) path.
 */
import { Rng } from './sampler.js';

export interface PieceTable {
  /** Bytes of each token id; null for special tokens (skipped in output). */
  readonly pieces: readonly (Uint8Array | null)[];
  /** The decoder drops one leading space of the whole text (SentencePiece "Strip"). */
  readonly stripLeadingSpace: boolean;
}

interface TokenizerJsonShape {
  model?: { type?: string; vocab?: Record<string, number> | [string, number][] };
  added_tokens?: { id: number; content: string; special?: boolean }[];
  decoder?: unknown;
}

const utf8 = new TextEncoder();

/** GPT-2's byte <-> printable-character map (bytes_to_unicode), inverted. */
function byteLevelDecoderMap(): Map<string, number> {
  const bs: number[] = [];
  for (let b = 33; b <= 126; b++) bs.push(b);
  for (let b = 161; b <= 172; b++) bs.push(b);
  for (let b = 174; b <= 255; b++) bs.push(b);
  const cs = bs.slice();
  let n = 0;
  for (let b = 0; b < 256; b++) {
    if (!bs.includes(b)) {
      bs.push(b);
      cs.push(256 + n++);
    }
  }
  const m = new Map<string, number>();
  bs.forEach((b, i) => m.set(String.fromCharCode(cs[i]), b));
  return m;
}

function vocabEntries(json: TokenizerJsonShape): [string, number][] | null {
  const v = json.model?.vocab;
  if (Array.isArray(v)) return v.map(([tok], i) => [tok, i]);
  if (v && typeof v === 'object') return Object.entries(v);
  return null;
}

function sentencePiecePiece(token: string): Uint8Array {
  const m = /^<0x([0-9A-Fa-f]{2})>$/.exec(token);
  if (m) return Uint8Array.of(parseInt(m[1], 16));
  return utf8.encode(token.replace(/\u2581/g, ' '));
}

function byteLevelPiece(map: Map<string, number>) {
  return (token: string): Uint8Array | null => {
    const out = new Uint8Array(token.length);
    let i = 0;
    for (const ch of token) {
      const b = map.get(ch);
      if (b === undefined) return null;
      out[i++] = b;
    }
    return out.subarray(0, i);
  };
}

/** Decodes a whole id sequence with a table (the reference the stream must match). */
export function decodeWithTable(table: PieceTable, ids: readonly number[]): string {
  const parts: Uint8Array[] = [];
  let len = 0;
  for (const id of ids) {
    const p = table.pieces[id];
    if (p) {
      parts.push(p);
      len += p.length;
    }
  }
  const all = new Uint8Array(len);
  let o = 0;
  for (const p of parts) {
    all.set(p, o);
    o += p.length;
  }
  const start = table.stripLeadingSpace && all[0] === 0x20 ? 1 : 0;
  return new TextDecoder('utf-8', { ignoreBOM: true }).decode(all.subarray(start));
}

/**
 * Builds a piece table for this tokenizer, or null when neither family
 * reproduces `decode` exactly on the verification sample.
 */
export function buildPieceTable(
  tokenizerJson: object,
  vocabSize: number,
  decode: (ids: readonly number[]) => string,
): PieceTable | null {
  const json = tokenizerJson as TokenizerJsonShape;
  const entries = vocabEntries(json);
  if (!entries) return null;
  // A loop, not Math.max(...ids): spreading a 150K-entry vocabulary overflows the call stack.
  let size = vocabSize;
  for (const [, id] of entries) size = Math.max(size, id + 1);
  for (const t of json.added_tokens ?? []) size = Math.max(size, t.id + 1);
  if (size > 1_000_000) return null;
  const decoderText = JSON.stringify(json.decoder ?? null);
  const candidates: { piece: (t: string) => Uint8Array | null; strip: boolean }[] = [];
  if (decoderText.includes('ByteLevel')) candidates.push({ piece: byteLevelPiece(byteLevelDecoderMap()), strip: false });
  const spStrip = decoderText.includes('"Strip"');
  candidates.push({ piece: sentencePiecePiece, strip: spStrip }, { piece: sentencePiecePiece, strip: !spStrip });

  for (const c of candidates) {
    const pieces: (Uint8Array | null)[] = new Array(size).fill(null);
    let ok = true;
    for (const [tok, id] of entries) {
      const p = c.piece(tok);
      if (p === null) {
        ok = false;
        break;
      }
      pieces[id] = p;
    }
    if (!ok) continue;
    for (const t of json.added_tokens ?? []) {
      // Special tokens are skipped in output; other added tokens are their literal text.
      pieces[t.id] = t.special ? null : utf8.encode(t.content);
    }
    const table: PieceTable = { pieces, stripLeadingSpace: c.strip };
    if (verify(table, size, decode)) return table;
  }
  return null;
}

function verify(table: PieceTable, size: number, decode: (ids: readonly number[]) => string): boolean {
  const rng = new Rng(0x5eed);
  const ids = Array.from({ length: size }, (_, i) => i).filter((i) => i < table.pieces.length);
  const singles = size <= 4096 ? ids : Array.from({ length: 2048 }, () => ids[Math.floor(rng.nextFloat() * ids.length)]);
  try {
    for (const id of singles) if (decodeWithTable(table, [id]) !== decode([id])) return false;
    for (let n = 0; n < 300; n++) {
      const seq = Array.from({ length: 1 + Math.floor(rng.nextFloat() * 12) }, () => ids[Math.floor(rng.nextFloat() * ids.length)]);
      if (decodeWithTable(table, seq) !== decode(seq)) return false;
    }
  } catch {
    return false;
  }
  return true;
}

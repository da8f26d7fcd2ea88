// Incremental detokenization must never split a character, including across
// byte-fallback tokens (<0xF0><0x9F><0x98><0x80> for one emoji).
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { readFileSync } from 'node:fs';
import { ByteStreamDetokenizer, Detokenizer, type TextStream } from '../engine/detokenizer.js';
import { buildPieceTable, decodeWithTable } from '../engine/pieces.js';
import { createTokenizer } from '../engine/tokenizer.js';
import { Rng } from '../engine/sampler.js';
import { isWellFormed } from '../engine/text.js';

const dir = new URL('../models/stories260K/', import.meta.url);
const tokenizerJson = JSON.parse(readFileSync(new URL('tokenizer.json', dir), 'utf8'));
const tokenizerConfig = JSON.parse(readFileSync(new URL('tokenizer_config.json', dir), 'utf8'));
const tok = createTokenizer(tokenizerJson, tokenizerConfig, 512);
const vocab = (JSON.parse(readFileSync(new URL('tokenizer.json', dir), 'utf8')) as { model: { vocab: Record<string, number> } }).model.vocab;

// Both implementations must behave identically: the fast byte-stream one
// (used when the tokenizer's piece table verified) and the generic one.
const impls: [string, (prompt: number[]) => TextStream][] = [
  ['byte stream', (prompt) => new ByteStreamDetokenizer(tok.pieceTable!, prompt)],
  ['generic', (prompt) => new Detokenizer(tok, prompt)],
];
let make = impls[0][1];
function stream(prompt: number[], ids: number[]): string[] {
  const d = make(prompt);
  const out = ids.map((id) => d.push(id));
  out.push(d.flush());
  return out;
}
function both(name: string, fn: () => void) {
  for (const [impl, factory] of impls) {
    test(`${name} (${impl})`, () => {
      make = factory;
      fn();
    });
  }
}

test('the bundled tokenizer gets a verified piece table (fast path) that decodes like the tokenizer', () => {
  const table = tok.pieceTable;
  assert.ok(table);
  assert.equal(table.stripLeadingSpace, true);
  for (let id = 0; id < 512; id++) assert.equal(decodeWithTable(table, [id]), tok.decode([id]), `token ${id}`);
  const rng = new Rng(5);
  for (let n = 0; n < 500; n++) {
    const ids = Array.from({ length: 1 + Math.floor(rng.nextFloat() * 20) }, () => Math.floor(rng.nextFloat() * 512));
    assert.equal(decodeWithTable(table, ids), tok.decode(ids));
  }
});

test('a decoder the table cannot reproduce gets no piece table (generic path)', () => {
  const odd = {
    ...tokenizerJson,
    decoder: { type: 'Sequence', decoders: [{ type: 'Replace', pattern: { String: '\u2581' }, content: '_' }, { type: 'ByteFallback' }, { type: 'Fuse' }] },
  };
  const t = createTokenizer(odd, tokenizerConfig, 512);
  assert.equal(t.pieceTable, null);
  assert.equal(buildPieceTable(odd, 512, (ids) => t.decode(ids)), null);
});

both('an emoji made of four byte-fallback tokens comes out whole, once', () => {
  const ids = tok.encode('a 😀 b', false);
  const bytes = [0xf0, 0x9f, 0x98, 0x80].map((b) => vocab[`<0x${b.toString(16).toUpperCase().padStart(2, '0')}>`]);
  // The tokenizer really falls back to the four byte tokens (the test is about them).
  assert.ok(bytes.every((id) => typeof id === 'number'));
  const at = ids.indexOf(bytes[0]);
  assert.ok(at >= 0);
  assert.deepEqual(ids.slice(at, at + 4), bytes);
  const deltas = stream([1], ids);
  // Nothing is released while the character is incomplete, then all of it at once.
  const partial = deltas.slice(at, at + 3);
  assert.deepEqual(partial, ['', '', '']);
  assert.ok(deltas[at + 3].includes('😀'));
  assert.equal(deltas.join(''), 'a 😀 b');
  for (const d of deltas) assert.ok(!d.includes('\uFFFD') && isWellFormed(d));
});

both('random multilingual text streams to exactly its full decoding, character-safe', () => {
  const rng = new Rng(99);
  const pieces = ['Once', ' upon', ' a time', ' ✓', 'é', 'ß', ' 日本語', ' 😀🎉', '\n', ' Lily', '"', ' €', 'ü', ' ok.'];
  for (let round = 0; round < 200; round++) {
    const n = 1 + Math.floor(rng.nextFloat() * 12);
    const text = Array.from({ length: n }, () => pieces[Math.floor(rng.nextFloat() * pieces.length)]).join('');
    const ids = tok.encode(text, false);
    const deltas = stream([1], ids);
    for (const d of deltas) {
      assert.ok(!d.includes('\uFFFD'), 'no replacement character from a split');
      assert.ok(isWellFormed(d), 'no lone surrogate');
    }
    assert.equal(deltas.join(''), tok.decode(ids));
  }
});

both('a completion after a prompt keeps its leading space (decoded with prompt context)', () => {
  const prompt = tok.encode('Once upon a time', true);
  const cont = tok.encode('Once upon a time there was', true).slice(prompt.length);
  assert.ok(cont.length > 0);
  assert.equal(stream(prompt, cont).join(''), ' there was');
});

both('bytes that never form a character are released as U+FFFD, not held forever', () => {
  const lone = vocab['<0xE2>'];
  assert.equal(typeof lone, 'number');
  // 0xE2 then a plain letter: invalid UTF-8; the text must still arrive.
  const a = tok.encode('a', false).at(-1)!;
  const deltas = stream([1], [lone, a, a]);
  assert.equal(deltas.join(''), tok.decode([lone, a, a]));
  // And a run of lone continuation bytes does not grow without bound.
  const cont = vocab['<0x80>'];
  const many = Array.from({ length: 40 }, () => cont);
  const d2 = stream([1], many);
  assert.ok(d2.slice(0, 20).join('').length > 0, 'released before the end');
  assert.equal(d2.join(''), tok.decode(many));
});

test('byte-level BPE (GPT-2 style) tokenizers get a verified piece table too', () => {
  // A minimal byte-level tokenizer: the 256 byte characters of GPT-2's bytes_to_unicode and one special token.
  const bs: number[] = [];
  for (let b = 33; b <= 126; b++) bs.push(b);
  for (let b = 161; b <= 172; b++) bs.push(b);
  for (let b = 174; b <= 255; b++) bs.push(b);
  const cs = bs.slice();
  let n = 0;
  for (let b = 0; b < 256; b++) if (!bs.includes(b)) { bs.push(b); cs.push(256 + n++); }
  const vocab: Record<string, number> = {};
  bs.forEach((b, i) => (vocab[String.fromCharCode(cs[i])] = b));
  const json = {
    version: '1.0',
    truncation: null,
    padding: null,
    added_tokens: [{ id: 256, content: '<|endoftext|>', single_word: false, lstrip: false, rstrip: false, normalized: false, special: true }],
    normalizer: null,
    pre_tokenizer: { type: 'ByteLevel', add_prefix_space: false, trim_offsets: true, use_regex: true },
    post_processor: null,
    decoder: { type: 'ByteLevel', add_prefix_space: true, trim_offsets: true, use_regex: true },
    model: { type: 'BPE', dropout: null, unk_token: null, continuing_subword_prefix: null, end_of_word_suffix: null, fuse_unk: false, byte_fallback: false, vocab, merges: [] },
  };
  const t = createTokenizer(json, { tokenizer_class: 'GPT2Tokenizer', eos_token: '<|endoftext|>', clean_up_tokenization_spaces: false }, 257);
  assert.ok(t.pieceTable, 'byte-level table verified');
  const text = ' héllo 😀 wörld';
  const ids = t.encode(text, false);
  assert.equal(ids.length, new TextEncoder().encode(text).length);
  const d = new ByteStreamDetokenizer(t.pieceTable, []);
  const deltas = [...ids, 256].map((id) => d.push(id));
  deltas.push(d.flush());
  assert.equal(deltas.join(''), text);
  for (const x of deltas) assert.ok(!x.includes('\uFFFD'));
});

// Incremental detokenization must never split a character, including across
// byte-fallback tokens (<0xF0><0x9F><0x98><0x80> for one emoji).
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { readFileSync } from 'node:fs';
import { Detokenizer } from '../engine/detokenizer.js';
import { createTokenizer } from '../engine/tokenizer.js';
import { Rng } from '../engine/sampler.js';
import { isWellFormed } from '../engine/text.js';

const dir = new URL('../models/stories260K/', import.meta.url);
const tok = createTokenizer(
  JSON.parse(readFileSync(new URL('tokenizer.json', dir), 'utf8')),
  JSON.parse(readFileSync(new URL('tokenizer_config.json', dir), 'utf8')),
);
const vocab = (JSON.parse(readFileSync(new URL('tokenizer.json', dir), 'utf8')) as { model: { vocab: Record<string, number> } }).model.vocab;

function stream(prompt: number[], ids: number[]): string[] {
  const d = new Detokenizer(tok, prompt);
  const out = ids.map((id) => d.push(id));
  out.push(d.flush());
  return out;
}

test('an emoji made of four byte-fallback tokens comes out whole, once', () => {
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

test('random multilingual text streams to exactly its full decoding, character-safe', () => {
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

test('a completion after a prompt keeps its leading space (decoded with prompt context)', () => {
  const prompt = tok.encode('Once upon a time', true);
  const cont = tok.encode('Once upon a time there was', true).slice(prompt.length);
  assert.ok(cont.length > 0);
  assert.equal(stream(prompt, cont).join(''), ' there was');
});

test('bytes that never form a character are released as U+FFFD, not held forever', () => {
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

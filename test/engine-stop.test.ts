import { test } from 'node:test';
import assert from 'node:assert/strict';
import { StopMatcher } from '../engine/stop.js';

function run(stops: string[], deltas: string[]) {
  const m = new StopMatcher(stops);
  const out: string[] = [];
  for (const d of deltas) {
    const r = m.push(d);
    out.push(r.text);
    if (r.stopped) return { out, stopped: true };
  }
  out.push(m.flush());
  return { out, stopped: false };
}

test('text before a stop sequence is released, the stop string never', () => {
  const r = run(['END'], ['hello ', 'wor', 'ld E', 'N', 'D and more']);
  assert.equal(r.stopped, true);
  assert.equal(r.out.join(''), 'hello world ');
  assert.ok(!r.out.join('').includes('E'));
});

test('a possible start of a stop sequence is held back until disambiguated', () => {
  const m = new StopMatcher(['\n\nUser:']);
  assert.deepEqual(m.push('Hi\n'), { text: 'Hi', stopped: false });
  assert.deepEqual(m.push('\nUs'), { text: '', stopped: false });
  // Not the stop after all: everything held comes out in order.
  assert.deepEqual(m.push('ually'), { text: '\n\nUsually', stopped: false });
  assert.equal(m.flush(), '');
});

test('held text is released at the end when no stop followed', () => {
  const r = run(['STOP'], ['one ST', 'O']);
  assert.equal(r.stopped, false);
  assert.equal(r.out.join(''), 'one STO');
});

test('the stop sequence completed first wins, also inside one delta', () => {
  const r = run(['xyz', 'b'], ['a xyz b']);
  assert.equal(r.out.join(''), 'a ');
  // 'cd' is complete before 'abcdef' is, whichever way the text is split.
  assert.equal(run(['cd', 'abcdef'], ['ab', 'cdef']).out.join(''), 'ab');
  assert.equal(run(['cd', 'abcdef'], ['abcdef']).out.join(''), 'ab');
  // Same end: the longer (earlier-starting) one.
  assert.equal(run(['def', 'cdef'], ['abcdefg']).out.join(''), 'ab');
});

test('no stops: everything passes straight through', () => {
  const m = new StopMatcher([]);
  assert.deepEqual(m.push('abc'), { text: 'abc', stopped: false });
});

test('random streams: output equals the text up to the first stop, regardless of how it was split', () => {
  let seed = 12345;
  const rand = (n: number) => {
    seed = (Math.imul(seed, 1103515245) + 12345) >>> 0;
    return seed % n;
  };
  const alphabet = 'ab\n:';
  for (let i = 0; i < 2000; i++) {
    const text = Array.from({ length: 1 + rand(30) }, () => alphabet[rand(alphabet.length)]).join('');
    const stops = Array.from({ length: 1 + rand(3) }, () =>
      Array.from({ length: 1 + rand(4) }, () => alphabet[rand(alphabet.length)]).join(''));
    const deltas: string[] = [];
    for (let p = 0; p < text.length; ) {
      const n = 1 + rand(4);
      deltas.push(text.slice(p, p + n));
      p += n;
    }
    // Oracle, character by character: the first position where some stop is complete.
    let first = Infinity;
    for (let end = 1; end <= text.length && first === Infinity; end++) {
      for (const s of stops) {
        if (text.slice(0, end).endsWith(s)) first = Math.min(first, end - s.length);
      }
    }
    const r = run(stops, deltas);
    const expected = first === Infinity ? text : text.slice(0, first);
    assert.equal(r.out.join(''), expected, JSON.stringify({ text, stops, deltas }));
    assert.equal(r.stopped, first !== Infinity);
    // Never released: any text beyond what is finally expected.
    let emitted = '';
    for (const d of r.out) {
      emitted += d;
      assert.ok(expected.startsWith(emitted));
    }
  }
});

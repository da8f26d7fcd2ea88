import { test } from 'node:test';
import assert from 'node:assert/strict';
import { encodeVarint, peekVarint, Reader, ByteQueue, hexToBytes as h, bytesToHex as hex, concat, equalBytes, i2osp } from '../transport/bytes.js';
import { TransportError } from '../transport/errors.js';

const isCode = (code: string) => (e: unknown) => e instanceof TransportError && e.code === code;

test('QUIC varints: RFC 9000 section A.1 examples and encoding boundaries', () => {
  assert.deepEqual(new Reader(h('9d7f3e7d')).varint(), 494878333);
  assert.deepEqual(new Reader(h('7bbd')).varint(), 15293);
  assert.deepEqual(new Reader(h('25')).varint(), 37);
  assert.deepEqual(new Reader(h('4025')).varint(), 37); // non-minimal encodings are valid varints
  // 151288809941952652 is beyond 2^53-1: no length in this project can be that large.
  assert.throws(() => new Reader(h('c2197c5eff14e88c')).varint(), isCode('malformed'));
  for (const [n, enc] of [[0, '00'], [63, '3f'], [64, '4040'], [16383, '7fff'], [16384, '80004000'], [1073741823, 'bfffffff'],
    [1073741824, 'c000000040000000'], [Number.MAX_SAFE_INTEGER, 'c01fffffffffffff']] as const) {
    assert.equal(hex(encodeVarint(n)), enc);
    assert.equal(new Reader(h(enc)).varint(), n);
  }
  assert.throws(() => encodeVarint(-1), isCode('invalid_argument'));
  assert.throws(() => encodeVarint(1.5), isCode('invalid_argument'));
  assert.equal(peekVarint(h('80'), 0), undefined);
});

test('Reader never reads past its end', () => {
  const r = new Reader(h('0102030405'), 1, 4);
  assert.equal(r.u8(), 2);
  assert.equal(r.u16(), 0x0304);
  assert.throws(() => r.u8(), isCode('truncated'));
  const r2 = new Reader(h('05aabb'));
  assert.throws(() => r2.lengthPrefixed(100), isCode('truncated'));
  assert.throws(() => new Reader(h('05aabbccddee')).lengthPrefixed(4), isCode('too_large'));
  assert.throws(() => new Reader(h('00')).bytes(2), isCode('truncated'));
  assert.throws(() => new Reader(h('0000')).sub(3), isCode('truncated'));
});

test('hex, concat, i2osp, constant-time equality', () => {
  assert.equal(hex(h('00ffA0')), '00ffa0');
  assert.throws(() => h('abc'), isCode('malformed'));
  assert.throws(() => h('zz'), isCode('malformed'));
  assert.equal(hex(concat(h('01'), new Uint8Array(0), h('0203'))), '010203');
  assert.equal(hex(i2osp(0x0020, 2)), '0020');
  assert.throws(() => i2osp(256, 1), isCode('invalid_argument'));
  assert.ok(equalBytes(h('0102'), h('0102')));
  assert.ok(!equalBytes(h('0102'), h('0103')));
  assert.ok(!equalBytes(h('01'), h('0102')));
});

test('ByteQueue: peek/take/skip across many parts, copies its input', () => {
  const q = new ByteQueue();
  const src = h('00010203040506070809');
  for (let i = 0; i < src.length; i++) q.push(src.subarray(i, i + 1));
  src[0] = 0xff; // the queue holds its own copy
  assert.equal(q.length, 10);
  assert.equal(hex(q.peek(3)), '000102');
  assert.equal(hex(q.take(4)), '00010203');
  q.skip(1);
  assert.equal(hex(q.peek(100)), '0506070809');
  assert.throws(() => q.take(6), isCode('truncated'));
  q.push(h('4040'));
  assert.equal(hex(q.takeAll()), '05060708094040');
  assert.equal(q.length, 0);
  q.push(h('4040'));
  assert.deepEqual(q.peekVarint(), { value: 64, length: 2 });
  // Many single-byte parts drained in one take.
  const big = new ByteQueue();
  for (let i = 0; i < 5000; i++) big.push(Uint8Array.of(i & 0xff));
  const all = big.take(4999);
  assert.equal(all.length, 4999);
  assert.equal(all[4998], 4998 & 0xff);
  assert.equal(hex(big.takeAll()), hex(Uint8Array.of(4999 & 0xff)));
});

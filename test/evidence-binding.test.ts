// The CONTRACT binding: reportData = SHA-512("sealed-inference attestation v1" || nonce[32] ||
// u16be(len(keyConfig)) || keyConfig || modelDigest[32]).
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { createHash } from 'node:crypto';
import { computeReportData } from '../enclave/binding.js';
import { AttestationError } from '../enclave/errors.js';

const nonce = Uint8Array.from({ length: 32 }, (_, i) => i);
const keyConfig = Uint8Array.from(Buffer.from('010020000102030405060708090a0b0c0d0e0f101112131415161718191a1b1c1d1e1f00080001000100010003', 'hex'));
const modelDigest = new Uint8Array(createHash('sha256').update('model manifest').digest());

test('known answer (computed independently with Python hashlib)', () => {
  assert.equal(
    Buffer.from(computeReportData(nonce, keyConfig, modelDigest)).toString('hex'),
    '4542a471001f282bcdc98c4e7e420d5ad5b15417b5e98ca6fb757e7c0c7535aca58c226e277218404a2dcc5526710051afff5f6f77978a089721ff8d76bd905f',
  );
});

test('matches node:crypto over the CONTRACT concatenation for many lengths', () => {
  for (const len of [1, 2, 41, 255, 256, 257, 1000, 65535]) {
    const kc = Uint8Array.from({ length: len }, (_, i) => (i * 31 + len) & 0xff);
    const want = createHash('sha512')
      .update('sealed-inference attestation v1')
      .update(nonce)
      .update(Uint8Array.of(len >> 8, len & 0xff))
      .update(kc)
      .update(modelDigest)
      .digest();
    assert.deepEqual(computeReportData(nonce, kc, modelDigest), new Uint8Array(want), `len ${len}`);
  }
});

test('every input is bound: changing any one changes the output', () => {
  const base = Buffer.from(computeReportData(nonce, keyConfig, modelDigest)).toString('hex');
  const n2 = nonce.slice(); n2[31] ^= 1;
  const k2 = keyConfig.slice(); k2[0] ^= 1;
  const m2 = modelDigest.slice(); m2[0] ^= 1;
  for (const [n, k, m] of [[n2, keyConfig, modelDigest], [nonce, k2, modelDigest], [nonce, keyConfig, m2], [nonce, keyConfig.subarray(1), modelDigest]]) {
    assert.notEqual(Buffer.from(computeReportData(n, k, m)).toString('hex'), base);
  }
});

test('wrong sizes are typed errors', () => {
  const c = (f: () => unknown) => {
    try { f(); } catch (e) { assert.ok(e instanceof AttestationError); return e.code; }
    return 'ok';
  };
  assert.equal(c(() => computeReportData(new Uint8Array(31), keyConfig, modelDigest)), 'bad_nonce');
  assert.equal(c(() => computeReportData(nonce, new Uint8Array(0), modelDigest)), 'bad_key_config');
  assert.equal(c(() => computeReportData(nonce, new Uint8Array(65536), modelDigest)), 'bad_key_config');
  assert.equal(c(() => computeReportData(nonce, keyConfig, new Uint8Array(48))), 'bad_model_digest');
});

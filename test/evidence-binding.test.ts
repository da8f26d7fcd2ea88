// The binding of contract version 2: reportData = SHA-512("sealed-inference attestation v2" ||
// nonce[32] || u8(len(session)) || session || u16(len(keyConfig)) || keyConfig || modelDigest[32]
// || u8(len(modelId)) || modelId || u64(expiresAt) || u8(simulated)), big-endian lengths.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { createHash } from 'node:crypto';
import { computeReportData, isSessionId, type BindingInput } from '../enclave/binding.js';
import { AttestationError } from '../enclave/errors.js';

const input: BindingInput = {
  nonce: Uint8Array.from({ length: 32 }, (_, i) => i),
  session: 'AAECAwQFBgcICQoLDA0ODw', // bytes 0..15
  keyConfig: Uint8Array.from(Buffer.from('010020000102030405060708090a0b0c0d0e0f101112131415161718191a1b1c1d1e1f00080001000100010003', 'hex')),
  modelDigest: new Uint8Array(createHash('sha256').update('model manifest').digest()),
  modelId: 'stories260K',
  expiresAt: 1_796_000_000,
  simulated: true,
};
const hex = (b: Uint8Array) => Buffer.from(b).toString('hex');

test('known answer (computed independently with Python hashlib and struct)', () => {
  assert.equal(
    hex(computeReportData(input)),
    'a7074a9b06cead91d2968a3d2ed0480b3019cdcbf2fd899e64edcdb11e65e0a3477956d1527b6a0e0bf56e5a735b61c7372fbd785af6b2aaba5892599ee2f35a',
  );
});

test('matches node:crypto over the contract concatenation for many lengths and values', () => {
  for (const [len, id, exp, sim] of [[1, 'm', 0, false], [41, 'Qwen2.5-0.5B-Instruct', 1, true], [256, 'é'.repeat(127), 2 ** 40, false], [65535, 'x'.repeat(255), Number.MAX_SAFE_INTEGER, true]] as const) {
    const kc = Uint8Array.from({ length: len }, (_, i) => (i * 31 + len) & 0xff);
    const idBytes = Buffer.from(id, 'utf8');
    const expiry = Buffer.alloc(8);
    expiry.writeBigUInt64BE(BigInt(exp));
    const want = createHash('sha512')
      .update('sealed-inference attestation v2')
      .update(input.nonce)
      .update(Uint8Array.of(22))
      .update(input.session, 'ascii')
      .update(Uint8Array.of(len >> 8, len & 0xff))
      .update(kc)
      .update(input.modelDigest)
      .update(Uint8Array.of(idBytes.length))
      .update(idBytes)
      .update(expiry)
      .update(Uint8Array.of(sim ? 1 : 0))
      .digest();
    assert.equal(hex(computeReportData({ ...input, keyConfig: kc, modelId: id, expiresAt: exp, simulated: sim })), want.toString('hex'), `len ${len}`);
  }
});

test('every field is bound: changing any one changes the output', () => {
  const base = hex(computeReportData(input));
  const flip = (b: Uint8Array, i = 0) => {
    const c = b.slice();
    c[i] ^= 1;
    return c;
  };
  const variants: Array<[string, Partial<BindingInput>]> = [
    ['nonce', { nonce: flip(input.nonce, 31) }],
    ['session', { session: 'AAECAwQFBgcICQoLDA0OEA' }],
    ['keyConfig', { keyConfig: flip(input.keyConfig) }],
    ['keyConfig length', { keyConfig: input.keyConfig.subarray(1) }],
    ['model digest', { modelDigest: flip(input.modelDigest) }],
    ['model id', { modelId: 'stories260k' }],
    ['expiry', { expiresAt: input.expiresAt + 1 }],
    ['simulated', { simulated: false }],
  ];
  const seen = new Set([base]);
  for (const [what, change] of variants) {
    const out = hex(computeReportData({ ...input, ...change }));
    assert.ok(!seen.has(out), `${what} is not bound`);
    seen.add(out);
  }
});

test('session ids: 22 base64url characters encoding exactly 16 bytes', () => {
  assert.ok(isSessionId(Buffer.from(crypto.getRandomValues(new Uint8Array(16))).toString('base64url')));
  for (const bad of ['', 'AAECAwQFBgcICQoLDA0OD', 'AAECAwQFBgcICQoLDA0ODwA', 'AAECAwQFBgcICQoLDA0OD+', 'AAECAwQFBgcICQoLDA0OD/', 'AAECAwQFBgcICQoLDA0ODx', 'AAECAwQFBgcICQoLDA0OD=', 7, null]) {
    assert.equal(isSessionId(bad), false, String(bad));
  }
});

test('bad inputs are typed errors', () => {
  const c = (change: Partial<BindingInput>) => {
    try {
      computeReportData({ ...input, ...change });
    } catch (e) {
      assert.ok(e instanceof AttestationError);
      return e.code;
    }
    return 'ok';
  };
  assert.equal(c({ nonce: new Uint8Array(31) }), 'bad_nonce');
  assert.equal(c({ session: 'short' }), 'bad_session');
  assert.equal(c({ keyConfig: new Uint8Array(0) }), 'bad_key_config');
  assert.equal(c({ keyConfig: new Uint8Array(65536) }), 'bad_key_config');
  assert.equal(c({ modelDigest: new Uint8Array(48) }), 'bad_model_digest');
  assert.equal(c({ modelId: '' }), 'bad_model');
  assert.equal(c({ modelId: 'x'.repeat(256) }), 'bad_model');
  assert.equal(c({ modelId: 'é'.repeat(128) }), 'bad_model', '256 bytes of UTF-8');
  assert.equal(c({ expiresAt: 1.5 }), 'bad_expiry');
  assert.equal(c({ expiresAt: -1 }), 'bad_expiry');
  assert.equal(c({ simulated: 1 as unknown as boolean }), 'bad_simulated');
});

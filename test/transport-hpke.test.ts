import { test } from 'node:test';
import assert from 'node:assert/strict';
import { readFileSync } from 'node:fs';
import {
  CipherSuite, deriveKeyPair, encap, decap, keySchedule, generateKeyPair, extract, expand, MODE_BASE, MODE_AUTH, MODE_PSK,
  AEAD_AES_128_GCM, AEAD_AES_256_GCM, AEAD_CHACHA20_POLY1305, type Mode,
} from '../transport/hpke.js';
import { hexToBytes as h, bytesToHex as hex, utf8 } from '../transport/bytes.js';
import { TransportError } from '../transport/errors.js';

const VECTORS = new URL('./fixtures/vectors/', import.meta.url);
interface Vec {
  mode: Mode; kem_id: number; kdf_id: number; aead_id: number; info: string;
  ikmE: string; pkEm: string; skEm: string; ikmR: string; pkRm: string; skRm: string;
  ikmS?: string; pkSm?: string; skSm?: string; psk?: string; psk_id?: string;
  enc: string; shared_secret: string; key_schedule_context: string; secret: string; key: string;
  base_nonce: string; exporter_secret: string;
  encryptions: { sequence_number: number; pt: string; aad: string; nonce: string; ct: string }[];
  exports: { exporter_context: string; L: number; exported_value: string }[];
}
const vectors: Vec[] = JSON.parse(readFileSync(new URL('rfc9180-hpke-x25519.json', VECTORS), 'utf8'));

function isCode(code: string) {
  return (e: unknown) => e instanceof TransportError && e.code === code;
}

test('RFC 5869 HKDF-SHA256 vectors: extract, and expand over two blocks cut to 42 bytes', () => {
  const cases = JSON.parse(readFileSync(new URL('rfc5869-hkdf-sha256.json', VECTORS), 'utf8')) as { case: string; ikm: string; salt: string; info: string; length: number; prk: string; okm: string }[];
  assert.deepEqual(cases.map((c) => c.case), ['A.1', 'A.3']);
  for (const c of cases) {
    const prk = extract(h(c.salt), h(c.ikm));
    assert.equal(hex(prk), c.prk, c.case);
    assert.equal(hex(expand(prk, h(c.info), c.length)), c.okm, c.case);
    // A shorter output is a prefix of the longer one; zero bytes is allowed.
    assert.equal(hex(expand(prk, h(c.info), 7)), c.okm.slice(0, 14));
    assert.equal(expand(prk, h(c.info), 0).length, 0);
  }
  for (const bad of [-1, 1.5, 255 * 32 + 1]) {
    assert.throws(() => expand(new Uint8Array(32), new Uint8Array(0), bad), isCode('invalid_argument'), String(bad));
  }
});

test('RFC 9180 vectors: 8 entries, both AEADs, all four modes', () => {
  assert.equal(vectors.length, 8);
  const seen = new Set(vectors.map((v) => `${v.aead_id}/${v.mode}`));
  for (const a of [1, 3]) for (const m of [0, 1, 2, 3]) assert.ok(seen.has(`${a}/${m}`), `${a}/${m}`);
});

for (const v of vectors) {
  test(`RFC 9180 aead ${v.aead_id} mode ${v.mode}: keys, key schedule, every encryption, every export`, () => {
    const suite = new CipherSuite({ kemId: v.kem_id, kdfId: v.kdf_id, aeadId: v.aead_id });
    const eph = deriveKeyPair(h(v.ikmE));
    assert.equal(hex(eph.privateKey), v.skEm);
    assert.equal(hex(eph.publicKey), v.pkEm);
    const r = deriveKeyPair(h(v.ikmR));
    assert.equal(hex(r.privateKey), v.skRm);
    assert.equal(hex(r.publicKey), v.pkRm);
    const s = v.ikmS ? deriveKeyPair(h(v.ikmS)) : undefined;
    if (s) {
      assert.equal(hex(s.privateKey), v.skSm);
      assert.equal(hex(s.publicKey), v.pkSm);
    }
    const psk = v.psk ? h(v.psk) : undefined;
    const pskId = v.psk_id ? h(v.psk_id) : undefined;

    // KEM both ways.
    const e = encap(r.publicKey, s?.privateKey, eph);
    assert.equal(hex(e.enc), v.enc);
    assert.equal(hex(e.sharedSecret), v.shared_secret);
    assert.equal(hex(decap(h(v.enc), r.privateKey, s?.publicKey)), v.shared_secret);

    // Every key schedule intermediate.
    const ks = keySchedule(v.aead_id, v.mode, h(v.shared_secret), h(v.info), psk, pskId);
    assert.equal(hex(ks.keyScheduleContext), v.key_schedule_context);
    assert.equal(hex(ks.secret), v.secret);
    assert.equal(hex(ks.key), v.key);
    assert.equal(hex(ks.baseNonce), v.base_nonce);
    assert.equal(hex(ks.exporterSecret), v.exporter_secret);

    const sender = suite.setupSender(r.publicKey, { mode: v.mode, info: h(v.info), psk, pskId, senderPrivateKey: s?.privateKey, ephemeral: eph });
    assert.equal(hex(sender.enc), v.enc);
    const recipient = suite.setupRecipient(h(v.enc), r.privateKey, { mode: v.mode, info: h(v.info), psk, pskId, senderPublicKey: s?.publicKey });

    // Encryptions are listed at sequence numbers 0,1,2,4,255,256: advance both contexts with
    // throw-away messages to reach each one, so the nonce really comes from the counter.
    for (const enc of v.encryptions) {
      while (sender.context.seq < enc.sequence_number) {
        const filler = sender.context.seal(new Uint8Array(0), new Uint8Array(0));
        recipient.open(new Uint8Array(0), filler);
      }
      assert.equal(hex(sender.context.nonceFor(enc.sequence_number)), enc.nonce);
      const ct = sender.context.seal(h(enc.aad), h(enc.pt));
      assert.equal(hex(ct), enc.ct, `ct at seq ${enc.sequence_number}`);
      assert.equal(recipient.seq, enc.sequence_number);
      assert.equal(hex(recipient.open(h(enc.aad), h(enc.ct))), enc.pt);
    }
    for (const x of v.exports) {
      assert.equal(hex(sender.context.export(h(x.exporter_context), x.L)), x.exported_value);
      assert.equal(hex(recipient.export(h(x.exporter_context), x.L)), x.exported_value);
    }
  });
}

test('a failed open does not advance the sequence number', () => {
  const suite = new CipherSuite({ aeadId: AEAD_AES_128_GCM });
  const r = generateKeyPair();
  const { enc, context } = suite.setupBaseS(r.publicKey, utf8('info'));
  const ct = context.seal(utf8('aad'), utf8('hello'));
  const rc = suite.setupBaseR(enc, r.privateKey, utf8('info'));
  const bad = ct.slice();
  bad[0] ^= 1;
  assert.throws(() => rc.open(utf8('aad'), bad), isCode('decrypt_failed'));
  assert.throws(() => rc.open(utf8('AAD'), ct), isCode('decrypt_failed'));
  assert.throws(() => rc.open(utf8('aad'), ct.subarray(0, 15)), isCode('decrypt_failed'));
  assert.equal(rc.seq, 0);
  assert.deepEqual(rc.open(utf8('aad'), ct), utf8('hello'));
  assert.equal(rc.seq, 1);
  // Replaying the same ciphertext at the next sequence number fails.
  assert.throws(() => rc.open(utf8('aad'), ct), isCode('decrypt_failed'));
});

test('AES-256-GCM round trip, wrong info and wrong key fail', () => {
  const suite = new CipherSuite({ aeadId: AEAD_AES_256_GCM });
  assert.equal(suite.Nk, 32);
  const r = generateKeyPair();
  const { enc, ct } = suite.sealBase(r.publicKey, utf8('i'), utf8('a'), utf8('payload'));
  assert.deepEqual(suite.openBase(enc, r.privateKey, utf8('i'), utf8('a'), ct), utf8('payload'));
  assert.throws(() => suite.openBase(enc, r.privateKey, utf8('j'), utf8('a'), ct), isCode('decrypt_failed'));
  assert.throws(() => suite.openBase(enc, generateKeyPair().privateKey, utf8('i'), utf8('a'), ct), isCode('decrypt_failed'));
});

test('argument and state checks are typed errors', () => {
  assert.throws(() => new CipherSuite({ aeadId: 0x0004 }), isCode('unsupported_suite'));
  assert.throws(() => new CipherSuite({ kemId: 0x0010, aeadId: 1 }), isCode('unsupported_suite'));
  assert.throws(() => new CipherSuite({ kdfId: 0x0002, aeadId: 1 }), isCode('unsupported_suite'));
  const suite = new CipherSuite({ aeadId: AEAD_CHACHA20_POLY1305 });
  const r = generateKeyPair();
  assert.throws(() => suite.setupBaseS(r.publicKey.subarray(1), utf8('')), isCode('invalid_key'));
  // The all-zero u-coordinate is a low-order point: rejected, never a zero shared secret.
  assert.throws(() => suite.setupBaseS(new Uint8Array(32), utf8('')), isCode('invalid_key'));
  assert.throws(() => suite.setupBaseR(new Uint8Array(32), r.privateKey, utf8('')), isCode('invalid_key'));
  assert.throws(() => suite.setupSender(r.publicKey, { mode: MODE_PSK }), isCode('invalid_argument'));
  assert.throws(() => suite.setupSender(r.publicKey, { mode: MODE_BASE, psk: new Uint8Array(32), pskId: utf8('x') }), isCode('invalid_argument'));
  assert.throws(() => suite.setupSender(r.publicKey, { mode: MODE_PSK, psk: new Uint8Array(16), pskId: utf8('x') }), isCode('invalid_argument'));
  assert.throws(() => suite.setupSender(r.publicKey, { mode: MODE_AUTH }), isCode('invalid_argument'));
  const { enc, context } = suite.setupBaseS(r.publicKey, utf8(''));
  assert.throws(() => context.open(utf8(''), new Uint8Array(32)), isCode('state'));
  const rc = suite.setupBaseR(enc, r.privateKey, utf8(''));
  assert.throws(() => rc.seal(utf8(''), utf8('')), isCode('state'));
  assert.throws(() => rc.export(utf8(''), 255 * 32 + 1), isCode('invalid_argument'));
  context.destroy();
  assert.throws(() => context.seal(utf8(''), utf8('')), isCode('state'));
  assert.throws(() => context.export(utf8(''), 16), isCode('state'));
});

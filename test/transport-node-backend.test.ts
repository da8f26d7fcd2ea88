/**
 * The optional node:crypto backends must be byte-identical to @noble: every RFC 9180 key pair, KEM
 * result and encryption, the RFC 9458 exchange and the chunked example run through them; random
 * messages and DH results agree across implementations; both reject low-order points and tampering.
 */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { readFileSync } from 'node:fs';
import * as nodeCrypto from 'node:crypto';
import { createNodeAeadBackend, createNodeHmacBackend, createNodeX25519Backend, useNodeCrypto } from '../transport/node-backend.js';
import {
  setAeadBackend, aeadBackendName, setX25519Backend, x25519BackendName, setHmacBackend, hmacBackendName, extract, expand, deriveKeyPair, encap, decap, generateKeyPair, publicKeyFromPrivate, CipherSuite, aeadSeal, aeadOpen, keySchedule, Context, AEAD_AES_128_GCM, AEAD_AES_256_GCM, AEAD_CHACHA20_POLY1305, type AeadId,
} from '../transport/hpke.js';
import { decodeKeyConfig, encapsulateRequest } from '../transport/ohttp.js';
import { encapsulateChunkedRequest } from '../transport/chunked-ohttp.js';
import { hexToBytes as h, bytesToHex as hex, randomBytes, utf8 } from '../transport/bytes.js';
import { TransportError } from '../transport/errors.js';

const VECTORS = new URL('./fixtures/vectors/', import.meta.url);
const read = (f: string) => JSON.parse(readFileSync(new URL(f, VECTORS), 'utf8'));
const node = createNodeAeadBackend(nodeCrypto);

/** Runs `f` with `backend` installed by `install`, then puts the @noble default back. */
function using<B, T>(install: (b: B | undefined) => void, backend: B, f: () => T): T {
  install(backend);
  try {
    return f();
  } finally {
    install(undefined);
  }
}

const withNode = <T>(f: () => T): T => using(setAeadBackend, node, f);

test('backend switch is explicit and reversible', () => {
  assert.equal(aeadBackendName(), 'noble');
  withNode(() => assert.equal(aeadBackendName(), 'node:crypto'));
  assert.equal(aeadBackendName(), 'noble');
  assert.throws(() => createNodeAeadBackend({} as never), (e: unknown) => e instanceof TransportError && e.code === 'invalid_argument');
});

test('node:crypto backend reproduces every RFC 9180 encryption', () => {
  withNode(() => {
    for (const v of read('rfc9180-hpke-x25519.json')) {
      const ks = keySchedule(v.aead_id, v.mode, h(v.shared_secret), h(v.info), v.psk ? h(v.psk) : undefined, v.psk_id ? h(v.psk_id) : undefined);
      const sender = new Context('sender', v.aead_id, { ...ks });
      const recipient = new Context('recipient', v.aead_id, keySchedule(v.aead_id, v.mode, h(v.shared_secret), h(v.info), v.psk ? h(v.psk) : undefined, v.psk_id ? h(v.psk_id) : undefined));
      for (const e of v.encryptions) {
        while (sender.seq < e.sequence_number) recipient.open(new Uint8Array(0), sender.seal(new Uint8Array(0), new Uint8Array(0)));
        assert.equal(hex(sender.seal(h(e.aad), h(e.pt))), e.ct);
        assert.equal(hex(recipient.open(h(e.aad), h(e.ct))), e.pt);
      }
    }
  });
});

test('node:crypto backend opens the RFC 9458 response and the chunked example response', () => {
  withNode(() => {
    const oh = read('rfc9458-ohttp-example.json');
    const c = encapsulateRequest(decodeKeyConfig(h(oh.key_config)), h(oh.request_bhttp), { kdfId: 1, aeadId: 1 },
      { ephemeral: { privateKey: h(oh.client_ephemeral_secret_key), publicKey: h(oh.client_ephemeral_public_key) } });
    assert.equal(hex(c.bytes), oh.encapsulated_request);
    assert.equal(hex(c.openResponse(h(oh.encapsulated_response))), oh.response_bhttp);
    const ch = read('chunked-ohttp-example.json');
    const cc = encapsulateChunkedRequest(decodeKeyConfig(h(ch.key_config)), { kdfId: 1, aeadId: 1 },
      { ephemeral: { privateKey: h(ch.client_ephemeral_secret_key), publicKey: h(ch.client_ephemeral_public_key) } });
    assert.equal(hex(cc.header) + hex(cc.sealChunk(h(ch.request_bhttp).subarray(0, 12))) + hex(cc.sealChunk(h(ch.request_bhttp).subarray(12))) + hex(cc.sealFinal()),
      ch.encapsulated_request);
    const r = cc.responseReader();
    const out = r.push(h(ch.encapsulated_response));
    assert.equal(r.end().length, 0);
    assert.equal(out.map(hex).join(''), ch.response_bhttp);
  });
});

test('noble and node:crypto agree both ways for every AEAD, and both reject tampering', () => {
  for (const id of [AEAD_AES_128_GCM, AEAD_AES_256_GCM, AEAD_CHACHA20_POLY1305] as AeadId[]) {
    const key = randomBytes(id === AEAD_AES_128_GCM ? 16 : 32);
    for (const len of [0, 1, 15, 16, 17, 100, 1000]) {
      const nonce = randomBytes(12);
      const aad = randomBytes(len % 7);
      const pt = randomBytes(len);
      const byNoble = aeadSeal(id, key, nonce, aad, pt);
      const byNode = withNode(() => aeadSeal(id, key, nonce, aad, pt));
      assert.equal(hex(byNode), hex(byNoble));
      assert.ok(!(byNode instanceof Buffer));
      assert.deepEqual(withNode(() => aeadOpen(id, key, nonce, aad, byNoble)), pt);
      assert.deepEqual(aeadOpen(id, key, nonce, aad, byNode), pt);
      const bad = byNode.slice();
      bad[(len * 7) % bad.length] ^= 0x10;
      const rejects = (e: unknown) => e instanceof TransportError && e.code === 'decrypt_failed';
      assert.throws(() => withNode(() => aeadOpen(id, key, nonce, aad, bad)), rejects);
      assert.throws(() => aeadOpen(id, key, nonce, aad, bad), rejects);
      assert.throws(() => withNode(() => aeadOpen(id, key, nonce, utf8('other'), byNode)), rejects);
    }
  }
});

const x = createNodeX25519Backend(nodeCrypto);
const withNodeX = <T>(f: () => T): T => using(setX25519Backend, x, f);

test('node:crypto X25519 reproduces every RFC 9180 key pair and shared secret', () => {
  assert.equal(x25519BackendName(), 'noble');
  withNodeX(() => {
    assert.equal(x25519BackendName(), 'node:crypto');
    for (const v of read('rfc9180-hpke-x25519.json')) {
      const eph = deriveKeyPair(h(v.ikmE));
      const r = deriveKeyPair(h(v.ikmR));
      const s = v.ikmS ? deriveKeyPair(h(v.ikmS)) : undefined;
      assert.equal(hex(eph.publicKey), v.pkEm);
      assert.equal(hex(r.publicKey), v.pkRm);
      if (s) assert.equal(hex(s.publicKey), v.pkSm);
      const e = encap(r.publicKey, s?.privateKey, eph);
      assert.equal(hex(e.sharedSecret), v.shared_secret);
      assert.equal(hex(decap(h(v.enc), r.privateKey, s?.publicKey)), v.shared_secret);
    }
  });
  assert.equal(x25519BackendName(), 'noble');
});

test('node:crypto and noble X25519 agree on random keys, both ways through HPKE', () => {
  for (let i = 0; i < 20; i++) {
    const a = generateKeyPair();
    const b = withNodeX(() => generateKeyPair());
    assert.equal(hex(withNodeX(() => encap(a.publicKey, undefined, b).sharedSecret)), hex(encap(a.publicKey, undefined, b).sharedSecret));
  }
  const suite = new CipherSuite({ aeadId: AEAD_CHACHA20_POLY1305 });
  const r = generateKeyPair();
  const { enc, ct } = withNodeX(() => suite.sealBase(r.publicKey, utf8('i'), utf8('a'), utf8('both ways')));
  assert.deepEqual(suite.openBase(enc, r.privateKey, utf8('i'), utf8('a'), ct), utf8('both ways'));
  const back = suite.sealBase(r.publicKey, utf8('i'), utf8('a'), utf8('and back'));
  assert.deepEqual(withNodeX(() => suite.openBase(back.enc, r.privateKey, utf8('i'), utf8('a'), back.ct)), utf8('and back'));
});

test('both X25519 implementations reject low-order public keys as invalid_key', () => {
  // RFC 7748 small-order u-coordinates (0, 1, and points of order 8) in little-endian.
  const lowOrder = [
    '0000000000000000000000000000000000000000000000000000000000000000',
    '0100000000000000000000000000000000000000000000000000000000000000',
    'e0eb7a7c3b41b8ae1656e3faf19fc46ada098deb9c32b1fd866205165f49b800',
    '5f9c95bca3508c24b1d0b1559c83ef5b04445cc4581c8e86d8224eddd09f1157',
    'ecffffffffffffffffffffffffffffffffffffffffffffffffffffffffffff7f',
  ];
  const r = generateKeyPair();
  const isInvalid = (e: unknown) => e instanceof TransportError && e.code === 'invalid_key';
  for (const p of lowOrder) {
    assert.throws(() => decap(h(p), r.privateKey), isInvalid, `noble ${p}`);
    assert.throws(() => withNodeX(() => decap(h(p), r.privateKey)), isInvalid, `node ${p}`);
  }
});

test('useNodeCrypto installs all three backends; the RFC 9458 exchange is unchanged under them', () => {
  useNodeCrypto(nodeCrypto);
  try {
    assert.equal(aeadBackendName(), 'node:crypto');
    assert.equal(x25519BackendName(), 'node:crypto');
    assert.equal(hmacBackendName(), 'node:crypto');
    const oh = read('rfc9458-ohttp-example.json');
    const c = encapsulateRequest(decodeKeyConfig(h(oh.key_config)), h(oh.request_bhttp), { kdfId: 1, aeadId: 1 },
      { ephemeral: { privateKey: h(oh.client_ephemeral_secret_key), publicKey: h(oh.client_ephemeral_public_key) } });
    assert.equal(hex(c.bytes), oh.encapsulated_request);
    assert.equal(hex(c.openResponse(h(oh.encapsulated_response))), oh.response_bhttp);
  } finally {
    setAeadBackend(undefined);
    setX25519Backend(undefined);
    setHmacBackend(undefined);
  }
});

test('the X25519 backend refuses to start when the key import does not derive the RFC 7748 public key', () => {
  // A node:crypto whose private-key import ignored "d" (e.g. honoured the placeholder "x") would
  // derive the wrong public key: the self-test must catch that before any real key is used.
  const wrong = {
    createPrivateKey: () => ({}),
    createPublicKey: () => ({ export: () => new Uint8Array(12 + 32) }),
    diffieHellman: () => new Uint8Array(32),
  };
  assert.throws(() => createNodeX25519Backend(wrong as never), (e: unknown) => e instanceof TransportError && e.code === 'invalid_argument');
  // The real module passes it.
  assert.equal(createNodeX25519Backend(nodeCrypto).name, 'node:crypto');
});

test('node:crypto key generation: fresh pairs whose public key is the private key\'s, distinct every time, and usable by noble', () => {
  const x = createNodeX25519Backend(nodeCrypto);
  assert.equal(typeof x.generateKeyPair, 'function');
  const seen = new Set<string>();
  for (let i = 0; i < 50; i++) {
    const kp = withNodeX(() => generateKeyPair());
    assert.equal(kp.privateKey.length, 32);
    assert.equal(kp.publicKey.length, 32);
    // noble derives the same public key from the private key the backend returned.
    assert.equal(hex(deriveAndCheck(kp.privateKey)), hex(kp.publicKey));
    seen.add(hex(kp.privateKey));
    // And a noble sender reaches a node-made recipient.
    const sender = encap(kp.publicKey);
    assert.equal(hex(withNodeX(() => decap(sender.enc, kp.privateKey))), hex(sender.sharedSecret));
  }
  assert.equal(seen.size, 50, 'no private key repeats');
});

test('node:crypto key generation refuses a JWK it cannot read exactly (wrong length, non-canonical last character, bad alphabet)', () => {
  const good = nodeCrypto.generateKeyPairSync('x25519').privateKey.export({ format: 'jwk' }) as { d: string; x: string };
  const lastBitsSet = good.d.slice(0, 42) + 'B'; // 43 characters carry 258 bits: the last 2 must be zero
  for (const d of [good.d.slice(1), good.d + 'A', lastBitsSet, good.d.slice(0, 42) + '=', good.d.slice(0, 42) + '+']) {
    const fake = {
      ...nodeCrypto,
      createPrivateKey: nodeCrypto.createPrivateKey,
      createPublicKey: nodeCrypto.createPublicKey,
      diffieHellman: nodeCrypto.diffieHellman,
      generateKeyPairSync: () => ({ privateKey: { export: () => ({ d, x: good.x }) } }),
    };
    const x = createNodeX25519Backend(fake as never);
    assert.throws(() => x.generateKeyPair!(), (e: unknown) => e instanceof TransportError && e.code === 'invalid_key', d);
  }
});

function deriveAndCheck(sk: Uint8Array): Uint8Array {
  // noble's own derivation (no backend installed here).
  return publicKeyFromPrivate(sk);
}

const withNodeHmac = <T>(f: () => T): T => using(setHmacBackend, createNodeHmacBackend(nodeCrypto), f);

test('node:crypto HMAC reproduces RFC 5869 and every RFC 9180 key schedule and export', () => {
  assert.equal(hmacBackendName(), 'noble');
  assert.throws(() => createNodeHmacBackend({} as never), (e: unknown) => e instanceof TransportError && e.code === 'invalid_argument');
  withNodeHmac(() => {
    assert.equal(hmacBackendName(), 'node:crypto');
    for (const v of read('rfc5869-hkdf-sha256.json')) {
      const prk = extract(h(v.salt), h(v.ikm));
      assert.equal(hex(prk), v.prk, v.case);
      assert.equal(hex(expand(prk, h(v.info), v.length)), v.okm, v.case);
    }
    for (const v of read('rfc9180-hpke-x25519.json')) {
      assert.equal(hex(deriveKeyPair(h(v.ikmR)).privateKey), v.skRm);
      const ks = keySchedule(v.aead_id, v.mode, h(v.shared_secret), h(v.info), v.psk ? h(v.psk) : undefined, v.psk_id ? h(v.psk_id) : undefined);
      assert.equal(hex(ks.secret), v.secret);
      assert.equal(hex(ks.key), v.key);
      assert.equal(hex(ks.baseNonce), v.base_nonce);
      assert.equal(hex(ks.exporterSecret), v.exporter_secret);
      const ctx = new Context('recipient', v.aead_id, ks);
      for (const x of v.exports) assert.equal(hex(ctx.export(h(x.exporter_context), x.L)), x.exported_value);
    }
  });
  assert.equal(hmacBackendName(), 'noble');
});

test('noble and node:crypto HKDF agree on every output length up to four blocks, and on empty and long inputs', () => {
  for (let length = 0; length <= 4 * 32; length++) {
    const salt = randomBytes(length % 3 === 0 ? 0 : 1 + (length % 70));
    const ikm = randomBytes(length % 65);
    const info = randomBytes(length % 40);
    const byNoble = expand(extract(salt, ikm), info, length);
    const byNode = withNodeHmac(() => expand(extract(salt, ikm), info, length));
    assert.equal(byNoble.length, length);
    assert.equal(hex(byNode), hex(byNoble), `length ${length}`);
  }
  assert.throws(() => withNodeHmac(() => expand(randomBytes(32), EMPTY_INFO, 255 * 32 + 1)), (e: unknown) => e instanceof TransportError && e.code === 'invalid_argument');
});
const EMPTY_INFO = new Uint8Array(0);

test('an X25519 private key is imported once while its bytes stay the same, and afresh when they change in place', () => {
  let imports = 0;
  const counting = {
    ...nodeCrypto,
    createPrivateKey: ((input: Parameters<typeof nodeCrypto.createPrivateKey>[0]) => {
      imports++;
      return nodeCrypto.createPrivateKey(input);
    }) as typeof nodeCrypto.createPrivateKey,
  };
  setX25519Backend(createNodeX25519Backend(counting));
  try {
    const peer = deriveKeyPair(randomBytes(32));
    // Encap's key pair as bytes alone (its public half only names it in the KEM context).
    const mine = { privateKey: randomBytes(32), publicKey: randomBytes(32) };
    imports = 0;
    const first = encap(peer.publicKey, undefined, mine);
    const again = encap(peer.publicKey, undefined, mine);
    assert.equal(hex(again.sharedSecret), hex(first.sharedSecret));
    assert.equal(imports, 1, 'the second use reuses the key object');

    // The same array, other bytes: the kept key object must not be used for them.
    const otherBytes = randomBytes(32);
    mine.privateKey.set(otherBytes);
    const changed = encap(peer.publicKey, undefined, mine);
    assert.equal(imports, 2);
    setX25519Backend(undefined);
    const expected = encap(peer.publicKey, undefined, { privateKey: otherBytes.slice(), publicKey: mine.publicKey });
    assert.equal(hex(changed.sharedSecret), hex(expected.sharedSecret), 'computed with the new bytes');
    setX25519Backend(createNodeX25519Backend(counting));

    // A fresh pair from the backend is used for its Encap without any import.
    const before = imports;
    const kp = generateKeyPair();
    const sent = encap(peer.publicKey, undefined, kp);
    assert.equal(imports, before, 'no import for a generated pair');
    setX25519Backend(undefined);
    assert.equal(hex(decap(sent.enc, peer.privateKey)), hex(sent.sharedSecret));
  } finally {
    setX25519Backend(undefined);
  }
});

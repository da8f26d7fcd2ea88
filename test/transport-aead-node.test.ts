/**
 * The optional node:crypto AEAD backend must be byte-identical to @noble/ciphers: every RFC 9180
 * encryption, the RFC 9458 response and the chunked example run through it, and random messages sealed
 * by one backend open under the other.
 */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { readFileSync } from 'node:fs';
import * as nodeCrypto from 'node:crypto';
import { createNodeAeadBackend } from '../transport/aead-node.js';
import {
  setAeadBackend, aeadBackendName, aeadSeal, aeadOpen, keySchedule, Context, AEAD_AES_128_GCM, AEAD_AES_256_GCM, AEAD_CHACHA20_POLY1305, type AeadId,
} from '../transport/hpke.js';
import { decodeKeyConfig, encapsulateRequest } from '../transport/ohttp.js';
import { encapsulateChunkedRequest } from '../transport/chunked-ohttp.js';
import { hexToBytes as h, bytesToHex as hex, randomBytes, utf8 } from '../transport/bytes.js';
import { TransportError } from '../transport/errors.js';

const VECTORS = new URL('../../shared/vectors/', import.meta.url);
const read = (f: string) => JSON.parse(readFileSync(new URL(f, VECTORS), 'utf8'));
const node = createNodeAeadBackend(nodeCrypto);

function withNode<T>(f: () => T): T {
  setAeadBackend(node);
  try {
    return f();
  } finally {
    setAeadBackend(undefined);
  }
}

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

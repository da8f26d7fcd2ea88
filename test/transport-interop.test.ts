/**
 * Interoperability with an independent HPKE implementation (@hpke/core, @hpke/chacha20poly1305, on
 * WebCrypto): it seals and we open, we seal and it opens, for every AEAD, in base mode and auth+psk mode,
 * with exports compared; and an OHTTP request built entirely with @hpke is decapsulated by our gateway.
 */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { CipherSuite as HpkeSuite, DhkemX25519HkdfSha256, HkdfSha256, Aes128Gcm, Aes256Gcm } from '@hpke/core';
import { Chacha20Poly1305 } from '@hpke/chacha20poly1305';
import {
  CipherSuite, generateKeyPair, MODE_BASE, MODE_AUTH_PSK, AEAD_AES_128_GCM, AEAD_AES_256_GCM, AEAD_CHACHA20_POLY1305, type Mode,
} from '../transport/hpke.js';
import { generateKeyConfig, keyLookup, requestHeader, requestInfo, decapsulateRequest } from '../transport/ohttp.js';
import { encodeRequest, decodeRequest } from '../transport/bhttp.js';
import { utf8, concat, bytesToHex as hex } from '../transport/bytes.js';

const AEADS = [
  { id: AEAD_AES_128_GCM, make: () => new Aes128Gcm() },
  { id: AEAD_AES_256_GCM, make: () => new Aes256Gcm() },
  { id: AEAD_CHACHA20_POLY1305, make: () => new Chacha20Poly1305() },
];
const u8 = (b: ArrayBuffer) => new Uint8Array(b);
const MESSAGES = [utf8(''), utf8('hello'), new Uint8Array(1000).map((_, i) => i * 7)];
const PSK = { key: new Uint8Array(32).fill(0x42), id: utf8('psk id') };

function theirSuite(aead: (typeof AEADS)[number]) {
  return new HpkeSuite({ kem: new DhkemX25519HkdfSha256(), kdf: new HkdfSha256(), aead: aead.make() });
}

for (const aead of AEADS) {
  for (const mode of [MODE_BASE, MODE_AUTH_PSK] as Mode[]) {
    const auth = mode === MODE_AUTH_PSK;

    test(`@hpke/core seals, we open: aead ${aead.id}, mode ${mode}`, async () => {
      const theirs = theirSuite(aead);
      const recipient = generateKeyPair();
      const sender = generateKeyPair();
      const info = utf8('interop info');
      const ctx = await theirs.createSenderContext({
        recipientPublicKey: await theirs.kem.deserializePublicKey(recipient.publicKey),
        info,
        ...(auth ? { psk: PSK, senderKey: await theirs.kem.deserializePrivateKey(sender.privateKey) } : {}),
      });
      const ours = new CipherSuite({ aeadId: aead.id }).setupRecipient(u8(ctx.enc), recipient.privateKey, {
        mode, info, ...(auth ? { psk: PSK.key, pskId: PSK.id, senderPublicKey: sender.publicKey } : {}),
      });
      for (const [i, m] of MESSAGES.entries()) {
        const aad = utf8(`aad ${i}`);
        const ct = u8(await ctx.seal(m, aad));
        assert.deepEqual(ours.open(aad, ct), m);
      }
      assert.equal(hex(ours.export(utf8('ctx'), 48)), hex(u8(await ctx.export(utf8('ctx'), 48))));
    });

    test(`we seal, @hpke/core opens: aead ${aead.id}, mode ${mode}`, async () => {
      const theirs = theirSuite(aead);
      const recipient = await theirs.kem.generateKeyPair();
      const sender = generateKeyPair();
      const pkR = u8(await theirs.kem.serializePublicKey(recipient.publicKey));
      const info = utf8('interop info 2');
      const { enc, context } = new CipherSuite({ aeadId: aead.id }).setupSender(pkR, {
        mode, info, ...(auth ? { psk: PSK.key, pskId: PSK.id, senderPrivateKey: sender.privateKey } : {}),
      });
      const ctx = await theirs.createRecipientContext({
        recipientKey: recipient, enc, info,
        ...(auth ? { psk: PSK, senderPublicKey: await theirs.kem.deserializePublicKey(sender.publicKey) } : {}),
      });
      for (const [i, m] of MESSAGES.entries()) {
        const aad = utf8(`aad ${i}`);
        assert.deepEqual(u8(await ctx.open(context.seal(aad, m), aad)), m);
      }
      assert.equal(hex(context.export(utf8(''), 32)), hex(u8(await ctx.export(utf8(''), 32))));
      // A tampered ciphertext is rejected by them too.
      const bad = context.seal(utf8('x'), utf8('y'));
      bad[bad.length - 1] ^= 1;
      await assert.rejects(ctx.open(bad, utf8('x')));
    });
  }

  test(`an OHTTP request encapsulated with @hpke/core is decapsulated by our gateway: aead ${aead.id}`, async () => {
    const theirs = theirSuite(aead);
    const key = generateKeyConfig(42);
    const hdr = requestHeader(42, { kdfId: 1, aeadId: aead.id });
    const ctx = await theirs.createSenderContext({
      recipientPublicKey: await theirs.kem.deserializePublicKey(key.config.publicKey),
      info: requestInfo('message/bhttp request', hdr),
    });
    const request = encodeRequest({ method: 'GET', path: '/v1/models', authority: 'sealed.example' });
    const wire = concat(hdr, u8(ctx.enc), u8(await ctx.seal(request, new Uint8Array(0))));
    const got = decapsulateRequest(keyLookup([key]), wire);
    assert.deepEqual(got.request, request);
    assert.equal(decodeRequest(got.request).path, '/v1/models');
    // Both sides derive the same response secret from the exporter.
    assert.equal(hex(got.context.export(utf8('message/bhttp response'), 32)), hex(u8(await ctx.export(utf8('message/bhttp response'), 32))));
  });
}

import { test } from 'node:test';
import assert from 'node:assert/strict';
import { readFileSync } from 'node:fs';
import {
  decodeKeyConfig, encodeKeyConfig, decodeKeyConfigList, encodeKeyConfigList, generateKeyConfig, keyLookup, selectKeyConfig,
  selectSuite, encapsulateRequest, decapsulateRequest, encapsulateResponse, deriveResponseKeys, requestInfo, requestHeader,
  type KeyConfig,
} from '../transport/ohttp.js';
import { encapsulateChunkedRequest } from '../transport/chunked-ohttp.js';
import { publicKeyFromPrivate, AEAD_AES_128_GCM, AEAD_AES_256_GCM, AEAD_CHACHA20_POLY1305 } from '../transport/hpke.js';
import { hexToBytes as h, bytesToHex as hex, utf8, concat } from '../transport/bytes.js';
import { decodeRequest, decodeResponse, encodeRequest, encodeResponse } from '../transport/bhttp.js';
import { TransportError } from '../transport/errors.js';

const VECTORS = new URL('./fixtures/vectors/', import.meta.url);
const v = JSON.parse(readFileSync(new URL('rfc9458-ohttp-example.json', VECTORS), 'utf8'));
const isCode = (code: string) => (e: unknown) => e instanceof TransportError && e.code === code;

test('RFC 9458 Appendix A: key configuration encodes and decodes exactly', () => {
  const config = decodeKeyConfig(h(v.key_config));
  assert.equal(config.keyId, 1);
  assert.equal(config.kemId, 0x0020);
  assert.equal(hex(config.publicKey), hex(publicKeyFromPrivate(h(v.server_secret_key))));
  assert.deepEqual(config.suites, [{ kdfId: 1, aeadId: 1 }, { kdfId: 1, aeadId: 3 }]);
  assert.equal(hex(encodeKeyConfig(config)), v.key_config);
});

test('RFC 9458 Appendix A: request, info, response derivation and response, both sides, byte for byte', () => {
  const config = decodeKeyConfig(h(v.key_config));
  const header = requestHeader(1, { kdfId: 1, aeadId: 1 });
  assert.equal(hex(requestInfo('message/bhttp request', header)), v.hpke_info);
  const eph = { privateKey: h(v.client_ephemeral_secret_key), publicKey: h(v.client_ephemeral_public_key) };
  assert.equal(hex(publicKeyFromPrivate(eph.privateKey)), v.client_ephemeral_public_key);

  // Client: the same ephemeral key yields the exact Encapsulated Request.
  const client = encapsulateRequest(config, h(v.request_bhttp), { kdfId: 1, aeadId: AEAD_AES_128_GCM }, { ephemeral: eph });
  assert.equal(hex(client.bytes), v.encapsulated_request);

  // Server: decapsulates the published request.
  const lookup = keyLookup([{ config, privateKey: h(v.server_secret_key) }]);
  const server = decapsulateRequest(lookup, h(v.encapsulated_request));
  assert.equal(server.keyId, 1);
  assert.equal(hex(server.request), v.request_bhttp);
  assert.equal(hex(server.enc), v.client_ephemeral_public_key);
  const req = decodeRequest(server.request);
  assert.deepEqual([req.method, req.scheme, req.authority, req.path], ['GET', 'https', 'example.com', '/']);

  // Response derivation intermediates.
  assert.equal(hex(server.context.export(utf8('message/bhttp response'), 16)), v.response_exported_secret);
  const salt = h(v.response_salt);
  assert.equal(hex(salt.subarray(0, 32)), v.client_ephemeral_public_key);
  const responseNonce = salt.subarray(32);
  const keys = deriveResponseKeys(server.context, server.enc, responseNonce, 'message/bhttp response');
  assert.equal(hex(keys.key), v.response_aead_key);
  assert.equal(hex(keys.nonce), v.response_aead_nonce);
  assert.equal(hex(encapsulateResponse(server.context, server.enc, h(v.response_bhttp), responseNonce)), v.encapsulated_response);

  // Client opens the published response.
  const opened = client.openResponse(h(v.encapsulated_response));
  assert.equal(hex(opened), v.response_bhttp);
  assert.equal(decodeResponse(opened).status, 200);
});

test('round trip for every AEAD with a generated key configuration; fresh randomness each time', () => {
  for (const aeadId of [AEAD_AES_128_GCM, AEAD_AES_256_GCM, AEAD_CHACHA20_POLY1305]) {
    const key = generateKeyConfig(7);
    assert.deepEqual(decodeKeyConfig(key.encoded), key.config);
    const request = encodeRequest({ method: 'POST', path: '/v1/chat/completions', headers: [['content-type', 'application/json']], content: utf8('{"x":1}') });
    const c = encapsulateRequest(key.config, request, { kdfId: 1, aeadId });
    const c2 = encapsulateRequest(key.config, request, { kdfId: 1, aeadId });
    assert.notEqual(hex(c.bytes), hex(c2.bytes));
    assert.equal(c.bytes[0], 7);
    assert.deepEqual([...c.bytes.subarray(5, 7)], [0, aeadId]);
    const s = decapsulateRequest(keyLookup([key]), c.bytes);
    assert.deepEqual(s.suite, { kdfId: 1, aeadId });
    assert.deepEqual(s.request, request);
    const response = encodeResponse({ status: 200, content: utf8('{"ok":true}') });
    const sealed = s.sealResponse(response);
    assert.notEqual(hex(sealed), hex(s.sealResponse(response)));
    assert.deepEqual(c.openResponse(sealed), response);
    // A response for one request does not open for another.
    assert.throws(() => c2.openResponse(sealed), isCode('decrypt_failed'));
  }
});

test('gateway errors: unknown key id, unoffered suite, KEM mismatch, size limit, short input', () => {
  const key = generateKeyConfig(3, [{ kdfId: 1, aeadId: AEAD_AES_128_GCM }]);
  const lookup = keyLookup([key]);
  const c = encapsulateRequest(key.config, utf8('hi'));
  const other = c.bytes.slice();
  other[0] = 4;
  assert.throws(() => decapsulateRequest(lookup, other), isCode('unknown_key'));
  const suite = c.bytes.slice();
  suite[6] = 3; // ChaCha: supported but not offered by this key
  assert.throws(() => decapsulateRequest(lookup, suite), isCode('unsupported_suite'));
  const kem = c.bytes.slice();
  kem[2] = 0x21;
  assert.throws(() => decapsulateRequest(lookup, kem), isCode('unsupported_suite'));
  assert.throws(() => decapsulateRequest(lookup, c.bytes, { maxRequestSize: c.bytes.length - 1 }), isCode('too_large'));
  assert.throws(() => decapsulateRequest(lookup, c.bytes.subarray(0, 20)), isCode('truncated'));
  assert.throws(() => decapsulateRequest(lookup, c.bytes.subarray(0, 7 + 32 + 15)), isCode('truncated'));
  const flipped = c.bytes.slice();
  flipped[flipped.length - 1] ^= 0x80;
  assert.throws(() => decapsulateRequest(lookup, flipped), isCode('decrypt_failed'));
  assert.throws(() => encapsulateRequest(key.config, utf8('x'), { kdfId: 1, aeadId: 3 }), isCode('unsupported_suite'));
  assert.throws(() => encapsulateRequest(key.config, new Uint8Array(100), undefined, { limits: { maxRequestSize: 100 } }), isCode('too_large'));
});

test('application/ohttp-keys list: encode, decode, skip unknown KEMs, select by key id', () => {
  const a = generateKeyConfig(1).config;
  const b = generateKeyConfig(2, [{ kdfId: 1, aeadId: 3 }]).config;
  const list = encodeKeyConfigList([a, b]);
  assert.deepEqual(decodeKeyConfigList(list), [a, b]);
  // A configuration for a KEM we do not implement (P-256, 0x0010, 65-byte key) is stepped over.
  const p256 = concat(Uint8Array.of(9, 0x00, 0x10), new Uint8Array(65).fill(4), Uint8Array.of(0, 4, 0, 1, 0, 1));
  const withUnknown = concat(Uint8Array.of(0, p256.length), p256, list);
  assert.deepEqual(decodeKeyConfigList(withUnknown).map((c) => c.keyId), [1, 2]);
  assert.equal(selectKeyConfig(decodeKeyConfigList(list), 2).keyId, 2);
  assert.equal(selectKeyConfig(decodeKeyConfigList(list)).keyId, 1);
  assert.throws(() => selectKeyConfig([a], 9), isCode('unknown_key'));
  assert.deepEqual(selectSuite(b), { kdfId: 1, aeadId: 3 });
  assert.throws(() => decodeKeyConfigList(list.subarray(0, list.length - 1)), isCode('truncated'));
  assert.throws(() => decodeKeyConfigList(new Uint8Array(0)), isCode('malformed'));
});

test('key configuration strictness', () => {
  const good = h(v.key_config);
  assert.throws(() => decodeKeyConfig(concat(good, Uint8Array.of(0))), isCode('malformed'));
  assert.throws(() => decodeKeyConfig(good.subarray(0, good.length - 1)), isCode('truncated'));
  const odd = good.slice();
  odd[36] = 7; // suites length 7: not a multiple of 4
  assert.throws(() => decodeKeyConfig(odd), isCode('malformed'));
  const none = concat(good.subarray(0, 35), Uint8Array.of(0, 0));
  assert.throws(() => decodeKeyConfig(none), isCode('malformed'));
  const kem = good.slice();
  kem[2] = 0x10;
  assert.throws(() => decodeKeyConfig(kem), isCode('unsupported_suite'));
  const bad: KeyConfig = { ...decodeKeyConfig(good), keyId: 256 };
  assert.throws(() => encodeKeyConfig(bad), isCode('invalid_argument'));
  assert.throws(() => encodeKeyConfig({ ...bad, keyId: 1, publicKey: new Uint8Array(31) }), isCode('invalid_key'));
  assert.throws(() => generateKeyConfig(1, [{ kdfId: 2, aeadId: 1 }]), isCode('unsupported_suite'));
  // A key id outside one byte never wraps around into another key's id.
  const k = generateKeyConfig(1).config;
  assert.throws(() => encapsulateRequest({ ...k, keyId: 257 }, utf8('x')), isCode('invalid_argument'));
  assert.throws(() => encapsulateChunkedRequest({ ...k, keyId: 256 }), isCode('invalid_argument'));
  assert.throws(() => requestHeader(300, { kdfId: 1, aeadId: 1 }), isCode('invalid_argument'));
});

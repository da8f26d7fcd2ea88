import { test } from 'node:test';
import assert from 'node:assert/strict';
import { readFileSync } from 'node:fs';
import {
  encapsulateChunkedRequest, decapsulateChunkedRequest, ChunkedResponseSealer, ChunkedRequestReader,
} from '../transport/chunked-ohttp.js';
import { decodeKeyConfig, keyLookup, requestHeader, requestInfo, deriveResponseKeys, generateKeyConfig } from '../transport/ohttp.js';
import { aeadOpen, AEAD_AES_128_GCM, AEAD_AES_256_GCM, AEAD_CHACHA20_POLY1305 } from '../transport/hpke.js';
import { hexToBytes as h, bytesToHex as hex, utf8, concat } from '../transport/bytes.js';
import { BhttpResponseStreamEncoder, BhttpResponseStreamDecoder, encodeRequest, decodeRequest } from '../transport/bhttp.js';
import { TransportError } from '../transport/errors.js';

const VECTORS = new URL('./fixtures/vectors/', import.meta.url);
const v = JSON.parse(readFileSync(new URL('chunked-ohttp-example.json', VECTORS), 'utf8'));
const isCode = (code: string) => (e: unknown) => e instanceof TransportError && e.code === code;

function streamOf(...parts: Uint8Array[]): ReadableStream<Uint8Array> {
  return new ReadableStream({ start(c) { for (const p of parts) c.enqueue(p); c.close(); } });
}
async function collect(s: ReadableStream<Uint8Array>): Promise<Uint8Array[]> {
  const out: Uint8Array[] = [];
  for await (const c of s as unknown as AsyncIterable<Uint8Array>) out.push(c);
  return out;
}
function bytewise(b: Uint8Array): Uint8Array[] {
  return Array.from(b, (x) => Uint8Array.of(x));
}

const config = decodeKeyConfig(h(v.key_config));
const lookup = keyLookup([{ config, privateKey: h(v.server_secret_key) }]);
const eph = { privateKey: h(v.client_ephemeral_secret_key), publicKey: h(v.client_ephemeral_public_key) };
const requestBhttp = h(v.request_bhttp);
const responseBhttp = h(v.response_bhttp);

test('chunked example: the client reproduces the encapsulated request chunk by chunk', () => {
  assert.equal(hex(requestInfo('message/bhttp chunked request', requestHeader(1, { kdfId: 1, aeadId: 1 }))), v.hpke_info);
  const c = encapsulateChunkedRequest(config, { kdfId: 1, aeadId: AEAD_AES_128_GCM }, { ephemeral: eph });
  const lines = v.encapsulated_request_lines as string[];
  assert.equal(hex(c.header), lines[0] + lines[1]);
  assert.equal(hex(c.sealChunk(requestBhttp.subarray(0, 12))), lines[2]);
  assert.equal(hex(c.sealChunk(requestBhttp.subarray(12))), lines[3]);
  assert.equal(hex(c.sealFinal(new Uint8Array(0))), lines[4]);
  assert.equal(lines.join(''), v.encapsulated_request);
  assert.throws(() => c.sealChunk(utf8('x')), isCode('state'));
});

test('chunked example: the server opens the published request, whole and byte by byte', async () => {
  const whole = await decapsulateChunkedRequest(lookup, streamOf(h(v.encapsulated_request)));
  assert.equal(whole.keyId, 1);
  assert.equal(hex(whole.enc), v.client_ephemeral_public_key);
  const chunks = await collect(whole.request);
  assert.deepEqual(chunks.map(hex), [hex(requestBhttp.subarray(0, 12)), hex(requestBhttp.subarray(12))]);
  assert.equal(decodeRequest(concat(...chunks)).authority, 'example.com');

  const split = await decapsulateChunkedRequest(lookup, streamOf(...bytewise(h(v.encapsulated_request))));
  assert.equal(hex(concat(...(await collect(split.request)))), v.request_bhttp);
});

test('chunked example: response key derivation, counter nonces and every response chunk', async () => {
  const r = new ChunkedRequestReader(lookup);
  r.push(h(v.encapsulated_request));
  assert.equal(r.end().length, 0);
  const ctx = r.context!;
  assert.equal(hex(ctx.export(utf8('message/bhttp chunked response'), 16)), v.response_exported_secret);
  const salt = h(v.response_salt);
  const responseNonce = salt.subarray(32);
  const keys = deriveResponseKeys(ctx, r.enc!, responseNonce, 'message/bhttp chunked response');
  assert.equal(hex(keys.key), v.response_aead_key);
  assert.equal(hex(keys.nonce), v.response_aead_nonce);

  const lines = v.encapsulated_response_lines as string[];
  const sealer = new ChunkedResponseSealer(ctx, r.enc!, undefined, responseNonce);
  assert.equal(hex(sealer.header), lines[0]);
  assert.equal(hex(sealer.sealChunk(responseBhttp.subarray(0, 1))), lines[1]);
  assert.equal(hex(sealer.sealChunk(responseBhttp.subarray(1))), lines[2]);
  assert.equal(hex(sealer.sealFinal()), lines[3]);
  assert.equal(lines.join(''), v.encapsulated_response);

  // Independently of our counter code: each chunk opens under the published nonce, the last with AAD "final".
  const nonces = v.response_chunk_nonces_lines as string[];
  const bodies = lines.slice(1).map((l) => h(l).subarray(1));
  assert.deepEqual(aeadOpen(1, keys.key, h(nonces[0]), new Uint8Array(0), bodies[0]), responseBhttp.subarray(0, 1));
  assert.deepEqual(aeadOpen(1, keys.key, h(nonces[1]), new Uint8Array(0), bodies[1]), responseBhttp.subarray(1));
  assert.equal(aeadOpen(1, keys.key, h(nonces[2]), utf8('final'), bodies[2]).length, 0);
  assert.throws(() => aeadOpen(1, keys.key, h(nonces[2]), new Uint8Array(0), bodies[2]), isCode('decrypt_failed'));
});

test('chunked example: the client opens the published response as a stream', async () => {
  const c = encapsulateChunkedRequest(config, { kdfId: 1, aeadId: AEAD_AES_128_GCM }, { ephemeral: eph });
  const out = await collect(c.openResponse(streamOf(h(v.encapsulated_response))));
  assert.deepEqual(out.map(hex), [hex(responseBhttp.subarray(0, 1)), hex(responseBhttp.subarray(1))]);
  const c2 = encapsulateChunkedRequest(config, { kdfId: 1, aeadId: AEAD_AES_128_GCM }, { ephemeral: eph });
  assert.equal(hex(concat(...(await collect(c2.openResponse(streamOf(...bytewise(h(v.encapsulated_response)))))))), v.response_bhttp);
});

test('streaming SSE end to end for each AEAD: every event arrives before the response ends', async () => {
  for (const aeadId of [AEAD_AES_128_GCM, AEAD_AES_256_GCM, AEAD_CHACHA20_POLY1305]) {
    const key = generateKeyConfig(9);
    const client = encapsulateChunkedRequest(key.config, { kdfId: 1, aeadId });
    const request = encodeRequest({ method: 'POST', path: '/v1/chat/completions', content: utf8('{"stream":true}') }, { indeterminate: true });
    const server = await decapsulateChunkedRequest(keyLookup([key]), client.requestStream(request));
    assert.deepEqual(concat(...(await collect(server.request))), request);

    // Server: a bhttp head and each event sealed and written the moment it exists.
    let push!: (b: Uint8Array) => void;
    let close!: () => void;
    const plain = new ReadableStream<Uint8Array>({ start(c) { push = (b) => c.enqueue(b); close = () => c.close(); } });
    const wire = plain.pipeThrough(server.responseSealer.transform());
    const events = client.openResponse(wire).getReader();
    const bh = new BhttpResponseStreamEncoder();
    const dec = new BhttpResponseStreamDecoder();
    push(bh.head(200, [['content-type', 'text/event-stream']]));
    const first = await events.read();
    assert.deepEqual(dec.push(first.value!), [{ type: 'head', status: 200, headers: [['content-type', 'text/event-stream']] }]);
    for (const e of ['data: {"delta":"Once"}\n\n', 'data: {"delta":" upon"}\n\n', 'data: [DONE]\n\n']) {
      push(bh.body(utf8(e)));
      const got = await events.read(); // resolves while the server still holds the stream open
      assert.deepEqual(dec.push(got.value!), [{ type: 'body', chunk: utf8(e) }]);
    }
    push(bh.end());
    assert.deepEqual(dec.push((await events.read()).value!), [{ type: 'end', trailers: [] }]);
    close();
    assert.equal((await events.read()).done, true);
    assert.deepEqual(dec.end(), []);
  }
});

test('large plaintext is split at maxChunkSize and reassembled; receivers enforce limits', async () => {
  const key = generateKeyConfig(2);
  const limits = { maxChunkSize: 1000 };
  const client = encapsulateChunkedRequest(key.config, undefined, { limits });
  const body = new Uint8Array(4500).map((_, i) => i & 0xff);
  const server = await decapsulateChunkedRequest(keyLookup([key]), client.requestStream(body), limits);
  const chunks = await collect(server.request);
  assert.ok(chunks.every((c) => c.length <= 1000));
  assert.deepEqual(concat(...chunks), body);
  // A receiver with a smaller chunk limit rejects the same stream.
  const c2 = encapsulateChunkedRequest(key.config, undefined, { limits });
  const s2 = await decapsulateChunkedRequest(keyLookup([key]), c2.requestStream(body), { maxChunkSize: 999 });
  await assert.rejects(collect(s2.request), isCode('too_large'));
  // And one with a smaller total limit.
  const c3 = encapsulateChunkedRequest(key.config, undefined, { limits });
  const s3 = await decapsulateChunkedRequest(keyLookup([key]), c3.requestStream(body), { maxRequestSize: 4000 });
  await assert.rejects(collect(s3.request), isCode('too_large'));
});

test('server rejects unknown key ids and cuts before enc while reading the header', async () => {
  const key = generateKeyConfig(5);
  const client = encapsulateChunkedRequest(key.config);
  const hdr = client.header.slice();
  hdr[0] = 6;
  await assert.rejects(decapsulateChunkedRequest(keyLookup([key]), streamOf(hdr.subarray(0, 7))), isCode('unknown_key'));
  await assert.rejects(decapsulateChunkedRequest(keyLookup([key]), streamOf(client.header.subarray(0, 20))), isCode('truncated'));
  const failing = new ReadableStream<Uint8Array>({ start(c) { c.enqueue(client.header.subarray(0, 3)); c.error(new Error('socket reset')); } });
  await assert.rejects(decapsulateChunkedRequest(keyLookup([key]), failing), isCode('truncated'));
});

test('destroy() abandons a chunked response: nothing more can be sealed, and the receiver reports it truncated', async () => {
  const server = generateKeyConfig(9);
  const client = encapsulateChunkedRequest(server.config);
  const body = new Uint8Array([...client.header, ...client.sealFinal(utf8('hello'))]);
  const opened = await decapsulateChunkedRequest(keyLookup([server]), new Blob([body]).stream());
  const sealer = opened.responseSealer;
  const sent = [sealer.header, sealer.sealChunk(utf8('partial'))];
  sealer.destroy();
  sealer.destroy(); // idempotent
  assert.equal(sealer.finished, true);
  assert.throws(() => sealer.sealChunk(new Uint8Array(1)), (e: unknown) => e instanceof TransportError && e.code === 'state');
  assert.throws(() => sealer.sealFinal(), (e: unknown) => e instanceof TransportError && e.code === 'state');
  const reader = client.responseReader();
  const pieces = sent.flatMap((b) => reader.push(b));
  assert.equal(new TextDecoder().decode(pieces[0]), 'partial');
  assert.throws(() => reader.end(), (e: unknown) => e instanceof TransportError && e.code === 'truncated');
});

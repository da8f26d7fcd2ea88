/**
 * Hostile input: 10,000 random and mutated inputs per parser give TransportError only (never another
 * exception, never a mutated input, and error messages from a small fixed set, so nothing from the
 * input leaks into them); every single-bit flip of a sealed request, response and chunked stream is
 * rejected; a chunked message cut at any byte is reported as truncated.
 */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { readFileSync } from 'node:fs';
import { TransportError, TRANSPORT_ERROR_CODES } from '../transport/errors.js';
import { hexToBytes as h, concat, utf8 } from '../transport/bytes.js';
import { decodeRequest, decodeResponse, encodeRequest, encodeResponse, BhttpResponseStreamDecoder, BhttpResponseStreamEncoder } from '../transport/bhttp.js';
import {
  decodeKeyConfig, decodeKeyConfigList, encodeKeyConfigList, generateKeyConfig, keyLookup, parseEncapsulatedRequest,
  decapsulateRequest, encapsulateRequest, deriveResponseKeys, type KeyLookup,
} from '../transport/ohttp.js';
import {
  ChunkFramer, ChunkedRequestReader, encapsulateChunkedRequest, decapsulateChunkedRequest,
} from '../transport/chunked-ohttp.js';
import { AEAD_AES_128_GCM, AEAD_CHACHA20_POLY1305, aeadSeal } from '../transport/hpke.js';
import { Rng } from './fixtures/tdx/fuzz.js';

const VECTORS = new URL('./fixtures/vectors/', import.meta.url);
const read = (f: string) => JSON.parse(readFileSync(new URL(f, VECTORS), 'utf8'));
const bh = read('rfc9292-bhttp-examples.json');
const oh = read('rfc9458-ohttp-example.json');
const ch = read('chunked-ohttp-example.json');
const CODES = new Set<string>(TRANSPORT_ERROR_CODES);
/** Per pure parser (bhttp, key configs, OHTTP request framing, chunk framing). */
const N = 10_000;
/** End-to-end client openers (AEAD + HKDF per case). */
const N_CRYPTO = 10_000;
/** End-to-end gateway paths that pay an X25519 per case. */
const N_DH = 300;

// Deterministic PRNG (xorshift32) so any failure names a reproducible case.
function prng(seed: number) {
  const r = new Rng(seed);
  return (n: number) => r.int(n);
}
type Rnd = ReturnType<typeof prng>;

function randomBytes(rnd: Rnd, n: number): Uint8Array {
  return Uint8Array.from({ length: n }, () => rnd(256));
}

const INTERESTING = [0x00, 0x01, 0x3f, 0x40, 0x7f, 0x80, 0xbf, 0xc0, 0xff];

function mutate(seeds: Uint8Array[], rnd: Rnd): Uint8Array {
  let b: Uint8Array = seeds[rnd(seeds.length)].slice();
  const steps = 1 + rnd(4);
  for (let s = 0; s < steps; s++) {
    const at = b.length ? rnd(b.length) : 0;
    switch (rnd(9)) {
      case 0: if (b.length) b[at] ^= 1 << rnd(8); break;
      case 1: if (b.length) b[at] = rnd(256); break;
      case 2: if (b.length) b[at] = INTERESTING[rnd(INTERESTING.length)]; break;
      case 3: b = b.slice(0, at); break;
      case 4: b = concat(b.subarray(0, at), b.subarray(Math.min(b.length, at + 1 + rnd(8)))); break;
      case 5: b = concat(b.subarray(0, at), randomBytes(rnd, 1 + rnd(8)), b.subarray(at)); break;
      case 6: b = concat(b.subarray(0, at), b.subarray(at, at + 1 + rnd(16)), b.subarray(at)); break;
      case 7: b = concat(b, randomBytes(rnd, 1 + rnd(16))); break;
      default: {
        const other = seeds[rnd(seeds.length)];
        b = concat(b.subarray(0, at), other.subarray(rnd(other.length + 1)));
      }
    }
  }
  return b;
}

/** Split into 1..4 pieces at random points (for push-style parsers). */
function pieces(b: Uint8Array, rnd: Rnd): Uint8Array[] {
  const cuts = Array.from({ length: rnd(4) }, () => rnd(b.length + 1)).sort((x, y) => x - y);
  const out: Uint8Array[] = [];
  let prev = 0;
  for (const c of [...cuts, b.length]) {
    out.push(b.subarray(prev, c));
    prev = c;
  }
  return out;
}

function fuzz(name: string, seeds: Uint8Array[], n: number, run: (input: Uint8Array, rnd: Rnd) => unknown, seed = 1): Map<string, number> {
  const rnd = prng(seed);
  const outcomes = new Map<string, number>();
  const messages = new Set<string>();
  for (let i = 0; i < n; i++) {
    const input = i % 4 === 0 ? randomBytes(rnd, rnd(97)) : mutate(seeds, rnd);
    const before = input.slice();
    let outcome = 'ok';
    try {
      run(input, rnd);
    } catch (e) {
      if (!(e instanceof TransportError) || !CODES.has(e.code)) {
        assert.fail(`${name}: case ${i} threw a non-TransportError: ${String(e)}`);
      }
      outcome = e.code;
      messages.add(e.message);
    }
    assert.deepEqual(input, before, `${name}: case ${i} modified its input`);
    outcomes.set(outcome, (outcomes.get(outcome) ?? 0) + 1);
  }
  // Messages are fixed strings chosen by failure class: a few dozen at most, never input-dependent.
  assert.ok(messages.size <= 40, `${name}: ${messages.size} distinct error messages`);
  // The fuzzer must reach several failure classes, or it is not exercising the parser.
  assert.ok([...outcomes.keys()].filter((k) => k !== 'ok').length >= 2, `${name}: outcomes ${JSON.stringify([...outcomes])}`);
  return outcomes;
}

// ---------------------------------------------------------------- seeds and fixtures

const reqSeeds = [
  h(bh.known_length_request.hex), h(bh.indeterminate_length_request.hex), h(oh.request_bhttp),
  encodeRequest({ method: 'POST', path: '/v1/chat/completions', headers: [['content-type', 'application/json']], content: utf8('{"a":1}'), trailers: [['x', 'y']] }, { indeterminate: true }),
];
const resSeeds = [
  h(bh.indeterminate_length_response_with_interim.hex), h(bh.known_length_response_with_trailer.hex), h(oh.response_bhttp),
  (() => {
    const e = new BhttpResponseStreamEncoder();
    return concat(e.informational(103, [['link', '<a>']]), e.head(200, [['content-type', 'text/event-stream']]), e.body(utf8('data: x\n\n')), e.end([['t', 'v']]));
  })(),
];

const ohttpConfig = decodeKeyConfig(h(oh.key_config));
const ohttpLookup = keyLookup([{ config: ohttpConfig, privateKey: h(oh.server_secret_key) }]);
const chunkedConfig = decodeKeyConfig(h(ch.key_config));
const chunkedLookup: KeyLookup = keyLookup([{ config: chunkedConfig, privateKey: h(ch.server_secret_key) }]);
const chunkedEph = { privateKey: h(ch.client_ephemeral_secret_key), publicKey: h(ch.client_ephemeral_public_key) };

// ---------------------------------------------------------------- fuzzing, 10,000 per parser

test('fuzz: Binary HTTP request decoder', () => {
  const o = fuzz('decodeRequest', reqSeeds, N, (b) => decodeRequest(b, { maxFieldCount: 64, maxFieldLength: 4096 }));
  assert.ok((o.get('ok') ?? 0) > 0);
});

test('fuzz: Binary HTTP response decoder', () => {
  const o = fuzz('decodeResponse', resSeeds, N, (b) => decodeResponse(b, { maxFieldCount: 64 }), 2);
  assert.ok((o.get('ok') ?? 0) > 0);
});

test('fuzz: incremental Binary HTTP response decoder (random splits) agrees with the one-shot decoder', () => {
  fuzz('BhttpResponseStreamDecoder', resSeeds, N, (b, rnd) => {
    const d = new BhttpResponseStreamDecoder({ maxFieldCount: 64 });
    let streamed: unknown = 'ok';
    try {
      for (const p of pieces(b, rnd)) d.push(p);
      d.end();
    } catch (e) {
      streamed = e;
    }
    let whole: unknown = 'ok';
    try {
      decodeResponse(b, { maxFieldCount: 64 });
    } catch (e) {
      whole = e;
    }
    // Same verdict: both accept or both reject.
    assert.equal(streamed === 'ok', whole === 'ok');
    if (streamed !== 'ok') throw streamed;
  }, 3);
});

test('fuzz: key configuration decoder', () => {
  const o = fuzz('decodeKeyConfig', [h(oh.key_config), h(ch.key_config), generateKeyConfig(9).encoded], N, (b) => decodeKeyConfig(b), 4);
  assert.ok((o.get('ok') ?? 0) > 0);
});

test('fuzz: application/ohttp-keys list decoder', () => {
  const list = encodeKeyConfigList([ohttpConfig, generateKeyConfig(2).config]);
  fuzz('decodeKeyConfigList', [list, h('0029' + oh.key_config)], N, (b) => decodeKeyConfigList(b), 5);
});

test('fuzz: Encapsulated Request framing at the gateway', () => {
  const seeds = [h(oh.encapsulated_request), encapsulateRequest(ohttpConfig, reqSeeds[3]).bytes];
  const o = fuzz('parseEncapsulatedRequest', seeds, N, (b) => parseEncapsulatedRequest(ohttpLookup, b, { maxRequestSize: 4096 }), 6);
  assert.ok((o.get('unknown_key') ?? 0) > 0 && (o.get('ok') ?? 0) > 0);
});

test('fuzz: chunk framing (both directions)', () => {
  const seeds = [h(ch.encapsulated_request).subarray(39), h(ch.encapsulated_response).subarray(16)];
  fuzz('ChunkFramer', seeds, N, (b, rnd) => {
    const f = new ChunkFramer(1000, 4096);
    for (const p of pieces(b, rnd)) f.push(p);
    f.end();
  }, 7);
});

test(`fuzz: chunked response reader (client), ${N_CRYPTO} cases`, () => {
  const client = encapsulateChunkedRequest(chunkedConfig, { kdfId: 1, aeadId: AEAD_AES_128_GCM }, { ephemeral: chunkedEph });
  const o = fuzz('ChunkedResponseReader', [h(ch.encapsulated_response)], N_CRYPTO, (b, rnd) => {
    const r = client.responseReader();
    for (const p of pieces(b, rnd)) r.push(p);
    r.end();
  }, 8);
  assert.ok((o.get('decrypt_failed') ?? 0) > 0 && (o.get('truncated') ?? 0) > 0);
});

test(`fuzz: Encapsulated Response opener (client), ${N_CRYPTO} cases`, () => {
  const eph = { privateKey: h(oh.client_ephemeral_secret_key), publicKey: h(oh.client_ephemeral_public_key) };
  const client = encapsulateRequest(ohttpConfig, h(oh.request_bhttp), { kdfId: 1, aeadId: 1 }, { ephemeral: eph });
  fuzz('openResponse', [h(oh.encapsulated_response)], N_CRYPTO, (b) => client.openResponse(b), 9);
});

// Full gateway decapsulation does an X25519 per input that reaches it (milliseconds each on this
// shared machine), so these two run N_DH cases; their framing is fuzzed 10,000 times above.
test(`fuzz: full OHTTP decapsulation, ${N_DH} cases`, () => {
  fuzz('decapsulateRequest', [h(oh.encapsulated_request)], N_DH, (b) => decapsulateRequest(ohttpLookup, b), 10);
});

test(`fuzz: full chunked request reader (gateway), ${N_DH} cases`, () => {
  fuzz('ChunkedRequestReader', [h(ch.encapsulated_request)], N_DH, (b, rnd) => {
    const r = new ChunkedRequestReader(chunkedLookup);
    for (const p of pieces(b, rnd)) r.push(p);
    r.end();
  }, 11);
});

// ---------------------------------------------------------------- every single-bit flip

function flips(b: Uint8Array): Uint8Array[] {
  const out: Uint8Array[] = [];
  for (let i = 0; i < b.length * 8; i++) {
    const c = b.slice();
    c[i >> 3] ^= 1 << (i & 7);
    out.push(c);
  }
  return out;
}

test('every bit flip of a sealed OHTTP request is rejected', () => {
  const key = generateKeyConfig(1);
  const lookup = keyLookup([key]);
  const sealed = encapsulateRequest(key.config, encodeRequest({ method: 'GET', path: '/v1/models' }, { truncate: true }), { kdfId: 1, aeadId: AEAD_CHACHA20_POLY1305 }).bytes;
  assert.ok(decapsulateRequest(lookup, sealed));
  for (const [i, f] of flips(sealed).entries()) {
    assert.throws(() => decapsulateRequest(lookup, f), (e: unknown) => e instanceof TransportError, `bit ${i}`);
  }
});

test('every bit flip of a sealed OHTTP response is rejected', () => {
  const key = generateKeyConfig(1);
  const c = encapsulateRequest(key.config, utf8('q'));
  const s = decapsulateRequest(keyLookup([key]), c.bytes);
  const sealed = s.sealResponse(encodeResponse({ status: 200, content: utf8('{"ok":true}') }));
  assert.ok(c.openResponse(sealed));
  for (const [i, f] of flips(sealed).entries()) {
    assert.throws(() => c.openResponse(f), (e: unknown) => e instanceof TransportError && e.code === 'decrypt_failed', `bit ${i}`);
  }
});

test('every bit flip of a chunked request (the published example) is rejected', () => {
  const wire = h(ch.encapsulated_request);
  for (const [i, f] of flips(wire).entries()) {
    assert.throws(() => {
      const r = new ChunkedRequestReader(chunkedLookup);
      r.push(f);
      r.end();
    }, (e: unknown) => e instanceof TransportError, `bit ${i}`);
  }
});

test('every bit flip of a chunked response stream, and of each chunk, is rejected', () => {
  const client = encapsulateChunkedRequest(chunkedConfig, { kdfId: 1, aeadId: AEAD_AES_128_GCM }, { ephemeral: chunkedEph });
  const r0 = new ChunkedRequestReader(chunkedLookup);
  r0.push(h(ch.encapsulated_request));
  r0.end();
  const sealer = r0.responseSealer();
  const wire = concat(sealer.header, sealer.sealChunk(utf8('data: one\n\n')), sealer.sealChunk(utf8('data: two\n\n')), sealer.sealFinal(utf8('tail')));
  for (const w of [wire, h(ch.encapsulated_response)]) {
    const ok = client.responseReader();
    ok.push(w);
    ok.end();
    for (const [i, f] of flips(w).entries()) {
      assert.throws(() => {
        const r = client.responseReader();
        r.push(f);
        r.end();
      }, (e: unknown) => e instanceof TransportError, `bit ${i}`);
    }
  }
});

// ---------------------------------------------------------------- truncation at every byte

async function drain(s: ReadableStream<Uint8Array>): Promise<Uint8Array> {
  const out: Uint8Array[] = [];
  for await (const c of s as unknown as AsyncIterable<Uint8Array>) out.push(c);
  return concat(...out);
}
const isTruncated = (e: unknown) => e instanceof TransportError && e.code === 'truncated';

test('a chunked response cut at every byte offset is reported as truncated (push core and web stream)', async () => {
  const key = generateKeyConfig(3);
  const client = encapsulateChunkedRequest(key.config, { kdfId: 1, aeadId: AEAD_CHACHA20_POLY1305 });
  const server = await decapsulateChunkedRequest(keyLookup([key]), client.requestStream(utf8('req')));
  assert.deepEqual(await drain(server.request), utf8('req'));
  // What the server writes for a streamed answer: each event sealed as it comes, then an empty final chunk.
  const events = ['data: {"x":1}\n\n', 'data: {"x":2}\n\n', 'data: [DONE]\n\n'].map(utf8);
  const wire = await drain(new ReadableStream<Uint8Array>({ start(c) { for (const e of events) c.enqueue(e); c.close(); } })
    .pipeThrough(server.responseSealer.transform()));
  assert.deepEqual(await drain(client.openResponse(new ReadableStream({ start(c) { c.enqueue(wire); c.close(); } }))), concat(...events));

  for (let cut = 0; cut < wire.length; cut++) {
    const r = client.responseReader();
    r.push(wire.subarray(0, cut));
    assert.throws(() => r.end(), isTruncated, `push core, cut ${cut}`);
    const stream = client.openResponse(new ReadableStream({ start(c) { c.enqueue(wire.subarray(0, cut)); c.close(); } }));
    await assert.rejects(drain(stream), isTruncated, `stream, cut ${cut}`);
  }
  // Split (not cut) at every offset still decodes.
  for (let at = 0; at <= wire.length; at++) {
    const r = client.responseReader();
    const got = concat(...r.push(wire.subarray(0, at)), ...r.push(wire.subarray(at)), r.end());
    assert.deepEqual(got, concat(...events), `split ${at}`);
  }
});

test('the published chunked response cut at every byte offset is truncated', () => {
  const client = encapsulateChunkedRequest(chunkedConfig, { kdfId: 1, aeadId: AEAD_AES_128_GCM }, { ephemeral: chunkedEph });
  const wire = h(ch.encapsulated_response);
  for (let cut = 0; cut < wire.length; cut++) {
    const r = client.responseReader();
    r.push(wire.subarray(0, cut));
    assert.throws(() => r.end(), isTruncated, `cut ${cut}`);
  }
});

test('our sealer always ends on an empty final chunk, so even sealFinal(data) streams cut anywhere are truncated', () => {
  const client = encapsulateChunkedRequest(chunkedConfig, { kdfId: 1, aeadId: AEAD_AES_128_GCM }, { ephemeral: chunkedEph });
  const r0 = new ChunkedRequestReader(chunkedLookup);
  r0.push(h(ch.encapsulated_request));
  r0.end();
  const sealer = r0.responseSealer();
  const wire = concat(sealer.header, sealer.sealChunk(utf8('a')), sealer.sealFinal(utf8('the last words')));
  assert.deepEqual([...wire.subarray(wire.length - 17, wire.length - 16)], [0]); // final indicator, then a bare tag
  const ok = client.responseReader();
  assert.deepEqual(concat(...ok.push(wire), ok.end()), utf8('athe last words'));
  for (let cut = 0; cut < wire.length; cut++) {
    const r = client.responseReader();
    r.push(wire.subarray(0, cut));
    assert.throws(() => r.end(), isTruncated, `cut ${cut}`);
  }
});

test('a foreign stream with data in its final chunk, cut inside that chunk, is still rejected', () => {
  // Built by hand from the RFC 9458 section 4.4 keys: chunk 0 = "a", final chunk (counter 1) = data.
  const client = encapsulateChunkedRequest(chunkedConfig, { kdfId: 1, aeadId: AEAD_AES_128_GCM }, { ephemeral: chunkedEph });
  const r0 = new ChunkedRequestReader(chunkedLookup);
  r0.push(h(ch.encapsulated_request));
  r0.end();
  const responseNonce = new Uint8Array(16).fill(7);
  const { key, nonce } = deriveResponseKeys(r0.context!, r0.enc!, responseNonce, 'message/bhttp chunked response');
  const n1 = nonce.slice();
  n1[11] ^= 1;
  const c0 = aeadSeal(1, key, nonce, new Uint8Array(0), utf8('a'));
  const fin = aeadSeal(1, key, n1, utf8('final'), utf8('the last words'));
  const wire = concat(responseNonce, Uint8Array.of(c0.length), c0, Uint8Array.of(0), fin);
  const ok = client.responseReader();
  assert.deepEqual(concat(...ok.push(wire), ok.end()), utf8('athe last words'));
  const finalStart = wire.length - fin.length; // first byte after the zero indicator
  for (let cut = 0; cut < wire.length; cut++) {
    const r = client.responseReader();
    r.push(wire.subarray(0, cut));
    // Fewer bytes than a tag is visibly a cut; more cannot be told from tampering.
    const expected = cut >= finalStart + 16 ? 'decrypt_failed' : 'truncated';
    assert.throws(() => r.end(), (e: unknown) => e instanceof TransportError && e.code === expected, `cut ${cut}`);
  }
});

test('a chunked request cut at every byte offset is truncated at the gateway (push core and web stream)', async () => {
  const wire = h(ch.encapsulated_request);
  for (let cut = 0; cut < wire.length; cut++) {
    const r = new ChunkedRequestReader(chunkedLookup);
    r.push(wire.subarray(0, cut));
    assert.throws(() => r.end(), isTruncated, `push core, cut ${cut}`);
    const body = new ReadableStream<Uint8Array>({ start(c) { c.enqueue(wire.subarray(0, cut)); c.close(); } });
    await assert.rejects((async () => drain((await decapsulateChunkedRequest(chunkedLookup, body)).request))(), isTruncated, `stream, cut ${cut}`);
  }
});

test('a 64 KiB chunk trickled in one byte at a time decodes (incremental parsers do linear work)', () => {
  const big = new Uint8Array(64 * 1024).map((_, i) => (i * 31) & 0xff);
  // Chunked OHTTP response.
  const client = encapsulateChunkedRequest(chunkedConfig, { kdfId: 1, aeadId: AEAD_AES_128_GCM }, { ephemeral: chunkedEph });
  const r0 = new ChunkedRequestReader(chunkedLookup);
  r0.push(h(ch.encapsulated_request));
  r0.end();
  const sealer = r0.responseSealer();
  const wire = concat(sealer.header, sealer.sealChunk(big), sealer.sealFinal());
  const reader = client.responseReader();
  const got: Uint8Array[] = [];
  const t0 = performance.now();
  for (let i = 0; i < wire.length; i++) got.push(...reader.push(wire.subarray(i, i + 1)));
  got.push(reader.end());
  assert.deepEqual(concat(...got), big);
  // Binary HTTP response body.
  const enc = new BhttpResponseStreamEncoder();
  const msg = concat(enc.head(200), enc.body(big), enc.end());
  const dec = new BhttpResponseStreamDecoder();
  const body: Uint8Array[] = [];
  for (let i = 0; i < msg.length; i++) for (const e of dec.push(msg.subarray(i, i + 1))) if (e.type === 'body') body.push(e.chunk);
  dec.end();
  assert.deepEqual(concat(...body), big);
  // Quadratic re-buffering would copy ~4 GB here; linear work is well under this bound even on a loaded machine.
  assert.ok(performance.now() - t0 < 20_000);
});

test('declared lengths far beyond the input or the limits fail at once, before anything is buffered', () => {
  const huge = 'c01fffffffffffff'; // 2^53 - 1
  const code = (c: string) => (e: unknown) => e instanceof TransportError && e.code === c;
  // Known-length content that claims 2^53-1 bytes.
  assert.throws(() => decodeResponse(h(`0140c800${huge}`)), code('truncated'));
  // A known-length header section that claims 2^53-1 bytes.
  assert.throws(() => decodeRequest(h(`0003474554056874747073000a2f68656c6c6f2e747874${huge}`)), code('truncated'));
  // A field name beyond maxFieldLength, in the one-shot and the streaming decoder.
  assert.throws(() => decodeResponse(h(`0340c8${huge}`)), code('too_large'));
  assert.throws(() => new BhttpResponseStreamDecoder().push(h(`0340c8${huge}`)), code('too_large'));
  // A streamed content chunk beyond maxResponseSize.
  assert.throws(() => new BhttpResponseStreamDecoder().push(h(`0340c800${huge}`)), code('too_large'));
  // A chunked OHTTP chunk beyond maxChunkSize, from its length prefix alone.
  assert.throws(() => new ChunkFramer(1000, 1 << 20).push(h(huge)), code('too_large'));
  assert.throws(() => new ChunkFramer(1000, 1 << 20).push(h('4fa0')), code('too_large')); // 4000 > 1000
  // A final chunk that grows past maxChunkSize while it streams in.
  const f = new ChunkFramer(1000, 1 << 20);
  f.push(h('00'));
  assert.throws(() => f.push(new Uint8Array(1001)), code('too_large'));
});

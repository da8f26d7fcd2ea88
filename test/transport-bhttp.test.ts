import { test } from 'node:test';
import assert from 'node:assert/strict';
import { readFileSync } from 'node:fs';
import {
  encodeRequest, decodeRequest, encodeResponse, decodeResponse, BhttpResponseStreamEncoder, BhttpResponseStreamDecoder,
  type Field, type BhttpResponseEvent,
} from '../transport/bhttp.js';
import { hexToBytes as h, bytesToHex as hex, utf8, concat } from '../transport/bytes.js';
import { TransportError } from '../transport/errors.js';

const VECTORS = new URL('./fixtures/vectors/', import.meta.url);
const ex = JSON.parse(readFileSync(new URL('rfc9292-bhttp-examples.json', VECTORS), 'utf8'));
const ohttpEx = JSON.parse(readFileSync(new URL('rfc9458-ohttp-example.json', VECTORS), 'utf8'));
const isCode = (code: string) => (e: unknown) => e instanceof TransportError && e.code === code;
const latin1 = (s: string) => Uint8Array.from(s, (c) => c.charCodeAt(0));

test('RFC 9292 known-length request: decode and re-encode byte for byte', () => {
  const v = ex.known_length_request;
  const req = decodeRequest(h(v.hex));
  assert.equal(req.framing, 'known');
  assert.equal(req.method, v.method);
  assert.equal(req.scheme, v.scheme);
  assert.equal(req.authority, v.authority);
  assert.equal(req.path, v.path);
  assert.deepEqual(req.headers, v.headers);
  assert.equal(req.content.length, 0);
  assert.deepEqual(req.trailers, v.trailers);
  assert.equal(hex(encodeRequest(req)), v.hex);
});

test('RFC 9292 indeterminate-length request with padding: same request, exact bytes', () => {
  const v = ex.indeterminate_length_request;
  const req = decodeRequest(h(v.hex));
  const known = decodeRequest(h(ex.known_length_request.hex));
  assert.equal(req.framing, 'indeterminate');
  assert.deepEqual({ ...req, framing: 'known' }, known);
  assert.equal(hex(encodeRequest(req, { indeterminate: true, padding: 10 })), v.hex);
});

test('RFC 9292 indeterminate-length response with two interim responses', () => {
  const v = ex.indeterminate_length_response_with_interim;
  const res = decodeResponse(h(v.hex));
  assert.equal(res.framing, 'indeterminate');
  assert.deepEqual(res.informational.map((i) => [i.status, i.headers]), v.informational);
  assert.equal(res.status, v.status);
  assert.deepEqual(res.headers, v.headers);
  assert.deepEqual(res.content, latin1(v.content));
  assert.deepEqual(res.trailers, v.trailers);
  assert.equal(hex(encodeResponse(res, { indeterminate: true })), v.hex);
});

test('RFC 9292 known-length response with a trailer', () => {
  const v = ex.known_length_response_with_trailer;
  const res = decodeResponse(h(v.hex));
  assert.equal(res.framing, 'known');
  assert.equal(res.status, v.status);
  assert.deepEqual(res.headers, v.headers);
  assert.deepEqual(res.content, latin1(v.content));
  assert.deepEqual(res.trailers, v.trailers);
  assert.equal(hex(encodeResponse(res)), v.hex);
});

test('truncated messages from RFC 9458 decode and re-encode with truncate', () => {
  const req = decodeRequest(h(ohttpEx.request_bhttp));
  assert.deepEqual([req.method, req.scheme, req.authority, req.path], ['GET', 'https', 'example.com', '/']);
  assert.equal(hex(encodeRequest(req, { truncate: true })), ohttpEx.request_bhttp);
  const res = decodeResponse(h(ohttpEx.response_bhttp));
  assert.equal(res.status, 200);
  assert.deepEqual([res.headers, res.content.length, res.trailers], [[], 0, []]);
  assert.equal(hex(encodeResponse(res, { truncate: true })), ohttpEx.response_bhttp);
  // Truncation at a boundary equals the full form with empty sections.
  assert.deepEqual(decodeResponse(h('0140c8000000')), res);
});

test('strictness: framing, padding, lengths, names, values, status', () => {
  const good = h(ex.known_length_response_with_trailer.hex);
  assert.throws(() => decodeResponse(concat(good, Uint8Array.of(0, 1))), isCode('malformed'));
  assert.deepEqual(decodeResponse(concat(good, new Uint8Array(5))).trailers, [['trailer', 'text']]);
  assert.throws(() => decodeResponse(good.subarray(0, good.length - 2)), isCode('truncated'));
  assert.throws(() => decodeRequest(good), isCode('malformed'));
  assert.throws(() => decodeResponse(h(ex.known_length_request.hex)), isCode('malformed'));
  assert.throws(() => decodeResponse(h('04')), isCode('malformed'));
  assert.throws(() => decodeResponse(h('01')), isCode('truncated'));
  assert.throws(() => decodeResponse(h('0140c7')), isCode('truncated')); // 199 then nothing: interim needs headers
  assert.throws(() => decodeResponse(h('014258')), isCode('malformed')); // 600
  assert.throws(() => decodeResponse(h('014063')), isCode('malformed')); // 99
  assert.throws(() => decodeResponse(h('0140c804014101620000')), isCode('malformed')); // uppercase name "A"
  assert.throws(() => decodeResponse(h('0140c80601610162')), isCode('truncated'));
  assert.throws(() => decodeResponse(h('0140c8050161010a00')), isCode('malformed')); // LF in value
  assert.throws(() => decodeResponse(h('0140c803000162')), isCode('malformed')); // empty name
  assert.throws(() => encodeResponse({ status: 200, headers: [['Bad', 'x']] }), isCode('invalid_argument'));
  assert.throws(() => encodeResponse({ status: 200, headers: [['ok', 'x\r\ny']] }), isCode('invalid_argument'));
  assert.throws(() => encodeResponse({ status: 100 }), isCode('invalid_argument'));
  assert.throws(() => encodeRequest({ method: 'GET', path: '' }), isCode('invalid_argument'));
  assert.throws(() => encodeRequest({ method: 'G T', path: '/' }), isCode('invalid_argument'));
});

test('limits: message size, field count, field length', () => {
  const many: Field[] = Array.from({ length: 20 }, (_, i) => [`h${i}`, 'v']);
  const bytes = encodeRequest({ method: 'POST', path: '/v1/chat/completions', headers: many, content: utf8('{}') });
  assert.equal(decodeRequest(bytes, { maxFieldCount: 20 }).headers.length, 20);
  assert.throws(() => decodeRequest(bytes, { maxFieldCount: 19 }), isCode('too_large'));
  assert.throws(() => decodeRequest(bytes, { maxRequestSize: bytes.length - 1 }), isCode('too_large'));
  const long = encodeRequest({ method: 'GET', path: '/', headers: [['x', 'a'.repeat(100)]] });
  assert.equal(decodeRequest(long, { maxFieldLength: 100 }).headers[0][1].length, 100);
  assert.throws(() => decodeRequest(long, { maxFieldLength: 99 }), isCode('too_large'));
  assert.throws(() => decodeRequest(long, { maxFieldCount: 0 }), isCode('invalid_argument'));
});

test('non-ASCII bytes in values survive a round trip unchanged', () => {
  const value = String.fromCharCode(0x80, 0x9f, 0xe9, 0xff);
  const res = decodeResponse(encodeResponse({ status: 200, headers: [['x-v', value]] }));
  assert.equal(res.headers[0][1], value);
});

function streamEvents(bytes: Uint8Array, split: number[]): BhttpResponseEvent[] {
  const d = new BhttpResponseStreamDecoder();
  const events: BhttpResponseEvent[] = [];
  let prev = 0;
  for (const s of [...split, bytes.length]) {
    events.push(...d.push(bytes.subarray(prev, s)));
    prev = s;
  }
  events.push(...d.end());
  return events;
}

/** Merge adjacent body events so differently split streams compare equal. */
function normalize(events: BhttpResponseEvent[]): unknown[] {
  const out: unknown[] = [];
  for (const e of events) {
    const last = out[out.length - 1] as { type: string; chunk: Uint8Array } | undefined;
    if (e.type === 'body' && last?.type === 'body') last.chunk = concat(last.chunk, e.chunk);
    else out.push(e.type === 'body' ? { type: 'body', chunk: e.chunk.slice() } : e);
  }
  return out;
}

test('incremental decoder: the RFC interim response, fed in every two-piece split, matches the one-shot decode', () => {
  const bytes = h(ex.indeterminate_length_response_with_interim.hex);
  const whole = decodeResponse(bytes);
  const expected = normalize([
    ...whole.informational.map((i) => ({ type: 'informational' as const, ...i })),
    { type: 'head', status: whole.status, headers: whole.headers },
    { type: 'body', chunk: whole.content },
    { type: 'end', trailers: whole.trailers },
  ]);
  for (let cut = 0; cut <= bytes.length; cut++) assert.deepEqual(normalize(streamEvents(bytes, [cut])), expected, `cut ${cut}`);
  // Byte by byte.
  assert.deepEqual(normalize(streamEvents(bytes, Array.from({ length: bytes.length }, (_, i) => i))), expected);
});

test('incremental encoder and decoder stream SSE events one at a time', () => {
  const enc = new BhttpResponseStreamEncoder();
  const dec = new BhttpResponseStreamDecoder();
  const first = enc.head(200, [['content-type', 'text/event-stream']]);
  assert.deepEqual(dec.push(first), [{ type: 'head', status: 200, headers: [['content-type', 'text/event-stream']] }]);
  const events = ['data: {"a":1}\n\n', 'data: {"b":2}\n\n', 'data: [DONE]\n\n'];
  for (const e of events) {
    assert.equal(enc.body(new Uint8Array(0)).length, 0);
    const got = dec.push(enc.body(utf8(e)));
    assert.deepEqual(got, [{ type: 'body', chunk: utf8(e) }]);
  }
  assert.deepEqual(dec.push(enc.end()), [{ type: 'end', trailers: [] }]);
  assert.deepEqual(dec.end(), []);
  assert.throws(() => enc.body(utf8('x')), isCode('state'));
  assert.throws(() => enc.head(200), isCode('state'));
});

test('incremental decoder: truncation points, known-length input, limits', () => {
  const enc = new BhttpResponseStreamEncoder();
  const pieces = [enc.informational(103, [['link', '</a>']]), enc.head(200, [['a', 'b']]), enc.body(utf8('hello')), enc.end([['t', 'u']])];
  const full = concat(...pieces);
  assert.deepEqual(decodeResponse(full).trailers, [['t', 'u']]);
  // RFC 9292 allows truncation only at section boundaries after the final status: right after the
  // status (every section absent), after the head and after the content terminator.
  const afterStatus = pieces[0].length + 2;
  const afterHead = pieces[0].length + pieces[1].length;
  const afterContent = afterHead + pieces[2].length + 1;
  for (let cut = 0; cut < full.length; cut++) {
    const d = new BhttpResponseStreamDecoder();
    d.push(full.subarray(0, cut));
    if (cut === afterStatus || cut === afterHead || cut === afterContent) assert.deepEqual(d.end().at(-1), { type: 'end', trailers: [] }, `cut ${cut}`);
    else assert.throws(() => d.end(), isCode('truncated'), `cut ${cut}`);
    // The one-shot decoder agrees on every cut.
    if (cut === afterStatus || cut === afterHead || cut === afterContent) assert.deepEqual(decodeResponse(full.subarray(0, cut)).trailers, []);
    else assert.throws(() => decodeResponse(full.subarray(0, cut)), isCode('truncated'), `one-shot cut ${cut}`);
  }
  const known = h(ex.known_length_response_with_trailer.hex);
  assert.deepEqual(streamEvents(known, [3, 10]).at(-1), { type: 'end', trailers: [['trailer', 'text']] });
  const d = new BhttpResponseStreamDecoder({ maxResponseSize: 10 });
  assert.throws(() => d.push(full), isCode('too_large'));
  assert.throws(() => d.push(full), isCode('state'));
  const p = new BhttpResponseStreamDecoder();
  p.push(full);
  assert.throws(() => p.push(Uint8Array.of(0, 0, 7)), isCode('malformed'));
});

test('field values: controls and surrounding whitespace rejected, inner SP/HTAB and obs-text allowed', () => {
  const isCode2 = (code: string) => (e: unknown) => e instanceof TransportError && e.code === code;
  for (const bad of ['a\x00b', 'a\x01b', 'a\x1fb', 'a\x7fb', ' a', 'a ', '\ta', 'a\t', 'a\rb', 'a\nb']) {
    assert.throws(() => encodeResponse({ status: 200, headers: [['x', bad]] }), isCode2('invalid_argument'), JSON.stringify(bad));
    // The same bytes on the wire are malformed.
    const v = latin1(bad);
    const wire = concat(h('0340c80178'), Uint8Array.of(v.length), v, h('000000'));
    assert.throws(() => decodeResponse(wire), isCode2('malformed'), JSON.stringify(bad));
  }
  for (const good of ['', 'a b', 'a\tb', 'caf\xe9', '"quoted"']) {
    assert.equal(decodeResponse(encodeResponse({ status: 200, headers: [['x', good]] })).headers[0][1], good);
  }
  // Pseudo-fields have no place in Binary HTTP field sections.
  assert.throws(() => encodeRequest({ method: 'GET', path: '/', headers: [[':path', '/']] }), isCode2('invalid_argument'));
});

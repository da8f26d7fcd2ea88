// The SDK's streamed-response path (client/response-stream.ts under wire.ts and sse.ts) fed a
// response sealed by transport's own server side: however the network cuts it into reads the
// events are the same, any cut is an error rather than a short answer, a tampered chunk is
// response_undecryptable, and stopping early cancels the network body.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { generateKeyConfig, keyLookup } from '../transport/ohttp.js';
import { ChunkedRequestReader } from '../transport/chunked-ohttp.js';
import { BhttpResponseStreamEncoder } from '../transport/bhttp.js';
import { concatAll } from '../transport/bytes.js';
import { parseKeyConfig, sealChunkedRequest } from '../client/wire.js';
import { openAiChunkBatches } from '../client/sse.js';
import { flatten } from '../client/response-stream.js';
import { SealedClientError } from '../client/errors.js';

const kc = generateKeyConfig(7);
const lookup = keyLookup([{ config: kc.config, privateKey: kc.privateKey }]);
const key = parseKeyConfig(kc.encoded);
const enc = new TextEncoder();
const TEXTS = ['Hel', 'lo, ', 'wörld ✓', '!'];

/** An event as the server writes it: JSON, then a comment line padding it to 256 bytes. */
function event(data: string): Uint8Array {
  const line = `data: ${data}\n`;
  return enc.encode(`${line}: ${'p'.repeat(256 - enc.encode(line).length - 4)}\n\n`);
}

interface Exchange {
  sealed: ReturnType<typeof sealChunkedRequest>;
  /** The network bytes of the response. */
  wire: Uint8Array;
  /** Where each sealed chunk ends in `wire`, after the nonce. */
  ends: number[];
}

function exchange(events: Uint8Array[] = [...TEXTS.map((t, i) => event(JSON.stringify({ i, choices: [{ text: t }] }))), event('[DONE]')]): Exchange {
  const sealed = sealChunkedRequest(key, { method: 'POST', path: '/v1/completions', headers: [], body: enc.encode('{}') });
  const r = new ChunkedRequestReader(lookup);
  r.push(sealed.bytes);
  r.end();
  const s = r.responseSealer();
  const b = new BhttpResponseStreamEncoder();
  const parts = [s.header, s.sealChunk(b.head(200, [['content-type', 'text/event-stream']]))];
  for (const e of events) parts.push(s.sealChunk(b.body(e)));
  parts.push(s.sealFinal(b.end()));
  const ends: number[] = [];
  let o = 0;
  for (const p of parts) ends.push((o += p.length));
  return { sealed, wire: concatAll(parts), ends };
}

function body(reads: Uint8Array[], onCancel?: () => void, failAtEnd = false): ReadableStream<Uint8Array> {
  let i = 0;
  return new ReadableStream<Uint8Array>({
    pull(c) {
      if (i < reads.length) c.enqueue(reads[i++].slice());
      else if (failAtEnd) c.error(new Error('connection reset'));
      else c.close();
    },
    cancel: () => onCancel?.(),
  }, { highWaterMark: 0 });
}

/** Reads the response as the SDK's openAi path does; the texts it got before any error. */
async function run(x: Exchange, reads: Uint8Array[], seen: string[] = [], onFailure?: (e: SealedClientError) => unknown, failAtEnd = false): Promise<string[]> {
  const opened = await x.sealed.openStream(body(reads, undefined, failAtEnd), onFailure);
  assert.equal(opened.status, 200);
  assert.equal(opened.headers['content-type'], 'text/event-stream');
  for await (const c of openAiChunkBatches<{ choices: { text: string }[] }>(opened.batches)) seen.push(c.choices[0].text);
  return seen;
}

const isCode = (code: string) => (e: unknown) => e instanceof SealedClientError && e.code === code;

test('the events are the same however the network splits the response: every single cut, and one read per chunk', async () => {
  const x = exchange();
  assert.deepEqual(await run(x, [x.wire]), TEXTS);
  for (let cut = 1; cut < x.wire.length; cut++) {
    assert.deepEqual(await run(x, [x.wire.subarray(0, cut), x.wire.subarray(cut)]), TEXTS, `split at ${cut}`);
  }
  const perChunk = x.ends.map((e, i) => x.wire.subarray(i ? x.ends[i - 1] : 0, e));
  assert.deepEqual(await run(x, perChunk), TEXTS);
  assert.deepEqual(await run(x, Array.from(x.wire, (b) => Uint8Array.of(b))), TEXTS, 'byte by byte');
});

test('a response cut anywhere is an error, never a short answer: after [DONE] too, and at a chunk boundary', async () => {
  const x = exchange();
  const boundaries = new Set(x.ends.slice(0, -1));
  for (let cut = 0; cut < x.wire.length; cut++) {
    const seen: string[] = [];
    await assert.rejects(run(x, [x.wire.subarray(0, cut)], seen), isCode('truncated'), `cut at ${cut}${boundaries.has(cut) ? ' (chunk boundary)' : ''}`);
    // What was yielded before the error is a prefix of the answer, never anything else.
    assert.deepEqual(seen, TEXTS.slice(0, seen.length));
  }
  // The connection failing after everything but the final chunk is a cut as well.
  const beforeFinal = x.wire.subarray(0, x.ends[x.ends.length - 2]);
  const seen: string[] = [];
  await assert.rejects(run(x, [beforeFinal], seen, undefined, true), isCode('truncated'));
  assert.deepEqual(seen, TEXTS);
});

test('a response without [DONE] is truncated even when its encryption is complete', async () => {
  const x = exchange(TEXTS.map((t) => event(JSON.stringify({ choices: [{ text: t }] }))));
  const seen: string[] = [];
  await assert.rejects(run(x, [x.wire], seen), isCode('truncated'));
  assert.deepEqual(seen, TEXTS);
});

test('a tampered chunk is response_undecryptable, reported once through onFailure, at the head and in the body', async () => {
  const x = exchange();
  for (const at of [x.ends[0] + 3, x.ends[3] - 1]) {
    const bad = x.wire.slice();
    bad[at] ^= 1;
    const failures: SealedClientError[] = [];
    const seen: string[] = [];
    await assert.rejects(run(x, [bad], seen, (e) => (failures.push(e), e)), isCode('response_undecryptable'), `flip at ${at}`);
    assert.deepEqual(failures.map((e) => e.code), ['response_undecryptable']);
    assert.deepEqual(seen, [], 'nothing from a read that failed to authenticate is handed out');
  }
});

test('stopping early cancels the network body, whether the body was iterated or not', async () => {
  const x = exchange();
  const perChunk = x.ends.map((e, i) => x.wire.subarray(i ? x.ends[i - 1] : 0, e));
  let cancelled = 0;
  const opened = await x.sealed.openStream(body(perChunk, () => cancelled++));
  for await (const _ of openAiChunkBatches(opened.batches)) break;
  assert.equal(cancelled, 1);

  const untouched = await x.sealed.openStream(body(perChunk, () => cancelled++));
  await untouched.cancel();
  assert.equal(cancelled, 2);
});

test('the plain body pieces (requestStream) carry exactly the inner body', async () => {
  const x = exchange();
  const opened = await x.sealed.openStream(body([x.wire.subarray(0, 100), x.wire.subarray(100)]));
  const pieces: Uint8Array[] = [];
  for await (const p of flatten(opened.batches)) pieces.push(p);
  const expected = [...TEXTS.map((t, i) => event(JSON.stringify({ i, choices: [{ text: t }] }))), event('[DONE]')];
  assert.deepEqual(Buffer.from(concatAll(pieces)), Buffer.from(concatAll(expected)));
});

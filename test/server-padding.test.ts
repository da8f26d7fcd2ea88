// Streamed responses are padded by default: every event of a chunked-OHTTP stream grows to a size
// bucket, so the sizes of the sealed chunks on the wire fall in a few buckets whatever the
// tokens; with padding off they follow the token lengths. The padding is an SSE comment line, so
// what the client reads is unchanged.
import assert from 'node:assert/strict';
import { after, before, describe, test } from 'node:test';
import { createProvider, type EvidenceProvider } from '../enclave/providers/index.js';
import { Engine } from '../engine/index.js';
import { startServer, type RunningServer } from '../server/lifecycle.js';
import { resolveLimits } from '../server/limits.js';
import { bucketFor, EventPadder, MIN_BUCKET, padEvent } from '../server/padding.js';
import { BhttpResponseStreamDecoder, encodeRequest } from '../transport/bhttp.js';
import { ChunkFramer, encapsulateChunkedRequest } from '../transport/chunked-ohttp.js';
import { responseNonceLength } from '../transport/ohttp.js';
import { attest, sessionUrl, sseData, streamedText, type Attested } from './fixtures/server/client.js';

const MODEL_DIR = new URL('../models/stories260K', import.meta.url).pathname;
const enc = new TextEncoder();
const dec = new TextDecoder();

describe('padEvent', () => {
  test('pads a whole event to its bucket with a comment line, leaving its data intact', () => {
    for (const n of [0, 1, 100, 200, 253, 254, 255, 256, 300, 1000, 5000]) {
      const ev = enc.encode(`data: ${'x'.repeat(n)}\n\n`);
      const padded = padEvent(ev);
      assert.equal(padded.byteLength, bucketFor(ev.byteLength));
      assert.ok(padded.byteLength >= MIN_BUCKET && (padded.byteLength & (padded.byteLength - 1)) === 0, 'a power of two from 256');
      const text = dec.decode(padded);
      assert.ok(text.endsWith('\n\n'));
      const lines = text.slice(0, -2).split('\n');
      assert.equal(lines[0], `data: ${'x'.repeat(n)}`);
      assert.equal(lines.length, 2);
      assert.match(lines[1]!, /^:( p*)?$/, 'the padding is one comment line');
    }
  });

  test('what is not one whole event passes unchanged (a comment may only go between lines)', () => {
    for (const s of ['data: x', 'data: x\n', '']) assert.deepEqual(padEvent(enc.encode(s)), enc.encode(s));
  });
});

describe('EventPadder', () => {
  test('pads events however the stream is cut: split across chunks, several in one, a tail without its blank line', () => {
    const p = new EventPadder();
    const e1 = 'data: {"a":1}\n\n';
    const e2 = 'data: {"b":22}\n\n';
    const e3 = 'data: [DONE]\n\n';
    const outs: Uint8Array[] = [];
    outs.push(p.push(enc.encode(e1.slice(0, 5))));
    assert.equal(outs[0]!.byteLength, 0, 'nothing until the blank line');
    outs.push(p.push(enc.encode(e1.slice(5, -1))));
    assert.equal(outs[1]!.byteLength, 0, 'half a blank line is not one');
    outs.push(p.push(enc.encode(e1.slice(-1) + e2 + e3 + 'data: x')));
    assert.equal(outs[2]!.byteLength, 3 * MIN_BUCKET, 'three events, each in its bucket');
    assert.equal(dec.decode(p.flush()), 'data: x');
    assert.deepEqual(sseData(outs.map((o) => dec.decode(o)).join('')), ['{"a":1}', '{"b":22}', '[DONE]']);
  });

  test('one whole event per chunk (the inner app\'s way) gives the same bytes as padEvent, and a fresh array each time', () => {
    const p = new EventPadder();
    for (const s of ['data: {"a":1}\n\n', 'data: ' + 'x'.repeat(300) + '\n\n', 'data: [DONE]\n\n']) {
      const chunk = enc.encode(s);
      const out = p.push(chunk);
      assert.deepEqual(out, padEvent(enc.encode(s)));
      assert.notEqual(out.buffer, chunk.buffer, 'the caller may wipe what it gets without touching the inner chunk');
      out.fill(0);
      assert.equal(dec.decode(chunk), s, 'the inner chunk is left as it was');
    }
    assert.equal(p.flush().byteLength, 0, 'nothing held back');
  });

  test('a chunk holding an event and the start of the next, after whole events, keeps the tail', () => {
    const p = new EventPadder();
    assert.equal(p.push(enc.encode('data: 1\n\n')).byteLength, MIN_BUCKET);
    assert.equal(p.push(enc.encode('data: 2\n\ndata: 3')).byteLength, MIN_BUCKET, 'only the completed event');
    assert.equal(p.push(enc.encode('\n\n')).byteLength, MIN_BUCKET, 'the tail completes; the fast path is not taken over a held tail');
    assert.equal(p.flush().byteLength, 0);
  });
});

describe('sealed chunk sizes of a stream', () => {
  let engine: Engine;
  let provider: EvidenceProvider;
  let padded: RunningServer;
  let plain: RunningServer;

  before(async () => {
    engine = await Engine.create({ modelDir: MODEL_DIR, threads: 1 });
    provider = await createProvider('simulated', { simulation: { modelDigest: engine.model.digest } });
    // The default is on: the padded server is started without saying so.
    padded = await startServer({ engine, provider, limits: resolveLimits({}), host: '127.0.0.1', port: 0 });
    plain = await startServer({ engine, provider, limits: resolveLimits({ streamPadding: false }), host: '127.0.0.1', port: 0 });
  });
  after(async () => {
    await padded.close();
    await plain.close();
    provider.close?.();
    await engine.close();
  });

  /** Streams one chat completion; the wire size of every sealed chunk, and the decrypted events. */
  async function stream(base: string, a: Attested, content: string): Promise<{ sizes: number[]; events: string[]; text: string }> {
    const e = encapsulateChunkedRequest(a.config);
    const json = { model: 'stories260K', messages: [{ role: 'user', content }], max_tokens: 60, temperature: 0, stream: true };
    const bhttp = encodeRequest({
      method: 'POST', scheme: 'https', authority: 's.invalid', path: '/v1/chat/completions',
      headers: [['content-type', 'application/json']], content: enc.encode(JSON.stringify(json)),
    });
    const res = await fetch(sessionUrl(base, a.sid, 'ohttp'), {
      method: 'POST',
      headers: { 'content-type': 'message/ohttp-chunked-req' },
      body: Buffer.concat([e.header, e.sealFinal(bhttp)]),
    });
    assert.equal(res.status, 200);
    const raw = new Uint8Array(await res.arrayBuffer());
    const framer = new ChunkFramer(1 << 20, 1 << 24);
    const sizes = framer.push(raw.subarray(responseNonceLength(e.suite.aeadId))).map((c) => c.byteLength);
    const decoder = new BhttpResponseStreamDecoder();
    const reader = e.openResponse(new Response(raw).body!).getReader();
    const events: string[] = [];
    let text = '';
    for (;;) {
      const r = await reader.read();
      for (const ev of r.done ? decoder.end() : decoder.push(r.value)) {
        if (ev.type === 'body') {
          events.push(dec.decode(ev.chunk));
          text += dec.decode(ev.chunk);
        }
      }
      if (r.done) break;
    }
    return { sizes, events, text };
  }

  const PROMPTS = ['Tell me about a big red dog', 'Lily found a shiny stone', 'The sun was hot and the cat slept'];

  test('padded (the default): every token chunk is the same size; off: sizes follow the token lengths', async () => {
    const pa = await attest(padded.url);
    const pl = await attest(plain.url);
    const paddedSizes = new Set<number>();
    const plainSizes = new Set<number>();
    const eventLengths = new Set<number>();
    let bytes = { padded: 0, plain: 0 };
    let tokens = 0;
    for (const p of PROMPTS) {
      const on = await stream(padded.url, pa, p);
      const off = await stream(plain.url, pl, p);
      // Same answer either way: the padding is invisible to an SSE reader.
      assert.equal(streamedText(sseData(on.text)), streamedText(sseData(off.text)));
      assert.equal(sseData(on.text).at(-1), '[DONE]');
      assert.equal(on.events.length, off.events.length);
      // One sealed chunk per event (event i is chunk i + 1), between the head's and the end of the content's.
      assert.equal(on.sizes.length, on.events.length + 2);
      assert.equal(off.sizes.length, off.events.length + 2);
      // Token deltas: every event but the role chunk, the finish chunk and [DONE].
      const deltas = off.events.slice(1, -2);
      for (let i = 1; i <= deltas.length; i++) {
        eventLengths.add(enc.encode(off.events[i]!).byteLength);
        plainSizes.add(off.sizes[i + 1]!);
        paddedSizes.add(on.sizes[i + 1]!);
        // Off, a sealed chunk is the event plus a constant: anyone on the path reads its length.
        assert.equal(off.sizes[i + 1]! - enc.encode(off.events[i]!).byteLength, off.sizes[2]! - enc.encode(off.events[1]!).byteLength);
      }
      tokens += deltas.length;
      bytes = { padded: bytes.padded + on.sizes.reduce((x, y) => x + y, 0), plain: bytes.plain + off.sizes.reduce((x, y) => x + y, 0) };
    }
    assert.ok(eventLengths.size >= 5, `the tokens differ in length (${eventLengths.size} lengths)`);
    assert.ok(plainSizes.size >= 5, `unpadded chunk sizes reveal them (${plainSizes.size} sizes)`);
    assert.equal(paddedSizes.size, 1, `padded token chunks all have one size: ${[...paddedSizes].join(', ')}`);
    process.stdout.write(
      `# ${tokens} tokens: sealed bytes per token padded ${(bytes.padded / tokens).toFixed(1)}, unpadded ${(bytes.plain / tokens).toFixed(1)}; ` +
        `padded sizes {${[...paddedSizes].join(', ')}}, unpadded ${plainSizes.size} sizes\n`,
    );
  });
});

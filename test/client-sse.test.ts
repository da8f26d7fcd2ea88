// The SSE layer under every streamed answer: incremental, strict, and a missing
// [DONE] is a truncation error rather than a short answer.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { SseParser, openAiChunks } from '../client/sse.js';
import { SealedClientError } from '../client/errors.js';

const enc = new TextEncoder();

async function* from(...parts: (string | Uint8Array)[]): AsyncGenerator<Uint8Array> {
  for (const p of parts) yield typeof p === 'string' ? enc.encode(p) : p;
}

async function drain(it: AsyncIterable<unknown>): Promise<unknown[]> {
  const out: unknown[] = [];
  for await (const x of it) out.push(x);
  return out;
}

async function rejectsWith(p: Promise<unknown>, code: string): Promise<void> {
  await assert.rejects(p, (e: unknown) => e instanceof SealedClientError && e.code === code);
}

test('an event is released as soon as its blank line arrives, not before', () => {
  const p = new SseParser();
  assert.deepEqual(p.push(enc.encode('data: {"a"')), []);
  assert.deepEqual(p.push(enc.encode(':1}\n')), []);
  assert.deepEqual(p.push(enc.encode('\n')), ['{"a":1}']);
});

test('CRLF, CR and LF line endings, split anywhere, give the same events', () => {
  const text = 'data: one\r\n\r\ndata: two\r\rdata: three\n\n: comment\n\nevent: x\nid: 5\ndata: a\ndata: b\n\n';
  const whole = new SseParser().push(enc.encode(text));
  assert.deepEqual(whole, ['one', 'two', 'three', 'a\nb']);
  for (let cut = 1; cut < text.length; cut++) {
    const p = new SseParser();
    const got = [...p.push(enc.encode(text.slice(0, cut))), ...p.push(enc.encode(text.slice(cut)))];
    assert.deepEqual(got, whole, `split at ${cut}`);
  }
});

test('a multi-byte UTF-8 character split across chunks survives; invalid UTF-8 is an error', () => {
  const bytes = enc.encode('data: {"t":"é✓"}\n\n');
  const p = new SseParser();
  const got: string[] = [];
  for (const b of bytes) got.push(...p.push(Uint8Array.of(b)));
  assert.deepEqual(got, ['{"t":"é✓"}']);
  assert.throws(() => new SseParser().push(Uint8Array.of(0x64, 0x61, 0xff)), (e: unknown) => e instanceof SealedClientError && e.code === 'response_malformed');
});

test('an oversized event is refused instead of buffered without bound', () => {
  const p = new SseParser();
  const big = enc.encode('data: ' + 'x'.repeat(600_000) + '\n');
  p.push(big);
  assert.throws(() => p.push(big), (e: unknown) => e instanceof SealedClientError && e.code === 'response_malformed');
});

test('openAiChunks yields parsed chunks in order and ends at [DONE]', async () => {
  const chunks = await drain(openAiChunks(from('data: {"i":1}\n\n', 'data: {"i":2}\n', '\ndata: [DONE]\n\n')));
  assert.deepEqual(chunks, [{ i: 1 }, { i: 2 }]);
});

test('a stream without [DONE] is truncated, even after complete chunks', async () => {
  await rejectsWith(drain(openAiChunks(from('data: {"i":1}\n\n'))), 'truncated');
  await rejectsWith(drain(openAiChunks(from('data: {"i":1}\n\ndata: [DONE]'))), 'truncated'); // no blank line: incomplete event
  await rejectsWith(drain(openAiChunks(from())), 'truncated');
});

test('non-JSON, non-object, post-[DONE] and in-stream error events are refused with their codes', async () => {
  await rejectsWith(drain(openAiChunks(from('data: nope\n\n'))), 'response_malformed');
  await rejectsWith(drain(openAiChunks(from('data: [1,2]\n\n'))), 'response_malformed');
  await rejectsWith(drain(openAiChunks(from('data: [DONE]\n\ndata: {"i":1}\n\n'))), 'response_malformed');
  await rejectsWith(drain(openAiChunks(from('data: {"error":{"message":"boom"}}\n\n'))), 'stream_error');
});

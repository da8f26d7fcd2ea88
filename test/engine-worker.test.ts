// The engine in a worker thread (engine/worker-engine.ts): the same answers as the engine in
// this thread, the same errors at the same moment (synchronously, before any work), and
// cancellation, admission, close and a dying worker handled as the in-thread engine does.
// Also the event batch that crosses the thread boundary (engine/worker-protocol.ts).
import { test, before, after } from 'node:test';
import assert from 'node:assert/strict';
import { spawnSync } from 'node:child_process';
import { readFileSync } from 'node:fs';
import { fileURLToPath } from 'node:url';
import { Engine, EngineError, type GenerateRequest } from '../engine/index.js';
import { WorkerEngine } from '../engine/worker-engine.js';
import { deliverBatch, EventOutbox } from '../engine/worker-protocol.js';
import { collect } from './fixtures/engine/collect.js';

const MODEL_DIR = new URL('../models/stories260K', import.meta.url).pathname;
const golden = JSON.parse(readFileSync(new URL('./fixtures/stories260K-golden-greedy-200.json', import.meta.url), 'utf8')) as {
  generated_ids: number[];
  text: string;
};

let worker: WorkerEngine;
let local: Engine;
before(async () => {
  worker = await WorkerEngine.create({ modelDir: MODEL_DIR, threads: 1, maxBatch: 8, maxQueue: 64 });
  local = await Engine.create({ modelDir: MODEL_DIR, threads: 1, maxBatch: 8, maxQueue: 64 });
});
after(async () => {
  await worker.close();
  await local.close();
});

const isCode = (code: string) => (e: unknown) => e instanceof EngineError && e.code === code;
const settle = (p: Promise<unknown>) => p.then(() => null, (e: unknown) => e);

test('greedy output through the worker is the golden output, token for token', async () => {
  const r = await collect(worker.generate({ prompt: [1], maxTokens: golden.generated_ids.length, temperature: 0, returnTokenIds: true }));
  assert.deepEqual(r.done.tokenIds, golden.generated_ids);
});

test('batched and seeded requests give what the in-thread engine gives, deltas included', async () => {
  const reqs: GenerateRequest[] = [
    { prompt: 'Once upon a time', maxTokens: 40, temperature: 0 },
    { prompt: 'The cat', maxTokens: 25, temperature: 0.9, seed: 7, topK: 20 },
    { prompt: [1, 400, 300], maxTokens: 33, temperature: 1, topP: 0.8, seed: 123 },
    { prompt: 'Lily', maxTokens: 60, temperature: 0, stop: ['.'] },
  ];
  const a = await Promise.all(reqs.map((r) => collect(worker.generate(r))));
  const b = await Promise.all(reqs.map((r) => collect(local.generate(r))));
  assert.deepEqual(a, b);
  assert.equal(worker.inFlight, 0);
});

test('the tokenizer surface answers here, without the worker', () => {
  assert.deepEqual(worker.encode('Once upon a time'), local.encode('Once upon a time'));
  assert.equal(worker.countTokens('Once upon a time'), local.countTokens('Once upon a time'));
  assert.deepEqual(worker.chatPrompt([{ role: 'user', content: 'hi' }]), local.chatPrompt([{ role: 'user', content: 'hi' }]));
  assert.deepEqual(worker.model, local.model);
  assert.equal(worker.decodeMode, local.decodeMode);
});

test('bad requests throw the same typed errors synchronously and reach no worker', async () => {
  const bad: Array<[GenerateRequest, string]> = [
    [{ prompt: [], maxTokens: 1 }, 'invalid_request'],
    [{ prompt: [1, 99999], maxTokens: 1 }, 'invalid_request'],
    [{ prompt: [1], maxTokens: 0 }, 'invalid_request'],
    [{ prompt: [1], maxTokens: 1, temperature: 3 }, 'invalid_request'],
    [{ prompt: [1], maxTokens: 1, stop: ['a', 'b', 'c', 'd', 'e'] }, 'invalid_request'],
    [{ prompt: '\ud800', maxTokens: 1 }, 'invalid_request'],
    [{ prompt: [1], maxTokens: 100_000 }, 'context_length_exceeded'],
  ];
  const before = await worker.stats();
  for (const [req, code] of bad) {
    assert.throws(() => worker.generate(req), isCode(code));
    assert.throws(() => local.generate(req), isCode(code));
  }
  assert.equal(worker.inFlight, 0);
  const afterStats = await worker.stats();
  assert.deepEqual(afterStats, before, 'nothing was scheduled');
  const ac = new AbortController();
  ac.abort();
  assert.throws(() => worker.generate({ prompt: [1], maxTokens: 2 }, ac.signal), isCode('cancelled'));
});

test('abort: the stream throws cancelled, the worker frees slot and cache, decoding stops', async () => {
  const ac = new AbortController();
  let n = 0;
  await assert.rejects(
    (async () => {
      for await (const ev of worker.generate({ prompt: [1], maxTokens: 400, temperature: 0 }, ac.signal)) {
        if (ev.type === 'delta' && ++n === 3) ac.abort();
      }
    })(),
    isCode('cancelled'),
  );
  assert.equal(worker.inFlight, 0);
  const s = await worker.stats();
  assert.equal(s.active, 0);
  assert.equal(s.cachedSequences, 0);
  await new Promise((r) => setTimeout(r, 30));
  // At most the step that was in flight when the cancel arrived.
  assert.ok((await worker.stats()).steps <= s.steps + 1, 'the cancelled sequence does not keep decoding');
});

test("ids wrap within int32 (the batch's record type) and the caller's prompt array is left as it was", async () => {
  (worker as unknown as { nextId: number }).nextId = 0x7fffffff;
  const prompt = [1, 400, 300];
  const a = await collect(worker.generate({ prompt, maxTokens: 5, temperature: 0 }));
  const b = await collect(worker.generate({ prompt, maxTokens: 5, temperature: 0 }));
  assert.equal((worker as unknown as { nextId: number }).nextId, 2);
  assert.deepEqual(a, b);
  assert.deepEqual(prompt, [1, 400, 300]);
});

test('leaving the loop early cancels in the worker', async () => {
  for await (const ev of worker.generate({ prompt: [1], maxTokens: 400, temperature: 0 })) {
    if (ev.type === 'delta') break;
  }
  assert.equal(worker.inFlight, 0);
  const s = await worker.stats();
  assert.equal(s.active, 0);
  assert.equal(s.cachedSequences, 0);
});

test('busy at capacity (slots + queue), synchronously; a cancel frees a place at once', async () => {
  const small = await WorkerEngine.create({ modelDir: MODEL_DIR, threads: 1, maxBatch: 1, maxQueue: 1 });
  try {
    const first = collect(small.generate({ prompt: [1], maxTokens: 100, temperature: 0 }));
    const ac = new AbortController();
    const second = settle(collect(small.generate({ prompt: [1], maxTokens: 5, temperature: 0 }, ac.signal)));
    assert.throws(() => small.generate({ prompt: [1], maxTokens: 5 }), isCode('busy'));
    ac.abort();
    assert.ok(isCode('cancelled')(await second));
    const third = collect(small.generate({ prompt: [1], maxTokens: 3, temperature: 0 }));
    assert.equal((await first).done.completionTokens, 100);
    assert.equal((await third).done.completionTokens, 3);
    assert.equal((await small.stats()).cachedSequences, 0);
  } finally {
    await small.close();
  }
});

test('close fails running and queued streams with closed, then refuses new ones', async () => {
  const e2 = await WorkerEngine.create({ modelDir: MODEL_DIR, threads: 1, maxBatch: 1, maxQueue: 4 });
  const running = settle(collect(e2.generate({ prompt: [1], maxTokens: 400, temperature: 0 })));
  const queued = settle(collect(e2.generate({ prompt: [1], maxTokens: 4, temperature: 0 })));
  await new Promise((r) => setTimeout(r, 10));
  await e2.close();
  assert.ok(isCode('closed')(await running));
  assert.ok(isCode('closed')(await queued));
  assert.throws(() => e2.generate({ prompt: [1], maxTokens: 1 }), isCode('closed'));
  await e2.close();
});

test('a worker that dies fails every stream with internal and closes the engine (fail closed)', async () => {
  // In a child process: ONNX Runtime's teardown of a thread killed inside session.run may abort the
  // process. Either outcome fails closed; a stream that completes, or anything that hangs, does not.
  const child = spawnSync(process.execPath, ['--import', 'tsx', fileURLToPath(new URL('./fixtures/engine/worker-dies.ts', import.meta.url))], {
    encoding: 'utf8',
    timeout: 60_000,
    env: { ...process.env, TSX_DISABLE_CACHE: '1' },
  });
  assert.equal(child.error, undefined, 'the child hung or could not start');
  const line = child.stdout.split('\n').find((l) => l.startsWith('{'));
  if (line !== undefined) {
    assert.deepEqual(JSON.parse(line), { stream: 'internal', after: 'closed' });
    assert.equal(child.status, 0, child.stderr.slice(-500));
  } else {
    // The runtime aborted the process before the main thread could answer: nothing completed.
    assert.equal(child.signal, 'SIGABRT', `no verdict and no abort: status ${child.status}, ${child.stderr.slice(-500)}`);
  }
});

test('a model that cannot load is a typed error, and no thread is left behind', async () => {
  await assert.rejects(WorkerEngine.create({ modelDir: '/nonexistent-model-dir', threads: 1 }), isCode('model_invalid'));
  await assert.rejects(WorkerEngine.create({ modelDir: MODEL_DIR, maxBatch: 0 }), isCode('invalid_request'));
});

test('the runtime telemetry switch is in the real environment before the worker starts', () => {
  assert.equal(process.env.ORT_DISABLE_TELEMETRY, '1');
});

test('event batch: one message per step, in order, text intact, plaintext bytes zeroed after delivery', () => {
  const out = new EventOutbox();
  out.event(3, { type: 'delta', text: 'héllo ' });
  out.event(5, { type: 'delta', text: '世界🙂' });
  out.event(3, { type: 'delta', text: '' });
  out.event(3, { type: 'done', finishReason: 'length', promptTokens: 2, completionTokens: 9, tokenIds: [4, 5] });
  out.end(3);
  out.fail(5, new EngineError('closed', 'the engine was closed'));
  const batch = out.take();
  assert.equal(out.size, 0);
  const bytes = batch.bytes;
  const seen: unknown[] = [];
  deliverBatch(batch, {
    event: (id, ev) => seen.push([id, ev]),
    end: (id) => seen.push([id, 'end']),
    fail: (id, err) => seen.push([id, err.code, err.message]),
  });
  assert.deepEqual(seen, [
    [3, { type: 'delta', text: 'héllo ' }],
    [5, { type: 'delta', text: '世界🙂' }],
    [3, { type: 'delta', text: '' }],
    [3, { type: 'done', finishReason: 'length', promptTokens: 2, completionTokens: 9, tokenIds: [4, 5] }],
    [3, 'end'],
    [5, 'closed', 'the engine was closed'],
  ]);
  assert.ok(bytes.length > 0 && bytes.every((b) => b === 0), 'the decoded text bytes are wiped');
});

test('a malformed batch is refused whole: nothing is delivered', () => {
  const out = new EventOutbox();
  out.event(1, { type: 'delta', text: 'abc' });
  out.event(1, { type: 'done', finishReason: 'stop', promptTokens: 1, completionTokens: 1 });
  const good = out.take();
  const cases = [
    { ...good, records: good.records.slice(0, 5) },
    { ...good, extra: [] },
    { ...good, records: Int32Array.from([1, 0, 0, 999]) , extra: [] },
    { ...good, records: Int32Array.from([1, 9, 0, 0]), extra: [] },
    { ...good, bytes: 'abc' as unknown as Uint8Array },
  ];
  for (const bad of cases) {
    let delivered = 0;
    assert.throws(
      () => deliverBatch(bad, { event: () => delivered++, end: () => delivered++, fail: () => delivered++ }),
      isCode('internal'),
    );
    assert.equal(delivered, 0);
  }
});

// Engine.generate behaviour on the bundled model: sampling reproducibility,
// stop sequences, max_tokens, EOS, context limit, cancellation, busy, and no
// KV cache left behind.
import { test, before, after } from 'node:test';
import assert from 'node:assert/strict';
import { readFileSync } from 'node:fs';
import { cp, mkdtemp, readFile, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { Engine, EngineError, type GenerateRequest } from '../engine/index.js';
import { createTokenizer } from '../engine/tokenizer.js';
import { collect } from './fixtures/engine/collect.js';

const golden = JSON.parse(readFileSync(new URL('./fixtures/stories260K-golden-greedy-200.json', import.meta.url), 'utf8')) as {
  generated_ids: number[];
  text: string;
};
const MODEL_DIR = new URL('../models/stories260K', import.meta.url).pathname;

let engine: Engine;
before(async () => {
  engine = await Engine.create({ modelDir: MODEL_DIR, threads: 1, maxBatch: 16, maxQueue: 2000 });
});
after(async () => {
  await engine.close();
});

const gen = (req: GenerateRequest, signal?: AbortSignal) => collect(engine.generate(req, signal));

function assertCode(fn: () => unknown, code: string) {
  assert.throws(fn, (e: unknown) => e instanceof EngineError && e.code === code);
}

async function settled() {
  // Retirement is immediate; give the loop a turn in case a step was in flight.
  for (let i = 0; i < 50 && (engine.stats().cachedSequences > 0 || engine.stats().active > 0); i++) {
    await new Promise((r) => setTimeout(r, 5));
  }
}

test('model info: id, digest, context length, manifest', () => {
  assert.equal(engine.model.id, 'stories260K');
  assert.match(engine.model.digest, /^[0-9a-f]{64}$/);
  assert.equal(engine.model.contextLength, 512);
  assert.ok(engine.model.manifest.files.some((f) => f.path === 'onnx/model.onnx'));
});

test('seeded sampling is reproducible, alone and batched; different seeds differ', async () => {
  const req = { prompt: 'Once upon a time', maxTokens: 40, temperature: 0.9, topP: 0.95, topK: 40, seed: 1234, returnTokenIds: true };
  const a = await gen(req);
  const b = await gen(req);
  assert.deepEqual(a.done.tokenIds, b.done.tokenIds);
  assert.equal(a.text, b.text);
  // Same seed while other sequences run beside it.
  const [c] = await Promise.all([
    gen(req),
    gen({ prompt: 'The dog', maxTokens: 30, temperature: 1, seed: 5 }),
    gen({ prompt: [1, 403, 407], maxTokens: 50, temperature: 0 }),
  ]);
  assert.deepEqual(c.done.tokenIds, a.done.tokenIds);
  const others = await Promise.all([1, 2, 3].map((s) => gen({ ...req, seed: 1234 + s })));
  assert.ok(others.some((o) => JSON.stringify(o.done.tokenIds) !== JSON.stringify(a.done.tokenIds)));
  // Greedy is the default-free path: temperature 0 ignores the seed.
  const g1 = await gen({ prompt: [1], maxTokens: 20, temperature: 0, seed: 1, returnTokenIds: true });
  const g2 = await gen({ prompt: [1], maxTokens: 20, temperature: 0, seed: 2, returnTokenIds: true });
  assert.deepEqual(g1.done.tokenIds, golden.generated_ids.slice(0, 20));
  assert.deepEqual(g2.done.tokenIds, g1.done.tokenIds);
});

test('max_tokens ends with finish reason length and exactly that many tokens', async () => {
  const r = await gen({ prompt: [1], maxTokens: 7, temperature: 0, returnTokenIds: true });
  assert.equal(r.done.finishReason, 'length');
  assert.equal(r.done.completionTokens, 7);
  assert.deepEqual(r.done.tokenIds, golden.generated_ids.slice(0, 7));
  const tok = createTokenizer(
    JSON.parse(readFileSync(`${MODEL_DIR}/tokenizer.json`, 'utf8')),
    JSON.parse(readFileSync(`${MODEL_DIR}/tokenizer_config.json`, 'utf8')),
  );
  assert.equal(r.text, tok.decode(golden.generated_ids.slice(0, 7)));
  const one = await gen({ prompt: 'Hi', maxTokens: 1, temperature: 0 });
  assert.equal(one.done.completionTokens, 1);
});

test('stop sequences end the output before the stop string and hold back its prefix', async () => {
  const stop = 'girl named Lily';
  const at = golden.text.indexOf(stop);
  assert.ok(at > 0);
  const r = await gen({ prompt: [1], maxTokens: 200, temperature: 0, stop: ['nothing like this', stop] });
  assert.equal(r.text, golden.text.slice(0, at));
  assert.equal(r.done.finishReason, 'stop');
  assert.ok(r.done.completionTokens < 30);
  // While "girl named" could still become the stop string, it was not released.
  let emitted = '';
  for (const d of r.deltas) {
    emitted += d;
    assert.ok(!emitted.endsWith('girl') && !emitted.endsWith('girl named'), 'a possible stop prefix was released early');
  }
  // A stop string that starts in the middle of a token.
  const mid = await gen({ prompt: [1], maxTokens: 200, temperature: 0, stop: ['pon a'] });
  assert.equal(mid.text, 'Once u');
  // A prefix that never completes is released at the end.
  const never = await gen({ prompt: [1], maxTokens: 200, temperature: 0, stop: ['so she!'] });
  assert.equal(never.text, golden.text);
  assert.equal(never.done.finishReason, 'length');
});

test('EOS (any of several ids) ends generation with finish reason stop; EOS is not in the output', async () => {
  // The bundled model writes stories without EOS, so make one of its golden tokens an EOS id:
  // a copy of the model directory whose generation_config.json lists eos_token_id [2, 432].
  const dir = await mkdtemp(join(tmpdir(), 'engine-eos-'));
  try {
    await cp(MODEL_DIR, dir, { recursive: true });
    const gc = JSON.parse(await readFile(join(dir, 'generation_config.json'), 'utf8'));
    await writeFile(join(dir, 'generation_config.json'), JSON.stringify({ ...gc, eos_token_id: [2, golden.generated_ids[4]] }));
    const e = await Engine.create({ modelDir: dir, threads: 1 });
    try {
      const r = await collect(e.generate({ prompt: [1], maxTokens: 50, temperature: 0, returnTokenIds: true }));
      assert.equal(r.done.finishReason, 'stop');
      assert.deepEqual(r.done.tokenIds, golden.generated_ids.slice(0, 4));
      assert.equal(r.done.completionTokens, 4);
      assert.equal(r.text, 'Once upon a time');
      assert.notEqual(e.model.digest, engine.model.digest, 'a changed file changes the digest');
    } finally {
      await e.close();
    }
  } finally {
    await rm(dir, { recursive: true, force: true });
  }
});

test('context length: refused before any work with context_length_exceeded', () => {
  const before = engine.stats();
  const long = Array.from({ length: 512 }, () => 300);
  assertCode(() => engine.generate({ prompt: long, maxTokens: 1 }), 'context_length_exceeded');
  assertCode(() => engine.generate({ prompt: Array.from({ length: 500 }, () => 300), maxTokens: 13 }), 'context_length_exceeded');
  assertCode(() => engine.generate({ prompt: 'word '.repeat(600) }), 'context_length_exceeded');
  try {
    engine.generate({ prompt: long, maxTokens: 1 });
  } catch (e) {
    assert.match((e as Error).message, /512/);
  }
  const afterStats = engine.stats();
  assert.equal(afterStats.queued, before.queued);
  assert.equal(afterStats.steps, before.steps);
});

test('a prompt that exactly fills the context with max_tokens runs to the limit', async () => {
  const prompt = [1, ...Array.from({ length: 499 }, (_, i) => 300 + (i % 100))];
  const r = await gen({ prompt, maxTokens: 12, temperature: 0 });
  assert.equal(r.done.promptTokens + r.done.completionTokens <= 512, true);
  // Without maxTokens the rest of the context is the limit.
  const r2 = await gen({ prompt, temperature: 0 });
  assert.ok(r2.done.completionTokens <= 12);
});

test('invalid requests are refused with invalid_request', () => {
  const bad: unknown[] = [
    { prompt: [], maxTokens: 5 },
    { prompt: [1, 99999], maxTokens: 5 },
    { prompt: [1, -1], maxTokens: 5 },
    { prompt: [1, 1.5], maxTokens: 5 },
    { prompt: 42 },
    { prompt: 'a', maxTokens: 0 },
    { prompt: 'a', maxTokens: 2.5 },
    { prompt: 'a', temperature: -1 },
    { prompt: 'a', temperature: Number.NaN },
    { prompt: 'a', topP: 0 },
    { prompt: 'a', topP: 1.5 },
    { prompt: 'a', topK: -3 },
    { prompt: 'a', seed: 0.5 },
    { prompt: 'a', stop: 'x' },
    { prompt: 'a', stop: ['a', 'b', 'c', 'd', 'e'] },
    { prompt: 'a', stop: [''] },
    { prompt: 'a', stop: ['\ud800'] },
    { prompt: 'bad \udc00 surrogate' },
  ];
  for (const req of bad) {
    assert.throws(() => engine.generate(req as GenerateRequest), (e: unknown) => e instanceof EngineError && e.code === 'invalid_request', JSON.stringify(req));
  }
});

test('an empty text prompt is BOS alone', async () => {
  const r = await gen({ prompt: '', maxTokens: 12, temperature: 0, returnTokenIds: true });
  assert.equal(r.done.promptTokens, 1);
  assert.deepEqual(r.done.tokenIds, golden.generated_ids.slice(0, 12));
});

test('abort via AbortSignal: the stream throws cancelled and the slot and cache are freed at once', async () => {
  const ac = new AbortController();
  let n = 0;
  await assert.rejects(
    (async () => {
      for await (const ev of engine.generate({ prompt: [1], maxTokens: 300, temperature: 0 }, ac.signal)) {
        if (ev.type === 'delta' && ++n === 3) {
          ac.abort();
          const s = engine.stats();
          assert.equal(s.active, 0);
          assert.equal(s.cachedSequences, 0);
        }
      }
    })(),
    (e: unknown) => e instanceof EngineError && e.code === 'cancelled',
  );
  assertCode(() => engine.generate({ prompt: 'x', maxTokens: 2 }, ac.signal), 'cancelled');
});

test('leaving the loop early (iterator return) cancels and frees the slot at once', async () => {
  const steps0 = engine.stats().steps;
  for await (const ev of engine.generate({ prompt: [1], maxTokens: 300, temperature: 0 })) {
    if (ev.type === 'delta') break;
  }
  assert.equal(engine.stats().active, 0);
  assert.equal(engine.stats().cachedSequences, 0);
  await new Promise((r) => setTimeout(r, 20));
  assert.ok(engine.stats().steps - steps0 < 50, 'the cancelled sequence does not keep decoding');
});

test('cancelling a queued request removes it from the queue; busy when the queue is full', async () => {
  const small = await Engine.create({ modelDir: MODEL_DIR, threads: 1, maxBatch: 1, maxQueue: 1 });
  try {
    const first = small.generate({ prompt: [1], maxTokens: 100, temperature: 0 });
    const ac = new AbortController();
    const second = small.generate({ prompt: [1], maxTokens: 5, temperature: 0 }, ac.signal);
    // The slot and the one queue place are taken now.
    assertCode(() => small.generate({ prompt: [1], maxTokens: 5 }), 'busy');
    const firstRun = collect(first);
    await new Promise((r) => setTimeout(r, 5));
    assert.equal(small.stats().queued, 1);
    ac.abort();
    assert.equal(small.stats().queued, 0);
    await assert.rejects(collect(second), (e: unknown) => e instanceof EngineError && e.code === 'cancelled');
    // A place is free again.
    const third = collect(small.generate({ prompt: [1], maxTokens: 3, temperature: 0 }));
    assert.equal((await firstRun).done.completionTokens, 100);
    assert.equal((await third).done.completionTokens, 3);
  } finally {
    await small.close();
  }
});

test('close fails running and queued requests with closed, then refuses new ones', async () => {
  const e2 = await Engine.create({ modelDir: MODEL_DIR, threads: 1, maxBatch: 1, maxQueue: 4 });
  // Handlers attached at once: the rejections arrive before the asserts below await them.
  const settle = (p: Promise<unknown>) => p.then(() => null, (e: unknown) => e);
  const running = settle(collect(e2.generate({ prompt: [1], maxTokens: 400, temperature: 0 })));
  const queued = settle(collect(e2.generate({ prompt: [1], maxTokens: 4, temperature: 0 })));
  await new Promise((r) => setTimeout(r, 10));
  await e2.close();
  for (const p of [running, queued]) {
    const e = await p;
    assert.ok(e instanceof EngineError && e.code === 'closed');
  }
  assertCode(() => e2.generate({ prompt: [1], maxTokens: 1 }), 'closed');
});

test('1,000 short sequences through the scheduler leave no cache behind', async () => {
  const words = ['Once', 'upon', 'a', 'time', 'Lily', 'cat', 'park', 'sun', 'ball', 'happy'];
  let s = 7;
  const rnd = (n: number) => ((s = (Math.imul(s, 1664525) + 1013904223) >>> 0) % n);
  const steps0 = engine.stats().steps;
  const runs: Promise<unknown>[] = [];
  let cancelled = 0;
  for (let i = 0; i < 1000; i++) {
    const prompt = Array.from({ length: 1 + rnd(8) }, () => words[rnd(words.length)]).join(' ');
    const req = { prompt, maxTokens: 1 + rnd(4), temperature: rnd(2) === 0 ? 0 : 0.8, seed: i, stop: rnd(5) === 0 ? ['.'] : undefined };
    if (i % 50 === 7) {
      // Some leave early, mid-stream or before starting.
      const ac = new AbortController();
      runs.push(gen(req, ac.signal).catch((e) => { assert.equal(e.code, 'cancelled'); cancelled++; }));
      setTimeout(() => ac.abort(), rnd(3));
    } else runs.push(gen(req));
  }
  const mid = engine.stats();
  assert.ok(mid.queued + mid.active > 0);
  assert.ok(mid.active <= 16, 'never more than maxBatch sequences decode together');
  await Promise.all(runs);
  await settled();
  const end = engine.stats();
  assert.equal(end.active, 0);
  assert.equal(end.queued, 0);
  assert.equal(end.cachedSequences, 0);
  assert.ok(end.steps - steps0 < 1000 * 2, 'decoded in batches');
  // The engine still works after all that.
  const r = await gen({ prompt: [1], maxTokens: 10, temperature: 0, returnTokenIds: true });
  assert.deepEqual(r.done.tokenIds, golden.generated_ids.slice(0, 10));
});

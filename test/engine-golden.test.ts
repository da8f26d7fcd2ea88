// Greedy decoding of stories260K from BOS must reproduce llama2.c's published
// 200-token sample exactly (ids and text), alone and batched with others.
import { test, before, after } from 'node:test';
import assert from 'node:assert/strict';
import { readFileSync } from 'node:fs';
import { Engine } from '../engine/index.js';
import { Rng } from '../engine/sampler.js';
import { collect } from './fixtures/engine/collect.js';

const golden = JSON.parse(readFileSync(new URL('./fixtures/stories260K-golden-greedy-200.json', import.meta.url), 'utf8')) as {
  prompt_ids: number[];
  generated_ids: number[];
  text: string;
};
const MODEL_DIR = new URL('../models/stories260K', import.meta.url).pathname;

let engine: Engine;
let plain: Engine;
before(async () => {
  engine = await Engine.create({ modelDir: MODEL_DIR, threads: 1, maxBatch: 16 });
  plain = await Engine.create({ modelDir: MODEL_DIR, threads: 1, maxBatch: 16, fastDecode: false });
});
after(async () => {
  await engine.close();
  await plain.close();
});


const goldenRequest = () => ({ prompt: golden.prompt_ids, maxTokens: 200, temperature: 0, returnTokenIds: true });

test('the bundled model decodes in slot mode; fastDecode: false gives plain mode', () => {
  assert.equal(engine.decodeMode, 'slot');
  assert.equal(plain.decodeMode, 'plain');
  assert.equal(plain.model.digest, engine.model.digest, 'the digest is of the files, not of the decode mode');
});

for (const mode of ['slot', 'plain'] as const) {
const pick = () => (mode === 'slot' ? engine : plain);

test(`[${mode}] greedy 200 tokens from BOS reproduce the golden ids and text`, async () => {
  const engine = pick();
  assert.deepEqual(golden.prompt_ids, [1]);
  const { text, done } = await collect(engine.generate(goldenRequest()));
  assert.deepEqual(done.tokenIds, golden.generated_ids);
  assert.equal(text, golden.text);
  assert.equal(done.finishReason, 'length');
  assert.equal(done.promptTokens, 1);
  assert.equal(done.completionTokens, 200);
});

test(`[${mode}] the same golden output while 7 other sequences with random prompts are batched beside it`, async () => {
  const engine = pick();
  const rng = new Rng(20261126);
  const words = ['Once', 'the', 'cat', 'a', 'little', 'dog', 'ran', 'to', 'park', 'happy', 'Tom', 'said', 'big', 'tree', 'sun'];
  const randomPrompt = () => {
    const n = 1 + Math.floor(rng.nextFloat() * 40);
    return Array.from({ length: n }, () => words[Math.floor(rng.nextFloat() * words.length)]).join(' ');
  };
  const before = engine.stats().steps;
  const other = (i: number) =>
    collect(engine.generate({ prompt: randomPrompt(), maxTokens: 60 + 40 * i, temperature: 0.9, seed: i }));
  // Four start with the golden sequence; three more join while it runs (re-packing the batch
  // under it), and the others finish at different times (rows leave under it).
  const first = [other(0), other(1)];
  const goldenRun = collect(engine.generate(goldenRequest()));
  first.push(other(2), other(3));
  await new Promise((r) => setTimeout(r, 15));
  const later = [other(4), other(5), other(6)];
  const { text, done } = await goldenRun;
  await Promise.all([...first, ...later]);
  assert.deepEqual(done.tokenIds, golden.generated_ids);
  assert.equal(text, golden.text);
  const s = engine.stats();
  // Batched: far fewer decode steps than the 200 + 7 * (60..300) tokens generated, and rows joined/left.
  assert.ok(s.steps - before < 400, `expected batched decode, got ${s.steps - before} steps`);
  assert.ok(s.repacks >= 3);
  assert.equal(s.cachedSequences, 0);
  assert.equal(s.active, 0);
});
}

test('a prompt prefilled in one run or in small chunks continues the golden text the same way', async () => {
  // Greedy from BOS is the golden sequence, so greedy after its first 60 tokens must be its next 40.
  const prompt = [1, ...golden.generated_ids.slice(0, 60)];
  const expected = golden.generated_ids.slice(60, 100);
  const whole = await collect(engine.generate({ prompt, maxTokens: 40, temperature: 0, returnTokenIds: true }));
  assert.deepEqual(whole.done.tokenIds, expected);
  const chunked = await Engine.create({ modelDir: MODEL_DIR, threads: 1, prefillChunk: 7 });
  try {
    const r = await collect(chunked.generate({ prompt, maxTokens: 40, temperature: 0, returnTokenIds: true }));
    assert.deepEqual(r.done.tokenIds, expected);
    assert.equal(r.text, whole.text);
  } finally {
    await chunked.close();
  }
});

test('a long prompt is prefilled in pieces between decode steps of the running batch, changing no output', async () => {
  const e = await Engine.create({ modelDir: MODEL_DIR, threads: 1, prefillBudget: 16, prefillChunk: 8 });
  try {
    const longPrompt = [1, ...golden.generated_ids.slice(0, 150)];
    const running = collect(e.generate(goldenRequest()));
    // Let the golden sequence get going, then bring in the long prompt.
    await new Promise((r) => setTimeout(r, 5));
    const stepsBefore = e.stats().steps;
    const long = await collect(e.generate({ prompt: longPrompt, maxTokens: 30, temperature: 0, returnTokenIds: true }));
    const stepsDuring = e.stats().steps - stepsBefore;
    const g = await running;
    assert.deepEqual(g.done.tokenIds, golden.generated_ids);
    assert.equal(g.text, golden.text);
    assert.deepEqual(long.done.tokenIds, golden.generated_ids.slice(150, 180));
    // 151 prompt tokens at 16 per iteration: at least 9 decode steps ran while it was prefilled, plus its own 29.
    assert.ok(stepsDuring >= 29 + 9, `steps while the long prompt ran: ${stepsDuring}`);
  } finally {
    await e.close();
  }
});

test('prompts arriving together are prefilled in one run, and each continues exactly as it does alone', async () => {
  // Five prompts of different lengths (suffixes of the golden text after BOS), submitted in one tick.
  const cuts = [3, 17, 40, 9, 25];
  const requests = cuts.map((n) => ({ prompt: [1, ...golden.generated_ids.slice(0, n)], maxTokens: 20, temperature: 0, returnTokenIds: true }));
  const before = engine.stats().prefills;
  const together = await Promise.all(requests.map((r) => collect(engine.generate(r))));
  const runs = engine.stats().prefills - before;
  assert.ok(runs < cuts.length, `${cuts.length} prompts took ${runs} prefill runs`);
  cuts.forEach((n, i) => {
    // Greedy from a prefix of the golden sample continues the golden sample.
    assert.deepEqual(together[i]!.done.tokenIds, golden.generated_ids.slice(n, n + 20), `prompt of ${n + 1} tokens`);
  });
  // And the same requests one at a time (one prefill run each) give the same text.
  for (const [i, r] of requests.entries()) {
    const alone = await collect(engine.generate(r));
    assert.equal(alone.text, together[i]!.text);
  }
});

test('requests that start as others end take the rows they leave, and every output stays exact', async () => {
  // Greedy from a prefix of the golden sample continues the golden sample, so every request's
  // tokens are known. Beside the 200-token golden request, three short ones; as each ends, the
  // next starts and is seated in the slot row it left (no re-pack of the others).
  const before = engine.stats();
  const from = (n: number, maxTokens: number) =>
    collect(engine.generate({ prompt: [1, ...golden.generated_ids.slice(0, n)], maxTokens, temperature: 0, returnTokenIds: true }));
  const goldenRun = collect(engine.generate(goldenRequest()));
  const chains = [[5, 12, 20], [9, 25, 27], [14, 40, 34]].map(async ([n, max, next]) => {
    const first = await from(n!, max!);
    assert.deepEqual(first.done.tokenIds, golden.generated_ids.slice(n!, n! + max!), `prompt of ${n! + 1}`);
    const second = await from(next!, 30);
    assert.deepEqual(second.done.tokenIds, golden.generated_ids.slice(next!, next! + 30), `prompt of ${next! + 1}`);
  });
  const { done, text } = await goldenRun;
  await Promise.all(chains);
  assert.deepEqual(done.tokenIds, golden.generated_ids);
  assert.equal(text, golden.text);
  const after = engine.stats();
  assert.ok(after.seats > before.seats, `newcomers seated: ${after.seats - before.seats}`)
  assert.ok(after.grows > before.grows, 'rows widened in place as the golden row grew');
  assert.equal(after.cachedSequences, 0);
});

test('a prompt cancelled while its group is prefilled leaves the others untouched', async () => {
  const ac = new AbortController();
  const others = [5, 30].map((n) => collect(engine.generate({ prompt: [1, ...golden.generated_ids.slice(0, n)], maxTokens: 10, temperature: 0, returnTokenIds: true })));
  const cancelled = collect(engine.generate({ prompt: [1, ...golden.generated_ids.slice(0, 12)], maxTokens: 10, temperature: 0 }, ac.signal));
  ac.abort();
  await assert.rejects(cancelled, (e: unknown) => (e as { code?: string }).code === 'cancelled');
  const [a, b] = await Promise.all(others);
  assert.deepEqual(a!.done.tokenIds, golden.generated_ids.slice(5, 15));
  assert.deepEqual(b!.done.tokenIds, golden.generated_ids.slice(30, 40));
  assert.equal(engine.stats().cachedSequences, 0, 'no cache kept for anyone once all ended');
});

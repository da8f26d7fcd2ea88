// 50 clients at once, each with its own attested session, each streaming a chat completion
// over chunked OHTTP: every stream completes, and each output is exactly the greedy output of
// its own prompt run alone (no mixing between sessions, batching changes nothing).
import assert from 'node:assert/strict';
import { after, before, test } from 'node:test';
import { createProvider, type EvidenceProvider } from '../enclave/providers/index.js';
import { Engine } from '../engine/index.js';
import { startServer, type RunningServer } from '../server/lifecycle.js';
import { resolveLimits } from '../server/limits.js';
import { attest, bindingHolds, sendChunked, sseData, streamedText } from './fixtures/server/client.js';

const MODEL_DIR = new URL('../models/stories260K', import.meta.url).pathname;
const N = 50;
const MAX_TOKENS = 32;
const NAMES = [
  'Tim', 'Sue', 'Max', 'Lily', 'Ben', 'Anna', 'Tom', 'Mia', 'Sam', 'Zoe', 'Jack', 'Lucy', 'Bob', 'Sara', 'Joe',
  'Amy', 'Dan', 'Kim', 'Leo', 'Eva',
];
const THINGS = ['red ball', 'big dog', 'small cat', 'blue car', 'old tree', 'new hat', 'shiny toy', 'little bird'];

let engine: Engine;
let provider: EvidenceProvider;
let server: RunningServer;

before(async () => {
  engine = await Engine.create({ modelDir: MODEL_DIR, threads: 1 });
  provider = await createProvider('simulated', { simulation: { modelDigest: engine.model.digest } });
  server = await startServer({ engine, provider, limits: resolveLimits({ attestationBurst: 100 }), host: '127.0.0.1', port: 0 });
});

after(async () => {
  await server.close();
  provider.close?.();
  await engine.close();
});

test(`${N} concurrent streamed sessions give the outputs of their prompts run alone`, async () => {
  const prompts = Array.from({ length: N }, (_, i) => `${NAMES[i % NAMES.length]} found a ${THINGS[(i * 7) % THINGS.length]} on day ${i}`);
  const alone: string[] = [];
  for (const p of prompts) {
    let text = '';
    for await (const ev of engine.generate({ prompt: engine.chatPrompt([{ role: 'user', content: p }]), maxTokens: MAX_TOKENS, temperature: 0 })) {
      if (ev.type === 'delta') text += ev.text;
    }
    alone.push(text);
  }
  assert.ok(new Set(alone).size > N / 2, 'the prompts lead to different outputs, so a mix-up would show');

  const t0 = performance.now();
  const results = await Promise.all(
    prompts.map(async (content) => {
      const a = await attest(server.url);
      assert.ok(bindingHolds(a));
      const { outer, inner } = await sendChunked(server.url, a, {
        method: 'POST',
        path: '/v1/chat/completions',
        json: { model: 'stories260K', messages: [{ role: 'user', content }], max_tokens: MAX_TOKENS, temperature: 0, stream: true },
      });
      assert.equal(outer.status, 200);
      return { sid: a.sid, publicKey: Buffer.from(a.config.publicKey).toString('hex'), inner: inner! };
    }),
  );
  const seconds = (performance.now() - t0) / 1000;
  assert.equal(new Set(results.map((r) => r.publicKey)).size, N, 'one key pair per session');
  results.forEach((r, i) => {
    assert.equal(r.inner.status, 200);
    assert.equal(r.inner.complete, true, `stream ${i} complete`);
    const events = sseData(r.inner.text);
    assert.equal(events.at(-1), '[DONE]');
    assert.equal(streamedText(events), alone[i], `stream ${i} equals its prompt run alone`);
  });
  assert.equal(server.runtime.tracker.size, 0);
  assert.equal(engine.stats().active, 0);
  process.stdout.write(`# ${N} sessions: attest + stream ${MAX_TOKENS} tokens each in ${seconds.toFixed(2)} s\n`);
});

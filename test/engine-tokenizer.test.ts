// Tokenizer and chat template on @huggingface/tokenizers and @huggingface/jinja, from the
// bytes the loader hashed: local only, nothing written, and token for token what
// transformers.js (a development dependency here, for this comparison and the bench) produces.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { readFileSync, readdirSync, statSync } from 'node:fs';
import { join } from 'node:path';
import { PreTrainedTokenizer } from '@huggingface/transformers';
import { createTokenizer, longestTokenLength, normalizeMessages } from '../engine/tokenizer.js';
import { Engine, EngineError } from '../engine/index.js';

const MODEL_DIR = new URL('../models/stories260K', import.meta.url).pathname;
const tokenizerJson = JSON.parse(readFileSync(join(MODEL_DIR, 'tokenizer.json'), 'utf8'));
const tokenizerConfig = JSON.parse(readFileSync(join(MODEL_DIR, 'tokenizer_config.json'), 'utf8'));

test('encodes like llama2.c (BOS, "▁" prefix, byte fallback) and round-trips', () => {
  const tok = createTokenizer(tokenizerJson, tokenizerConfig);
  // From the golden sample: "Once upon a time," is 403 407 261 378 432 after BOS.
  assert.deepEqual(tok.encode('Once upon a time,'), [1, 403, 407, 261, 378, 432]);
  assert.deepEqual(tok.encode('Once upon a time,', false), [403, 407, 261, 378, 432]);
  for (const s of ['héllo wörld 😀', 'Lily said, "Hi!"\nThe end.', '日本語']) {
    assert.equal(tok.decode(tok.encode(s)), s);
  }
});

test('no chat template: the documented plain fallback (messages joined by newlines, after BOS)', () => {
  const tok = createTokenizer(tokenizerJson, tokenizerConfig);
  assert.equal(tok.hasChatTemplate, false);
  const ids = tok.chatPrompt([
    { role: 'system', content: 'Be kind.' },
    { role: 'user', content: [{ type: 'text', text: 'Once upon ' }, { type: 'text', text: 'a time' }] },
  ]);
  assert.deepEqual(ids, tok.encode('Be kind.\nOnce upon a time'));
});

test('a chat template in tokenizer_config.json is applied with the generation prompt; BOS appears once', () => {
  const template =
    "{{ bos_token }}{% for m in messages %}{{ m['role'] }}: {{ m['content'] }}\n{% endfor %}{% if add_generation_prompt %}assistant:{% endif %}";
  const tok = createTokenizer(tokenizerJson, { ...tokenizerConfig, chat_template: template });
  assert.equal(tok.hasChatTemplate, true);
  const ids = tok.chatPrompt([
    { role: 'system', content: 'Tell a story.' },
    { role: 'user', content: 'A cat' },
  ]);
  assert.deepEqual(ids, tok.encode('system: Tell a story.\nuser: A cat\nassistant:'));
  assert.equal(ids.filter((i) => i === 1).length, 1);
  // A template that raises (here: on a role it does not accept) is an invalid request, not a crash.
  const strict = createTokenizer(tokenizerJson, {
    ...tokenizerConfig,
    chat_template: "{% for m in messages %}{% if m['role'] == 'system' %}{{ raise_exception('no system') }}{% endif %}{{ m['content'] }}{% endfor %}",
  });
  assert.throws(() => strict.chatPrompt([{ role: 'system', content: 'x' }]), (e: unknown) => e instanceof EngineError && e.code === 'invalid_request');
});

test('longestTokenLength reads BPE (object) and Unigram (array) vocabularies and added tokens', () => {
  assert.equal(longestTokenLength(tokenizerJson), 7);
  assert.equal(longestTokenLength({ model: { vocab: { a: 0, abcdef: 1 } } }), 6);
  assert.equal(longestTokenLength({ model: { vocab: [['▁hello', -1], ['x', -2]] } }), 6);
  assert.equal(longestTokenLength({ model: { vocab: { a: 0 } }, added_tokens: [{ content: '<|endoftext|>' }] }), 13);
  assert.equal(longestTokenLength({}), 64);
});

test('a text that cannot fit the context whatever it tokenizes to is refused by its length, before tokenizing', () => {
  const tok = createTokenizer(tokenizerJson, tokenizerConfig, 512, 16);
  // 16 tokens of at most 7 characters, with the normalization slack of 4: 448 characters at most.
  assert.equal(tok.encode('a'.repeat(448), false).length > 16, true); // still tokenized: the bound is only a bound
  for (const call of [
    () => tok.encode('a'.repeat(449)),
    () => tok.chatPrompt([{ role: 'user', content: 'b'.repeat(300) }, { role: 'user', content: 'c'.repeat(149) }]),
  ]) {
    assert.throws(call, (e: unknown) => e instanceof EngineError && e.code === 'context_length_exceeded');
  }
});

test('malformed messages are invalid_request', () => {
  const bad: unknown[] = [
    [],
    'hello',
    [{ role: 'wizard', content: 'x' }],
    [{ role: 'user' }],
    [{ role: 'user', content: [{ type: 'image_url', image_url: 'x' }] }],
    [{ role: 'user', content: 'lone \ud800' }],
    [null],
  ];
  for (const m of bad) {
    assert.throws(() => normalizeMessages(m), (e: unknown) => e instanceof EngineError && e.code === 'invalid_request');
  }
});

function snapshot(dir: string): string[] {
  const out: string[] = [];
  const walk = (d: string) => {
    for (const name of readdirSync(d)) {
      const p = join(d, name);
      const st = statSync(p);
      if (st.isDirectory()) walk(p);
      else out.push(`${p} ${st.size} ${st.mtimeMs}`);
    }
  };
  walk(dir);
  return out.sort();
}

test('loading and running the engine writes no file (model dir, working directory) and fetches nothing', async () => {
  const cwdBefore = readdirSync(process.cwd()).sort();
  const modelBefore = snapshot(MODEL_DIR);
  const realFetch = globalThis.fetch;
  let fetched = 0;
  globalThis.fetch = (async () => {
    fetched++;
    throw new Error('no network');
  }) as typeof fetch;
  try {
    const engine = await Engine.create({ modelDir: MODEL_DIR, threads: 1 });
    for await (const ev of engine.generate({ prompt: engine.chatPrompt([{ role: 'user', content: 'Hi' }]), maxTokens: 5 })) void ev;
    await engine.close();
  } finally {
    globalThis.fetch = realFetch;
  }
  assert.equal(fetched, 0);
  assert.deepEqual(snapshot(MODEL_DIR), modelBefore);
  assert.deepEqual(readdirSync(process.cwd()).sort(), cwdBefore);
});

test('encode, decode and chat templates agree with transformers.js\' PreTrainedTokenizer', () => {
  const template =
    "{{ bos_token }}{% for m in messages %}<|{{ m['role'] }}|>{{ m['content'] }}{{ eos_token }}{% endfor %}{% if add_generation_prompt %}<|assistant|>{% endif %}";
  const config = { ...tokenizerConfig, chat_template: template };
  const ours = createTokenizer(tokenizerJson, config);
  const theirs = new PreTrainedTokenizer(tokenizerJson, config);
  const texts = ['Once upon a time,', ' leading space', 'héllo wörld 😀', 'Lily said, "Hi!"\nThe end.', '日本語', '', '  \t\n', '<s> literal </s>', 'a'.repeat(300)];
  for (const t of texts) {
    for (const special of [true, false]) {
      const ids = ours.encode(t, special);
      assert.deepEqual(ids, theirs.encode(t, { add_special_tokens: special }), JSON.stringify(t));
      if (ids.length > 0) assert.equal(ours.decode(ids), theirs.decode(ids, { skip_special_tokens: true }), JSON.stringify(t));
    }
  }
  const conversations = [
    [{ role: 'user' as const, content: 'Hi' }],
    [{ role: 'system' as const, content: 'Be brief.' }, { role: 'user' as const, content: 'A cat' }, { role: 'assistant' as const, content: 'sat.' }, { role: 'user' as const, content: 'And?' }],
  ];
  for (const c of conversations) {
    const rendered = theirs.apply_chat_template(c, { tokenize: false, add_generation_prompt: true }) as unknown as string;
    assert.deepEqual(ours.chatPrompt(c), theirs.encode(rendered, { add_special_tokens: false }));
  }
  // Decoding every single id (the streaming detokenizer's unit) agrees too.
  for (let id = 0; id < 512; id++) assert.equal(ours.decode([id]), theirs.decode([id], { skip_special_tokens: true }), String(id));
});

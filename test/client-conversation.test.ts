// Conversations that last, against the real server (the bundled model: 512 tokens of context).
// Without trimming, the third or fourth turn of a conversation would no longer fit and every later
// turn would be refused; here every turn is answered because the oldest turns are dropped. A
// refused request is shown as a refusal with the server's own message, and /new starts over.
import { test, before, after } from 'node:test';
import assert from 'node:assert/strict';
import { PassThrough } from 'node:stream';
import { SealedClient } from '../client/sdk.js';
import { Conversation, DEFAULT_MAX_TOKENS, parseContextError, refusalOf } from '../client/conversation.js';
import { runChat } from '../cli/commands/chat.js';
import { startRealServer, type RealServer } from './fixtures/client/server.js';
import { TURNS } from './fixtures/client/turns.js';

let server: RealServer;
before(async () => {
  server = await startRealServer();
});
after(async () => {
  await server?.close();
});


async function until(what: string, cond: () => boolean, ms = 60_000): Promise<void> {
  const end = Date.now() + ms;
  while (!cond()) {
    if (Date.now() > end) throw new Error(`timed out waiting for ${what}`);
    await new Promise((r) => setTimeout(r, 20));
  }
}
const count = (s: string, sub: string) => s.split(sub).length - 1;

test('sealed chat: a 10-turn conversation on stdin with the bundled model, every turn answered', { timeout: 240_000 }, async () => {
  const stdin = new PassThrough();
  let out = '';
  let err = '';
  const running = runChat(['--url', server.url, '--allow-simulation'], {
    stdin,
    stdout: { write: (s: string) => (out += s) },
    stderr: { write: (s: string) => (err += s) },
  });
  await until('the first prompt', () => count(err, '> ') >= 1);
  const answers: string[] = [];
  for (let i = 0; i < TURNS.length; i++) {
    const before = out.length;
    stdin.write(`${TURNS[i]}\n`);
    await until(`turn ${i + 1}`, () => count(err, '> ') >= i + 2);
    answers.push(out.slice(before));
  }
  stdin.end();
  assert.equal(await running, 0, err);
  assert.doesNotMatch(err, /(^|> )(error|refused):/m, 'no turn failed or was refused');
  assert.equal(answers.length, 10);
  for (const [i, a] of answers.entries()) assert.ok(a.trim().length > 0, `turn ${i + 1} answered`);
  // The history outgrew the context, so the oldest turns were dropped, and said so.
  assert.match(err, /(^|> )sealed: dropped the \d+ oldest messages to stay within the model's context$/m);
});

test('Conversation: default max_tokens, trimming to the learned context, and every answer in the history', { timeout: 240_000 }, async () => {
  const client = await SealedClient.connect(server.url, { allowSimulation: true });
  const conv = new Conversation(client, { temperature: 0 });
  assert.equal(conv.maxTokens(), DEFAULT_MAX_TOKENS);
  let dropped = 0;
  for (const t of TURNS) {
    let streamed = '';
    const r = await conv.send(t, (d) => (streamed += d));
    assert.equal(r.text, streamed);
    dropped += r.dropped;
    const last = conv.messages.at(-1)!;
    assert.deepEqual(last, { role: 'assistant', content: r.text });
    assert.equal(conv.messages.at(-2)!.content, t);
  }
  assert.ok(dropped > 0, 'old turns were dropped');
  // Once the server named its context (512), max_tokens is held to a quarter of it.
  assert.ok(conv.maxTokens() <= 128);
  assert.ok(conv.messages.length < 2 * TURNS.length);
  conv.reset();
  assert.deepEqual(conv.messages, []);
});

test('a refused request is a refusal with the server\'s message; the conversation carries on and /new starts over', { timeout: 120_000 }, async () => {
  const stdin = new PassThrough();
  let err = '';
  let out = '';
  const running = runChat(['--url', server.url, '--allow-simulation', '--max-tokens', '16'], {
    stdin,
    stdout: { write: (s: string) => (out += s) },
    stderr: { write: (s: string) => (err += s) },
  });
  await until('the first prompt', () => count(err, '> ') >= 1);
  // One message alone longer than the context: nothing to drop, so the server's refusal stands.
  stdin.write(`${'Once upon a time there was a big dog. '.repeat(80)}\n`);
  await until('the refusal', () => count(err, '> ') >= 2);
  assert.match(err, /(^|> )refused: This model's maximum context length is 512 tokens\. However, you requested \d+ tokens \(\d+ in the messages, 16 in the completion\)/m);
  assert.doesNotMatch(err, /cut off/);
  stdin.write('Once upon a time\n');
  await until('an answer after the refusal', () => count(err, '> ') >= 3);
  assert.ok(out.trim().length > 0);
  stdin.write('/new\n');
  await until('the new conversation', () => count(err, '> ') >= 4);
  assert.match(err, /(^|> )sealed: new conversation/m);
  stdin.end();
  assert.equal(await running, 0, err);
});

test('Conversation: a refused turn changes nothing, and a message alone too long drops no earlier turn', { timeout: 60_000 }, async () => {
  const client = await SealedClient.connect(server.url, { allowSimulation: true });
  const conv = new Conversation(client, { maxTokens: 16 });
  await conv.send('Once upon a time');
  const before = conv.messages;
  assert.equal(before.length, 2);
  const sent = server.ohttpRequests();
  await assert.rejects(conv.send('Once upon a time there was a big dog. '.repeat(80)), (e: unknown) => refusalOf(e)?.code === 'context_length_exceeded');
  assert.deepEqual(conv.messages, before, 'the history is as it was');
  assert.equal(server.ohttpRequests(), sent + 1, 'not sent again: dropping turns could not make it fit');
  const huge = new Conversation(client, { maxTokens: 600 });
  await assert.rejects(huge.send('Once'), (e: unknown) => /600 in the completion/.test(refusalOf(e)?.message ?? ''));
  assert.deepEqual(huge.messages, []);
  assert.throws(() => new Conversation(client, { maxTokens: 0 }), /maxTokens must be a positive integer/);
});

test('a one-shot prompt the server refuses: exit 1 and "refused:" with its message', async () => {
  let err = '';
  const code = await runChat(['--url', server.url, '--allow-simulation', '--max-tokens', '5000', 'Once upon a time'], {
    stdin: new PassThrough(),
    stdout: { write: () => true },
    stderr: { write: (s: string) => (err += s) },
  });
  assert.equal(code, 1);
  assert.match(err, /^refused: max_tokens is too large: this server allows at most 1024\.$/m);
});

test('parseContextError and refusalOf read only what the server said', () => {
  assert.deepEqual(
    parseContextError("This model's maximum context length is 512 tokens. However, you requested 600 tokens (472 in the messages, 128 in the completion). Please reduce the length of the messages or the completion."),
    { contextLength: 512, promptTokens: 472 },
  );
  assert.deepEqual(parseContextError("This model's maximum context length is 512 tokens. However, your prompt resulted in 512 tokens, which leaves no room for a completion."), { contextLength: 512, promptTokens: 512 });
  assert.equal(parseContextError('The prompt and max_tokens together exceed the model context length.'), undefined);
  assert.equal(refusalOf(new Error('x')), undefined);
});

// OpenAI compatibility as users meet it, end to end: the official `openai` package, unmodified,
// against the proxy `sealed proxy` runs, in front of the real server (engine + simulated SEV-SNP).
// What the SDK and ordinary tools send (store, metadata, user, response_format text, stream
// usage) works; models.retrieve answers; what cannot be honoured is refused, naming the field.
import { test, before, after } from 'node:test';
import assert from 'node:assert/strict';
import OpenAI from 'openai';
import { SealedClient } from '../client/sdk.js';
import { startProxy, type RunningProxy } from '../client/proxy.js';
import { startRealServer, type RealServer } from './fixtures/client/server.js';

let server: RealServer;
let proxy: RunningProxy;
let openai: OpenAI;

before(async () => {
  server = await startRealServer();
  const client = await SealedClient.connect(server.url, { allowSimulation: true, policy: { modelDigest: server.modelDigest } });
  proxy = await startProxy({ client, host: '127.0.0.1', port: 0 });
  openai = new OpenAI({ baseURL: `${proxy.url}/v1`, apiKey: 'not-used-by-the-proxy', maxRetries: 0, timeout: 30_000 });
});
after(async () => {
  await proxy?.close();
  await server?.close();
});

const messages = [{ role: 'user' as const, content: 'Once upon a time' }];

test('openai: models.retrieve answers the attested model, encrypted end to end', async () => {
  const sent = server.ohttpRequests();
  const m = await openai.models.retrieve(server.modelId);
  assert.equal(m.id, server.modelId);
  assert.equal(m.object, 'model');
  assert.equal(typeof m.created, 'number');
  assert.equal(typeof m.owned_by, 'string');
  assert.equal(server.ohttpRequests(), sent + 1, 'answered by the server, through the encryption');
});

test('openai: models.retrieve of another id is a 404 NotFoundError', async () => {
  await assert.rejects(openai.models.retrieve('gpt-4o'), (e: unknown) => e instanceof OpenAI.NotFoundError && e.status === 404);
});

test('openai: a chat request carrying store, metadata, user and response_format text succeeds and answers as without them', async () => {
  const base = { model: server.modelId, messages, max_tokens: 12, temperature: 0 };
  const plain = await openai.chat.completions.create(base);
  const r = await openai.chat.completions.create({
    ...base,
    store: false,
    metadata: { app: 'notes', request: '42' },
    user: 'user-1234',
    response_format: { type: 'text' },
    parallel_tool_calls: false,
    service_tier: 'auto',
    logit_bias: {},
    n: 1,
    frequency_penalty: 0,
    presence_penalty: 0,
  });
  assert.equal(r.object, 'chat.completion');
  assert.equal(r.choices[0].message.content, plain.choices[0].message.content);
  assert.ok(r.usage && r.usage.completion_tokens > 0 && r.usage.total_tokens === r.usage.prompt_tokens + r.usage.completion_tokens);
});

test('openai: a stream with include_usage ends with the usage chunk', async () => {
  const stream = await openai.chat.completions.create({
    model: server.modelId,
    messages,
    max_tokens: 10,
    temperature: 0,
    stream: true,
    stream_options: { include_usage: true },
  });
  let text = '';
  let usage: OpenAI.CompletionUsage | null | undefined;
  for await (const chunk of stream) {
    text += chunk.choices[0]?.delta?.content ?? '';
    if (chunk.usage) usage = chunk.usage;
  }
  assert.ok(text.length > 0);
  assert.ok(usage, 'a usage chunk arrived');
  assert.equal(usage.completion_tokens, 10);
  assert.equal(usage.total_tokens, usage.prompt_tokens + 10);
});

test('openai: tools and JSON mode are refused with a 400 naming the field', async () => {
  const cases: [Partial<OpenAI.ChatCompletionCreateParamsNonStreaming>, string][] = [
    [{ tools: [{ type: 'function', function: { name: 'get_weather', parameters: { type: 'object', properties: {} } } }] }, 'tools'],
    [{ response_format: { type: 'json_object' } }, 'response_format'],
    [{ n: 2 }, 'n'],
    [{ logprobs: true }, 'logprobs'],
  ];
  for (const [extra, field] of cases) {
    await assert.rejects(
      openai.chat.completions.create({ model: server.modelId, messages, max_tokens: 4, ...extra }),
      (e: unknown) => e instanceof OpenAI.BadRequestError && e.param === field,
      field,
    );
  }
});

// OpenAI compatibility as clients meet it, on the inner app (the code the gateway runs after
// decryption) with the real engine and bundled model: the parameters OpenAI's SDKs and tools send
// as a matter of course are accepted and change nothing; those asking for what this server cannot
// do are refused with `param` naming the field; GET /v1/models/{id}; usage wherever OpenAI has it.
import assert from 'node:assert/strict';
import { after, before, describe, test } from 'node:test';
import { Engine } from '../engine/index.js';
import { createInnerApp } from '../server/inner/app.js';

const MODEL_DIR = new URL('../models/stories260K', import.meta.url).pathname;

let engine: Engine;
let inner: ReturnType<typeof createInnerApp>;

before(async () => {
  engine = await Engine.create({ modelDir: MODEL_DIR, threads: 1 });
  inner = createInnerApp({ engine, limits: { maxBodyBytes: 64 * 1024, maxTokensCeiling: 200 } });
});

after(async () => {
  await engine.close();
});

const MARKER = `okapi-${crypto.randomUUID()}`;

async function call(method: string, path: string, body?: unknown): Promise<{ status: number; text: string; json: any }> {
  const res = await inner.fetch(
    new Request(`http://inner.invalid${path}`, {
      method,
      ...(body !== undefined && { headers: { 'content-type': 'application/json' }, body: JSON.stringify(body) }),
    }),
  );
  const text = await res.text();
  let json: unknown = null;
  try {
    json = JSON.parse(text);
  } catch {
    // an event stream
  }
  return { status: res.status, text, json };
}

const chat = (extra: Record<string, unknown> = {}) => ({
  model: 'stories260K',
  messages: [{ role: 'user', content: 'Once upon a time' }],
  max_tokens: 8,
  temperature: 0,
  ...extra,
});
const completion = (extra: Record<string, unknown> = {}) => ({ model: 'stories260K', prompt: 'Once upon a time', max_tokens: 8, temperature: 0, ...extra });

/** The SSE `data:` payloads of an event stream, [DONE] included as the string. */
const events = (text: string): unknown[] =>
  text
    .split('\n\n')
    .filter((e) => e.startsWith('data: '))
    .map((e) => e.slice(6))
    .map((d) => (d === '[DONE]' ? d : JSON.parse(d)));

describe('parameters that change nothing here are accepted and ignored', () => {
  const NEUTRAL: Record<string, unknown>[] = [
    { store: false },
    { store: null },
    { metadata: { project: 'demo', run: '7' } },
    { metadata: {} },
    { user: 'user-1234' },
    { safety_identifier: 'abc' },
    { prompt_cache_key: 'k' },
    { response_format: { type: 'text' } },
    { logit_bias: {} },
    { parallel_tool_calls: true },
    { parallel_tool_calls: false },
    { service_tier: 'auto' },
    { service_tier: 'default' },
    { stream_options: { include_usage: false } },
    { n: 1 },
    { frequency_penalty: 0, presence_penalty: 0 },
    { logprobs: false },
    { top_logprobs: 0 },
    { tools: [] },
    { tool_choice: 'none' },
    { tool_choice: 'auto' },
    { modalities: ['text'] },
    { audio: null, prediction: null, reasoning_effort: null, web_search_options: null, verbosity: null },
  ];

  test('each one alone, on chat completions, answers exactly what the request without it answers', async () => {
    const plain = await call('POST', '/v1/chat/completions', chat());
    assert.equal(plain.status, 200, plain.text);
    const expected = plain.json.choices[0].message.content;
    assert.ok(expected.length > 0);
    for (const extra of NEUTRAL) {
      const r = await call('POST', '/v1/chat/completions', chat(extra));
      assert.equal(r.status, 200, `${JSON.stringify(extra)}: ${r.text}`);
      assert.equal(r.json.choices[0].message.content, expected, JSON.stringify(extra));
      assert.deepEqual(r.json.usage, plain.json.usage);
    }
  });

  test('all of them at once, as an SDK that fills in defaults sends them', async () => {
    const all = Object.assign({}, ...NEUTRAL.filter((e) => !('tool_choice' in e && e.tool_choice === 'none')));
    const r = await call('POST', '/v1/chat/completions', chat(all));
    assert.equal(r.status, 200, r.text);
    assert.equal(r.json.object, 'chat.completion');
  });

  test('completions accept the legacy endpoint\'s neutral values', async () => {
    const plain = await call('POST', '/v1/completions', completion());
    assert.equal(plain.status, 200, plain.text);
    for (const extra of [{ user: 'u' }, { logit_bias: {} }, { n: 1 }, { best_of: 1 }, { echo: false }, { suffix: '' }, { presence_penalty: 0 }, { stream_options: null }]) {
      const r = await call('POST', '/v1/completions', completion(extra));
      assert.equal(r.status, 200, `${JSON.stringify(extra)}: ${r.text}`);
      assert.equal(r.json.choices[0].text, plain.json.choices[0].text);
    }
  });
});

describe('what this server cannot honour is refused, naming the field', () => {
  const REFUSED: [Record<string, unknown>, string][] = [
    [{ tools: [{ type: 'function', function: { name: 'get_weather', parameters: {} } }] }, 'tools'],
    [{ functions: [{ name: 'f', parameters: {} }] }, 'functions'],
    [{ tool_choice: 'required' }, 'tool_choice'],
    [{ tool_choice: { type: 'function', function: { name: 'f' } } }, 'tool_choice'],
    [{ function_call: { name: 'f' } }, 'function_call'],
    [{ response_format: { type: 'json_object' } }, 'response_format'],
    [{ response_format: { type: 'json_schema', json_schema: { name: 'x', schema: {} } } }, 'response_format'],
    [{ n: 2 }, 'n'],
    [{ logit_bias: { '50256': -100 } }, 'logit_bias'],
    [{ logprobs: true }, 'logprobs'],
    [{ top_logprobs: 3 }, 'top_logprobs'],
    [{ frequency_penalty: 0.5 }, 'frequency_penalty'],
    [{ presence_penalty: -1 }, 'presence_penalty'],
    [{ store: true }, 'store'],
    [{ modalities: ['text', 'audio'] }, 'modalities'],
    [{ audio: { voice: 'alloy', format: 'wav' } }, 'audio'],
    [{ prediction: { type: 'content', content: 'x' } }, 'prediction'],
    [{ reasoning_effort: 'low' }, 'reasoning_effort'],
    [{ web_search_options: {} }, 'web_search_options'],
    [{ verbosity: 'low' }, 'verbosity'],
    [{ service_tier: MARKER }, 'service_tier'],
    [{ metadata: { k: 5 } }, 'metadata'],
  ];

  test('chat completions: 400, OpenAI error JSON, param is the field, nothing generated', async () => {
    for (const [extra, field] of REFUSED) {
      const before = engine.stats();
      const r = await call('POST', '/v1/chat/completions', chat(extra));
      assert.equal(r.status, 400, JSON.stringify(extra));
      assert.deepEqual(Object.keys(r.json.error).sort(), ['code', 'message', 'param', 'type']);
      assert.equal(r.json.error.type, 'invalid_request_error');
      assert.equal(r.json.error.param, field, JSON.stringify(extra));
      assert.equal(r.json.error.code, 'invalid_value');
      assert.match(r.json.error.message, new RegExp(`^Invalid value for '${field}': `));
      assert.ok(!r.text.includes(MARKER), 'no request content echoed');
      assert.deepEqual(engine.stats(), before);
    }
  });

  test('the refusal says why in a fixed sentence', async () => {
    const tools = await call('POST', '/v1/chat/completions', chat({ tools: [{ type: 'function', function: { name: 'f' } }] }));
    assert.match(tools.json.error.message, /tools and functions are not supported by this server/);
    const json = await call('POST', '/v1/chat/completions', chat({ response_format: { type: 'json_object' } }));
    assert.match(json.json.error.message, /only \{"type": "text"\} is supported/);
    const n = await call('POST', '/v1/chat/completions', chat({ n: 3 }));
    assert.match(n.json.error.message, /only 1 choice/);
  });

  test('completions: several choices, token biases and penalties are refused the same way', async () => {
    for (const [extra, field] of [[{ n: 2 }, 'n'], [{ logit_bias: { '1': 5 } }, 'logit_bias'], [{ best_of: 2 }, 'best_of'], [{ frequency_penalty: 1 }, 'frequency_penalty']] as const) {
      const r = await call('POST', '/v1/completions', completion(extra));
      assert.equal(r.status, 400, JSON.stringify(extra));
      assert.equal(r.json.error.param, field);
    }
  });

  test('a key OpenAI does not define is unknown_parameter, without echoing the key', async () => {
    const r = await call('POST', '/v1/chat/completions', chat({ [MARKER]: true }));
    assert.equal(r.status, 400);
    assert.equal(r.json.error.code, 'unknown_parameter');
    assert.equal(r.json.error.param, null);
    assert.ok(!r.text.includes(MARKER));
  });
});

describe('GET /v1/models/{id}', () => {
  test('the served id: 200 with OpenAI\'s model object, the same one the list holds', async () => {
    const one = await call('GET', '/v1/models/stories260K');
    assert.equal(one.status, 200);
    assert.deepEqual(Object.keys(one.json).sort(), ['context_length', 'created', 'id', 'object', 'owned_by']);
    assert.equal(one.json.id, 'stories260K');
    assert.equal(one.json.context_length, 512, 'the model\'s context, for clients that keep a conversation inside it');
    assert.equal(one.json.object, 'model');
    assert.equal(typeof one.json.created, 'number');
    const list = await call('GET', '/v1/models');
    assert.deepEqual(list.json.data, [one.json]);
  });

  test('any other id: 404 model_not_found in OpenAI\'s error shape, the id not echoed', async () => {
    for (const id of [MARKER, 'stories260k', 'stories260K2', 'org/stories260K', encodeURIComponent('stories260K ')]) {
      const r = await call('GET', `/v1/models/${id}`);
      assert.equal(r.status, 404, id);
      assert.equal(r.json.error.code, 'model_not_found');
      assert.equal(r.json.error.type, 'invalid_request_error');
      assert.equal(r.json.error.param, 'model');
      assert.ok(!r.text.includes(MARKER));
    }
  });

  test('other methods on it are OpenAI\'s unknown_url', async () => {
    const r = await call('POST', '/v1/models/stories260K', {});
    assert.equal(r.status, 404);
    assert.equal(r.json.error.code, 'unknown_url');
  });
});

describe('usage wherever OpenAI has it', () => {
  test('collected chat and text completions carry prompt, completion and total tokens', async () => {
    for (const [path, body] of [['/v1/chat/completions', chat()], ['/v1/completions', completion()]] as const) {
      const r = await call('POST', path, body);
      const u = r.json.usage;
      assert.deepEqual(Object.keys(u).sort(), ['completion_tokens', 'prompt_tokens', 'total_tokens']);
      assert.equal(u.completion_tokens, 8);
      assert.ok(u.prompt_tokens > 1);
      assert.equal(u.total_tokens, u.prompt_tokens + u.completion_tokens);
    }
  });

  test('streamed with include_usage: every chunk has usage null, then one chunk with no choices and the counts, then [DONE]', async () => {
    const collected = await call('POST', '/v1/chat/completions', chat());
    for (const [path, body] of [
      ['/v1/chat/completions', chat({ stream: true, stream_options: { include_usage: true } })],
      ['/v1/completions', completion({ stream: true, stream_options: { include_usage: true } })],
    ] as const) {
      const r = await call('POST', path, body);
      assert.equal(r.status, 200);
      const ev = events(r.text) as any[];
      assert.equal(ev.at(-1), '[DONE]');
      const last = ev.at(-2);
      assert.deepEqual(last.choices, []);
      assert.equal(last.usage.completion_tokens, 8);
      assert.equal(last.usage.total_tokens, last.usage.prompt_tokens + 8);
      if (path === '/v1/chat/completions') assert.deepEqual(last.usage, collected.json.usage);
      const before = ev.slice(0, -2);
      assert.ok(before.length >= 2);
      for (const chunk of before) {
        assert.ok(Object.hasOwn(chunk, 'usage'), 'usage key present');
        assert.equal(chunk.usage, null);
      }
    }
  });

  test('streamed without include_usage: no usage key and no usage chunk, as OpenAI does', async () => {
    const r = await call('POST', '/v1/chat/completions', chat({ stream: true }));
    const ev = events(r.text) as any[];
    assert.equal(ev.at(-1), '[DONE]');
    for (const chunk of ev.slice(0, -1)) {
      assert.ok(!Object.hasOwn(chunk, 'usage'));
      assert.equal(chunk.choices.length, 1);
    }
  });
});

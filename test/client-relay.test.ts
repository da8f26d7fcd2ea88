// The relay promise: with --relay the encapsulated requests reach the server from the relay's
// address, and with --attest-via the attestation does too, so the server never sees the client's
// address; without --attest-via it does, once, and the client says so. The real server (engine,
// simulated SEV-SNP, the public app) records the peer address of every request as its attestation
// rate limiter sees it; the relay (test/fixtures/client/relay.ts) connects from 127.0.0.2, the
// clients from 127.0.0.1.
import { test, before, after } from 'node:test';
import assert from 'node:assert/strict';
import { PassThrough } from 'node:stream';
import { fileURLToPath } from 'node:url';
import type { AddressInfo } from 'node:net';
import { serve } from '@hono/node-server';
import OpenAI from 'openai';
import { Engine } from '../engine/index.js';
import { createSimulatedProvider, type SimulatedProvider } from '../enclave/providers/simulated.js';
import { createApp, createRuntime } from '../server/app.js';
import { clientAddressKey } from '../server/client-address.js';
import { resolveLimits } from '../server/limits.js';
import { SealedClient, SealedClientError } from '../client/sdk.js';
import { runChat } from '../cli/commands/chat.js';
import { runProxy } from '../cli/commands/proxy.js';
import type { RunningProxy } from '../client/proxy.js';
import { startRelay, type Relay } from './fixtures/client/relay.js';

const MODEL_DIR = fileURLToPath(new URL('../models/stories260K', import.meta.url));
const RELAY_ADDRESS = '127.0.0.2';

interface Seen { method: string; route: string; peer: string | undefined }
let engine: Engine;
let provider: SimulatedProvider;
let url: string;
let close: () => Promise<void>;
const seen: Seen[] = [];
/** The keys the server's attestation rate limiter was asked about, in order. */
const limiterKeys: string[] = [];
let relay: Relay;
let forwarder: Relay;

before(async () => {
  engine = await Engine.create({ modelDir: MODEL_DIR, threads: 1, maxBatch: 2 });
  provider = await createSimulatedProvider({ modelDigest: engine.model.digest });
  const limits = resolveLimits({});
  const runtime = createRuntime(limits);
  const check = runtime.attestationRate.check.bind(runtime.attestationRate);
  runtime.attestationRate.check = (key: string) => {
    limiterKeys.push(key);
    return check(key);
  };
  const app = createApp({ engine, provider, limits, runtime });
  const server = serve({
    hostname: '127.0.0.1',
    port: 0,
    // What the app itself reads as the peer (env.incoming.socket), recorded per request.
    fetch: (req: Request, env: { incoming?: { socket?: { remoteAddress?: string } } }) => {
      const path = new URL(req.url).pathname;
      const route = /\/ohttp$/.test(path) ? 'ohttp' : /\/attestation$/.test(path) ? 'attestation' : path;
      seen.push({ method: req.method, route, peer: env.incoming?.socket?.remoteAddress });
      return app.fetch(req, env);
    },
  });
  await new Promise<void>((r) => server.once('listening', () => r()));
  url = `http://127.0.0.1:${(server.address() as AddressInfo).port}`;
  close = () => new Promise<void>((r) => { server.close(() => r()); (server as unknown as { closeAllConnections(): void }).closeAllConnections(); });
  relay = await startRelay(url, { localAddress: RELAY_ADDRESS });
  forwarder = await startRelay(url, { localAddress: RELAY_ADDRESS, attestation: true });
});
after(async () => {
  await relay?.close();
  await forwarder?.close();
  await close?.();
  await engine?.close();
  provider?.close?.();
});

const peers = (from: number, route: string) => [...new Set(seen.slice(from).filter((s) => s.route === route).map((s) => s.peer))];

test('SDK with a relay: every encapsulated request reaches the server from the relay; the attestation from the client', async () => {
  const from = seen.length;
  const client = await SealedClient.connect(url, { allowSimulation: true, relay: relay.url });
  assert.deepEqual(client.route, { relay: true, attestVia: false });
  let streamed = '';
  for await (const c of await client.chat({ messages: [{ role: 'user', content: 'Once upon a time' }], max_tokens: 8, stream: true })) streamed += c.choices[0]?.delta?.content ?? '';
  assert.ok(streamed.length > 0, 'a streamed answer through the relay');
  const whole = await client.chat({ messages: [{ role: 'user', content: 'Once upon a time' }], max_tokens: 8 });
  assert.ok(whole.choices[0].message.content);
  assert.deepEqual(peers(from, 'ohttp'), [RELAY_ADDRESS], 'the server saw only the relay for the OHTTP requests');
  assert.deepEqual(peers(from, 'attestation'), ['127.0.0.1'], 'the attestation came straight from the client');
  assert.deepEqual(relay.forwarded, ['POST ohttp', 'POST ohttp']);
});

test('SDK with a relay and --attest-via: the server never sees the client\'s address; its attestation limit counts the proxy', async () => {
  const from = seen.length;
  const keysFrom = limiterKeys.length;
  const client = await SealedClient.connect(url, { allowSimulation: true, relay: relay.url, attestVia: forwarder.url });
  assert.deepEqual(client.route, { relay: true, attestVia: true });
  const r = await client.chat({ messages: [{ role: 'user', content: 'Once upon a time' }], max_tokens: 4 });
  assert.ok(r.choices[0].message.content !== undefined);
  assert.deepEqual(peers(from, 'ohttp'), [RELAY_ADDRESS]);
  assert.deepEqual(peers(from, 'attestation'), [RELAY_ADDRESS]);
  assert.deepEqual(limiterKeys.slice(keysFrom), [clientAddressKey(RELAY_ADDRESS)]);
  assert.notEqual(clientAddressKey(RELAY_ADDRESS), clientAddressKey('127.0.0.1'));
  assert.equal(client.verification.server, new URL(url).origin, 'the report names the server verified, not the proxy');
});

test('bad relay or attestVia URLs are refused before anything is sent', async () => {
  const from = seen.length;
  for (const [opt, value] of [['relay', 'not a url'], ['relay', 'ftp://x/'], ['attestVia', 'http://h/?q=1'], ['relay', 'http://u:p@h/']] as const) {
    await assert.rejects(SealedClient.connect(url, { allowSimulation: true, [opt]: value }), (e: unknown) => e instanceof SealedClientError && e.code === 'bad_options', `${opt}=${value}`);
  }
  assert.equal(seen.length, from, 'nothing reached the server');
});

async function until(what: string, cond: () => boolean, ms = 30_000): Promise<void> {
  const end = Date.now() + ms;
  while (!cond()) {
    if (Date.now() > end) throw new Error(`timed out waiting for ${what}`);
    await new Promise((r) => setTimeout(r, 20));
  }
}

test('sealed chat --relay --attest-via: the server saw only the relay; stderr says what it can still link', async () => {
  const from = seen.length;
  const stdin = new PassThrough();
  let err = '';
  let out = '';
  const running = runChat(['--url', url, '--allow-simulation', '--relay', relay.url, '--attest-via', forwarder.url, '--max-tokens', '8'], {
    stdin, stdout: { write: (s: string) => (out += s) }, stderr: { write: (s: string) => (err += s) },
  });
  await until('the prompt', () => err.includes('> '));
  stdin.write('Once upon a time\n');
  await until('the answer', () => err.split('> ').length >= 3);
  stdin.end();
  assert.equal(await running, 0, err);
  assert.ok(out.trim().length > 0);
  assert.match(err, /^privacy: the server sees the relay's and the attestation proxy's addresses, not this machine's; the session id in every request links all requests of one session/m);
  assert.deepEqual([...new Set(seen.slice(from).map((s) => s.peer))], [RELAY_ADDRESS]);
});

test('sealed chat without --attest-via says the server links this address to the relayed requests', async () => {
  let err = '';
  const code = await runChat(['--url', url, '--allow-simulation', '--relay', relay.url, '--max-tokens', '4', 'Once'], {
    stdin: new PassThrough(), stdout: { write: () => true }, stderr: { write: (s: string) => (err += s) },
  });
  assert.equal(code, 0, err);
  assert.match(err, /^privacy: requests go through the relay, but the attestation went straight to the server, which saw this machine's address for this session;.* so the server can link every relayed request to this address/m);
  let direct = '';
  assert.equal(await runChat(['--url', url, '--allow-simulation', '--max-tokens', '4', 'Once'], {
    stdin: new PassThrough(), stdout: { write: () => true }, stderr: { write: (s: string) => (direct += s) },
  }), 0);
  assert.match(direct, /^privacy: the server sees this machine's address on the attestation and on every request; the session id/m);
});

test('sealed chat refuses a bad --relay or --attest-via with a usage error (exit 2), sending nothing', async () => {
  const from = seen.length;
  for (const args of [['--relay', 'nope'], ['--attest-via', 'http://h/#frag'], ['--relay']]) {
    let err = '';
    const code = await runChat(['--url', url, '--allow-simulation', ...args, 'Once'], { stdin: new PassThrough(), stdout: { write: () => true }, stderr: { write: (s: string) => (err += s) } });
    assert.equal(code, 2, args.join(' '));
    assert.match(err, /^sealed chat: /);
  }
  assert.equal(seen.length, from);
});

test('sealed proxy --relay --attest-via: the openai package through the proxy; the server saw only the relay', async () => {
  const from = seen.length;
  const stop = new AbortController();
  let err = '';
  let listening: RunningProxy | undefined;
  const running = runProxy(['--url', url, '--listen', '127.0.0.1:0', '--allow-simulation', '--relay', relay.url, '--attest-via', forwarder.url], {
    stdout: { write: () => true }, stderr: { write: (s: string) => (err += s) }, signal: stop.signal, onListening: (p) => (listening = p),
  });
  try {
    await until('the proxy', () => listening !== undefined);
    const openai = new OpenAI({ baseURL: `${listening!.url}/v1`, apiKey: 'unused' });
    const r = await openai.chat.completions.create({ model: engine.model.id, messages: [{ role: 'user', content: 'Once upon a time' }], max_tokens: 6 });
    assert.equal(r.object, 'chat.completion');
    assert.equal((await openai.models.retrieve(engine.model.id)).id, engine.model.id);
  } finally {
    stop.abort();
  }
  assert.equal(await running, 0, err);
  assert.match(err, /^privacy: the server sees the relay's and the attestation proxy's addresses/m);
  assert.match(err, /the chat page at \/chat attests and sends from the browser straight to the server/);
  assert.deepEqual([...new Set(seen.slice(from).map((s) => s.peer))], [RELAY_ADDRESS]);
});

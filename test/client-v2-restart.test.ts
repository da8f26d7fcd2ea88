// A server restart in the middle of a conversation, for every client of this repository: the
// real server (engine + simulated SEV-SNP) is closed and a new one started on the same port, so
// every session is gone. The next request gets 422, the client attests and verifies a new
// session, says so, and the request succeeds; the server's log shows the refused request and
// its one re-send. The page part runs in Chromium and is skipped, saying so, where no chromium
// binary exists. Where only the scriptable gateway can show it (the history a conversation
// sends, a response that does not decrypt), the gateway is used.
import { test, before, after } from 'node:test';
import assert from 'node:assert/strict';
import { PassThrough } from 'node:stream';
import { existsSync } from 'node:fs';
import OpenAI from 'openai';
import { SealedClient, type SealedClientEvent } from '../client/sdk.js';
import { startProxy, type RunningProxy } from '../client/proxy.js';
import { buildPageBundle } from '../client/node/page-bundle.js';
import { runChat } from '../cli/commands/chat.js';
import { runProxy } from '../cli/commands/proxy.js';
import { startRealServer, OHTTP_ROUTE, type RealServer } from './fixtures/client/server.js';
import { startGateway, WORDS } from './fixtures/client/gateway.js';

const CANDIDATES = process.env.CHROMIUM_PATH ? [process.env.CHROMIUM_PATH] : ['/usr/bin/chromium', '/usr/bin/chromium-browser'];
const CHROMIUM = CANDIDATES.find((p) => existsSync(p));
const noBrowser = CHROMIUM ? false : `no chromium binary at ${CANDIDATES.join(' or ')}: install Debian's chromium (apt-get install chromium) to run the browser test`;

const REATTESTED_LINE = 'sealed: session ended (server answered 422); attested a new session\n';

let server: RealServer;
before(async () => {
  server = await startRealServer();
});
after(async () => {
  await server?.close();
});

/** Statuses of the OHTTP POSTs the server saw since `from` entries (a browser's CORS preflights are OPTIONS). */
const ohttpStatuses = (from: number) => server.entries.slice(from).filter((e) => e.method === 'POST' && e.route === OHTTP_ROUTE).map((e) => e.status);

async function until(what: string, cond: () => boolean, ms = 30_000): Promise<void> {
  const end = Date.now() + ms;
  while (!cond()) {
    if (Date.now() > end) throw new Error(`timed out waiting for ${what}`);
    await new Promise((r) => setTimeout(r, 20));
  }
}

const count = (s: string, sub: string) => s.split(sub).length - 1;

test('SDK: after a restart the next request attests a new session and succeeds, reported once', async () => {
  const events: SealedClientEvent[] = [];
  const client = await SealedClient.connect(server.url, { allowSimulation: true, policy: { measurement: server.measurement, modelDigest: server.modelDigest }, onEvent: (e) => events.push(e) });
  const first = client.verification.session;
  const from = server.entries.length;
  const hi = [{ role: 'user', content: 'Once upon a time' }];
  let text = '';
  for await (const c of await client.chat({ messages: hi, max_tokens: 8, stream: true })) text += c.choices[0]?.delta?.content ?? '';
  assert.ok(text.length > 0);

  await server.restart();
  const attests = server.attestations();
  text = '';
  for await (const c of await client.chat({ messages: hi, max_tokens: 8, stream: true })) text += c.choices[0]?.delta?.content ?? '';
  assert.ok(text.length > 0, 'the answer after the restart');
  const plain = await client.chat({ messages: hi, max_tokens: 8 });
  assert.ok(plain.choices[0].message.content);

  assert.deepEqual(ohttpStatuses(from), [200, 422, 200, 200], 'one refusal, one re-send, then the new session carries on');
  assert.equal(server.attestations(), attests + 1, 'one new attestation');
  assert.notEqual(client.verification.session, first);
  assert.deepEqual(events, [{ type: 'reattested', reason: 'session_unknown', previous: first, session: client.verification.session }]);
  // Verified like the first: the same pins held for the new server's evidence.
  assert.deepEqual([...client.verification.pinned], ['measurement', 'modelDigest']);
});

test('sealed chat: a conversation on stdin carries on across a restart, with one line on stderr', async () => {
  const stdin = new PassThrough();
  let out = '';
  let err = '';
  const from = server.entries.length;
  const running = runChat(['--url', server.url, '--allow-simulation', '--max-tokens', '8', '--temperature', '0'], {
    stdin,
    stdout: { write: (s: string) => (out += s) },
    stderr: { write: (s: string) => (err += s) },
  });
  // The prompt "> " on stderr comes after the summary and after each finished turn.
  await until('the first prompt', () => count(err, '> ') >= 1);
  stdin.write('Once upon a time\n');
  await until('the first answer', () => count(err, '> ') >= 2);
  const firstAnswer = out;
  assert.ok(firstAnswer.trim().length > 0);

  await server.restart();
  stdin.write('Then what happened\n');
  await until('the second answer', () => count(err, '> ') >= 3);
  stdin.end();
  assert.equal(await running, 0, err);

  assert.ok(out.length > firstAnswer.length + 1, 'a second answer was written');
  assert.equal(count(err, REATTESTED_LINE), 1, err);
  assert.doesNotMatch(err, /^error:/m);
  assert.deepEqual(ohttpStatuses(from), [200, 422, 200]);
});

test('sealed chat: the re-sent turn carries the whole history; a turn whose answer does not decrypt is dropped, not re-sent', async () => {
  const gw = await startGateway();
  try {
    const stdin = new PassThrough();
    let err = '';
    const running = runChat(['--url', gw.url, '--allow-simulation'], { stdin, stdout: { write: () => true }, stderr: { write: (s: string) => (err += s) } });
    const turn = async (line: string, prompts: number) => {
      stdin.write(`${line}\n`);
      await until(`turn ${line}`, () => count(err, '> ') >= prompts);
    };
    await until('the first prompt', () => count(err, '> ') >= 1);
    await turn('first', 2);
    gw.dropKeys(); // a restart: every session gone
    await turn('second', 3);
    gw.corruptNextResponse = true;
    await turn('third', 4);
    await turn('fourth', 5);
    stdin.end();
    assert.equal(await running, 0, err);

    const chats = gw.inner.filter((r) => r.path === '/v1/chat/completions').map((r) => (r.body.messages as { content: string }[]).map((m) => m.content));
    const answer = WORDS.join('');
    assert.deepEqual(chats, [
      ['first'],
      ['first', answer, 'second'], // decrypted once: the 422 was refused before decryption
      ['first', answer, 'second', answer, 'third'], // decrypted, answer undecryptable, never re-sent
      ['first', answer, 'second', answer, 'fourth'], // the failed turn is not in the history
    ]);
    assert.equal(count(err, REATTESTED_LINE), 1, err);
    // (each line follows the "> " prompt, after the user's own line on a terminal)
    assert.match(err, /^(> )?error: response_undecryptable: /m);
    assert.equal(count(err, 'sealed: a response did not decrypt (that request was not re-sent); attested a new session\n'), 1, err);
    assert.ok(err.indexOf('error: response_undecryptable') < err.indexOf('sealed: a response did not decrypt'), 'the new session is attested for the next turn');
  } finally {
    await gw.close();
  }
});

async function startCliProxy(url: string): Promise<{ proxy: RunningProxy; err: () => string; stop: () => Promise<number> }> {
  const ctl = new AbortController();
  let err = '';
  let listening: (p: RunningProxy) => void = () => {};
  const ready = new Promise<RunningProxy>((r) => (listening = r));
  const done = runProxy(['--url', url, '--listen', '127.0.0.1:0', '--allow-simulation'], {
    stdout: { write: () => true },
    stderr: { write: (s: string) => (err += s) },
    signal: ctl.signal,
    onListening: (p) => listening(p),
  });
  const proxy = await Promise.race([ready, done.then((code) => { throw new Error(`proxy exited ${code}: ${err}`); })]);
  return { proxy, err: () => err, stop: () => (ctl.abort(), done) };
}

test('sealed proxy: the official openai package keeps working across a restart, with one line on stderr', async () => {
  const { proxy, err, stop } = await startCliProxy(server.url);
  try {
    const openai = new OpenAI({ baseURL: `${proxy.url}/v1`, apiKey: 'unused', maxRetries: 0, timeout: 30_000 });
    const from = server.entries.length;
    const ask = { model: server.modelId, messages: [{ role: 'user' as const, content: 'Once upon a time' }], max_tokens: 8, temperature: 0 };
    const before = await openai.chat.completions.create(ask);
    assert.ok(before.choices[0].message.content);

    await server.restart();
    let streamed = '';
    for await (const c of await openai.chat.completions.create({ ...ask, stream: true })) streamed += c.choices[0]?.delta?.content ?? '';
    assert.equal(streamed, before.choices[0].message.content, 'same greedy answer from the restarted server');
    const after = await openai.chat.completions.create(ask);
    assert.equal(after.choices[0].message.content, before.choices[0].message.content);

    assert.deepEqual(ohttpStatuses(from), [200, 422, 200, 200]);
    assert.equal(count(err(), REATTESTED_LINE), 1, err());
    // The attestation page shows the session in use now, not the one verified at start-up.
    const first = /session ([A-Za-z0-9_-]{22}),/.exec(err())?.[1];
    assert.ok(first, 'the start-up summary names its session');
    const html = await (await fetch(`${proxy.url}/`)).text();
    const shown = /<dt>session<\/dt><dd>([A-Za-z0-9_-]{22}),/.exec(html)?.[1];
    assert.ok(shown && shown !== first, `the page shows the new session (${shown})`);
  } finally {
    assert.equal(await stop(), 0);
  }
});

test('sealed proxy: a response that does not decrypt is a 502 for that request only; the next uses a new session', async () => {
  const gw = await startGateway();
  const { proxy, err, stop } = await startCliProxy(gw.url);
  try {
    const openai = new OpenAI({ baseURL: `${proxy.url}/v1`, apiKey: 'unused', maxRetries: 0 });
    const ask = { model: 'fixture-model', messages: [{ role: 'user' as const, content: 'hi' }] };
    gw.corruptNextResponse = true;
    const opened = gw.inner.length;
    await assert.rejects(openai.chat.completions.create(ask), (e: unknown) => e instanceof OpenAI.APIError && e.status === 502 && e.code === 'response_undecryptable');
    assert.equal(gw.inner.length, opened + 1, 'not re-sent');
    const r = await openai.chat.completions.create(ask);
    assert.equal(r.choices[0].message.content, WORDS.join(''));
    assert.equal(count(err(), 'sealed: a response did not decrypt (that request was not re-sent); attested a new session\n'), 1, err());
  } finally {
    assert.equal(await stop(), 0);
    await gw.close();
  }
});

test('the chat page: a conversation carries on across a restart, and the status line says a new session was attested', { skip: noBrowser }, async () => {
  const { chromium } = await import('playwright-core');
  const isRoot = typeof process.getuid === 'function' && process.getuid() === 0;
  const browser = await chromium.launch({ executablePath: CHROMIUM, args: isRoot ? ['--no-sandbox'] : [] });
  let bundle: Promise<string> | undefined;
  const proxy = await startProxy({
    client: await SealedClient.connect(server.url, { allowSimulation: true }),
    host: '127.0.0.1',
    port: 0,
    page: { server: server.url, policy: { measurement: server.measurement }, allowSimulation: true, maxTokens: 12, script: () => (bundle ??= buildPageBundle()) },
  });
  try {
    const page = await browser.newPage();
    const pageErrors: string[] = [];
    page.on('pageerror', (e: Error) => pageErrors.push(e.message));
    await page.goto(`${proxy.url}/chat`);
    await page.waitForSelector('body[data-state="verified"]', { timeout: 20_000 });
    const first = await page.getAttribute('body', 'data-session');
    assert.ok(first);
    const from = server.entries.length;
    const turn = async (text: string, n: number) => {
      await page.fill('#prompt', text);
      await page.click('#send');
      await page.waitForFunction((k: number) => document.querySelectorAll('.assistant[data-done="true"]').length === k, n, { timeout: 30_000 });
    };
    await turn('Once upon a time', 1);
    assert.equal(await page.getAttribute('body', 'data-reattested'), null);

    await server.restart();
    await turn('Then what happened', 2);
    const answers = await page.$$eval('.assistant', (els: Element[]) => els.map((e) => e.textContent ?? ''));
    assert.equal(answers.length, 2);
    assert.ok(answers[1].trim().length > 0, 'the answer after the restart');
    assert.match((await page.textContent('#status')) ?? '', /^Verified sev-snp \(SIMULATED\).*Note: session ended \(server answered 422\); attested a new session\.$/);
    assert.equal(await page.getAttribute('body', 'data-reattested'), '1');
    const now = await page.getAttribute('body', 'data-session');
    assert.ok(now && now !== first, 'a new session');
    assert.ok(((await page.textContent('#report')) ?? '').includes(now), 'the report shows the new session');
    assert.deepEqual(ohttpStatuses(from), [200, 422, 200]);
    assert.deepEqual(pageErrors, []);
  } finally {
    await proxy.close();
    await browser.close();
  }
});

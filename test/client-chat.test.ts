// `sealed chat` end to end: against the real server (engine + simulated SEV-SNP) for a
// prompt, the refusals, and the installed binary; against the scriptable gateway for
// what only it can show (tokens written as they arrive, the history a conversation sends).
import { test, before, after } from 'node:test';
import assert from 'node:assert/strict';
import { Readable } from 'node:stream';
import { spawn } from 'node:child_process';
import { mkdtempSync, writeFileSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { runChat, type ChatIo } from '../cli/commands/chat.js';
import { startRealServer, type RealServer } from './fixtures/client/server.js';
import { startGateway, WORDS } from './fixtures/client/gateway.js';

let server: RealServer;
let dir: string;
before(async () => {
  server = await startRealServer();
  dir = mkdtempSync(join(tmpdir(), 'client-chat-'));
});
after(async () => {
  await server?.close();
  if (dir) rmSync(dir, { recursive: true, force: true });
});

interface Captured { io: ChatIo; out: { text: string; at: number }[]; err: string[] }
function capture(stdinLines: string[] = []): Captured {
  const out: { text: string; at: number }[] = [];
  const err: string[] = [];
  return {
    out,
    err,
    io: {
      stdin: Readable.from(stdinLines.map((l) => l + '\n')),
      stdout: { write: (s: string) => out.push({ text: s, at: Date.now() }) },
      stderr: { write: (s: string) => err.push(s) },
    },
  };
}
const text = (c: Captured) => c.out.map((o) => o.text).join('');

test('sealed chat PROMPT: summary on stderr, the answer streamed to stdout', async () => {
  const c = capture();
  const sent = server.ohttpRequests();
  const code = await runChat(['--url', server.url, '--allow-simulation', '--max-tokens', '12', '--temperature', '0', 'Once upon a time'], c.io);
  const err = c.err.join('');
  assert.equal(code, 0, err);
  assert.match(err, /^verified http:\/\/127\.0\.0\.1:\d+: sev-snp \(SIMULATED/m);
  assert.ok(err.includes(server.measurement), 'measurement in the summary');
  assert.ok(err.includes(server.modelDigest), 'model digest in the summary');
  assert.match(err, /checks +\d+ passed/);
  assert.ok(c.out.length >= 3, `several writes (got ${c.out.length})`);
  assert.ok(text(c).trim().length > 0);
  assert.ok(text(c).endsWith('\n'));
  assert.equal(server.ohttpRequests(), sent + 1);
});

async function refuses(args: string[], reason: string): Promise<void> {
  const c = capture();
  const sent = server.ohttpRequests();
  const code = await runChat(['--url', server.url, ...args, 'a prompt that must never leave'], c.io);
  assert.equal(code, 10);
  assert.match(c.err.join(''), new RegExp(`^rejected: ${reason}: .+`, 'm'));
  assert.equal(text(c), '', 'nothing on stdout');
  assert.equal(server.ohttpRequests(), sent, 'no prompt reached the server');
}

test('sealed chat refuses a simulated server without --allow-simulation', async () => {
  await refuses([], 'simulation_not_allowed');
});

test('sealed chat refuses a wrong measurement or model digest, before sending the prompt', async () => {
  const policy = join(dir, 'wrong.json');
  writeFileSync(policy, JSON.stringify({ measurement: 'ab'.repeat(48) }));
  await refuses(['--allow-simulation', '--policy', policy], 'sev_measurement_mismatch');
  writeFileSync(policy, JSON.stringify({ modelDigest: 'ab'.repeat(32) }));
  await refuses(['--allow-simulation', '--policy', policy], 'model_digest_mismatch');
});

test('the installed binary: sealed chat through bin/sealed.mjs', async () => {
  const bin = fileURLToPath(new URL('../bin/sealed.mjs', import.meta.url));
  const policy = join(dir, 'right.json');
  writeFileSync(policy, JSON.stringify({ measurement: server.measurement, modelDigest: server.modelDigest }));
  const child = spawn(process.execPath, [bin, 'chat', '--url', server.url, '--allow-simulation', '--policy', policy, '--max-tokens', '8', 'Once upon a time'], { stdio: ['ignore', 'pipe', 'pipe'] });
  let out = '';
  let err = '';
  child.stdout.on('data', (d: Buffer) => (out += d));
  child.stderr.on('data', (d: Buffer) => (err += d));
  const code = await new Promise<number | null>((r) => child.on('close', r));
  assert.equal(code, 0, err);
  assert.match(err, /pinned measurement, modelDigest/);
  assert.ok(out.trim().length > 0);
});

test('tokens are written as they arrive, not at the end', async () => {
  const gw = await startGateway({ chunkDelayMs: 50 });
  try {
    const c = capture();
    assert.equal(await runChat(['--url', gw.url, '--allow-simulation', 'hi'], c.io), 0, c.err.join(''));
    const tokens = c.out.filter((o) => o.text !== '\n');
    assert.deepEqual(tokens.map((o) => o.text), WORDS);
    assert.ok(tokens[tokens.length - 1].at - tokens[0].at >= 50 * (WORDS.length - 2), 'spread over the generation');
  } finally {
    await gw.close();
  }
});

test('without a prompt: a conversation whose history is kept and sent with each turn', async () => {
  const gw = await startGateway();
  try {
    const c = capture(['first question', '', 'second question', '/exit', 'never sent']);
    assert.equal(await runChat(['--url', gw.url, '--allow-simulation', '--max-tokens', '5'], c.io), 0, c.err.join(''));
    assert.equal(text(c), `${WORDS.join('')}\n${WORDS.join('')}\n`);
    const chats = gw.inner.filter((r) => r.path === '/v1/chat/completions');
    assert.equal(chats.length, 2);
    assert.deepEqual(chats[1].body.messages, [
      { role: 'user', content: 'first question' },
      { role: 'assistant', content: WORDS.join('') },
      { role: 'user', content: 'second question' },
    ]);
    assert.equal(chats[1].body.max_tokens, 5);
    assert.equal(chats[1].body.stream, true);
  } finally {
    await gw.close();
  }
});

test('a cut-off answer is an error (exit 1), and the conversation does not keep the failed turn', async () => {
  const gw = await startGateway();
  try {
    gw.truncateNextStreamAfter = 2;
    const c = capture();
    assert.equal(await runChat(['--url', gw.url, '--allow-simulation', 'hi'], c.io), 1);
    assert.match(c.err.join(''), /^error: truncated: /m);

    gw.truncateNextStreamAfter = 2;
    const conv = capture(['one', 'two']);
    assert.equal(await runChat(['--url', gw.url, '--allow-simulation'], conv.io), 0);
    const chats = gw.inner.filter((r) => r.path === '/v1/chat/completions');
    assert.deepEqual(chats[chats.length - 1].body.messages, [{ role: 'user', content: 'two' }], 'the cut turn was dropped');
  } finally {
    await gw.close();
  }
});

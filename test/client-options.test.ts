// The pure edges of the clients: listen-address safety, command-line parsing, and the
// page's inert configuration. No server needed.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { mkdtempSync, writeFileSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { isLoopbackHost, parseListen } from '../client/listen.js';
import { inertJson, chatPageHtml } from '../client/page/html.js';
import { escapeHtml } from '../client/report.js';
import { parseChatArgs, runChat } from '../cli/commands/chat.js';
import { parseProxyArgs } from '../cli/commands/proxy.js';
import { UsageError } from '../client/node/cli-common.js';

test('only loopback addresses count as loopback', () => {
  for (const h of ['127.0.0.1', '127.1.2.3', 'localhost', 'LOCALHOST', '::1', '[::1]']) assert.equal(isLoopbackHost(h), true, h);
  for (const h of ['0.0.0.0', '::', '192.168.1.10', '10.0.0.1', '128.0.0.1', '127.0.0.256', 'example.com', '127.0.0.1.nip.io', '::ffff:127.0.0.1', ''])
    assert.equal(isLoopbackHost(h), false, h);
});

test('--listen is HOST:PORT or [V6]:PORT', () => {
  assert.deepEqual(parseListen('127.0.0.1:8081'), { host: '127.0.0.1', port: 8081 });
  assert.deepEqual(parseListen('[::1]:0'), { host: '::1', port: 0 });
  assert.deepEqual(parseListen('localhost:65535'), { host: 'localhost', port: 65535 });
  for (const bad of ['127.0.0.1', ':80', '127.0.0.1:65536', '::1:80', 'host:port', '127.0.0.1:80 ']) {
    assert.throws(() => parseListen(bad), { code: 'bad_options' }, bad);
  }
});

test('page configuration cannot break out of its script element', () => {
  const evil = { server: 'http://x/</script><script>alert(1)</script>', policy: { note: '<!-- & \u2028' }, allowSimulation: false };
  const json = inertJson(evil);
  assert.ok(!/[<>&\u2028]/.test(json));
  assert.deepEqual(JSON.parse(json), evil);
  const html = chatPageHtml(evil);
  assert.equal(html.split('</script>').length - 1, 2, 'only the two real closing tags');
  assert.equal(escapeHtml(`<a href="x">'&`), '&lt;a href=&quot;x&quot;&gt;&#39;&amp;');
});

test('sealed chat parses its flags and refuses bad ones', async () => {
  const dir = mkdtempSync(join(tmpdir(), 'client-opts-'));
  try {
    const policy = join(dir, 'p.json');
    writeFileSync(policy, JSON.stringify({ modelDigest: '00'.repeat(32) }));
    const o = await parseChatArgs(['--url', 'http://127.0.0.1:1', '--policy', policy, '--allow-simulation', '--max-tokens', '12', '--temperature', '0.5', 'hello', 'there']);
    assert.deepEqual(o, { url: 'http://127.0.0.1:1', policy: { modelDigest: '00'.repeat(32) }, allowSimulation: true, maxTokens: 12, temperature: 0.5, prompt: 'hello there' });
    assert.equal(await parseChatArgs(['--help']), 'help');
    const bad: string[][] = [
      [],
      ['--url', 'ftp://x'],
      ['--url', 'http://x', '--max-tokens', '0'],
      ['--url', 'http://x', '--max-tokens', '1.5'],
      ['--url', 'http://x', '--temperature', '3'],
      ['--url', 'http://x', '--temperature', ''],
      ['--url', 'http://x', '--bogus'],
      ['--url', 'http://x', '--policy', join(dir, 'missing.json')],
    ];
    for (const argv of bad) await assert.rejects(parseChatArgs(argv), UsageError, argv.join(' '));
    writeFileSync(policy, '[1]');
    await assert.rejects(parseChatArgs(['--url', 'http://x', '--policy', policy]), UsageError);
  } finally {
    rmSync(dir, { recursive: true, force: true });
  }
});

test('sealed chat --help prints usage and exits 0; a usage error exits 2 and sends nothing', async () => {
  const out: string[] = [];
  const err: string[] = [];
  const io = { stdin: process.stdin, stdout: { write: (s: string) => out.push(s) }, stderr: { write: (s: string) => err.push(s) } };
  assert.equal(await runChat(['--help'], io), 0);
  assert.match(out.join(''), /usage: sealed chat --url URL/);
  assert.equal(await runChat(['--max-tokens', '5'], io), 2);
  assert.match(err.join(''), /--url is required/);
});

test('sealed proxy parses its flags; a non-loopback --listen needs --force-listen', async () => {
  assert.deepEqual(await parseProxyArgs(['--url', 'http://127.0.0.1:1', '--listen', '127.0.0.1:0', '--allow-simulation']), {
    url: 'http://127.0.0.1:1', host: '127.0.0.1', port: 0, allowSimulation: true, forceListen: false,
  });
  await assert.rejects(parseProxyArgs(['--url', 'http://127.0.0.1:1', '--listen', '0.0.0.0:8080']), UsageError);
  assert.deepEqual(await parseProxyArgs(['--url', 'http://127.0.0.1:1', '--listen', '0.0.0.0:8080', '--force-listen']), {
    url: 'http://127.0.0.1:1', host: '0.0.0.0', port: 8080, allowSimulation: false, forceListen: true,
  });
  await assert.rejects(parseProxyArgs(['--url', 'http://127.0.0.1:1']), UsageError);
  assert.equal(await parseProxyArgs(['--help']), 'help');
});

test('a policy file with an unknown or malformed key is a usage error, not "not pinned"', async () => {
  const dir = mkdtempSync(join(tmpdir(), 'client-opts-'));
  try {
    const policy = join(dir, 'p.json');
    for (const doc of [{ measurment: 'ab'.repeat(48) }, { measurement: 'ab' }, { modelDigest: 'zz'.repeat(32) }]) {
      writeFileSync(policy, JSON.stringify(doc));
      await assert.rejects(parseChatArgs(['--url', 'http://x', '--policy', policy]), UsageError, JSON.stringify(doc));
      await assert.rejects(parseProxyArgs(['--url', 'http://x', '--listen', '127.0.0.1:0', '--policy', policy]), UsageError);
    }
  } finally {
    rmSync(dir, { recursive: true, force: true });
  }
});

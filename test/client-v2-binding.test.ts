// The v2 binding from every client's side: a man in the middle rewrites one field of the real
// server's evidence document (session, keyConfig, model id, model digest, expiresAt,
// simulated) and every client of this repository (SDK, `sealed chat`, `sealed proxy`, the
// chat page) refuses before sending anything: the server's log shows no
// POST /v1/sessions/{sid}/ohttp. The page part runs in Chromium and is skipped, saying so,
// where no chromium binary exists.
import { test, before, after } from 'node:test';
import assert from 'node:assert/strict';
import { existsSync } from 'node:fs';
import { SealedClient, SealedClientError, isVerificationFailure } from '../client/sdk.js';
import { randomSessionId } from '../client/attest.js';
import { startProxy, type RunningProxy } from '../client/proxy.js';
import { buildPageBundle } from '../client/node/page-bundle.js';
import { runChat } from '../cli/commands/chat.js';
import { runProxy } from '../cli/commands/proxy.js';
import { generateKeyConfig } from '../transport/ohttp.js';
import { startRealServer, type RealServer } from './fixtures/client/server.js';
import { startTamperProxy, type TamperProxy } from './fixtures/client/tamper-proxy.js';

const CANDIDATES = process.env.CHROMIUM_PATH ? [process.env.CHROMIUM_PATH] : ['/usr/bin/chromium', '/usr/bin/chromium-browser'];
const CHROMIUM = CANDIDATES.find((p) => existsSync(p));
const noBrowser = CHROMIUM ? false : `no chromium binary at ${CANDIDATES.join(' or ')}: install Debian's chromium (apt-get install chromium) to run the browser test`;

let server: RealServer;
let mitm: TamperProxy;

before(async () => {
  server = await startRealServer();
  mitm = await startTamperProxy(server.url);
});
after(async () => {
  await mitm?.close();
  await server?.close();
});

/**
 * One rewrite per field a client acts on, each leaving a well-formed document, and the verifier's
 * code for it: the document must name the session asked for, and the signed binding covers the rest.
 */
// eslint-disable-next-line @typescript-eslint/no-explicit-any
const TAMPERS: [string, (doc: Record<string, any>) => void, string][] = [
  ['session', (d) => { d.session = randomSessionId(); }, 'session_mismatch'],
  // The attacker's own key configuration: the attack the binding exists for.
  ['keyConfig', (d) => { d.keyConfig = Buffer.from(generateKeyConfig(Buffer.from(d.keyConfig, 'base64url')[0]).encoded).toString('base64url'); }, 'binding_mismatch'],
  ['model id', (d) => { d.model.id = `${d.model.id}-other`; }, 'binding_mismatch'],
  ['model digest', (d) => { d.model.digest = 'ab'.repeat(32); }, 'binding_mismatch'],
  ['expiresAt', (d) => { d.expiresAt = new Date(Date.parse(d.expiresAt) + 3_600_000).toISOString().replace(/\.\d{3}Z$/, 'Z'); }, 'binding_mismatch'],
  ['simulated', (d) => { d.simulated = false; }, 'binding_mismatch'],
];

/** Runs `attempt` once per tampered field; each must be refused with nothing sent to the server. */
async function eachTamper(client: string, attempt: (field: string, reason: string) => Promise<void>): Promise<void> {
  for (const [field, tamper, reason] of TAMPERS) {
    const [sent, attested, tampered] = [server.ohttpRequests(), server.attestations(), mitm.tampered];
    mitm.tamper = tamper;
    try {
      await attempt(field, reason);
    } finally {
      mitm.tamper = undefined;
    }
    assert.ok(mitm.tampered > tampered, `${client}, ${field}: the evidence was rewritten in transit`);
    assert.ok(server.attestations() > attested, `${client}, ${field}: the server attested`);
    assert.equal(server.ohttpRequests(), sent, `${client}, ${field}: no POST /v1/sessions/{sid}/ohttp reached the server`);
  }
}

test('untampered, every path through the man in the middle works (the fixture itself changes nothing)', async () => {
  const client = await SealedClient.connect(mitm.url, { allowSimulation: true });
  const r = await client.chat({ messages: [{ role: 'user', content: 'Once' }], max_tokens: 4 });
  assert.equal(r.object, 'chat.completion');
  assert.equal(mitm.tampered, 0);
});

test('SDK: a rewritten evidence field is refused before anything is sent', async () => {
  await eachTamper('SDK', async (field, reason) => {
    await assert.rejects(SealedClient.connect(mitm.url, { allowSimulation: true }), (e: unknown) => {
      assert.ok(e instanceof SealedClientError, `${field}: ${String(e)}`);
      assert.equal(e.code, 'attestation_rejected', field);
      assert.equal(e.reason, reason, field);
      return true;
    });
  });
});

test('SDK: a rewritten field in a re-attestation (after the session ended) is refused, and the request is not re-sent', async () => {
  const client = await SealedClient.connect(mitm.url, { allowSimulation: true });
  for (const [field, tamper, reason] of TAMPERS) {
    await server.restart(); // the session ends: the next request gets 422 and re-attests
    const sent = server.ohttpRequests();
    mitm.tamper = tamper;
    try {
      await assert.rejects(client.chat({ messages: [{ role: 'user', content: 'a prompt that must not be re-sent' }] }), (e: unknown) => isVerificationFailure(e) && (e as SealedClientError).reason === reason, field);
    } finally {
      mitm.tamper = undefined;
    }
    assert.equal(server.ohttpRequests(), sent + 1, `${field}: only the request the server refused with 422`);
    assert.equal(server.entries.filter((e) => e.method === 'POST' && e.route === '/v1/sessions/{sid}/ohttp').at(-1)?.status, 422);
  }
});

test('sealed chat: a rewritten evidence field is refused (exit 10, nothing on stdout)', async () => {
  await eachTamper('sealed chat', async (field, reason) => {
    const out: string[] = [];
    const err: string[] = [];
    const io = { stdin: process.stdin, stdout: { write: (s: string) => out.push(s) }, stderr: { write: (s: string) => err.push(s) } };
    const code = await runChat(['--url', mitm.url, '--allow-simulation', 'a prompt that must never leave'], io);
    assert.equal(code, 10, `${field}: ${err.join('')}`);
    assert.match(err.join(''), new RegExp(`^rejected: ${reason}: .+`, 'm'), field);
    assert.deepEqual(out, [], field);
  });
});

test('sealed proxy: a rewritten evidence field is refused (exit 10) and nothing listens', async () => {
  await eachTamper('sealed proxy', async (field, reason) => {
    const err: string[] = [];
    let listened = false;
    const code = await runProxy(['--url', mitm.url, '--listen', '127.0.0.1:0', '--allow-simulation'], {
      stdout: { write: () => true },
      stderr: { write: (s: string) => err.push(s) },
      signal: AbortSignal.timeout(10_000),
      onListening: () => { listened = true; },
    });
    assert.equal(code, 10, `${field}: ${err.join('')}`);
    assert.match(err.join(''), new RegExp(`^rejected: ${reason}: `, 'm'), field);
    assert.equal(listened, false, field);
  });
});

test('sealed proxy: a rewritten field when a session is replaced answers 502, and the request goes nowhere', async () => {
  const client = await SealedClient.connect(mitm.url, { allowSimulation: true });
  const p = await startProxy({ client, host: '127.0.0.1', port: 0 });
  try {
    for (const [field, tamper, reason] of TAMPERS) {
      await server.restart();
      const sent = server.ohttpRequests();
      mitm.tamper = tamper;
      let res: Response;
      try {
        res = await fetch(`${p.url}/v1/chat/completions`, { method: 'POST', headers: { 'content-type': 'application/json' }, body: JSON.stringify({ messages: [{ role: 'user', content: 'hi' }] }) });
      } finally {
        mitm.tamper = undefined;
      }
      assert.equal(res.status, 502, field);
      const body = (await res.json()) as { error: { type: string; code: string } };
      assert.deepEqual([body.error.type, body.error.code], ['attestation_error', reason], field);
      assert.equal(server.ohttpRequests(), sent + 1, `${field}: only the 422`);
    }
  } finally {
    await p.close();
  }
});

test('the chat page: a rewritten evidence field is refused in the browser, the prompt stays disabled', { skip: noBrowser }, async () => {
  const { chromium } = await import('playwright-core');
  const isRoot = typeof process.getuid === 'function' && process.getuid() === 0;
  const browser = await chromium.launch({ executablePath: CHROMIUM, args: isRoot ? ['--no-sandbox'] : [] });
  // The proxy that serves the page verified the server directly; the page goes through the man in the middle.
  const proxy: RunningProxy = await startProxy({
    client: await SealedClient.connect(server.url, { allowSimulation: true }),
    host: '127.0.0.1',
    port: 0,
    page: { server: mitm.url, allowSimulation: true, maxTokens: 8, script: (() => { let b: Promise<string> | undefined; return () => (b ??= buildPageBundle()); })() },
  });
  try {
    await eachTamper('page', async (field, reason) => {
      const page = await browser.newPage();
      try {
        await page.goto(`${proxy.url}/chat`);
        await page.waitForSelector('body[data-state="rejected"]', { timeout: 20_000 });
        assert.match((await page.textContent('#status')) ?? '', new RegExp(`^rejected: ${reason}: .*nothing was sent`), field);
        assert.equal(await page.isDisabled('#prompt'), true, field);
      } finally {
        await page.close();
      }
    });
  } finally {
    await proxy.close();
    await browser.close();
  }
});

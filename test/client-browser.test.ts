// The chat page in headless Chromium (Debian's chromium driven by playwright-core):
// served by the proxy, it fetches evidence from the real server itself (CORS), verifies
// it in the page with the bundled SDK, encrypts there, streams the answer and shows what
// it verified. Skipped, saying so, only where no chromium binary exists.
import { test, before, after } from 'node:test';
import assert from 'node:assert/strict';
import { existsSync } from 'node:fs';
import { SealedClient } from '../client/sdk.js';
import { startProxy, type RunningProxy } from '../client/proxy.js';
import { buildPageBundle } from '../client/node/page-bundle.js';
import { startRealServer, type RealServer } from './fixtures/client/server.js';

// $CHROMIUM_PATH, when set, is the only candidate; otherwise Debian's and Ubuntu's paths.
const CANDIDATES = process.env.CHROMIUM_PATH ? [process.env.CHROMIUM_PATH] : ['/usr/bin/chromium', '/usr/bin/chromium-browser'];
const CHROMIUM = CANDIDATES.find((p) => existsSync(p));
const skip = CHROMIUM ? false : `no chromium binary at ${CANDIDATES.join(' or ')}: install Debian's chromium (apt-get install chromium) to run the browser test`;

let server: RealServer | undefined;
let proxies: RunningProxy[] = [];
// eslint-disable-next-line @typescript-eslint/no-explicit-any
let browser: any;

before(async () => {
  if (skip) return;
  server = await startRealServer();
  const { chromium } = await import('playwright-core');
  const isRoot = typeof process.getuid === 'function' && process.getuid() === 0;
  browser = await chromium.launch({ executablePath: CHROMIUM, args: isRoot ? ['--no-sandbox'] : [] });
});
after(async () => {
  await browser?.close();
  for (const p of proxies) await p.close();
  await server?.close();
});

async function proxyWithPage(pagePolicy: unknown): Promise<RunningProxy> {
  const client = await SealedClient.connect(server!.url, { allowSimulation: true });
  let bundle: Promise<string> | undefined;
  const proxy = await startProxy({
    client,
    host: '127.0.0.1',
    port: 0,
    page: { server: server!.url, policy: pagePolicy, allowSimulation: true, maxTokens: 24, script: () => (bundle ??= buildPageBundle()) },
  });
  proxies.push(proxy);
  return proxy;
}

test('the chat page verifies the server in the browser, then streams an encrypted answer', { skip }, async () => {
  const srv = server!;
  const proxy = await proxyWithPage({ measurement: srv.measurement, modelDigest: srv.modelDigest });
  const attestsBefore = srv.attestations();
  const sentBefore = srv.ohttpRequests();
  const page = await browser.newPage();
  const pageErrors: string[] = [];
  page.on('pageerror', (e: Error) => pageErrors.push(e.message));
  await page.goto(`${proxy.url}/chat`);
  await page.waitForSelector('body[data-state="verified"]', { timeout: 20_000 });

  // The verification is shown: platform, simulation warning, measurement, model digest, checks.
  const report = await page.textContent('#report');
  assert.ok(report.includes(srv.measurement), 'measurement shown');
  assert.ok(report.includes(srv.modelDigest), 'model digest shown');
  assert.match(report, /Simulated/);
  assert.match(report, /REPORT_DATA = reportData/);
  assert.match(await page.textContent('#status'), /Verified sev-snp \(SIMULATED\)/);
  // The page attested the server itself (a fresh nonce from the browser), not through the proxy.
  assert.equal(srv.attestations(), attestsBefore + 1);
  assert.equal(srv.ohttpRequests(), sentBefore, 'nothing sent before a prompt');

  await page.fill('#prompt', 'Once upon a time');
  await page.click('#send');
  await page.waitForSelector('.assistant[data-done="true"]', { timeout: 30_000 });
  const answer = await page.textContent('.assistant');
  assert.ok(answer.trim().length > 0, 'an answer appeared');
  const chunks = Number(await page.getAttribute('.assistant', 'data-chunks'));
  assert.ok(chunks >= 2, `the answer arrived in several chunks (got ${chunks})`);
  assert.equal(await page.textContent('.user'), 'Once upon a time');
  assert.equal(srv.ohttpRequests(), sentBefore + 1, 'one encrypted request, straight from the page');
  assert.deepEqual(pageErrors, []);
  await page.close();
});

test('the chat page refuses a server that does not match its policy, and sends nothing', { skip }, async () => {
  const srv = server!;
  const proxy = await proxyWithPage({ measurement: 'ab'.repeat(48) });
  const sentBefore = srv.ohttpRequests();
  const page = await browser.newPage();
  await page.goto(`${proxy.url}/chat`);
  await page.waitForSelector('body[data-state="rejected"]', { timeout: 20_000 });
  assert.match(await page.textContent('#status'), /rejected: sev_measurement_mismatch: .*nothing was sent/);
  assert.equal(await page.isDisabled('#prompt'), true);
  assert.equal(await page.isDisabled('#send'), true);
  assert.equal(srv.ohttpRequests(), sentBefore);
  await page.close();
});

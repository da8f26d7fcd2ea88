// The chat page holding a conversation, in headless Chromium (Debian's chromium driven by
// playwright-core), against the real server with the bundled model (512 tokens of context):
// ten turns all answered (the oldest dropped as the context fills), a refused message shown as
// the server's refusal where the answer goes, "New chat", and the verification details collapsed
// so that the message box is visible without scrolling on a phone. Skipped, saying so, only where
// no chromium binary exists.
import { test, before, after } from 'node:test';
import assert from 'node:assert/strict';
import { existsSync } from 'node:fs';
import { SealedClient } from '../client/sdk.js';
import { startProxy, type RunningProxy } from '../client/proxy.js';
import { buildPageBundle } from '../client/node/page-bundle.js';
import { startRealServer, type RealServer } from './fixtures/client/server.js';
import { TURNS } from './fixtures/client/turns.js';

const CANDIDATES = process.env.CHROMIUM_PATH ? [process.env.CHROMIUM_PATH] : ['/usr/bin/chromium', '/usr/bin/chromium-browser'];
const CHROMIUM = CANDIDATES.find((p) => existsSync(p));
const skip = CHROMIUM ? false : `no chromium binary at ${CANDIDATES.join(' or ')}: install Debian's chromium (apt-get install chromium) to run the browser test`;

let server: RealServer | undefined;
let proxy: RunningProxy | undefined;
// eslint-disable-next-line @typescript-eslint/no-explicit-any
let browser: any;

before(async () => {
  if (skip) return;
  server = await startRealServer();
  const client = await SealedClient.connect(server.url, { allowSimulation: true });
  let bundle: Promise<string> | undefined;
  // No maxTokens: the page's own default must keep the conversation going.
  proxy = await startProxy({ client, host: '127.0.0.1', port: 0, page: { server: server.url, allowSimulation: true, script: () => (bundle ??= buildPageBundle()) } });
  const { chromium } = await import('playwright-core');
  const isRoot = typeof process.getuid === 'function' && process.getuid() === 0;
  browser = await chromium.launch({ executablePath: CHROMIUM, args: isRoot ? ['--no-sandbox'] : [] });
});
after(async () => {
  await browser?.close();
  await proxy?.close();
  await server?.close();
});


// eslint-disable-next-line @typescript-eslint/no-explicit-any
async function ask(page: any, text: string, n: number): Promise<string> {
  await page.fill('#prompt', text);
  await page.click('#send');
  await page.waitForFunction((k: number) => {
    const bots = document.querySelectorAll('.assistant');
    return bots.length === k && (bots[k - 1] as HTMLElement).dataset.done !== 'false' && !(document.querySelector('#send') as HTMLButtonElement).disabled;
  }, n, { timeout: 60_000 });
  return page.evaluate((k: number) => (document.querySelectorAll('.assistant')[k - 1] as HTMLElement).dataset.done, n);
}

test('the page: a 10-turn conversation with the bundled model, every turn answered', { skip, timeout: 300_000 }, async () => {
  const page = await browser.newPage();
  const pageErrors: string[] = [];
  page.on('pageerror', (e: Error) => pageErrors.push(e.message));
  await page.goto(`${proxy!.url}/chat`);
  await page.waitForSelector('body[data-state="verified"]', { timeout: 20_000 });
  let dropNoted = false;
  for (const [i, t] of TURNS.entries()) {
    assert.equal(await ask(page, t, i + 1), 'true', `turn ${i + 1} answered`);
    const answer: string = await page.evaluate((k: number) => document.querySelectorAll('.assistant')[k].textContent, i);
    assert.ok(answer.trim().length > 0, `turn ${i + 1} has text`);
    assert.ok(!answer.includes('cut off'));
    if (/oldest messages were dropped to stay within the model's context/.test(await page.textContent('#status'))) dropNoted = true;
  }
  assert.equal(await page.locator('.user').count(), 10);
  assert.ok(dropNoted, 'the history outgrew the context and the page said it dropped the oldest turns');
  assert.deepEqual(pageErrors, []);
  await page.close();
});

test('the page: a refusal shows the server\'s message in place of the answer; New chat starts over', { skip, timeout: 120_000 }, async () => {
  const page = await browser.newPage();
  await page.goto(`${proxy!.url}/chat`);
  await page.waitForSelector('body[data-state="verified"]', { timeout: 20_000 });
  assert.equal(await ask(page, 'Once upon a time there was a big dog. '.repeat(80), 1), 'refused');
  const refused: string = await page.textContent('.assistant');
  assert.match(refused, /^Refused: This model's maximum context length is 512 tokens\. However, you requested \d+ tokens \(\d+ in the messages, \d+ in the completion\)/);
  assert.ok(!refused.includes('cut off'));
  assert.equal(await page.getAttribute('body', 'data-state'), 'verified', 'a refusal is not a broken page');
  assert.equal(await ask(page, 'Once upon a time', 2), 'true', 'the conversation carries on');

  await page.click('#new-chat');
  assert.equal(await page.locator('#transcript .msg').count(), 0, 'the transcript is cleared');
  assert.match(await page.textContent('#status'), /New chat/);
  assert.equal(await ask(page, 'Once upon a time', 1), 'true');
  await page.close();
});

test('the page on a phone: verification details collapsed, the message box visible without scrolling', { skip }, async () => {
  const page = await browser.newPage({ viewport: { width: 390, height: 700 } });
  await page.goto(`${proxy!.url}/chat`);
  await page.waitForSelector('body[data-state="verified"]', { timeout: 20_000 });
  assert.equal(await page.evaluate(() => (document.getElementById('verification') as HTMLDetailsElement).open), false);
  const box = await page.locator('#prompt').boundingBox();
  assert.ok(box && box.y + box.height <= 700, `the prompt is within the first screen (bottom at ${box?.y} + ${box?.height})`);
  assert.ok(await page.isVisible('#new-chat'));
  await page.close();
});

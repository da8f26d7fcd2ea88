// The chat page's script (bundled for browsers by client/node/page-bundle.ts). It runs the
// same SDK as Node: fetches evidence from the server directly, verifies it here, and
// encrypts every message in this page, so neither the proxy that served the page nor
// anything between sees a prompt. The prompt box stays disabled unless verification passed.
// When the server's session ends, the SDK attests and verifies a new one; the status line
// says so and the report shows the new session.
import { SealedClient, SealedClientError, describeEvent, isVerificationFailure, type SealedClientEvent } from '../sdk.js';
import { reportHtml } from '../report.js';
import type { ChatMessage, ChatParams } from '../types.js';
import type { PageConfig } from './html.js';

const $ = <T extends HTMLElement>(id: string) => document.getElementById(id) as T;

function setState(state: 'verifying' | 'verified' | 'rejected' | 'streaming' | 'error', text: string): void {
  document.body.dataset.state = state;
  $('status').textContent = text;
}

/**
 * The configuration comes only from the page that served this script (the local proxy),
 * never from the URL: a link must not be able to point the page at another server or
 * loosen its policy.
 */
function readConfig(): PageConfig {
  const config = JSON.parse($('sealed-config').textContent ?? 'null') as PageConfig | null;
  if (!config || typeof config.server !== 'string' || config.server === '') throw new Error('this page carries no server configuration');
  return config;
}

function describe(e: unknown): string {
  if (e instanceof SealedClientError) return `${e.reason ?? e.code}: ${e.message}`;
  return e instanceof Error ? e.message : String(e);
}

function verifiedText(client: SealedClient): string {
  const r = client.verification;
  return `Verified ${r.platform}${r.simulated ? ' (SIMULATED)' : ''}: model ${r.model.id}, ${r.checks.length} checks passed. Messages are encrypted in this page.`;
}

/** What happened to the session during the current turn, shown with the turn's outcome. */
let notice = '';

function onEvent(e: SealedClientEvent, client: SealedClient | undefined): void {
  notice = describeEvent(e);
  $('status').textContent = `${notice}…`;
  if (e.type === 'reattested' && client) {
    // A new session was verified in this page: show what was verified for it.
    $('report').innerHTML = reportHtml(client.verification);
    document.body.dataset.session = client.verification.session;
    document.body.dataset.reattested = String(Number(document.body.dataset.reattested ?? '0') + 1);
  }
}

async function main(): Promise<void> {
  let config: PageConfig;
  let client: SealedClient | undefined;
  try {
    config = readConfig();
    client = await SealedClient.connect(config.server, {
      policy: config.policy ?? undefined,
      allowSimulation: config.allowSimulation === true,
      onEvent: (e) => onEvent(e, client),
    });
  } catch (e) {
    const rejected = isVerificationFailure(e);
    setState(rejected ? 'rejected' : 'error', `${rejected ? 'rejected' : 'error'}: ${describe(e)} (nothing was sent)`);
    return;
  }
  $('report').innerHTML = reportHtml(client.verification); // reportHtml escapes every value
  document.body.dataset.session = client.verification.session;
  setState('verified', verifiedText(client));

  const history: ChatMessage[] = [];
  const prompt = $<HTMLInputElement>('prompt');
  const send = $<HTMLButtonElement>('send');
  prompt.disabled = false;
  send.disabled = false;

  $('ask').addEventListener('submit', (ev) => {
    ev.preventDefault();
    const text = prompt.value.trim();
    if (!text || send.disabled) return;
    prompt.value = '';
    void turn(client!, config, history, text, prompt, send);
  });
}

async function turn(client: SealedClient, config: PageConfig, history: ChatMessage[], text: string, prompt: HTMLInputElement, send: HTMLButtonElement): Promise<void> {
  const transcript = $('transcript');
  const you = document.createElement('div');
  you.className = 'msg user';
  you.textContent = text;
  const bot = document.createElement('div');
  bot.className = 'msg assistant';
  bot.dataset.done = 'false';
  transcript.append(you, bot);
  prompt.disabled = send.disabled = true;
  history.push({ role: 'user', content: text });
  setState('streaming', 'Streaming the answer (decrypted in this page)…');
  notice = '';
  let answer = '';
  try {
    const params: ChatParams & { stream: true } = { messages: history, stream: true };
    if (config.maxTokens !== undefined) params.max_tokens = config.maxTokens;
    for await (const chunk of await client.chat(params)) {
      const delta = chunk.choices?.[0]?.delta?.content;
      if (delta) {
        answer += delta;
        bot.textContent = answer;
        bot.dataset.chunks = String(Number(bot.dataset.chunks ?? '0') + 1);
      }
    }
    history.push({ role: 'assistant', content: answer });
    bot.dataset.done = 'true';
    setState('verified', notice ? `${verifiedText(client)} Note: ${notice}.` : verifiedText(client));
  } catch (e) {
    history.pop();
    bot.dataset.done = 'error';
    bot.textContent = answer + ' [the answer was cut off]';
    setState(isVerificationFailure(e) ? 'rejected' : 'error', `${isVerificationFailure(e) ? 'rejected' : 'error'}: ${describe(e)}${notice ? ` (${notice})` : ''}`);
  } finally {
    // A server that no longer verifies gets nothing more from this page.
    if (document.body.dataset.state !== 'rejected') {
      prompt.disabled = send.disabled = false;
      prompt.focus();
    }
  }
}

void main();

// The chat page's script (bundled for browsers by client/node/page-bundle.ts). It runs the
// same SDK as Node: fetches evidence from the server directly, verifies it here, and
// encrypts every message in this page, so neither the proxy that served the page nor
// anything between sees a prompt. The prompt box stays disabled unless verification passed.
// When the server's session ends, the SDK attests and verifies a new one; the status line
// says so and the report shows the new session. The conversation stays inside the model's
// context (client/conversation.ts); a refused request shows the server's message in place of
// the answer; "New chat" forgets every turn.
import { SealedClient, SealedClientError, describeEvent, isVerificationFailure, type SealedClientEvent } from '../sdk.js';
import { Conversation, refusalOf } from '../conversation.js';
import { reportHtml } from '../report.js';
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

  const conversation = new Conversation(client, config.maxTokens !== undefined ? { maxTokens: config.maxTokens } : {});
  const prompt = $<HTMLInputElement>('prompt');
  const send = $<HTMLButtonElement>('send');
  const fresh = $<HTMLButtonElement>('new-chat');
  prompt.disabled = false;
  send.disabled = false;
  fresh.disabled = false;

  $('ask').addEventListener('submit', (ev) => {
    ev.preventDefault();
    const text = prompt.value.trim();
    if (!text || send.disabled) return;
    prompt.value = '';
    void turn(client!, conversation, text, prompt, send);
  });
  fresh.addEventListener('click', () => {
    if (send.disabled) return; // not while an answer streams
    conversation.reset();
    $('transcript').replaceChildren();
    setState('verified', `${verifiedText(client!)} New chat: earlier messages are forgotten.`);
    prompt.focus();
  });
}

async function turn(client: SealedClient, conversation: Conversation, text: string, prompt: HTMLInputElement, send: HTMLButtonElement): Promise<void> {
  const transcript = $('transcript');
  const you = document.createElement('div');
  you.className = 'msg user';
  you.textContent = text;
  const bot = document.createElement('div');
  bot.className = 'msg assistant';
  bot.dataset.done = 'false';
  transcript.append(you, bot);
  prompt.disabled = send.disabled = true;
  setState('streaming', 'Streaming the answer (decrypted in this page)…');
  notice = '';
  let answer = '';
  try {
    const r = await conversation.send(text, (delta) => {
      answer += delta;
      bot.textContent = answer;
      bot.dataset.chunks = String(Number(bot.dataset.chunks ?? '0') + 1);
    });
    bot.dataset.done = 'true';
    const notes = [notice, r.dropped > 0 ? `the ${r.dropped} oldest messages were dropped to stay within the model's context` : ''].filter((n) => n);
    setState('verified', notes.length > 0 ? `${verifiedText(client)} Note: ${notes.join('; ')}.` : verifiedText(client));
  } catch (e) {
    const refusal = refusalOf(e);
    if (refusal) {
      // The server read the request and said no: its answer is the refusal, shown where the answer goes.
      bot.dataset.done = 'refused';
      bot.classList.add('refused');
      bot.textContent = `Refused: ${refusal.message}`;
      setState('verified', `${verifiedText(client)} The last message was refused; the conversation carries on without it.`);
    } else {
      bot.dataset.done = 'error';
      // Only a stream that broke after part of an answer was cut off; anything else never started.
      bot.textContent = answer ? `${answer} [the answer was cut off: ${describe(e)}]` : `Not answered: ${describe(e)}`;
      setState(isVerificationFailure(e) ? 'rejected' : 'error', `${isVerificationFailure(e) ? 'rejected' : 'error'}: ${describe(e)}${notice ? ` (${notice})` : ''}`);
    }
  } finally {
    // A server that no longer verifies gets nothing more from this page.
    if (document.body.dataset.state !== 'rejected') {
      prompt.disabled = send.disabled = false;
      prompt.focus();
    }
  }
}

void main();

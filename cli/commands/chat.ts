// `sealed chat`: verify the server, then talk to it. One prompt from the command line,
// or a conversation (history kept in memory only) read line by line from stdin.
import process from 'node:process';
import { createInterface } from 'node:readline';
import type { Command } from '../sealed.js';
import { Conversation, DEFAULT_MAX_TOKENS, refusalOf } from '../../client/conversation.js';
import {
  CONNECT_FLAGS, EXIT, ROUTE_HELP, UsageError, connectOptions, parseAndConnect, parseCliArgs, reportError, type ConnectOptions, type Writable,
} from '../../client/node/cli-common.js';

const HELP = `usage: sealed chat --url URL [--policy FILE] [--allow-simulation] [--relay URL] [--attest-via URL] [--max-tokens N] [--temperature T] [PROMPT]

Attests the server at URL, verifies its evidence (platform signature chain, the binding of
this client's fresh nonce and session to the session key, model, expiry and simulation flag,
and the policy), prints what was verified on stderr with a "privacy:" line saying what the
server can still link, and only then sends the prompt, encrypted to the attested key. The
answer streams to stdout as it is generated. Without PROMPT, reads a conversation from stdin,
one message per line (history is kept in memory only; /new starts a new conversation; end with
Ctrl-D or /exit). A conversation stays inside the model's context: when the history no longer
fits, the oldest turns are dropped (a line on stderr says how many). A request the server
refuses (HTTP 4xx: too long, a bad parameter) is shown on stderr as "refused: " and the
server's message; the conversation carries on without that turn.

When the server's session ends (restart, expiry, eviction: it answers 422), a new session is
attested and verified like the first, a line on stderr says so, and the message is sent again:
the server never decrypted it. An answer that does not decrypt is an error for that message
(it is not sent again) and the next message goes to a newly attested session.

options:
  --url URL            the server (e.g. http://127.0.0.1:8080)
  --policy FILE        policy JSON (docs/PROTOCOL.md keys: measurement, modelDigest, minTcb, ...)
  --allow-simulation   accept a simulated server (no hardware protection)
${ROUTE_HELP}
  --max-tokens N       at most N tokens per answer (default ${DEFAULT_MAX_TOKENS}, or a quarter of the
                       model's context where that is less)
  --temperature T      sampling temperature, 0 to 2 (default: the server's)
  -h, --help           this text

exit status: 0 done, 10 the server was rejected (stderr: "rejected: CODE: reason"; nothing was
sent), 2 usage, 1 any other error.
`;

export interface ChatIo {
  stdin: NodeJS.ReadableStream;
  stdout: Writable;
  stderr: Writable;
}

interface ChatOptions extends ConnectOptions {
  maxTokens?: number;
  temperature?: number;
  prompt?: string;
}

export async function parseChatArgs(argv: string[]): Promise<ChatOptions | 'help'> {
  const parsed = parseCliArgs({
    args: argv,
    allowPositionals: true,
    strict: true,
    options: {
      ...CONNECT_FLAGS,
      'max-tokens': { type: 'string' },
      temperature: { type: 'string' },
    },
  });
  const v = parsed.values;
  if (v.help) return 'help';
  const opts: ChatOptions = await connectOptions(v);
  if (v['max-tokens'] !== undefined) {
    const n = Number(v['max-tokens']);
    if (!/^\d+$/.test(v['max-tokens']) || !Number.isSafeInteger(n) || n < 1) throw new UsageError('--max-tokens must be a positive integer');
    opts.maxTokens = n;
  }
  if (v.temperature !== undefined) {
    const t = Number(v.temperature);
    if (v.temperature.trim() === '' || !Number.isFinite(t) || t < 0 || t > 2) throw new UsageError('--temperature must be a number from 0 to 2');
    opts.temperature = t;
  }
  if (parsed.positionals.length > 0) {
    opts.prompt = parsed.positionals.join(' ');
    if (opts.prompt.trim() === '') throw new UsageError('the prompt is empty');
  }
  return opts;
}

/** Streams one turn's answer to stdout (a newline ends it); a dropped-turns notice goes to stderr first. */
async function answer(conversation: Conversation, text: string, io: { stdout: Writable; stderr: Writable }): Promise<void> {
  let started = false;
  try {
    const r = await conversation.send(text, (delta) => {
      started = true;
      io.stdout.write(delta);
    });
    io.stdout.write('\n');
    if (r.dropped > 0) io.stderr.write(`sealed: dropped the ${r.dropped} oldest messages to stay within the model's context\n`);
  } catch (e) {
    if (started) io.stdout.write('\n');
    throw e;
  }
}

/** A refusal is the server's answer to this turn, not a failure of the client: say what it said. */
function reportTurnError(e: unknown, stderr: Writable): number {
  const refusal = refusalOf(e);
  if (refusal) {
    stderr.write(`refused: ${refusal.message}\n`);
    return EXIT.error;
  }
  return reportError(e, stderr);
}

export async function runChat(argv: string[], io: ChatIo): Promise<number> {
  const started = await parseAndConnect('chat', HELP, argv, parseChatArgs, io);
  if (typeof started === 'number') return started;
  const { opts, client } = started;

  const conversation = new Conversation(client, {
    ...(opts.maxTokens !== undefined && { maxTokens: opts.maxTokens }),
    ...(opts.temperature !== undefined && { temperature: opts.temperature }),
  });
  if (opts.prompt !== undefined) {
    try {
      await answer(conversation, opts.prompt, io);
      return EXIT.ok;
    } catch (e) {
      return reportTurnError(e, io.stderr);
    }
  }

  const rl = createInterface({ input: io.stdin, terminal: false });
  io.stderr.write('conversation: one message per line; /new starts over; Ctrl-D or /exit ends it\n> ');
  try {
    for await (const line of rl) {
      const text = line.trim();
      if (text === '/exit') break;
      if (text === '/new') {
        conversation.reset();
        io.stderr.write('sealed: new conversation (the earlier turns are forgotten)\n');
      } else if (text !== '') {
        try {
          await answer(conversation, text, io);
        } catch (e) {
          const code = reportTurnError(e, io.stderr);
          if (code === EXIT.rejected) return code; // re-attestation failed verification: stop talking
        }
      }
      io.stderr.write('> ');
    }
  } finally {
    rl.close();
  }
  io.stderr.write('\n');
  return EXIT.ok;
}

export const command: Command = {
  summary: 'verify a server, then chat with it (encrypted end to end)',
  run: (argv) => runChat(argv, { stdin: process.stdin, stdout: process.stdout, stderr: process.stderr }),
};

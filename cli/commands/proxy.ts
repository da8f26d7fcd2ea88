// `sealed proxy`: verify the server once, then serve a plain OpenAI-compatible API on
// this machine that encrypts every request to it, so unmodified tools can use it.
import process from 'node:process';
import type { Command } from '../sealed.js';
import { isLoopbackHost, parseListen } from '../../client/listen.js';
import { startProxy, type RunningProxy } from '../../client/proxy.js';
import { loadPageBundle } from '../../client/node/page-bundle.js';
import {
  CONNECT_FLAGS, EXIT, ROUTE_HELP, UsageError, connectOptions, parseAndConnect, parseCliArgs, parseServerUrl, reportError, type ConnectOptions, type Writable,
} from '../../client/node/cli-common.js';

const HELP = `usage: sealed proxy --url URL --listen HOST:PORT [--policy FILE] [--allow-simulation] [--relay URL] [--attest-via URL] [--force-listen]

Attests and verifies the server at URL (platform evidence; the binding of nonce, session, key,
model and expiry; policy), then serves on HOST:PORT a local OpenAI-compatible API whose every
request is encrypted to the attested session key. When that session ends (expiry, a server
restart: 422), it attests and verifies a new one, says so on stderr, and sends the refused
request again; a response that does not decrypt fails its request (502, never re-sent) and the
next request uses a new session. What it verified, and a "privacy:" line saying what the server
can still link, go to stderr; the /chat page runs its own client in the browser and talks to the
server directly, not through --relay or --attest-via. Routes:
  POST /v1/chat/completions   (stream: true relays each chunk as it is decrypted)
  POST /v1/completions
  GET  /v1/models, /v1/models/{id}
  GET  /        the verified attestation, as a page
  GET  /chat    a chat page that verifies the server again and encrypts in the browser
Point an OpenAI client at http://HOST:PORT/v1 (any API key).

options:
  --url URL            the server (e.g. http://127.0.0.1:8080)
  --listen HOST:PORT   where to listen; loopback only unless --force-listen (port 0: any free port)
  --policy FILE        policy JSON (docs/PROTOCOL.md keys: measurement, modelDigest, minTcb, ...)
  --allow-simulation   accept a simulated server (no hardware protection)
${ROUTE_HELP}
  --force-listen       allow a non-loopback address: anyone who can reach it can use this session
  -h, --help           this text

exit status: 0 stopped by SIGINT/SIGTERM, 10 the server was rejected (stderr: "rejected: CODE:
reason"; nothing was sent and nothing listens), 2 usage, 1 any other error.
`;

export interface ProxyOptions extends ConnectOptions {
  host: string;
  port: number;
  forceListen: boolean;
}

export async function parseProxyArgs(argv: string[]): Promise<ProxyOptions | 'help'> {
  const parsed = parseCliArgs({
    args: argv,
    allowPositionals: false,
    strict: true,
    options: {
      ...CONNECT_FLAGS,
      listen: { type: 'string' },
      'force-listen': { type: 'boolean', default: false },
    },
  });
  const v = parsed.values;
  if (v.help) return 'help';
  parseServerUrl(v.url); // a bad --url is reported before anything about --listen
  if (!v.listen) throw new UsageError('--listen HOST:PORT is required');
  let listen: { host: string; port: number };
  try {
    listen = parseListen(v.listen);
  } catch (e) {
    throw new UsageError(e instanceof Error ? e.message : String(e));
  }
  const forceListen = v['force-listen'] === true;
  if (!isLoopbackHost(listen.host) && !forceListen) {
    throw new UsageError(`refusing to listen on non-loopback address ${listen.host}: anyone who can reach it could use the session; pass --force-listen to do it anyway`);
  }
  return { ...(await connectOptions(v)), host: listen.host, port: listen.port, forceListen };
}

/** Loads the chat page's browser bundle once (built file, or bundled from a checkout's sources). */
function memoizedBundle(stderr: Writable): () => Promise<string> {
  let p: Promise<string> | undefined;
  return () => {
    p ??= loadPageBundle().catch((e: unknown) => {
      stderr.write(`sealed proxy: chat page unavailable: ${e instanceof Error ? e.message.split('\n')[0] : String(e)}\n`);
      throw e;
    });
    return p;
  };
}

export interface ProxyIo {
  stdout: Writable;
  stderr: Writable;
  /** Stops the proxy (tests); SIGINT/SIGTERM otherwise. */
  signal?: AbortSignal;
  onListening?: (proxy: RunningProxy) => void;
}

export async function runProxy(argv: string[], io: ProxyIo): Promise<number> {
  const started = await parseAndConnect('proxy', HELP, argv, parseProxyArgs, io);
  if (typeof started === 'number') return started;
  const { opts, client } = started;

  const script = memoizedBundle(io.stderr);
  void script().catch(() => {}); // build at start-up; /chat reports if it failed
  let proxy: RunningProxy;
  try {
    proxy = await startProxy({
      client,
      host: opts.host,
      port: opts.port,
      forceListen: opts.forceListen,
      page: { server: client.url.href, policy: opts.policy, allowSimulation: opts.allowSimulation, script },
    });
  } catch (e) {
    if (e instanceof Error && 'code' in e && typeof (e as { code: unknown }).code === 'string' && !(e as { code: string }).code.startsWith('bad_')) {
      io.stderr.write(`sealed proxy: cannot listen on ${opts.host}:${opts.port}: ${(e as { code: string }).code}\n`);
      return EXIT.error;
    }
    return reportError(e, io.stderr);
  }
  io.stderr.write(`listening on ${proxy.url} (OpenAI base URL ${proxy.url}/v1; attestation ${proxy.url}/; chat ${proxy.url}/chat)\n`);
  if (opts.relay !== undefined || opts.attestVia !== undefined) {
    // The page runs its own client in the browser, which this process cannot route.
    io.stderr.write('sealed proxy: the chat page at /chat attests and sends from the browser straight to the server, not through --relay or --attest-via\n');
  }
  io.onListening?.(proxy);

  await new Promise<void>((resolve) => {
    const stop = () => resolve();
    if (io.signal) {
      if (io.signal.aborted) return resolve();
      io.signal.addEventListener('abort', stop, { once: true });
    } else {
      process.once('SIGINT', stop);
      process.once('SIGTERM', stop);
    }
  });
  await proxy.close();
  return EXIT.ok;
}

export const command: Command = {
  summary: 'a local OpenAI-compatible endpoint that verifies the server and encrypts every request',
  run: (argv) => runProxy(argv, { stdout: process.stdout, stderr: process.stderr }),
};

// The local OpenAI-compatible proxy: plain HTTP on this machine, every request
// encrypted to the attested server by the SDK. Unmodified OpenAI tools point their
// base URL here. It listens on loopback unless forced, refuses requests whose Host is
// not its own (DNS rebinding) and non-JSON POSTs (cross-site "simple" requests), and
// never logs prompts or answers.
import { Hono, type Context } from 'hono';
import { serve } from '@hono/node-server';
import type { AddressInfo } from 'node:net';
import { SealedClient, SealedClientError, isVerificationFailure } from './sdk.js';
import { escapeHtml, reportHtml } from './report.js';
import { openAiChunks, sseEvent } from './sse.js';
import { chatPageHtml, PAGE_SCRIPT_PATH, type PageConfig } from './page/html.js';
import { isLoopbackHost } from './listen.js';
import { linkabilityNote } from './privacy.js';

export { isLoopbackHost, parseListen } from './listen.js';

/** An OpenAI request body is a few KiB; anything near this is not a chat. */
export const MAX_REQUEST_BYTES = 1 << 20;

export interface ProxyAppOptions {
  client: SealedClient;
  /** What the chat page should verify against (the page attests the server itself). */
  page?: { server: string; policy?: unknown; allowSimulation: boolean; maxTokens?: number; script: () => Promise<string> };
  /** Host names (without port) accepted in the Host header; undefined accepts any (a forced non-loopback listen). */
  allowedHostnames?: string[];
}

function openAiError(c: Context, status: number, message: string, type: string, code: string | null = null): Response {
  return c.json({ error: { message, type, param: null, code } }, status as 400);
}

/** Maps an SDK failure to what an OpenAI client should see; never echoes request content. */
function sdkFailure(c: Context, e: unknown): Response {
  if (isVerificationFailure(e)) {
    const err = e as SealedClientError;
    return openAiError(c, 502, `the server no longer verifies: ${err.reason ?? err.code}`, 'attestation_error', err.reason ?? err.code);
  }
  if (e instanceof SealedClientError) {
    // Busy or rate-limited, for a request or for the attestation of a new session: retry later.
    if ((e.code === 'server_error' || e.code === 'attestation_unavailable') && (e.status === 429 || e.status === 503)) {
      return openAiError(c, e.status, 'the server is busy; retry later', 'server_busy', e.code);
    }
    if (e.code === 'bad_options') return openAiError(c, 400, e.message, 'invalid_request_error', e.code);
    return openAiError(c, 502, `upstream failure: ${e.code}`, 'upstream_error', e.code);
  }
  return openAiError(c, 500, 'internal error', 'internal_error');
}

async function readJsonBody(c: Context): Promise<{ ok: true; body: Record<string, unknown> } | { ok: false; res: Response }> {
  const type = c.req.header('content-type') ?? '';
  if (!/^application\/json\b/i.test(type)) {
    return { ok: false, res: openAiError(c, 415, 'content-type must be application/json', 'invalid_request_error') };
  }
  const declared = Number(c.req.header('content-length') ?? '0');
  if (declared > MAX_REQUEST_BYTES) return { ok: false, res: openAiError(c, 413, 'request too large', 'invalid_request_error') };
  const reader = c.req.raw.body?.getReader();
  const parts: Uint8Array[] = [];
  let n = 0;
  if (reader) {
    for (;;) {
      const r = await reader.read();
      if (r.done) break;
      n += r.value.length;
      if (n > MAX_REQUEST_BYTES) {
        await reader.cancel().catch(() => {});
        return { ok: false, res: openAiError(c, 413, 'request too large', 'invalid_request_error') };
      }
      parts.push(r.value);
    }
  }
  let value: unknown;
  try {
    value = JSON.parse(new TextDecoder('utf-8', { fatal: true }).decode(Buffer.concat(parts)));
  } catch {
    return { ok: false, res: openAiError(c, 400, 'request body is not valid JSON', 'invalid_request_error') };
  }
  if (typeof value !== 'object' || value === null || Array.isArray(value)) {
    return { ok: false, res: openAiError(c, 400, 'request body must be a JSON object', 'invalid_request_error') };
  }
  return { ok: true, body: value as Record<string, unknown> };
}

/** The decrypted inner response, relayed as is (status, content type, body). */
function relay(res: { status: number; headers: Record<string, string>; body: Uint8Array }): Response {
  return new Response(res.body as BodyInit, {
    status: res.status,
    headers: { 'content-type': res.headers['content-type'] ?? 'application/json' },
  });
}

async function forward(c: Context, client: SealedClient, path: string): Promise<Response> {
  const parsed = await readJsonBody(c);
  if (!parsed.ok) return parsed.res;
  const body = parsed.body;
  try {
    if (body.stream !== true) return relay(await client.request('POST', path, body));
    const res = await client.requestStream('POST', path, body);
    const type = res.headers['content-type'] ?? '';
    if (res.status < 200 || res.status > 299 || !/^text\/event-stream\b/i.test(type)) {
      const chunks: Uint8Array[] = [];
      for await (const b of res.body) chunks.push(b);
      return relay({ status: res.status, headers: res.headers, body: Buffer.concat(chunks) });
    }
    return new Response(sseRelay(res.body), {
      status: 200,
      headers: { 'content-type': 'text/event-stream; charset=utf-8', 'cache-control': 'no-cache', 'x-accel-buffering': 'no' },
    });
  } catch (e) {
    return sdkFailure(c, e);
  }
}

/**
 * Re-emits each verified chunk the moment it is decrypted. A stream that breaks (truncated,
 * undecryptable) ends with an error event and an aborted connection, so an OpenAI client
 * raises instead of taking a short answer for a whole one.
 */
function sseRelay(body: AsyncIterable<Uint8Array>): ReadableStream<Uint8Array> {
  const enc = new TextEncoder();
  const it = openAiChunks(body)[Symbol.asyncIterator]();
  return new ReadableStream<Uint8Array>({
    async pull(controller) {
      try {
        const r = await it.next();
        if (r.done) {
          controller.enqueue(enc.encode(sseEvent('[DONE]')));
          controller.close();
        } else {
          controller.enqueue(enc.encode(sseEvent(JSON.stringify(r.value))));
        }
      } catch (e) {
        const code = e instanceof SealedClientError ? e.code : 'internal';
        controller.enqueue(enc.encode(sseEvent(JSON.stringify({ error: { message: `upstream stream failed: ${code}`, type: 'upstream_error', code } }))));
        // The HTTP server logs the stream's error: one clean line, no stack, no request content.
        const abort = new Error(`sealed proxy: upstream stream failed (${code}); connection aborted`);
        abort.stack = abort.message;
        controller.error(abort);
      }
    },
    async cancel() {
      await it.return?.();
    },
  });
}

const PAGE_STYLE = `body{font:15px/1.5 system-ui,sans-serif;max-width:60rem;margin:2rem auto;padding:0 1rem;color:#1b1b1b}
dt{font-weight:600;margin-top:.4rem}dd{margin:0 0 0 1rem;font-family:ui-monospace,monospace;word-break:break-all}
.warn{background:#fff3cd;border:1px solid #e0c36a;padding:.5rem .8rem}.ok{background:#e6f4ea;border:1px solid #8bc79b;padding:.5rem .8rem}`;

function attestationPage(client: SealedClient): string {
  return `<!doctype html><html lang="en"><head><meta charset="utf-8"><title>sealed proxy: verified attestation</title>
<meta name="viewport" content="width=device-width,initial-scale=1"><style>${PAGE_STYLE}</style></head><body>
<h1>Verified attestation</h1>
<p>This proxy encrypts every request to the session key of the server below, which it verified before accepting any.
Whenever that session ends, it attests and verifies a new one; this page shows the current one.</p>
${reportHtml(client.verification)}
<p>${escapeHtml(linkabilityNote(client.route))}</p>
<p>OpenAI-compatible API: <code>${escapeHtml('/v1/chat/completions')}</code>, <code>/v1/completions</code>, <code>/v1/models</code>.
<a href="/chat">Chat page</a> (verifies the server again, in your browser).</p>
</body></html>`;
}

export function createProxyApp(opts: ProxyAppOptions): Hono {
  const { client } = opts;
  const app = new Hono();

  app.use('*', async (c, next) => {
    if (opts.allowedHostnames) {
      let hostname = '';
      try {
        hostname = new URL(`http://${c.req.header('host') ?? ''}`).hostname;
      } catch {
        hostname = '';
      }
      if (!opts.allowedHostnames.includes(hostname)) return openAiError(c, 421, 'unexpected Host header', 'invalid_request_error');
    }
    await next();
    c.header('x-content-type-options', 'nosniff');
    c.header('referrer-policy', 'no-referrer');
  });

  app.get('/', (c) => {
    c.header('content-security-policy', "default-src 'none'; style-src 'unsafe-inline'");
    return c.html(attestationPage(client));
  });

  app.get('/v1/models', async (c) => {
    try {
      return relay(await client.request('GET', '/v1/models'));
    } catch (e) {
      return sdkFailure(c, e);
    }
  });
  app.get('/v1/models/:id{.+}', async (c) => {
    try {
      return relay(await client.request('GET', `/v1/models/${encodeURIComponent(c.req.param('id'))}`));
    } catch (e) {
      return sdkFailure(c, e);
    }
  });
  app.post('/v1/chat/completions', (c) => forward(c, client, '/v1/chat/completions'));
  app.post('/v1/completions', (c) => forward(c, client, '/v1/completions'));

  if (opts.page) {
    const page = opts.page;
    const config: PageConfig = { server: page.server, policy: page.policy, allowSimulation: page.allowSimulation };
    if (page.maxTokens !== undefined) config.maxTokens = page.maxTokens;
    const connectSrc = new URL(page.server).origin;
    app.get('/chat', (c) => {
      c.header('content-security-policy', `default-src 'none'; script-src 'self'; style-src 'unsafe-inline'; connect-src ${connectSrc}`);
      return c.html(chatPageHtml(config));
    });
    app.get(PAGE_SCRIPT_PATH, async (c) => {
      let script: string;
      try {
        script = await page.script();
      } catch {
        return c.text('chat page script unavailable', 500);
      }
      return c.body(script, 200, { 'content-type': 'text/javascript; charset=utf-8', 'cache-control': 'no-store' });
    });
  }

  app.notFound((c) => openAiError(c, 404, 'no such route', 'invalid_request_error', 'not_found'));
  app.onError((_e, c) => openAiError(c, 500, 'internal error', 'internal_error'));
  return app;
}

export interface RunningProxy {
  url: string;
  host: string;
  port: number;
  close(): Promise<void>;
}

export interface StartProxyOptions {
  client: SealedClient;
  host: string;
  port: number;
  /** Listen on a non-loopback address (anyone who can reach it can use the session). */
  forceListen?: boolean;
  page?: ProxyAppOptions['page'];
}

export async function startProxy(o: StartProxyOptions): Promise<RunningProxy> {
  const loopback = isLoopbackHost(o.host);
  if (!loopback && !o.forceListen) {
    throw new SealedClientError('bad_options', `refusing to listen on non-loopback address ${o.host} without --force-listen`);
  }
  const bare = o.host.replace(/^\[|\]$/g, '');
  const allowedHostnames = loopback ? ['localhost', '127.0.0.1', '[::1]', bare.includes(':') ? `[${bare}]` : bare] : undefined;
  const app = createProxyApp({ client: o.client, page: o.page, allowedHostnames });
  return new Promise((resolve, reject) => {
    const server = serve({ fetch: app.fetch, hostname: bare, port: o.port }, (info: AddressInfo) => {
      const hostForUrl = bare.includes(':') ? `[${bare}]` : bare;
      resolve({
        url: `http://${hostForUrl}:${info.port}`,
        host: bare,
        port: info.port,
        close: () =>
          new Promise<void>((res) => {
            server.close(() => res());
            (server as unknown as { closeAllConnections?: () => void }).closeAllConnections?.();
          }),
      });
    });
    server.once('error', reject);
  });
}

// In Node, the SDK's requests go over node:http rather than the global fetch (undici). For
// this client's traffic, one small POST and a stream of ~300-byte chunks, undici's machinery
// is most of the client's cost: about 1.1 ms of CPU per request and a web stream per body
// (measured against a local server: 3.2 ms of client CPU per one-token request with fetch,
// 2.0-2.3 ms with this; time to first token 6.6-6.9 ms against 4.9-5.6 ms). Only the SDK's
// case is handled here (an http or https URL, a byte or string body); any other request goes to
// the platform's fetch. One difference is deliberate: a redirect is not followed but answered as
// it is, and the SDK then reports the status. It attested one server and seals to it; a request
// moved elsewhere by a 3xx is an error to show, not a detour to take silently.
// Like native-crypto.ts this module imports nothing from Node: node:http and node:https are
// loaded at run time only where `process.versions.node` says Node is running.
import type * as Http from 'node:http';
import type * as Https from 'node:https';
import { isNode } from './runtime.js';

/** Modules to load: variables, so browser bundlers do not try to resolve or inline them. */
const NODE_HTTP = 'node:http';
const NODE_HTTPS = 'node:https';

const NULL_BODY = new Set([101, 103, 204, 205, 304]);

let loading: Promise<typeof fetch | undefined> | undefined;

/** A fetch over node:http when running in Node (once per process), else undefined. */
export function nodeFetchIfNode(fallback: typeof fetch): Promise<typeof fetch | undefined> {
  loading ??= load(fallback);
  return loading;
}

async function load(fallback: typeof fetch): Promise<typeof fetch | undefined> {
  if (!isNode()) return undefined;
  try {
    const [http, https] = await Promise.all([import(/* @vite-ignore */ NODE_HTTP), import(/* @vite-ignore */ NODE_HTTPS)]);
    return createNodeFetch({ http: http as typeof Http, https: https as typeof Https }, fallback);
  } catch {
    return undefined;
  }
}

type Body = Uint8Array | string;

/** The part of a request this fetch handles itself, or null when the platform's fetch must. */
function simpleRequest(input: unknown, init: RequestInit | undefined): { url: URL; method: string; headers: Headers; body: Body | null } | null {
  if (typeof input !== 'string' && !(input instanceof URL)) return null;
  let url: URL;
  try {
    url = new URL(String(input));
  } catch {
    return null;
  }
  if (url.protocol !== 'http:' && url.protocol !== 'https:') return null;
  if (url.username !== '' || url.password !== '') return null;
  const i = init ?? {};
  if (i.redirect !== undefined || i.window !== undefined) return null;
  const method = (i.method ?? 'GET').toUpperCase();
  let body: Body | null = null;
  if (i.body !== undefined && i.body !== null) {
    if (typeof i.body === 'string') body = i.body;
    else if (i.body instanceof Uint8Array) body = i.body;
    else if (i.body instanceof ArrayBuffer) body = new Uint8Array(i.body);
    else return null; // streams, forms, blobs: fetch's own encoding rules apply
    if (method === 'GET' || method === 'HEAD') return null; // fetch refuses these; let it say so
  }
  return { url, method, headers: new Headers(i.headers), body };
}

/**
 * A fetch that sends simple requests over node:http/https with keep-alive agents and answers a
 * web Response whose body streams the socket's reads as they come (paused while unread).
 * Network failures reject with TypeError('fetch failed') as fetch does; an abort rejects with
 * the signal's reason, or errors the body once it is streaming.
 */
export function createNodeFetch(mods: { http: typeof Http; https: typeof Https }, fallback: typeof fetch): typeof fetch {
  const agents = {
    'http:': new mods.http.Agent({ keepAlive: true }),
    'https:': new mods.https.Agent({ keepAlive: true }),
  };
  const nodeFetch = (input: string | URL | Request, init?: RequestInit): Promise<Response> => {
    const simple = simpleRequest(input, init);
    if (!simple) return fallback(input, init);
    const { url, method, headers, body } = simple;
    const signal = init?.signal ?? undefined;
    if (signal?.aborted) return Promise.reject(abortReason(signal));
    return new Promise<Response>((resolve, reject) => {
      const outHeaders: Record<string, string> = {};
      headers.forEach((value, name) => {
        outHeaders[name] = value;
      });
      const bytes = typeof body === 'string' ? new TextEncoder().encode(body) : body;
      if (bytes && outHeaders['content-type'] === undefined && typeof body === 'string') outHeaders['content-type'] = 'text/plain;charset=UTF-8';
      if (bytes) outHeaders['content-length'] = String(bytes.byteLength);
      else if (method === 'POST' || method === 'PUT') outHeaders['content-length'] = '0';
      const mod = url.protocol === 'https:' ? mods.https : mods.http;
      const req = mod.request(url, { method, headers: outHeaders, agent: agents[url.protocol as 'http:' | 'https:'] });
      let settled = false;
      let body$: ReadableStreamDefaultController<Uint8Array> | null = null;
      let bodyDone = false;
      const failBody = (reason: unknown): void => {
        if (bodyDone || !body$) return;
        bodyDone = true;
        try {
          body$.error(reason);
        } catch {
          // already errored or closed
        }
      };
      const onAbort = (): void => {
        const reason = abortReason(signal!);
        req.destroy();
        if (!settled) {
          settled = true;
          reject(reason);
        } else failBody(reason);
      };
      signal?.addEventListener('abort', onAbort, { once: true });
      const done = (): void => signal?.removeEventListener('abort', onAbort);
      req.on('error', (cause) => {
        if (!settled) {
          settled = true;
          done();
          reject(new TypeError('fetch failed', { cause }));
        } else failBody(new TypeError('terminated', { cause }));
      });
      req.on('response', (res: Http.IncomingMessage) => {
        const status = res.statusCode ?? 0;
        const responseHeaders = new Headers();
        for (let i = 0; i + 1 < res.rawHeaders.length; i += 2) {
          try {
            responseHeaders.append(res.rawHeaders[i]!, res.rawHeaders[i + 1]!);
          } catch {
            // a field fetch would not expose either (invalid name or value)
          }
        }
        let stream: ReadableStream<Uint8Array> | null = null;
        if (!NULL_BODY.has(status) && method !== 'HEAD') {
          stream = new ReadableStream<Uint8Array>(
            {
              start(controller) {
                body$ = controller;
              },
              pull() {
                res.resume();
              },
              cancel() {
                bodyDone = true;
                done();
                res.destroy();
              },
            },
            { highWaterMark: 1 },
          );
          res.on('data', (chunk: Uint8Array) => {
            if (bodyDone) return;
            body$!.enqueue(chunk);
            if ((body$!.desiredSize ?? 1) <= 0) res.pause();
          });
          res.on('end', () => {
            if (bodyDone) return;
            bodyDone = true;
            done();
            body$!.close();
          });
          res.on('error', (cause) => failBody(new TypeError('terminated', { cause })));
          res.on('close', () => {
            // Closed before its end: the connection was cut mid-body.
            if (!res.complete) failBody(new TypeError('terminated'));
            done();
          });
          res.pause();
        } else {
          res.resume();
          done();
        }
        let response: Response;
        try {
          response = new Response(stream, { status, statusText: res.statusMessage ?? '', headers: responseHeaders });
        } catch (cause) {
          // A status fetch cannot represent (below 200, say): fetch itself would have failed.
          res.destroy();
          settled = true;
          done();
          reject(new TypeError('fetch failed', { cause }));
          return;
        }
        settled = true;
        resolve(response);
      });
      req.end(bytes ?? undefined);
    });
  };
  return nodeFetch as typeof fetch;
}

function abortReason(signal: AbortSignal): unknown {
  return signal.reason ?? new DOMException('This operation was aborted', 'AbortError');
}

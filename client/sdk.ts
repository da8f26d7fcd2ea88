// SealedClient: the one client code base for Node and browsers (fetch, web streams,
// WebCrypto, transport/ and enclave/ only). It verifies the server before sending
// anything and encrypts every request to the attested session's key. Sessions end
// (expiry, restart, eviction): a request the server refused with 422 before decrypting it
// is sealed again to a newly attested session; a response that does not decrypt is an
// error for its request (which someone may have decrypted, so it is never re-sent) and the
// next request attests a new session. Each change of session is reported through onEvent.
import { parsePolicy, type Policy } from '../enclave/policy.js';
import { attest, EXPIRY_MARGIN_MS, sessionUrl, type Session } from './attest.js';
import { SealedClientError } from './errors.js';
import type { EventListener, ReattestReason, SealedClientEvent } from './events.js';
import { checkRetryLimits, retryAfterMs, sleep, type RetryLimits } from './retry.js';
import type { VerificationReport } from './report.js';
import { openAiChunkBatches } from './sse.js';
import { flatten } from './response-stream.js';
import { useNativeCryptoIfNode } from './native-crypto.js';
import { nodeFetchIfNode } from './native-http.js';
import { collect, readerChunks } from './streams.js';
import type {
  ChatCompletion,
  ChatCompletionChunk,
  ChatParams,
  Completion,
  CompletionParams,
  InnerResponse,
  InnerStreamResponse,
  ModelList,
  RequestOptions,
} from './types.js';
import { OHTTP_CHUNKED_REQ, OHTTP_CHUNKED_RES, OHTTP_REQ, OHTTP_RES, sealChunkedRequest, sealRequest, type InnerRequest, type OpenedStream, type SessionKeyConfig } from './wire.js';

export { SealedClientError, isSealedClientError, isVerificationFailure } from './errors.js';
export type { SealedClientErrorCode } from './errors.js';
export type { VerificationReport } from './report.js';
export type { SealedClientEvent, ReattestReason } from './events.js';
export { describeEvent } from './events.js';
export { formatSummary, reportHtml } from './report.js';
export { linkabilityNote, type Route } from './privacy.js';
export { Conversation, DEFAULT_MAX_TOKENS, parseContextError, refusalOf } from './conversation.js';
export type { ConversationOptions, TurnResult } from './conversation.js';
export type * from './types.js';

export interface ConnectOptions {
  /** Policy JSON (CONTRACT.md keys); absent keys are not pinned, the strict defaults always apply. */
  policy?: unknown;
  /** Accept a simulated server (no hardware protection). Default false. */
  allowSimulation?: boolean;
  /** fetch to use (default: in Node, a keep-alive node:http transport (client/native-http.ts); elsewhere the global fetch). */
  fetch?: typeof fetch;
  signal?: AbortSignal;
  /**
   * Told when the client attests a new session in place of one that ended, and when it waits
   * out a busy server (429/503 with Retry-After). For logs and status lines: it carries no
   * request content. A listener that throws is ignored.
   */
  onEvent?: (event: SealedClientEvent) => void;
  /** How often and how long a 429/503 is waited out (default 2 retries, at most 10 s each). */
  retry?: { retries?: number; maxWaitMs?: number };
  /**
   * An OHTTP relay for the encapsulated requests: a base URL used like the server's, so each
   * request is `POST {relay}/v1/sessions/{sid}/ohttp`; the relay is configured with the server
   * (gateway) and forwards the body and content type there. The server then sees the relay's
   * address for those requests, not this client's. See README "What the server can link".
   */
  relay?: string | URL;
  /**
   * A forwarding proxy for the attestation: `GET {attestVia}/v1/sessions/{sid}/attestation?nonce=`
   * is sent there instead of to the server. Without it the server sees this client's address
   * when the session is made, and the session id links it to every request, relayed or not.
   */
  attestVia?: string | URL;
}

const OHTTP_KEY_PROBLEM = 'https://iana.org/assignments/http-problem-types#ohttp-key';
/** Problem documents are small; never buffer an unbounded error body. */
const MAX_PROBLEM_BYTES = 16 << 10;
/** Non-streamed responses (a whole completion) stay far below this. */
const MAX_RESPONSE_BYTES = 16 << 20;

export class SealedClient {
  /** Base URL of the server (ends with '/'). */
  readonly url: URL;
  private session: Session;
  private reattesting: Promise<Session> | undefined;
  /** Set when the current session must not carry another request, and why. */
  private ended: { session: Session; reason: ReattestReason } | undefined;
  private readonly opts: { policy?: Policy; pinned: string[]; allowSimulation: boolean; fetch: typeof fetch; retry: RetryLimits; onEvent: EventListener; attestVia?: URL };
  /** Where encapsulated requests are posted: the relay when one is given, else the server. */
  private readonly gateway: URL;

  private constructor(url: URL, session: Session, opts: SealedClient['opts'], relay: URL | undefined) {
    this.url = url;
    this.session = session;
    this.opts = opts;
    this.gateway = relay ?? url;
  }

  /** Which hops the server sees instead of this client: for the note a client shows its user (client/privacy.ts). */
  get route(): { relay: boolean; attestVia: boolean } {
    return { relay: this.gateway !== this.url, attestVia: this.opts.attestVia !== undefined };
  }

  /** Attests the server at `url` and verifies it; rejects with SealedClientError (nothing sent) if it does not verify. */
  static async connect(url: string | URL, options: ConnectOptions = {}): Promise<SealedClient> {
    const base = parseBaseUrl(url);
    await useNativeCryptoIfNode();
    const platformFetch = globalThis.fetch.bind(globalThis);
    // A fetch the caller passed is used as it is; otherwise, in Node, node:http (native-http.ts).
    const f = options.fetch ?? (await nodeFetchIfNode(platformFetch)) ?? platformFetch;
    let policy: Policy | undefined;
    if (options.policy !== undefined) {
      // Parsed once, up front and into our own copy: a misspelt or malformed pin is the caller's
      // error (never "not pinned"), and later changes to their object cannot loosen a pin.
      try {
        policy = parsePolicy(options.policy);
      } catch (e) {
        throw new SealedClientError('bad_options', e instanceof Error ? e.message : 'invalid policy', { cause: e });
      }
    }
    if (options.onEvent !== undefined && typeof options.onEvent !== 'function') throw new SealedClientError('bad_options', 'onEvent must be a function');
    const listener = options.onEvent;
    const onEvent: EventListener = (e) => {
      try {
        listener?.(e);
      } catch {
        // A logging callback must not change what happens to a request.
      }
    };
    const relay = options.relay === undefined ? undefined : parseBaseUrl(options.relay, 'relay URL');
    const attestVia = options.attestVia === undefined ? undefined : parseBaseUrl(options.attestVia, 'attestVia URL');
    const opts = {
      policy, pinned: pinnedKeys(options.policy), allowSimulation: options.allowSimulation === true, fetch: f, retry: checkRetryLimits(options.retry), onEvent,
      ...(attestVia && { attestVia }),
    };
    const session = await attest(base, { ...opts, signal: options.signal });
    return new SealedClient(base, session, opts, relay);
  }

  /** What was verified for the current session (replaced on re-attestation). */
  get verification(): VerificationReport {
    return this.session.report;
  }

  get model(): { id: string; digest: string } {
    return this.session.report.model;
  }

  async models(options?: RequestOptions): Promise<ModelList> {
    return this.json<ModelList>(await this.request('GET', '/v1/models', undefined, options));
  }

  chat(params: ChatParams & { stream: true }, options?: RequestOptions): Promise<AsyncIterable<ChatCompletionChunk>>;
  chat(params: ChatParams & { stream?: false }, options?: RequestOptions): Promise<ChatCompletion>;
  async chat(params: ChatParams, options?: RequestOptions): Promise<ChatCompletion | AsyncIterable<ChatCompletionChunk>> {
    return this.openAi('/v1/chat/completions', params, options) as Promise<ChatCompletion | AsyncIterable<ChatCompletionChunk>>;
  }

  complete(params: CompletionParams & { stream: true }, options?: RequestOptions): Promise<AsyncIterable<Completion>>;
  complete(params: CompletionParams & { stream?: false }, options?: RequestOptions): Promise<Completion>;
  async complete(params: CompletionParams, options?: RequestOptions): Promise<Completion | AsyncIterable<Completion>> {
    return this.openAi('/v1/completions', params, options) as Promise<Completion | AsyncIterable<Completion>>;
  }

  /**
   * Sends one encrypted request and returns the decrypted response whatever its status
   * (the proxy passes inner 4xx through). `body` is JSON-encoded when given.
   */
  async request(method: string, path: string, body?: unknown, options: RequestOptions = {}): Promise<InnerResponse> {
    const { res, sealed, session } = await this.exchange(innerRequest(method, path, body), sealRequest, [OHTTP_REQ, OHTTP_RES], options);
    try {
      return sealed.open(await readAll(res, MAX_RESPONSE_BYTES));
    } catch (e) {
      throw this.afterFailure(e, session);
    }
  }

  /**
   * Sends one encrypted request over chunked OHTTP; the response body is decrypted and
   * yielded as it arrives (for `stream: true` requests). A cut-off response throws
   * `truncated` from the body iterator.
   */
  async requestStream(method: string, path: string, body?: unknown, options: RequestOptions = {}): Promise<InnerStreamResponse> {
    const { batches, ...head } = await this.openStream(method, path, body, options);
    return { ...head, body: flatten(batches) };
  }

  /** requestStream's core: the body as one array of decrypted pieces per network read. */
  private async openStream(method: string, path: string, body: unknown, options: RequestOptions): Promise<OpenedStream> {
    const { res, sealed, session } = await this.exchange(
      innerRequest(method, path, body),
      sealChunkedRequest,
      [OHTTP_CHUNKED_REQ, OHTTP_CHUNKED_RES],
      options,
    );
    // A chunk that fails to decrypt, at the head or later in the body, ends the session as well as the stream.
    return sealed.openStream(res.body ?? emptyStream(), (e) => this.afterFailure(e, session));
  }

  /**
   * A response that does not decrypt may not come from the attested session (or the session's
   * key is not what was attested): stop using that session. The request is not sent again.
   */
  private afterFailure(e: unknown, session: Session): unknown {
    if (e instanceof SealedClientError && e.code === 'response_undecryptable') this.retire(session, 'response_undecryptable');
    return e;
  }

  private async openAi(path: string, params: ChatParams | CompletionParams, options?: RequestOptions): Promise<unknown> {
    if (typeof params !== 'object' || params === null) throw new SealedClientError('bad_options', 'params must be an object');
    const body = { ...params, model: params.model ?? this.model.id };
    if (params.stream !== true) return this.json(await this.request('POST', path, body, options));
    const res = await this.openStream('POST', path, body, options ?? {});
    if (res.status < 200 || res.status > 299) throw httpError(res.status, await collect(flatten(res.batches), MAX_PROBLEM_BYTES));
    if (!/^text\/event-stream\b/i.test(res.headers['content-type'] ?? '')) {
      await res.cancel();
      throw new SealedClientError('response_malformed', 'streamed response is not text/event-stream');
    }
    return openAiChunkBatches(res.batches);
  }

  private json<T>(res: InnerResponse): T {
    if (res.status < 200 || res.status > 299) throw httpError(res.status, res.body);
    try {
      return JSON.parse(new TextDecoder('utf-8', { fatal: true }).decode(res.body)) as T;
    } catch (cause) {
      throw new SealedClientError('response_malformed', 'response is not JSON', { cause });
    }
  }

  /** The current session, attesting a new one first if it has expired or was given up. */
  private async current(signal?: AbortSignal): Promise<Session> {
    const s = this.session;
    if (this.ended?.session === s) return this.reattest(s, this.ended.reason, signal);
    if (Date.now() < s.expiresAtMs - EXPIRY_MARGIN_MS) return s;
    return this.reattest(s, 'expired', signal);
  }

  /** The next request attests a new session instead of using `session`. */
  private retire(session: Session, reason: ReattestReason): void {
    if (this.session === session && this.ended?.session !== session) this.ended = { session, reason };
  }

  /** One re-attestation shared by every request that found `stale` unusable. */
  private async reattest(stale: Session, reason: ReattestReason, signal?: AbortSignal): Promise<Session> {
    if (this.session !== stale) return this.session; // someone already replaced it
    if (!this.reattesting) {
      this.reattesting = attest(this.url, { ...this.opts, signal }).then(
        (s) => {
          this.session = s;
          this.ended = undefined;
          this.reattesting = undefined;
          this.opts.onEvent({ type: 'reattested', reason, previous: stale.id, session: s.id });
          return s;
        },
        (e: unknown) => {
          this.reattesting = undefined;
          throw e;
        },
      );
    }
    return this.reattesting;
  }

  /**
   * Seals `inner` to the session key and posts it. Only refusals the server makes without
   * answering the request are sent again, each time sealed anew: a 422 ohttp-key (the session
   * is gone; the request was never decrypted) once, to a newly attested session; a 503
   * (starting, draining, overloaded: not processed) after its Retry-After, a bounded number of
   * times. Returns the 200 response, its opener and the session it was sealed to.
   */
  private async exchange<S extends Sealed>(inner: InnerRequest, seal: (k: SessionKeyConfig, r: InnerRequest) => S, mediaType: [string, string], options: RequestOptions): Promise<{ res: Response; sealed: S; session: Session }> {
    let session = await this.current(options.signal);
    let reattested = false;
    let waits = 0;
    for (;;) {
      const sealed = seal(session.key, inner);
      let res: Response;
      try {
        res = await this.opts.fetch(sessionUrl(this.gateway, session.id, 'ohttp'), {
          method: 'POST',
          headers: { 'content-type': mediaType[0] },
          body: sealed.bytes as BufferSource,
          signal: options.signal,
        });
      } catch (cause) {
        throw new SealedClientError('network', 'could not reach the server', { cause });
      }
      if (res.status === 422 && (await isOhttpKeyProblem(res))) {
        if (reattested) {
          this.retire(session, 'session_unknown');
          throw new SealedClientError('key_rejected', 'the server rejected a freshly attested session', { status: 422 });
        }
        session = await this.reattest(session, 'session_unknown', options.signal);
        reattested = true;
        continue;
      }
      if ((res.status === 502 || res.status === 503 || res.status === 504) && !isProblemDocument(res)) {
        // Not the server's own refusal (those are problem documents) but a load balancer's: the
        // replica holding this session is gone or unreachable. A 503 from a balancer means no
        // replica was tried, so the request was never decrypted and goes again, once, to a new
        // session (which the balancer places on a live replica). After a 502 or 504 the request
        // may have reached the replica and been decrypted: it is not sent again.
        await res.body?.cancel().catch(() => {});
        if (res.status === 503 && !reattested) {
          session = await this.reattest(session, 'replica_unreachable', options.signal);
          reattested = true;
          continue;
        }
        this.retire(session, 'replica_unreachable');
        throw new SealedClientError(
          'server_error',
          `the load balancer answered HTTP ${res.status} for the session's replica; the request ${res.status === 503 ? 'was not delivered' : 'may have been delivered and is not sent again'}; the next request attests a new session`,
          { status: res.status },
        );
      }
      if (res.status === 503) {
        await res.body?.cancel().catch(() => {});
        const waitMs = retryAfterMs(res.headers.get('retry-after'));
        if (waits < this.opts.retry.retries && waitMs <= this.opts.retry.maxWaitMs) {
          waits++;
          this.opts.onEvent({ type: 'retrying', what: 'request', status: 503, waitMs });
          await sleep(waitMs, options.signal);
          continue;
        }
        throw new SealedClientError('server_error', `server answered HTTP 503 (busy or restarting; it asked for a wait of ${Math.ceil(waitMs / 1000)} s)`, { status: 503 });
      }
      if (res.status === 429) {
        // The session's request allowance is spent: this request fails, the next uses a new session.
        await res.body?.cancel().catch(() => {});
        this.retire(session, 'session_exhausted');
        throw new SealedClientError('server_error', 'server answered HTTP 429 (session request limit); the next request attests a new session', { status: 429 });
      }
      if (res.status !== 200) {
        await res.body?.cancel().catch(() => {});
        throw new SealedClientError('server_error', `server answered HTTP ${res.status}`, { status: res.status });
      }
      const type = (res.headers.get('content-type') ?? '').split(';')[0].trim().toLowerCase();
      if (type !== mediaType[1]) {
        await res.body?.cancel().catch(() => {});
        throw new SealedClientError('response_malformed', `expected ${mediaType[1]}`);
      }
      return { res, sealed, session };
    }
  }
}

interface Sealed {
  bytes: Uint8Array;
}

function pinnedKeys(policy: unknown): string[] {
  if (typeof policy !== 'object' || policy === null) return [];
  return Object.keys(policy).filter((k) => (policy as Record<string, unknown>)[k] !== undefined).sort();
}

function parseBaseUrl(url: string | URL, what = 'server URL'): URL {
  let u: URL;
  try {
    u = new URL(String(url));
  } catch {
    throw new SealedClientError('bad_options', `${what} is not a valid URL`);
  }
  if (u.protocol !== 'http:' && u.protocol !== 'https:') throw new SealedClientError('bad_options', `${what} must be http(s)`);
  if (u.username || u.password || u.search || u.hash) {
    throw new SealedClientError('bad_options', `${what} must not carry credentials, a query or a fragment`);
  }
  if (!u.pathname.endsWith('/')) u.pathname += '/';
  return u;
}

function innerRequest(method: string, path: string, body: unknown): InnerRequest {
  if (!/^[A-Z]{1,16}$/.test(method)) throw new SealedClientError('bad_options', 'method must be an upper-case HTTP token');
  if (!path.startsWith('/') || /[\s#]/.test(path)) throw new SealedClientError('bad_options', 'path must be an absolute path');
  const headers: [string, string][] = [['accept', 'application/json, text/event-stream']];
  if (body === undefined) return { method, path, headers, body: new Uint8Array(0) };
  headers.push(['content-type', 'application/json']);
  let text: string;
  try {
    text = JSON.stringify(body);
  } catch (cause) {
    throw new SealedClientError('bad_options', 'request body is not JSON-serialisable', { cause });
  }
  return { method, path, headers, body: new TextEncoder().encode(text) };
}

/** The server's refusals outside the encryption are RFC 9457 problem documents; a balancer's are not. */
function isProblemDocument(res: Response): boolean {
  return /^application\/problem\+json\b/i.test(res.headers.get('content-type') ?? '');
}

async function isOhttpKeyProblem(res: Response): Promise<boolean> {
  const body = await collect(readerChunks(res.body), MAX_PROBLEM_BYTES).catch(() => new Uint8Array(0));
  try {
    const doc = JSON.parse(new TextDecoder().decode(body)) as { type?: unknown };
    return doc.type === OHTTP_KEY_PROBLEM;
  } catch {
    return false;
  }
}

function httpError(status: number, body: Uint8Array): SealedClientError {
  let doc: unknown;
  let message = `server answered HTTP ${status}`;
  try {
    doc = JSON.parse(new TextDecoder().decode(body));
    const m = (doc as { error?: { message?: unknown } }).error?.message;
    if (typeof m === 'string') message += `: ${m.slice(0, 200)}`;
  } catch {
    doc = undefined;
  }
  return new SealedClientError('http_error', message, { status, body: doc });
}

function emptyStream(): ReadableStream<Uint8Array> {
  return new ReadableStream({ start: (c) => c.close() });
}

async function readAll(res: Response, max: number): Promise<Uint8Array> {
  try {
    return await collect(readerChunks(res.body), max);
  } catch (e) {
    if (e instanceof SealedClientError) throw e;
    throw new SealedClientError('network', 'response was cut off', { cause: e });
  }
}


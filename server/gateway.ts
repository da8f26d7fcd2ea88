// The OHTTP gateway: decapsulate an encapsulated request (plain RFC 9458 or chunked), refuse
// replays, decode the Binary HTTP request inside, hand it to the inner app, and seal what the
// inner app answers. Over chunked OHTTP a server-sent-event body is streamed: each event becomes
// one indeterminate-length Binary HTTP body chunk, sealed and handed to the socket as soon as
// the engine produced it. Over plain OHTTP the whole response is sealed at once.
//
// Errors before decryption succeeds are problem documents (outer); errors in the decrypted
// request are sealed OpenAI errors (inner), as CONTRACT.md requires.
import {
  BhttpResponseStreamEncoder,
  decodeRequest,
  encodeResponse,
  type BhttpRequest,
} from '../transport/bhttp.js';
import { concat } from '../transport/bytes.js';
import { isTransportError } from '../transport/errors.js';
import { readLimited } from './body.js';
import { isEventStream, responseFields, toInnerRequest } from './bridge.js';
import { isServerError, ServerError } from './errors.js';
import { errorBody } from './inner/openai.js';
import type { ProblemKind } from './problem.js';
import type { ReplayVerdict } from './replay.js';
import type { Session, SessionStore } from './sessions.js';
import { ohttp, type OhttpKeyConfig } from './ohttp.js';
import { EventPadder } from './padding.js';

export interface GatewayDeps {
  sessions: SessionStore<OhttpKeyConfig>;
  /** The inner app; `env.sessionId` says whose request it is (fairness), never taken from the request itself. */
  inner: { fetch(req: Request, env: InnerEnv): Response | Promise<Response> };
  maxBodyBytes: number;
  /** Pad each streamed event to a size bucket (padding.ts); off only when the operator says so. */
  streamPadding?: boolean;
}

export interface InnerEnv {
  sessionId: string;
}

/** Per request: its cancellation signal, and admission once its body has arrived and opened. */
export interface GatewayRequest {
  signal: AbortSignal;
  /** False when every place is taken: the request is refused as overloaded (503). */
  admit(): boolean;
  /** A streamed answer's sealed bytes as they leave (the access log's count). */
  onStreamBytes?(n: number): void;
  /** Once, when a streamed answer ends: complete (false), or failed or cancelled by the reader (true). */
  onStreamEnd?(aborted: boolean): void;
}

/** What the gateway answers: a problem (outer error) or the sealed response. */
export type GatewayResult =
  | { ok: false; problem: ProblemKind }
  | { ok: true; contentType: string; body: Uint8Array | ReadableStream<Uint8Array> };

export const MEDIA = {
  req: 'message/ohttp-req',
  res: 'message/ohttp-res',
  chunkedReq: 'message/ohttp-chunked-req',
  chunkedRes: 'message/ohttp-chunked-res',
} as const;

const fail = (problem: ProblemKind): GatewayResult => ({ ok: false, problem });

/** Maps a failure to open the outer message onto its problem. */
function outerProblem(e: unknown): ProblemKind {
  if (isServerError(e, 'too_large')) return 'too_large';
  if (isTransportError(e)) {
    if (e.code === 'unknown_key') return 'unknown_key';
    if (e.code === 'too_large') return 'too_large';
    return 'bad_request';
  }
  return 'bad_request';
}

/**
 * The transport's key lookup for one session: its key, under its key id, while the session is
 * live. A request sealed to another key id (an old session's key, say) is unknown: 422.
 */
function lookup(deps: GatewayDeps, session: Session<OhttpKeyConfig>) {
  return (keyId: number) =>
    keyId === session.keyId && deps.sessions.isLive(session) ? { config: session.config, privateKey: session.privateKey } : undefined;
}

/**
 * Records the request for replay protection (provisionally while it is not yet authenticated);
 * a verdict other than 'fresh' is the problem to answer.
 */
function recordOnce(deps: GatewayDeps, session: Session<OhttpKeyConfig>, enc: Uint8Array, provisional = false): ProblemKind | null {
  // The session may have ended while the request arrived: its entries are gone, refuse instead.
  if (!deps.sessions.isLive(session)) return 'unknown_key';
  return problemOf(session.replay.record(enc, { provisional }));
}

function problemOf(verdict: ReplayVerdict): ProblemKind | null {
  if (verdict === 'fresh') return null;
  return verdict === 'replay' ? 'replay' : 'session_request_limit';
}

export async function handlePlain(
  deps: GatewayDeps,
  session: Session<OhttpKeyConfig>,
  body: ReadableStream<Uint8Array> | null,
  req: GatewayRequest,
): Promise<GatewayResult> {
  let bytes: Uint8Array;
  try {
    bytes = await readLimited(body, deps.maxBodyBytes);
  } catch (e) {
    return fail(outerProblem(e));
  }
  const header = ohttp.peekHeader(bytes);
  if (!header) return fail('bad_request');
  if (header.keyId !== session.keyId || !deps.sessions.isLive(session)) return fail('unknown_key');
  // A cheap refusal before any public-key work; the authoritative check is record() below.
  if (session.replay.has(header.enc)) return fail('replay');

  let opened;
  try {
    opened = await ohttp.decapsulate(lookup(deps, session), bytes, deps.maxBodyBytes);
  } catch (e) {
    return fail(outerProblem(e));
  }
  try {
    // Never processed, so not recorded: the request may come again once there is room.
    if (!req.admit()) return fail('overloaded');
    const refused = recordOnce(deps, session, opened.enc);
    if (refused) return fail(refused);
    deps.sessions.markUsed(session);

    const res = await callInner(deps, session, opened.request, req.signal);
    opened.request.fill(0);
    const plain = await encodeWhole(res);
    const sealed = opened.sealResponse(plain);
    plain.fill(0);
    return { ok: true, contentType: MEDIA.res, body: sealed };
  } finally {
    // Whatever the outcome, neither the plaintext nor the request's HPKE secrets (which open
    // this request and derive its response key) outlive it.
    opened.request.fill(0);
    opened.context.destroy();
  }
}

export async function handleChunked(
  deps: GatewayDeps,
  session: Session<OhttpKeyConfig>,
  body: ReadableStream<Uint8Array> | null,
  req: GatewayRequest,
): Promise<GatewayResult> {
  if (body === null) return fail('bad_request');
  let opened;
  try {
    opened = await ohttp.decapsulateChunked(lookup(deps, session), body, deps.maxBodyBytes);
  } catch (e) {
    return fail(outerProblem(e));
  }
  const sealer = opened.responseSealer;
  const refuse = (problem: ProblemKind): GatewayResult => {
    opened.context.destroy();
    sealer.destroy(); // wipes the response key; the client sees the response cut
    return fail(problem);
  };
  // The header is not authenticated yet, so the record made now is provisional (it does not
  // spend the session's request allowance) and undone if the body fails to open; recording
  // before reading the body keeps two concurrent copies from both passing.
  const refused = recordOnce(deps, session, opened.enc, true);
  if (refused) {
    opened.request.cancel().catch(() => {});
    return refuse(refused);
  }
  let plaintext: Uint8Array;
  try {
    // The decrypted chunks are the gateway's alone: wiped once copied.
    plaintext = await readLimited(opened.request, deps.maxBodyBytes, { wipeChunks: true });
  } catch (e) {
    session.replay.unrecord(opened.enc);
    return refuse(outerProblem(e));
  }
  // The whole request is open and the response key was derived with it: the request's HPKE
  // secrets have no further use.
  opened.context.destroy();
  // Authenticated: now it counts against the session's allowance.
  const spent = problemOf(session.replay.confirm(opened.enc));
  if (spent) {
    session.replay.unrecord(opened.enc);
    plaintext.fill(0);
    return refuse(spent);
  }
  if (!req.admit()) {
    session.replay.unrecord(opened.enc);
    plaintext.fill(0);
    return refuse('overloaded');
  }
  deps.sessions.markUsed(session);

  const res = await callInner(deps, session, plaintext, req.signal);
  plaintext.fill(0);
  if (!isEventStream(res) || res.body === null) {
    const plain = await encodeWhole(res);
    const out = concat(sealer.header, sealer.sealFinal(plain));
    plain.fill(0);
    return { ok: true, contentType: MEDIA.chunkedRes, body: out };
  }
  return { ok: true, contentType: MEDIA.chunkedRes, body: sealEventStream(res, sealer, deps.streamPadding ?? true, req) };
}

/** Decodes the Binary HTTP request and runs it through the inner app. Never throws. */
async function callInner(deps: GatewayDeps, session: Session<OhttpKeyConfig>, plaintext: Uint8Array, signal: AbortSignal): Promise<Response> {
  let req: BhttpRequest;
  try {
    req = decodeRequest(plaintext, { maxRequestSize: Math.max(deps.maxBodyBytes, 1) });
  } catch {
    return innerError(400, 'The encapsulated request is not a valid Binary HTTP request.', 'invalid_request_error', 'invalid_bhttp');
  }
  const webReq = toInnerRequest(req, signal);
  req.content.fill(0);
  if (!webReq) return innerError(400, 'The encapsulated request is not a valid HTTP request.', 'invalid_request_error', 'invalid_request');
  try {
    return await deps.inner.fetch(webReq, { sessionId: session.id });
  } catch {
    return innerError(500, 'The server had an error while processing the request.', 'server_error', 'internal_error');
  }
}

function innerError(status: number, message: string, type: 'invalid_request_error' | 'server_error', code: string): Response {
  return new Response(JSON.stringify(errorBody(message, type, null, code)), {
    status,
    headers: { 'content-type': 'application/json', 'cache-control': 'no-store' },
  });
}

/** The whole inner response as one known-length Binary HTTP response. */
async function encodeWhole(res: Response): Promise<Uint8Array> {
  let content: Uint8Array;
  try {
    content = new Uint8Array(await res.arrayBuffer());
  } catch {
    // The inner body failed mid-way (e.g. the client left and the generation was cancelled).
    content = new TextEncoder().encode(
      JSON.stringify(errorBody('The server had an error while processing the request.', 'server_error', null, 'internal_error')),
    );
    const out = encodeResponse({ status: 500, headers: [['content-type', 'application/json']], content });
    return out;
  }
  const out = encodeResponse({ status: res.status, headers: responseFields(res.headers), content });
  content.fill(0);
  return out;
}

interface ResponseSealer {
  header: Uint8Array;
  readonly finished: boolean;
  sealChunk(pt: Uint8Array): Uint8Array;
  sealFinal(pt: Uint8Array): Uint8Array;
  destroy(): void;
}

/**
 * The sealed chunked response for an SSE body: the chunked-OHTTP response header, then one
 * sealed chunk with the Binary HTTP head, one per inner body chunk (one event each; with `pad`,
 * the events completed by that chunk, each padded to its size bucket), and the final chunk
 * carrying the end of the content. Cancelling it cancels the inner body, which cancels the
 * generation. It reports its bytes and its end to `observe` itself, so the response needs no
 * further stream around it to be counted (each layer of web stream costs every token a few
 * promises).
 */
function sealEventStream(
  res: Response,
  sealer: ResponseSealer,
  pad: boolean,
  observe: Pick<GatewayRequest, 'onStreamBytes' | 'onStreamEnd'>,
): ReadableStream<Uint8Array> {
  const reader = res.body!.getReader();
  const bhttp = new BhttpResponseStreamEncoder();
  const padder = pad ? new EventPadder() : null;
  let started = false;
  let ended = false;
  const end = (aborted: boolean): void => {
    if (ended) return;
    ended = true;
    observe.onStreamEnd?.(aborted);
  };
  const send = (controller: ReadableStreamDefaultController<Uint8Array>, bytes: Uint8Array): void => {
    observe.onStreamBytes?.(bytes.byteLength);
    controller.enqueue(bytes);
  };
  /** One Binary HTTP body chunk, sealed; `plain` is a copy made here, wiped once framed. */
  const sealBody = (plain: Uint8Array, ours: boolean): Uint8Array => {
    const framed = bhttp.body(plain);
    if (ours) plain.fill(0);
    const sealed = sealer.sealChunk(framed);
    framed.fill(0);
    return sealed;
  };
  return new ReadableStream<Uint8Array>(
    {
      async pull(controller) {
        if (!started) {
          started = true;
          const head = bhttp.head(res.status, responseFields(res.headers));
          send(controller, concat(sealer.header, sealer.sealChunk(head)));
          return;
        }
        // Loop until something is written: a pull that enqueues nothing may not be called again.
        for (;;) {
          let r: ReadableStreamReadResult<Uint8Array>;
          try {
            r = await reader.read();
          } catch {
            // Leave the response without its final chunk: the client sees it truncated, never complete.
            padder?.wipe();
            sealer.destroy(); // wipes the response key; the client sees the response cut
            controller.error(new ServerError('inner_stream_failed', 'inner response stream failed'));
            end(true);
            return;
          }
          if (r.done) {
            // An event left without its blank line cannot take a comment line: it goes as it is.
            const rest = padder?.flush();
            if (rest && rest.byteLength > 0) send(controller, sealBody(rest, true));
            send(controller, sealer.sealFinal(bhttp.end()));
            controller.close();
            end(false);
            return;
          }
          // The inner chunk belongs to the inner app; only the copies made here are wiped.
          const out = padder ? padder.push(r.value) : r.value;
          // Skip empty pieces: an empty Binary HTTP body chunk would end the content early.
          if (out.byteLength === 0) continue;
          send(controller, sealBody(out, padder !== null));
          return;
        }
      },
      async cancel() {
        padder?.wipe();
        sealer.destroy(); // wipes the response key; the client sees the response cut
        end(true);
        await reader.cancel().catch(() => {});
      },
    },
    { highWaterMark: 0 },
  );
}

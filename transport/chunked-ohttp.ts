/**
 * Chunked Oblivious HTTP (draft-ietf-ohai-chunked-ohttp). The request is `hdr || enc` then chunks
 * `varint(len) || Seal("", pt)` (len >= 1), ending with `0x00 || Seal("final", pt)` that runs to the end
 * of the stream. The response is `response_nonce` then chunks sealed with the RFC 9458 response key and
 * nonce XOR chunk counter, the last one again under AAD "final".
 *
 * Two layers: synchronous push-style cores (ChunkedRequestReader, ChunkedResponseReader, the sealers)
 * that are pure and easy to test byte by byte, and web-stream wrappers for the server and the client.
 *
 * Truncation: the only proof a message is complete is an authenticated final chunk, so a receiver that
 * reaches the end of its input without one fails with TransportError('truncated'). Senders here always
 * end on an empty final chunk (sealFinal(pt) sends pt as ordinary chunks first), which makes every cut
 * of their streams a 'truncated' error. Another implementation may put data in its final chunk; a cut
 * inside that cannot be told apart from tampering and is 'decrypt_failed'. Plaintext chunks are handed
 * on as they authenticate, before the final chunk: a consumer treats the message as incomplete until
 * its stream closes without error.
 */
import { ByteQueue, concat, encodeVarint, peekVarint, randomBytes, Reader, utf8 } from './bytes.js';
import { TransportError } from './errors.js';
import { Context, aeadOpen, aeadSeal, type KeyPair } from './hpke.js';
import { resolveLimits, type TransportLimits } from './limits.js';
import {
  checkConfig, deriveResponseKeys, readRequestHeader, responseNonceLength, selectSuite, setupRequestRecipient, setupRequestSender,
  type KeyConfig, type KeyLookup, type SymmetricSuite,
} from './ohttp.js';

export const MEDIA_TYPE_CHUNKED_REQUEST = 'message/ohttp-chunked-req';
export const MEDIA_TYPE_CHUNKED_RESPONSE = 'message/ohttp-chunked-res';

const LABEL_CHUNKED_REQUEST = 'message/bhttp chunked request';
const LABEL_CHUNKED_RESPONSE = 'message/bhttp chunked response';
const FINAL_AAD = utf8('final');
const EMPTY_AAD = new Uint8Array(0);
const HEADER_LENGTH = 7;
const N_ENC = 32;
const TAG = 16;

// ---------------------------------------------------------------- chunk framing (both directions)

/**
 * Splits a byte stream into chunk ciphertexts. Non-final chunks come out as soon as they are complete;
 * the final chunk (after a zero length) runs to the end of input and comes out of end(). Chunks that
 * push() returns may be views into its argument: use them before the caller reuses that buffer.
 * Every chunk is checked against `maxCiphertext` from its length prefix, before it is buffered.
 */
export class ChunkFramer {
  readonly #q = new ByteQueue();
  #final = false;
  #total = 0;

  constructor(private readonly maxCiphertext: number, private readonly maxTotal: number) {}

  push(bytes: Uint8Array): Uint8Array[] {
    this.#total += bytes.length;
    if (this.#total > this.maxTotal) throw new TransportError('too_large', 'message exceeds limit');
    const out: Uint8Array[] = [];
    let input = bytes;
    // Fast path: with nothing queued, complete chunks are cut straight from the input (views that
    // live only until the caller opens them); only an incomplete tail is copied into the queue.
    if (this.#q.length === 0) {
      let pos = 0;
      while (!this.#final) {
        const v = peekVarint(input, pos);
        if (!v) break;
        if (v.value === 0) {
          pos += v.length;
          this.#final = true;
          break;
        }
        if (v.value > this.maxCiphertext) throw new TransportError('too_large', 'chunk exceeds limit');
        if (pos + v.length + v.value > input.length) break;
        out.push(input.subarray(pos + v.length, pos + v.length + v.value));
        pos += v.length + v.value;
      }
      input = input.subarray(pos);
    }
    this.#q.push(input);
    while (!this.#final) {
      const v = this.#q.peekVarint();
      if (!v) break;
      if (v.value === 0) {
        this.#q.skip(v.length);
        this.#final = true;
        break;
      }
      if (v.value > this.maxCiphertext) throw new TransportError('too_large', 'chunk exceeds limit');
      if (this.#q.length < v.length + v.value) break;
      this.#q.skip(v.length);
      out.push(this.#q.take(v.value));
    }
    if (this.#final && this.#q.length > this.maxCiphertext) throw new TransportError('too_large', 'chunk exceeds limit');
    return out;
  }

  /** The final chunk's ciphertext; 'truncated' if the input never reached a complete final chunk. */
  end(): Uint8Array {
    if (!this.#final) throw new TransportError('truncated', 'message ended before its final chunk');
    if (this.#q.length < TAG) throw new TransportError('truncated', 'message ended inside its final chunk');
    return this.#q.takeAll();
  }
}

/** Bytes to frame for one sealed chunk. */
function frame(ct: Uint8Array, final: boolean): Uint8Array {
  return final ? concat(Uint8Array.of(0), ct) : concat(encodeVarint(ct.length), ct);
}

/** Splits plaintext at maxChunkSize so a receiver with the same limits accepts every chunk. */
function splitPlaintext(pt: Uint8Array, max: number): Uint8Array[] {
  if (pt.length <= max) return [pt];
  const out: Uint8Array[] = [];
  for (let o = 0; o < pt.length; o += max) out.push(pt.subarray(o, Math.min(pt.length, o + max)));
  return out;
}

/** Either side's sealing state machine: seal* until sealFinal, then nothing. */
abstract class ChunkSealer {
  #done = false;
  constructor(protected readonly maxChunkSize: number) {}
  protected abstract sealOne(aad: Uint8Array, pt: Uint8Array): Uint8Array;
  /** Called once the final chunk is sealed: drop key material that can no longer be used. */
  protected onFinished(): void {}

  /** One non-final chunk (split into several if larger than maxChunkSize). */
  sealChunk(pt: Uint8Array): Uint8Array {
    if (this.#done) throw new TransportError('state', 'chunk after the final chunk');
    if (pt.length <= this.maxChunkSize) return frame(this.sealOne(EMPTY_AAD, pt), false);
    return concat(...splitPlaintext(pt, this.maxChunkSize).map((p) => frame(this.sealOne(EMPTY_AAD, p), false)));
  }

  /**
   * Ends the message: any `pt` goes out as ordinary chunks, then an empty final chunk sealed with AAD
   * "final". Always ending on an empty final chunk (17 bytes) means a receiver reports any cut of the
   * stream as 'truncated' rather than as an authentication failure inside a partial final chunk.
   */
  sealFinal(pt: Uint8Array = new Uint8Array(0)): Uint8Array {
    if (this.#done) throw new TransportError('state', 'final chunk sealed twice');
    const head = pt.length ? this.sealChunk(pt) : new Uint8Array(0);
    const out = concat(head, frame(this.sealOne(FINAL_AAD, new Uint8Array(0)), true));
    this.#done = true;
    this.onFinished();
    return out;
  }

  get finished(): boolean {
    return this.#done;
  }

  /**
   * Abandons the message without a final chunk (the receiver will see it as truncated) and drops
   * the key material at once. Idempotent; after it nothing can be sealed.
   */
  destroy(): void {
    if (this.#done) return;
    this.#done = true;
    this.onFinished();
  }

  /**
   * A TransformStream that seals each plaintext chunk the moment it arrives and closes with an empty
   * final chunk. `prefix` (the request header or response nonce) is written first, even before any data.
   */
  protected sealingStream(prefix: Uint8Array): TransformStream<Uint8Array, Uint8Array> {
    return new TransformStream<Uint8Array, Uint8Array>({
      start: (c) => c.enqueue(prefix),
      transform: (chunk, c) => {
        if (chunk.length) c.enqueue(this.sealChunk(chunk));
      },
      flush: (c) => c.enqueue(this.sealFinal()),
    });
  }
}

// ---------------------------------------------------------------- response: seal (server) and open (client)

/** Response chunk nonce: aead_nonce XOR I2OSP(counter, Nn). */
function chunkNonce(base: Uint8Array, counter: number): Uint8Array {
  const n = base.slice();
  let v = counter;
  for (let i = n.length - 1; v > 0 && i >= 0; i--) {
    n[i] ^= v % 256;
    v = Math.floor(v / 256);
  }
  return n;
}

export class ChunkedResponseSealer extends ChunkSealer {
  /** The response nonce: write it before any chunk. */
  readonly header: Uint8Array;
  readonly #aeadId: number;
  readonly #key: Uint8Array;
  readonly #nonce: Uint8Array;
  #counter = 0;

  /** `responseNonce` must be fresh random bytes (the default); a fixed one is only for vectors. */
  constructor(context: Context, enc: Uint8Array, limits?: Partial<TransportLimits>, responseNonce?: Uint8Array) {
    const lim = resolveLimits(limits);
    super(lim.maxChunkSize);
    this.#aeadId = context.aeadId;
    this.header = responseNonce ?? randomBytes(responseNonceLength(context.aeadId));
    const k = deriveResponseKeys(context, enc, this.header, LABEL_CHUNKED_RESPONSE);
    this.#key = k.key;
    this.#nonce = k.nonce;
  }

  protected sealOne(aad: Uint8Array, pt: Uint8Array): Uint8Array {
    if (this.#counter >= Number.MAX_SAFE_INTEGER) throw new TransportError('sequence_overflow', 'chunk counter exhausted');
    const ct = aeadSeal(this.#aeadId, this.#key, chunkNonce(this.#nonce, this.#counter), aad, pt);
    this.#counter++;
    return ct;
  }

  protected override onFinished(): void {
    this.#key.fill(0);
    this.#nonce.fill(0);
  }

  /** header, then every plaintext chunk sealed as it arrives, then an empty final chunk. */
  transform(): TransformStream<Uint8Array, Uint8Array> {
    return this.sealingStream(this.header);
  }
}

/** Client-side push-style opener of a chunked response. */
export class ChunkedResponseReader {
  readonly #context: Context;
  readonly #enc: Uint8Array;
  readonly #aeadId: number;
  readonly #framer: ChunkFramer;
  #prefix: Uint8Array = new Uint8Array(0);
  #key?: Uint8Array;
  #nonce?: Uint8Array;
  #counter = 0;
  #state: 'open' | 'done' | 'failed' = 'open';

  constructor(context: Context, enc: Uint8Array, limits?: Partial<TransportLimits>) {
    const lim = resolveLimits(limits);
    this.#context = context;
    this.#enc = enc;
    this.#aeadId = context.aeadId;
    this.#framer = new ChunkFramer(lim.maxChunkSize + TAG, lim.maxResponseSize);
  }

  /** Plaintext of every chunk completed by `bytes`, in order. */
  push(bytes: Uint8Array): Uint8Array[] {
    return this.#guard(() => {
      let data = bytes;
      if (!this.#key) {
        const nlen = responseNonceLength(this.#aeadId);
        this.#prefix = concat(this.#prefix, bytes);
        if (this.#prefix.length < nlen) return [];
        const k = deriveResponseKeys(this.#context, this.#enc, this.#prefix.subarray(0, nlen), LABEL_CHUNKED_RESPONSE);
        this.#key = k.key;
        this.#nonce = k.nonce;
        data = this.#prefix.subarray(nlen);
        this.#prefix = new Uint8Array(0);
      }
      return this.#framer.push(data).map((ct) => this.#open(ct, EMPTY_AAD));
    });
  }

  /** Plaintext of the final chunk; 'truncated' if the response never completed. */
  end(): Uint8Array {
    return this.#guard(() => {
      if (!this.#key) throw new TransportError('truncated', 'response ended inside its nonce');
      const pt = this.#open(this.#framer.end(), FINAL_AAD);
      this.#state = 'done';
      this.#key.fill(0);
      this.#nonce?.fill(0);
      return pt;
    });
  }

  #open(ct: Uint8Array, aad: Uint8Array): Uint8Array {
    const pt = aeadOpen(this.#aeadId, this.#key as Uint8Array, chunkNonce(this.#nonce as Uint8Array, this.#counter), aad, ct);
    this.#counter++;
    return pt;
  }

  #guard<T>(f: () => T): T {
    if (this.#state !== 'open') throw new TransportError('state', this.#state === 'done' ? 'response already complete' : 'response failed earlier');
    try {
      return f();
    } catch (e) {
      this.#state = 'failed';
      this.#key?.fill(0);
      throw e;
    }
  }
}

// ---------------------------------------------------------------- request: seal (client) and open (server)

export class ChunkedRequestSealer extends ChunkSealer {
  readonly #context: Context;
  constructor(context: Context, maxChunkSize: number) {
    super(maxChunkSize);
    this.#context = context;
  }
  protected sealOne(aad: Uint8Array, pt: Uint8Array): Uint8Array {
    return this.#context.seal(aad, pt);
  }
  /** For the encapsulator: the same sealing TransformStream with the request header in front. */
  stream(prefix: Uint8Array): TransformStream<Uint8Array, Uint8Array> {
    return this.sealingStream(prefix);
  }
}

/** Server-side push-style reader of a chunked request: header, enc, then plaintext chunks. */
export class ChunkedRequestReader {
  readonly #lookupKey: KeyLookup;
  readonly #limits: TransportLimits;
  readonly #framer: ChunkFramer;
  #prefix: Uint8Array = new Uint8Array(0);
  #total = 0;
  #state: 'header' | 'body' | 'done' | 'failed' = 'header';
  keyId = -1;
  suite?: SymmetricSuite;
  enc?: Uint8Array;
  context?: Context;

  constructor(lookupKey: KeyLookup, limits?: Partial<TransportLimits>) {
    this.#lookupKey = lookupKey;
    this.#limits = resolveLimits(limits);
    this.#framer = new ChunkFramer(this.#limits.maxChunkSize + TAG, this.#limits.maxRequestSize);
  }

  /** True once the header and enc are read and the HPKE context exists. */
  get ready(): boolean {
    return this.context !== undefined;
  }

  push(bytes: Uint8Array): Uint8Array[] {
    return this.#guard(() => {
      // The whole message, header and enc included, counts against maxRequestSize.
      this.#total += bytes.length;
      if (this.#total > this.#limits.maxRequestSize) throw new TransportError('too_large', 'request exceeds limit');
      let data = bytes;
      if (this.#state === 'header') {
        this.#prefix = concat(this.#prefix, bytes);
        // Check the header as soon as it is complete, so an unknown key id fails before enc arrives.
        if (this.#prefix.length >= HEADER_LENGTH && !this.suite) {
          const h = readRequestHeader(new Reader(this.#prefix.subarray(0, HEADER_LENGTH)), this.#lookupKey);
          this.keyId = h.keyId;
          this.suite = h.suite;
        }
        if (this.#prefix.length < HEADER_LENGTH + N_ENC) return [];
        const r = new Reader(this.#prefix);
        const h = readRequestHeader(r, this.#lookupKey);
        const header = this.#prefix.slice(0, HEADER_LENGTH);
        this.enc = r.bytes(N_ENC).slice();
        this.context = setupRequestRecipient(h.key, h.suite, header, this.enc, LABEL_CHUNKED_REQUEST);
        data = r.rest();
        this.#prefix = new Uint8Array(0);
        this.#state = 'body';
      }
      return this.#framer.push(data).map((ct) => (this.context as Context).open(EMPTY_AAD, ct));
    });
  }

  /** Plaintext of the final chunk; 'truncated' if the request never completed. */
  end(): Uint8Array {
    return this.#guard(() => {
      if (this.#state === 'header') throw new TransportError('truncated', 'request ended inside its header');
      const pt = (this.context as Context).open(FINAL_AAD, this.#framer.end());
      this.#state = 'done';
      return pt;
    });
  }

  /** The sealer for this request's chunked response. */
  responseSealer(): ChunkedResponseSealer {
    if (!this.context || !this.enc) throw new TransportError('state', 'request header not read yet');
    return new ChunkedResponseSealer(this.context, this.enc, this.#limits);
  }

  #guard<T>(f: () => T): T {
    if (this.#state === 'done' || this.#state === 'failed') {
      throw new TransportError('state', this.#state === 'done' ? 'request already complete' : 'request failed earlier');
    }
    try {
      return f();
    } catch (e) {
      this.#state = 'failed';
      throw e;
    }
  }
}

// ---------------------------------------------------------------- web-stream wrappers

function asTransportError(e: unknown): TransportError {
  // A source stream that errors (a dropped connection) leaves the message incomplete.
  return e instanceof TransportError ? e : new TransportError('truncated', 'input stream failed');
}

/**
 * A ReadableStream of plaintext driven by a push-style core, pulling from `source` only as fast as
 * the consumer reads. `leftover` is input already read from `source` that the core has not seen.
 */
function pumpThrough(
  reader: ReadableStreamDefaultReader<Uint8Array>,
  core: { push(b: Uint8Array): Uint8Array[]; end(): Uint8Array },
  first: Uint8Array[] = [],
): ReadableStream<Uint8Array> {
  let pending = first.filter((p) => p.length > 0);
  return new ReadableStream<Uint8Array>({
    async pull(controller) {
      try {
        while (pending.length === 0) {
          const { done, value } = await reader.read().catch((e) => {
            throw asTransportError(e);
          });
          if (done) {
            const last = core.end();
            if (last.length) controller.enqueue(last);
            controller.close();
            return;
          }
          if (!(value instanceof Uint8Array)) throw new TransportError('invalid_argument', 'stream chunks must be Uint8Array');
          pending = core.push(value).filter((p) => p.length > 0);
        }
        for (const p of pending) controller.enqueue(p);
        pending = [];
      } catch (e) {
        const err = asTransportError(e);
        controller.error(err);
        reader.cancel(err).catch(() => {});
      }
    },
    cancel(reason) {
      return reader.cancel(reason);
    },
  });
}

export interface DecapsulatedChunkedRequest {
  keyId: number;
  suite: SymmetricSuite;
  enc: Uint8Array;
  /** The recipient HPKE context (for exports). */
  context: Context;
  /** Plaintext chunks as they authenticate; errors with TransportError ('truncated' if the final chunk never came). */
  request: ReadableStream<Uint8Array>;
  /** Seals the response: write `header` first, then sealChunk(...)*, then sealFinal(...); or pipe through transform(). */
  responseSealer: ChunkedResponseSealer;
}

/**
 * Server side: reads the header and enc from `body` (rejecting with TransportError on an unknown key
 * id, an unoffered suite, a size limit or a cut before enc), then streams the plaintext.
 */
export async function decapsulateChunkedRequest(
  lookupKey: KeyLookup,
  body: ReadableStream<Uint8Array>,
  limits?: Partial<TransportLimits>,
): Promise<DecapsulatedChunkedRequest> {
  const core = new ChunkedRequestReader(lookupKey, limits);
  const reader = body.getReader();
  const first: Uint8Array[] = [];
  try {
    while (!core.ready) {
      const { done, value } = await reader.read().catch((e) => {
        throw asTransportError(e);
      });
      if (done) throw new TransportError('truncated', 'request ended inside its header');
      if (!(value instanceof Uint8Array)) throw new TransportError('invalid_argument', 'stream chunks must be Uint8Array');
      first.push(...core.push(value));
    }
  } catch (e) {
    reader.cancel().catch(() => {});
    throw asTransportError(e);
  }
  return {
    keyId: core.keyId,
    suite: core.suite as SymmetricSuite,
    enc: core.enc as Uint8Array,
    context: core.context as Context,
    request: pumpThrough(reader, core, first),
    responseSealer: core.responseSealer(),
  };
}

export interface ChunkedEncapsulateOptions {
  /** Fixed ephemeral key pair: only for reproducing published vectors. */
  ephemeral?: KeyPair;
  limits?: Partial<TransportLimits>;
}

export interface ChunkedRequestEncapsulator {
  keyId: number;
  suite: SymmetricSuite;
  enc: Uint8Array;
  /** hdr || enc: send first. */
  header: Uint8Array;
  /** Seals one request chunk (empty AAD); split above maxChunkSize. */
  sealChunk(pt: Uint8Array): Uint8Array;
  /** Ends the request: `pt` (default empty) as ordinary chunks, then an empty final chunk (AAD "final"). */
  sealFinal(pt?: Uint8Array): Uint8Array;
  /** The whole request body as a stream: header, each chunk of `plaintext` sealed as it arrives, empty final chunk. */
  requestStream(plaintext: ReadableStream<Uint8Array> | Uint8Array): ReadableStream<Uint8Array>;
  /** A push-style opener of the chunked response. */
  responseReader(): ChunkedResponseReader;
  /** Plaintext response chunks as they authenticate; errors with TransportError, code 'truncated' if the final chunk never came. */
  openResponse(body: ReadableStream<Uint8Array>): ReadableStream<Uint8Array>;
}

/** Client side of chunked OHTTP for the key configuration `config`. */
export function encapsulateChunkedRequest(config: KeyConfig, suite?: SymmetricSuite, options: ChunkedEncapsulateOptions = {}): ChunkedRequestEncapsulator {
  checkConfig(config);
  const lim = resolveLimits(options.limits);
  const s = selectSuite(config, suite);
  const { header: hdr, enc, context } = setupRequestSender(config, s, LABEL_CHUNKED_REQUEST, options.ephemeral);
  const sealer = new ChunkedRequestSealer(context, lim.maxChunkSize);
  const header = concat(hdr, enc);
  return {
    keyId: config.keyId,
    suite: s,
    enc,
    header,
    sealChunk: (pt) => sealer.sealChunk(pt),
    sealFinal: (pt) => sealer.sealFinal(pt),
    requestStream(plaintext) {
      const src = plaintext instanceof Uint8Array
        ? new ReadableStream<Uint8Array>({ start(c) { if (plaintext.length) c.enqueue(plaintext); c.close(); } })
        : plaintext;
      return src.pipeThrough(sealer.stream(header));
    },
    responseReader: () => new ChunkedResponseReader(context, enc, lim),
    openResponse: (body) => pumpThrough(body.getReader(), new ChunkedResponseReader(context, enc, lim)),
  };
}

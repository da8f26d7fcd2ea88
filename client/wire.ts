// The client's seam with transport/: Binary HTTP inside (chunked) Oblivious HTTP,
// sealed to the attested key configuration. Every transport failure becomes a
// SealedClientError; a response that stops before its authenticated end is
// `truncated`, never a short answer.
import { decodeResponse, encodeRequest, type Field } from '../transport/bhttp.js';
import { TransportError } from '../transport/errors.js';
import { concat } from '../transport/bytes.js';
import { openResponseStream, SealedResponseDecoder, type ChunkOpener } from './response-stream.js';
import { decodeKeyConfig, encapsulateRequest, selectSuite, type KeyConfig } from '../transport/ohttp.js';
import { encapsulateChunkedRequest } from '../transport/chunked-ohttp.js';
import { SealedClientError } from './errors.js';
import type { InnerResponse } from './types.js';

export const OHTTP_REQ = 'message/ohttp-req';
export const OHTTP_RES = 'message/ohttp-res';
export const OHTTP_CHUNKED_REQ = 'message/ohttp-chunked-req';
export const OHTTP_CHUNKED_RES = 'message/ohttp-chunked-res';

export interface InnerRequest {
  method: string;
  path: string;
  headers: [string, string][];
  body: Uint8Array;
}

export interface SessionKeyConfig {
  keyId: number;
  config: KeyConfig;
  encoded: Uint8Array;
}

/** Decodes the attested key configuration (RFC 9458 section 3); malformed is a rejection. */
export function parseKeyConfig(encoded: Uint8Array): SessionKeyConfig {
  let config: KeyConfig;
  try {
    config = decodeKeyConfig(encoded);
    selectSuite(config); // at least one suite this client supports
  } catch (cause) {
    throw new SealedClientError('evidence_malformed', 'keyConfig is not a valid OHTTP key configuration', { cause });
  }
  return { keyId: config.keyId, config, encoded };
}

/** Scheme and authority inside the message are ignored by the server (CONTRACT.md). */
function bhttpRequest(req: InnerRequest, indeterminate: boolean): Uint8Array {
  try {
    return encodeRequest(
      { method: req.method, scheme: 'https', authority: '', path: req.path, headers: req.headers, content: req.body },
      { indeterminate },
    );
  } catch (cause) {
    throw new SealedClientError('bad_options', 'request cannot be encoded as Binary HTTP', { cause });
  }
}

function headerRecord(fields: Field[]): Record<string, string> {
  const out: Record<string, string> = {};
  for (const [k, v] of fields) out[k] = k in out ? `${out[k]}, ${v}` : v;
  return out;
}

function sealFailure(e: unknown): SealedClientError {
  if (e instanceof SealedClientError) return e;
  if (e instanceof TransportError && e.code === 'too_large') return new SealedClientError('bad_options', 'request too large', { cause: e });
  return new SealedClientError('internal', 'request could not be sealed to the attested key', { cause: e });
}

function transportFailure(e: unknown, what: string): SealedClientError {
  if (e instanceof SealedClientError) return e;
  if (e instanceof TransportError && e.code === 'truncated') {
    return new SealedClientError('truncated', `${what} ended before its authenticated end`, { cause: e });
  }
  if (e instanceof TransportError && e.code === 'decrypt_failed') {
    return new SealedClientError('response_undecryptable', `${what} did not decrypt with this request's key`, { cause: e });
  }
  if (e instanceof TransportError) return new SealedClientError('response_malformed', `${what} is invalid (${e.code})`, { cause: e });
  // The connection broke mid-body: the answer is incomplete.
  return new SealedClientError('truncated', `${what} was cut off`, { cause: e });
}

/** One OHTTP request (RFC 9458); `open` decrypts and decodes the whole response. */
export function sealRequest(key: SessionKeyConfig, req: InnerRequest): { bytes: Uint8Array; open(res: Uint8Array): InnerResponse } {
  let sealed: ReturnType<typeof encapsulateRequest>;
  try {
    sealed = encapsulateRequest(key.config, bhttpRequest(req, false));
  } catch (e) {
    throw sealFailure(e);
  }
  const { bytes, openResponse } = sealed;
  return {
    bytes,
    open(res: Uint8Array): InnerResponse {
      try {
        const r = decodeResponse(openResponse(res));
        return { status: r.status, headers: headerRecord(r.headers), body: r.content };
      } catch (e) {
        throw transportFailure(e, 'response');
      }
    },
  };
}

/** A chunked response whose head has arrived; `batches` yields its body one network read at a time. */
export interface OpenedStream {
  status: number;
  headers: Record<string, string>;
  batches: AsyncGenerator<Uint8Array[], void, undefined>;
  /** Stops reading and cancels the network body (also before `batches` was iterated). */
  cancel(): Promise<void>;
}

/**
 * One chunked OHTTP request (draft-ietf-ohai-chunked-ohttp). The response's Binary HTTP
 * head is awaited; its body then comes out as each chunk is decrypted. Every failure, at the
 * head or later in the body, is a SealedClientError passed through `onFailure` (which may act
 * on it, e.g. give up the session) before it is thrown.
 */
export function sealChunkedRequest(
  key: SessionKeyConfig,
  req: InnerRequest,
): { bytes: Uint8Array; openStream(body: ReadableStream<Uint8Array>, onFailure?: (e: SealedClientError) => unknown): Promise<OpenedStream> } {
  const inner = bhttpRequest(req, true);
  let bytes: Uint8Array;
  let responseReader: () => ChunkOpener;
  try {
    const sealed = encapsulateChunkedRequest(key.config);
    // The whole request is known up front, so it goes as one body: header, one chunk, empty final chunk.
    bytes = concat(sealed.header, sealed.sealChunk(inner), sealed.sealFinal());
    responseReader = sealed.responseReader;
  } catch (e) {
    throw sealFailure(e);
  }
  return {
    bytes,
    async openStream(body, onFailure = (e) => e) {
      const fail = (e: unknown) => onFailure(transportFailure(e, 'streamed response'));
      const { head, batches, cancel } = await openResponseStream(body, new SealedResponseDecoder(responseReader()), fail);
      return { status: head.status, headers: headerRecord(head.headers), batches, cancel };
    },
  };
}

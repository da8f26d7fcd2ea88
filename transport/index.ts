/**
 * transport/: HPKE (RFC 9180), Oblivious HTTP (RFC 9458), chunked OHTTP (draft-ietf-ohai-chunked-ohttp)
 * and Binary HTTP (RFC 9292). Pure TypeScript on @noble/* and WebCrypto's getRandomValues; no Node-only
 * import anywhere, so the same module runs in the server, the CLI and a browser page.
 *
 * Differences from / additions to docs/ARCHITECTURE.md (names and shapes there are kept):
 * - Errors: one class, TransportError { code }, codes listed in errors.ts ('truncated', 'malformed',
 *   'too_large', 'unknown_key', 'unsupported_suite', 'decrypt_failed', 'invalid_key', 'invalid_argument',
 *   'sequence_overflow', 'state'). Gateway mapping: unknown_key -> 422, too_large -> 413, else 400.
 * - Limits: every parser/decapsulator takes an optional `Partial<TransportLimits>` (limits.ts; defaults
 *   1 MiB request, 16 MiB response, 64 KiB chunk, 256 fields, 16 KiB per field).
 * - hpke.ts: besides setupBaseS/R (+PSK, Auth, AuthPSK) there are setupSender/setupRecipient(opts), a
 *   `Context` with seal/open/export/seq/destroy, and sealBase/openBase single-shot helpers.
 * - ohttp.ts: `decapsulateRequest(lookupKey, bytes, limits?)` where lookupKey is `(keyId) => ServerKey |
 *   undefined` and ServerKey = `{ config: KeyConfig, privateKey }` (the `{config, privateKey}` part of
 *   generateKeyConfig's result works as-is; `keyLookup([...])` builds one). The result also carries
 *   `suite` and the HPKE `context`. `encapsulateRequest(config, request, suite?, { ephemeral?, limits? })`
 *   also returns `enc` and `suite`. The list form: encodeKeyConfigList / decodeKeyConfigList,
 *   selectKeyConfig(configs, keyId?), selectSuite(config, preferred?).
 * - ohttp.ts also has parseEncapsulatedRequest (framing + key lookup without crypto) and
 *   encapsulateResponse / deriveResponseKeys (the RFC 9458 section 4.4 steps, used by the vector tests).
 * - chunked-ohttp.ts: `decapsulateChunkedRequest(lookupKey, body, limits?)` is async (it reads the header
 *   and enc first) and also returns `suite` and `context`; `responseSealer` has `header`, `sealChunk(pt)`,
 *   `sealFinal(pt?)` and `transform()` (a TransformStream that seals each chunk as it arrives and ends
 *   with an empty final chunk). `encapsulateChunkedRequest(config, suite?, { ephemeral?, limits? })`
 *   returns `{ header, sealChunk, sealFinal, requestStream(plaintext), openResponse(body),
 *   responseReader() }`. Synchronous push-style cores sit under the streams: ChunkedRequestReader,
 *   ChunkedResponseReader, ChunkedResponseSealer, ChunkFramer.
 * - hpke.ts: `setAeadBackend(b)` / `setX25519Backend(b)` swap @noble/ciphers / @noble/curves for native
 *   implementations process-wide; node-backend.ts builds both from a `node:crypto` module the host passes
 *   in (transport/ itself never imports Node): `useNodeCrypto(await import('node:crypto'))` at server
 *   (and CLI/bench) start-up. Same bytes either way; the vector tests run against both.
 * - bhttp.ts: field values are byte strings exposed as latin1 JS strings (one char per byte, like
 *   fetch's ByteString). The incremental encoder is `BhttpResponseStreamEncoder` (informational?, head,
 *   body, end) and the decoder `BhttpResponseStreamDecoder` (push(bytes) -> events, end() -> events).
 */
export * from './errors.js';
export * from './bytes.js';
export * from './limits.js';
export * from './hpke.js';
export * from './ohttp.js';
export * from './bhttp.js';
export * from './chunked-ohttp.js';
export * from './node-backend.js';

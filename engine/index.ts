/**
 * engine/: model directory loading + manifest, tokenizer and chat template,
 * ONNX runner (one batched step), scheduler (continuous batching), sampler,
 * UTF-8 safe detokenizer.
 *
 * Differences from / additions to docs/ARCHITECTURE.md:
 * - `engine.generate()` throws errors known before any work synchronously
 *   (invalid_request, context_length_exceeded, busy, closed, cancelled when
 *   the signal is already aborted); the stream throws 'cancelled' on abort
 *   and 'closed' when the engine closes. Breaking out of the loop cancels.
 * - `req.maxTokens` is optional (default: what the context leaves); a prompt
 *   plus maxTokens beyond the context length is 'context_length_exceeded'.
 *   `temperature` defaults to 1 (OpenAI), 0 = greedy.
 * - `req.returnTokenIds` adds `tokenIds` to the done event.
 * - `engine.chatPrompt(messages)` returns token ids (the template writes BOS
 *   itself); pass them as `prompt`. Models without a chat template get a
 *   plain fallback: the messages' text joined by "\n" after BOS.
 * - `engine.stats()` also reports `steps`, `repacks`, `seats`, `grows` and `prefills`; `engine.encode()`,
 *   `engine.hasChatTemplate` and `engine.threads` exist.
 * - `computeModelDigest(dir)` gives the manifest and digest without starting
 *   ONNX Runtime (packaging / measurement).
 * - EngineError also has code 'internal' (an ONNX Runtime failure mid-run).
 * - EngineOptions also take `modelId`, `prefillChunk` (most prompt tokens per
 *   prefill run), `prefillBudget` (prompt tokens prefilled between two
 *   decode steps; long prompts are spread over several iterations) and
 *   `fastDecode` (default true).
 * - Decode speed: when the graph's `present.*` come from Concat(past, new),
 *   the loader adds the `new` tensors as extra graph outputs (same
 *   computation; graph-outputs.ts) and decode steps fetch only one cache
 *   column per layer into a runner-owned cache ("slot" mode), after a
 *   load-time check that this matches the plain path. `engine.decodeMode`
 *   says which is in use. The manifest/digest are of the files as read;
 *   the rewrite is a deterministic function of those bytes and this code.
 *
 * - Model directories as the hub's exports lay them out (model-files.ts):
 *   `modelFile` chooses among several graphs under onnx/; external data is
 *   what the graph names, hashed as a stream and opened by ONNX Runtime by
 *   path. float16 KV caches and logits (engine.dtypes), and
 *   GroupQueryAttention graphs (engine.padding 'right') are driven.
 *
 * - worker-engine.ts (not re-exported here: importing it loads no ONNX
 *   Runtime): `WorkerEngine`, the same surface with the session, runner and
 *   scheduler in a worker thread, which `sealed serve` uses.
 *
 * Known limits: onnxruntime-node runs a session synchronously on the
 * calling thread (inside a setImmediate), so each step blocks that thread's
 * event loop for its duration; WorkerEngine keeps it off the serving
 * thread. Prompts are prefilled one sequence at a time.
 * float32 and float16 KV caches and int64 ids are driven; other graphs
 * (bfloat16 caches, say) are refused with model_invalid.
 */
export { Engine } from './engine.js';
export type { EngineOptions, GenerateRequest, GenerateEvent, FinishReason, EngineModelInfo, EngineStats } from './engine.js';
export { EngineError } from './errors.js';
export type { EngineErrorCode } from './errors.js';
export { loadModelDir } from './model-dir.js';
export type { LoadedModel, ModelConfig, GraphIO, LoadOptions } from './model-dir.js';
export { computeModelDigest, buildManifest, manifestDigest, canonicalJson } from './manifest.js';
export type { Manifest, ManifestFile } from './manifest.js';
export type { ChatMessage, ChatRole } from './tokenizer.js';

/**
 * Loads and validates a decoder-only model directory in the HF optimum /
 * transformers.js layout:
 *
 *   config.json, generation_config.json, tokenizer.json, tokenizer_config.json,
 *   onnx/<graph>.onnx (one of several, see model-files.ts) with the external
 *   data files it names, optional chat_template.jinja
 *
 * Every fact the runner needs (input/output names, KV-cache layout, layer
 * count, context length, EOS ids) comes from the ONNX session metadata and
 * config.json; nothing is specific to one model. A graph the engine cannot
 * drive is refused with EngineError('model_invalid') naming what is missing.
 */
import { basename, resolve } from 'node:path';
import { availableParallelism } from 'node:os';
import { ort } from './ort.js';
import { EngineError } from './errors.js';
import type { Manifest } from './manifest.js';
import { readModelFiles, type ModelFiles } from './model-files.js';
import { dropGraphOutputs, exposeStepOutputs } from './graph-outputs.js';

export interface ModelConfig {
  readonly numLayers: number;
  readonly numKvHeads: number;
  readonly headDim: number;
  readonly vocabSize: number;
  /** Maximum tokens (prompt + completion) one sequence may hold. */
  readonly contextLength: number;
  readonly bosTokenId: number | null;
  readonly eosTokenIds: readonly number[];
}

/** Element types of the cache and logits tensors the runner exchanges with the graph. */
export type FloatType = 'float32' | 'float16';

/** Names of the graph's inputs and outputs, as read from the session. */
export interface GraphIO {
  /** Of every past/present tensor. */
  readonly kvType: FloatType;
  readonly logitsType: FloatType;
  readonly inputIds: string;
  readonly attentionMask: string;
  /** Absent when the graph derives positions itself (then left padding relies on the mask). */
  readonly positionIds: string | null;
  readonly logits: string;
  /** Per layer: [key, value] input names of the past cache. */
  readonly pastKeys: readonly string[];
  readonly pastValues: readonly string[];
  /** Per layer: [key, value] output names of the present cache. */
  readonly presentKeys: readonly string[];
  readonly presentValues: readonly string[];
}

export interface LoadedModel {
  /**
   * Names of the per-step new key/value tensors exposed as extra graph
   * outputs (see graph-outputs.ts), or null when the graph's structure was
   * not recognised (or fastDecode was off): then decode fetches full caches.
   */
  readonly stepOutputs: { readonly newKeys: readonly string[]; readonly newValues: readonly string[] } | null;
  /**
   * False once the session is the slot graph (toSlotGraph): the full `present.*` caches are no
   * longer outputs, so only slot mode can run on it (prefill then fetches the new columns too).
   */
  readonly presentOutputs: boolean;
  /**
   * The same model on the slot graph, its previous session released; null when there is no
   * such graph (no step outputs). Called by whoever decided for slot mode (engine.ts); it holds
   * the graph's bytes, so whoever decides against slot mode drops it (a copy without it).
   */
  readonly toSlotGraph: (() => Promise<LoadedModel>) | null;
  readonly id: string;
  readonly dir: string;
  /** The graph served, e.g. "model_q4.onnx" (under onnx/). */
  readonly variant: string;
  /**
   * Where a batched step's shorter rows are padded. 'left' for graphs that
   * append the new key/value after the past (Concat): the new column is the
   * same for every row. 'right' for GroupQueryAttention, which writes each
   * row's new key/value at that row's length (from the attention mask's sum)
   * and attends to its first length + 1 columns.
   */
  readonly padding: 'left' | 'right';
  /**
   * True when one row's result depends on the other rows of its batch: the
   * graph quantizes activations with one scale per tensor at run time
   * (DynamicQuantizeLinear, as onnxruntime's quantize_dynamic writes the
   * hub's model_quantized.onnx). Such a graph is decoded a row at a time.
   */
  readonly rowsCoupled: boolean;
  readonly config: ModelConfig;
  readonly io: GraphIO;
  readonly session: ort.InferenceSession;
  /** Parsed tokenizer files (the same bytes the manifest hashed). */
  readonly tokenizerJson: Record<string, unknown>;
  readonly tokenizerConfig: Record<string, unknown>;
  readonly manifest: Manifest;
  /** Hex SHA-256 of the manifest's canonical JSON. */
  readonly digest: string;
  readonly threads: number;
}

export interface LoadOptions {
  /** Intra-op threads for ONNX Runtime; default: all cores. */
  readonly threads?: number;
  /** Model id announced to clients; default: the directory's name. */
  readonly id?: string;
  /** Expose the per-step key/value tensors so decode fetches one cache column (default true). */
  readonly fastDecode?: boolean;
  /** Which graph under onnx/ when there are several: a file name, a stem or a dtype (model-files.ts). */
  readonly modelFile?: string;
  /** Receives progress lines while large files are hashed and loaded. */
  readonly onProgress?: (line: string) => void;
  /** Largest graph file held in memory (model-files.ts); a larger one is loaded by path. */
  readonly graphInMemoryLimit?: number;
}

const invalid = (msg: string) => new EngineError('model_invalid', msg);

/** Operators whose one quantization scale spans the whole batch (see LoadedModel.rowsCoupled). */
const ROW_COUPLING_OPS = [':DynamicQuantizeLinear', 'com.microsoft:DynamicQuantizeMatMul'];

export async function loadModelDir(dir: string, opts: LoadOptions = {}): Promise<LoadedModel> {
  const absDir = resolve(dir);
  const threads = opts.threads ?? availableParallelism();
  if (!Number.isInteger(threads) || threads < 1 || threads > 1024) {
    throw new EngineError('invalid_request', 'threads must be an integer between 1 and 1024');
  }
  const files = await readModelFiles(absDir, {
    ...(opts.modelFile !== undefined && { modelFile: opts.modelFile }),
    ...(opts.onProgress && { onProgress: opts.onProgress }),
    ...(opts.graphInMemoryLimit !== undefined && { graphInMemoryLimit: opts.graphInMemoryLimit }),
  });
  const { manifest, digest } = files;

  const configJson = parseJsonFile(files.side, 'config.json');
  const genConfig = parseJsonFile(files.side, 'generation_config.json');
  const tokenizerJson = parseJsonFile(files.side, 'tokenizer.json');
  const tokenizerConfig = { ...parseJsonFile(files.side, 'tokenizer_config.json') };
  const chatTemplateFile = files.side.get('chat_template.jinja');
  if (chatTemplateFile !== undefined && tokenizerConfig.chat_template === undefined) {
    tokenizerConfig.chat_template = decodeUtf8(chatTemplateFile, 'chat_template.jinja');
  }
  const config = readModelConfig(configJson, genConfig);

  const large = files.externalData.length > 0 || files.graphBytes === null;
  if (large) opts.onProgress?.(`loading onnx/${files.graphName} into ONNX Runtime`);
  const started = Date.now();
  let session = await createSession(files, files.graphBytes, threads);
  let io: GraphIO;
  let stepOutputs: LoadedModel['stepOutputs'] = null;
  let exposedGraph: Uint8Array | null = null;
  try {
    io = inspectGraph(session, config, files.graphName);
    if (opts.fastDecode !== false && files.graphBytes) {
      // Same computation, extra outputs: derived from the hashed bytes by this code alone.
      const exposed = exposeStepOutputs(files.graphBytes, io.presentKeys, io.presentValues, io.pastKeys, io.pastValues);
      if (exposed) {
        const fast = await createSession(files, exposed.model, threads).catch(() => null);
        if (fast) {
          await session.release().catch(() => {});
          session = fast;
          stepOutputs = { newKeys: exposed.newKeys, newValues: exposed.newValues };
          exposedGraph = exposed.model;
        }
      }
    }
  } catch (e) {
    await session.release().catch(() => {});
    throw e;
  }
  if (large) opts.onProgress?.(`loaded onnx/${files.graphName} in ${((Date.now() - started) / 1000).toFixed(1)} s`);
  const id = opts.id ?? basename(absDir);
  const padding = files.scan.ops.has('com.microsoft:GroupQueryAttention') ? 'right' : 'left';
  const rowsCoupled = ROW_COUPLING_OPS.some((op) => files.scan.ops.has(op));
  const loaded: LoadedModel = {
    id, dir: absDir, variant: files.graphName, padding, rowsCoupled, config, io, session, stepOutputs,
    tokenizerJson, tokenizerConfig, manifest, digest, threads, presentOutputs: true, toSlotGraph: null,
  };
  if (!exposedGraph) return loaded;
  const graph = exposedGraph;
  return {
    ...loaded,
    toSlotGraph: async () => {
      const slotGraph = dropGraphOutputs(graph, [...io.presentKeys, ...io.presentValues]);
      if (!slotGraph) return { ...loaded, toSlotGraph: null };
      // Released first: a large model's weights are never held twice.
      await loaded.session.release().catch(() => {});
      const slotSession = await createSession(files, slotGraph, threads).catch(() => null);
      if (slotSession) return { ...loaded, session: slotSession, presentOutputs: false, toSlotGraph: null };
      // Could not open it (it always opens where the step-output graph did): back to that graph.
      return { ...loaded, session: await createSession(files, graph, threads), toSlotGraph: null };
    },
  };
}

function decodeUtf8(bytes: Uint8Array, name: string): string {
  try {
    return new TextDecoder('utf-8', { fatal: true, ignoreBOM: false }).decode(bytes);
  } catch {
    throw invalid(`${name} is not valid UTF-8`);
  }
}

function parseJsonFile(files: ReadonlyMap<string, Uint8Array>, name: string): Record<string, unknown> {
  const bytes = files.get(name);
  if (bytes === undefined) throw invalid(`model directory is missing ${name}`);
  let value: unknown;
  try {
    value = JSON.parse(decodeUtf8(bytes, name));
  } catch (e) {
    if (e instanceof EngineError) throw e;
    throw invalid(`${name} is not valid JSON`);
  }
  if (value === null || typeof value !== 'object' || Array.isArray(value)) {
    throw invalid(`${name} must hold a JSON object`);
  }
  return value as Record<string, unknown>;
}

function positiveInt(obj: Record<string, unknown>, keys: readonly string[], what: string): number | undefined {
  for (const k of keys) {
    const v = obj[k];
    if (v === undefined || v === null) continue;
    if (typeof v !== 'number' || !Number.isSafeInteger(v) || v <= 0) {
      throw invalid(`config.json: ${k} (${what}) must be a positive integer`);
    }
    return v;
  }
  return undefined;
}

function tokenIds(v: unknown, key: string): number[] | undefined {
  if (v === undefined || v === null) return undefined;
  const arr = Array.isArray(v) ? v : [v];
  for (const x of arr) {
    if (typeof x !== 'number' || !Number.isSafeInteger(x) || x < 0) {
      throw invalid(`${key} must be a token id or an array of token ids`);
    }
  }
  return arr as number[];
}

export function readModelConfig(cfg: Record<string, unknown>, gen: Record<string, unknown>): ModelConfig {
  const numLayers = positiveInt(cfg, ['num_hidden_layers', 'n_layer', 'num_layers'], 'layer count');
  if (numLayers === undefined) throw invalid('config.json is missing num_hidden_layers');
  const numHeads = positiveInt(cfg, ['num_attention_heads', 'n_head'], 'attention heads');
  const numKvHeads = positiveInt(cfg, ['num_key_value_heads'], 'key/value heads') ?? numHeads;
  if (numKvHeads === undefined) throw invalid('config.json is missing num_key_value_heads / num_attention_heads');
  let headDim = positiveInt(cfg, ['head_dim'], 'head size');
  if (headDim === undefined) {
    const hidden = positiveInt(cfg, ['hidden_size', 'n_embd'], 'hidden size');
    if (hidden === undefined || numHeads === undefined) {
      throw invalid('config.json is missing head_dim (or hidden_size and num_attention_heads)');
    }
    if (hidden % numHeads !== 0) throw invalid('config.json: hidden_size is not a multiple of num_attention_heads');
    headDim = hidden / numHeads;
  }
  const vocabSize = positiveInt(cfg, ['vocab_size'], 'vocabulary size');
  if (vocabSize === undefined) throw invalid('config.json is missing vocab_size');
  const contextLength = positiveInt(cfg, ['max_position_embeddings', 'n_positions', 'n_ctx'], 'context length');
  if (contextLength === undefined) throw invalid('config.json is missing max_position_embeddings');
  const eos = tokenIds(gen.eos_token_id, 'generation_config.json: eos_token_id') ??
    tokenIds(cfg.eos_token_id, 'config.json: eos_token_id');
  if (eos === undefined || eos.length === 0) throw invalid('config.json / generation_config.json is missing eos_token_id');
  const bos = tokenIds(gen.bos_token_id, 'generation_config.json: bos_token_id') ??
    tokenIds(cfg.bos_token_id, 'config.json: bos_token_id');
  for (const id of [...eos, ...(bos ?? [])]) {
    if (id >= vocabSize) throw invalid('a special token id is outside the vocabulary');
  }
  return {
    numLayers,
    numKvHeads,
    headDim,
    vocabSize,
    contextLength,
    bosTokenId: bos?.[0] ?? null,
    eosTokenIds: [...new Set(eos)],
  };
}

/**
 * A session from the graph's bytes (when held) or its path; external data is
 * always opened by ONNX Runtime from onnx/, which maps or reads only what
 * the tensors name: no weight file passes through a JS buffer.
 */
async function createSession(files: ModelFiles, model: Uint8Array | null, threads: number): Promise<ort.InferenceSession> {
  const options: ort.InferenceSession.SessionOptions = {
    intraOpNumThreads: threads,
    interOpNumThreads: 1,
    executionMode: 'sequential',
    graphOptimizationLevel: 'all',
    executionProviders: ['cpu'],
    // Nothing may be written to disk: no optimized-model dump, no profiling.
    enableProfiling: false,
    // Only consulted for a graph given as bytes: where its external data lies.
    extra: { session: { model_external_initializers_file_folder_path: files.externalDataDir } },
  };
  try {
    return model ? await ort.InferenceSession.create(model, options) : await ort.InferenceSession.create(files.graphPath, options);
  } catch (e) {
    const reason = e instanceof Error ? e.message.split('\n')[0].slice(0, 200) : 'unknown error';
    throw invalid(`onnx/${files.graphName} could not be loaded by ONNX Runtime (${reason})`);
  }
}

type TensorMeta = { name: string; isTensor: true; type: string; shape: readonly (number | string)[] };

function tensorMeta(list: readonly ort.InferenceSession.ValueMetadata[]): Map<string, TensorMeta> {
  const m = new Map<string, TensorMeta>();
  for (const v of list) if (v.isTensor) m.set(v.name, v as unknown as TensorMeta);
  return m;
}

/** Checks the graph against what the runner drives and returns the names to feed and fetch. */
export function inspectGraph(session: ort.InferenceSession, config: ModelConfig, graphName = 'model.onnx'): GraphIO {
  const inputs = tensorMeta(session.inputMetadata);
  const outputs = tensorMeta(session.outputMetadata);
  const problems: string[] = [];

  const need = (map: Map<string, TensorMeta>, kind: string, name: string, type: string, rank: number) => {
    const m = map.get(name);
    if (!m) {
      problems.push(`${kind} '${name}' is missing`);
      return;
    }
    if (m.type !== type) {
      const drives = type === 'int64' ? '' : ' (caches and logits are driven as float32 or float16, each kind all alike)';
      problems.push(`${kind} '${name}' has type ${m.type}, expected ${type}${drives}`);
    }
    if (m.shape.length !== 0 && m.shape.length !== rank) problems.push(`${kind} '${name}' has rank ${m.shape.length}, expected ${rank}`);
  };
  need(inputs, 'input', 'input_ids', 'int64', 2);
  need(inputs, 'input', 'attention_mask', 'int64', 2);
  const hasPositions = inputs.has('position_ids');
  if (hasPositions) need(inputs, 'input', 'position_ids', 'int64', 2);
  const floatType = (name: string, map: Map<string, TensorMeta>): FloatType =>
    map.get(name)?.type === 'float16' ? 'float16' : 'float32';
  const logitsType = floatType('logits', outputs);
  need(outputs, 'output', 'logits', logitsType, 3);
  const logits = outputs.get('logits');
  if (logits && typeof logits.shape[2] === 'number' && logits.shape[2] !== config.vocabSize) {
    problems.push(`output 'logits' has ${logits.shape[2]} classes but config.json says vocab_size ${config.vocabSize}`);
  }

  const pastKeys: string[] = [];
  const pastValues: string[] = [];
  const presentKeys: string[] = [];
  const presentValues: string[] = [];
  // The first past key sets the cache's type; every other cache tensor must match it.
  const kvType = floatType('past_key_values.0.key', inputs);
  const checkKv = (map: Map<string, TensorMeta>, kind: string, name: string) => {
    need(map, kind, name, kvType, 4);
    const m = map.get(name);
    if (!m || m.shape.length !== 4) return;
    const [, heads, , dim] = m.shape;
    if (typeof heads === 'number' && heads !== config.numKvHeads) {
      problems.push(`${kind} '${name}' has ${heads} heads but config.json says ${config.numKvHeads} key/value heads`);
    }
    if (typeof dim === 'number' && dim !== config.headDim) {
      problems.push(`${kind} '${name}' has head size ${dim} but config.json says ${config.headDim}`);
    }
  };
  // Per-layer problems are summarised (a graph without a cache lacks all of them).
  const before = problems.length;
  for (let l = 0; l < config.numLayers; l++) {
    const names = [
      [`past_key_values.${l}.key`, pastKeys, inputs, 'input'],
      [`past_key_values.${l}.value`, pastValues, inputs, 'input'],
      [`present.${l}.key`, presentKeys, outputs, 'output'],
      [`present.${l}.value`, presentValues, outputs, 'output'],
    ] as const;
    for (const [name, list, map, kind] of names) {
      checkKv(map, kind, name);
      list.push(name);
    }
  }
  const kvProblems = problems.splice(before);
  const byKind = (k: string) => kvProblems.filter((p) => p.startsWith(k));
  for (const group of [byKind('input'), byKind('output')]) {
    if (group.length > 0) problems.push(group[0] + (group.length > 1 ? ` (and ${group.length - 1} more like it)` : ''));
  }
  const known = new Set(['input_ids', 'attention_mask', 'position_ids', ...pastKeys, ...pastValues]);
  const unknown = [...session.inputNames].filter((n) => !known.has(n));
  if (unknown.length > 0) problems.push(`graph has input(s) the engine cannot feed: ${unknown.slice(0, 5).join(', ')}`);
  if (problems.length > 0) {
    const shown = problems.slice(0, 6).join('; ') + (problems.length > 6 ? `; and ${problems.length - 6} more` : '');
    throw invalid(`onnx/${graphName} cannot be driven as a decoder with a KV cache: ${shown}`);
  }
  return {
    kvType,
    logitsType,
    inputIds: 'input_ids',
    attentionMask: 'attention_mask',
    positionIds: hasPositions ? 'position_ids' : null,
    logits: 'logits',
    pastKeys,
    pastValues,
    presentKeys,
    presentValues,
  };
}

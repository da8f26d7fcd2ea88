/**
 * Which files of a model directory are served, and their bytes or digests.
 *
 * - The graph: `onnx/` may hold several (model.onnx, model_fp16.onnx,
 *   model_q4.onnx, … as the hub's exports do). With one, it is served; with
 *   several, `modelFile` chooses: a file name ("model_q4.onnx"), a stem
 *   ("model_q4") or a transformers.js dtype ("q4", "fp16", "q8"…). A missing or
 *   wrong choice is refused with the list of what the directory offers.
 * - External data: whatever files the graph's tensors name, one or several,
 *   each of which must be a regular file inside the model's onnx/ directory
 *   (no absolute path, no "..", no symlink leading out: ONNX Runtime
 *   resolves them against the graph's directory and refuses the same).
 * - The JSON side files, the chat template and a graph up to
 *   GRAPH_IN_MEMORY_LIMIT are read into memory and hashed from those bytes;
 *   external data (and a larger graph) is hashed as a stream and later opened
 *   by ONNX Runtime itself, by path, so no file passes through one JS buffer.
 */
import { createHash } from 'node:crypto';
import { createReadStream } from 'node:fs';
import { readdir, readFile, realpath, stat } from 'node:fs/promises';
import { isAbsolute, join, posix, sep } from 'node:path';
import { EngineError } from './errors.js';
import { buildManifest, manifestDigest, sha256Hex, type Manifest, type ManifestFile } from './manifest.js';
import { scanGraphBytes, scanGraphFile, type GraphScan } from './onnx-scan.js';

export const SIDE_FILES = ['config.json', 'generation_config.json', 'tokenizer.json', 'tokenizer_config.json'] as const;
export const OPTIONAL_SIDE_FILES = ['chat_template.jinja'] as const;

/** A graph up to this size is held in memory (hashed from the same bytes, rewritten for fast decode); a larger one is loaded by path. */
export const GRAPH_IN_MEMORY_LIMIT = 512 * 1024 * 1024;
/** Files at least this large report hashing progress. */
const PROGRESS_MIN_BYTES = 64 * 1024 * 1024;

/** transformers.js' dtype names and the file suffix each stands for. */
export const DTYPE_SUFFIXES: Readonly<Record<string, string>> = {
  fp32: '',
  fp16: '_fp16',
  int8: '_int8',
  uint8: '_uint8',
  q8: '_quantized',
  q4: '_q4',
  q4f16: '_q4f16',
  bnb4: '_bnb4',
};

export interface ModelFiles {
  readonly dir: string;
  /** The chosen graph, e.g. "model_q4.onnx" (under onnx/). */
  readonly graphName: string;
  readonly graphPath: string;
  /** The graph's bytes, or null when it is over GRAPH_IN_MEMORY_LIMIT (then ONNX Runtime reads it by path). */
  readonly graphBytes: Uint8Array | null;
  /** The directory ONNX Runtime resolves external data against (onnx/). */
  readonly externalDataDir: string;
  /** External data files, relative to the model directory ("onnx/model_q4.onnx_data"). */
  readonly externalData: readonly string[];
  readonly scan: GraphScan;
  /** Bytes of the JSON side files and chat_template.jinja when present, keyed by relative path. */
  readonly side: ReadonlyMap<string, Uint8Array>;
  readonly manifest: Manifest;
  readonly digest: string;
}

export interface ModelFileOptions {
  /** Which graph under onnx/ (see the module comment). */
  readonly modelFile?: string;
  /** Called with one line at a time while large files are hashed. */
  readonly onProgress?: (line: string) => void;
  /** Default GRAPH_IN_MEMORY_LIMIT; tests lower it to take the by-path route with a small graph. */
  readonly graphInMemoryLimit?: number;
}

const invalid = (msg: string) => new EngineError('model_invalid', msg);

async function regularFile(path: string): Promise<number | null> {
  try {
    const st = await stat(path);
    return st.isFile() ? st.size : null;
  } catch {
    return null;
  }
}

/** The graph files directly under onnx/, sorted. */
export async function listGraphs(dir: string): Promise<string[]> {
  let names: string[];
  try {
    names = await readdir(join(dir, 'onnx'));
  } catch {
    return [];
  }
  const out: string[] = [];
  for (const n of names.sort()) {
    if (n.endsWith('.onnx') && (await regularFile(join(dir, 'onnx', n))) !== null) out.push(n);
  }
  return out;
}

/** The graph file a `modelFile` choice names, or null when it names none of the offered ones. */
export function resolveChoice(choice: string, offered: readonly string[]): string | null {
  let c = choice.trim();
  if (c.startsWith('onnx/')) c = c.slice(5);
  if (c.length === 0 || c.includes('/') || c.includes('\\')) return null;
  const candidates = c.endsWith('.onnx')
    ? [c]
    : [`${c}.onnx`, ...(c in DTYPE_SUFFIXES ? [`model${DTYPE_SUFFIXES[c]}.onnx`] : [])];
  return candidates.find((n) => offered.includes(n)) ?? null;
}

export async function chooseGraph(dir: string, modelFile?: string): Promise<string> {
  const offered = await listGraphs(dir);
  if (modelFile !== undefined) {
    if (typeof modelFile !== 'string') throw new EngineError('invalid_request', 'modelFile must be a string');
    const name = resolveChoice(modelFile, offered);
    if (name === null) {
      throw invalid(offered.length === 0
        ? `model file '${modelFile}' not found: the model directory has no graph under onnx/`
        : `model file '${modelFile}' not found; onnx/ offers: ${offered.join(', ')}`);
    }
    return name;
  }
  if (offered.length === 0) throw invalid('model directory is missing required file(s): onnx/model.onnx (no graph under onnx/)');
  if (offered.length > 1) {
    throw invalid(`onnx/ holds ${offered.length} graphs (${offered.join(', ')}); choose one with --model-file (a file name or a dtype such as q4, fp16)`);
  }
  return offered[0];
}

/** Checks an external data location and returns its path relative to the model directory. */
async function externalPath(dir: string, realOnnxDir: string, location: string, graphName: string): Promise<string> {
  const refuse = (why: string) => invalid(`onnx/${graphName} names external data '${location.slice(0, 200)}' ${why}`);
  if (location.length === 0 || location.includes('\0')) throw refuse('that is not a file name');
  if (isAbsolute(location) || location.startsWith('/') || location.includes('\\') || /^[A-Za-z]:/.test(location)) {
    throw refuse('by an absolute path; it must lie inside the model directory');
  }
  const parts = location.split('/');
  if (parts.some((p) => p === '..')) throw refuse('outside the model directory');
  const rel = posix.normalize(posix.join('onnx', location));
  const abs = join(dir, ...rel.split('/'));
  if ((await regularFile(abs)) === null) throw refuse('which is not a file in the model directory');
  const real = await realpath(abs);
  if (!real.startsWith(realOnnxDir + sep)) throw refuse('through a link that leads outside the model\'s onnx/ directory');
  return rel;
}

async function hashStream(path: string, rel: string, size: number, onProgress?: (line: string) => void): Promise<string> {
  const h = createHash('sha256');
  let done = 0;
  let nextReport = 0;
  const gib = (n: number) => (n / 2 ** 30).toFixed(2);
  for await (const chunk of createReadStream(path, { highWaterMark: 4 * 1024 * 1024 })) {
    h.update(chunk as Buffer);
    done += (chunk as Buffer).length;
    if (onProgress && size >= PROGRESS_MIN_BYTES && done >= nextReport) {
      onProgress(`hashing ${rel}: ${gib(done)} of ${gib(size)} GiB`);
      nextReport = done + Math.max(size / 10, PROGRESS_MIN_BYTES);
    }
  }
  if (done !== size) throw invalid(`${rel} changed while it was read`);
  return h.digest('hex');
}

export async function readModelFiles(dir: string, opts: ModelFileOptions = {}): Promise<ModelFiles> {
  const side = new Map<string, Uint8Array>();
  const missing: string[] = [];
  for (const rel of SIDE_FILES) {
    if ((await regularFile(join(dir, rel))) === null) missing.push(rel);
    else side.set(rel, new Uint8Array(await readFile(join(dir, rel))));
  }
  const offered = await listGraphs(dir);
  if (offered.length === 0 && opts.modelFile === undefined) missing.push('onnx/model.onnx');
  if (missing.length > 0) throw invalid(`model directory is missing required file(s): ${missing.join(', ')}`);
  for (const rel of OPTIONAL_SIDE_FILES) {
    if ((await regularFile(join(dir, rel))) !== null) side.set(rel, new Uint8Array(await readFile(join(dir, rel))));
  }

  const graphName = await chooseGraph(dir, opts.modelFile);
  const graphRel = `onnx/${graphName}`;
  const graphPath = join(dir, 'onnx', graphName);
  const realDir = await realpath(dir);
  if (!(await realpath(graphPath)).startsWith(realDir + sep)) {
    throw invalid(`${graphRel} is a link that leads outside the model directory`);
  }
  const graphSize = (await regularFile(graphPath))!;
  let graphBytes: Uint8Array | null = null;
  let scan: GraphScan;
  const entries: ManifestFile[] = [];
  for (const [path, bytes] of side) entries.push({ path, sha256: sha256Hex(bytes), size: bytes.byteLength });
  if (graphSize <= (opts.graphInMemoryLimit ?? GRAPH_IN_MEMORY_LIMIT)) {
    graphBytes = new Uint8Array(await readFile(graphPath));
    scan = scanGraphBytes(graphBytes, graphRel);
    entries.push({ path: graphRel, sha256: sha256Hex(graphBytes), size: graphBytes.byteLength });
  } else {
    scan = scanGraphFile(graphPath, graphRel);
    entries.push({ path: graphRel, sha256: await hashStream(graphPath, graphRel, graphSize, opts.onProgress), size: graphSize });
  }
  const externalData: string[] = [];
  for (const location of scan.externalFiles) {
    const rel = await externalPath(dir, await realpath(join(dir, 'onnx')), location, graphName);
    if (externalData.includes(rel)) continue;
    externalData.push(rel);
    const abs = join(dir, ...rel.split('/'));
    const size = (await regularFile(abs))!;
    entries.push({ path: rel, sha256: await hashStream(abs, rel, size, opts.onProgress), size });
  }
  const manifest = buildManifest(entries);
  return {
    dir,
    graphName,
    graphPath,
    graphBytes,
    externalDataDir: join(dir, 'onnx'),
    externalData,
    scan,
    side,
    manifest,
    digest: manifestDigest(manifest),
  };
}

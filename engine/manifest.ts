/**
 * The model manifest: every file of the model directory that the engine
 * loads, with its size and SHA-256 over the very bytes that were read (the
 * same buffers are then handed to ONNX Runtime and the tokenizer, so what is
 * measured is what runs). The model digest is the hex SHA-256 of the
 * manifest's canonical JSON (CONTRACT: "Evidence").
 *
 * Canonical JSON here: object keys sorted by UTF-16 code units, no
 * whitespace, JSON.stringify escaping; arrays keep their order (files are
 * sorted by path).
 */
import { createHash } from 'node:crypto';
import { readFile, stat } from 'node:fs/promises';
import { join } from 'node:path';
import { EngineError } from './errors.js';

export interface ManifestFile {
  /** Path relative to the model directory, `/`-separated. */
  readonly path: string;
  readonly size: number;
  /** Lowercase hex SHA-256 of the file's bytes. */
  readonly sha256: string;
}

export interface Manifest {
  readonly version: 1;
  readonly files: readonly ManifestFile[];
}

/** Required files of the HF optimum / transformers.js layout. */
export const REQUIRED_FILES = [
  'config.json',
  'generation_config.json',
  'tokenizer.json',
  'tokenizer_config.json',
  'onnx/model.onnx',
] as const;

/** Loaded when present. */
export const OPTIONAL_FILES = ['onnx/model.onnx_data', 'chat_template.jinja'] as const;

export function sha256Hex(bytes: Uint8Array): string {
  return createHash('sha256').update(bytes).digest('hex');
}

/** Deterministic JSON: sorted keys, no whitespace. Rejects values JSON cannot represent exactly. */
export function canonicalJson(value: unknown): string {
  if (value === null || typeof value === 'boolean' || typeof value === 'string') return JSON.stringify(value);
  if (typeof value === 'number') {
    if (!Number.isFinite(value)) throw new EngineError('internal', 'canonical JSON: non-finite number');
    return JSON.stringify(value);
  }
  if (Array.isArray(value)) return '[' + value.map(canonicalJson).join(',') + ']';
  if (typeof value === 'object') {
    const obj = value as Record<string, unknown>;
    const keys = Object.keys(obj).filter((k) => obj[k] !== undefined).sort();
    return '{' + keys.map((k) => JSON.stringify(k) + ':' + canonicalJson(obj[k])).join(',') + '}';
  }
  throw new EngineError('internal', `canonical JSON: unsupported type ${typeof value}`);
}

export function buildManifest(files: ReadonlyMap<string, Uint8Array>): Manifest {
  const entries = [...files.entries()]
    // Keys in canonical order, so JSON.stringify(manifest) is the canonical form too.
    .map(([path, bytes]) => ({ path, sha256: sha256Hex(bytes), size: bytes.byteLength }))
    .sort((a, b) => (a.path < b.path ? -1 : a.path > b.path ? 1 : 0));
  return { files: entries, version: 1 };
}

export function manifestDigest(manifest: Manifest): string {
  return sha256Hex(new TextEncoder().encode(canonicalJson(manifest)));
}

/**
 * Reads every file the engine would load from `dir` (required ones must
 * exist, optional ones are read when present). Returns the bytes keyed by
 * relative path; the caller hashes and uses these same buffers.
 */
export async function readModelFiles(dir: string): Promise<Map<string, Uint8Array>> {
  const out = new Map<string, Uint8Array>();
  const missing: string[] = [];
  for (const rel of REQUIRED_FILES) {
    const bytes = await readRegularFile(join(dir, rel));
    if (bytes === null) missing.push(rel);
    else out.set(rel, bytes);
  }
  if (missing.length > 0) {
    throw new EngineError('model_invalid', `model directory is missing required file(s): ${missing.join(', ')}`);
  }
  for (const rel of OPTIONAL_FILES) {
    const bytes = await readRegularFile(join(dir, rel));
    if (bytes !== null) out.set(rel, bytes);
  }
  return out;
}

async function readRegularFile(path: string): Promise<Uint8Array | null> {
  let st;
  try {
    st = await stat(path);
  } catch {
    return null;
  }
  if (!st.isFile()) return null;
  const buf = await readFile(path);
  return new Uint8Array(buf.buffer, buf.byteOffset, buf.byteLength);
}

/**
 * The digest a server would announce for `dir`, without starting ONNX
 * Runtime: for packaging and measurement tools. Equal to
 * `loadModelDir(dir).digest` for a directory that loads.
 */
export async function computeModelDigest(dir: string): Promise<{ manifest: Manifest; digest: string }> {
  const manifest = buildManifest(await readModelFiles(dir));
  return { manifest, digest: manifestDigest(manifest) };
}

/**
 * The model manifest: every file of the model directory that the engine
 * loads (side files, the chosen graph, the external data it names), with
 * its size and SHA-256. Side files and a graph that fits in memory are
 * hashed from the very bytes then handed to the tokenizer and ONNX Runtime;
 * external data is hashed as a stream and then opened by ONNX Runtime by
 * path (docs/MODELS.md says why that is sound). The model digest is the
 * hex SHA-256 of the manifest's canonical JSON (CONTRACT: "Evidence").
 *
 * Canonical JSON here: object keys sorted by UTF-16 code units, no
 * whitespace, JSON.stringify escaping; arrays keep their order (files are
 * sorted by path).
 */
import { createHash } from 'node:crypto';
import { resolve } from 'node:path';
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

export function buildManifest(files: readonly ManifestFile[]): Manifest {
  const entries = files
    // Keys in canonical order, so JSON.stringify(manifest) is the canonical form too.
    .map(({ path, sha256, size }) => ({ path, sha256, size }))
    .sort((a, b) => (a.path < b.path ? -1 : a.path > b.path ? 1 : 0));
  return { files: entries, version: 1 };
}

export function manifestDigest(manifest: Manifest): string {
  return sha256Hex(new TextEncoder().encode(canonicalJson(manifest)));
}

/**
 * The digest a server would announce for `dir` (and `modelFile`, as
 * `sealed serve --model-file` takes it), without starting ONNX Runtime: for
 * packaging and measurement tools. Equal to `loadModelDir(dir).digest` for a
 * directory that loads.
 */
export async function computeModelDigest(dir: string, modelFile?: string): Promise<{ manifest: Manifest; digest: string }> {
  const { readModelFiles } = await import('./model-files.js');
  const files = await readModelFiles(resolve(dir), modelFile === undefined ? {} : { modelFile });
  return { manifest: files.manifest, digest: files.digest };
}

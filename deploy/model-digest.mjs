#!/usr/bin/env node
// Prints the manifest digest of a model directory: the `model.digest` every
// attestation of a server loading that directory carries (CONTRACT, "Evidence"),
// and the `modelDigest` a client policy pins. Uses the engine's own manifest
// code, compiled (dist/) in the image build, from the sources otherwise.
//
//   node deploy/model-digest.mjs models/stories260K          -> "<hex>  models/stories260K"
//   node deploy/model-digest.mjs --json models/stories260K   -> the manifest and digest as JSON
//   node deploy/model-digest.mjs DIR model_q4.onnx           -> the digest with that graph served
//                                                               (as sealed serve --model-file)
import { existsSync } from 'node:fs';
import { dirname, join } from 'node:path';
import { fileURLToPath, pathToFileURL } from 'node:url';

const root = join(dirname(fileURLToPath(import.meta.url)), '..');
const args = process.argv.slice(2);
const json = args[0] === '--json';
const dir = json ? args[1] : args[0];
const modelFile = json ? args[2] : args[1];
const n = args.length - (json ? 1 : 0);
if (dir === undefined || n < 1 || n > 2) {
  process.stderr.write('usage: model-digest.mjs [--json] MODEL_DIR [MODEL_FILE]\n');
  process.exit(2);
}
const compiled = join(root, 'dist', 'engine', 'manifest.js');
let mod;
if (existsSync(compiled)) {
  mod = await import(pathToFileURL(compiled).href);
} else {
  const { register } = await import('tsx/esm/api');
  register();
  mod = await import(pathToFileURL(join(root, 'engine', 'manifest.ts')).href);
}
try {
  const { manifest, digest } = await mod.computeModelDigest(dir, modelFile);
  process.stdout.write(json ? JSON.stringify({ digest, manifest }, null, 2) + '\n' : `${digest}  ${dir}\n`);
} catch (e) {
  process.stderr.write(`model-digest: ${e instanceof Error ? e.message : String(e)}\n`);
  process.exit(1);
}

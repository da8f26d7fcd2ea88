#!/usr/bin/env node
// Runs the compiled CLI when the package was built (production, no compiler at
// run time); otherwise the TypeScript sources through tsx, with its cache off so
// nothing is written to disk.
import { existsSync } from 'node:fs';
import { fileURLToPath, pathToFileURL } from 'node:url';
import { dirname, join } from 'node:path';

const root = join(dirname(fileURLToPath(import.meta.url)), '..');
const compiled = join(root, 'dist', 'cli', 'sealed.js');
let entry;
if (existsSync(compiled)) {
  entry = compiled;
} else {
  process.env.TSX_DISABLE_CACHE = '1';
  const { register } = await import('tsx/esm/api');
  register();
  entry = join(root, 'cli', 'sealed.ts');
}
const { main } = await import(pathToFileURL(entry).href);
process.exitCode = await main(process.argv.slice(2));

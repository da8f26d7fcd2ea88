// Bundles the chat page's script (the SDK, transport/ and enclave/ verifiers) for
// browsers, in memory, with esbuild (installed with tsx). Nothing is written to disk.
import { existsSync } from 'node:fs';
import { fileURLToPath } from 'node:url';

/** The page entry: main.ts in a checkout, main.js in a compiled build. */
export function pageEntry(): string {
  for (const name of ['../page/main.ts', '../page/main.js']) {
    const p = fileURLToPath(new URL(name, import.meta.url));
    if (existsSync(p)) return p;
  }
  throw new Error('chat page sources not found');
}

export async function buildPageBundle(): Promise<string> {
  const esbuild = await import('esbuild');
  const result = await esbuild.build({
    entryPoints: [pageEntry()],
    bundle: true,
    write: false,
    format: 'esm',
    platform: 'browser',
    target: 'es2022',
    minify: true,
    legalComments: 'none',
    logLevel: 'silent',
  });
  const out = result.outputFiles[0];
  if (!out) throw new Error('esbuild produced no output');
  return out.text;
}

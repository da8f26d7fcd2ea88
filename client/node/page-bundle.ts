// The chat page's script (the SDK, transport/ and enclave/ verifiers) for browsers.
// A production install has no bundler (esbuild is a development tool), so `npm run build`
// bundles the page once into dist/ beside the compiled code, and the proxy serves that file.
// From a checkout, running the TypeScript sources, it is bundled in memory on first use, so
// an edit to the page shows on the next start without a build. Nothing is written at run time.
import { existsSync, readFileSync } from 'node:fs';
import { fileURLToPath } from 'node:url';

/** Where the built script lives, relative to this module (dist/client/node/ once compiled). */
export const BUILT_PAGE_RELATIVE = '../page/sealed-chat.js';

/** The built script's path for the code that is running (dist/client/page/sealed-chat.js). */
export function builtPagePath(base: string | URL = import.meta.url): string {
  return fileURLToPath(new URL(BUILT_PAGE_RELATIVE, base));
}

/** Whether this module runs from TypeScript sources (a checkout, through tsx). */
const fromSources = (base: string | URL): boolean => new URL(base).pathname.endsWith('.ts');

/** The page entry: main.ts in a checkout, main.js in a compiled build. */
export function pageEntry(): string {
  for (const name of ['../page/main.ts', '../page/main.js']) {
    const p = fileURLToPath(new URL(name, import.meta.url));
    if (existsSync(p)) return p;
  }
  throw new Error('chat page sources not found');
}

/** Bundles the page with esbuild, in memory (a development dependency: build time only). */
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

/**
 * The script the proxy serves: the built file when there is one; from sources, a fresh
 * in-memory bundle; compiled code without the built file is a broken build and says so.
 */
export async function loadPageBundle(base: string | URL = import.meta.url): Promise<string> {
  const built = builtPagePath(base);
  if (existsSync(built)) return readFileSync(built, 'utf8');
  if (fromSources(base)) return buildPageBundle();
  throw new Error('the chat page was not built (dist/client/page/sealed-chat.js is missing): run npm run build');
}

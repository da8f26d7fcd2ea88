// `npm run build`'s second step: bundles the chat page into dist/ beside the compiled code,
// where a production install (which has no bundler) serves it from. Usage: build-page.ts [DIST].
import { mkdirSync, writeFileSync } from 'node:fs';
import { dirname, join, resolve } from 'node:path';
import { pathToFileURL } from 'node:url';
import { buildPageBundle, builtPagePath } from '../client/node/page-bundle.js';

const dist = resolve(process.argv[2] ?? 'dist');
// The path the compiled page-bundle.js will look at: the same relative location, under dist/.
const out = builtPagePath(pathToFileURL(join(dist, 'client', 'node', 'page-bundle.js')));
const script = await buildPageBundle();
mkdirSync(dirname(out), { recursive: true });
writeFileSync(out, script);
process.stdout.write(`chat page: ${out} (${script.length} bytes)\n`);

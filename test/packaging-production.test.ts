// What a production install carries and runs, done for real into a temporary directory: the
// Dockerfile's production-install line (npm ci --omit=dev, then the prune script), dist/ from the
// build script's two steps (the compiler, then the chat page bundled into dist/), bin/ and the
// model. It must hold no development tooling and none of what transformers.js would bring
// (ONNX Runtime Web, sharp); from that read-only tree the server must tokenize and generate,
// and `sealed proxy` must serve /chat and its script, prebuilt, with no bundler installed.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { chmodSync, cpSync, existsSync, mkdirSync, mkdtempSync, readFileSync, readdirSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { dirname, join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { parseDockerfile } from '../deploy/lib/dockerfile.js';

import { dropPrivileges, lockWithResolved, sh, spawnListening, type Listening } from './fixtures/packaging.js';

const root = join(dirname(fileURLToPath(import.meta.url)), '..');
function installedPackages(dir: string): string[] {
  const out: string[] = [];
  const visit = (nm: string) => {
    if (!existsSync(nm)) return;
    for (const e of readdirSync(nm)) {
      if (e.startsWith('.')) continue;
      const names = e.startsWith('@') ? readdirSync(join(nm, e)).map((n) => `${e}/${n}`) : [e];
      for (const n of names) {
        out.push(n);
        visit(join(nm, n, 'node_modules'));
      }
    }
  };
  visit(join(dir, 'node_modules'));
  return out;
}

/** A child `sealed` process from the production tree, as nobody when root, with its announced URL. */
function sealed(app: string, args: string[], env: NodeJS.ProcessEnv): Listening {
  return spawnListening(dropPrivileges([process.execPath, join(app, 'dist', 'cli', 'sealed.js'), ...args]), app, env, args[0]!);
}

// Never in production: development tooling, and what only transformers.js would bring.
const FORBIDDEN = [
  'typescript', 'tsx', 'esbuild', '@esbuild', 'openai', 'playwright-core', '@hpke/core', '@types/node',
  '@huggingface/transformers', 'onnxruntime-web', 'sharp', '@img/sharp-linux-x64', '@img/sharp-libvips-linux-x64',
];

test('npm run build is the compiler, then the chat page bundled into dist/', () => {
  const pkg = JSON.parse(readFileSync(join(root, 'package.json'), 'utf8')) as { scripts: Record<string, string>; files: string[] };
  assert.equal(pkg.scripts.build, 'tsc -p tsconfig.build.json && TSX_DISABLE_CACHE=1 node --import tsx deploy/build-page.ts dist');
  assert.ok(pkg.files.includes('dist'), 'dist/ (and the page in it) ships in the package');
});

test('production install: no dev tooling, no onnxruntime-web or sharp; the server generates and the proxy serves the prebuilt chat page', { timeout: 300_000 }, async (t) => {
  const df = parseDockerfile(readFileSync(join(root, 'Dockerfile'), 'utf8'));
  const deps = df.stages.find((s) => s.instructions.some((i) => i.keyword === 'RUN' && /npm ci[^&\n]*--omit=dev/.test(i.rest)));
  assert.ok(deps, 'the Dockerfile has a production-install stage');
  const installLine = deps.instructions.find((i) => i.keyword === 'RUN' && /npm ci/.test(i.rest))!.rest;

  const tmp = mkdtempSync(join(tmpdir(), 'sealed-prod-page-'));
  const app = join(tmp, 'app');
  const running: ReturnType<typeof sealed>[] = [];
  try {
    // The deps stage, verbatim, offline from the npm cache.
    mkdirSync(join(app, 'deploy'), { recursive: true });
    cpSync(join(root, 'package.json'), join(app, 'package.json'));
    cpSync(join(root, '.npmrc'), join(app, '.npmrc'));
    writeFileSync(join(app, 'package-lock.json'), lockWithResolved(readFileSync(join(root, 'package-lock.json'), 'utf8')));
    cpSync(join(root, 'deploy', 'prune-production.sh'), join(app, 'deploy', 'prune-production.sh'));
    const install = sh('sh', ['-c', installLine], {
      cwd: app,
      env: { ...process.env, npm_config_offline: 'true', npm_config_update_notifier: 'false', npm_config_loglevel: 'error' },
      timeoutMs: 150_000,
    });
    assert.equal(install.code, 0, `production install failed:\n${install.out}\n${install.err}`);
    const installed = installedPackages(app);
    for (const dep of ['hono', '@hono/node-server', 'onnxruntime-node', '@huggingface/tokenizers', '@huggingface/jinja', 'zod']) {
      assert.ok(installed.includes(dep), `${dep} is installed`);
    }
    for (const name of FORBIDDEN) assert.ok(!installed.includes(name), `${name} must not be in production`);
    assert.ok(!installed.some((n) => n.startsWith('@img/') || n.startsWith('@esbuild/')), 'no native image or bundler binaries');
    const size = sh('du', ['-sk', join(app, 'node_modules')], { cwd: app, timeoutMs: 30_000 });
    t.diagnostic(`production node_modules: ${Math.round(Number(size.out.split(/\s/)[0]) / 1024)} MiB, ${installed.length} packages`);

    // The build stage's two steps, into the tree's dist/.
    const tsc = sh(process.execPath, [join(root, 'node_modules', 'typescript', 'bin', 'tsc'), '-p', join(root, 'tsconfig.build.json'), '--outDir', join(app, 'dist')], { cwd: root, timeoutMs: 120_000 });
    assert.equal(tsc.code, 0, `compile failed:\n${tsc.out}${tsc.err}`);
    const page = sh(process.execPath, ['--import', 'tsx', join(root, 'deploy', 'build-page.ts'), join(app, 'dist')], {
      cwd: root,
      env: { ...process.env, TSX_DISABLE_CACHE: '1' },
      timeoutMs: 60_000,
    });
    assert.equal(page.code, 0, `page build failed:\n${page.out}${page.err}`);
    const builtPage = join(app, 'dist', 'client', 'page', 'sealed-chat.js');
    const bundle = readFileSync(builtPage, 'utf8');
    assert.ok(bundle.length > 10_000, 'the page bundle holds the SDK and verifiers');
    assert.doesNotMatch(bundle, /from\s*["'](node:|onnxruntime|@huggingface)/, 'a browser bundle imports nothing');
    // The very bundle the browser test (test/client-browser.test.ts) drives from the sources.
    const { buildPageBundle } = await import('../client/node/page-bundle.js');
    assert.equal(bundle, await buildPageBundle());

    cpSync(join(root, 'bin'), join(app, 'bin'), { recursive: true });
    cpSync(join(root, 'models', 'stories260K'), join(app, 'models', 'stories260K'), { recursive: true });
    for (const f of ['package-lock.json', '.npmrc']) rmSync(join(app, f));
    rmSync(join(app, 'deploy'), { recursive: true });
    chmodSync(tmp, 0o755);
    assert.equal(sh('chmod', ['-R', 'a-w,a+rX', app], { cwd: tmp, timeoutMs: 30_000 }).code, 0);

    const env: NodeJS.ProcessEnv = { PATH: process.env.PATH, NODE_ENV: 'production', HOME: '/nonexistent', TMPDIR: '/nonexistent' };
    const server = sealed(app, ['serve', '--platform', 'simulated', '--host', '127.0.0.1', '--port', '0', '--model-dir', join(app, 'models', 'stories260K')], env);
    running.push(server);
    const serverUrl = await server.url;
    const proxy = sealed(app, ['proxy', '--url', serverUrl, '--allow-simulation', '--listen', '127.0.0.1:0'], env);
    running.push(proxy);
    const proxyUrl = await proxy.url;

    // The tokenizer and engine run from the production tree: a real, greedy generation.
    const gen = await fetch(`${proxyUrl}/v1/completions`, {
      method: 'POST',
      headers: { 'content-type': 'application/json' },
      body: JSON.stringify({ model: 'stories260K', prompt: 'Once upon a time', max_tokens: 12, temperature: 0 }),
    });
    assert.equal(gen.status, 200);
    const completion = (await gen.json()) as { choices: { text: string }[]; usage: { completion_tokens: number } };
    assert.ok(completion.choices[0].text.length > 0);
    assert.equal(completion.usage.completion_tokens, 12);
    const chat = await fetch(`${proxyUrl}/v1/chat/completions`, {
      method: 'POST',
      headers: { 'content-type': 'application/json' },
      body: JSON.stringify({ model: 'stories260K', messages: [{ role: 'user', content: 'Hi' }], max_tokens: 4, store: false, metadata: { a: 'b' } }),
    });
    assert.equal(chat.status, 200);

    // The chat page and its script, served from the build, with no bundler installed.
    const html = await fetch(`${proxyUrl}/chat`);
    assert.equal(html.status, 200);
    const scriptPath = /<script[^>]+src="([^"]+)"/.exec(await html.text())?.[1];
    assert.ok(scriptPath, 'the page loads a script');
    const script = await fetch(new URL(scriptPath, proxyUrl));
    assert.equal(script.status, 200, 'the chat script is served in production');
    assert.match(script.headers.get('content-type') ?? '', /^text\/javascript/);
    assert.equal(await script.text(), bundle, 'exactly the file the build wrote');
    assert.doesNotMatch(proxy.output(), /chat page unavailable/);

    for (const p of running.splice(0).reverse()) {
      p.child.kill('SIGTERM');
      await p.exit;
    }
  } finally {
    for (const p of running) {
      p.child.kill('SIGKILL');
      await p.exit;
    }
    sh('chmod', ['-R', 'u+w', tmp], { cwd: '/', timeoutMs: 30_000 });
    rmSync(tmp, { recursive: true, force: true });
  }
});

test('compiled code without the built page says so instead of reaching for a bundler', async () => {
  const { loadPageBundle } = await import('../client/node/page-bundle.js');
  const tmp = mkdtempSync(join(tmpdir(), 'sealed-page-'));
  try {
    // A compiled module's location (dist/client/node/page-bundle.js) with no sealed-chat.js beside it.
    const base = new URL(`file://${join(tmp, 'dist', 'client', 'node', 'page-bundle.js')}`);
    await assert.rejects(loadPageBundle(base), /the chat page was not built .*npm run build/);
    // With the built file there, that file is what is served, byte for byte.
    mkdirSync(join(tmp, 'dist', 'client', 'page'), { recursive: true });
    writeFileSync(join(tmp, 'dist', 'client', 'page', 'sealed-chat.js'), 'console.log("built")\n');
    assert.equal(await loadPageBundle(base), 'console.log("built")\n');
  } finally {
    rmSync(tmp, { recursive: true, force: true });
  }
});

test('from a checkout\'s sources the page is bundled in memory from client/page/main.ts', async () => {
  const { loadPageBundle } = await import('../client/node/page-bundle.js');
  const script = await loadPageBundle();
  assert.ok(script.length > 10_000);
  assert.ok(!existsSync(join(root, 'client', 'page', 'sealed-chat.js')), 'nothing was written into the sources');
});

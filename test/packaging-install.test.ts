// The production install the Dockerfile performs, done for real into a
// temporary directory: the deps stage's own RUN line (npm ci --omit=dev, then
// the prune script), dist/ compiled with the repository's TypeScript, the
// model, bin/ and package.json as the runtime stage copies them. The tree is
// then made read-only and the server is started from it as an unprivileged
// user with no usable HOME or TMPDIR: /healthz and a session's attestation must
// answer, and the default platform (auto) must refuse to start without a TEE.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { spawnSync } from 'node:child_process';
import { chmodSync, cpSync, existsSync, mkdirSync, mkdtempSync, readFileSync, readdirSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { dirname, join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { parseDockerfile, substitute } from '../deploy/lib/dockerfile.js';

import { dropPrivileges, isRoot, lockWithResolved, sh, spawnListening, type Listening } from './fixtures/packaging.js';

const root = join(dirname(fileURLToPath(import.meta.url)), '..');
const serverPresent = existsSync(join(root, 'server', 'lifecycle.ts')) && existsSync(join(root, 'cli', 'commands', 'serve.ts'));
/**
 * As root with mount namespaces available, go further, like `docker run --read-only`: in a
 * private mount namespace every file system except /proc, /sys and /dev is remounted
 * read-only (/, /tmp, /var/tmp, the app), a probe proves nothing there is writable any more,
 * then the server runs as nobody. Elsewhere the read-only app tree and nobody must do.
 */
const READ_ONLY_WRAPPER = `set -u
awk '{print $2}' /proc/self/mounts | sort -u | while read -r m; do
  case "$m" in /proc|/proc/*|/sys|/sys/*|/dev|/dev/*) continue ;; esac
  mount -o remount,bind,ro "$m" 2>/dev/null || mount -o remount,ro "$m" 2>/dev/null || true
done
for d in / /tmp /var/tmp "$PWD"; do
  [ -d "$d" ] || continue
  if touch "$d/.sealed-write-probe" 2>/dev/null; then echo "WRITABLE: $d" >&2; rm -f "$d/.sealed-write-probe"; exit 97; fi
done
exec "$@"`;
const canUnshare = isRoot && spawnSync('unshare', ['--mount', '--propagation', 'private', 'true']).status === 0;

function confine(cmd: string[]): string[] {
  const dropped = dropPrivileges(cmd);
  return canUnshare ? ['unshare', '--mount', '--propagation', 'private', 'sh', '-c', READ_ONLY_WRAPPER, 'sh', ...dropped] : dropped;
}

function startServer(app: string, env: NodeJS.ProcessEnv): Listening {
  return spawnListening(confine([process.execPath, join(app, 'dist', 'cli', 'sealed.js'), 'serve', '--host', '127.0.0.1', '--port', '0']), app, env, 'server');
}

test('production install: read-only tree, compiled JS, serves /healthz and a session attestation', { skip: serverPresent ? false : 'server/ and cli/commands/serve.ts have not landed', timeout: 240_000 }, async (t) => {
  const df = parseDockerfile(readFileSync(join(root, 'Dockerfile'), 'utf8'));
  const deps = df.stages.find((s) => s.instructions.some((i) => i.keyword === 'RUN' && /npm ci[^&\n]*--omit=dev/.test(i.rest)));
  assert.ok(deps, 'the Dockerfile has a production-install stage');
  const installLine = deps.instructions.find((i) => i.keyword === 'RUN' && /npm ci/.test(i.rest))!.rest;
  const build = df.stages.find((s) => s.name === 'build')!;
  const model = build.instructions.filter((i) => i.keyword === 'ARG').map((i) => i.rest.split('=')[1]).find(Boolean) ?? df.globalArgs.MODEL;
  assert.ok(model);

  const tmp = mkdtempSync(join(tmpdir(), 'sealed-prod-'));
  const app = join(tmp, 'app');
  let server: ReturnType<typeof startServer> | undefined;
  try {
    // 1. The deps stage: its COPY sources, then its RUN line verbatim, offline from the npm cache.
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
    const modules = readdirSync(join(app, 'node_modules'));
    for (const dep of ['hono', '@hono', 'onnxruntime-node', '@huggingface', '@noble', 'zod']) assert.ok(modules.includes(dep), dep);
    for (const dev of ['typescript', 'openai', 'playwright-core', '@hpke', 'tsx', 'esbuild']) assert.ok(!modules.includes(dev), `${dev} must not be installed`);
    const ortOs = readdirSync(join(app, 'node_modules', 'onnxruntime-node', 'bin', 'napi-v6'));
    assert.deepEqual(ortOs, [process.platform]);

    // 2. The build stage: dist/ from the repository's own compiler and tsconfig.build.json.
    const tsc = sh(process.execPath, [join(root, 'node_modules', 'typescript', 'bin', 'tsc'), '-p', join(root, 'tsconfig.build.json'), '--outDir', join(app, 'dist')], { cwd: root, timeoutMs: 120_000 });
    assert.equal(tsc.code, 0, `npm run build would fail:\n${tsc.out}${tsc.err}`);
    assert.ok(existsSync(join(app, 'dist', 'cli', 'sealed.js')));

    // 3. The runtime stage's other COPYs.
    cpSync(join(root, 'bin'), join(app, 'bin'), { recursive: true });
    cpSync(join(root, 'models', model), join(app, 'models', model), { recursive: true });
    rmSync(join(app, 'package-lock.json'));
    rmSync(join(app, '.npmrc'));
    rmSync(join(app, 'deploy'), { recursive: true });
    const digestRun = sh(process.execPath, [join(root, 'deploy', 'model-digest.mjs'), join(app, 'models', model)], { cwd: app, timeoutMs: 30_000 });
    assert.equal(digestRun.code, 0, digestRun.err);
    const buildDigest = digestRun.out.split(/\s+/)[0];
    assert.match(buildDigest, /^[0-9a-f]{64}$/);

    // 4. Read-only, traversable by the unprivileged user.
    chmodSync(tmp, 0o755);
    assert.equal(sh('chmod', ['-R', 'a-w,a+rX', app], { cwd: tmp, timeoutMs: 30_000 }).code, 0);
    const probe = (path: string) => {
      const cmd = confine([process.execPath, '-e', `require('fs').writeFileSync(${JSON.stringify(path)}, 'x')`]);
      return sh(cmd[0], cmd.slice(1), { cwd: app, timeoutMs: 10_000 }).code;
    };
    assert.notEqual(probe(join(app, 'probe')), 0, 'the app tree must not be writable by the server user');
    if (canUnshare) {
      // The confinement the server runs under really leaves nothing writable, /tmp included.
      assert.notEqual(probe('/tmp/sealed-probe'), 0, '/tmp must be read-only for the server');
      t.diagnostic('server runs as nobody in a mount namespace with every file system read-only');
    } else {
      t.diagnostic('server runs with a read-only app tree (no mount namespace available)');
    }

    const env: NodeJS.ProcessEnv = {
      PATH: process.env.PATH,
      NODE_ENV: 'production',
      HOME: '/nonexistent',
      TMPDIR: '/nonexistent',
      SEALED_MODEL_DIR: join(app, 'models', model),
    };

    // 5. Default platform (auto) outside a TEE: refuses to start, listens on nothing.
    if (!existsSync('/sys/kernel/config/tsm/report')) {
      const auto = startServer(app, env);
      auto.url.catch(() => {});
      const code = await auto.exit;
      assert.equal(code, 1, auto.output());
      assert.doesNotMatch(auto.output(), /listening on/);
      assert.match(auto.output(), /no TEE|no evidence provider/);
    }

    // 6. Simulated: serves the CONTRACT surface from the read-only tree.
    server = startServer(app, { ...env, SEALED_PLATFORM: 'simulated' });
    const url = await server.url;
    const health = await fetch(`${url}/healthz`);
    assert.equal(health.status, 200);
    assert.deepEqual(await health.json(), { status: 'ok' });

    const nonce = Buffer.alloc(32, 7).toString('hex');
    const sid = Buffer.from(crypto.getRandomValues(new Uint8Array(16))).toString('base64url');
    const att = await fetch(`${url}/v1/sessions/${sid}/attestation?nonce=${nonce}`);
    assert.equal(att.status, 200);
    assert.match(att.headers.get('content-type') ?? '', /^application\/json/);
    const ev = (await att.json()) as { version: number; session: string; platform: string; simulated: boolean; keyConfig: string; expiresAt: string; reportData: string; model: { id: string; digest: string } };
    assert.equal(ev.version, 2);
    assert.equal(ev.session, sid);
    assert.equal(ev.platform, 'sev-snp');
    assert.equal(ev.simulated, true);
    // The digest printed during the build is the one the server attests to.
    assert.deepEqual(ev.model, { id: model, digest: buildDigest });
    const { computeReportData } = await import('../enclave/binding.js');
    const expected = computeReportData({
      nonce: Buffer.from(nonce, 'hex'), session: sid, keyConfig: Buffer.from(ev.keyConfig, 'base64url'), modelDigest: Buffer.from(buildDigest, 'hex'),
      modelId: ev.model.id, expiresAt: Date.parse(ev.expiresAt) / 1000, simulated: ev.simulated,
    });
    assert.equal(ev.reportData, Buffer.from(expected).toString('hex'));

    server.child.kill('SIGTERM');
    assert.equal(await server.exit, 0, server.output());
    server = undefined;
  } finally {
    if (server) {
      server.child.kill('SIGKILL');
      await server.exit;
    }
    sh('chmod', ['-R', 'u+w', tmp], { cwd: '/', timeoutMs: 30_000 });
    rmSync(tmp, { recursive: true, force: true });
  }
});

test('the offline lock transformation only adds tarball URLs', () => {
  const lock = readFileSync(join(root, 'package-lock.json'), 'utf8');
  const before = JSON.parse(lock) as { packages: Record<string, Record<string, unknown>> };
  const after = JSON.parse(lockWithResolved(lock)) as typeof before;
  assert.deepEqual(Object.keys(after.packages), Object.keys(before.packages));
  for (const [path, meta] of Object.entries(before.packages)) {
    const { resolved, ...rest } = after.packages[path];
    assert.deepEqual(rest, meta, path);
    if (path !== '' && !meta.link) {
      const name = path.slice(path.lastIndexOf('node_modules/') + 13);
      assert.equal(resolved, meta.resolved ?? `https://registry.npmjs.org/${name}/-/${name.split('/').pop()}-${String(meta.version)}.tgz`);
    }
  }
  assert.equal(substitute('${X}', { X: 'y' }), 'y');
});

// The production Dockerfile, checked by reading it (no Docker engine runs
// here): pinned base, production-only dependencies, compiled JavaScript at run
// time, the model digest printed in the build, a non-root user, nothing that
// needs a writable path, a healthcheck, and `auto` platform by default.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { spawn } from 'node:child_process';
import { existsSync, readFileSync, statSync } from 'node:fs';
import { createServer } from 'node:http';
import type { AddressInfo } from 'node:net';
import { dirname, join } from 'node:path';
import { fileURLToPath } from 'node:url';
import {
  DockerfileError,
  dockerIgnored,
  envPairs,
  parseDockerfile,
  substitute,
  type Instruction,
  type Stage,
} from '../deploy/lib/dockerfile.js';

const root = join(dirname(fileURLToPath(import.meta.url)), '..');
const df = parseDockerfile(readFileSync(join(root, 'Dockerfile'), 'utf8'));
const ignore = readFileSync(join(root, '.dockerignore'), 'utf8');
const final = df.stages[df.stages.length - 1];
const stageByName = (name: string) => df.stages.find((s) => s.name === name);
const all = (s: Stage, kw: string) => s.instructions.filter((i) => i.keyword === kw);
const runText = (s: Stage) => all(s, 'RUN').map((i) => i.rest).join('\n');
const envOf = (s: Stage) => Object.assign({}, ...all(s, 'ENV').map(envPairs)) as Record<string, string>;
/** ARG defaults visible in a stage: the global default, unless redeclared with its own. */
function argsOf(s: Stage): Record<string, string | undefined> {
  const vars = { ...df.globalArgs };
  for (const a of all(s, 'ARG')) {
    const [k, v] = a.rest.split('=', 2);
    if (v !== undefined) vars[k] = v;
  }
  return vars;
}

test('parser: directives, continuations with comments, exec and shell forms, stages', () => {
  const d = parseDockerfile([
    '# syntax=docker/dockerfile:1',
    '# escape=\\',
    '',
    'ARG BASE=alpine@sha256:' + 'a'.repeat(64),
    'FROM ${BASE} AS one',
    'RUN echo a \\',
    '  # a comment inside the continuation',
    '',
    '  && echo b',
    'from one as two',
    'COPY --from=one --chown=1:1 /x /y',
    'CMD ["node", "x.js"]',
    'ENTRYPOINT [not json]',
    'ENV A=1 B="two words" C=',
    'ENV LEGACY some value',
  ].join('\n'));
  assert.deepEqual(d.directives, { syntax: 'docker/dockerfile:1', escape: '\\' });
  assert.equal(d.stages.length, 2);
  assert.equal(d.stages[0].from, 'alpine@sha256:' + 'a'.repeat(64));
  assert.equal(d.stages[0].name, 'one');
  assert.equal(d.stages[0].instructions[0].rest, 'echo a  && echo b');
  assert.equal(d.stages[1].from, 'one');
  const [copy, cmd, ep, env, legacy] = d.stages[1].instructions;
  assert.deepEqual(copy.flags, { from: 'one', chown: '1:1' });
  assert.equal(copy.rest, '/x /y');
  assert.deepEqual(cmd.exec, ['node', 'x.js']);
  assert.equal(ep.exec, undefined); // invalid JSON: shell form, as Docker treats it
  assert.deepEqual(envPairs(env), { A: '1', B: 'two words', C: '' });
  assert.deepEqual(envPairs(legacy), { LEGACY: 'some value' });
  assert.equal(substitute('$A-${B}-${NONE}', { A: 'x', B: 'y' }), 'x-y-');
  assert.throws(() => parseDockerfile('RUN x'), (e: unknown) => e instanceof DockerfileError && e.code === 'stage');
  assert.throws(() => parseDockerfile('FROM a\nFROBNICATE x'), (e: unknown) => e instanceof DockerfileError && e.code === 'syntax');
  assert.throws(() => parseDockerfile('FROM a\nRUN x \\'), DockerfileError);
  assert.throws(() => parseDockerfile('FROM a AS x\nFROM b AS x'), DockerfileError);
});

test('.dockerignore matcher follows Docker rules', () => {
  const rules = 'node_modules\n*.pem\ndocs/**/*.png\n!docs/keep.png\n/dist/\n';
  assert.ok(dockerIgnored(rules, 'node_modules'));
  assert.ok(dockerIgnored(rules, 'node_modules/x/y.js'));
  assert.ok(dockerIgnored(rules, 'key.pem'));
  assert.ok(!dockerIgnored(rules, 'enclave/roots/x.pem')); // anchored at the root
  assert.ok(dockerIgnored(rules, 'docs/a/b/c.png'));
  assert.ok(!dockerIgnored(rules, 'docs/keep.png'));
  assert.ok(dockerIgnored(rules, 'dist/cli/sealed.js'));
  assert.ok(!dockerIgnored(rules, 'distribution'));
});

test('every base image is pinned by digest (or is an earlier stage)', () => {
  assert.ok(df.stages.length >= 3, 'multi-stage');
  for (const s of df.stages) {
    const earlier = df.stages.slice(0, s.index).some((p) => p.name === s.from);
    if (earlier) continue;
    assert.match(s.from, /^[a-z0-9./_-]+(:[\w.-]+)?@sha256:[0-9a-f]{64}$/, `stage ${s.name ?? s.index}: ${s.from}`);
    assert.match(s.from, /^node:20-bookworm-slim@/, 'Node 20 on Debian bookworm (glibc for onnxruntime-node)');
  }
});

test('production dependencies only: npm ci --omit=dev, pruned, copied into the final stage', () => {
  const deps = df.stages.find((s) => /\bnpm ci\b[^&\n]*--omit=dev/.test(runText(s)));
  assert.ok(deps, 'a stage runs npm ci --omit=dev');
  assert.notEqual(deps, final);
  assert.match(runText(deps), /prune-production\.sh/);
  const nm = all(final, 'COPY').filter((c) => /node_modules/.test(c.rest));
  assert.equal(nm.length, 1, 'node_modules comes from exactly one place');
  assert.equal(nm[0].flags.from, deps.name, 'and that is the --omit=dev stage');
  // The final stage installs nothing itself and keeps no package manager cache.
  assert.doesNotMatch(runText(final), /\bnpm (ci|install|i)\b/);
  // The prune script the Dockerfile relies on is in the repository and in the build context.
  for (const c of [...all(deps, 'COPY'), ...all(stageByName('build')!, 'COPY')].filter((c) => !c.flags.from)) {
    const srcs = c.rest.split(/\s+/).slice(0, -1);
    for (const src of srcs) {
      if (src === '.') continue;
      assert.ok(existsSync(join(root, src)), `COPY source ${src} exists`);
      assert.ok(!dockerIgnored(ignore, src), `COPY source ${src} is not excluded by .dockerignore`);
    }
  }
});

test('compiled JavaScript at run time: built with npm run build, started from dist/, no tsx', () => {
  const build = stageByName('build');
  assert.ok(build);
  assert.match(runText(build), /\bnpm run build\b/);
  const dist = all(final, 'COPY').find((c) => /\bdist\b/.test(c.rest));
  assert.equal(dist?.flags.from, 'build');
  const ep = all(final, 'ENTRYPOINT').at(-1);
  assert.ok(ep?.exec, 'exec-form ENTRYPOINT (signals reach node directly)');
  assert.equal(ep.exec[0], 'node');
  assert.match(ep.exec[ep.exec.length - 1], /^\/app\/dist\/cli\/sealed\.js$/);
  assert.deepEqual(all(final, 'CMD').at(-1)?.exec, ['serve']);
  // The compiled entry point is what tsconfig.build.json emits for cli/sealed.ts.
  const tsb = JSON.parse(readFileSync(join(root, 'tsconfig.build.json'), 'utf8')) as { compilerOptions: { outDir: string } };
  assert.equal(tsb.compilerOptions.outDir, 'dist');
  assert.ok(existsSync(join(root, 'cli', 'sealed.ts')));
  for (const ins of final.instructions) {
    assert.doesNotMatch(ins.raw, /\btsx\b|--import|--loader|\.ts\b/, `line ${ins.line}: ${ins.keyword} ${ins.raw}`);
  }
  const env = envOf(final);
  assert.equal(env.NODE_ENV, 'production');
  assert.ok(!('NODE_OPTIONS' in env), 'no NODE_OPTIONS that could load a loader');
});

test('the model is baked in with its manifest digest printed during the build', () => {
  const build = stageByName('build')!;
  const digestRun = all(build, 'RUN').find((r) => /deploy\/model-digest\.mjs/.test(r.rest));
  assert.ok(digestRun, 'the build runs deploy/model-digest.mjs');
  const model = argsOf(build).MODEL;
  assert.ok(model, 'ARG MODEL has a default');
  assert.ok(statSync(join(root, 'models', model)).isDirectory(), `models/${model} exists`);
  assert.ok(!dockerIgnored(ignore, `models/${model}/onnx/model.onnx`));
  const copies = all(final, 'COPY').map((c) => substitute(c.rest, argsOf(final)));
  assert.ok(copies.some((c) => c.startsWith(`/src/models/${model} `)), 'the final stage copies the model');
  assert.equal(envOf(final).SEALED_MODEL_DIR?.replace('${MODEL}', model), `/app/models/${model}`);
});

test('deploy/model-digest.mjs prints the digest the engine computes', async () => {
  const { computeModelDigest } = await import('../engine/manifest.js');
  const dir = join(root, 'models', 'stories260K');
  const out = await new Promise<string>((resolve, reject) => {
    const p = spawn(process.execPath, [join(root, 'deploy', 'model-digest.mjs'), dir], { stdio: ['ignore', 'pipe', 'inherit'] });
    let s = '';
    p.stdout.on('data', (d) => (s += d));
    p.on('error', reject);
    p.on('close', (code) => (code === 0 ? resolve(s) : reject(new Error(`exit ${code}`))));
  });
  assert.equal(out, `${(await computeModelDigest(dir)).digest}  ${dir}\n`);
});

test('non-root, no volume, no writable path needed', () => {
  const user = all(final, 'USER').at(-1);
  assert.ok(user, 'final stage sets USER');
  const [uid, gid] = user.rest.split(':');
  assert.match(uid, /^\d+$/, 'numeric uid (runAsNonRoot can check it)');
  assert.notEqual(Number(uid), 0);
  assert.notEqual(Number(gid ?? uid), 0);
  // USER comes after every RUN, so nothing at run time happens as root.
  const lastRun = Math.max(...all(final, 'RUN').map((r) => r.line));
  assert.ok(user.line > lastRun);
  assert.deepEqual(df.instructions.filter((i) => i.keyword === 'VOLUME'), [], 'no VOLUME anywhere');
  // Files are root-owned: no COPY --chown hands the app user write access to its code.
  for (const c of all(final, 'COPY')) assert.equal(c.flags.chown, undefined, `line ${c.line}`);
  const env = envOf(final);
  assert.equal(env.HOME, '/nonexistent');
  assert.ok(!('TMPDIR' in env));
});

test('platform auto by default: the image refuses to start outside a TEE unless told simulated', () => {
  const env = envOf(final);
  assert.equal(env.SEALED_PLATFORM, 'auto');
  for (const s of df.stages) assert.notEqual(envOf(s).SEALED_PLATFORM, 'simulated');
  assert.ok(!all(final, 'CMD').some((c) => /simulated/.test(c.raw)));
  assert.ok(!all(final, 'ENTRYPOINT').some((c) => /simulated/.test(c.raw)));
  assert.equal(env.HOST, '0.0.0.0');
  const port = env.PORT;
  assert.ok(all(final, 'EXPOSE').some((e) => e.rest.split(/\s+/).includes(port)), `EXPOSE ${port}`);
});

test('build context excludes installed modules, build output, history and keys', () => {
  for (const p of ['node_modules', 'node_modules/tsx/package.json', 'dist/cli/sealed.js', 'build/image/sealed-inference.raw', '.image-build/out/sealed-inference.raw', '.git/config', 'sim_vcek_pub.pem', '.env']) {
    assert.ok(dockerIgnored(ignore, p), p);
  }
  for (const p of ['package.json', 'package-lock.json', '.npmrc', 'cli/sealed.ts', 'bin/sealed.mjs', 'tsconfig.build.json', 'deploy/model-digest.mjs']) {
    assert.ok(!dockerIgnored(ignore, p), p);
  }
});

function healthcheck(): Instruction {
  const hc = all(final, 'HEALTHCHECK').at(-1);
  assert.ok(hc, 'HEALTHCHECK present');
  return hc;
}

test('HEALTHCHECK is node fetching /healthz, with sane timings, no curl', () => {
  const hc = healthcheck();
  assert.ok(hc.rest.startsWith('CMD '));
  const exec = JSON.parse(hc.rest.slice(4)) as string[];
  assert.equal(exec[0], 'node');
  assert.match(exec.join(' '), /\/healthz/);
  assert.doesNotMatch(hc.raw, /curl|wget/);
  for (const f of ['interval', 'timeout', 'start-period', 'retries']) assert.ok(hc.flags[f], `--${f}`);
});

test('the HEALTHCHECK command passes on 200 and fails on 503 or no server', async () => {
  const exec = JSON.parse(healthcheck().rest.slice(4)) as string[];
  let status = 200;
  const srv = createServer((req, res) => {
    res.statusCode = req.url === '/healthz' ? status : 404;
    res.end('{"status":"ok"}');
  });
  await new Promise<void>((r) => srv.listen(0, '127.0.0.1', r));
  const port = (srv.address() as AddressInfo).port;
  const runCheck = (p: number) =>
    new Promise<number>((resolve) => {
      const child = spawn(process.execPath, exec.slice(1), { env: { PATH: process.env.PATH, PORT: String(p) }, stdio: 'ignore' });
      child.on('close', (code) => resolve(code ?? -1));
    });
  try {
    assert.equal(await runCheck(port), 0);
    status = 503;
    assert.equal(await runCheck(port), 1);
  } finally {
    await new Promise<void>((r) => srv.close(() => r()));
  }
  assert.equal(await runCheck(port), 1, 'nothing listening');
});

// The production process stores nothing: `sealed serve --platform simulated` (what `npm start`
// runs) under strace opens no file for writing, creates, renames or removes none, across
// start-up, attested sessions (plain and streamed) and shutdown; and a unique prompt sent
// through a session appears nowhere in what it prints.
import assert from 'node:assert/strict';
import { spawn, spawnSync } from 'node:child_process';
import { mkdtempSync, readFileSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { test } from 'node:test';
import { fileURLToPath } from 'node:url';
import { attest, bindingHolds, sendChunked, sendPlain, sseData, streamedText } from './fixtures/server/client.js';

const ROOT = fileURLToPath(new URL('..', import.meta.url));
const hasStrace = spawnSync('strace', ['-V'], { stdio: 'ignore' }).status === 0;
const MARKER = `Quokka${crypto.randomUUID().replaceAll('-', '')}`;

/** Syscalls that create, modify or remove a file system entry. */
const MUTATING = /^(creat|rename|renameat2?|unlink|unlinkat|mkdir|mkdirat|rmdir|truncate|link|linkat|symlink|symlinkat|mknod|mknodat)\(/;
const OPEN = /^(open|openat|openat2|open_by_handle_at)\(/;
const WRITE_FLAGS = /O_WRONLY|O_RDWR|O_CREAT|O_TRUNC|O_APPEND|O_TMPFILE/;

/** The offending trace lines: opens for writing and mutating calls, whatever their result. */
export function writesIn(trace: string): string[] {
  const bad: string[] = [];
  for (const raw of trace.split('\n')) {
    const line = raw.replace(/^\d+\s+/, '');
    if (OPEN.test(line) && WRITE_FLAGS.test(line)) bad.push(line);
    else if (MUTATING.test(line)) bad.push(line);
  }
  return bad;
}

/** The server's pid: strace's child, from /proc, or else the pid on the trace's first line (its execve). */
function tracedPid(stracePid: number, tracePath: string): number {
  try {
    const pid = Number(readFileSync(`/proc/${stracePid}/task/${stracePid}/children`, 'utf8').trim().split(/\s+/)[0]);
    if (pid > 0) return pid;
  } catch {
    // kernels without CONFIG_PROC_CHILDREN
  }
  const pid = Number(/^(\d+)\s/.exec(readFileSync(tracePath, 'utf8'))?.[1]);
  assert.ok(pid > 0, 'found the traced server process');
  return pid;
}

test('the trace filter finds writes (so a pass below means something)', () => {
  const sample = [
    '123 openat(AT_FDCWD, "/etc/hosts", O_RDONLY|O_CLOEXEC) = 3',
    '123 openat(AT_FDCWD, "/tmp/x", O_WRONLY|O_CREAT|O_TRUNC|O_CLOEXEC, 0666) = 4',
    '124 rename("/tmp/a", "/tmp/b") = 0',
    '124 mkdir("/root/.cache/tsx", 0777) = -1 EEXIST (File exists)',
    '125 statx(AT_FDCWD, "/x/truncate.js", AT_STATX_SYNC_AS_STAT, STATX_ALL, {...}) = 0',
  ].join('\n');
  assert.equal(writesIn(sample).length, 3);
});

test('sealed serve under strace writes no file and prints no prompt', { skip: hasStrace ? false : 'strace is not installed (.ci/run installs it)', timeout: 120_000 }, async () => {
  const dir = mkdtempSync(join(tmpdir(), 'sealed-strace-'));
  const tracePath = join(dir, 'trace');
  const child = spawn(
    'strace',
    ['-f', '-qq', '-e', 'trace=%file', '-e', 'signal=none', '-o', tracePath,
      process.execPath, '--import', 'tsx', 'cli/sealed.ts', 'serve', '--platform', 'simulated', '--host', '127.0.0.1', '--port', '0', '--threads', '1'],
    { cwd: ROOT, env: { ...process.env, TSX_DISABLE_CACHE: '1' }, stdio: ['ignore', 'pipe', 'pipe'] },
  );
  let stdout = '';
  let stderr = '';
  child.stdout.on('data', (b: Buffer) => (stdout += b.toString()));
  child.stderr.on('data', (b: Buffer) => (stderr += b.toString()));
  const exited = new Promise<number | null>((resolve) => child.on('exit', (code) => resolve(code)));
  try {
    const base = await new Promise<string>((resolve, reject) => {
      const timer = setTimeout(() => reject(new Error(`server did not start: ${stdout} ${stderr}`)), 90_000);
      const check = () => {
        const m = /listening on (http:\/\/127\.0\.0\.1:\d+)/.exec(stdout);
        if (m) {
          clearTimeout(timer);
          resolve(m[1]!);
        }
      };
      child.stdout.on('data', check);
      void exited.then(() => reject(new Error(`server exited: ${stdout} ${stderr}`)));
    });
    assert.match(stdout, /SIMULATION MODE/);

    const a = await attest(base);
    assert.ok(bindingHolds(a));
    const chat = { model: 'stories260K', messages: [{ role: 'user', content: `Tell a story about ${MARKER}` }], max_tokens: 20, temperature: 0 };
    const plain = await sendPlain(base, a, { method: 'POST', path: '/v1/chat/completions', json: chat });
    assert.equal(plain.inner!.status, 200);
    const streamed = await sendChunked(base, a, { method: 'POST', path: '/v1/chat/completions', json: { ...chat, stream: true } });
    assert.equal(streamed.inner!.complete, true);
    assert.equal(streamedText(sseData(streamed.inner!.text)), JSON.parse(plain.inner!.text).choices[0].message.content);
    const bad = await sendPlain(base, a, { method: 'POST', path: '/v1/chat/completions', json: { ...chat, model: MARKER } });
    assert.equal(bad.inner!.status, 404);
    const outerBad = await fetch(`${base}/${MARKER}?q=${MARKER}`, { method: 'POST', body: MARKER });
    assert.equal(outerBad.status, 404);

    process.kill(tracedPid(child.pid!, tracePath), 'SIGTERM');
    assert.equal(await exited, 0, 'graceful exit on SIGTERM');
  } finally {
    if (child.exitCode === null) child.kill('SIGKILL');
    await exited;
  }
  const trace = readFileSync(tracePath, 'utf8');
  rmSync(dir, { recursive: true, force: true });
  assert.ok(/openat\(/.test(trace) && trace.split('\n').length > 100, 'strace saw the process open its files');
  assert.deepEqual(writesIn(trace), [], 'no file opened for writing, created, renamed or removed');
  assert.match(stderr, /POST \/v1\/sessions\/{sid}\/ohttp 200/, 'the access log is there');
  assert.match(stderr, /session keys wiped/);
  assert.ok(!stdout.includes(MARKER) && !stderr.includes(MARKER), 'the prompt appears in nothing the server prints');
});

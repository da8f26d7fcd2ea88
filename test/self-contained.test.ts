// The repository stands on its own: no tracked code, test, document or script refers to anything
// outside it. A user's clone has no team workspace beside it, so such a reference is a test that
// cannot run or a link that leads nowhere.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { mkdtempSync, mkdirSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { isScanned, scanRepository, scanText, trackedFiles } from './fixtures/outside-refs.js';

const ROOT = fileURLToPath(new URL('..', import.meta.url));

// Written in pieces so this file holds no reference of its own.
const UP = '..';
const WS = ['', 'work', ''].join('/');
const HOME_DIR = ['', 'home', ''].join('/');

test('no tracked file refers to a path outside the repository', () => {
  const { scanned, refs } = scanRepository(ROOT);
  // The scan saw the kinds of files it claims to cover.
  for (const f of ['README.md', 'package.json', 'Dockerfile', 'test/self-contained.test.ts', 'server/app.ts', '.ci/run']) {
    assert.ok(scanned.includes(f), `${f} was not scanned`);
  }
  assert.ok(!scanned.some((f) => f.endsWith('.onnx') || f.endsWith('.bin')), 'binary data was scanned');
  const report = refs.map((r) => `${r.file}:${r.line}: ${r.why}: ${r.text}`).join('\n');
  assert.equal(refs.length, 0, `references leaving the repository:\n${report}`);
});

test('the scan finds each kind of outside reference, with file and line', () => {
  const cases: [string, string, RegExp][] = [
    ['test/x.test.ts', `const V = new URL('${UP}/${UP}/shared/vectors/', import.meta.url);`, /sibling|climbs/],
    ['test/fixtures/a.ts', `export const D = new URL('${UP}/${UP}/${UP}/anything/', import.meta.url);`, /climbs above/],
    ['test/y.test.ts', `const d = join(root, '${UP}', 'shared', 'measurement');`, /sibling/],
    ['README.md', `see [the contract](${UP}/shared/CONTRACT.md)`, /sibling|climbs/],
    ['docs/A.md', `read \`${UP}/${UP}/x.md\``, /climbs above/],
    ['bench/run.ts', `const p = '${WS}main/models';`, /team workspace/],
    ['deploy/a.sh', `cp ${HOME_DIR}alice/model.onnx .`, /home directory/],
  ];
  for (const [file, line, why] of cases) {
    const refs = scanText(file, `// first line\n${line}\n`);
    assert.equal(refs.length > 0, true, `missed in ${file}: ${line}`);
    assert.equal(refs[0].file, file);
    assert.equal(refs[0].line, 2);
    assert.match(refs.map((r) => r.why).join(' '), why);
  }
});

test('references that stay inside the repository pass', () => {
  const fine: [string, string][] = [
    ['test/fixtures/client/server.ts', `import { Engine } from '${UP}/${UP}/${UP}/engine/index.js';`],
    ['test/a.test.ts', `const ROOT = fileURLToPath(new URL('${UP}', import.meta.url));`],
    ['test/a.test.ts', `const VECTORS = new URL('./fixtures/vectors/', import.meta.url);`],
    ['client/page/x.ts', `import { run } from '${UP}/main.js';`],
    ['docs/A.md', `see [the README](${UP}/README.md) and \`rtmr0\`${UP}\`rtmr3\``],
    ['.ci/run', `cd "$(dirname "$0")/${UP}"`],
    ['test/m.test.ts', `'--kernel', '/dev/null', [1, 2, 3].map((x) => ({ ...x }))`],
  ];
  for (const [file, line] of fine) assert.deepEqual(scanText(file, line), [], `${file}: ${line}`);
});

test('which files are scanned: code, tests, documents, scripts; not data', () => {
  for (const f of ['a.ts', 'b/c.mjs', 'README.md', 'deploy/x.sh', 'Dockerfile', 'package.json', 'enclave/image/mkosi.conf', 'x.service']) {
    assert.ok(isScanned(f, ''), f);
  }
  assert.ok(isScanned('enclave/image/mkosi.postinst.chroot', '#!'));
  for (const f of ['models/m/onnx/model.onnx', 'test/fixtures/measurement/ovmf.bin', 'test/fixtures/vectors/v.json', 'docs/bench/x.svg']) {
    assert.ok(!isScanned(f, ''), f);
  }
});

test('without git, a directory walk finds the same files and skips installed modules', () => {
  const dir = mkdtempSync(join(tmpdir(), 'sealed-scan-'));
  try {
    mkdirSync(join(dir, 'test'));
    mkdirSync(join(dir, 'node_modules', 'x'), { recursive: true });
    writeFileSync(join(dir, 'test', 'a.test.ts'), `ok\nconst V = new URL('${UP}/${UP}/shared/v.json', import.meta.url);\n`);
    writeFileSync(join(dir, 'node_modules', 'x', 'i.js'), `require('${UP}/${UP}/${UP}/y')\n`);
    const files = trackedFiles(dir);
    assert.deepEqual(files, ['test/a.test.ts']);
    const { refs } = scanRepository(dir, files);
    assert.deepEqual([...new Set(refs.map((r) => `${r.file}:${r.line}`))], ['test/a.test.ts:2']);
  } finally {
    rmSync(dir, { recursive: true, force: true });
  }
});

// The VM image recipe and deployment scripts, checked by reading them: a
// verity-protected read-only root whose hash is on the measured command line, a
// confined service that fails closed, scripts that parse, and `sealed measure`
// invoked only with flags it has. Building and booting the image is
// `npm run test:image` (deploy/test-image.sh), not part of `npm test`.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { spawnSync } from 'node:child_process';
import { existsSync, mkdtempSync, readdirSync, readFileSync, rmSync, statSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { dirname, join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { runMeasure } from '../cli/commands/measure.js';

const root = join(dirname(fileURLToPath(import.meta.url)), '..');
const image = join(root, 'enclave', 'image');
const read = (...p: string[]) => readFileSync(join(...p), 'utf8');

/** systemd-style INI (mkosi.conf, repart, units): sections of key -> values; indented lines continue a list. */
function parseIni(text: string): Map<string, Map<string, string[]>> {
  const sections = new Map<string, Map<string, string[]>>();
  let current: Map<string, string[]> | undefined;
  let lastKey: string | undefined;
  let pending = '';
  for (const raw of text.split('\n')) {
    if (/^\s*[#;]/.test(raw) || raw.trim() === '') {
      lastKey = raw.trim() === '' ? undefined : lastKey;
      continue;
    }
    const line = pending + raw;
    if (line.endsWith('\\')) {
      pending = line.slice(0, -1) + ' ';
      continue;
    }
    pending = '';
    const sec = /^\[(.+)\]$/.exec(line.trim());
    if (sec) {
      current = sections.get(sec[1]) ?? new Map();
      sections.set(sec[1], current);
      lastKey = undefined;
      continue;
    }
    assert.ok(current, `key outside a section: ${line}`);
    if (/^\s/.test(line) && lastKey) {
      current.get(lastKey)!.push(...line.trim().split(/\s+/));
      continue;
    }
    const kv = /^([A-Za-z][A-Za-z0-9]*)=(.*)$/.exec(line);
    assert.ok(kv, `not key=value: ${line}`);
    const values = current.get(kv[1]) ?? [];
    values.push(...(kv[2].trim() === '' ? [] : kv[2].trim().split(/\s+/)));
    current.set(kv[1], values);
    lastKey = kv[1];
  }
  return sections;
}
const one = (ini: Map<string, Map<string, string[]>>, sec: string, key: string) => ini.get(sec)?.get(key)?.join(' ');

test('mkosi.conf: bootable Debian disk with a UKI, Node >= 20 from Debian, no login', () => {
  const c = parseIni(read(image, 'mkosi.conf'));
  assert.equal(one(c, 'Distribution', 'Distribution'), 'debian');
  // bookworm ships Node 18; trixie is the first Debian release with Node 20.
  assert.ok(['trixie', 'testing', 'sid', 'unstable'].includes(one(c, 'Distribution', 'Release')!));
  assert.equal(one(c, 'Output', 'Format'), 'disk');
  assert.match(one(c, 'Output', 'SplitArtifacts')!, /\buki\b.*\bkernel\b.*\binitrd\b|\bkernel\b.*\binitrd\b/);
  assert.equal(one(c, 'Content', 'Bootable'), 'yes');
  assert.equal(one(c, 'Content', 'Bootloader'), 'uki');
  assert.equal(one(c, 'Content', 'Autologin'), 'no');
  assert.equal(one(c, 'Content', 'Ssh'), 'never');
  const pkgs = c.get('Content')!.get('Packages')!;
  for (const p of ['linux-image-amd64', 'systemd', 'nodejs', 'systemd-boot-efi']) assert.ok(pkgs.includes(p), p);
  for (const p of ['openssh-server', 'sudo']) assert.ok(!pkgs.includes(p), `${p} must not be installed`);
  const cmdline = c.get('Content')!.get('KernelCommandLine')!;
  assert.ok(cmdline.includes('ro'));
  assert.ok(!cmdline.includes('rw'));
  assert.ok(cmdline.includes('rd.shell=0'));
  // dracut's options do nothing in mkosi's systemd initrd; none may pretend to configure it.
  assert.ok(!cmdline.some((a) => a.startsWith('rd.emergency=')), 'rd.emergency= is a dracut option');
  assert.ok(!cmdline.some((a) => a.startsWith('roothash=')), 'mkosi adds the real roothash; none hard-coded');
  assert.ok(cmdline.includes('systemd.volatile=state'), 'root stays read-only, /var in memory');
});

test('repart: EROFS root under dm-verity, hash partition matched to it', () => {
  const dir = join(image, 'mkosi.repart');
  const parts = readdirSync(dir).sort().map((f) => parseIni(read(dir, f)).get('Partition')!);
  const rootPart = parts.find((p) => p.get('Type')?.[0] === 'root');
  const verity = parts.find((p) => p.get('Type')?.[0] === 'root-verity');
  const esp = parts.find((p) => p.get('Type')?.[0] === 'esp');
  assert.ok(rootPart && verity && esp);
  assert.ok(['erofs', 'squashfs'].includes(rootPart.get('Format')![0]), 'a read-only file system');
  assert.deepEqual(rootPart.get('Verity'), ['data']);
  assert.deepEqual(verity.get('Verity'), ['hash']);
  assert.deepEqual(rootPart.get('VerityMatchKey'), verity.get('VerityMatchKey'));
  assert.ok(rootPart.get('CopyFiles')!.includes('/'));
});

test('sealed-inference.service: non-root, platform auto, confined, model present', () => {
  const u = parseIni(read(image, 'mkosi.extra', 'usr', 'lib', 'systemd', 'system', 'sealed-inference.service'));
  const s = u.get('Service')!;
  const exec = s.get('ExecStart')!.join(' ');
  assert.match(exec, /^\/usr\/bin\/node \/opt\/sealed-inference\/dist\/cli\/sealed\.js serve /);
  assert.match(exec, /--platform auto\b/);
  assert.doesNotMatch(exec, /simulated|tsx|\.ts\b/);
  assert.equal(s.get('User')![0], 'sealed');
  for (const [k, v] of [['NoNewPrivileges', 'yes'], ['ProtectSystem', 'strict'], ['ProtectHome', 'yes'], ['RestrictSUIDSGID', 'yes']]) {
    assert.deepEqual(s.get(k), [v], k);
  }
  assert.deepEqual(s.get('CapabilityBoundingSet'), [], 'no capabilities at all');
  assert.ok(!s.has('ProtectKernelTunables'), 'configfs-tsm under /sys must stay reachable');
  // Only the grant runs privileged ('+'), and it is shipped executable.
  assert.deepEqual(s.get('ExecStartPre'), ['+/usr/lib/sealed-inference/tsm-grant']);
  const grant = join(image, 'mkosi.extra', 'usr', 'lib', 'sealed-inference', 'tsm-grant');
  assert.ok(statSync(grant).mode & 0o111);
  assert.match(read(grant), /chown sealed:sealed "\$report"/);
  const env = s.get('Environment')!.join(' ');
  const model = /SEALED_MODEL_DIR=\/opt\/sealed-inference\/models\/(\S+)/.exec(env)?.[1];
  assert.ok(model && existsSync(join(root, 'models', model)), 'the default model exists in the repository');
  assert.match(env, /NODE_ENV=production/);
});

test('postinst creates the same unprivileged uid as the container image', () => {
  const post = join(image, 'mkosi.postinst.chroot');
  assert.ok(statSync(post).mode & 0o111);
  const text = read(post);
  const uid = /useradd[^\n]*--uid (\d+)/.exec(text.replace(/\\\n\s*/g, ' '))?.[1];
  assert.equal(uid, '10001');
  assert.match(read(root, 'Dockerfile'), /^USER 10001:10001$/m);
  assert.match(text, /systemctl enable sealed-inference\.service/);
  assert.match(text, /systemctl mask [^\n]*serial-getty@\.service/);
  assert.equal(spawnSync('sh', ['-n', post]).status, 0);
});

test('deployment scripts parse and use strict mode', () => {
  const dir = join(root, 'deploy');
  const scripts = readdirSync(dir).filter((f) => f.endsWith('.sh'));
  for (const s of ['build-image.sh', 'qemu-snp.sh', 'gcp.sh', 'azure.sh', 'verify.sh', 'prune-production.sh']) assert.ok(scripts.includes(s), s);
  for (const s of scripts) {
    const p = join(dir, s);
    const shell = read(p).startsWith('#!/bin/sh') ? 'sh' : 'bash';
    const r = spawnSync(shell, ['-n', p], { encoding: 'utf8' });
    assert.equal(r.status, 0, `${s}: ${r.stderr}`);
    assert.ok(statSync(p).mode & 0o111, `${s} is executable`);
    assert.match(read(p), shell === 'bash' ? /^set -euo pipefail$/m : /^set -eu$/m, s);
  }
});

test('every `sealed measure` and `sealed chat` in the scripts and docs uses flags those commands have', async () => {
  let help = '';
  await runMeasure(['--help'], { stdout: { write: (s: string) => (help += s) }, stderr: { write: () => {} } });
  const measureFlags = new Set(help.match(/--[a-z][a-z-]*/g));
  // `sealed chat`'s flags, from its own source (its help text and option table).
  const chatFlags = new Set(read(root, 'cli', 'commands', 'chat.ts').match(/--[a-z][a-z-]*/g));
  const sources = [
    ...readdirSync(join(root, 'deploy')).filter((f) => f.endsWith('.sh')).map((f) => join(root, 'deploy', f)),
    join(root, 'docs', 'DEPLOY.md'),
  ].filter(existsSync);
  let measureCalls = 0;
  for (const f of sources) {
    const text = read(f).replace(/\\\n\s*/g, ' ');
    for (const line of text.split('\n')) {
      const m = /(?:sealed(?:\.mjs)?"?|sealed --) (measure|chat)\b(.*)$/.exec(line);
      if (!m) continue;
      const allowed = m[1] === 'measure' ? measureFlags : chatFlags;
      if (m[1] === 'measure') measureCalls++;
      for (const flag of m[2].match(/(?<![\w-])--[a-z][a-z-]*/g) ?? []) {
        assert.ok(allowed.has(flag), `${f}: sealed ${m[1]} has no ${flag}`);
      }
    }
  }
  assert.ok(measureCalls >= 3, 'the scripts and docs show how to compute the measurement');
});

test('the build pins its tools and sources, and removes what made two builds differ', () => {
  const c = parseIni(read(image, 'mkosi.conf'));
  assert.equal(one(c, 'Build', 'ToolsTree'), 'default');
  assert.equal(one(c, 'Build', 'ToolsTreeRelease'), 'trixie');
  assert.equal(one(c, 'Build', 'ToolsTreeSandboxTrees'), 'mkosi.sandbox');
  assert.equal(one(c, 'Output', 'SectorSize'), '512', 'OVMF reads no 4096-byte FAT sectors from a 512-byte disk');
  assert.ok(c.get('Content')!.get('Packages')!.includes('passwd'), 'groupadd/useradd for the postinst');
  const removed = c.get('Content')!.get('RemoveFiles')!;
  for (const f of ['/var/cache/ldconfig/aux-cache', '/var/log/alternatives.log']) assert.ok(removed.includes(f), f);
  // The initrd carries a short module list, not every driver.
  assert.deepEqual(c.get('Content')!.get('KernelModulesInitrdExclude'), ['.*']);
  const initrd = c.get('Content')!.get('KernelModulesInitrdInclude')!;
  for (const m of ['dm-verity', 'erofs', 'virtio_blk', 'nvme']) assert.ok(initrd.some((p) => p.includes(m)), m);
  const rootModules = c.get('Content')!.get('KernelModulesInclude')!;
  assert.ok(rootModules.includes('/virt/coco/'), 'sev-guest, tdx-guest and tsm stay in the root');
  // Every initrd module is also in the root: the modules initrd is drawn from the root's modules.
  for (const m of initrd) assert.ok(rootModules.includes(m) || rootModules.some((r) => m.startsWith(r)), `${m} in the root too`);
  // Its own apt sources, with no debug archive (mkosi adds debian-debug by default).
  const sources = read(image, 'mkosi.sandbox', 'etc', 'apt', 'sources.list.d', 'mkosi.sources');
  assert.match(sources, /^Suites: trixie trixie-updates$/m);
  assert.match(sources, /^Suites: trixie-security$/m);
  assert.doesNotMatch(sources.replace(/^#.*$/gm, ''), /debug/);
  const rootPart = parseIni(read(image, 'mkosi.repart', '10-root.conf')).get('Partition')!;
  assert.ok(rootPart.get('Compression')?.[0], 'the EROFS root is compressed');
  const build = read(root, 'deploy', 'build-image.sh');
  assert.match(build, /^MKOSI_DEB=mkosi_[0-9.]+-[0-9]+_all\.deb$/m);
  assert.match(build, /^MKOSI_DEB_SHA256=[0-9a-f]{64}$/m);
  assert.match(build, /sha256sum -c/);
  const ovmf = read(root, 'deploy', 'build-ovmf-amdsev.sh');
  assert.match(ovmf, /^ORIG_SHA256=[0-9a-f]{64}$/m);
  assert.match(ovmf, /^DEBIAN_TAR_SHA256=[0-9a-f]{64}$/m);
});

test('test:image is its own script, not part of npm test, and CI runs it too, before npm test', () => {
  const pkg = JSON.parse(read(root, 'package.json'));
  assert.equal(pkg.scripts['test:image'], 'bash deploy/test-image.sh');
  assert.doesNotMatch(pkg.scripts.test, /image/);
  const t = read(root, 'deploy', 'test-image.sh');
  assert.match(t, /diff -u "\$WORK\/a\/SHA256SUMS" "\$WORK\/b\/SHA256SUMS"/, 'two builds compared');
  assert.match(t, /accel=tcg/);
  assert.match(t, /no TEE found/);
  assert.match(t, /\/readyz/);
  assert.match(t, /chat --url [^\n]* --allow-simulation/);
  // Before npm test, so that the test runner's summary is what closes CI's output; both run.
  const ci = read(root, '.ci', 'run');
  const image = ci.indexOf('npm run test:image');
  const tests = ci.search(/^npm test$/m);
  assert.ok(image > 0 && tests > image, 'CI runs test:image, then npm test last');
});

test('uki-section.mjs copies one PE section exactly, and refuses what is not a PE file', () => {
  // A minimal PE: DOS header pointing at the PE signature, COFF header, no optional header, two sections.
  const cmdline = Buffer.from('roothash=' + 'ab'.repeat(32) + ' ro console=ttyS0\0');
  const pe = Buffer.alloc(0x200 + 0x100);
  pe.write('MZ', 0, 'latin1');
  pe.writeUInt32LE(0x40, 0x3c);
  pe.write('PE\0\0', 0x40, 'latin1');
  pe.writeUInt16LE(2, 0x40 + 6);
  pe.writeUInt16LE(0, 0x40 + 20);
  const section = (i: number, name: string, offset: number, virtualSize: number, rawSize: number) => {
    const at = 0x40 + 24 + i * 40;
    pe.write(name, at, 'latin1');
    pe.writeUInt32LE(virtualSize, at + 8);
    pe.writeUInt32LE(rawSize, at + 16);
    pe.writeUInt32LE(offset, at + 20);
  };
  section(0, '.osrel', 0x180, 4, 0x80);
  section(1, '.cmdline', 0x200, cmdline.length, 0x100); // raw size padded, as linkers align it
  pe.fill(0x41, 0x180, 0x200);
  cmdline.copy(pe, 0x200);
  const dir = mkdtempSync(join(tmpdir(), 'uki-'));
  const file = join(dir, 'x.efi');
  writeFileSync(file, pe);
  const run = (...args: string[]) => spawnSync(process.execPath, [join(root, 'deploy', 'uki-section.mjs'), ...args], { encoding: 'buffer' });
  const r = run(file, '.cmdline');
  assert.equal(r.status, 0, r.stderr.toString());
  assert.deepEqual(r.stdout, cmdline, 'the VirtualSize bytes, not the padding');
  assert.deepEqual(run(file, '.osrel').stdout, Buffer.from('AAAA'));
  const missing = run(file, '.linux');
  assert.equal(missing.status, 1);
  assert.match(missing.stderr.toString(), /no section \.linux/);
  writeFileSync(file, Buffer.from('not a PE file at all, just text long enough to have a header.....'));
  assert.match(run(file, '.cmdline').stderr.toString(), /not a PE file/);
  assert.equal(run(file).status, 2);
  rmSync(dir, { recursive: true });
});

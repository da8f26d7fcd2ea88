// `sealed measure` as a user runs it: the digest on stdout, the policy file,
// exit codes, and nothing written on failure.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { existsSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { dirname, join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { runMeasure } from '../cli/commands/measure.js';

const root = join(dirname(fileURLToPath(import.meta.url)), '..');
const dataDir = join(root, 'test', 'fixtures', 'measurement');
const AMDSEV = join(dataDir, 'ovmf_AmdSev_suffix.bin');
const X64 = join(dataDir, 'ovmf_OvmfX64_suffix.bin');
// test_snp_default of sev-snp-measure's cases.
const SNP_DEFAULT = '803f691094946e42068aaa3a8f9e26a5c89f36f7b73ecfb28c653360fe4b3aba7e534442e7e1e17895dfe778d0228977';
const SNP_DEFAULT_ARGS = ['--ovmf', AMDSEV, '--vcpus', '1', '--vcpu-type', 'EPYC-v4', '--kernel', '/dev/null', '--initrd', '/dev/null', '--append', 'console=ttyS0 loglevel=7', '--guest-features', '0x21'];

async function run(argv: string[]): Promise<{ code: number; out: string; err: string }> {
  let out = '';
  let err = '';
  const code = await runMeasure(argv, { stdout: { write: (s: string) => (out += s) }, stderr: { write: (s: string) => (err += s) } });
  return { code, out, err };
}

test('--help documents every flag and exits 0', async () => {
  const r = await run(['--help']);
  assert.equal(r.code, 0);
  for (const flag of ['--ovmf', '--kernel', '--initrd', '--append', '--vcpus', '--vcpu-type', '--vmm-type', '--guest-features', '--snp-ovmf-hash', '--policy-out']) {
    assert.ok(r.out.includes(flag), flag);
  }
});

test('prints the digest in hex or base64', async () => {
  const hex = await run(SNP_DEFAULT_ARGS);
  assert.equal(hex.code, 0, hex.err);
  assert.equal(hex.out, SNP_DEFAULT + '\n');
  const b64 = await run([...SNP_DEFAULT_ARGS, '--output-format', 'base64']);
  assert.equal(b64.out, Buffer.from(SNP_DEFAULT, 'hex').toString('base64') + '\n');
});

test('--vcpu-family/model/stepping and --vcpu-sig equal --vcpu-type', async () => {
  const byParts = await run([...SNP_DEFAULT_ARGS.slice(0, 4), '--vcpu-family', '23', '--vcpu-model', '1', '--vcpu-stepping', '2', ...SNP_DEFAULT_ARGS.slice(6)]);
  const bySig = await run([...SNP_DEFAULT_ARGS.slice(0, 4), '--vcpu-sig', '0x800f12', ...SNP_DEFAULT_ARGS.slice(6)]);
  assert.equal(byParts.out, SNP_DEFAULT + '\n');
  assert.equal(bySig.out, SNP_DEFAULT + '\n');
});

test('--policy-out writes the policy clients pin; --merge adds to it', async () => {
  const dir = mkdtempSync(join(tmpdir(), 'sealed-measure-'));
  try {
    const path = join(dir, 'policy.json');
    const r = await run([...SNP_DEFAULT_ARGS, '--policy-out', path]);
    assert.equal(r.code, 0, r.err);
    assert.deepEqual(JSON.parse(readFileSync(path, 'utf8')), { measurement: SNP_DEFAULT, platforms: ['sev-snp'] });

    writeFileSync(path, JSON.stringify({ measurement: SNP_DEFAULT, platforms: ['sev-snp'], allowDebug: false }));
    const four = await run(['--ovmf', AMDSEV, '--vcpus', '4', '--vcpu-type', 'EPYC-v4', '--kernel', '/dev/null', '--initrd', '/dev/null', '--append', '', '--guest-features', '0x21', '--policy-out', path, '--merge']);
    assert.equal(four.code, 0, four.err);
    const merged = JSON.parse(readFileSync(path, 'utf8'));
    // test_snp_with_multiple_vcpus_default
    assert.deepEqual(merged.measurement, [SNP_DEFAULT, '4953b1fb416fa874980e8442b3706d345926d5f38879134e00813c5d7abcbe78eafe7b422907be0b4698e2414a631942']);
    assert.equal(merged.allowDebug, false);

    // What clients load: the verifier's own policy parser accepts the merged file as written.
    const { parsePolicy } = await import('../enclave/policy.js');
    const parsedMerged = parsePolicy(readFileSync(path, 'utf8'));
    assert.deepEqual(parsedMerged.sevSnp.measurement?.map((m) => Buffer.from(m).toString('hex')), merged.measurement);
    assert.equal(parsedMerged.sevSnp.allowDebug, false);

    const withModel = await run([...SNP_DEFAULT_ARGS, '--policy-out', path, '--model-dir', join(root, 'models', 'stories260K')]);
    assert.equal(withModel.code, 0, withModel.err);
    const { computeModelDigest } = await import('../engine/manifest.js');
    const modelDigest = (await computeModelDigest(join(root, 'models', 'stories260K'))).digest;
    assert.equal(JSON.parse(readFileSync(path, 'utf8')).modelDigest, modelDigest);
    const parsed = parsePolicy(readFileSync(path, 'utf8'));
    assert.deepEqual(parsed.platforms, ['sev-snp']);
    assert.equal(Buffer.from(parsed.modelDigest!).toString('hex'), modelDigest);
    assert.equal(Buffer.from(parsed.sevSnp.measurement![0]).toString('hex'), SNP_DEFAULT);

    // A directory with several graphs: the digest of the one the server is told to serve.
    const variants = join(root, 'test', 'fixtures', 'models', 'stories260K-variants');
    const withVariant = await run([...SNP_DEFAULT_ARGS, '--policy-out', path, '--model-dir', variants, '--model-file', 'q4']);
    assert.equal(withVariant.code, 0, withVariant.err);
    const q4 = (await computeModelDigest(variants, 'model_q4.onnx')).digest;
    assert.equal(JSON.parse(readFileSync(path, 'utf8')).modelDigest, q4);
    assert.notEqual(q4, modelDigest);
    assert.equal((await run([...SNP_DEFAULT_ARGS, '--policy-out', path, '--model-file', 'q4'])).code, 2, '--model-file needs --model-dir');
  } finally {
    rmSync(dir, { recursive: true, force: true });
  }
});

test('usage errors exit 2, malformed OVMF exits 30, and no policy is written', async () => {
  const dir = mkdtempSync(join(tmpdir(), 'sealed-measure-'));
  try {
    const path = join(dir, 'policy.json');
    const cases: [string[], number][] = [
      [['--vcpus', '1', '--vcpu-type', 'EPYC'], 2], // no --ovmf
      [['--ovmf', AMDSEV, '--vcpu-type', 'EPYC'], 2], // no --vcpus
      [['--ovmf', AMDSEV, '--vcpus', '1'], 2], // qemu needs a vCPU type
      [['--ovmf', AMDSEV, '--vcpus', '1', '--vcpu-type', 'Skylake'], 2],
      [['--ovmf', AMDSEV, '--vcpus', 'x', '--vcpu-type', 'EPYC'], 2],
      [['--ovmf', AMDSEV, '--vcpus', '1', '--vcpu-type', 'EPYC', '--append', 'x'], 2], // --append without --kernel
      [['--ovmf', AMDSEV, '--vcpus', '1', '--vcpu-type', 'EPYC', '--vmm-type', 'xen'], 2],
      [['--ovmf', AMDSEV, '--vcpus', '1', '--vcpu-type', 'EPYC', '--guest-features', '0x20'], 2], // SNPActive clear
      [['--ovmf', AMDSEV, '--vcpus', '1', '--vcpu-type', 'EPYC', '--snp-ovmf-hash', 'abcd'], 2],
      [['--ovmf', join(dir, 'missing.fd'), '--vcpus', '1', '--vcpu-type', 'EPYC'], 2],
      [['--ovmf', AMDSEV, '--bogus'], 2],
      [['--ovmf', X64, '--vcpus', '1', '--vcpu-type', 'EPYC', '--kernel', '/dev/null'], 30],
      [['--ovmf', join(root, 'package.json'), '--vcpus', '1', '--vcpu-type', 'EPYC'], 30],
    ];
    for (const [argv, code] of cases) {
      const r = await run([...argv, '--policy-out', path]);
      assert.equal(r.code, code, `${argv.join(' ')}: ${r.err}`);
      assert.equal(r.out, '');
      assert.ok(r.err.length > 0);
      assert.ok(!existsSync(path), 'no policy written on failure');
    }
  } finally {
    rmSync(dir, { recursive: true, force: true });
  }
});

test('sev and seves modes, and the OVMF-only digest', async () => {
  const sev = await run(['--mode', 'sev', '--ovmf', AMDSEV, '--kernel', '/dev/null', '--initrd', '/dev/null', '--append', 'console=ttyS0 loglevel=7']);
  assert.equal(sev.out, '82a3ee5d537c3620628270c292ae30cb40c3c878666a7890ee7ef2a08fb535ff\n');
  const seves = await run(['--mode', 'seves', '--ovmf', AMDSEV, '--vcpus', '4', '--vcpu-type', 'EPYC-v4', '--kernel', '/dev/null', '--initrd', '/dev/null', '--append', '']);
  assert.equal(seves.out, '0dccbcaba8e90b261bd0d2e1863a2f9da714768b7b2a19363cd6ae35aa90de91\n');
  const h = await run(['--mode', 'snp:ovmf-hash', '--ovmf', AMDSEV]);
  assert.equal(h.out, '086e2e9149ebf45abdc3445fba5b2da8270bdbb04094d7a2c37faaa4b24af3aa16aff8c374c2a55c467a50da6d466b74\n');
});

// `sealed verify sev-snp | evidence` exit codes and output, CONTRACT.md: 0 accepted, 10 rejected (one
// stderr line `rejected: CODE: reason`), 30 malformed input, 1 internal error.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { mkdtempSync, readFileSync, writeFileSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { execFile } from 'node:child_process';
import { runVerify } from '../cli/commands/verify.js';
import { createSimulatedProvider } from '../enclave/providers/simulated.js';
import { buildEvidence } from '../enclave/evidence.js';
import { ARK_GENOA_PEM } from '../enclave/roots/amd-genoa.js';

const SEV = new URL('./fixtures/attestation/sev-snp/', import.meta.url).pathname;
const dir = mkdtempSync(join(tmpdir(), 'verify-cli-'));
const file = (name: string, data: string | Uint8Array) => {
  const p = join(dir, name);
  writeFileSync(p, data);
  return p;
};
const REPORT = join(SEV, 'attestation.bin');
const VCEK = join(SEV, 'vcek.testcer');
const AT = String(Date.UTC(2025, 0, 1) / 1000);
const DEBUG = file('debug.json', JSON.stringify({ allowDebug: true }));

/** Runs the command in-process, capturing its output. */
async function run(...argv: string[]): Promise<{ code: number; out: string; err: string }> {
  let out = '';
  let err = '';
  const code = await runVerify(argv, { out: (s) => { out += s; }, err: (s) => { err += s; } });
  return { code, out, err };
}

function oneRejectionLine(err: string, code: string): void {
  const lines = err.split('\n').filter(Boolean);
  assert.equal(lines.length, 1, err);
  assert.match(lines[0], new RegExp(`^rejected: ${code}: \\S`));
}

test('sev-snp: the real report is accepted under a policy allowing its debug flag (0), --json has fields and verdict', async () => {
  const r = await run('sev-snp', '--report', REPORT, '--vcek', VCEK, '--at', AT, '--policy', DEBUG, '--json');
  assert.equal(r.code, 0, r.err);
  const j = JSON.parse(r.out);
  assert.equal(j.verdict, 'accepted');
  assert.equal(j.product, 'Milan');
  assert.equal(j.report.version, 2);
  assert.equal(j.report.reportedTcb.microcode, 68);
  assert.equal(j.report.reportData.slice(0, 10), '0102030405');
  assert.ok(j.checks.includes('VCEK hwID = CHIP_ID'));
});

test('sev-snp: rejections exit 10 with one stderr line naming the code', async () => {
  let r = await run('sev-snp', '--report', REPORT, '--vcek', VCEK, '--at', AT);
  assert.equal(r.code, 10);
  oneRejectionLine(r.err, 'sev_policy_debug');

  const flipped = readFileSync(REPORT);
  flipped[0x90] ^= 0x01;
  r = await run('sev-snp', '--report', file('flipped.bin', flipped), '--vcek', VCEK, '--at', AT, '--policy', DEBUG, '--json');
  assert.equal(r.code, 10);
  oneRejectionLine(r.err, 'sev_report_signature');
  const j = JSON.parse(r.out);
  assert.equal(j.verdict, 'rejected');
  assert.equal(j.code, 'sev_report_signature');
  assert.equal(j.report.version, 2, 'parsed fields are printed even when rejected');

  r = await run('sev-snp', '--report', REPORT, '--vcek', VCEK, '--at', String(Date.UTC(2030, 0, 1) / 1000), '--policy', DEBUG);
  assert.equal(r.code, 10);
  oneRejectionLine(r.err, 'sev_chain_expired');

  r = await run('sev-snp', '--report', REPORT, '--vcek', VCEK, '--at', AT, '--policy', DEBUG, '--ark', file('genoa.pem', ARK_GENOA_PEM));
  assert.equal(r.code, 10);
  oneRejectionLine(r.err, 'sev_product_mismatch');

  r = await run('sev-snp', '--report', REPORT, '--vcek', VCEK, '--at', AT, '--policy', file('pin.json', JSON.stringify({ allowDebug: true, minTcb: { snp: 9 } })));
  assert.equal(r.code, 10);
  oneRejectionLine(r.err, 'sev_tcb_too_low');
});

test('sev-snp: malformed input exits 30', async () => {
  const cases: string[][] = [
    ['--report', file('short.bin', readFileSync(REPORT).subarray(0, 1000)), '--vcek', VCEK, '--at', AT],
    ['--report', REPORT, '--at', AT], // no VCEK: nothing is fetched
    ['--vcek', VCEK],
    ['--report', REPORT, '--vcek', VCEK, '--at', 'yesterday'],
    ['--report', REPORT, '--vcek', VCEK, '--bogus'],
    ['--report', join(dir, 'missing.bin'), '--vcek', VCEK],
    ['--report', REPORT, '--vcek', file('junk.der', 'not a certificate'), '--at', AT],
    ['--report', REPORT, '--vcek', VCEK, '--policy', file('bad.json', '{')],
    ['--report', REPORT, '--vcek', VCEK, '--policy', file('unknown.json', '{"measurment":"00"}')],
    ['--report', REPORT, '--vcek', VCEK, '--at'],
  ];
  for (const argv of cases) {
    const r = await run('sev-snp', ...argv);
    assert.equal(r.code, 30, `${argv.join(' ')}: ${r.err}`);
    assert.equal(r.err.split('\n').filter(Boolean).length, 1);
  }
});

test('sev-snp: a simulated report verifies only when its ARK replaces the embedded root (--ark)', async () => {
  const p = await createSimulatedProvider({ codeDigest: new Uint8Array(32) });
  const ev = await p.getEvidence(new Uint8Array(64).fill(1));
  const args = ['--report', file('sim.bin', ev.report), '--vcek', file('sim-vcek.der', ev.vcek!), '--ask', file('sim-ask.der', p.chain.ask)];
  let r = await run('sev-snp', ...args, '--ark', file('sim-ark.der', p.chain.ark));
  assert.equal(r.code, 0, r.err);
  r = await run('sev-snp', ...args);
  assert.equal(r.code, 10);
  oneRejectionLine(r.err, 'sev_chain_issuer_mismatch');
});

test('evidence: simulated evidence needs --allow-simulation; binding is checked against --nonce', async () => {
  const p = await createSimulatedProvider({ codeDigest: new Uint8Array(32) });
  const nonce = 'ab'.repeat(32);
  const ev = await buildEvidence({
    provider: p, keyId: 1, keyConfig: Uint8Array.of(1, 0, 0x20, 9, 9), expiresAt: new Date(Date.now() + 600_000),
    model: { id: 'stories260K', digest: '12'.repeat(32) }, nonce: Buffer.from(nonce, 'hex'),
  });
  const f = file('evidence.json', JSON.stringify(ev));
  let r = await run('evidence', '--file', f, '--nonce', nonce, '--allow-simulation');
  assert.equal(r.code, 0, r.err);
  r = await run('evidence', '--file', f, '--nonce', nonce, '--allow-simulation', '--json');
  assert.equal(JSON.parse(r.out).verdict, 'accepted');
  assert.equal(JSON.parse(r.out).simulated, true);
  r = await run('evidence', '--file', f, '--nonce', nonce);
  assert.equal(r.code, 10);
  oneRejectionLine(r.err, 'simulation_not_allowed');
  r = await run('evidence', '--file', f, '--nonce', 'cd'.repeat(32), '--allow-simulation');
  assert.equal(r.code, 10);
  oneRejectionLine(r.err, 'binding_mismatch');
  r = await run('evidence', '--file', f, '--nonce', nonce, '--allow-simulation', '--policy', file('m.json', JSON.stringify({ modelDigest: '00'.repeat(32) })));
  assert.equal(r.code, 10);
  oneRejectionLine(r.err, 'model_digest_mismatch');
  for (const argv of [['--file', f, '--nonce', 'abc'], ['--file', file('bad.json', '{"version":1}'), '--nonce', nonce], ['--nonce', nonce], ['--file', f]]) {
    r = await run('evidence', ...argv);
    assert.equal(r.code, 30, argv.join(' '));
  }
});

test('--help for verify and each kind exits 0 with usage', async () => {
  for (const argv of [['--help'], ['sev-snp', '--help'], ['evidence', '--help']]) {
    const r = await run(...argv);
    assert.equal(r.code, 0);
    assert.match(r.out, /^usage: sealed verify/);
  }
  assert.match((await run('sev-snp', '--help')).out, /--report FILE/);
  // tdx is delegated to cli/verify-tdx.ts (its own flags and help)
  const tdx = await run('tdx', '--help');
  assert.equal(tdx.code, 0);
  assert.match(tdx.out, /usage: sealed verify tdx --quote FILE/);
  assert.equal((await run('tdx', '--quote')).code, 30);
  assert.equal((await run()).code, 30);
  assert.equal((await run('sgx')).code, 30);
});

test('through the real `sealed` entry point the process exit code is the verdict', async () => {
  const root = new URL('..', import.meta.url).pathname;
  const exit = (args: string[]) =>
    new Promise<number>((resolve) => {
      execFile(process.execPath, ['--import', 'tsx', join(root, 'cli/sealed.ts'), 'verify', ...args], { cwd: root }, (e) => {
        resolve(e ? (typeof e.code === 'number' ? e.code : -1) : 0);
      });
    });
  assert.equal(await exit(['sev-snp', '--report', REPORT, '--vcek', VCEK, '--at', AT]), 10);
  assert.equal(await exit(['sev-snp', '--report', REPORT, '--vcek', VCEK, '--at', AT, '--policy', DEBUG]), 0);
});

test.after(() => rmSync(dir, { recursive: true }));

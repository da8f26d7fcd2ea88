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
import { encodeTcb } from '../enclave/sev-snp/report.js';
import { buildAmdPki } from './fixtures/sev-snp/amd-pki.js';

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

test('sev-snp: the policy\'s platforms are honoured (exit 10 when sev-snp is left out)', async () => {
  const r = await run('sev-snp', '--report', REPORT, '--vcek', VCEK, '--at', AT, '--policy', file('tdx-only.json', JSON.stringify({ allowDebug: true, platforms: ['tdx'] })), '--json');
  assert.equal(r.code, 10);
  oneRejectionLine(r.err, 'platform_not_allowed');
  assert.match(r.err, /platform is sev-snp, the policy's platforms are tdx/);
  assert.equal(JSON.parse(r.out).report.version, 2, 'the report was parsed before the platform was refused');
  const both = await run('sev-snp', '--report', REPORT, '--vcek', VCEK, '--at', AT, '--policy', file('both.json', JSON.stringify({ allowDebug: true, platforms: ['tdx', 'sev-snp'] })));
  assert.equal(both.code, 0, both.err);
});

test('sev-snp: VLEK, AMD CRL and firmware checks through the command, on a fully signed test chain', async () => {
  const vlek = buildAmdPki({ kind: 'VLEK' });
  const args = ['--vcek', file('vlek.der', vlek.key), '--ask', file('asvk.der', vlek.asvk), '--ark', file('ark.der', vlek.ark)];
  const ok = await run('sev-snp', '--report', file('vlek.bin', vlek.report({ version: 5 })), ...args, '--json');
  assert.equal(ok.code, 0, ok.err);
  assert.equal(JSON.parse(ok.out).signingKey, 'VLEK');
  assert.equal(JSON.parse(ok.out).report.version, 5);
  const revoked = await run('sev-snp', '--report', join(dir, 'vlek.bin'), ...args, '--crl', file('revoked.crl', vlek.crl({ revoked: [vlek.serials.asvk] })));
  assert.equal(revoked.code, 10);
  oneRejectionLine(revoked.err, 'sev_chain_revoked');
  const clean = await run('sev-snp', '--report', join(dir, 'vlek.bin'), ...args, '--crl', file('clean.crl', vlek.crl({})), '--json');
  assert.equal(clean.code, 0, clean.err);
  assert.equal(JSON.parse(clean.out).crlChecked, true);
  const junk = await run('sev-snp', '--report', join(dir, 'vlek.bin'), ...args, '--crl', file('junk.crl', 'not a CRL'));
  assert.equal(junk.code, 30);
  assert.match(junk.err, /^malformed: sev_crl_malformed: /);

  const current = encodeTcb({ ...vlek.tcb, snp: vlek.tcb.snp + 1 }, 'Milan');
  const provisional = file('prov.bin', vlek.report({ currentTcb: current, committedTcb: encodeTcb(vlek.tcb, 'Milan') }));
  const prov = await run('sev-snp', '--report', provisional, ...args);
  assert.equal(prov.code, 10);
  oneRejectionLine(prov.err, 'sev_firmware_provisional');
  assert.match(prov.err, /COMMITTED_TCB .* differs from CURRENT_TCB/);
  const relaxed = await run('sev-snp', '--report', provisional, ...args, '--policy', file('prov.json', JSON.stringify({ allowProvisionalFirmware: true })));
  assert.equal(relaxed.code, 0, relaxed.err);
});

test('sev-snp: a report the layout parser refuses exits 30; one that parses but fails a check exits 10', async () => {
  const v6 = readFileSync(REPORT);
  v6[0] = 6;
  const version = await run('sev-snp', '--report', file('v6.bin', v6), '--vcek', VCEK, '--at', AT);
  assert.equal(version.code, 30);
  assert.match(version.err, /^malformed: sev_report_version: report version is 6, expected one of 2, 3, 4, 5\n$/);
  const reserved = readFileSync(REPORT);
  reserved[0x1f8] = 1;
  assert.equal((await run('sev-snp', '--report', file('res.bin', reserved), '--vcek', VCEK, '--at', AT)).code, 30);
  // Relabelled as version 4 it parses (the byte is then a mitigation vector) and fails a check: its
  // CPUID fields, zero in a version 2 report, name no product.
  const v4 = readFileSync(REPORT);
  v4[0] = 4;
  v4[0x1f8] = 1;
  const check = await run('sev-snp', '--report', file('v4.bin', v4), '--vcek', VCEK, '--at', AT, '--policy', DEBUG);
  assert.equal(check.code, 10);
  oneRejectionLine(check.err, 'sev_product_mismatch');
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
    provider: p, session: 'AAAAAAAAAAAAAAAAAAAAAA', keyConfig: Uint8Array.of(1, 0, 0x20, 9, 9), expiresAt: new Date(Math.floor(Date.now() / 1000) * 1000 + 600_000),
    model: { id: 'stories260K', digest: '12'.repeat(32) }, nonce: Buffer.from(nonce, 'hex'),
  });
  const f = file('evidence.json', JSON.stringify(ev));
  let r = await run('evidence', '--file', f, '--nonce', nonce, '--allow-simulation');
  assert.equal(r.code, 0, r.err);
  assert.equal(r.out, 'accepted (SIMULATED)\n'); // plain output never lets simulation pass for hardware
  r = await run('evidence', '--file', f, '--nonce', nonce, '--allow-simulation', '--crl', file('other.crl', buildAmdPki().crl({})));
  assert.equal(r.code, 10); // the CRL is applied: its issuer is not this chain's ARK
  oneRejectionLine(r.err, 'sev_chain_crl_issuer_unknown');
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

test('one rule chooses 30 or 10 for every verb: unparseable input 30, a failed check 10', async () => {
  const { isMalformedCode } = await import('../cli/commands/verify.js');
  const { isMalformedCode: tdxRule } = await import('../cli/verify-tdx.js');
  assert.equal(isMalformedCode, tdxRule);
  for (const c of ['sev_report_length', 'sev_report_version', 'sev_report_reserved', 'tdx_quote_version', 'tdx_quote_truncated',
    'tdx_quote_malformed', 'sev_crl_malformed', 'evidence_malformed', 'policy_invalid']) assert.equal(isMalformedCode(c), true, c);
  for (const c of ['sev_report_signature', 'sev_firmware_provisional', 'sev_chain_revoked', 'tdx_td_migratable', 'tdx_td_sept_ve_enabled',
    'platform_not_allowed', 'sev_signing_key', 'sev_vmpl']) assert.equal(isMalformedCode(c), false, c);
});

test('--help for verify and each kind exits 0 with usage', async () => {
  for (const argv of [['--help'], ['sev-snp', '--help'], ['evidence', '--help']]) {
    const r = await run(...argv);
    assert.equal(r.code, 0);
    assert.match(r.out, /^usage: sealed verify/);
  }
  const help = (await run('sev-snp', '--help')).out;
  for (const re of [/--report FILE/, /--crl FILE/, /VLEK/, /allowProvisionalFirmware/, /vmpl/, /platforms/]) assert.match(help, re);
  assert.match((await run('evidence', '--help')).out, /accepted \(SIMULATED\)/);
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

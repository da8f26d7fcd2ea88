import { test } from 'node:test';
import assert from 'node:assert/strict';
import { spawnSync } from 'node:child_process';
import { fileURLToPath } from 'node:url';
import { runVerifyTdx, type Io } from '../cli/verify-tdx.js';
import { TDX_DIR, tdxFile } from './fixtures/attestation.js';
import { REAL_PCK_TCB, REAL_TEE_TCB_SVN, buildSynthetic, setLevel } from './fixtures/tdx/synthetic.js';

const REPO = fileURLToPath(new URL('..', import.meta.url));
const file = tdxFile;
const enc = (s: string): Uint8Array => new TextEncoder().encode(s);

const FILES: Record<string, Uint8Array> = {
  // The real quote file as published: 4935 bytes of quote, then 39 bytes that are not part of it.
  'quote.dat': file('tdx_prod_quote_SPR_E4.dat'),
  'cut.dat': file('tdx_prod_quote_SPR_E4.dat').subarray(0, 4935),
  'tcb.json': file('sample_tcbInfo_response'),
  'qe.json': file('sample_qeIdentity_response'),
  'pck.crl': file('pckcrl'),
  'root.crl': file('rootcrl.der'),
  'tcb-chain.pem': file('tcb_info_issuer_chain.pem'),
  'qe-chain.pem': file('qe_identity_issuer_chain.pem'),
  'pck-chain.pem': file('pck_crl_issuer_chain.pem'),
  // The real TD lacks SEPT_VE_DISABLE, which the strict defaults refuse.
  'no-tcb.json': enc('{"tcbEvaluation": false, "allowSeptVe": true}'),
  'no-tcb-strict.json': enc('{"tcbEvaluation": false}'),
  'sev-only.json': enc('{"platforms": ["sev-snp"], "tcbEvaluation": false}'),
  'unknown-key.json': enc('{"mrtdd": "00"}'),
  'bad.json': enc('{"tcbEvaluation": '),
};
const COLLATERAL_ARGS = [
  '--tcb-info', 'tcb.json', '--qe-identity', 'qe.json', '--pck-crl', 'pck.crl', '--root-crl', 'root.crl',
  '--tcb-info-issuer-chain', 'tcb-chain.pem', '--qe-identity-issuer-chain', 'qe-chain.pem', '--pck-crl-issuer-chain', 'pck-chain.pem',
];

async function cli(argv: string[], extra: Record<string, Uint8Array> = {}, over: Partial<Io> = {}): Promise<{ code: number; out: string; err: string }> {
  let out = '';
  let err = '';
  const files = { ...FILES, ...extra };
  const io: Io = {
    stdout: (s) => { out += s; },
    stderr: (s) => { err += s; },
    readFile: async (p) => {
      if (!(p in files)) throw new Error('ENOENT');
      return files[p];
    },
    now: () => new Date(1688083200 * 1000),
    ...over,
  };
  const code = await runVerifyTdx(argv, io);
  return { code, out, err };
}

const REJECTED_LINE = /^rejected: [a-z0-9_]+: [^\n]+\n$/;

test('exit 10 with one stderr line: the real quote and collateral at 1688083200 (TCB not supported)', async () => {
  const r = await cli(['--quote', 'quote.dat', ...COLLATERAL_ARGS, '--at', '1688083200']);
  assert.equal(r.code, 10);
  assert.match(r.err, REJECTED_LINE);
  assert.match(r.err, /^rejected: tdx_tcb_not_supported: /);
  assert.equal(r.out, '');
});

test('exit 0: TCB evaluation off by policy; --json prints fields and verdict', async () => {
  const r = await cli(['--quote', 'quote.dat', ...COLLATERAL_ARGS, '--at', '1688083200', '--policy', 'no-tcb.json', '--json']);
  assert.equal(r.code, 0, r.err);
  const j = JSON.parse(r.out);
  assert.equal(j.verdict, 'accepted');
  assert.equal(j.quoteVersion, 4);
  assert.equal(j.fields.mrTd, '6363b8043668a3ad953278e10389574d326c6749fb78aa810ecd9336923db86f22fc00b8dcd404bc10d5e119d7215cbb');
  assert.equal(j.tcbEvaluated, false);
  // The bytes after the quote's end are ignored for the verdict and shown.
  assert.equal(j.trailingBytes, 39);
  assert.equal(Buffer.from(j.trailingData, 'hex').toString('latin1'), '\nextra bytes(only for testing purpose)\n');
  assert.equal(r.err, '');
  const cut = JSON.parse((await cli(['--quote', 'cut.dat', '--at', '1688083200', '--policy', 'no-tcb.json', '--json'])).out);
  assert.equal(cut.trailingBytes, 0);
  assert.equal(cut.trailingData, undefined);
  assert.deepEqual(cut.fields, j.fields);
});

test('exit 10 naming the reported and expected value: the real TD without SEPT_VE_DISABLE, a migratable synthetic TD', async () => {
  const r = await cli(['--quote', 'quote.dat', '--at', '1688083200', '--policy', 'no-tcb-strict.json', '--json']);
  assert.equal(r.code, 10);
  assert.match(r.err, /^rejected: tdx_td_sept_ve_enabled: TD ATTRIBUTES 0x0000000040000000 has SEPT_VE_DISABLE \(bit 28\) clear, expected set/);
  assert.equal(JSON.parse(r.out).trailingBytes, 39);
  const s = buildSynthetic({ editTcbInfo: (t) => setLevel(t.tcbLevels[0], REAL_PCK_TCB.compSvn, 11, REAL_TEE_TCB_SVN), editBody: (b) => { b[123] |= 0x20; } });
  const extra = { 'mig.dat': s.quote, 'mig-root.pem': enc(s.rootPem), 'allow-mig.json': enc('{"tcbEvaluation": false, "allowMigratable": true}') };
  const mig = await cli(['--quote', 'mig.dat', '--intel-root', 'mig-root.pem', '--at', '1688083200', '--policy', 'no-tcb-strict.json'], extra);
  assert.equal(mig.code, 10);
  assert.match(mig.err, /^rejected: tdx_td_migratable: .*MIGRATABLE \(bit 29\) set, expected clear/);
  const ok = await cli(['--quote', 'mig.dat', '--intel-root', 'mig-root.pem', '--at', '1688083200', '--policy', 'allow-mig.json'], extra);
  assert.equal(ok.code, 0, ok.err);
});

test('exit 0 with TCB evaluation on: a fully signed synthetic chain under --intel-root', async () => {
  const s = buildSynthetic({ editTcbInfo: (t) => setLevel(t.tcbLevels[0], REAL_PCK_TCB.compSvn, 11, REAL_TEE_TCB_SVN) });
  const extra = {
    'syn.dat': s.quote, 'syn-root.pem': enc(s.rootPem), 'syn-tcb.json': s.collateral.tcbInfo, 'syn-qe.json': s.collateral.qeIdentity,
    'syn-pck.crl': s.collateral.pckCrl, 'syn-root.crl': s.collateral.rootCrl, 'syn-chain.pem': s.collateral.tcbInfoIssuerChain,
  };
  const args = ['--quote', 'syn.dat', '--intel-root', 'syn-root.pem', '--tcb-info', 'syn-tcb.json', '--qe-identity', 'syn-qe.json',
    '--pck-crl', 'syn-pck.crl', '--root-crl', 'syn-root.crl', '--tcb-info-issuer-chain', 'syn-chain.pem', '--qe-identity-issuer-chain', 'syn-chain.pem', '--at', '1688083200'];
  const ok = await cli([...args, '--json'], extra);
  assert.equal(ok.code, 0, ok.err);
  assert.equal(JSON.parse(ok.out).tcbStatus, 'UpToDate');
  const plain = await cli(args, extra);
  assert.match(plain.out, /^accepted: TDX quote v4 TD10, MRTD [0-9a-f]{96}, TCB UpToDate\n$/);
  // Without --intel-root the embedded Intel root is used, and the test chain is refused.
  const real = await cli(args.slice(0, 2).concat(args.slice(4)), extra);
  assert.equal(real.code, 10);
  assert.match(real.err, /^rejected: tdx_root_crl_issuer_mismatch: /);
});

test('exit 10 for tampered collateral, a time outside validity, and a policy excluding tdx', async () => {
  const tcb = enc(new TextDecoder().decode(FILES['tcb.json']).replace('"pcesvn":11', '"pcesvn":12'));
  const t = await cli(['--quote', 'quote.dat', ...COLLATERAL_ARGS.map((a) => (a === 'tcb.json' ? 'bad-tcb.json' : a)), '--at', '1688083200'], { 'bad-tcb.json': tcb });
  assert.equal(t.code, 10);
  assert.match(t.err, /^rejected: tdx_tcb_info_signature_invalid: /);
  const late = await cli(['--quote', 'quote.dat', ...COLLATERAL_ARGS, '--at', '1700000000', '--json']);
  assert.equal(late.code, 10);
  assert.match(late.err, REJECTED_LINE);
  assert.equal(JSON.parse(late.out).verdict, 'rejected');
  assert.equal(JSON.parse(late.out).code, 'tdx_pck_crl_expired');
  const sev = await cli(['--quote', 'quote.dat', '--policy', 'sev-only.json', '--at', '1688083200']);
  assert.equal(sev.code, 10);
  assert.match(sev.err, /^rejected: platform_not_allowed: /);
});

test('exit 30 for malformed input: flags, files, quote, policy', async () => {
  const cases: [string[], RegExp][] = [
    [[], /--quote is required/],
    [['--quote'], /needs a file/],
    [['--quote', 'quote.dat', '--bogus'], /unknown argument/],
    [['--quote', 'quote.dat', '--at', 'yesterday'], /--at/],
    [['--quote', 'quote.dat', '--quote', 'quote.dat'], /twice/],
    [['--quote', 'missing.dat'], /cannot read missing\.dat/],
    [['--quote', 'tcb.json'], /tdx_quote_version/],
    [['--quote', 'quote.dat', '--policy', 'unknown-key.json'], /policy_unknown_key/],
    [['--quote', 'quote.dat', '--policy', 'bad.json'], /policy_invalid/],
    [['--quote', 'quote.dat', ...COLLATERAL_ARGS.map((a) => (a === 'qe.json' ? 'tcb.json' : a)), '--at', '1688083200'], /tdx_qe_identity_malformed/],
  ];
  for (const [argv, re] of cases) {
    const r = await cli(argv);
    assert.equal(r.code, 30, `${argv.join(' ')}: ${r.err}`);
    assert.match(r.err, re);
  }
  const trunc = await cli(['--quote', 'short.dat'], { 'short.dat': FILES['quote.dat'].subarray(0, 700) });
  assert.equal(trunc.code, 30);
  assert.match(trunc.err, /tdx_quote_truncated/);
});

test('exit 1 for an internal error, with no detail leaked', async () => {
  const r = await cli(['--quote', 'quote.dat'], {}, { now: () => { throw new Error('secret-ish detail'); } });
  assert.equal(r.code, 1);
  assert.doesNotMatch(r.err, /secret-ish/);
});

test('the module runs as a program: --help exits 0; the real quote file, trailer and all, parses and is judged', () => {
  const help = spawnSync(process.execPath, ['--import', 'tsx', 'cli/verify-tdx.ts', '--help'], { cwd: REPO, encoding: 'utf8' });
  assert.equal(help.status, 0, help.stderr);
  assert.match(help.stdout, /usage: sealed verify tdx --quote FILE/);
  const quote = fileURLToPath(new URL('tdx_prod_quote_SPR_E4.dat', TDX_DIR));
  // Without collateral, TCB evaluation (on by default) cannot run: a rejection (10), not malformed input (30).
  const r = spawnSync(process.execPath, ['--import', 'tsx', 'cli/verify-tdx.ts', '--quote', quote, '--at', '1688083200'], { cwd: REPO, encoding: 'utf8' });
  assert.equal(r.status, 10, r.stderr);
  assert.match(r.stderr, /^rejected: tdx_root_crl_missing: /);
});

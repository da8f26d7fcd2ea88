// The configfs-tsm provider driven through a fake tree in a temp dir. The fake behaves like the kernel
// where it matters: an entry's attributes appear on mkdir, every write bumps `generation`, outblob
// answers the current inblob, and a concurrent writer can be injected between our write and reads.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { mkdtempSync, readdirSync, readFileSync, writeFileSync, rmSync } from 'node:fs';
import { readFile, mkdir, writeFile, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { basename, join } from 'node:path';
import { AttestationError } from '../enclave/errors.js';
import { createConfigfsTsmProvider, getTsmReport, parseSevCertTable, probeTsm, type TsmOps } from '../enclave/providers/configfs-tsm.js';
import { createProvider } from '../enclave/providers/index.js';
import { createSimulatedProvider } from '../enclave/providers/simulated.js';
import { verifySevSnpReport } from '../enclave/sev-snp/verify.js';
import { buildEvidence } from '../enclave/evidence.js';
import { TDX_DIR as TDX, rejectionCode, tdxFile } from './fixtures/attestation.js';

const sim = await createSimulatedProvider({ codeDigest: new Uint8Array(32), modelDigest: new Uint8Array(32) });

const GUID = {
  vcek: '63da758de6644564adc5f4b93be8accd',
  vlek: 'a8074bc2a25a483eaae639c045a0b8a1',
  ask: '4ab7b379bbac4fe4a02f05aef327c782',
  ark: 'c0b406a4a803495297433fb6014cd0ae',
};

/** The GHCB certificate table: {guid, offset u32le, length u32le}..., zero entry, then the blobs. */
function certTable(entries: Array<[string, Uint8Array]>): Uint8Array {
  const head = 24 * (entries.length + 1);
  const total = head + entries.reduce((n, [, d]) => n + d.length, 0);
  const out = new Uint8Array(total);
  const dv = new DataView(out.buffer);
  let off = head;
  entries.forEach(([g, d], i) => {
    out.set(Buffer.from(g, 'hex'), i * 24);
    dv.setUint32(i * 24 + 16, off, true);
    dv.setUint32(i * 24 + 20, d.length, true);
    out.set(d, off);
    off += d.length;
  });
  return out;
}

interface Fake {
  root: string;
  ops: TsmOps;
  stats: { mkdir: number; writes: number };
  /** Number of upcoming attempts on which another writer races us. */
  raceNext: number;
}

function pemToDer(pem: string): Uint8Array[] {
  return [...pem.matchAll(/-----BEGIN CERTIFICATE-----([\s\S]*?)-----END CERTIFICATE-----/g)].map((m) => new Uint8Array(Buffer.from(m[1].replace(/\s/g, ''), 'base64')));
}

function fakeTsm(kind: 'sev_guest' | 'tdx_guest', produce: (inblob: Uint8Array) => Promise<{ out: Uint8Array; aux?: Uint8Array }>): Fake {
  const root = mkdtempSync(join(tmpdir(), 'tsm-'));
  const fake: Fake = { root, stats: { mkdir: 0, writes: 0 }, raceNext: 0, ops: undefined as unknown as TsmOps };
  const gen = new Map<string, number>();
  fake.ops = {
    async mkdir(p) {
      fake.stats.mkdir++;
      await mkdir(p); // fails if it exists, as configfs does
      gen.set(p, 0);
      await writeFile(join(p, 'provider'), `${kind}\n`);
      await writeFile(join(p, 'generation'), '0\n');
    },
    async rmdir(p) {
      gen.delete(p);
      await rm(p, { recursive: true });
    },
    async writeFile(path, data) {
      const dir = join(path, '..');
      assert.equal(basename(path), 'inblob');
      let g = gen.get(dir)! + 1;
      fake.stats.writes++;
      let blob = data;
      if (fake.raceNext > 0) {
        // Another process writes its own inblob right after ours: the outblob now answers it.
        fake.raceNext--;
        g++;
        blob = new Uint8Array(64).fill(0xee);
      }
      gen.set(dir, g);
      await writeFile(join(dir, 'generation'), `${g}\n`);
      const { out, aux } = await produce(blob);
      await writeFile(join(dir, 'outblob'), out);
      if (aux) await writeFile(join(dir, 'auxblob'), aux);
    },
    async readFile(p) {
      try {
        return new Uint8Array(await readFile(p));
      } catch (e) {
        if ((e as NodeJS.ErrnoException).code === 'ENOENT') return undefined;
        throw e;
      }
    },
  };
  return fake;
}

async function sevProduce(inblob: Uint8Array) {
  const ev = await sim.getEvidence(inblob);
  const [ask, ark] = pemToDer(ev.certChain!);
  return { out: ev.report, aux: certTable([[GUID.vcek, ev.vcek!], [GUID.ask, ask], [GUID.ark, ark]]) };
}

const code = rejectionCode;

test('SEV-SNP through configfs-tsm: report, certificates from auxblob, entry removed', async () => {
  const f = fakeTsm('sev_guest', sevProduce);
  const p = await createConfigfsTsmProvider({ root: f.root, ops: f.ops });
  assert.equal(p.platform, 'sev-snp');
  assert.equal(p.simulated, false);
  const rd = new Uint8Array(64).map((_, i) => i);
  const ev = await p.getEvidence(rd);
  assert.deepEqual(ev.report.subarray(0x50, 0x90), rd);
  assert.deepEqual(ev.vcek, sim.chain.vcek);
  assert.equal(ev.certChain!.match(/BEGIN CERTIFICATE/g)!.length, 2);
  // What came through the tree verifies (against the simulated root, as this fake is backed by the simulator).
  const v = await verifySevSnpReport(ev.report, { vcek: ev.vcek!, certChain: ev.certChain, trustedArk: sim.chain.ark, at: new Date() });
  assert.equal(v.reportData, Buffer.from(rd).toString('hex'));
  assert.deepEqual(readdirSync(f.root), [], 'every report entry is removed');
  rmSync(f.root, { recursive: true });
});

test('SEV-SNP on a VLEK cloud: the report names the VLEK, which the provider sends in place of a VCEK', async () => {
  const { buildAmdPki } = await import('./fixtures/sev-snp/amd-pki.js');
  const pki = buildAmdPki({ kind: 'VLEK' });
  // The host's table holds a VLEK and the ASK/ARK of the VCEK chain; the VLEK is what signed.
  const f = fakeTsm('sev_guest', async (inblob) => ({
    out: pki.report({ reportData: inblob }),
    aux: certTable([[GUID.vlek, pki.key], [GUID.ask, pki.ask], [GUID.ark, pki.ark]]),
  }));
  const p = await createConfigfsTsmProvider({ root: f.root, ops: f.ops });
  const ev = await p.getEvidence(new Uint8Array(64).fill(5));
  assert.deepEqual(ev.vcek, pki.key);
  assert.equal(ev.certChain, undefined, 'the ASK is not the VLEK\'s intermediate');
  const v = await verifySevSnpReport(ev.report, { vcek: ev.vcek!, ask: pki.asvk, trustedArk: pki.ark, at: new Date() });
  assert.equal(v.signingKey, 'VLEK');
  rmSync(f.root, { recursive: true });
});

test('a concurrent writer (generation moved by more than our write) is detected and retried', async () => {
  const f = fakeTsm('sev_guest', sevProduce);
  const p = await createConfigfsTsmProvider({ root: f.root, ops: f.ops });
  const before = f.stats.mkdir;
  f.raceNext = 2;
  const rd = new Uint8Array(64).fill(0x11);
  const ev = await p.getEvidence(rd);
  assert.equal(f.stats.mkdir - before, 3, 'two raced attempts, then a clean one');
  assert.deepEqual(ev.report.subarray(0x50, 0x90), rd, 'the evidence answers our inblob, not the other writer\'s');
  f.raceNext = 3;
  assert.equal(await code(p.getEvidence(rd)), 'tsm_contended');
  assert.equal(await code(getTsmReport(rd, { root: f.root, ops: f.ops, maxAttempts: 1 })), 'accepted');
  assert.deepEqual(readdirSync(f.root), []);
  rmSync(f.root, { recursive: true });
});

test('buildEvidence over the hardware provider binds the session as CONTRACT says', async () => {
  const f = fakeTsm('sev_guest', sevProduce);
  const p = await createProvider('sev-snp', { root: f.root, ops: f.ops });
  const nonce = new Uint8Array(32).fill(3);
  const ev = await buildEvidence({ provider: p, session: 'AAAAAAAAAAAAAAAAAAAAAA', keyConfig: Uint8Array.of(1, 0, 32), expiresAt: new Date(Math.floor(Date.now() / 1000) * 1000 + 60_000), model: { id: 'm', digest: '11'.repeat(32) }, nonce });
  assert.equal(ev.simulated, false);
  assert.equal(Buffer.from(ev.evidence.report, 'base64').subarray(0x50, 0x90).toString('hex'), ev.reportData);
  rmSync(f.root, { recursive: true });
});

test('TDX through configfs-tsm: the quote, plus collateral files when configured', async () => {
  const quote = tdxFile('tdx_prod_quote_SPR_E4.dat');
  const f = fakeTsm('tdx_guest', async (inblob) => {
    const q = quote.slice();
    q.set(inblob, 48 + 520); // REPORTDATA of the TD report body (v4 quote)
    return { out: q };
  });
  const path = (n: string) => new URL(n, TDX).pathname;
  const p = await createProvider('tdx', {
    root: f.root,
    ops: f.ops,
    tdxCollateral: {
      tcbInfo: path('sample_tcbInfo_response'),
      qeIdentity: path('sample_qeIdentity_response'),
      pckCrl: path('pckcrl'),
      rootCrl: path('rootcrl.der'),
      tcbInfoIssuerChain: path('tcb_info_issuer_chain.pem'),
      qeIdentityIssuerChain: path('qe_identity_issuer_chain.pem'),
      pckCrlIssuerChain: path('pck_crl_issuer_chain.pem'),
    },
  });
  assert.equal(p.platform, 'tdx');
  const rd = new Uint8Array(64).fill(0x5a);
  const ev = await p.getEvidence(rd);
  assert.deepEqual(ev.report.subarray(568, 632), rd);
  assert.equal(ev.vcek, undefined);
  const c = ev.collateral!;
  assert.deepEqual(Object.keys(c).sort(), ['pckCrl', 'pckCrlIssuerChain', 'qeIdentity', 'qeIdentityIssuerChain', 'rootCrl', 'tcbInfo', 'tcbInfoIssuerChain']);
  assert.equal(JSON.parse(c.tcbInfo).tcbInfo.fmspc, '50806f000000');
  assert.deepEqual(Buffer.from(c.rootCrl, 'base64'), readFileSync(new URL('rootcrl.der', TDX)));
  assert.match(c.pckCrlIssuerChain, /BEGIN CERTIFICATE/);
  // Without configuration, nothing is attached.
  const bare = await createProvider('tdx', { root: f.root, ops: f.ops });
  assert.equal((await bare.getEvidence(rd)).collateral, undefined);
  // A TDX tree does not serve as SEV-SNP.
  assert.equal(await code(createProvider('sev-snp', { root: f.root, ops: f.ops })), 'tsm_provider');
  rmSync(f.root, { recursive: true });
});

test('auto: hardware when configfs-tsm exists; without it, simulation only when asked', async () => {
  const missing = join(tmpdir(), `no-tsm-${process.pid}-${Date.now()}`);
  assert.equal(await code(createProvider('auto', { root: missing })), 'no_tee');
  assert.equal(await code(createProvider('sev-snp', { root: missing })), 'no_tee');
  const simulated = await createProvider('auto', { root: missing, allowSimulation: true, simulation: { codeDigest: new Uint8Array(32) } });
  assert.equal(simulated.simulated, true);
  const f = fakeTsm('sev_guest', sevProduce);
  const hw = await createProvider('auto', { root: f.root, ops: f.ops, allowSimulation: true });
  assert.equal(hw.simulated, false);
  assert.equal(hw.platform, 'sev-snp');
  assert.equal(await code(createProvider('bogus' as 'auto')), 'bad_provider');
  rmSync(f.root, { recursive: true });
});

test('auto: a report directory that cannot make reports (tsm loaded, no guest driver) is no TEE', async () => {
  // On an ordinary VM the tsm module stays loaded after sev-guest and tdx-guest refuse to bind, so
  // /sys/kernel/config/tsm/report exists and mkdir(2) in it fails with ENXIO.
  const f = fakeTsm('sev_guest', sevProduce);
  const errnoError = (code: string) => Object.assign(new Error(code), { code });
  const noProvider: TsmOps = { ...f.ops, async mkdir() { throw errnoError('ENXIO'); } };
  const noTee = async (p: Promise<unknown>) => {
    try { await p; } catch (e) { assert.ok(e instanceof AttestationError); return `${e.code}: ${e.message}`; }
    return 'accepted';
  };
  assert.deepEqual(await probeTsm(f.root, noProvider), { tee: false, reason: 'configfs-tsm has no SEV-SNP or TDX provider (ENXIO)' });
  assert.match(await noTee(createProvider('auto', { root: f.root, ops: noProvider })), /^no_tee: no TEE found \(configfs-tsm has no SEV-SNP or TDX provider \(ENXIO\)\) and simulation was not requested$/);
  // The same for the explicit platforms: "no TEE", not an I/O error.
  assert.match(await noTee(createProvider('sev-snp', { root: f.root, ops: noProvider })), /^no_tee: no TEE found/);
  assert.match(await noTee(createProvider('tdx', { root: f.root, ops: { ...f.ops, async mkdir() { throw errnoError('ENODEV'); } } })), /^no_tee: no TEE found/);
  // Simulation, when asked for, is what auto gives there.
  const simulated = await createProvider('auto', { root: f.root, ops: noProvider, allowSimulation: true, simulation: { codeDigest: new Uint8Array(32) } });
  assert.equal(simulated.simulated, true);

  // An ordinary directory (real node:fs): entries can be made but carry no provider attribute.
  const plain = mkdtempSync(join(tmpdir(), 'tsm-plain-'));
  assert.match(await noTee(createProvider('auto', { root: plain })), /^no_tee: no TEE found \(.* is not a configfs-tsm report directory\)/);
  assert.deepEqual(readdirSync(plain), [], 'the probe entry is removed');
  // A directory that vanishes between stat and mkdir.
  assert.match(await noTee(createProvider('auto', { root: f.root, ops: { ...f.ops, async mkdir() { throw errnoError('ENOENT'); } } })), /^no_tee: no TEE found \(.* absent\)/);

  // Failures that may hide a TEE are not "no TEE": they fail closed with their own reason, and
  // never let auto fall back to the simulator.
  for (const errno of ['EACCES', 'EPERM', 'EIO']) {
    const ops: TsmOps = { ...f.ops, async mkdir() { throw errnoError(errno); } };
    assert.equal(await noTee(createProvider('auto', { root: f.root, ops, allowSimulation: true })), `tsm_unavailable: cannot create a configfs-tsm report entry (${errno})`);
  }
  const unknown: TsmOps = { ...f.ops, async mkdir(p) { await f.ops.mkdir(p); writeFileSync(join(p, 'provider'), 'cca_guest\n'); } };
  assert.match(await noTee(createProvider('auto', { root: f.root, ops: unknown, allowSimulation: true })), /^tsm_provider: /);
  const unreadable: TsmOps = { ...f.ops, async readFile() { throw errnoError('EIO'); } };
  assert.match(await noTee(createProvider('auto', { root: f.root, ops: unreadable, allowSimulation: true })), /^tsm_io: /);
  assert.deepEqual(readdirSync(f.root), [], 'every probe entry is removed');
  // A working provider still wins over simulation.
  assert.deepEqual(await probeTsm(f.root, f.ops), { tee: true });
  assert.equal((await createProvider('auto', { root: f.root, ops: f.ops, allowSimulation: true })).simulated, false);
  for (const d of [f.root, plain]) rmSync(d, { recursive: true });
});

test('failures are typed and still remove the entry', async () => {
  const empty = fakeTsm('sev_guest', async () => ({ out: new Uint8Array(0) }));
  assert.equal(await code(getTsmReport(new Uint8Array(64), { root: empty.root, ops: empty.ops })), 'tsm_no_report');
  assert.deepEqual(readdirSync(empty.root), []);
  const weird = fakeTsm('sev_guest', sevProduce);
  const ops: TsmOps = { ...weird.ops, async mkdir(p) { await weird.ops.mkdir(p); writeFileSync(join(p, 'provider'), 'sgx_guest\n'); } };
  assert.equal(await code(getTsmReport(new Uint8Array(64), { root: weird.root, ops })), 'tsm_provider');
  assert.deepEqual(readdirSync(weird.root), []);
  const broken: TsmOps = { ...weird.ops, async readFile() { throw Object.assign(new Error('EIO'), { code: 'EIO' }); } };
  assert.equal(await code(getTsmReport(new Uint8Array(64), { root: weird.root, ops: broken })), 'tsm_io');
  assert.deepEqual(readdirSync(weird.root), []);
  assert.equal(await code(getTsmReport(new Uint8Array(63), { root: weird.root, ops: weird.ops })), 'bad_report_data');
  const noDir: TsmOps = { ...weird.ops, async mkdir() { throw new Error('EACCES'); } };
  assert.equal(await code(getTsmReport(new Uint8Array(64), { root: weird.root, ops: noDir })), 'tsm_unavailable');
  // The real node:fs ops work on an ordinary directory too (outblob is absent there: no report).
  const plain = mkdtempSync(join(tmpdir(), 'tsm-plain-'));
  assert.equal(await code(getTsmReport(new Uint8Array(64), { root: plain })), 'tsm_generation');
  assert.deepEqual(readdirSync(plain), [], 'the entry is removed');
  for (const d of [empty.root, weird.root, plain]) rmSync(d, { recursive: true });
});

test('SEV-SNP certificate table parsing is strict', () => {
  const a = new Uint8Array([1, 2, 3]);
  const ok = parseSevCertTable(certTable([[GUID.vcek, a], [GUID.ask, Uint8Array.of(4)], [GUID.ark, Uint8Array.of(5)]]));
  assert.deepEqual(ok.vcek, a);
  assert.deepEqual(ok.ark, Uint8Array.of(5));
  const c = (b: Uint8Array) => {
    try { parseSevCertTable(b); } catch (e) { assert.ok(e instanceof AttestationError); return e.code; }
    return 'ok';
  };
  assert.equal(c(new Uint8Array(0)), 'tsm_cert_table');
  assert.equal(c(new Uint8Array(23)), 'tsm_cert_table');
  const t = certTable([[GUID.vcek, a]]);
  assert.equal(c(t.subarray(0, 30)), 'tsm_cert_table'); // terminator cut off
  const oob = t.slice();
  new DataView(oob.buffer).setUint32(20, 1000, true);
  assert.equal(c(oob), 'tsm_cert_table');
  assert.equal(c(certTable([[GUID.vcek, a], [GUID.vcek, a]])), 'tsm_cert_table');
  // Unknown GUIDs are skipped, not misread.
  assert.deepEqual(parseSevCertTable(certTable([['00112233445566778899aabbccddeeff', a]])), {});
  let x = 7;
  for (let i = 0; i < 2000; i++) {
    const b = new Uint8Array(i % 200);
    for (let j = 0; j < b.length; j++) { x = (x * 1103515245 + 12345) >>> 0; b[j] = (x >>> 16) & (j % 24 < 16 ? 0xff : 0x01); }
    c(b); // must only ever throw AttestationError
  }
});

test('SEV-SNP without host-provided certificates falls back to configured files', async () => {
  const f = fakeTsm('sev_guest', async (inblob) => ({ out: (await sim.getEvidence(inblob)).report }));
  const dir = mkdtempSync(join(tmpdir(), 'certs-'));
  writeFileSync(join(dir, 'vcek.der'), sim.chain.vcek);
  const pem = (d: Uint8Array) => `-----BEGIN CERTIFICATE-----\n${Buffer.from(d).toString('base64')}\n-----END CERTIFICATE-----\n`;
  writeFileSync(join(dir, 'chain.pem'), pem(sim.chain.ask) + pem(sim.chain.ark));
  const p = await createProvider('sev-snp', { root: f.root, ops: f.ops, sevCerts: { vcek: join(dir, 'vcek.der'), askArk: join(dir, 'chain.pem') } });
  const ev = await p.getEvidence(new Uint8Array(64));
  assert.deepEqual(ev.vcek, sim.chain.vcek);
  await verifySevSnpReport(ev.report, { vcek: ev.vcek!, certChain: ev.certChain, trustedArk: sim.chain.ark, at: new Date() });
  for (const d of [f.root, dir]) rmSync(d, { recursive: true });
});

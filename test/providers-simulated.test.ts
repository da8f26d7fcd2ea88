// The simulator: a version-3 report with every field as firmware sets it, a measurement of code and
// model, and an AMD-shaped chain that an independent implementation (OpenSSL via node:crypto's
// X509Certificate) accepts as well as our own verifier.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { X509Certificate, createHash, createPublicKey, verify as nodeVerify } from 'node:crypto';
import { mkdtempSync, mkdirSync, writeFileSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { AttestationError } from '../enclave/errors.js';
import { createSimulatedProvider, simulatedMeasurement, codeDigest, SIM_MEASUREMENT_LABEL } from '../enclave/providers/simulated.js';
import { parseReport, decodeTcb } from '../enclave/sev-snp/report.js';
import { verifySevSnpReport } from '../enclave/sev-snp/verify.js';
import { parseCertificates } from '../enclave/pki/index.js';

const modelDigest = createHash('sha256').update('a model manifest').digest();
const code = new Uint8Array(createHash('sha256').update('some code').digest());
const sim = await createSimulatedProvider({ modelDigest: modelDigest.toString('hex'), codeDigest: code });
const rd = Uint8Array.from({ length: 64 }, (_, i) => 255 - i);
const ev = await sim.getEvidence(rd);

test('MEASUREMENT = SHA-384(label || 0x00 || codeDigest || modelDigest)', () => {
  const want = createHash('sha384').update(SIM_MEASUREMENT_LABEL).update(Uint8Array.of(0)).update(code).update(modelDigest).digest();
  assert.deepEqual(sim.measurement, new Uint8Array(want));
  assert.deepEqual(simulatedMeasurement(code, new Uint8Array(modelDigest)), new Uint8Array(want));
  const other = new Uint8Array(modelDigest);
  other[0] ^= 1;
  assert.notDeepEqual(simulatedMeasurement(code, other), sim.measurement);
  assert.throws(() => simulatedMeasurement(code, new Uint8Array(31)), AttestationError);
});

test('the report is a genuine version-3 layout with every field set', () => {
  const r = parseReport(ev.report);
  assert.equal(r.version, 3);
  assert.equal(r.policy, 0x30000n); // SMT allowed, must-be-one; no debug, no migration agent
  assert.equal(r.vmpl, 0);
  assert.equal(r.signatureAlgo, 1);
  assert.equal(r.signingKey, 0);
  assert.deepEqual(r.reportData, rd);
  assert.deepEqual(r.measurement, sim.measurement);
  assert.deepEqual(r.chipId, sim.chain.chipId);
  assert.deepEqual([r.cpuidFamId, r.cpuidModId, r.cpuidStep], [0x19, 0x01, 0x01]);
  assert.ok(r.reportIdMa.every((b) => b === 0xff));
  assert.ok(r.reportId.some((b) => b !== 0));
  assert.deepEqual(decodeTcb(r.reportedTcb, 'Milan'), sim.chain.tcb);
  assert.equal(r.currentTcb, r.reportedTcb);
  assert.equal(r.launchTcb, r.reportedTcb);
  assert.equal(r.committedTcb, r.reportedTcb);
  assert.equal(`${r.currentMajor}.${r.currentMinor}`, '1.55');
  // Same launch -> same REPORT_ID across reports; fresh signatures per report.
  return sim.getEvidence(rd).then((ev2) => {
    const r2 = parseReport(ev2.report);
    assert.deepEqual(r2.reportId, r.reportId);
    assert.notDeepEqual(r2.signatureR, r.signatureR); // ECDSA with fresh nonces
  });
});

test('an independent implementation (OpenSSL) accepts the chain and the report signature', () => {
  const [askDer, arkDer] = [...ev.certChain!.matchAll(/-----BEGIN CERTIFICATE-----([\s\S]*?)-----END/g)].map((m) => Buffer.from(m[1].replace(/\s/g, ''), 'base64'));
  const ark = new X509Certificate(arkDer);
  const ask = new X509Certificate(askDer);
  const vcek = new X509Certificate(Buffer.from(ev.vcek!));
  assert.ok(ark.verify(ark.publicKey), 'ARK self-signed');
  assert.ok(ask.verify(ark.publicKey), 'ASK by ARK');
  assert.ok(vcek.verify(ask.publicKey), 'VCEK by ASK');
  assert.ok(!vcek.verify(ark.publicKey));
  assert.match(ark.subject, /CN=ARK-Milan/);
  assert.match(ask.subject, /CN=SEV-Milan/);
  assert.match(vcek.subject, /CN=SEV-VCEK/);
  assert.ok(ark.ca && ask.ca && !vcek.ca);
  // report signature: r, s little-endian in 72-byte fields -> big-endian r||s
  const le = (o: number) => Buffer.from(ev.report.subarray(o, o + 48)).reverse();
  const sig = Buffer.concat([le(0x2a0), le(0x2e8)]);
  assert.ok(nodeVerify('sha384', ev.report.subarray(0, 0x2a0), { key: createPublicKey(vcek.publicKey.export({ type: 'spki', format: 'pem' })), dsaEncoding: 'ieee-p1363' }, sig));
});

test('the VCEK carries AMD\'s extensions: productName, SPLs = REPORTED_TCB, hwID = CHIP_ID', () => {
  const [c] = parseCertificates(ev.vcek!);
  const ext = (oid: string) => Buffer.from(c.extensions.get(oid)!.value).toString('hex');
  assert.equal(ext('1.3.6.1.4.1.3704.1.2'), Buffer.from('\x16\x08Milan-B0', 'latin1').toString('hex'));
  assert.equal(ext('1.3.6.1.4.1.3704.1.3.1'), '0201' + sim.chain.tcb.bootloader.toString(16).padStart(2, '0'));
  assert.equal(ext('1.3.6.1.4.1.3704.1.3.3'), '0201' + sim.chain.tcb.snp.toString(16).padStart(2, '0'));
  assert.equal(ext('1.3.6.1.4.1.3704.1.4'), Buffer.from(sim.chain.chipId).toString('hex'));
  assert.equal(c.signatureAlgorithm.pss?.saltLength, 48);
});

test('our verifier accepts it given its chain, for every product', async () => {
  const v = await verifySevSnpReport(ev.report, { vcek: ev.vcek!, certChain: ev.certChain, trustedArk: sim.chain.ark, at: new Date() });
  assert.equal(v.product, 'Milan');
  for (const product of ['Genoa', 'Turin'] as const) {
    const p = await createSimulatedProvider({ product, codeDigest: code });
    const e = await p.getEvidence(rd);
    const r = await verifySevSnpReport(e.report, { vcek: e.vcek!, certChain: e.certChain, trustedArk: p.chain.ark, at: new Date() });
    assert.equal(r.product, product);
    if (product === 'Turin') assert.equal(typeof r.reportedTcb.fmc, 'number');
  }
});

test('input checks and close()', async () => {
  await assert.rejects(sim.getEvidence(new Uint8Array(32)), (e: unknown) => e instanceof AttestationError && e.code === 'bad_report_data');
  await assert.rejects(createSimulatedProvider({ modelDigest: 'xyz', codeDigest: code }), (e: unknown) => e instanceof AttestationError && e.code === 'bad_model_digest');
  const p = await createSimulatedProvider({ codeDigest: code });
  p.close!();
  await assert.rejects(p.getEvidence(rd), (e: unknown) => e instanceof AttestationError && e.code === 'provider_closed');
});

test('codeDigest covers the source tree: stable, and any change to code changes it', async () => {
  const root = mkdtempSync(join(tmpdir(), 'code-'));
  mkdirSync(join(root, 'server'));
  mkdirSync(join(root, 'test'));
  writeFileSync(join(root, 'server', 'a.ts'), 'export const a = 1;\n');
  writeFileSync(join(root, 'package.json'), '{}');
  writeFileSync(join(root, 'test', 't.ts'), 'x');
  const d1 = await codeDigest(root);
  assert.deepEqual(await codeDigest(root), d1);
  writeFileSync(join(root, 'test', 't.ts'), 'y'); // tests are not part of the running code
  assert.deepEqual(await codeDigest(root), d1);
  writeFileSync(join(root, 'server', 'a.ts'), 'export const a = 2;\n');
  assert.notDeepEqual(await codeDigest(root), d1);
  rmSync(root, { recursive: true });
  // The default root is this repository.
  assert.equal((await codeDigest()).length, 32);
});

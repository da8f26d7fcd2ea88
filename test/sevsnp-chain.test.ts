// SEV-SNP chains beyond the VCEK: VLEK <- ASVK <- ARK, AMD's CRL revoking an ASK or ASVK, and report
// versions 4 and 5, each on a fully signed AMD-shaped chain under a test ARK
// (test/fixtures/sev-snp/amd-pki.ts), plus AMD's real ASVKs under the pinned ARKs.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { generateKeyPairSync } from 'node:crypto';
import { AttestationError } from '../enclave/errors.js';
import { parseCertificates, verifyChain } from '../enclave/pki/index.js';
import { AMD_ROOTS } from '../enclave/roots/amd-roots.js';
import { encodeTcb, parseReport } from '../enclave/sev-snp/report.js';
import { verifySevSnpReport, type SevSnpVerifyOptions } from '../enclave/sev-snp/verify.js';
import { rejectionCode, sevFile } from './fixtures/attestation.js';
import { buildAmdPki, type AmdPki } from './fixtures/sev-snp/amd-pki.js';

const milanVcek = buildAmdPki({ kind: 'VCEK' });
const milanVlek = buildAmdPki({ kind: 'VLEK' });

function opts(p: AmdPki, over: Partial<SevSnpVerifyOptions> = {}): SevSnpVerifyOptions {
  return { vcek: p.key, ask: p.kind === 'VCEK' ? p.ask : p.asvk, trustedArk: p.ark, at: new Date(), ...over };
}

async function code(report: Uint8Array, o: SevSnpVerifyOptions): Promise<string> {
  return rejectionCode(verifySevSnpReport(report, o));
}

async function message(report: Uint8Array, o: SevSnpVerifyOptions): Promise<string> {
  try {
    await verifySevSnpReport(report, o);
  } catch (e) {
    assert.ok(e instanceof AttestationError);
    return e.message;
  }
  return 'accepted';
}

test('AMD\'s real ASVKs verify under the pinned ARKs and are the published chains\' first certificates', async () => {
  for (const [product, file] of [['Milan', 'asvk_ark_milan.pem'], ['Genoa', 'asvk_ark_genoa.pem'], ['Turin', 'asvk_ark_turin.pem']] as const) {
    const [asvk, ark] = parseCertificates(sevFile(file));
    const embedded = parseCertificates(AMD_ROOTS[product].asvk)[0];
    const pinnedArk = parseCertificates(AMD_ROOTS[product].ark)[0];
    assert.deepEqual(embedded.raw, asvk.raw, product);
    assert.deepEqual(ark.raw, pinnedArk.raw, product);
    assert.equal(embedded.subject.attributes.find((a) => a.oid === '2.5.4.3')?.value, `SEV-VLEK-${product}`);
    await verifyChain([embedded, pinnedArk], { at: new Date('2026-01-01T00:00:00Z'), trustedRoot: pinnedArk, codePrefix: 'sev_chain' });
  }
});

test('a VLEK-signed report verifies: VLEK <- ASVK <- ARK, TCB bound, no chip binding', async () => {
  const r = await verifySevSnpReport(milanVlek.report(), opts(milanVlek));
  assert.equal(r.signingKey, 'VLEK');
  assert.equal(r.vcek.cspId, 'test-cloud');
  assert.ok(r.checks.some((c) => c.startsWith('certificate chain VLEK <- ASVK <- ARK-Milan')), r.checks.join('; '));
  assert.ok(r.checks.includes('report signature (ECDSA P-384, VLEK)'));
  assert.ok(r.checks.includes('VLEK of cloud provider test-cloud (no chip binding)'));
  // Through certChain too (ASVK then ARK, as a host sends it), the ARK made the trusted root.
  const pem = (der: Uint8Array) => `-----BEGIN CERTIFICATE-----\n${Buffer.from(der).toString('base64')}\n-----END CERTIFICATE-----\n`;
  const viaChain = await verifySevSnpReport(milanVlek.report(), { vcek: milanVlek.key, certChain: pem(milanVlek.asvk) + pem(milanVlek.ark), trustedArk: milanVlek.ark, at: new Date() });
  assert.equal(viaChain.signingKey, 'VLEK');
  // Turin and Genoa VLEKs as well, report version 5.
  for (const product of ['Genoa', 'Turin'] as const) {
    const p = buildAmdPki({ kind: 'VLEK', product });
    assert.equal((await verifySevSnpReport(p.report({ version: 5 }), opts(p))).product, product);
  }
});

test('SIGNING_KEY must name the kind of key given, and the key must come from its own intermediate', async () => {
  assert.equal(await code(milanVlek.report({ signingKey: 0 }), opts(milanVlek)), 'sev_signing_key');
  assert.match(await message(milanVlek.report({ signingKey: 0 }), opts(milanVlek)), /SIGNING_KEY is 0 \(VCEK\), expected 1 for the VLEK given/);
  assert.equal(await code(milanVcek.report({ signingKey: 1 }), opts(milanVcek)), 'sev_signing_key');
  assert.equal(await code(milanVcek.report({ signingKey: 7 }), opts(milanVcek)), 'sev_signing_key');
  // A VLEK presented with the ASK, or a VLEK the ASK issued: not the VLEK chain.
  assert.equal(await code(milanVlek.report(), opts(milanVlek, { ask: milanVlek.ask })), 'sev_product_mismatch');
  const fromAsk = buildAmdPki({ kind: 'VLEK', wrongIntermediate: true });
  assert.equal(await code(fromAsk.report(), opts(fromAsk, { ask: fromAsk.asvk })), 'sev_chain_issuer_mismatch');
  assert.equal(await code(fromAsk.report(), opts(fromAsk, { ask: fromAsk.ask })), 'sev_product_mismatch');
  // Each kind carries its own identity extension and not the other's.
  const noCsp = buildAmdPki({ kind: 'VLEK', omit: 'cspId' });
  assert.equal(await code(noCsp.report(), opts(noCsp)), 'sev_vcek_extension');
  const both = buildAmdPki({ kind: 'VLEK', addOther: true });
  assert.equal(await code(both.report(), opts(both)), 'sev_vcek_extension');
  const vcekCsp = buildAmdPki({ kind: 'VCEK', addOther: true });
  assert.equal(await code(vcekCsp.report(), opts(vcekCsp)), 'sev_vcek_extension');
  // The VLEK certifies a TCB like a VCEK does.
  const tcb = encodeTcb({ ...milanVlek.tcb, snp: milanVlek.tcb.snp - 1 }, 'Milan');
  assert.equal(await code(milanVlek.report({ reportedTcb: tcb, currentTcb: tcb, committedTcb: tcb }), opts(milanVlek)), 'sev_vcek_tcb_mismatch');
});

test('a VLEK under the pinned AMD roots is refused: only AMD\'s ASVK issues VLEKs', async () => {
  const o = { vcek: milanVlek.key, at: new Date() };
  assert.equal(await code(milanVlek.report(), o), 'sev_chain_issuer_mismatch');
});

test('AMD CRL: a revoked ASK or ASVK is refused, naming its serial; an unrevoked chain passes with the CRL checked', async () => {
  const report = milanVcek.report();
  const clean = await verifySevSnpReport(report, opts(milanVcek, { crl: milanVcek.crl({ revoked: [0x5555] }) }));
  assert.equal(clean.crlChecked, true);
  assert.ok(clean.checks[1].endsWith('AMD CRL: not revoked'), clean.checks[1]);
  assert.equal((await verifySevSnpReport(report, opts(milanVcek))).crlChecked, false);

  const revoked = milanVcek.crl({ revoked: [0x5555, milanVcek.serials.ask] });
  assert.equal(await code(report, opts(milanVcek, { crl: revoked })), 'sev_chain_revoked');
  assert.match(await message(report, opts(milanVcek, { crl: revoked })), /SEV-Milan \(serial 010001\) is revoked/);
  // PEM works as DER does.
  const pem = `-----BEGIN X509 CRL-----\n${Buffer.from(revoked).toString('base64')}\n-----END X509 CRL-----\n`;
  assert.equal(await code(report, opts(milanVcek, { crl: pem })), 'sev_chain_revoked');
  // The ASVK, for VLEK-signed reports.
  assert.equal(await code(milanVlek.report(), opts(milanVlek, { crl: milanVlek.crl({ revoked: [milanVlek.serials.asvk] }) })), 'sev_chain_revoked');
  assert.equal(await code(milanVlek.report(), opts(milanVlek, { crl: milanVlek.crl({ revoked: [milanVlek.serials.ask] }) })), 'accepted');
});

test('AMD CRL: signature, validity and form are checked', async () => {
  const report = milanVcek.report();
  const other = generateKeyPairSync('rsa', { modulusLength: 2048 }).privateKey;
  assert.equal(await code(report, opts(milanVcek, { crl: milanVcek.crl({ signer: other }) })), 'sev_chain_crl_signature_invalid');
  const day = 86_400_000;
  assert.equal(await code(report, opts(milanVcek, { crl: milanVcek.crl({ nextUpdate: new Date(Date.now() - day) }) })), 'sev_chain_crl_expired');
  assert.equal(await code(report, opts(milanVcek, { crl: milanVcek.crl({ thisUpdate: new Date(Date.now() + day) }) })), 'sev_chain_crl_not_yet_valid');
  // Another product's CRL names an issuer that is not in this chain.
  const genoa = buildAmdPki({ product: 'Genoa' });
  assert.equal(await code(report, opts(milanVcek, { crl: genoa.crl({}) })), 'sev_chain_crl_issuer_unknown');
  assert.equal(await code(report, opts(milanVcek, { crl: new Uint8Array([0x30, 0x03, 0x02, 0x01, 0x01]) })), 'sev_crl_malformed');
  const flipped = milanVcek.crl({});
  flipped[flipped.length - 5] ^= 1;
  assert.equal(await code(report, opts(milanVcek, { crl: flipped })), 'sev_chain_crl_signature_invalid');
});

test('report versions 4 and 5, with mitigation vectors, verify on every product', async () => {
  for (const product of ['Milan', 'Genoa', 'Turin'] as const) {
    const p = product === 'Milan' ? milanVcek : buildAmdPki({ product });
    for (const version of [2, 3, 4, 5]) {
      const over = version === 2 ? { version, cpuidFamId: undefined, cpuidModId: undefined, cpuidStep: undefined } : { version, launchMitVector: 0x3n, currentMitVector: 0x7n };
      const b = p.report(over);
      const r = await verifySevSnpReport(b, opts(p));
      assert.equal(r.report.version, version, `${product} v${version}`);
      assert.ok(r.checks[0] === `report layout (version ${version})`);
      if (version >= 4) assert.deepEqual([r.report.launchMitVector, r.report.currentMitVector], [0x3n, 0x7n]);
    }
  }
  // A version 3 report with mitigation-vector bytes (reserved there) is refused before the signature.
  const v3 = milanVcek.report({ version: 4, launchMitVector: 1n });
  v3[0] = 3;
  assert.equal(await code(v3, opts(milanVcek)), 'sev_report_reserved');
  // The version is signed: relabelling a version 5 report as 4 breaks the signature.
  const v5 = milanVcek.report({ version: 5 });
  v5[0] = 4;
  assert.equal(parseReport(v5).version, 4);
  assert.equal(await code(v5, opts(milanVcek)), 'sev_report_signature');
});

import { test } from 'node:test';
import assert from 'node:assert/strict';
import { X509Certificate, createHash, generateKeyPairSync, sign, constants } from 'node:crypto';
import { AttestationError } from '../enclave/errors.js';
import { sevFile, tdxFile } from './fixtures/attestation.js';
import {
  OID, parseCertificate, parseCertificates, parseCrl, parseCrlInput, parsePem, parseSpki, parseDer, toHex,
  verifyChain, verifySignature, type Certificate,
} from '../enclave/pki/index.js';
import { parseQuote } from '../enclave/tdx/quote.js';
import { makeCert, makeCrl, name, newKey, oid, seq, octet, type Key } from './fixtures/tdx/pki-builder.js';

// 'tdx/NAME' or 'sev-snp/NAME' of the attestation samples, found where every attestation test finds them.
const read = (p: string): Buffer => {
  const [dir, name] = p.split('/');
  return Buffer.from(dir === 'tdx' ? tdxFile(name!) : sevFile(name!));
};
const AT_TDX = new Date(1688083200 * 1000);

async function rejects(p: Promise<unknown>, code: string): Promise<void> {
  await assert.rejects(p, (e: unknown) => {
    assert.ok(e instanceof AttestationError, `not an AttestationError: ${String(e)}`);
    assert.equal(e.code, code);
    return true;
  });
}

function realCerts(): { label: string; der: Uint8Array }[] {
  const out: { label: string; der: Uint8Array }[] = [];
  const add = (label: string, text: string): void => parsePem(text, 'CERTIFICATE').forEach((der, i) => out.push({ label: `${label}#${i}`, der }));
  for (const f of ['trusted_root.pem', 'tcb_info_issuer_chain.pem', 'qe_identity_issuer_chain.pem', 'pck_crl_issuer_chain.pem']) add(f, read(`tdx/${f}`).toString());
  const q = parseQuote(read('tdx/tdx_prod_quote_SPR_E4.dat'));
  add('quote PCK chain', q.pckChainPem);
  for (const f of ['ask_ark_milan.pem', 'ask_ark_genoa.pem', 'ask_ark_turin_vcek.pem']) add(f, read(`sev-snp/${f}`).toString());
  out.push({ label: 'vcek', der: new Uint8Array(read('sev-snp/vcek.testcer')) });
  return out;
}

test('X.509 parser agrees with OpenSSL (node:crypto) on every real certificate in the samples', () => {
  const all = realCerts();
  assert.ok(all.length >= 15);
  for (const { label, der } of all) {
    const mine = parseCertificate(der);
    const ref = new X509Certificate(der);
    assert.equal(BigInt('0x' + mine.serialHex), BigInt('0x' + ref.serialNumber), label);
    assert.equal(mine.notBefore.getTime(), new Date(ref.validFrom).getTime(), label);
    assert.equal(mine.notAfter.getTime(), new Date(ref.validTo).getTime(), label);
    const refSpki = new Uint8Array(ref.publicKey.export({ type: 'spki', format: 'der' }));
    // OpenSSL re-exports RSASSA-PSS keys with their parameters; compare the key bits themselves.
    assert.equal(toHex(mine.publicKey.key).length > 0, true);
    if (mine.publicKey.type === 'ec') assert.equal(toHex(mine.publicKey.raw), toHex(refSpki), label);
    assert.equal(mine.basicConstraints?.ca ?? false, ref.ca, label);
    for (const attr of mine.subject.attributes.filter((a) => a.oid === '2.5.4.3')) {
      assert.ok(ref.subject.includes(`CN=${attr.value}`), label);
    }
    assert.equal(createHash('sha256').update(mine.raw).digest('hex'), ref.fingerprint256.replace(/:/g, '').toLowerCase(), label);
  }
});

test('Intel SGX Root CA: fields as published (pathLen 1, keyCertSign+cRLSign, P-256, valid to 2049)', () => {
  const root = parseCertificates(read('tdx/trusted_root.pem'))[0];
  assert.equal(root.subject.text, 'CN=Intel SGX Root CA, O=Intel Corporation, L=Santa Clara, ST=CA, C=US');
  assert.equal(root.serialHex, '22650cd65a9d3489f383b49552bf501b392706ac');
  assert.deepEqual(root.basicConstraints, { ca: true, pathLen: 1 });
  assert.deepEqual([...root.keyUsage!].sort(), [5, 6]);
  assert.equal(root.publicKey.type, 'ec');
  assert.equal(root.publicKey.type === 'ec' && root.publicKey.curve, 'P-256');
  assert.equal(root.notAfter.toISOString(), '2049-12-31T23:59:59.000Z');
  assert.equal(root.signatureAlgorithm.oid, OID.ecdsaSha256);
});

test('AMD ARK/ASK: RSASSA-PSS parameters SHA-384 / MGF1-SHA-384 / salt 48 are decoded', () => {
  const [ask, ark] = parseCertificates(read('sev-snp/ask_ark_milan.pem'));
  for (const c of [ask, ark]) {
    assert.equal(c.signatureAlgorithm.oid, OID.rsassaPss);
    assert.deepEqual(c.signatureAlgorithm.pss, { hash: 'SHA-384', mgfHash: 'SHA-384', saltLength: 48 });
  }
});

test('real chains verify: Intel TCB Signing / PCK Platform CA / PCK leaf to the Intel root (with CRLs), AMD VCEK <- ASK <- ARK (RSA-PSS)', async () => {
  const root = parseCertificates(read('tdx/trusted_root.pem'))[0];
  const rootCrl = parseCrlInput(read('tdx/rootcrl.der'));
  const pckCrl = parseCrlInput(read('tdx/pckcrl'));
  for (const f of ['tcb_info_issuer_chain.pem', 'qe_identity_issuer_chain.pem']) {
    const full = await verifyChain(parseCertificates(read(`tdx/${f}`)), { at: AT_TDX, trustedRoot: root, crls: [rootCrl], requireCrls: true });
    assert.equal(full.length, 2);
  }
  const q = parseQuote(read('tdx/tdx_prod_quote_SPR_E4.dat'));
  const full = await verifyChain(parseCertificates(q.pckChainPem), { at: AT_TDX, trustedRoot: root, crls: [pckCrl, rootCrl], requireCrls: true });
  assert.equal(full.length, 3);
  // Without the PCK CRL the intermediate is uncovered.
  await rejects(verifyChain(parseCertificates(q.pckChainPem), { at: AT_TDX, trustedRoot: root, crls: [rootCrl], requireCrls: true }), 'pki_crl_missing');

  const [ask, ark] = parseCertificates(read('sev-snp/ask_ark_milan.pem'));
  const vcek = parseCertificate(new Uint8Array(read('sev-snp/vcek.testcer')));
  const at = new Date('2025-01-01T00:00:00Z');
  assert.equal((await verifyChain([vcek, ask, ark], { at, trustedRoot: ark })).length, 3);
  // Genoa's ARK is a valid root, but not the one pinned for this chain.
  const genoaArk = parseCertificates(read('sev-snp/ask_ark_genoa.pem'))[1];
  await rejects(verifyChain([vcek, ask, ark], { at, trustedRoot: genoaArk }), 'pki_untrusted_root');
  await rejects(verifyChain([vcek, ask], { at, trustedRoot: genoaArk }), 'pki_issuer_mismatch');
});

test('a flipped byte in a real signature (ECDSA and RSA-PSS) is rejected', async () => {
  const root = parseCertificates(read('tdx/trusted_root.pem'))[0];
  const [signing] = parsePem(read('tdx/tcb_info_issuer_chain.pem').toString(), 'CERTIFICATE');
  const bad = signing.slice();
  bad[bad.length - 3] ^= 0x01; // inside the ECDSA s value
  await rejects(verifyChain([parseCertificate(bad)], { at: AT_TDX, trustedRoot: root }), 'pki_signature_invalid');

  const [askDer, arkDer] = parsePem(read('sev-snp/ask_ark_milan.pem').toString(), 'CERTIFICATE');
  const badAsk = askDer.slice();
  badAsk[badAsk.length - 10] ^= 0x40;
  await rejects(verifyChain([parseCertificate(badAsk)], { at: new Date('2025-01-01T00:00:00Z'), trustedRoot: parseCertificate(arkDer) }), 'pki_signature_invalid');
});

test('verifySignature: RSA PKCS#1 v1.5 and RSASSA-PSS (SHA-384, salt 48) against node:crypto signatures', async () => {
  const { privateKey, publicKey } = generateKeyPairSync('rsa', { modulusLength: 2048 });
  const spki = parseSpki(parseDer(new Uint8Array(publicKey.export({ type: 'spki', format: 'der' }))));
  const data = new TextEncoder().encode('sealed-inference');
  const pkcs1 = new Uint8Array(sign('sha256', data, privateKey));
  const nullParams = new Uint8Array([5, 0]);
  assert.equal(await verifySignature(spki, { oid: OID.sha256WithRSA, params: nullParams }, pkcs1, data), true);
  assert.equal(await verifySignature(spki, { oid: OID.sha256WithRSA, params: nullParams }, pkcs1, data.subarray(1)), false);
  const pss = new Uint8Array(sign('sha384', data, { key: privateKey, padding: constants.RSA_PKCS1_PSS_PADDING, saltLength: 48 }));
  const alg = { oid: OID.rsassaPss, pss: { hash: 'SHA-384' as const, mgfHash: 'SHA-384' as const, saltLength: 48 } };
  assert.equal(await verifySignature(spki, alg, pss, data), true);
  assert.equal(await verifySignature(spki, { ...alg, pss: { ...alg.pss, saltLength: 32 } }, pss, data), false);
  // An EC key cannot verify an RSA algorithm, and vice versa: a typed refusal, not a false "valid".
  const ec = parseSpki(parseDer(newKey().spki));
  await rejects(verifySignature(ec, alg, pss, data), 'pki_key_mismatch');
  await rejects(verifySignature(spki, { oid: OID.ecdsaSha256 }, pkcs1, data), 'pki_key_mismatch');
  await rejects(verifySignature(spki, { oid: '1.2.840.113549.1.1.5' }, pkcs1, data), 'pki_unsupported_algorithm'); // SHA-1
});

// ---- synthetic chains for the cases real data cannot show ----

interface Pki {
  rootKey: Key; caKey: Key; leafKey: Key;
  root: Certificate; ca: Certificate; leaf: Certificate;
  rootName: Uint8Array; caName: Uint8Array;
}
const T0 = new Date('2024-01-01T00:00:00Z');
const T1 = new Date('2030-01-01T00:00:00Z');
const NOW = new Date('2025-06-01T00:00:00Z');

function pki(opts: { caKeyUsage?: number[]; rootPathLen?: number; leafNotAfter?: Date; leafNotBefore?: Date; caIsCa?: boolean; leafExtra?: { oid: string; critical?: boolean; value: Uint8Array }[] } = {}): Pki {
  const rootKey = newKey(); const caKey = newKey(); const leafKey = newKey();
  const rootName = name('Test Root'); const caName = name('Test CA');
  const root = parseCertificate(makeCert({ serial: 1, issuer: rootName, subject: rootName, notBefore: T0, notAfter: T1, subjectKey: rootKey, issuerKey: rootKey, ca: true, pathLen: opts.rootPathLen ?? 1, keyUsage: [5, 6] }));
  const ca = parseCertificate(makeCert({ serial: 2, issuer: rootName, subject: caName, notBefore: T0, notAfter: T1, subjectKey: caKey, issuerKey: rootKey, ca: opts.caIsCa ?? true, pathLen: 0, keyUsage: opts.caKeyUsage ?? [5, 6] }));
  const leaf = parseCertificate(makeCert({ serial: 0x8001, issuer: caName, subject: name('Test Leaf'), notBefore: opts.leafNotBefore ?? T0, notAfter: opts.leafNotAfter ?? T1, subjectKey: leafKey, issuerKey: caKey, ca: false, keyUsage: [0], extra: opts.leafExtra }));
  return { rootKey, caKey, leafKey, root, ca, leaf, rootName, caName };
}

test('synthetic chain: accepted; chain may omit or include the pinned root', async () => {
  const p = pki();
  assert.equal((await verifyChain([p.leaf, p.ca], { at: NOW, trustedRoot: p.root })).length, 3);
  assert.equal((await verifyChain([p.leaf, p.ca, p.root], { at: NOW, trustedRoot: p.root })).length, 3);
});

test('synthetic chain: a look-alike root (same name, other key) is refused, included or not', async () => {
  const p = pki();
  const fakeKey = newKey();
  const fakeRoot = parseCertificate(makeCert({ serial: 1, issuer: p.rootName, subject: p.rootName, notBefore: T0, notAfter: T1, subjectKey: fakeKey, issuerKey: fakeKey, ca: true, keyUsage: [5, 6] }));
  const fakeCa = parseCertificate(makeCert({ serial: 2, issuer: p.rootName, subject: p.caName, notBefore: T0, notAfter: T1, subjectKey: p.caKey, issuerKey: fakeKey, ca: true, keyUsage: [5, 6] }));
  await rejects(verifyChain([p.leaf, fakeCa, fakeRoot], { at: NOW, trustedRoot: p.root }), 'pki_untrusted_root');
  await rejects(verifyChain([p.leaf, fakeCa], { at: NOW, trustedRoot: p.root }), 'pki_signature_invalid');
});

test('synthetic chain: validity window, CA flag, path length, key usage, critical extensions, order', async () => {
  const p = pki();
  await rejects(verifyChain([p.leaf, p.ca], { at: new Date('2031-01-01T00:00:00Z'), trustedRoot: p.root }), 'pki_expired');
  await rejects(verifyChain([p.leaf, p.ca], { at: new Date('2023-01-01T00:00:00Z'), trustedRoot: p.root }), 'pki_not_yet_valid');
  const e = pki({ leafNotAfter: new Date('2025-01-01T00:00:00Z') });
  await rejects(verifyChain([e.leaf, e.ca], { at: NOW, trustedRoot: e.root }), 'pki_expired');
  const nb = pki({ leafNotBefore: new Date('2026-01-01T00:00:00Z') });
  await rejects(verifyChain([nb.leaf, nb.ca], { at: NOW, trustedRoot: nb.root }), 'pki_not_yet_valid');
  const notCa = pki({ caIsCa: false });
  await rejects(verifyChain([notCa.leaf, notCa.ca], { at: NOW, trustedRoot: notCa.root }), 'pki_not_ca');
  const pl = pki({ rootPathLen: 0 });
  await rejects(verifyChain([pl.leaf, pl.ca], { at: NOW, trustedRoot: pl.root }), 'pki_path_length');
  const ku = pki({ caKeyUsage: [0, 6] });
  await rejects(verifyChain([ku.leaf, ku.ca], { at: NOW, trustedRoot: ku.root }), 'pki_key_usage');
  const crit = pki({ leafExtra: [{ oid: '1.2.3.4.5', critical: true, value: seq() }] });
  await rejects(verifyChain([crit.leaf, crit.ca], { at: NOW, trustedRoot: crit.root }), 'pki_unknown_critical_extension');
  assert.equal((await verifyChain([crit.leaf, crit.ca], { at: NOW, trustedRoot: crit.root, allowedCriticalExtensions: ['1.2.3.4.5'] })).length, 3);
  const nonCrit = pki({ leafExtra: [{ oid: '1.2.3.4.5', value: octet(new Uint8Array([1])) }] });
  assert.equal((await verifyChain([nonCrit.leaf, nonCrit.ca], { at: NOW, trustedRoot: nonCrit.root })).length, 3);
  await rejects(verifyChain([p.ca, p.leaf], { at: NOW, trustedRoot: p.root }), 'pki_issuer_mismatch');
  await rejects(verifyChain([], { at: NOW, trustedRoot: p.root }), 'pki_chain_empty');
});

test('synthetic CRLs: revocation, CRL signature, CRL validity, unknown issuer, prefix for codes', async () => {
  const p = pki();
  const crl = (o: Partial<{ issuerKey: Key; issuer: Uint8Array; thisUpdate: Date; nextUpdate: Date; revoked: number[] }> = {}) =>
    parseCrl(makeCrl({ issuer: p.caName, issuerKey: p.caKey, thisUpdate: T0, nextUpdate: T1, ...o }));
  const rootCrl = parseCrl(makeCrl({ issuer: p.rootName, issuerKey: p.rootKey, thisUpdate: T0, nextUpdate: T1 }));
  assert.equal((await verifyChain([p.leaf, p.ca], { at: NOW, trustedRoot: p.root, crls: [crl({ revoked: [5, 7] }), rootCrl], requireCrls: true })).length, 3);
  await rejects(verifyChain([p.leaf, p.ca], { at: NOW, trustedRoot: p.root, crls: [crl({ revoked: [5, 0x8001] })] }), 'pki_revoked');
  const caRevoked = parseCrl(makeCrl({ issuer: p.rootName, issuerKey: p.rootKey, thisUpdate: T0, nextUpdate: T1, revoked: [2] }));
  await rejects(verifyChain([p.leaf, p.ca], { at: NOW, trustedRoot: p.root, crls: [caRevoked] }), 'pki_revoked');
  await rejects(verifyChain([p.leaf, p.ca], { at: NOW, trustedRoot: p.root, crls: [crl({ issuerKey: newKey() })] }), 'pki_crl_signature_invalid');
  await rejects(verifyChain([p.leaf, p.ca], { at: NOW, trustedRoot: p.root, crls: [crl({ nextUpdate: new Date('2025-01-01T00:00:00Z') })] }), 'pki_crl_expired');
  await rejects(verifyChain([p.leaf, p.ca], { at: NOW, trustedRoot: p.root, crls: [crl({ thisUpdate: new Date('2025-12-01T00:00:00Z') })] }), 'pki_crl_not_yet_valid');
  await rejects(verifyChain([p.leaf, p.ca], { at: NOW, trustedRoot: p.root, crls: [crl({ issuer: name('Elsewhere') })] }), 'pki_crl_issuer_unknown');
  await rejects(verifyChain([p.leaf, p.ca], { at: NOW, trustedRoot: p.root, crls: [crl()], requireCrls: true }), 'pki_crl_missing');
  await rejects(verifyChain([p.leaf, p.ca], { at: NOW, trustedRoot: p.root, crls: [crl({ revoked: [0x8001] })], codePrefix: 'x_pck' }), 'x_pck_revoked');
});

test('real CRLs parse: issuer, dates, revoked serials (PCK CRL), and DER/PEM/hex input forms agree', () => {
  const pck = parseCrlInput(read('tdx/pckcrl'));
  assert.equal(pck.issuer.text, 'CN=Intel SGX PCK Platform CA, O=Intel Corporation, L=Santa Clara, ST=CA, C=US');
  assert.equal(pck.thisUpdate.toISOString(), '2023-06-08T07:27:52.000Z');
  assert.equal(pck.nextUpdate?.toISOString(), '2023-07-08T07:27:52.000Z');
  assert.ok(pck.revoked.has('6fc34e5023e728923435d61aa4b83c618166ad35'));
  assert.ok(pck.revoked.has('008af924184e1d5afddd73c3d63a12f5e8b5737e56'));
  const root = parseCrlInput(read('tdx/rootcrl.der'));
  assert.equal(root.revoked.size, 0);
  assert.equal(root.nextUpdate?.toISOString(), '2024-04-02T10:22:51.000Z');
  const der = new Uint8Array(read('tdx/rootcrl.der'));
  const pem = `-----BEGIN X509 CRL-----\n${Buffer.from(der).toString('base64')}\n-----END X509 CRL-----\n`;
  assert.equal(toHex(parseCrlInput(pem).tbs), toHex(root.tbs));
  assert.equal(toHex(parseCrlInput(Buffer.from(der).toString('hex')).tbs), toHex(root.tbs));
  assert.throws(() => parseCrlInput('not a crl'), (e: unknown) => e instanceof AttestationError && e.code === 'pem_malformed');
});

test('PEM: labels must match, base64 must be canonical, blocks must close', () => {
  const good = read('tdx/trusted_root.pem').toString();
  assert.equal(parsePem(good).length, 1);
  const code = (t: string): string => {
    try {
      parsePem(t);
    } catch (e) {
      return (e as AttestationError).code;
    }
    return 'none';
  };
  assert.equal(code(good.replace('END CERTIFICATE', 'END X509 CRL')), 'pem_malformed');
  assert.equal(code(good.replace(/-----END CERTIFICATE-----\n?$/, '')), 'pem_malformed');
  assert.equal(code(good.replace('MIIC', 'MI!C')), 'pem_malformed');
  void oid;
});

test('PEM: a damaged BEGIN/END marker fails the whole text instead of dropping that block', () => {
  const two = read('tdx/tcb_info_issuer_chain.pem').toString();
  assert.equal(parsePem(two).length, 2);
  const at = two.lastIndexOf('-----BEGIN CERTIFICATE-----') + '-----BEGIN CERT'.length;
  for (const ch of ['\0', 'i', '-']) {
    const damaged = two.slice(0, at) + ch + two.slice(at + 1);
    assert.throws(() => parsePem(damaged), (e: unknown) => e instanceof AttestationError && e.code === 'pem_malformed', JSON.stringify(ch));
  }
  const end = two.indexOf('-----END CERTIFICATE-----') + 10;
  assert.throws(() => parsePem(two.slice(0, end) + 'X' + two.slice(end + 1)), (e: unknown) => e instanceof AttestationError && e.code === 'pem_malformed');
});

import { test } from 'node:test';
import assert from 'node:assert/strict';
import { AttestationError } from '../enclave/errors.js';
import { INTEL_QE_VENDOR_ID, parseQuote } from '../enclave/tdx/quote.js';
import { parseCertificates, toHex } from '../enclave/pki/index.js';
import { Rng, mutate } from './fixtures/tdx/fuzz.js';
import { errorCode, tdxFile } from './fixtures/attestation.js';

// The real v4 quote file as published: 4935 bytes of quote, then 39 bytes go-tdx-guest appended.
const V4 = tdxFile('tdx_prod_quote_SPR_E4.dat');
const V4_END = 4935;
const V5 = tdxFile('quote_v5_sample.dat');
const hex = (b: Uint8Array): string => toHex(b);
const code = errorCode;

// TD report body offsets from Intel's TDX DCAP Quoting Library API ("TD Quote Body"), relative to the body.
const BODY = { teeTcbSvn: [0, 16], mrSeam: [16, 48], mrSignerSeam: [64, 48], seamAttributes: [112, 8], tdAttributes: [120, 8], xfam: [128, 8], mrTd: [136, 48], mrConfigId: [184, 48], mrOwner: [232, 48], mrOwnerConfig: [280, 48], rtmr0: [328, 48], rtmr3: [472, 48], reportData: [520, 64] } as const;

test('v4 production quote: header, TD10 body and signature data as the spec lays them out', () => {
  // The bytes after the quote's declared end are handed back apart, as Intel's QVL ignores them.
  const q = parseQuote(V4);
  assert.equal(q.raw.length, V4_END);
  assert.equal(Buffer.from(q.trailing).toString('latin1'), '\nextra bytes(only for testing purpose)\n');
  assert.equal(q.trailing.length, 39);
  assert.equal(q.header.version, 4);
  assert.equal(q.header.attestationKeyType, 2);
  assert.equal(q.header.teeType, 0x81);
  assert.equal(hex(q.header.qeVendorId), INTEL_QE_VENDOR_ID);
  assert.equal(q.body.type, 'TD10');
  for (const [field, [off, len]] of Object.entries(BODY)) {
    const have = field.startsWith('rtmr') ? q.body.rtmr[Number(field[4])] : (q.body as unknown as Record<string, Uint8Array>)[field];
    assert.equal(hex(have), hex(V4.subarray(48 + off, 48 + off + len)), field);
  }
  assert.equal(hex(q.body.teeTcbSvn), '03000400000000000000000000000000');
  assert.equal(hex(q.body.tdAttributes), '0000004000000000');
  assert.equal(hex(q.signedData), hex(V4.subarray(0, 632)));
  assert.equal(hex(q.signature), hex(V4.subarray(636, 700)));
  assert.equal(hex(q.attestationKey), hex(V4.subarray(700, 764)));
  assert.equal(q.qeReport.isvProdId, 2);
  assert.equal(q.qeReport.isvSvn, 4);
  assert.equal(hex(q.qeReport.mrSigner), 'dc9e2a7c6f948f17474e34a7fc43ed030f7c1563f1babddf6340c82e0e54a8c5');
  assert.deepEqual([...q.qeAuthData], Array.from({ length: 32 }, (_, i) => i));
  const chain = parseCertificates(q.pckChainPem);
  assert.deepEqual(chain.map((c) => c.subject.attributes[0].value), ['Intel SGX PCK Certificate', 'Intel SGX PCK Platform CA', 'Intel SGX Root CA']);
});

test('v5 sample quote: body descriptor type 3 (TD15, 648 bytes) parses with TEE_TCB_SVN2 and MRSERVICETD', () => {
  const q = parseQuote(V5);
  assert.equal(q.header.version, 5);
  assert.equal(q.body.type, 'TD15');
  assert.equal(q.trailing.length, 0);
  assert.equal(q.signedData.length, 48 + 6 + 648);
  assert.equal(hex(q.body.mrTd), hex(V5.subarray(54 + 136, 54 + 184)));
  assert.equal(hex(q.body.reportData), hex(V5.subarray(54 + 520, 54 + 584)));
  assert.equal(q.body.teeTcbSvn2!.length, 16);
  assert.equal(hex(q.body.mrServiceTd!), hex(V5.subarray(54 + 600, 54 + 648)));
  assert.equal(parseCertificates(q.pckChainPem).length, 3);
  // Re-labelled as TD10 with a TD15 size, or an unknown body type: refused.
  const b = V5.slice();
  b[48] = 2;
  assert.equal(code(() => parseQuote(b)), 'tdx_quote_malformed');
  b[48] = 1;
  assert.equal(code(() => parseQuote(b)), 'tdx_quote_malformed');
});

test('unknown versions, TEE types, key types and certification data types are refused', () => {
  const with_ = (off: number, v: number, base = V4): Uint8Array => {
    const b = base.slice();
    b[off] = v;
    return b;
  };
  for (const v of [0, 1, 2, 3, 6, 0xff]) assert.equal(code(() => parseQuote(with_(0, v))), 'tdx_quote_version');
  assert.equal(code(() => parseQuote(with_(4, 0x00))), 'tdx_quote_malformed'); // SGX TEE type
  assert.equal(code(() => parseQuote(with_(2, 3))), 'tdx_quote_malformed'); // ECDSA-384 key type
  assert.equal(code(() => parseQuote(with_(764, 5))), 'tdx_quote_malformed'); // outer cert data type 5
  assert.equal(code(() => parseQuote(with_(0x4e4, 6))), 'tdx_quote_malformed'); // inner cert data type 6
});

test('length fields must frame their structures exactly', () => {
  const le = (b: Uint8Array, off: number, delta: number): Uint8Array => {
    const c = b.slice();
    const v = new DataView(c.buffer).getUint32(off, true) + delta;
    new DataView(c.buffer).setUint32(off, v, true);
    return c;
  };
  assert.equal(code(() => parseQuote(le(V4.subarray(0, V4_END), 632, 1))), 'tdx_quote_truncated'); // signature data length
  // With bytes after the end, a longer signature data length swallows one of them: it no longer frames its contents.
  assert.equal(code(() => parseQuote(le(V4, 632, 1))), 'tdx_quote_malformed');
  // One byte less of signature data: the certification data no longer fits what frames it.
  assert.equal(code(() => parseQuote(le(V4, 632, -1))), 'tdx_quote_malformed');
  assert.equal(code(() => parseQuote(le(V4, 766, 1))), 'tdx_quote_malformed'); // QE cert data size
  assert.equal(code(() => parseQuote(le(V4, 0x4e6, -1))), 'tdx_quote_malformed'); // PCK chain size
  // Whatever follows the declared end is not part of the quote: more of it changes nothing parsed.
  const more = new Uint8Array([...V4, 0, 0xff]);
  assert.equal(parseQuote(more).trailing.length, 41);
  assert.equal(hex(parseQuote(more).signedData), hex(parseQuote(V4).signedData));
  // Text after the PEM chain inside the signed structure is not a chain.
  const c = V4.slice();
  c[4934 - 1] = 0x41;
  assert.equal(code(() => parseQuote(c)), 'tdx_quote_malformed');
});

test('every truncation of the v4 and v5 quotes before their declared end is refused with a typed error', () => {
  for (const q of [V4.subarray(0, V4_END), V5]) {
    for (let n = 0; n < q.length; n++) {
      const c = code(() => parseQuote(q.subarray(0, n)));
      assert.ok(c === 'tdx_quote_truncated' || c === 'tdx_quote_malformed', `length ${n}: ${c}`);
    }
  }
});

test('10,000 random and mutated inputs to the quote parser give AttestationError only', () => {
  const rng = new Rng(0x7d5);
  let parsed = 0;
  for (let i = 0; i < 10_000; i++) {
    const input = mutate(i % 2 ? V4 : V5, rng);
    try {
      parseQuote(input);
      parsed++;
    } catch (e) {
      if (!(e instanceof AttestationError)) assert.fail(`case ${i} threw ${String(e)}`);
    }
  }
  assert.ok(parsed > 0 && parsed < 10_000); // flips in opaque fields still parse; structural damage does not
});

test('a PCK chain with a damaged PEM marker or an embedded NUL is refused, not shortened', async () => {
  const { verifyTdxQuote } = await import('../enclave/tdx/verify.js');
  const at = new Date(1688083200 * 1000);
  const marker = V4.slice();
  marker[0xfa2] = 0; // "-----BEGIN CERT\0FICATE-----" of the root certificate
  assert.equal(code(() => parseQuote(marker)), 'tdx_quote_malformed');
  const letter = V4.slice();
  letter[0xfa2] = 0x69; // "CERTiFICATE": not a marker, so text between certificates
  assert.equal(code(() => parseQuote(letter)), 'tdx_quote_malformed');
  await assert.rejects(verifyTdxQuote(letter, { at, policy: { tcbEvaluation: false } }), (e: unknown) => e instanceof AttestationError && e.code === 'tdx_quote_malformed');
  // A flipped bit in the last base64 digit that only touches its unused bits decodes to the same DER:
  // refused as non-canonical rather than accepted as the same certificate.
  const unused = V4.slice();
  unused[4906] ^= 0x02; // "...qI=" -> "...qK="
  assert.equal(Buffer.from(unused.subarray(4905, 4908)).toString('latin1'), 'qK=');
  await assert.rejects(verifyTdxQuote(unused, { at, policy: { tcbEvaluation: false } }), (e: unknown) => e instanceof AttestationError && e.code === 'tdx_pck_chain_malformed');
});

import { test } from 'node:test';
import assert from 'node:assert/strict';
import { AttestationError } from '../enclave/errors.js';
import { parseQeIdentity, parseTcbInfo, topLevelMembers } from '../enclave/tdx/collateral.js';
import { SGX_EXTENSION_OID, parsePckExtensions } from '../enclave/tdx/pck.js';
import { parseQuote } from '../enclave/tdx/quote.js';
import { parseCertificates, toHex, type Certificate } from '../enclave/pki/index.js';
import { Rng, mutate } from './fixtures/tdx/fuzz.js';
import { errorCode, tdxFile } from './fixtures/attestation.js';

const file = tdxFile;
const TCB = file('sample_tcbInfo_response');
const QE = file('sample_qeIdentity_response');
const enc = (s: string): Uint8Array => new TextEncoder().encode(s);
const dec = (b: Uint8Array): string => new TextDecoder().decode(b);
const code = errorCode;

test('the signed bytes are the exact raw span of the member, whitespace and escapes included', () => {
  const m = topLevelMembers(enc(' {"a" : { "x":"q\\"}" , "y":[1, {"z":null}] } ,"signature":"00"}\n'), 'c');
  assert.equal(dec(m.get('a')!), '{ "x":"q\\"}" , "y":[1, {"z":null}] }');
  assert.equal(dec(m.get('signature')!), '"00"');
  for (const bad of ['{"a":1,"a":2}', '{"a":1} x', '{"a":1,}', '{"a" 1}', '["a"]', '{"a":"unterminated}', '{"a":{"b":1}', '']) {
    assert.equal(code(() => topLevelMembers(enc(bad), 'c')), 'c', bad);
  }
  const t = parseTcbInfo(TCB);
  const text = dec(TCB);
  assert.equal(dec(t.signedBytes), text.slice('{"tcbInfo":'.length, text.indexOf(',"signature"')));
  assert.equal(toHex(t.signature), 'f6502d6fad1e3b7281df2b7eddc773d5b5281187346c12c5647b4f243cea49212be96a7a1a6b5d83e36323fe3fa9dacd61ebfbc38e631ff0fe29ef14ae0db0b4');
});

test('TCB info v3 and QE identity v2: real documents parse to Intel\'s values', () => {
  const t = parseTcbInfo(TCB).value;
  assert.equal(t.id, 'TDX');
  assert.equal(t.version, 3);
  assert.equal(t.issueDate.toISOString(), '2023-06-18T08:42:58.000Z');
  assert.equal(t.nextUpdate.toISOString(), '2023-07-18T08:42:58.000Z');
  assert.equal(toHex(t.fmspc), '50806f000000');
  assert.equal(t.tcbEvaluationDataNumber, 15);
  assert.equal(t.tcbLevels.length, 2);
  assert.deepEqual(t.tcbLevels[0].sgxComponents, [5, 5, 2, 2, 3, 1, 0, 3, 0, 0, 0, 0, 0, 0, 0, 0]);
  assert.deepEqual(t.tcbLevels[0].tdxComponents, [3, 0, 5, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0]);
  assert.equal(t.tcbLevels[0].pceSvn, 11);
  assert.equal(t.tcbLevels[1].status, 'OutOfDate');
  assert.equal(t.tcbLevels[1].advisoryIds.length, 13);
  assert.equal(toHex(t.tdxModule!.mrSigner), '00'.repeat(48));
  assert.equal(t.tdxModuleIdentities, undefined);
  const q = parseQeIdentity(QE).value;
  assert.equal(q.id, 'TD_QE');
  assert.equal(q.version, 2);
  assert.equal(toHex(q.mrSigner), 'dc9e2a7c6f948f17474e34a7fc43ed030f7c1563f1babddf6340c82e0e54a8c5');
  assert.equal(q.isvProdId, 2);
  assert.deepEqual(q.tcbLevels.map((l) => [l.isvSvn, l.status]), [[4, 'UpToDate']]);
  assert.equal(toHex(q.attributesMask), 'fbffffffffffffff0000000000000000');
});

test('collateral fields are type-checked strictly', () => {
  const edit = (b: Uint8Array, from: string, to: string): Uint8Array => {
    assert.ok(dec(b).includes(from), from);
    return enc(dec(b).replace(from, to));
  };
  assert.equal(code(() => parseTcbInfo(edit(TCB, '"fmspc":"50806f000000"', '"fmspc":"50806f0000"'))), 'tdx_tcb_info_malformed');
  assert.equal(code(() => parseTcbInfo(edit(TCB, '"version":3', '"version":-3'))), 'tdx_tcb_info_malformed');
  assert.equal(code(() => parseTcbInfo(edit(TCB, '"issueDate":"2023-06-18T08:42:58Z"', '"issueDate":"June 18"'))), 'tdx_tcb_info_malformed');
  assert.equal(code(() => parseTcbInfo(edit(TCB, '{"svn":5,"category":"BIOS","type":"Early Microcode Update"},', ''))), 'tdx_tcb_info_malformed'); // 15 components
  assert.equal(code(() => parseTcbInfo(edit(TCB, '"svn":5', '"svn":256'))), 'tdx_tcb_info_malformed');
  assert.equal(code(() => parseTcbInfo(edit(TCB, '"signature":"f6', '"signature":"x6'))), 'tdx_tcb_info_malformed');
  assert.equal(code(() => parseQeIdentity(edit(QE, '"mrsigner":"DC', '"mrsigner":"'))), 'tdx_qe_identity_malformed');
  assert.equal(code(() => parseQeIdentity(edit(QE, '"tcbLevels":[{', '"tcbLevels":[], "x":[{'))), 'tdx_qe_identity_malformed');
  assert.equal(code(() => parseQeIdentity(TCB)), 'tdx_qe_identity_malformed');
});

test('10,000 mutated/random TCB info and QE identity bodies give AttestationError only', () => {
  const rng = new Rng(0x7cb);
  for (let i = 0; i < 10_000; i++) {
    const input = mutate(i % 2 ? TCB : QE, rng);
    try {
      if (i % 2) parseTcbInfo(input);
      else parseQeIdentity(input);
    } catch (e) {
      if (!(e instanceof AttestationError)) assert.fail(`case ${i} threw ${String(e)}`);
    }
  }
});

test('2,000 mutated PCK SGX extensions give AttestationError only (code tdx_pck_extension_invalid)', () => {
  const leaf = parseCertificates(parseQuote(file('tdx_prod_quote_SPR_E4.dat')).pckChainPem)[0];
  const ext = leaf.extensions.get(SGX_EXTENSION_OID)!;
  const rng = new Rng(0x5c);
  for (let i = 0; i < 2_000; i++) {
    const fake = { ...leaf, extensions: new Map([[SGX_EXTENSION_OID, { ...ext, value: mutate(ext.value, rng) }]]) } as Certificate;
    try {
      parsePckExtensions(fake);
    } catch (e) {
      if (!(e instanceof AttestationError) || e.code !== 'tdx_pck_extension_invalid') assert.fail(`case ${i} threw ${String(e)}`);
    }
  }
  assert.equal(code(() => parsePckExtensions({ ...leaf, extensions: new Map() } as Certificate)), 'tdx_pck_extension_invalid');
});

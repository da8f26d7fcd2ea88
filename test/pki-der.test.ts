import { test } from 'node:test';
import assert from 'node:assert/strict';
import { AttestationError } from '../enclave/errors.js';
import {
  DerReader, TAG, parseDer, readBitString, readBoolean, readIntegerBytes, readOid, readTime, readUnsignedInteger,
  ecdsaDerToP1363,
} from '../enclave/pki/index.js';

const h = (s: string): Uint8Array => new Uint8Array(Buffer.from(s.replace(/\s/g, ''), 'hex'));
const code = (f: () => unknown): string => {
  try {
    f();
  } catch (e) {
    assert.ok(e instanceof AttestationError, `expected AttestationError, got ${String(e)}`);
    return e.code;
  }
  return assert.fail('expected an error');
};

test('DER lengths: short and long form read; indefinite, non-minimal and overrunning lengths rejected', () => {
  assert.deepEqual([...parseDer(h('0403 010203')).value], [1, 2, 3]);
  const long = new Uint8Array([0x04, 0x81, 0x80, ...new Uint8Array(0x80)]);
  assert.equal(parseDer(long).value.length, 0x80);
  assert.equal(code(() => parseDer(h('3080 0000'))), 'der_malformed'); // indefinite (BER only)
  assert.equal(code(() => parseDer(h('0481 05 0102030405'))), 'der_malformed'); // long form for < 128
  assert.equal(code(() => parseDer(new Uint8Array([0x04, 0x82, 0x00, 0x80, ...new Uint8Array(0x80)]))), 'der_malformed');
  assert.equal(code(() => parseDer(h('0405 0102'))), 'der_malformed'); // runs past the end
  assert.equal(code(() => parseDer(h('04'))), 'der_malformed'); // no length
  assert.equal(code(() => parseDer(h('1f2201 00'))), 'der_malformed'); // high tag number form
  assert.equal(code(() => parseDer(h('0401 01 00'))), 'der_malformed'); // trailing byte
  assert.equal(code(() => parseDer(h('0485 0100000000'))), 'der_malformed'); // 5 length octets
});

test('DER INTEGER: minimal two\'s complement only; unsigned view drops the sign octet', () => {
  assert.deepEqual([...readUnsignedInteger(parseDer(h('0202 0080')))], [0x80]);
  assert.deepEqual([...readIntegerBytes(parseDer(h('0201 7f')))], [0x7f]);
  assert.equal(code(() => readIntegerBytes(parseDer(h('0202 0001')))), 'der_malformed');
  assert.equal(code(() => readIntegerBytes(parseDer(h('0202 ff80')))), 'der_malformed');
  assert.equal(code(() => readIntegerBytes(parseDer(h('0200')))), 'der_malformed');
  assert.equal(code(() => readUnsignedInteger(parseDer(h('0201 80')))), 'der_malformed'); // -128
});

test('DER OBJECT IDENTIFIER: X.690 and RFC 5280 vectors; non-minimal and truncated arcs rejected', () => {
  assert.equal(readOid(parseDer(h('0609 2a864886f70d01010b'))), '1.2.840.113549.1.1.11');
  assert.equal(readOid(parseDer(h('0603 551d13'))), '2.5.29.19');
  assert.equal(readOid(parseDer(h('0603 883703'))), '2.999.3'); // X.690 §8.19.5 example
  assert.equal(readOid(parseDer(h('060a 2a864886f84d010d0102'))), '1.2.840.113741.1.13.1.2'); // Intel SGX TCB
  assert.equal(code(() => readOid(parseDer(h('0603 2a8001')))), 'der_malformed');
  assert.equal(code(() => readOid(parseDer(h('0602 2a86')))), 'der_malformed');
  assert.equal(code(() => readOid(parseDer(h('0600')))), 'der_malformed');
});

test('DER times: UTCTime century rule, GeneralizedTime, and only the RFC 5280 forms', () => {
  const t = (hex: string): Date => readTime(parseDer(h(hex)));
  const ascii = (tag: number, s: string): string => tag.toString(16).padStart(2, '0') + s.length.toString(16).padStart(2, '0') + Buffer.from(s).toString('hex');
  assert.equal(t(ascii(0x17, '490101000000Z')).toISOString(), '2049-01-01T00:00:00.000Z');
  assert.equal(t(ascii(0x17, '500101000000Z')).toISOString(), '1950-01-01T00:00:00.000Z');
  assert.equal(t(ascii(0x18, '20491231235959Z')).toISOString(), '2049-12-31T23:59:59.000Z');
  for (const bad of [ascii(0x17, '230230000000Z'), ascii(0x17, '2302010000Z'), ascii(0x17, '230201000000+0100'),
    ascii(0x18, '20230201000000.5Z'), ascii(0x17, '231301000000Z'), ascii(0x17, '23020100000aZ'), ascii(0x04, '230201000000Z')]) {
    assert.equal(code(() => t(bad)), 'der_malformed', bad);
  }
});

test('DER BOOLEAN and BIT STRING: only distinguished encodings', () => {
  assert.equal(readBoolean(parseDer(h('0101ff'))), true);
  assert.equal(readBoolean(parseDer(h('010100'))), false);
  assert.equal(code(() => readBoolean(parseDer(h('010101')))), 'der_malformed');
  assert.deepEqual(readBitString(parseDer(h('0302 0580'))), { unusedBits: 5, bytes: h('80') });
  assert.equal(code(() => readBitString(parseDer(h('0302 0581')))), 'der_malformed'); // padding bits set
  assert.equal(code(() => readBitString(parseDer(h('0301 01')))), 'der_malformed');
});

test('DerReader walks a SEQUENCE and enforces tags and completeness', () => {
  const r = DerReader.of(parseDer(h('3006 020101 0101ff')), TAG.SEQUENCE);
  assert.equal(r.peekTag(), TAG.INTEGER);
  assert.equal(r.optional(TAG.BOOLEAN), undefined);
  r.next(TAG.INTEGER);
  assert.equal(code(() => r.end()), 'der_malformed');
  assert.equal(code(() => r.next(TAG.INTEGER)), 'der_malformed');
});

test('ECDSA DER signature to P1363: fixed-width r||s, strict integers', () => {
  const der = h('3008 0202 00ff 0202 0102');
  const p = ecdsaDerToP1363(der, 32);
  assert.equal(p.length, 64);
  assert.equal(p[31], 0xff);
  assert.equal(p[62], 0x01);
  assert.equal(p[63], 0x02);
  assert.equal(code(() => ecdsaDerToP1363(h('3008 0202 00ff 0202 0102 00'), 32)), 'der_malformed');
  const tooBig = new Uint8Array([0x30, 0x26, 0x02, 0x21, 0x01, ...new Uint8Array(32), 0x02, 0x01, 0x01]);
  assert.equal(code(() => ecdsaDerToP1363(tooBig, 32)), 'pki_signature_invalid');
});

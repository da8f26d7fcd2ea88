// SEV-SNP ATTESTATION_REPORT layout: the real Milan report from go-sev-guest, the encoder, strictness
// (length, version, every reserved byte), TCB decoding per product, and 10,000 hostile inputs.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { AttestationError } from '../enclave/errors.js';
import {
  decodeTcb, encodeReport, encodeTcb, parseReport, productFromCpuid, REPORT_SIZE, tcbReservedZero, reportToJson,
} from '../enclave/sev-snp/report.js';
import { errorCode, sevFile } from './fixtures/attestation.js';
import { Rng } from './fixtures/tdx/fuzz.js';

const real = sevFile('attestation.bin');
const hex = (b: Uint8Array) => Buffer.from(b).toString('hex');

const code = errorCode;

test('the real Milan report parses to the values go-sev-guest documents', () => {
  assert.equal(real.length, 1184);
  const r = parseReport(real);
  assert.equal(r.version, 2);
  assert.equal(r.guestSvn, 0);
  assert.equal(r.policy, 0xb0000n); // SMT, must-be-one, DEBUG
  assert.equal(r.vmpl, 0);
  assert.equal(r.signatureAlgo, 1);
  assert.equal(r.signingKey, 0);
  assert.equal(r.authorKeyEn, false);
  assert.equal(r.platformInfo, 1n);
  assert.equal(hex(r.reportData.subarray(0, 6)), '010203040500');
  assert.ok(r.reportData.subarray(5).every((x) => x === 0));
  assert.equal(hex(r.measurement).slice(0, 16), 'b07af9620f3b839b');
  assert.equal(hex(r.chipId).slice(0, 16), '3ac3fe21e13fb099');
  assert.deepEqual(decodeTcb(r.reportedTcb, 'Milan'), { bootloader: 2, tee: 0, snp: 5, microcode: 68 });
  assert.deepEqual(decodeTcb(r.currentTcb, 'Milan'), { bootloader: 2, tee: 0, snp: 5, microcode: 68 });
  assert.equal(`${r.currentMajor}.${r.currentMinor}.${r.currentBuild}`, '1.49.3');
  assert.equal(r.cpuidFamId, undefined); // version 2 has no CPUID fields
  assert.ok(r.reportIdMa.every((x) => x === 0xff));
  assert.equal(r.signedBytes.length, 0x2a0);
  assert.equal(hex(r.signatureR).slice(0, 8), '4f8e8b5a');
  assert.equal(reportToJson(r, 'Milan').currentVersion, '1.49.3');
});

test('encodeReport(parseReport(x)) reproduces the real report byte for byte', () => {
  const r = parseReport(real);
  assert.deepEqual(encodeReport(r), real);
});

test('the parser copies: mutating the input afterwards changes nothing', () => {
  const b = real.slice();
  const r = parseReport(b);
  b.fill(0xaa);
  assert.equal(hex(r.reportData.subarray(0, 5)), '0102030405');
  assert.equal(r.signedBytes[0], 2);
  // Buffer#slice returns views; the parser must copy a Buffer too.
  const buf = Buffer.from(real);
  const rb = parseReport(buf);
  buf.fill(0xaa);
  assert.equal(hex(rb.measurement).slice(0, 16), 'b07af9620f3b839b');
  assert.equal(rb.signedBytes[0], 2);
});

test('wrong lengths are rejected', () => {
  for (const n of [0, 1, 0x2a0, 1183, 1185, 2048]) {
    const b = new Uint8Array(n);
    b.set(real.subarray(0, Math.min(n, real.length)));
    assert.equal(code(() => parseReport(b)), 'sev_report_length', `length ${n}`);
  }
});

test('versions 2 to 5 parse; any other version is refused, naming it', () => {
  for (const v of [0, 1, 6, 0x100, 0xffffffff]) {
    const b = real.slice();
    new DataView(b.buffer).setUint32(0, v >>> 0, true);
    assert.equal(code(() => parseReport(b)), 'sev_report_version', `version ${v}`);
    assert.throws(() => parseReport(b), new RegExp(`report version is ${v >>> 0}, expected one of 2, 3, 4, 5`));
  }
  for (const v of [3, 4, 5]) {
    const b = real.slice();
    b[0] = v;
    assert.equal(parseReport(b).version, v);
  }
});

/** Every byte in [s, e) of `base` set to 0x80 must be refused as reserved; returns how many were tried. */
function allReserved(base: Uint8Array, ranges: number[][], label: string): number {
  let n = 0;
  for (const [s, e] of ranges) {
    for (let i = s; i < e; i++) {
      const b = base.slice();
      b[i] = 0x80;
      assert.equal(code(() => parseReport(b)), 'sev_report_reserved', `${label} byte 0x${i.toString(16)}`);
      n++;
    }
  }
  return n;
}

test('every reserved byte of each version must be zero', () => {
  const reservedV2 = [[0x4c, 0x50], [0x188, 0x1a0], [0x1eb, 0x1ec], [0x1ef, 0x1f0], [0x1f8, 0x2a0], [0x330, 0x4a0]];
  assert.equal(allReserved(real, reservedV2, 'v2'), 4 + 24 + 1 + 1 + 168 + 368);
  // Version 3 defines CPUID family/model/stepping at 0x188..0x18A; the rest stays reserved.
  const v3 = real.slice();
  v3[0] = 3;
  v3[0x188] = 0x19;
  v3[0x189] = 0x01;
  v3[0x18a] = 0x01;
  const r = parseReport(v3);
  assert.deepEqual([r.cpuidFamId, r.cpuidModId, r.cpuidStep], [0x19, 1, 1]);
  assert.equal(r.launchMitVector, undefined);
  const reservedV3 = [[0x4c, 0x50], [0x18b, 0x1a0], [0x1eb, 0x1ec], [0x1ef, 0x1f0], [0x1f8, 0x2a0], [0x330, 0x4a0]];
  assert.equal(allReserved(v3, reservedV3, 'v3'), 4 + 21 + 1 + 1 + 168 + 368);
  // Versions 4 and 5 carry the mitigation vectors at 0x1F8 and 0x200; 0x208..0x29F stays reserved.
  for (const v of [4, 5]) {
    const b = v3.slice();
    b[0] = v;
    b.set([1, 2, 3, 4, 5, 6, 7, 8], 0x1f8);
    b.set([0xff, 0, 0, 0, 0, 0, 0, 0x80], 0x200);
    const m = parseReport(b);
    assert.equal(m.launchMitVector, 0x0807060504030201n);
    assert.equal(m.currentMitVector, 0x80000000000000ffn);
    assert.deepEqual(encodeReport(m), b, `version ${v} round trip`);
    const reserved = [[0x4c, 0x50], [0x18b, 0x1a0], [0x1eb, 0x1ec], [0x1ef, 0x1f0], [0x208, 0x2a0], [0x330, 0x4a0]];
    assert.equal(allReserved(b, reserved, `v${v}`), 4 + 21 + 1 + 1 + 152 + 368);
  }
  // signer-info bits 31:5 are reserved
  for (let bit = 5; bit < 32; bit++) {
    const b = real.slice();
    b[0x48 + (bit >> 3)] ^= 1 << (bit & 7);
    assert.equal(code(() => parseReport(b)), 'sev_report_reserved', `signer-info bit ${bit}`);
  }
});

test('signer-info fields decode; SIGNING_KEY 2..6 are reserved encodings', () => {
  for (const key of [2, 3, 4, 5, 6]) {
    const b = real.slice();
    b[0x48] = key << 2;
    assert.equal(code(() => parseReport(b)), 'sev_report_reserved', `SIGNING_KEY ${key}`);
  }
  const none = real.slice();
  none[0x48] = 7 << 2;
  assert.equal(parseReport(none).signingKey, 7);
  const b = real.slice();
  b[0x48] = 0b0000_0111; // AUTHOR_KEY_EN, MASK_CHIP_KEY, SIGNING_KEY=1 (VLEK)
  const r = parseReport(b);
  assert.equal(r.authorKeyEn, true);
  assert.equal(r.maskChipKey, true);
  assert.equal(r.signingKey, 1);
});

test('TCB_VERSION layout differs per product (Turin carries FMC)', () => {
  const raw = 0x4405000000000002n; // the real Milan TCB
  assert.deepEqual(decodeTcb(raw, 'Genoa'), { bootloader: 2, tee: 0, snp: 5, microcode: 68 });
  // Turin: [0] FMC [1] BL [2] TEE [3] SNP [7] UCODE
  const turin = 0xd500000004000301n;
  assert.deepEqual(decodeTcb(turin, 'Turin'), { fmc: 1, bootloader: 3, tee: 0, snp: 4, microcode: 0xd5 });
  assert.equal(encodeTcb({ fmc: 1, bootloader: 3, tee: 0, snp: 4, microcode: 0xd5 }, 'Turin'), turin);
  assert.equal(encodeTcb({ bootloader: 2, tee: 0, snp: 5, microcode: 68 }, 'Milan'), raw);
  assert.equal(tcbReservedZero(raw, 'Milan'), true);
  assert.equal(tcbReservedZero(raw | (1n << 16n), 'Milan'), false);
  assert.equal(tcbReservedZero(turin, 'Turin'), true);
  assert.equal(tcbReservedZero(turin | (1n << 40n), 'Turin'), false);
  // The same bytes mean different things per product: Milan reads byte 6 as SNP, Turin byte 3.
  assert.notDeepEqual(decodeTcb(raw, 'Turin'), decodeTcb(raw, 'Milan'));
});

test('product from CPUID', () => {
  assert.equal(productFromCpuid({ cpuidFamId: 0x19, cpuidModId: 0x01 }), 'Milan');
  assert.equal(productFromCpuid({ cpuidFamId: 0x19, cpuidModId: 0x11 }), 'Genoa');
  assert.equal(productFromCpuid({ cpuidFamId: 0x1a, cpuidModId: 0x02 }), 'Turin');
  assert.equal(productFromCpuid({ cpuidFamId: 0x17, cpuidModId: 0x31 }), undefined);
  assert.equal(productFromCpuid({ cpuidFamId: undefined, cpuidModId: undefined }), undefined);
});

// Deterministic xorshift PRNG so a failure is reproducible.
function rng(seed: number): () => number {
  const r = new Rng(seed);
  return () => r.next();
}

test('10,000 random and mutated inputs: a report or an AttestationError, nothing else', () => {
  const next = rng(0x5e7a11);
  const seen = new Map<string, number>();
  for (let i = 0; i < 10_000; i++) {
    let b: Uint8Array;
    const mode = i % 4;
    if (mode === 0) {
      b = new Uint8Array(next() % 1400);
      for (let j = 0; j < b.length; j++) b[j] = next() & 0xff;
    } else if (mode === 1) {
      b = real.slice(0, next() % (REPORT_SIZE + 64));
    } else {
      b = real.slice();
      const flips = 1 + (next() % (mode === 2 ? 3 : 40));
      for (let k = 0; k < flips; k++) b[next() % b.length] ^= 1 << (next() % 8);
      if (mode === 3 && next() % 2) b[0] = next() % 7; // exercise other versions
    }
    let c = 'accepted';
    try {
      const r = parseReport(b);
      assert.equal(r.signedBytes.length, 0x2a0);
    } catch (e) {
      assert.ok(e instanceof AttestationError, `input ${i}: ${String(e)}`);
      c = e.code;
    }
    seen.set(c, (seen.get(c) ?? 0) + 1);
  }
  // The mix reaches every outcome.
  for (const c of ['accepted', 'sev_report_length', 'sev_report_version', 'sev_report_reserved']) assert.ok(seen.get(c), c);
});

test('encodeReport refuses malformed fields', () => {
  const r = parseReport(real);
  assert.equal(code(() => encodeReport({ ...r, reportData: new Uint8Array(63) })), 'sev_report_encode');
  assert.equal(code(() => encodeReport({ ...r, version: 7 })), 'sev_report_encode');
});

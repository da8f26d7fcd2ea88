import { test } from 'node:test';
import assert from 'node:assert/strict';
import { AttestationError } from '../enclave/errors.js';
import { sevFile, tdxFile } from './fixtures/attestation.js';
import { parseCertificate, parseCertificates, parseCrl, parseDer, parsePem, children } from '../enclave/pki/index.js';
import { Rng, mutate } from './fixtures/tdx/fuzz.js';

// 'tdx/NAME' or 'sev-snp/NAME' of the attestation samples, found where every attestation test finds them.
const read = (p: string): Buffer => {
  const [dir, name] = p.split('/');
  return Buffer.from(dir === 'tdx' ? tdxFile(name!) : sevFile(name!));
};

/** Runs f on n inputs; anything thrown must be an AttestationError. Returns how many parsed cleanly. */
function fuzz(n: number, seed: number, seeds: Uint8Array[], f: (b: Uint8Array) => unknown): number {
  const rng = new Rng(seed);
  let ok = 0;
  for (let i = 0; i < n; i++) {
    const input = mutate(seeds[i % seeds.length], rng);
    try {
      f(input);
      ok++;
    } catch (e) {
      if (!(e instanceof AttestationError)) assert.fail(`case ${i} (seed ${seed}) threw ${String(e)}`);
      assert.equal(typeof e.code, 'string');
    }
  }
  return ok;
}

const certs = [
  ...parsePem(read('tdx/tcb_info_issuer_chain.pem').toString()),
  ...parsePem(read('sev-snp/ask_ark_milan.pem').toString()),
  new Uint8Array(read('sev-snp/vcek.testcer')),
];
const crls = [new Uint8Array(read('tdx/pckcrl')), new Uint8Array(read('tdx/rootcrl.der'))];

test('10,000 mutated/random inputs to the DER reader give AttestationError only', () => {
  const walk = (b: Uint8Array): void => {
    const stack = [parseDer(b)];
    while (stack.length) {
      const n = stack.pop()!;
      if (n.tag & 0x20) stack.push(...children(n));
    }
  };
  fuzz(10_000, 0xd1, [...certs, ...crls], walk);
});

test('10,000 mutated/random inputs to the X.509 parser give AttestationError only', () => {
  const parsed = fuzz(10_000, 0x509, certs, parseCertificate);
  assert.ok(parsed < 10_000); // most mutations must be caught
});

test('10,000 mutated/random inputs to the CRL parser give AttestationError only', () => {
  fuzz(10_000, 0xc71, crls, parseCrl);
});

test('2,000 mutated PEM texts give AttestationError only', () => {
  const pem = new Uint8Array(read('tdx/tcb_info_issuer_chain.pem'));
  fuzz(2_000, 0x9e3, [pem], (b) => parseCertificates(new TextDecoder().decode(b)));
});

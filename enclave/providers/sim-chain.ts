// The simulated AMD key hierarchy: ARK (self-signed) -> ASK -> VCEK, made in memory at start-up,
// shaped like AMD's key distribution service issues them: RSASSA-PSS (SHA-384, MGF1-SHA-384, salt 48)
// for ARK and ASK, an ECDSA P-384 VCEK carrying AMD's extensions (structVersion, productName, the
// TCB SPLs and hwID = CHIP_ID). Server-only (node:crypto); the verifiers never import this file.
//
// AMD's ARK and ASK are RSA-4096. We default to RSA-2048 so a simulated server (and each test that
// starts one) comes up in well under a second; `rsaBits: 4096` gives the real size. Nothing in the
// verifier depends on the modulus size.
import { generateKeyPairSync, randomBytes, sign, constants, type KeyObject } from 'node:crypto';
import { seq, set, int, oid, nul, bool, octets, bitString, utf8, printable, ia5, explicit, time } from './der-encode.js';
import { type SevProduct, type TcbParts } from '../sev-snp/report.js';

export const OID = {
  rsassaPss: '1.2.840.113549.1.1.10',
  sha384: '2.16.840.1.101.3.4.2.2',
  mgf1: '1.2.840.113549.1.1.8',
  keyUsage: '2.5.29.15',
  basicConstraints: '2.5.29.19',
  structVersion: '1.3.6.1.4.1.3704.1.1',
  productName: '1.3.6.1.4.1.3704.1.2',
  blSpl: '1.3.6.1.4.1.3704.1.3.1',
  teeSpl: '1.3.6.1.4.1.3704.1.3.2',
  snpSpl: '1.3.6.1.4.1.3704.1.3.3',
  spl4: '1.3.6.1.4.1.3704.1.3.4',
  spl5: '1.3.6.1.4.1.3704.1.3.5',
  spl6: '1.3.6.1.4.1.3704.1.3.6',
  spl7: '1.3.6.1.4.1.3704.1.3.7',
  ucodeSpl: '1.3.6.1.4.1.3704.1.3.8',
  fmcSpl: '1.3.6.1.4.1.3704.1.3.9',
  hwId: '1.3.6.1.4.1.3704.1.4',
  cn: '2.5.4.3',
  c: '2.5.4.6',
  l: '2.5.4.7',
  st: '2.5.4.8',
  o: '2.5.4.10',
  ou: '2.5.4.11',
} as const;

/** RSASSA-PSS-params exactly as AMD encodes them (hash, MGF1 hash, salt 48, explicit trailer 1). */
function pssAlgorithm(): Uint8Array {
  const sha384 = seq(oid(OID.sha384), nul());
  return seq(oid(OID.rsassaPss), seq(explicit(0, sha384), explicit(1, seq(oid(OID.mgf1), sha384)), explicit(2, int(48)), explicit(3, int(1))));
}

/** AMD's distinguished-name shape; OU marks these as simulated so no one mistakes them for AMD's. */
function amdName(cn: string): Uint8Array {
  const rdn = (type: string, value: Uint8Array) => set(seq(oid(type), value));
  return seq(
    rdn(OID.ou, utf8('sealed-inference SIMULATION')),
    rdn(OID.c, printable('US')),
    rdn(OID.l, utf8('Santa Clara')),
    rdn(OID.st, utf8('CA')),
    rdn(OID.o, utf8('Advanced Micro Devices')),
    rdn(OID.cn, utf8(cn)),
  );
}

function ext(id: string, critical: boolean, value: Uint8Array): Uint8Array {
  return critical ? seq(oid(id), bool(true), octets(value)) : seq(oid(id), octets(value));
}

function caExtensions(): Uint8Array {
  return explicit(3, seq(
    ext(OID.keyUsage, true, Uint8Array.of(0x03, 0x02, 0x01, 0x06)), // keyCertSign | cRLSign
    ext(OID.basicConstraints, true, seq(bool(true))),
  ));
}

function vcekExtensions(product: SevProduct, tcb: TcbParts, chipId: Uint8Array): Uint8Array {
  const items = [
    ext(OID.structVersion, false, int(0)),
    ext(OID.productName, false, ia5(`${product}-B0`)),
    ext(OID.blSpl, false, int(tcb.bootloader)),
    ext(OID.teeSpl, false, int(tcb.tee)),
    ext(OID.spl4, false, int(0)),
    ext(OID.spl5, false, int(0)),
    ext(OID.spl6, false, int(0)),
    ext(OID.spl7, false, int(0)),
    ext(OID.snpSpl, false, int(tcb.snp)),
    ext(OID.ucodeSpl, false, int(tcb.microcode)),
  ];
  if (product === 'Turin') items.push(ext(OID.fmcSpl, false, int(tcb.fmc ?? 0)));
  // hwID is raw CHIP_ID in extnValue, as AMD issues it; Turin VCEKs carry only its first 8 bytes.
  items.push(ext(OID.hwId, false, product === 'Turin' ? chipId.slice(0, 8) : chipId));
  return explicit(3, seq(...items));
}

function issue(tbsParts: Uint8Array[], issuerKey: KeyObject): Uint8Array {
  const tbs = seq(...tbsParts);
  const sig = sign('sha384', tbs, { key: issuerKey, padding: constants.RSA_PKCS1_PSS_PADDING, saltLength: 48 });
  return seq(tbs, pssAlgorithm(), bitString(new Uint8Array(sig)));
}

function spki(key: KeyObject): Uint8Array {
  return new Uint8Array(key.export({ type: 'spki', format: 'der' }));
}

export interface SimulatedChain {
  product: SevProduct;
  ark: Uint8Array;
  ask: Uint8Array;
  vcek: Uint8Array;
  /** The VCEK private key; never leaves the process. */
  vcekKey: KeyObject;
  chipId: Uint8Array;
  tcb: TcbParts;
}

export interface SimulatedChainOptions {
  product?: SevProduct;
  tcb?: TcbParts;
  chipId?: Uint8Array;
  rsaBits?: number;
  now?: Date;
}

export const DEFAULT_SIM_TCB: TcbParts = { bootloader: 10, tee: 0, snp: 23, microcode: 213 };

export function createSimulatedChain(opts: SimulatedChainOptions = {}): SimulatedChain {
  const product = opts.product ?? 'Milan';
  const tcb = opts.tcb ?? (product === 'Turin' ? { ...DEFAULT_SIM_TCB, fmc: 1 } : DEFAULT_SIM_TCB);
  const rsaBits = opts.rsaBits ?? 2048;
  const now = opts.now ?? new Date();
  let chipId = opts.chipId;
  if (!chipId) {
    chipId = new Uint8Array(64);
    chipId.set(randomBytes(product === 'Turin' ? 8 : 64));
  }
  const day = 86_400_000;
  const notBefore = new Date(Math.floor(now.getTime() / 1000) * 1000 - day);
  const validity = (years: number) => seq(time(notBefore), time(new Date(notBefore.getTime() + years * 365 * day)));
  const v3 = explicit(0, int(2));

  const ark = generateKeyPairSync('rsa', { modulusLength: rsaBits });
  const ask = generateKeyPairSync('rsa', { modulusLength: rsaBits });
  const vcek = generateKeyPairSync('ec', { namedCurve: 'P-384' });

  const arkName = amdName(`ARK-${product}`);
  const askName = amdName(`SEV-${product}`);
  const arkDer = issue([v3, int(0x10000), pssAlgorithm(), arkName, validity(25), arkName, spki(ark.publicKey), caExtensions()], ark.privateKey);
  const askDer = issue([v3, int(0x10001), pssAlgorithm(), arkName, validity(25), askName, spki(ask.publicKey), caExtensions()], ark.privateKey);
  const vcekDer = issue(
    [v3, int(0), pssAlgorithm(), askName, validity(7), amdName('SEV-VCEK'), spki(vcek.publicKey), vcekExtensions(product, tcb, chipId)],
    ask.privateKey,
  );
  return { product, ark: arkDer, ask: askDer, vcek: vcekDer, vcekKey: vcek.privateKey, chipId, tcb };
}

/** ECDSA P-384/SHA-384 over `msg`, as SEV-SNP stores it: r and s little-endian in 72-byte fields. */
export function signReportBody(key: KeyObject, msg: Uint8Array): { r: Uint8Array; s: Uint8Array } {
  const sig = new Uint8Array(sign('sha384', msg, { key, dsaEncoding: 'ieee-p1363' }));
  const le = (be: Uint8Array) => {
    const out = new Uint8Array(72);
    for (let i = 0; i < be.length; i++) out[i] = be[be.length - 1 - i];
    return out;
  };
  return { r: le(sig.subarray(0, 48)), s: le(sig.subarray(48, 96)) };
}

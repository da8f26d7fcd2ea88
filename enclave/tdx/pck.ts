// The Intel SGX extension of a PCK certificate (OID 1.2.840.113741.1.13.1): FMSPC, PCE-ID and the
// platform's TCB (16 SGX component SVNs, PCESVN, CPUSVN), which TCB level matching compares.
import { AttestationError } from '../errors.js';
import {
  type DerNode, DerReader, TAG, parseDer, readOctetString, readOid, readSmallInteger,
} from '../pki/der.js';
import type { Certificate } from '../pki/x509.js';

export const SGX_EXTENSION_OID = '1.2.840.113741.1.13.1';

export interface PckExtensions {
  ppid: Uint8Array;
  /** SGX TCB component SVNs 1..16 (index 0..15). */
  compSvn: number[];
  pceSvn: number;
  cpuSvn: Uint8Array;
  pceId: Uint8Array;
  fmspc: Uint8Array;
  /**
   * SGX Type (0 Standard, 1 Scalable, 2 Scalable with integrity), when the certificate carries it.
   * Optional, as in go-tdx-guest: nothing in quote verification depends on it, and PCK certificates
   * without the item exist.
   */
  sgxType?: number;
}

function fail(message: string): never {
  throw new AttestationError('tdx_pck_extension_invalid', message);
}

/** Reads and validates the SGX extension of a PCK leaf certificate. */
export function parsePckExtensions(cert: Certificate): PckExtensions {
  const ext = cert.extensions.get(SGX_EXTENSION_OID);
  if (!ext) fail('PCK certificate has no SGX extension');
  try {
    return parseSgxExtension(ext.value);
  } catch (e) {
    if (e instanceof AttestationError && e.code === 'tdx_pck_extension_invalid') throw e;
    return fail('PCK certificate SGX extension is malformed');
  }
}

function parseSgxExtension(value: Uint8Array): PckExtensions {
  const seen = new Map<string, DerNode>();
  const r = DerReader.of(parseDer(value), TAG.SEQUENCE);
  while (!r.done()) {
    const item = DerReader.of(r.next(), TAG.SEQUENCE);
    const oid = readOid(item.next());
    const v = item.next();
    item.end();
    if (seen.has(oid)) fail(`duplicate SGX extension item ${oid}`);
    seen.set(oid, v);
  }
  const get = (suffix: string): DerNode => {
    const n = seen.get(`${SGX_EXTENSION_OID}.${suffix}`);
    if (!n) fail(`SGX extension item .${suffix} missing`);
    return n;
  };
  const bytes = (suffix: string, len: number): Uint8Array => {
    const b = readOctetString(get(suffix));
    if (b.length !== len) fail(`SGX extension item .${suffix} has the wrong length`);
    return b;
  };

  const tcbItems = new Map<string, DerNode>();
  const tr = DerReader.of(get('2'), TAG.SEQUENCE);
  while (!tr.done()) {
    const item = DerReader.of(tr.next(), TAG.SEQUENCE);
    const oid = readOid(item.next());
    const v = item.next();
    item.end();
    if (tcbItems.has(oid)) fail(`duplicate SGX TCB item ${oid}`);
    tcbItems.set(oid, v);
  }
  const tcb = (n: number): DerNode => {
    const v = tcbItems.get(`${SGX_EXTENSION_OID}.2.${n}`);
    if (!v) fail(`SGX TCB item ${n} missing`);
    return v;
  };
  const compSvn: number[] = [];
  for (let i = 1; i <= 16; i++) {
    const svn = readSmallInteger(tcb(i));
    if (svn > 255) fail('SGX TCB component SVN out of range');
    compSvn.push(svn);
  }
  const pceSvn = readSmallInteger(tcb(17));
  if (pceSvn > 0xffff) fail('PCESVN out of range');
  const cpuSvn = readOctetString(tcb(18));
  if (cpuSvn.length !== 16) fail('CPUSVN has the wrong length');
  const out: PckExtensions = { ppid: bytes('1', 16), compSvn, pceSvn, cpuSvn, pceId: bytes('3', 2), fmspc: bytes('4', 6) };
  // Absent is fine; present but malformed is not: a malformed item says the certificate is not what
  // Intel issues.
  const sgxTypeNode = seen.get(`${SGX_EXTENSION_OID}.5`);
  if (sgxTypeNode) {
    if (sgxTypeNode.tag !== TAG.ENUMERATED || sgxTypeNode.value.length !== 1) fail('SGX type is malformed');
    out.sgxType = sgxTypeNode.value[0];
  }
  return out;
}

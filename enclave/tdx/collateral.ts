// Intel PCS collateral: TCB info (v3) and QE identity (v2). Intel signs the exact bytes of the
// `tcbInfo` / `enclaveIdentity` member as served, so the signature is checked over the raw span of
// that member in the body, never over a re-serialisation. Known fields are type-checked strictly;
// fields Intel may add later are ignored (they are signed, so they cannot be injected).
import { AttestationError } from '../errors.js';
import { parseCertificates, type Certificate } from '../pki/x509.js';
import type { Crl } from '../pki/crl.js';
import { verifyChain, verifyEcdsaP1363 } from '../pki/verify.js';

export type TcbStatus =
  | 'UpToDate' | 'SWHardeningNeeded' | 'ConfigurationNeeded' | 'ConfigurationAndSWHardeningNeeded'
  | 'OutOfDate' | 'OutOfDateConfigurationNeeded' | 'Revoked'
  // Verdicts only (never in a TCB level): Intel's TD relaunch check for TD 1.5 reports.
  | 'TDRelaunchAdvised' | 'TDRelaunchAdvisedConfigurationNeeded';

export const TCB_LEVEL_STATUSES: readonly TcbStatus[] = [
  'UpToDate', 'SWHardeningNeeded', 'ConfigurationNeeded', 'ConfigurationAndSWHardeningNeeded',
  'OutOfDate', 'OutOfDateConfigurationNeeded', 'Revoked',
];
/** Every status a verification can end in (what `acceptedTcbStatuses` may list). */
export const TCB_VERDICT_STATUSES: readonly TcbStatus[] = [...TCB_LEVEL_STATUSES, 'TDRelaunchAdvised', 'TDRelaunchAdvisedConfigurationNeeded'];
const ISV_STATUSES: readonly TcbStatus[] = ['UpToDate', 'OutOfDate', 'Revoked'];

export interface TcbLevel {
  sgxComponents: number[];
  pceSvn: number;
  tdxComponents: number[];
  tcbDate: string;
  status: TcbStatus;
  advisoryIds: string[];
}

export interface IsvTcbLevel {
  isvSvn: number;
  tcbDate: string;
  status: TcbStatus;
  advisoryIds: string[];
}

export interface TdxModuleIdentity {
  id: string;
  mrSigner: Uint8Array;
  attributes: Uint8Array;
  attributesMask: Uint8Array;
  tcbLevels: IsvTcbLevel[];
}

export interface TcbInfo {
  id: string;
  version: number;
  issueDate: Date;
  nextUpdate: Date;
  fmspc: Uint8Array;
  pceId: Uint8Array;
  tcbType: number;
  tcbEvaluationDataNumber: number;
  tdxModule?: { mrSigner: Uint8Array; attributes: Uint8Array; attributesMask: Uint8Array };
  tdxModuleIdentities?: TdxModuleIdentity[];
  tcbLevels: TcbLevel[];
}

export interface QeIdentity {
  id: string;
  version: number;
  issueDate: Date;
  nextUpdate: Date;
  tcbEvaluationDataNumber: number;
  miscSelect: Uint8Array;
  miscSelectMask: Uint8Array;
  attributes: Uint8Array;
  attributesMask: Uint8Array;
  mrSigner: Uint8Array;
  isvProdId: number;
  tcbLevels: IsvTcbLevel[];
}

export interface SignedCollateral<T> {
  value: T;
  /** The exact signed bytes (the member's raw JSON). */
  signedBytes: Uint8Array;
  /** ECDSA P-256 r||s. */
  signature: Uint8Array;
}

// ---- a tiny JSON scanner: finds the raw byte span of each top-level member ----

function scanFail(code: string): never {
  throw new AttestationError(code, 'collateral is not the JSON body Intel serves');
}

/** Top-level members of a JSON object as raw byte spans (ASCII structure scanned directly on UTF-8). */
export function topLevelMembers(bytes: Uint8Array, code: string): Map<string, Uint8Array> {
  let p = 0;
  const ws = (): void => {
    while (p < bytes.length && (bytes[p] === 0x20 || bytes[p] === 0x0a || bytes[p] === 0x0d || bytes[p] === 0x09)) p++;
  };
  const str = (): void => {
    if (bytes[p] !== 0x22) scanFail(code);
    p++;
    while (p < bytes.length && bytes[p] !== 0x22) p += bytes[p] === 0x5c ? 2 : 1;
    if (p >= bytes.length) scanFail(code);
    p++;
  };
  const value = (depth: number): void => {
    if (depth > 64) scanFail(code);
    const b = bytes[p];
    if (b === 0x22) return str();
    if (b === 0x7b || b === 0x5b) {
      const close = b === 0x7b ? 0x7d : 0x5d;
      p++;
      ws();
      if (bytes[p] === close) {
        p++;
        return;
      }
      for (;;) {
        if (b === 0x7b) {
          str();
          ws();
          if (bytes[p] !== 0x3a) scanFail(code);
          p++;
          ws();
        }
        value(depth + 1);
        ws();
        if (bytes[p] === 0x2c) {
          p++;
          ws();
          continue;
        }
        if (bytes[p] === close) {
          p++;
          return;
        }
        scanFail(code);
      }
    }
    const start = p;
    while (p < bytes.length && /[-+.0-9a-zA-Z]/.test(String.fromCharCode(bytes[p]))) p++;
    if (p === start) scanFail(code);
  };

  const members = new Map<string, Uint8Array>();
  ws();
  if (bytes[p] !== 0x7b) scanFail(code);
  p++;
  ws();
  for (;;) {
    const ks = p;
    str();
    let key: string;
    try {
      key = JSON.parse(new TextDecoder('utf-8', { fatal: true }).decode(bytes.subarray(ks, p))) as string;
    } catch {
      return scanFail(code);
    }
    ws();
    if (bytes[p] !== 0x3a) scanFail(code);
    p++;
    ws();
    const vs = p;
    value(0);
    if (members.has(key)) scanFail(code);
    members.set(key, bytes.subarray(vs, p));
    ws();
    if (bytes[p] === 0x2c) {
      p++;
      ws();
      continue;
    }
    if (bytes[p] === 0x7d) {
      p++;
      break;
    }
    scanFail(code);
  }
  ws();
  if (p !== bytes.length) scanFail(code);
  return members;
}

// ---- strict field readers ----

type Obj = Record<string, unknown>;

function fieldFail(code: string, field: string): never {
  throw new AttestationError(code, `collateral field '${field}' is missing or invalid`);
}

function obj(v: unknown, code: string, field: string): Obj {
  if (typeof v !== 'object' || v === null || Array.isArray(v)) fieldFail(code, field);
  return v as Obj;
}
function int(o: Obj, k: string, code: string, max = 0xffffffff): number {
  const v = o[k];
  if (typeof v !== 'number' || !Number.isInteger(v) || v < 0 || v > max) fieldFail(code, k);
  return v;
}
function str(o: Obj, k: string, code: string): string {
  const v = o[k];
  if (typeof v !== 'string') fieldFail(code, k);
  return v;
}
function hex(o: Obj, k: string, bytes: number, code: string): Uint8Array {
  const v = str(o, k, code);
  if (v.length !== bytes * 2 || !/^[0-9a-fA-F]*$/.test(v)) fieldFail(code, k);
  const out = new Uint8Array(bytes);
  for (let i = 0; i < bytes; i++) out[i] = parseInt(v.slice(2 * i, 2 * i + 2), 16);
  return out;
}
function date(o: Obj, k: string, code: string): Date {
  const v = str(o, k, code);
  if (!/^\d{4}-\d{2}-\d{2}T\d{2}:\d{2}:\d{2}(\.\d{1,3})?Z$/.test(v)) fieldFail(code, k);
  const d = new Date(v);
  if (Number.isNaN(d.getTime())) fieldFail(code, k);
  return d;
}
function arr(o: Obj, k: string, code: string): unknown[] {
  const v = o[k];
  if (!Array.isArray(v)) fieldFail(code, k);
  return v;
}
function status(o: Obj, allowed: readonly TcbStatus[], code: string): TcbStatus {
  const v = str(o, 'tcbStatus', code);
  if (!(allowed as readonly string[]).includes(v)) fieldFail(code, 'tcbStatus');
  return v as TcbStatus;
}
function advisories(o: Obj, code: string): string[] {
  if (o.advisoryIDs === undefined) return [];
  const list = arr(o, 'advisoryIDs', code);
  return list.map((a) => {
    if (typeof a !== 'string') fieldFail(code, 'advisoryIDs');
    return a;
  });
}
function components(o: Obj, k: string, code: string): number[] {
  const list = arr(o, k, code);
  if (list.length !== 16) fieldFail(code, k);
  return list.map((c) => int(obj(c, code, k), 'svn', code, 255));
}
function isvLevels(o: Obj, code: string): IsvTcbLevel[] {
  const levels = arr(o, 'tcbLevels', code).map((l) => {
    const lo = obj(l, code, 'tcbLevels');
    const tcb = obj(lo.tcb, code, 'tcb');
    return { isvSvn: int(tcb, 'isvsvn', code, 0xffff), tcbDate: str(lo, 'tcbDate', code), status: status(lo, ISV_STATUSES, code), advisoryIds: advisories(lo, code) };
  });
  if (levels.length === 0) fieldFail(code, 'tcbLevels');
  return levels;
}

function parseSignedBody(body: Uint8Array | string, member: string, code: string): { json: Obj; signedBytes: Uint8Array; signature: Uint8Array } {
  const bytes = typeof body === 'string' ? new TextEncoder().encode(body) : body;
  const members = topLevelMembers(bytes, code);
  const signedBytes = members.get(member);
  const sig = members.get('signature');
  if (!signedBytes || !sig || members.size !== 2) scanFail(code);
  let json: Obj;
  let sigHex: unknown;
  try {
    const dec = new TextDecoder('utf-8', { fatal: true });
    json = obj(JSON.parse(dec.decode(signedBytes)), code, member);
    sigHex = JSON.parse(dec.decode(sig));
  } catch (e) {
    if (e instanceof AttestationError) throw e;
    return scanFail(code);
  }
  const signature = hex({ signature: sigHex }, 'signature', 64, code);
  return { json, signedBytes, signature };
}

/** Parses the TCB info JSON body (`{"tcbInfo":{...},"signature":"..."}`). Signature not yet checked. */
export function parseTcbInfo(body: Uint8Array | string): SignedCollateral<TcbInfo> {
  const code = 'tdx_tcb_info_malformed';
  const { json: t, signedBytes, signature } = parseSignedBody(body, 'tcbInfo', code);
  const value: TcbInfo = {
    id: str(t, 'id', code),
    version: int(t, 'version', code),
    issueDate: date(t, 'issueDate', code),
    nextUpdate: date(t, 'nextUpdate', code),
    fmspc: hex(t, 'fmspc', 6, code),
    pceId: hex(t, 'pceId', 2, code),
    tcbType: int(t, 'tcbType', code),
    tcbEvaluationDataNumber: int(t, 'tcbEvaluationDataNumber', code),
    tcbLevels: arr(t, 'tcbLevels', code).map((l) => {
      const lo = obj(l, code, 'tcbLevels');
      const tcb = obj(lo.tcb, code, 'tcb');
      return {
        sgxComponents: components(tcb, 'sgxtcbcomponents', code),
        pceSvn: int(tcb, 'pcesvn', code, 0xffff),
        tdxComponents: tcb.tdxtcbcomponents === undefined ? [] : components(tcb, 'tdxtcbcomponents', code),
        tcbDate: str(lo, 'tcbDate', code),
        status: status(lo, TCB_LEVEL_STATUSES, code),
        advisoryIds: advisories(lo, code),
      };
    }),
  };
  if (value.tcbLevels.length === 0) fieldFail(code, 'tcbLevels');
  if (t.tdxModule !== undefined) {
    const m = obj(t.tdxModule, code, 'tdxModule');
    value.tdxModule = { mrSigner: hex(m, 'mrsigner', 48, code), attributes: hex(m, 'attributes', 8, code), attributesMask: hex(m, 'attributesMask', 8, code) };
  }
  if (t.tdxModuleIdentities !== undefined) {
    value.tdxModuleIdentities = arr(t, 'tdxModuleIdentities', code).map((x) => {
      const m = obj(x, code, 'tdxModuleIdentities');
      return {
        id: str(m, 'id', code), mrSigner: hex(m, 'mrsigner', 48, code), attributes: hex(m, 'attributes', 8, code),
        attributesMask: hex(m, 'attributesMask', 8, code), tcbLevels: isvLevels(m, code),
      };
    });
  }
  return { value, signedBytes, signature };
}

/** Parses the QE identity JSON body (`{"enclaveIdentity":{...},"signature":"..."}`). Signature not yet checked. */
export function parseQeIdentity(body: Uint8Array | string): SignedCollateral<QeIdentity> {
  const code = 'tdx_qe_identity_malformed';
  const { json: e, signedBytes, signature } = parseSignedBody(body, 'enclaveIdentity', code);
  const value: QeIdentity = {
    id: str(e, 'id', code),
    version: int(e, 'version', code),
    issueDate: date(e, 'issueDate', code),
    nextUpdate: date(e, 'nextUpdate', code),
    tcbEvaluationDataNumber: int(e, 'tcbEvaluationDataNumber', code),
    miscSelect: hex(e, 'miscselect', 4, code),
    miscSelectMask: hex(e, 'miscselectMask', 4, code),
    attributes: hex(e, 'attributes', 16, code),
    attributesMask: hex(e, 'attributesMask', 16, code),
    mrSigner: hex(e, 'mrsigner', 32, code),
    isvProdId: int(e, 'isvprodid', code, 0xffff),
    tcbLevels: isvLevels(e, code),
  };
  return { value, signedBytes, signature };
}

export interface CollateralCheck {
  at: Date;
  intelRoot: Certificate;
  /** The issuer chain PEM/DER Intel sends beside the body (TCB Signing cert, then root). */
  issuerChain: Certificate[];
  rootCrl: Crl;
  /** Error-code stem: 'tdx_tcb_info' or 'tdx_qe_identity'. */
  stem: 'tdx_tcb_info' | 'tdx_qe_identity';
}

/**
 * Verifies signed collateral: its issuer chain to the pinned Intel root (with the root CRL), the
 * ECDSA P-256 signature over the raw member bytes by the chain's leaf, and issueDate <= at <= nextUpdate.
 */
export async function verifyCollateral<T extends { issueDate: Date; nextUpdate: Date }>(
  c: SignedCollateral<T>, opts: CollateralCheck,
): Promise<void> {
  const chain = await verifyChain(opts.issuerChain, {
    at: opts.at, trustedRoot: opts.intelRoot, crls: [opts.rootCrl], requireCrls: true, codePrefix: `${opts.stem}_chain`,
  });
  const signer = chain[0];
  if (signer.publicKey.type !== 'ec' || signer.publicKey.curve !== 'P-256') {
    throw new AttestationError(`${opts.stem}_signature_invalid`, 'collateral signer key is not ECDSA P-256');
  }
  if (!/Intel SGX TCB Signing/.test(signer.subject.text)) {
    throw new AttestationError(`${opts.stem}_chain_untrusted_signer`, 'collateral is not signed by the Intel SGX TCB Signing key');
  }
  if (!(await verifyEcdsaP1363(signer.publicKey.key, 'P-256', 'SHA-256', c.signature, c.signedBytes))) {
    throw new AttestationError(`${opts.stem}_signature_invalid`, 'collateral signature is invalid');
  }
  const t = opts.at.getTime();
  if (t < c.value.issueDate.getTime()) throw new AttestationError(`${opts.stem}_not_yet_valid`, `collateral is issued ${c.value.issueDate.toISOString()}, after the trusted time ${opts.at.toISOString()}`);
  if (t > c.value.nextUpdate.getTime()) throw new AttestationError(`${opts.stem}_expired`, `collateral is valid until ${c.value.nextUpdate.toISOString()}, before the trusted time ${opts.at.toISOString()}`);
}

/** Issuer chain from PEM text or bytes (Intel sends PEM; DER single certificates are accepted too). */
export function parseIssuerChain(input: Uint8Array | string, stem: string): Certificate[] {
  try {
    const list = parseCertificates(input);
    if (list.length === 0) throw new AttestationError(`${stem}_chain_malformed`, 'empty issuer chain');
    return list;
  } catch (e) {
    if (e instanceof AttestationError && !e.code.startsWith(stem)) throw new AttestationError(`${stem}_chain_malformed`, e.message);
    throw e;
  }
}

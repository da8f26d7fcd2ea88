// The full Intel TDX (DCAP) verification of one quote, in the order Intel's QVL applies it, failing
// closed at the first problem with an AttestationError whose code names it:
//   quote layout -> QE vendor -> PCK chain to the pinned Intel SGX Root CA, with PCK and root CRLs ->
//   QE report signed by the PCK key -> QE report data binds the attestation key -> quote signed by
//   the attestation key -> TCB info and QE identity (signatures, chains, validity) -> QE identity ->
//   TCB level (SGX, TDX, TDX module) -> accepted status -> TD strict defaults -> policy pins.
import { concatBytes as concat } from '../encoding.js';
import { AttestationError } from '../errors.js';
import { parseCertificates, toHex, type Certificate } from '../pki/x509.js';
import { parseCrlInput, type Crl } from '../pki/crl.js';
import { bytesEqual, verifyChain, verifyEcdsaP1363, verifySignature } from '../pki/verify.js';
import { INTEL_SGX_ROOT_CA_PEM } from '../roots/intel-sgx-root.js';
import {
  parseIssuerChain, parseQeIdentity, parseTcbInfo, verifyCollateral, type TcbStatus,
} from './collateral.js';
import { parsePckExtensions } from './pck.js';
import { checkTdDefaults, checkTdxPins, parseTdxPolicy, type TdxPolicy } from './policy.js';
import { INTEL_QE_VENDOR_ID, parseQuote, type TdxQuote } from './quote.js';
import { evaluateQeIdentity, evaluateTdxTcb } from './tcb.js';

type Input = Uint8Array | string;

/** Collateral as Intel's PCS serves it. Chains: PEM (or one DER cert); CRLs: DER, PEM or hex. */
export interface TdxCollateral {
  tcbInfo?: Input;
  tcbInfoIssuerChain?: Input;
  qeIdentity?: Input;
  qeIdentityIssuerChain?: Input;
  pckCrl?: Input;
  pckCrlIssuerChain?: Input;
  rootCrl?: Input;
}

export interface VerifyTdxOptions {
  collateral?: TdxCollateral;
  /** The trusted time for every validity check. */
  at: Date;
  /** A parsed TdxPolicy or the TDX keys of a policy document; absent = defaults. */
  policy?: TdxPolicy | Record<string, unknown>;
  /** Replaces the embedded Intel SGX Root CA (tests). */
  intelRoot?: Input | Certificate;
}

export interface TdxFields {
  teeTcbSvn: string;
  mrSeam: string;
  mrSignerSeam: string;
  seamAttributes: string;
  tdAttributes: string;
  xfam: string;
  mrTd: string;
  mrConfigId: string;
  mrOwner: string;
  mrOwnerConfig: string;
  rtmr0: string;
  rtmr1: string;
  rtmr2: string;
  rtmr3: string;
  reportData: string;
  teeTcbSvn2?: string;
  mrServiceTd?: string;
}

export interface TdxVerified {
  platform: 'tdx';
  quoteVersion: 4 | 5;
  bodyType: 'TD10' | 'TD15';
  qeVendorId: string;
  fields: TdxFields;
  /** REPORTDATA as bytes, for binding checks. */
  reportData: Uint8Array;
  fmspc: string;
  pceId: string;
  pckSubject: string;
  qe: { isvSvn: number; isvProdId: number; mrSigner: string; status?: TcbStatus };
  /** Whether TCB info and QE identity were evaluated (policy `tcbEvaluation`). */
  tcbEvaluated: boolean;
  tcbStatus?: TcbStatus;
  tdxModuleStatus?: TcbStatus;
  advisoryIds: string[];
  tcbEvaluationDataNumber?: number;
  crlsChecked: boolean;
  /** How many bytes followed the quote's declared end (ignored: neither read nor signed). */
  trailingBytes: number;
  /** Human-readable names of every check that passed, in order. */
  checks: string[];
}

function err(code: string, message: string): never {
  throw new AttestationError(code, message);
}

/** Re-labels an error from a shared parser with the code of the input it came from. */
function relabel<T>(code: string, what: string, f: () => T): T {
  try {
    return f();
  } catch (e) {
    if (e instanceof AttestationError) throw new AttestationError(code, `${what}: ${e.message}`);
    throw e;
  }
}

let embeddedRoot: Certificate | undefined;
function intelRoot(input: VerifyTdxOptions['intelRoot']): Certificate {
  if (input === undefined) return (embeddedRoot ??= parseCertificates(INTEL_SGX_ROOT_CA_PEM)[0]);
  if (typeof input === 'object' && !(input instanceof Uint8Array)) return input;
  const list = relabel('tdx_intel_root_malformed', 'Intel root', () => parseCertificates(input));
  if (list.length !== 1) err('tdx_intel_root_malformed', 'Intel root must be exactly one certificate');
  return list[0];
}

/** The TD report fields of a parsed quote, as hex (for display and JSON output). */
export function quoteFields(q: TdxQuote): TdxFields {
  const b = q.body;
  const f: TdxFields = {
    teeTcbSvn: toHex(b.teeTcbSvn), mrSeam: toHex(b.mrSeam), mrSignerSeam: toHex(b.mrSignerSeam),
    seamAttributes: toHex(b.seamAttributes), tdAttributes: toHex(b.tdAttributes), xfam: toHex(b.xfam),
    mrTd: toHex(b.mrTd), mrConfigId: toHex(b.mrConfigId), mrOwner: toHex(b.mrOwner), mrOwnerConfig: toHex(b.mrOwnerConfig),
    rtmr0: toHex(b.rtmr[0]), rtmr1: toHex(b.rtmr[1]), rtmr2: toHex(b.rtmr[2]), rtmr3: toHex(b.rtmr[3]),
    reportData: toHex(b.reportData),
  };
  if (b.teeTcbSvn2) f.teeTcbSvn2 = toHex(b.teeTcbSvn2);
  if (b.mrServiceTd) f.mrServiceTd = toHex(b.mrServiceTd);
  return f;
}

/** Checks a CRL is issued (signed) by `issuer` and current at `at`. */
async function checkCrl(crl: Crl, issuer: Certificate, at: Date, stem: string): Promise<void> {
  if (!bytesEqual(crl.issuer.raw, issuer.subject.raw)) err(`${stem}_issuer_mismatch`, `CRL issuer is not ${issuer.subject.text}`);
  if (!(await verifySignature(issuer.publicKey, crl.signatureAlgorithm, crl.signature, crl.tbs).catch(() => false))) {
    err(`${stem}_signature_invalid`, 'CRL signature is invalid');
  }
  if (at.getTime() < crl.thisUpdate.getTime()) err(`${stem}_not_yet_valid`, `CRL thisUpdate is ${crl.thisUpdate.toISOString()}, after the trusted time ${at.toISOString()}`);
  if (!crl.nextUpdate || at.getTime() > crl.nextUpdate.getTime()) err(`${stem}_expired`, `CRL nextUpdate is ${crl.nextUpdate?.toISOString() ?? 'absent'}, before the trusted time ${at.toISOString()}`);
}

async function sha256(data: Uint8Array): Promise<Uint8Array> {
  const copy = new Uint8Array(data.length);
  copy.set(data);
  return new Uint8Array(await globalThis.crypto.subtle.digest('SHA-256', copy.buffer));
}

function statusCode(s: TcbStatus): string {
  return 'tdx_tcb_' + s.replace(/SW/g, 'Sw').replace(/^TD/, 'Td').replace(/([a-z])([A-Z])/g, '$1_$2').toLowerCase();
}

/** Verifies a TDX quote end to end. Resolves to the verified fields; throws AttestationError otherwise. */
export async function verifyTdxQuote(quoteBytes: Uint8Array, opts: VerifyTdxOptions): Promise<TdxVerified> {
  if (!(opts.at instanceof Date) || Number.isNaN(opts.at.getTime())) err('tdx_bad_time', 'a trusted time is required');
  const at = opts.at;
  const policy = parseTdxPolicy(opts.policy);
  const checks: string[] = [];
  const col = opts.collateral ?? {};

  // 1. Layout.
  const q = parseQuote(quoteBytes);
  checks.push(`quote v${q.header.version} ${q.body.type} layout` + (q.trailing.length ? ` (${q.trailing.length} bytes after its end ignored)` : ''));
  const qeVendorId = toHex(q.header.qeVendorId);
  if (!policy.qeVendorId && qeVendorId !== INTEL_QE_VENDOR_ID) {
    err('tdx_qe_vendor_mismatch', `QE vendor id is ${qeVendorId}, expected Intel's ${INTEL_QE_VENDOR_ID}`);
  }

  // 2. Revocation lists (required with TCB evaluation; applied whenever given).
  const root = intelRoot(opts.intelRoot);
  const rootCrl = col.rootCrl === undefined ? undefined : relabel('tdx_root_crl_malformed', 'root CRL', () => parseCrlInput(col.rootCrl!));
  const pckCrl = col.pckCrl === undefined ? undefined : relabel('tdx_pck_crl_malformed', 'PCK CRL', () => parseCrlInput(col.pckCrl!));
  if (policy.tcbEvaluation) {
    if (!rootCrl) err('tdx_root_crl_missing', 'the root CA CRL is required for TCB evaluation');
    if (!pckCrl) err('tdx_pck_crl_missing', 'the PCK CRL is required for TCB evaluation');
  }
  if (rootCrl) {
    await checkCrl(rootCrl, root, at, 'tdx_root_crl');
    checks.push('root CRL signed by the Intel SGX Root CA and current');
  }

  // 3. PCK certificate chain to the pinned root.
  const pckChain = relabel('tdx_pck_chain_malformed', 'PCK certificate chain', () => parseCertificates(q.pckChainPem));
  // As Intel's QVL: the quote carries the whole chain, root included (then compared to the pinned root).
  if (pckChain.length !== 3) err('tdx_pck_chain_malformed', 'PCK chain must be leaf, CA, root');
  const pckLeaf = pckChain[0];
  if (!/SGX PCK Certificate/.test(pckLeaf.subject.text)) err('tdx_pck_chain_malformed', 'leaf is not an SGX PCK certificate');
  if (pckCrl) {
    let crlIssuer = pckChain[1];
    if (col.pckCrlIssuerChain !== undefined) {
      const chain = parseIssuerChain(col.pckCrlIssuerChain, 'tdx_pck_crl');
      const full = await verifyChain(chain, {
        at, trustedRoot: root, crls: rootCrl ? [rootCrl] : [], requireCrls: !!rootCrl, codePrefix: 'tdx_pck_crl_chain',
      });
      crlIssuer = full[0];
    }
    await checkCrl(pckCrl, crlIssuer, at, 'tdx_pck_crl');
    if (!bytesEqual(pckCrl.issuer.raw, pckLeaf.issuer.raw)) err('tdx_pck_crl_issuer_mismatch', 'the PCK CRL is not from the PCK certificate\'s issuer');
    checks.push('PCK CRL signed by the PCK CA and current');
  }
  const crls = [pckCrl, rootCrl].filter((c): c is Crl => c !== undefined);
  await verifyChain(pckChain, { at, trustedRoot: root, crls, requireCrls: policy.tcbEvaluation, codePrefix: 'tdx_pck_chain' });
  checks.push('PCK chain to the pinned Intel SGX Root CA' + (crls.length ? ', not revoked' : ''));
  if (pckLeaf.publicKey.type !== 'ec' || pckLeaf.publicKey.curve !== 'P-256') err('tdx_pck_chain_malformed', 'PCK key is not ECDSA P-256');
  const pck = parsePckExtensions(pckLeaf);

  // 4. QE report, signed by the PCK key, binding the attestation key.
  const qeOk = await verifyEcdsaP1363(pckLeaf.publicKey.key, 'P-256', 'SHA-256', q.qeReportSignature, q.qeReport.raw).catch(() => false);
  if (!qeOk) err('tdx_qe_report_signature_invalid', 'the QE report is not signed by the PCK key');
  checks.push('QE report signed by the PCK key');
  const expected = await sha256(concat(q.attestationKey, q.qeAuthData));
  const rd = q.qeReport.reportData;
  if (!bytesEqual(rd.subarray(0, 32), expected) || rd.subarray(32).some((b) => b !== 0)) {
    err('tdx_qe_report_data_mismatch', 'QE report data does not bind the attestation key and QE auth data');
  }
  checks.push('QE report data = SHA-256(attestation key || QE auth data)');

  // 5. The quote itself, signed by the attestation key.
  // An attestation key that is not a curve point cannot have signed anything: same rejection.
  const quoteOk = await verifyEcdsaP1363(q.attestationKey, 'P-256', 'SHA-256', q.signature, q.signedData).catch(() => false);
  if (!quoteOk) err('tdx_quote_signature_invalid', 'the quote is not signed by the attestation key');
  checks.push('quote signed by the attestation key');

  // 6. Collateral and TCB evaluation.
  const result: TdxVerified = {
    platform: 'tdx', quoteVersion: q.header.version, bodyType: q.body.type, qeVendorId, fields: quoteFields(q),
    reportData: q.body.reportData.slice(), fmspc: toHex(pck.fmspc), pceId: toHex(pck.pceId), pckSubject: pckLeaf.subject.text,
    qe: { isvSvn: q.qeReport.isvSvn, isvProdId: q.qeReport.isvProdId, mrSigner: toHex(q.qeReport.mrSigner) },
    tcbEvaluated: false, advisoryIds: [], crlsChecked: crls.length === 2, trailingBytes: q.trailing.length, checks,
  };
  if (policy.tcbEvaluation) {
    if (col.tcbInfo === undefined || col.tcbInfoIssuerChain === undefined) err('tdx_tcb_info_missing', 'TCB info and its issuer chain are required');
    if (col.qeIdentity === undefined || col.qeIdentityIssuerChain === undefined) err('tdx_qe_identity_missing', 'QE identity and its issuer chain are required');
    const tcbInfo = parseTcbInfo(col.tcbInfo);
    await verifyCollateral(tcbInfo, {
      at, intelRoot: root, rootCrl: rootCrl!, stem: 'tdx_tcb_info', issuerChain: parseIssuerChain(col.tcbInfoIssuerChain, 'tdx_tcb_info'),
    });
    checks.push('TCB info signed by Intel SGX TCB Signing, chain to the root, current');
    const qeIdentity = parseQeIdentity(col.qeIdentity);
    await verifyCollateral(qeIdentity, {
      at, intelRoot: root, rootCrl: rootCrl!, stem: 'tdx_qe_identity', issuerChain: parseIssuerChain(col.qeIdentityIssuerChain, 'tdx_qe_identity'),
    });
    checks.push('QE identity signed by Intel SGX TCB Signing, chain to the root, current');
    if (policy.minTcbEvaluationDataNumber !== undefined
      && Math.min(tcbInfo.value.tcbEvaluationDataNumber, qeIdentity.value.tcbEvaluationDataNumber) < policy.minTcbEvaluationDataNumber) {
      err('tdx_tcb_evaluation_data_number_too_low', `collateral TCB evaluation data number is ${Math.min(tcbInfo.value.tcbEvaluationDataNumber, qeIdentity.value.tcbEvaluationDataNumber)}, expected at least ${policy.minTcbEvaluationDataNumber}`);
    }
    const qe = evaluateQeIdentity(qeIdentity.value, q.qeReport);
    checks.push(`QE identity (MRSIGNER, ISVPRODID, attributes, misc-select; ISVSVN ${q.qeReport.isvSvn}: ${qe.status})`);
    const tcb = evaluateTdxTcb(tcbInfo.value, pck, q.body, qe);
    checks.push(`TCB level: ${tcb.status}`);
    result.tcbEvaluated = true;
    result.tcbStatus = tcb.status;
    if (tcb.tdxModuleStatus) result.tdxModuleStatus = tcb.tdxModuleStatus;
    result.advisoryIds = tcb.advisoryIds;
    result.tcbEvaluationDataNumber = tcbInfo.value.tcbEvaluationDataNumber;
    result.qe.status = qe.status;
    if (!policy.acceptedTcbStatuses.includes(tcb.status)) {
      err(statusCode(tcb.status), `TCB status is ${tcb.status}` + (tcb.advisoryIds.length ? ` (${tcb.advisoryIds.join(', ')})` : '') + `, expected one of ${policy.acceptedTcbStatuses.join(', ')}`);
    }
  }

  // 7. The TD itself: strict defaults, then pins.
  checks.push(...checkTdDefaults(q.body, policy));
  const pinned = checkTdxPins({
    mrTd: q.body.mrTd, rtmr: q.body.rtmr, reportData: q.body.reportData, tdAttributes: q.body.tdAttributes, xfam: q.body.xfam,
    mrSeam: q.body.mrSeam, mrSignerSeam: q.body.mrSignerSeam, seamAttributes: q.body.seamAttributes, mrConfigId: q.body.mrConfigId,
    mrOwner: q.body.mrOwner, mrOwnerConfig: q.body.mrOwnerConfig, teeTcbSvn: q.body.teeTcbSvn, qeVendorId: q.header.qeVendorId, fmspc: pck.fmspc,
  }, policy);
  if (pinned.length) checks.push(`policy pins: ${pinned.join(', ')}`);
  return result;
}

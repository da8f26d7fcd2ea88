// The evidence document of contract version 2 ("GET /v1/sessions/{sid}/attestation"): building it
// on the server and verifying it on the client (binding + platform evidence + policy, in one call).
import { computeReportData, isSessionId } from './binding.js';
import { AttestationError } from './errors.js';
import { bytesEqual, fromBase64, fromBase64Url, fromHex, pemBlocks, toBase64, toBase64Url, toHex } from './encoding.js';
import { toPolicy, type Policy } from './policy.js';
import type { EvidenceProvider, Platform } from './providers/types.js';
import { verifySevSnpReport } from './sev-snp/verify.js';
import { verifyTdxQuote } from './tdx/verify.js';

export interface EvidenceJson {
  version: 2;
  /** The session id the client chose (base64url, 22 characters). */
  session: string;
  platform: Platform;
  simulated: boolean;
  /** base64url, no padding: one OHTTP key configuration (RFC 9458 section 3). */
  keyConfig: string;
  /** RFC 3339 UTC. */
  expiresAt: string;
  model: { id: string; digest: string };
  /** hex, 64 bytes. */
  reportData: string;
  evidence: {
    report: string;
    vcek?: string;
    certChain?: string;
    collateral?: Record<string, string>;
  };
}

export interface BuildEvidenceInput {
  provider: EvidenceProvider;
  session: string;
  keyConfig: Uint8Array;
  /** Whole seconds: the binding signs Unix seconds, so a fraction would not survive the round trip. */
  expiresAt: Date | string;
  model: { id: string; digest: string };
  nonce: Uint8Array;
}

/** RFC 3339 UTC without fractional seconds, e.g. 2026-11-27T00:05:00Z. */
export function formatRfc3339(d: Date): string {
  if (Number.isNaN(d.getTime())) throw new AttestationError('bad_expiry', 'invalid expiresAt');
  return d.toISOString().replace(/\.\d{3}Z$/, 'Z');
}

/** Offset of REPORT_DATA in the raw platform evidence (SEV-SNP report; TDX quote v4/v5 TD report body). */
function embeddedReportData(platform: Platform, report: Uint8Array): Uint8Array | undefined {
  if (platform === 'sev-snp') return report.length >= 0x90 ? report.subarray(0x50, 0x90) : undefined;
  // TDX quote: 48-byte header; v4 body starts at 48, v5 has a 6-byte body descriptor first.
  // REPORT_DATA is the last 64 bytes of the 584-byte TD 1.0 report body, same offset in TD 1.5 bodies.
  if (report.length < 48) return undefined;
  const version = report[0] | (report[1] << 8);
  const body = version === 4 ? 48 : version === 5 ? 54 : -1;
  if (body < 0 || report.length < body + 584) return undefined;
  return report.subarray(body + 520, body + 584);
}

export async function buildEvidence(input: BuildEvidenceInput): Promise<EvidenceJson> {
  const { provider, session, keyConfig, model, nonce } = input;
  if (!isSessionId(session)) throw new AttestationError('bad_session', 'session must be 16 bytes in base64url (22 characters)');
  if (typeof model?.id !== 'string' || model.id.length === 0) throw new AttestationError('bad_model', 'model id required');
  const digest = fromHex(model.digest, 'bad_model_digest', 32);
  const expiry = typeof input.expiresAt === 'string' ? new Date(input.expiresAt) : input.expiresAt;
  if (expiry.getTime() % 1000 !== 0) throw new AttestationError('bad_expiry', 'expiresAt must be whole seconds');
  const expiresAt = formatRfc3339(expiry);
  const reportData = computeReportData({
    nonce,
    session,
    keyConfig,
    modelDigest: digest,
    modelId: model.id,
    expiresAt: expiry.getTime() / 1000,
    simulated: provider.simulated,
  });
  const pe = await provider.getEvidence(reportData);
  // Fail closed if a provider ever returned evidence for other data.
  const embedded = embeddedReportData(provider.platform, pe.report);
  if (!embedded || !bytesEqual(embedded, reportData)) {
    throw new AttestationError('provider_report_data', 'provider evidence does not carry the requested REPORT_DATA');
  }
  const evidence: EvidenceJson['evidence'] = { report: toBase64(pe.report) };
  if (pe.vcek) evidence.vcek = toBase64(pe.vcek);
  if (pe.certChain) evidence.certChain = pe.certChain;
  if (pe.collateral) evidence.collateral = { ...pe.collateral };
  return {
    version: 2,
    session,
    platform: provider.platform,
    simulated: provider.simulated,
    keyConfig: toBase64Url(keyConfig),
    expiresAt,
    model: { id: model.id, digest: toHex(digest) },
    reportData: toHex(reportData),
    evidence,
  };
}

// ---- verification -----------------------------------------------------------------------------

export interface VerifyEvidenceOptions {
  /** The nonce the client sent: 32 bytes or 64 hex digits. */
  nonce: Uint8Array | string;
  /** The session id the client asked evidence for; when given, the document must name it. */
  session?: string;
  /** Parsed policy, or a policy JSON object/string (CONTRACT keys); default: strict defaults. */
  policy?: Policy | unknown;
  /** Accept `simulated: true` evidence, verified against the chain it carries and nothing else. */
  allowSimulation?: boolean;
  /** Trusted time for expiry and every validity check: Date or UNIX seconds; default: the clock. */
  now?: Date | number;
  /** Replace embedded roots of trust (tests): AMD ARK for the VCEK's product, Intel SGX Root CA. */
  roots?: { amdArk?: Uint8Array | string; intelRoot?: Uint8Array | string };
  /** AMD's CRL (DER or PEM) for SEV-SNP evidence: a revoked ASK or ASVK is refused. */
  amdCrl?: Uint8Array | string;
}

export interface EvidenceVerification {
  session: string;
  platform: Platform;
  simulated: boolean;
  /** The OHTTP key configuration the report vouches for (decoded keyConfig). */
  keyConfig: Uint8Array;
  expiresAt: Date;
  model: { id: string; digest: string };
  /** SEV-SNP MEASUREMENT or TDX MRTD, hex. */
  measurement: string;
  /** Platform TCB as the verifier decoded it (SEV-SNP SPLs; TDX: whatever verifyTdxQuote reports). */
  tcb: Record<string, unknown>;
  /** SEV-SNP: the product (Milan/Genoa/Turin). */
  product?: string;
  /** Everything that was checked, in order. */
  checks: string[];
  /** The platform verifier's own result (SevSnpVerified or the TDX verifier's). */
  platformResult: unknown;
}

const TOP_KEYS = ['version', 'session', 'platform', 'simulated', 'keyConfig', 'expiresAt', 'model', 'reportData', 'evidence'];
const EVIDENCE_KEYS = ['report', 'vcek', 'certChain', 'collateral'];
// Whole seconds only: the binding signs Unix seconds, and a fraction would be an unsigned field.
const RFC3339_UTC = /^(\d{4})-(\d{2})-(\d{2})T(\d{2}):(\d{2}):(\d{2})Z$/;
// Upper bounds keep a hostile document from making us allocate or hash without limit.
const MAX_REPORT_B64 = 64 * 1024;
const MAX_TEXT = 256 * 1024;

function malformed(msg: string): never {
  throw new AttestationError('evidence_malformed', msg);
}

function isObject(v: unknown): v is Record<string, unknown> {
  return typeof v === 'object' && v !== null && !Array.isArray(v);
}

function onlyKeys(o: Record<string, unknown>, allowed: string[], where: string): void {
  for (const k of Object.keys(o)) if (!allowed.includes(k)) malformed(`unexpected field '${k}' in ${where}`);
}

function toUnixMs(v: Date | number | undefined): number {
  if (v === undefined) return Date.now();
  const ms = typeof v === 'number' ? v * 1000 : v.getTime();
  if (!Number.isFinite(ms)) throw new AttestationError('bad_time', 'invalid trusted time');
  return ms;
}

interface ParsedEvidence {
  session: string;
  platform: Platform;
  simulated: boolean;
  keyConfig: Uint8Array;
  expiresAt: Date;
  model: { id: string; digest: Uint8Array };
  reportData: Uint8Array;
  report: Uint8Array;
  vcek?: Uint8Array;
  certChain?: string;
  collateral?: Record<string, string>;
}

/** Strict shape check of the evidence JSON (object or JSON text). Throws evidence_malformed. */
export function parseEvidenceJson(input: unknown): ParsedEvidence {
  let doc = input;
  if (typeof input === 'string') {
    if (input.length > 4 * MAX_TEXT) malformed('evidence too large');
    try {
      doc = JSON.parse(input);
    } catch {
      malformed('evidence is not JSON');
    }
  } else if (input instanceof Uint8Array) {
    return parseEvidenceJson(new TextDecoder().decode(input));
  }
  if (!isObject(doc)) malformed('evidence must be a JSON object');
  onlyKeys(doc, TOP_KEYS, 'evidence');
  for (const k of TOP_KEYS) if (!(k in doc)) malformed(`missing field '${k}'`);
  if (doc.version !== 2) malformed('unsupported evidence version (this client speaks version 2)');
  if (!isSessionId(doc.session)) malformed('session must be 22 base64url characters (16 bytes)');
  if (doc.platform !== 'sev-snp' && doc.platform !== 'tdx') malformed('unknown platform');
  if (typeof doc.simulated !== 'boolean') malformed('simulated must be a boolean');
  if (typeof doc.keyConfig !== 'string' || doc.keyConfig.length === 0 || doc.keyConfig.length > MAX_TEXT) malformed('keyConfig must be base64url');
  const keyConfig = wrap(() => fromBase64Url(doc.keyConfig, 'evidence_malformed'));
  if (keyConfig.length === 0 || keyConfig.length > 0xffff) malformed('keyConfig length out of range');
  if (typeof doc.expiresAt !== 'string') malformed('expiresAt must be an RFC 3339 UTC string');
  const m = RFC3339_UTC.exec(doc.expiresAt);
  if (!m) malformed('expiresAt must be an RFC 3339 UTC string');
  const expiresAt = new Date(doc.expiresAt);
  // Date parsing normalises out-of-range fields (Feb 30); refuse anything that did not round-trip.
  if (Number.isNaN(expiresAt.getTime()) || expiresAt.getUTCFullYear() !== Number(m[1]) || expiresAt.getUTCMonth() + 1 !== Number(m[2]) ||
      expiresAt.getUTCDate() !== Number(m[3]) || expiresAt.getUTCHours() !== Number(m[4]) || expiresAt.getUTCMinutes() !== Number(m[5]) ||
      expiresAt.getUTCSeconds() !== Number(m[6])) {
    malformed('expiresAt is not a valid time');
  }
  const model = doc.model;
  if (!isObject(model)) malformed('model must be an object');
  onlyKeys(model, ['id', 'digest'], 'model');
  if (typeof model.id !== 'string' || model.id.length === 0 || new TextEncoder().encode(model.id).length > 255) {
    malformed('model.id must be 1..255 bytes of UTF-8');
  }
  if (typeof model.digest !== 'string' || !/^[0-9a-f]{64}$/.test(model.digest)) malformed('model.digest must be 64 lowercase hex digits');
  if (typeof doc.reportData !== 'string' || !/^[0-9a-f]{128}$/.test(doc.reportData)) malformed('reportData must be 128 lowercase hex digits');
  const ev = doc.evidence;
  if (!isObject(ev)) malformed('evidence.evidence must be an object');
  onlyKeys(ev, EVIDENCE_KEYS, 'evidence.evidence');
  if (typeof ev.report !== 'string' || ev.report.length === 0 || ev.report.length > MAX_REPORT_B64) malformed('evidence.report must be base64');
  const out: ParsedEvidence = {
    session: doc.session,
    platform: doc.platform,
    simulated: doc.simulated,
    keyConfig,
    expiresAt,
    model: { id: model.id, digest: fromHex(model.digest, 'evidence_malformed', 32) },
    reportData: fromHex(doc.reportData, 'evidence_malformed', 64),
    report: wrap(() => fromBase64(ev.report, 'evidence_malformed')),
  };
  if (ev.vcek !== undefined) {
    if (typeof ev.vcek !== 'string' || ev.vcek.length > MAX_TEXT) malformed('evidence.vcek must be base64');
    out.vcek = wrap(() => fromBase64(ev.vcek, 'evidence_malformed'));
  }
  if (ev.certChain !== undefined) {
    if (typeof ev.certChain !== 'string' || ev.certChain.length > MAX_TEXT) malformed('evidence.certChain must be PEM text');
    out.certChain = ev.certChain;
  }
  if (ev.collateral !== undefined) {
    if (!isObject(ev.collateral)) malformed('evidence.collateral must be an object');
    const c: Record<string, string> = {};
    for (const [k, v] of Object.entries(ev.collateral)) {
      if (!COLLATERAL_KEYS.includes(k)) malformed(`unexpected collateral '${k}'`);
      if (typeof v !== 'string' || v.length > 4 * MAX_TEXT) malformed(`collateral '${k}' must be a string`);
      c[k] = v;
    }
    out.collateral = c;
  }
  if (out.platform === 'sev-snp' && out.collateral) malformed('collateral is TDX-only');
  if (out.platform === 'tdx' && (out.vcek || out.certChain)) malformed('vcek/certChain are SEV-SNP-only');
  return out;
}

export const COLLATERAL_KEYS = ['tcbInfo', 'qeIdentity', 'pckCrl', 'rootCrl', 'tcbInfoIssuerChain', 'qeIdentityIssuerChain', 'pckCrlIssuerChain'];

function wrap<T>(f: () => T): T {
  try {
    return f();
  } catch (e) {
    if (e instanceof AttestationError) throw new AttestationError('evidence_malformed', e.message);
    throw e;
  }
}

/** TDX collateral as the TDX verifier takes it: CRLs as DER bytes, the rest as the text sent. */
function tdxCollateral(c: Record<string, string> | undefined): Record<string, Uint8Array | string> | undefined {
  if (!c) return undefined;
  const out: Record<string, Uint8Array | string> = {};
  for (const [k, v] of Object.entries(c)) out[k] = k === 'pckCrl' || k === 'rootCrl' ? wrap(() => fromBase64(v, 'evidence_malformed')) : v;
  return out;
}

/**
 * Verifies an evidence document end to end: shape, platform allow-list, simulation, expiry, model
 * pin, the CONTRACT binding of nonce/keyConfig/model, the platform evidence (signatures, chain,
 * policy) and that the report's REPORT_DATA is the bound value. Throws AttestationError on the
 * first failure; resolves `{ ok: true, report }` otherwise.
 */
export async function verifyEvidence(input: unknown, opts: VerifyEvidenceOptions): Promise<{ ok: true; report: EvidenceVerification }> {
  const policy = toPolicy(opts.policy);
  const nonce = typeof opts.nonce === 'string' ? fromHex(opts.nonce, 'bad_nonce', 32) : opts.nonce;
  if (!(nonce instanceof Uint8Array) || nonce.length !== 32) throw new AttestationError('bad_nonce', 'nonce must be 32 bytes');
  const nowMs = toUnixMs(opts.now);
  const now = new Date(nowMs);
  const e = parseEvidenceJson(input);
  const checks: string[] = ['evidence shape'];

  const platforms = policy.platforms ?? ['sev-snp', 'tdx'];
  if (!platforms.includes(e.platform)) throw new AttestationError('platform_not_allowed', `platform ${e.platform} is not accepted by policy`);
  checks.push(`platform ${e.platform} allowed`);
  if (e.simulated) {
    if (!opts.allowSimulation) throw new AttestationError('simulation_not_allowed', 'evidence is simulated and simulation is not allowed');
    if (e.platform !== 'sev-snp') throw new AttestationError('evidence_malformed', 'only SEV-SNP is simulated');
    checks.push('simulation explicitly allowed');
  }
  if (nowMs >= e.expiresAt.getTime()) throw new AttestationError('evidence_expired', 'the session key has expired');
  checks.push('not expired');
  if (policy.modelDigest && !bytesEqual(policy.modelDigest, e.model.digest)) {
    throw new AttestationError('model_digest_mismatch', 'model digest is not the pinned one');
  }
  if (policy.modelDigest) checks.push('model digest pinned');

  if (opts.session !== undefined && e.session !== opts.session) {
    throw new AttestationError('session_mismatch', 'evidence names another session than the one requested');
  }
  const expected = computeReportData({
    nonce,
    session: e.session,
    keyConfig: e.keyConfig,
    modelDigest: e.model.digest,
    modelId: e.model.id,
    expiresAt: e.expiresAt.getTime() / 1000,
    simulated: e.simulated,
  });
  if (!bytesEqual(expected, e.reportData)) {
    throw new AttestationError('binding_mismatch', 'reportData does not bind this nonce, session, key configuration, model, expiry and simulation flag');
  }
  checks.push('binding v2: SHA-512(label || nonce || session || keyConfig || model digest || model id || expiry || simulated)');

  let measurement: string;
  let tcb: Record<string, unknown>;
  let product: string | undefined;
  let embedded: Uint8Array;
  let platformResult: unknown;
  if (e.platform === 'sev-snp') {
    if (!e.vcek) malformed('SEV-SNP evidence without a VCEK');
    let trustedArk: Uint8Array | string | undefined = opts.roots?.amdArk;
    if (e.simulated) {
      // Trust only the chain that came with the evidence: its ARK becomes the root for this call.
      if (!e.certChain) malformed('simulated evidence without its certificate chain');
      const blocks = wrap(() => pemBlocks(e.certChain!, 'CERTIFICATE', 'evidence_malformed'));
      if (blocks.length !== 2) malformed('certChain must hold the ASK then the ARK');
      trustedArk = blocks[1];
    }
    const r = await verifySevSnpReport(e.report, {
      vcek: e.vcek, certChain: e.certChain, trustedArk, at: now, policy, ...(opts.amdCrl !== undefined ? { crl: opts.amdCrl } : {}),
    });
    measurement = r.measurement;
    tcb = { ...r.reportedTcb };
    product = r.product;
    embedded = r.report.reportData;
    platformResult = r;
    checks.push(...r.checks.map((c) => `sev-snp: ${c}`));
  } else {
    const r = await verifyTdxQuote(e.report, {
      collateral: tdxCollateral(e.collateral),
      at: now,
      policy: policy.tdx,
      ...(opts.roots?.intelRoot !== undefined ? { intelRoot: opts.roots.intelRoot } : {}),
    });
    embedded = r.reportData;
    measurement = r.fields.mrTd;
    tcb = {
      teeTcbSvn: r.fields.teeTcbSvn,
      ...(r.tcbStatus ? { status: r.tcbStatus } : {}),
      ...(r.tdxModuleStatus ? { tdxModuleStatus: r.tdxModuleStatus } : {}),
      ...(r.tcbEvaluationDataNumber !== undefined ? { tcbEvaluationDataNumber: r.tcbEvaluationDataNumber } : {}),
      ...(r.advisoryIds.length ? { advisoryIds: r.advisoryIds.join(',') } : {}),
    };
    platformResult = r;
    checks.push(...r.checks.map((c) => `tdx: ${c}`));
  }
  if (!bytesEqual(embedded, e.reportData)) {
    throw new AttestationError('report_data_mismatch', 'REPORT_DATA in the platform evidence is not the bound reportData');
  }
  checks.push('REPORT_DATA = reportData');
  return {
    ok: true,
    report: {
      session: e.session,
      platform: e.platform,
      simulated: e.simulated,
      keyConfig: e.keyConfig,
      expiresAt: e.expiresAt,
      model: { id: e.model.id, digest: toHex(e.model.digest) },
      measurement,
      tcb,
      product,
      checks,
      platformResult,
    },
  };
}

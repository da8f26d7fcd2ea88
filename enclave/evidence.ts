// The evidence document of CONTRACT.md ("GET /v1/attestation"): building it on the server and
// verifying it on the client (binding + platform evidence + policy, in one call).
import { computeReportData } from './binding.js';
import { AttestationError } from './errors.js';
import { bytesEqual, fromHex, toBase64, toBase64Url, toHex } from './encoding.js';
import type { EvidenceProvider, Platform } from './providers/types.js';

export interface EvidenceJson {
  version: 1;
  platform: Platform;
  simulated: boolean;
  keyId: number;
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
  keyId: number;
  keyConfig: Uint8Array;
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
  const { provider, keyId, keyConfig, model, nonce } = input;
  if (!Number.isInteger(keyId) || keyId < 0 || keyId > 255) throw new AttestationError('bad_key_id', 'keyId must be 0..255');
  if (typeof model?.id !== 'string' || model.id.length === 0) throw new AttestationError('bad_model', 'model id required');
  const digest = fromHex(model.digest, 'bad_model_digest', 32);
  const expiresAt = formatRfc3339(typeof input.expiresAt === 'string' ? new Date(input.expiresAt) : input.expiresAt);
  const reportData = computeReportData(nonce, keyConfig, digest);
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
    version: 1,
    platform: provider.platform,
    simulated: provider.simulated,
    keyId,
    keyConfig: toBase64Url(keyConfig),
    expiresAt,
    model: { id: model.id, digest: toHex(digest) },
    reportData: toHex(reportData),
    evidence,
  };
}

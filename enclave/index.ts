// enclave/: attestation for sealed-inference. Public surface for server, client and CLI.
//
// Differences from / additions to docs/ARCHITECTURE.md (names and shapes there are kept):
// - `buildEvidence(...)` is async (providers are) -> Promise<EvidenceJson>. `expiresAt` may be a
//   Date or an RFC 3339 string; it is emitted as RFC 3339 UTC without fractional seconds.
// - `createProvider(kind, opts)` is async -> Promise<EvidenceProvider>. opts:
//   { allowSimulation? ('auto' only), simulation?: { modelDigest?, codeDigest?, codeRoot?, product?, tcb?, rsaBits?, hostData? },
//     root? (configfs-tsm dir), ops? (test hook), maxAttempts?, tdxCollateral?: {tcbInfo?, qeIdentity?, pckCrl?, rootCrl?,
//     tcbInfoIssuerChain?, qeIdentityIssuerChain?, pckCrlIssuerChain?} (file paths), sevCerts?: {vcek?, askArk?} (file paths) }.
//   The simulated provider's MEASUREMENT is simulatedMeasurement(codeDigest, modelDigest) (see providers/simulated.ts),
//   so pass the served model's digest as `simulation.modelDigest`.
// - evidence.collateral (TDX) is Record<string,string>: tcbInfo / qeIdentity (the JSON bodies as text),
//   *IssuerChain (PEM text), pckCrl / rootCrl (base64 DER).
// - `verifyEvidence(json, { nonce, policy?, allowSimulation?, now?, roots?: { amdArk?, intelRoot? } })`
//   -> Promise<{ ok: true, report: EvidenceVerification }>; rejections throw AttestationError. `json` may be
//   the object, JSON text or bytes. `report.keyConfig` is the decoded key configuration to encrypt to.
//   `now` (Date or UNIX seconds) is the trusted time for expiry and every certificate validity.
// - `verifySevSnpReport(bytes, { vcek, ask?, ark?, certChain?, trustedArk?, at, policy? })` -> SevSnpVerified.
//   `ark`, when sent, must equal the pinned root; `trustedArk` replaces the pinned root (CLI --ark).
// - Policies: `parsePolicy(json)` -> Policy; every API also takes the raw JSON object.
// - Browser note: importing './index.js' pulls in providers/ (node:crypto, node:fs). Browser code should
//   import './evidence.js', './binding.js', './policy.js' and './sev-snp/verify.js' directly.
// - All failures throw AttestationError { code } (enclave/errors.ts).
export { AttestationError, isAttestationError } from './errors.js';
export { computeReportData, BINDING_LABEL } from './binding.js';
export {
  buildEvidence, verifyEvidence, parseEvidenceJson, formatRfc3339, COLLATERAL_KEYS,
  type EvidenceJson, type BuildEvidenceInput, type VerifyEvidenceOptions, type EvidenceVerification,
} from './evidence.js';
export { parsePolicy, toPolicy, defaultPolicy, type Policy, type SevSnpPolicy, type MinTcb } from './policy.js';
export {
  verifySevSnpReport, verifyVcekChain, verifyReportWithVcek,
  type SevSnpVerifyOptions, type SevSnpVerified, type VerifiedVcek,
} from './sev-snp/verify.js';
export { checkSevSnpPolicy } from './sev-snp/policy.js';
export {
  createProvider, createSimulatedProvider, simulatedMeasurement, codeDigest, createConfigfsTsmProvider, parseSevCertTable,
  type ProviderKind, type ProviderOptions, type EvidenceProvider, type PlatformEvidence, type Platform,
  type SimulatedProvider, type SimulatedProviderOptions,
} from './providers/index.js';
export { parseReport, encodeReport, decodeTcb, type SevSnpReport, type SevProduct, type TcbParts } from './sev-snp/report.js';

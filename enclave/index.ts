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
// - evidence.collateral (TDX) is Record<string,string> with exactly the keys tcbInfo, qeIdentity (the PCS JSON
//   bodies as text), tcbInfoIssuerChain, qeIdentityIssuerChain, pckCrlIssuerChain (PEM text), pckCrl, rootCrl
//   (base64 DER). verifyEvidence hands them to enclave/tdx's verifyTdxQuote (CRLs decoded to DER bytes).
// - Evidence version 2: the binding (binding.ts) signs session, keyConfig, model digest and id, expiry and the
//   simulated flag; `verifyEvidence(json, { session })` also requires the document to name the session asked for
//   (`session_mismatch`).
// - EvidenceVerification = { session, platform, simulated, keyConfig: Uint8Array, expiresAt: Date, model {id, digest},
//   measurement (SEV-SNP MEASUREMENT / TDX MRTD, hex), tcb (SEV-SNP: {bootloader, tee, snp, microcode[, fmc]};
//   TDX: {teeTcbSvn, status?, tdxModuleStatus?, tcbEvaluationDataNumber?, advisoryIds?}), product? (SEV-SNP),
//   checks: string[], platformResult (SevSnpVerified | TdxVerified) }.
// - Policy = { platforms?, modelDigest?: Uint8Array, sevSnp: SevSnpPolicy, tdx: TdxPolicy (enclave/tdx/policy.ts) };
//   unknown keys are refused (`policy_unknown_key`), bad values `policy_invalid`.
// - Two-phase SEV-SNP verification for many reports from one platform: verifyVcekChain(...) once, then
//   verifyReportWithVcek(report, vcek, policy) per report.
// - providers/configfs-tsm.ts: the kernel interaction sits behind `TsmOps` (mkdir/rmdir/writeFile/readFile) so tests
//   drive a fake tree; SEV-SNP certificates come from auxblob's GHCB certificate table (VCEK or VLEK by the report's
//   SIGNING_KEY, ASK/ARK only with a VCEK), or from
//   `sevCerts` files when the host provides none. The simulated ARK/ASK are RSA-2048 (AMD: 4096) for start-up speed;
//   `simulation.rsaBits: 4096` gives the real size.
// - cli/commands/verify.ts exports runVerify(argv, io?) besides `command`, and isMalformedCode(code) (exit 30 vs 10).
// - `verifyEvidence(json, { nonce, policy?, allowSimulation?, now?, roots?: { amdArk?, intelRoot? }, amdCrl? })`
//   -> Promise<{ ok: true, report: EvidenceVerification }>; rejections throw AttestationError. `json` may be
//   the object, JSON text or bytes. `report.keyConfig` is the decoded key configuration to encrypt to.
//   `now` (Date or UNIX seconds) is the trusted time for expiry and every certificate validity.
// - `verifySevSnpReport(bytes, { vcek, ask?, ark?, certChain?, crl?, trustedArk?, at, policy? })` -> SevSnpVerified.
//   `vcek` is the VCEK or VLEK (the report's SIGNING_KEY must name its kind), `ask` the ASK or ASVK; `crl` is
//   AMD's ARK-signed CRL. `ark`, when sent, must equal the pinned root; `trustedArk` replaces it (CLI --ark).
// - Policies: `parsePolicy(json)` -> Policy; every API also takes the raw JSON object.
// - Browser note: importing './index.js' pulls in providers/ (node:crypto, node:fs). Browser code should
//   import './evidence.js', './binding.js', './policy.js' and './sev-snp/verify.js' directly.
// - All failures throw AttestationError { code } (enclave/errors.ts).
export { AttestationError, isAttestationError } from './errors.js';
export { computeReportData, isSessionId, BINDING_LABEL, SESSION_ID_RE, type BindingInput } from './binding.js';
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
export { parseReport, encodeReport, decodeTcb, reportToJson, type SevSnpReport, type SevProduct, type TcbParts } from './sev-snp/report.js';
export { verifyTdxQuote, type TdxVerified, type VerifyTdxOptions, type TdxCollateral } from './tdx/verify.js';

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
// - All failures throw AttestationError { code } (enclave/errors.ts).
export { AttestationError, isAttestationError } from './errors.js';
export { computeReportData, BINDING_LABEL } from './binding.js';
export { buildEvidence, formatRfc3339, type EvidenceJson, type BuildEvidenceInput } from './evidence.js';
export {
  createProvider, createSimulatedProvider, simulatedMeasurement, codeDigest, createConfigfsTsmProvider, parseSevCertTable,
  type ProviderKind, type ProviderOptions, type EvidenceProvider, type PlatformEvidence, type Platform,
  type SimulatedProvider, type SimulatedProviderOptions,
} from './providers/index.js';
export { parseReport, encodeReport, decodeTcb, type SevSnpReport, type SevProduct, type TcbParts } from './sev-snp/report.js';

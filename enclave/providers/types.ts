// What an evidence provider hands to buildEvidence: the raw platform evidence, before JSON encoding.
export type Platform = 'sev-snp' | 'tdx';

export interface PlatformEvidence {
  /** The raw SEV-SNP ATTESTATION_REPORT (1184 bytes) or TDX quote. */
  report: Uint8Array;
  /** SEV-SNP: the VCEK certificate, DER. */
  vcek?: Uint8Array;
  /** SEV-SNP: PEM, ASK then ARK. */
  certChain?: string;
  /** TDX: whatever collateral the server could obtain (see providers/tdx-collateral.ts). */
  collateral?: Record<string, string>;
}

export interface EvidenceProvider {
  readonly platform: Platform;
  readonly simulated: boolean;
  /** Produces evidence whose REPORT_DATA is exactly `reportData` (64 bytes). */
  getEvidence(reportData: Uint8Array): Promise<PlatformEvidence>;
  /** Releases resources (zeroes simulated keys where possible). Optional. */
  close?(): void;
}

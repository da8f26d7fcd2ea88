// The exit codes of `sealed verify` and the one rule every verb uses to choose between 10 and 30:
// input that the strict parsers cannot read as what it claims to be is malformed (30); input that
// parses and then fails a check is rejected (10). One rule, so `verify evidence` and `verify tdx`
// give the same exit code for the same quote.
export const EXIT = { accepted: 0, rejected: 10, malformed: 30, internal: 1 } as const;

// A report the SEV-SNP layout parser refuses (wrong length, unknown version, reserved bytes set) and a
// quote of an unknown version cannot be parsed; the rest are unreadable inputs of every kind.
const MALFORMED_CODES = new Set([
  'usage', 'input_unreadable', 'sev_report_length', 'sev_report_version', 'sev_report_reserved', 'tdx_quote_version',
  'policy_invalid', 'policy_unknown_key', 'bad_nonce', 'bad_time', 'evidence_malformed', 'der_malformed', 'pem_malformed',
]);

export function isMalformedCode(code: string): boolean {
  return MALFORMED_CODES.has(code) || code.endsWith('_malformed') || code.endsWith('_truncated');
}

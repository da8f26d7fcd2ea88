// The verification report: what a client checked before it sent anything, in a form
// people can read (stderr summary, HTML page) and programs can test.

export interface VerificationReport {
  /** Origin of the attested server. */
  server: string;
  platform: 'sev-snp' | 'tdx';
  simulated: boolean;
  /** Launch measurement, hex (SEV-SNP MEASUREMENT, TDX MRTD). */
  measurement: string;
  /** Trusted computing base the hardware reported (SEV-SNP: SPL per component; TDX: TEE TCB SVN and status). */
  tcb: Record<string, string | number>;
  model: { id: string; digest: string };
  /** The session id this client chose (it names the session in every request path). */
  session: string;
  /** When the session key is destroyed (RFC 3339). */
  expiresAt: string;
  /** When this client verified the evidence (RFC 3339). */
  verifiedAt: string;
  /** The fresh nonce this client sent, hex. */
  nonce: string;
  /** Policy keys that were pinned (beyond the strict defaults). */
  pinned: string[];
  /** Every check performed, in order, each of which passed. */
  checks: string[];
}

/** Plain-text summary for a terminal (`sealed chat`, `sealed proxy`). */
export function formatSummary(r: VerificationReport): string {
  const tcb = Object.entries(r.tcb).map(([k, v]) => `${k}=${v}`).join(' ');
  const lines = [
    `verified ${r.server}: ${r.platform}${r.simulated ? ' (SIMULATED: no hardware protection)' : ''}`,
    `  measurement ${r.measurement}`,
    `  tcb         ${tcb || '(none reported)'}`,
    `  model       ${r.model.id} sha256:${r.model.digest}`,
    `  session ${r.session}, key expires ${r.expiresAt}`,
    `  policy      ${r.pinned.length ? 'pinned ' + r.pinned.join(', ') : 'strict defaults only (nothing pinned)'}`,
    `  checks      ${r.checks.length} passed:`,
    ...r.checks.map((c) => `    - ${c}`),
  ];
  return lines.join('\n');
}

const ESCAPES: Record<string, string> = { '&': '&amp;', '<': '&lt;', '>': '&gt;', '"': '&quot;', "'": '&#39;' };
export function escapeHtml(s: string): string {
  return s.replace(/[&<>"']/g, (c) => ESCAPES[c]);
}

/** An HTML fragment (a definition list and the checks) for the proxy's `/` page and the chat page. */
export function reportHtml(r: VerificationReport): string {
  const row = (k: string, v: string) => `<dt>${escapeHtml(k)}</dt><dd>${escapeHtml(v)}</dd>`;
  const tcb = Object.entries(r.tcb).map(([k, v]) => `${k}=${v}`).join(', ');
  return [
    r.simulated
      ? '<p class="warn" data-simulated="true"><strong>Simulated</strong>: this server runs without hardware protection; the evidence is signed by a key made at start-up.</p>'
      : '<p class="ok" data-simulated="false">Hardware-attested.</p>',
    '<dl class="report">',
    row('server', r.server),
    row('platform', r.platform),
    row('measurement', r.measurement),
    row('TCB', tcb || '(none reported)'),
    row('model', `${r.model.id} (sha256 ${r.model.digest})`),
    row('session', `${r.session}, key expires ${r.expiresAt}`),
    row('verified at', r.verifiedAt),
    row('nonce', r.nonce),
    row('policy', r.pinned.length ? `pinned: ${r.pinned.join(', ')}` : 'strict defaults only'),
    '</dl>',
    `<p>${r.checks.length} checks passed:</p>`,
    '<ul class="checks">',
    ...r.checks.map((c) => `<li>${escapeHtml(c)}</li>`),
    '</ul>',
  ].join('\n');
}

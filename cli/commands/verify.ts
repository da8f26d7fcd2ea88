// `sealed verify sev-snp | tdx | evidence`: offline verification with the exit codes of docs/PROTOCOL.md:
// 0 accepted, 10 rejected (one stderr line `rejected: CODE: reason`), 30 malformed input, 1 internal error.
import { readFile } from 'node:fs/promises';
import process from 'node:process';
import type { Command } from '../sealed.js';
import { AttestationError } from '../../enclave/errors.js';
import { parsePolicy, type Policy } from '../../enclave/policy.js';
import { parseReport, reportToJson } from '../../enclave/sev-snp/report.js';
import { verifySevSnpReport } from '../../enclave/sev-snp/verify.js';
import { verifyEvidence } from '../../enclave/evidence.js';
import { EXIT, isMalformedCode } from '../verify-exit.js';

export { EXIT };

const POLICY_HELP = `Policy file (JSON, every key optional; absent means not pinned, the strict defaults always apply):
  SEV-SNP pins   measurement (hex or list), hostData, reportData, idKeyDigest, authorKeyDigest, familyId,
                 imageId, minTcb and minLaunchTcb {bootloader, tee, snp, microcode, fmc}, minGuestSvn,
                 vmpl (0..3; default 0, pin another for a guest under an SVSM)
  SEV-SNP relax  allowDebug, allowProvisionalFirmware (COMMITTED below CURRENT, REPORTED_TCB above
                 CURRENT_TCB); tighten: "allowSmt": false, "requireSingleSocket": true
  TDX            mrtd, rtmr0..rtmr3, reportData, tdAttributes, xfam, mrSignerSeam, seamAttributes,
                 mrSeamAllowlist, mrConfigId, mrOwner, mrOwnerConfig, minTeeTcbSvn, minTcbEvaluationDataNumber,
                 qeVendorId, fmspc, tcbEvaluation (default true), acceptedTcbStatuses, allowMigratable,
                 allowSeptVe
  both           platforms (which of sev-snp, tdx to accept; every verb honours it), modelDigest
A pin equal to the report's field is met (an all-zero authorKeyDigest matches a report without an author key).`;

const EXIT_HELP = `Exit codes: 0 accepted, 10 rejected (evidence that parses but fails a check; stderr "rejected: CODE:
reason" naming the reported and the expected value), 30 input that cannot be parsed, 1 internal error.`;

const USAGE = {
  main: `usage: sealed verify <sev-snp | tdx | evidence> [options]

Verifies attestation evidence offline against the embedded roots of trust.
  sev-snp   a raw AMD SEV-SNP attestation report (versions 2 to 5) and its VCEK or VLEK
  tdx       an Intel TDX quote and its collateral
  evidence  the JSON the server returns from GET /v1/sessions/{sid}/attestation

${EXIT_HELP}
Run 'sealed verify <kind> --help' for the options of each.`,
  'sev-snp': `usage: sealed verify sev-snp --report FILE --vcek FILE [--ark FILE] [--ask FILE] [--crl FILE]
                              [--at UNIX_SECONDS] [--policy FILE] [--json]

  --report FILE    the raw 1184-byte ATTESTATION_REPORT, version 2 to 5
  --vcek FILE      the VCEK or VLEK that signed it (DER or PEM; the report's SIGNING_KEY says which);
                   required: nothing is fetched from AMD
  --ask FILE       the ASK (VCEK) or ASVK (VLEK); default: the embedded one of the key's product
  --ark FILE       replaces the embedded AMD root (ARK) of trust
  --crl FILE       AMD's CRL for the product (DER or PEM), signed by the ARK: a revoked ASK or ASVK is refused
  --at SECONDS     trusted time for every validity check (default: now)
  --policy FILE    policy JSON (below; docs/PROTOCOL.md lists every key)
  --json           print the parsed fields and the verdict as JSON on stdout

Strict defaults: debug off; no migration agent; VMPL 0; reserved bits zero; committed firmware
(COMMITTED_TCB and committed version equal to CURRENT) and REPORTED_TCB not above CURRENT_TCB.

${POLICY_HELP}

${EXIT_HELP}`,
  evidence: `usage: sealed verify evidence --file FILE --nonce HEX [--policy FILE] [--crl FILE] [--allow-simulation]
                               [--at UNIX_SECONDS] [--json]

  --file FILE          the evidence JSON the server returned
  --nonce HEX          the 32-byte nonce (64 hex digits) the evidence must be bound to
  --policy FILE        policy JSON (below)
  --crl FILE           AMD's CRL (DER or PEM) for SEV-SNP evidence: a revoked ASK or ASVK is refused
  --allow-simulation   accept simulated evidence (verified against the chain it carries only); plain
                       output then says "accepted (SIMULATED)"
  --at SECONDS         trusted time (default: now)
  --json               print the verification report and the verdict as JSON on stdout

${POLICY_HELP}

${EXIT_HELP}`,
} as const;

// Codes that mean "the input could not be read as what it claims to be", as opposed to a
// well-formed input that fails verification.
export { isMalformedCode };

/** Where output goes; process streams by default, a buffer in tests. */
export interface Io {
  out(s: string): void;
  err(s: string): void;
}
const processIo: Io = { out: (s) => void process.stdout.write(s), err: (s) => void process.stderr.write(s) };

type Flags = Record<string, string | true>;

function parseFlags(argv: string[], valued: string[], booleans: string[]): Flags {
  const out: Flags = {};
  for (let i = 0; i < argv.length; i++) {
    const a = argv[i];
    const name = a.startsWith('--') ? a.slice(2) : '';
    if (valued.includes(name)) {
      const v = argv[++i];
      if (v === undefined) throw new AttestationError('usage', `--${name} needs a value`);
      if (name in out) throw new AttestationError('usage', `--${name} given twice`);
      out[name] = v;
    } else if (booleans.includes(name)) {
      out[name] = true;
    } else {
      throw new AttestationError('usage', `unknown argument '${a}'`);
    }
  }
  return out;
}

async function readInput(path: string, what: string): Promise<Uint8Array> {
  try {
    return new Uint8Array(await readFile(path));
  } catch {
    throw new AttestationError('input_unreadable', `cannot read ${what} file`);
  }
}

async function readPolicy(path: string | undefined): Promise<Policy> {
  if (path === undefined) return parsePolicy(undefined);
  return parsePolicy(new TextDecoder().decode(await readInput(path, 'policy')));
}

function parseAt(v: string | undefined): number | undefined {
  if (v === undefined) return undefined;
  if (!/^\d{1,12}$/.test(v)) throw new AttestationError('bad_time', '--at must be UNIX seconds');
  return Number(v);
}

/** Maps an outcome to the exit code, printing the one stderr line (and JSON when asked). */
function finish(io: Io, err: unknown, json: boolean, fields: Record<string, unknown>): number {
  if (err === undefined) {
    if (json) io.out(JSON.stringify({ ...fields, verdict: 'accepted' }, null, 2) + '\n');
    // Simulated evidence proves nothing about hardware: the one word a script reads says so.
    else io.out(fields.simulated === true ? 'accepted (SIMULATED)\n' : 'accepted\n');
    return EXIT.accepted;
  }
  if (err instanceof AttestationError) {
    const malformed = isMalformedCode(err.code);
    // Messages are ours (AttestationError never embeds inputs); keep the line single.
    const reason = err.message.replace(/[\r\n]+/g, ' ');
    io.err(`${malformed ? 'malformed' : 'rejected'}: ${err.code}: ${reason}\n`);
    if (json) {
      io.out(JSON.stringify({ ...fields, verdict: malformed ? 'malformed' : 'rejected', code: err.code, reason }, null, 2) + '\n');
    }
    return malformed ? EXIT.malformed : EXIT.rejected;
  }
  io.err(`internal error: ${err instanceof Error ? err.message : String(err)}\n`);
  return EXIT.internal;
}

/**
 * What both verbs share: --help, flag parsing, and one finish() for the outcome. `body` fills
 * `fields` as it learns things, so a rejection's JSON still shows what was parsed before it.
 */
async function runVerb(
  verb: 'sev-snp' | 'evidence',
  argv: string[],
  io: Io,
  flags: { valued: string[]; booleans: string[] },
  body: (f: Flags, fields: Record<string, unknown>) => Promise<void>,
): Promise<number> {
  if (argv.includes('--help') || argv.includes('-h')) {
    io.out(USAGE[verb] + '\n');
    return 0;
  }
  let json = argv.includes('--json');
  const fields: Record<string, unknown> = {};
  try {
    const f = parseFlags(argv, flags.valued, flags.booleans);
    json = f.json === true;
    await body(f, fields);
    return finish(io, undefined, json, fields);
  } catch (e) {
    return finish(io, e, json, fields);
  }
}

/** The policy's `platforms`, honoured by every verb: a platform left out is refused whatever its evidence. */
export function requirePlatform(policy: Policy, platform: 'sev-snp' | 'tdx'): void {
  if (policy.platforms && !policy.platforms.includes(platform)) {
    throw new AttestationError('platform_not_allowed', `platform is ${platform}, the policy's platforms are ${policy.platforms.join(', ')}`);
  }
}

function runSevSnp(argv: string[], io: Io): Promise<number> {
  const flags = { valued: ['report', 'vcek', 'ark', 'ask', 'crl', 'at', 'policy'], booleans: ['json'] };
  return runVerb('sev-snp', argv, io, flags, async (f, fields) => {
    if (typeof f.report !== 'string') throw new AttestationError('usage', '--report is required');
    if (typeof f.vcek !== 'string') throw new AttestationError('usage', '--vcek is required (nothing is fetched from AMD)');
    const report = await readInput(f.report, 'report');
    const vcek = await readInput(f.vcek, 'VCEK');
    const ask = typeof f.ask === 'string' ? await readInput(f.ask, 'ASK') : undefined;
    const ark = typeof f.ark === 'string' ? await readInput(f.ark, 'ARK') : undefined;
    const crl = typeof f.crl === 'string' ? await readInput(f.crl, 'CRL') : undefined;
    const policy = await readPolicy(f.policy as string | undefined);
    const at = parseAt(f.at as string | undefined) ?? Math.floor(Date.now() / 1000);
    // Parse first so an unparseable report is malformed (30); then every check is a rejection (10).
    fields.report = reportToJson(parseReport(report));
    requirePlatform(policy, 'sev-snp');
    const r = await verifySevSnpReport(report, { vcek, ask, trustedArk: ark, at, policy, ...(crl ? { crl } : {}) });
    fields.report = reportToJson(r.report, r.product);
    fields.product = r.product;
    fields.signingKey = r.signingKey;
    fields.vcek = r.vcek;
    fields.crlChecked = r.crlChecked;
    fields.checks = r.checks;
  });
}

function runEvidence(argv: string[], io: Io): Promise<number> {
  const flags = { valued: ['file', 'nonce', 'policy', 'crl', 'at'], booleans: ['allow-simulation', 'json'] };
  return runVerb('evidence', argv, io, flags, async (f, fields) => {
    if (typeof f.file !== 'string') throw new AttestationError('usage', '--file is required');
    if (typeof f.nonce !== 'string') throw new AttestationError('usage', '--nonce is required');
    if (!/^[0-9a-fA-F]{64}$/.test(f.nonce)) throw new AttestationError('bad_nonce', '--nonce must be 64 hex digits');
    const doc = await readInput(f.file, 'evidence');
    const policy = await readPolicy(f.policy as string | undefined);
    const crl = typeof f.crl === 'string' ? await readInput(f.crl, 'CRL') : undefined;
    const at = parseAt(f.at as string | undefined);
    const { report } = await verifyEvidence(doc, {
      nonce: f.nonce, policy, allowSimulation: f['allow-simulation'] === true, now: at, ...(crl ? { amdCrl: crl } : {}),
    });
    Object.assign(fields, {
      platform: report.platform,
      simulated: report.simulated,
      product: report.product,
      session: report.session,
      expiresAt: report.expiresAt.toISOString(),
      model: report.model,
      measurement: report.measurement,
      tcb: report.tcb,
      checks: report.checks,
    });
  });
}

async function runTdx(argv: string[], io: Io): Promise<number> {
  // The TDX command lives beside its verifier (cli/verify-tdx.ts); loaded on use only.
  const { runVerifyTdx } = await import('../verify-tdx.js');
  return runVerifyTdx(argv, {
    stdout: io.out,
    stderr: io.err,
    readFile: async (p) => new Uint8Array(await readFile(p)),
    now: () => new Date(),
  });
}

/** `sealed verify ...` with explicit output sinks (the Command uses the process streams). */
export async function runVerify(argv: string[], io: Io = processIo): Promise<number> {
  const [kind, ...rest] = argv;
  switch (kind) {
    case 'sev-snp':
      return runSevSnp(rest, io);
    case 'tdx':
      return runTdx(rest, io);
    case 'evidence':
      return runEvidence(rest, io);
    case '--help':
    case '-h':
    case 'help':
      io.out(USAGE.main + '\n');
      return 0;
    default:
      io.err(`${USAGE.main}\n`);
      return EXIT.malformed;
  }
}

export const command: Command = {
  summary: 'verify SEV-SNP reports, TDX quotes or server evidence offline',
  run: (argv: string[]) => runVerify(argv),
};

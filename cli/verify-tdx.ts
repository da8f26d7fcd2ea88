// `sealed verify tdx`: verifies an Intel TDX quote with Intel's collateral, exactly as CONTRACT.md
// states the flags and exit codes. I/O lives here; verification is enclave/tdx/verify.ts.
import { readFile } from 'node:fs/promises';
import process from 'node:process';
import { AttestationError } from '../enclave/errors.js';
import { parsePolicy } from '../enclave/policy.js';
import { parseQuote } from '../enclave/tdx/quote.js';
import { parseTdxPolicy, type TdxPolicy } from '../enclave/tdx/policy.js';
import { quoteFields, verifyTdxQuote, type TdxCollateral, type TdxVerified } from '../enclave/tdx/verify.js';
import { toHex } from '../enclave/pki/x509.js';
import { EXIT, isMalformedCode } from './verify-exit.js';

export { EXIT };

export const TDX_USAGE = `usage: sealed verify tdx --quote FILE [--tcb-info FILE] [--qe-identity FILE] [--pck-crl FILE]
                         [--root-crl FILE] [--tcb-info-issuer-chain FILE] [--qe-identity-issuer-chain FILE]
                         [--pck-crl-issuer-chain FILE] [--intel-root FILE] [--at UNIX_SECONDS] [--policy FILE] [--json]

Verifies an Intel TDX (DCAP) quote: quote and QE report signatures, the PCK chain to the pinned Intel SGX
Root CA (or --intel-root), the PCK and root CRLs, TCB info and QE identity (signatures, issuer chains,
validity), Intel's TCB level evaluation, the TD's strict defaults and the policy's TDX pins.
Strict defaults: TD not debuggable, not MIGRATABLE ("allowMigratable": true to accept), SEPT_VE_DISABLE
set ("allowSeptVe": true to accept), reserved attribute bits zero, a consistent XFAM, SEAM attributes zero.
Bytes after the quote's declared end are ignored, as Intel's library does; --json shows them.

  --quote FILE                 the raw quote bytes
  --tcb-info FILE              TCB info JSON body as Intel's PCS returns it
  --qe-identity FILE           QE identity JSON body as Intel's PCS returns it
  --pck-crl FILE               PCK CRL (DER, PEM or hex)
  --root-crl FILE              Intel SGX Root CA CRL (DER, PEM or hex)
  --*-issuer-chain FILE        the issuer chain PEM Intel sends beside each body
  --intel-root FILE            replace the embedded Intel SGX Root CA (DER or PEM)
  --at UNIX_SECONDS            trusted time for every validity check (default: now)
  --policy FILE                policy JSON; TCB evaluation is on unless "tcbEvaluation": false, and then TCB
                               info, QE identity and both CRLs are required; "platforms" must include tdx
  --json                       print the parsed fields and the verdict as JSON on stdout

Exit codes: 0 accepted, 10 rejected (stderr: "rejected: CODE: reason"), 30 malformed input, 1 internal error.
`;

const FILE_FLAGS = {
  '--quote': 'quote', '--tcb-info': 'tcbInfo', '--qe-identity': 'qeIdentity', '--pck-crl': 'pckCrl', '--root-crl': 'rootCrl',
  '--tcb-info-issuer-chain': 'tcbInfoIssuerChain', '--qe-identity-issuer-chain': 'qeIdentityIssuerChain',
  '--pck-crl-issuer-chain': 'pckCrlIssuerChain', '--intel-root': 'intelRoot', '--policy': 'policy',
} as const;
type FileKey = (typeof FILE_FLAGS)[keyof typeof FILE_FLAGS];

export interface Io {
  stdout: (s: string) => void;
  stderr: (s: string) => void;
  readFile: (path: string) => Promise<Uint8Array>;
  now: () => Date;
}

const defaultIo: Io = {
  stdout: (s) => void process.stdout.write(s),
  stderr: (s) => void process.stderr.write(s),
  readFile: async (p) => new Uint8Array(await readFile(p)),
  now: () => new Date(),
};

class Malformed extends Error {}

export { isMalformedCode };

function parseArgs(argv: string[]): { files: Partial<Record<FileKey, string>>; at?: number; json: boolean; help: boolean } {
  const files: Partial<Record<FileKey, string>> = {};
  let at: number | undefined;
  let json = false;
  let help = false;
  for (let i = 0; i < argv.length; i++) {
    const a = argv[i];
    if (a === '--help' || a === '-h') help = true;
    else if (a === '--json') json = true;
    else if (a === '--at') {
      const v = argv[++i];
      if (v === undefined || !/^\d{1,12}$/.test(v)) throw new Malformed('--at needs UNIX seconds');
      at = Number(v);
    } else if (a in FILE_FLAGS) {
      const v = argv[++i];
      if (v === undefined || v.startsWith('--')) throw new Malformed(`${a} needs a file`);
      const key = FILE_FLAGS[a as keyof typeof FILE_FLAGS];
      if (files[key] !== undefined) throw new Malformed(`${a} given twice`);
      files[key] = v;
    } else throw new Malformed(`unknown argument '${a}'`);
  }
  return { files, at, json, help };
}

function jsonOut(io: Io, verdict: object): void {
  io.stdout(JSON.stringify(verdict, null, 2) + '\n');
}

function describe(v: TdxVerified, trailing: Uint8Array): object {
  const { reportData: _rd, ...rest } = v;
  return { ...rest, ...trailingFields(trailing) };
}

/** What followed the quote's declared end: ignored for the verdict, shown so nothing is hidden. */
function trailingFields(trailing: Uint8Array): object {
  return { trailingBytes: trailing.length, ...(trailing.length ? { trailingData: toHex(trailing) } : {}) };
}

/** Runs `sealed verify tdx` with `argv` = the arguments after `tdx`. Resolves to the exit code. */
export async function runVerifyTdx(argv: string[], io: Io = defaultIo): Promise<number> {
  let json = false;
  try {
    const args = parseArgs(argv);
    json = args.json;
    if (args.help) {
      io.stdout(TDX_USAGE);
      return EXIT.accepted;
    }
    if (!args.files.quote) throw new Malformed('--quote is required');
    const bytes: Partial<Record<FileKey, Uint8Array>> = {};
    for (const [k, path] of Object.entries(args.files) as [FileKey, string][]) {
      try {
        bytes[k] = await io.readFile(path);
      } catch {
        throw new Malformed(`cannot read ${path}`);
      }
    }

    let policy: TdxPolicy = parseTdxPolicy(undefined);
    let tdxAllowed = true;
    let platforms: string[] = [];
    if (bytes.policy) {
      let text: string;
      try {
        text = new TextDecoder('utf-8', { fatal: true }).decode(bytes.policy);
      } catch {
        throw new Malformed('policy is not UTF-8 text');
      }
      const common = parsePolicy(text);
      policy = parseTdxPolicy(common.tdx);
      tdxAllowed = !common.platforms || common.platforms.includes('tdx');
      platforms = common.platforms ?? [];
    }
    const quote = bytes.quote!;
    // Parse first so an unparseable quote is "malformed" (30), not "rejected" (10).
    const parsed = parseQuote(quote);
    const collateral: TdxCollateral = {};
    for (const k of ['tcbInfo', 'qeIdentity', 'pckCrl', 'rootCrl', 'tcbInfoIssuerChain', 'qeIdentityIssuerChain', 'pckCrlIssuerChain'] as const) {
      if (bytes[k]) collateral[k] = bytes[k];
    }
    const at = args.at !== undefined ? new Date(args.at * 1000) : io.now();
    try {
      if (!tdxAllowed) throw new AttestationError('platform_not_allowed', `platform is tdx, the policy's platforms are ${platforms.join(', ')}`);
      const v = await verifyTdxQuote(quote, { collateral, at, policy, intelRoot: bytes.intelRoot });
      if (json) jsonOut(io, { verdict: 'accepted', at: at.toISOString(), ...describe(v, parsed.trailing) });
      else io.stdout(`accepted: TDX quote v${v.quoteVersion} ${v.bodyType}, MRTD ${v.fields.mrTd}` + (v.tcbEvaluated ? `, TCB ${v.tcbStatus}` : ', TCB not evaluated') + (v.advisoryIds.length ? ` (${v.advisoryIds.join(', ')})` : '') + '\n');
      return EXIT.accepted;
    } catch (e) {
      if (!(e instanceof AttestationError) || isMalformedCode(e.code)) throw e;
      io.stderr(`rejected: ${e.code}: ${e.message}\n`);
      if (json) {
        jsonOut(io, {
          verdict: 'rejected', code: e.code, reason: e.message, at: at.toISOString(), quoteVersion: parsed.header.version, bodyType: parsed.body.type,
          qeVendorId: toHex(parsed.header.qeVendorId), fields: quoteFields(parsed), ...trailingFields(parsed.trailing),
        });
      }
      return EXIT.rejected;
    }
  } catch (e) {
    if (e instanceof Malformed || (e instanceof AttestationError && isMalformedCode(e.code))) {
      const code = e instanceof AttestationError ? `${e.code}: ` : '';
      io.stderr(`malformed: ${code}${e.message}\n`);
      if (json) jsonOut(io, { verdict: 'malformed', code: e instanceof AttestationError ? e.code : 'usage', reason: e.message });
      if (e instanceof Malformed && /unknown argument|needs|required|twice/.test(e.message)) io.stderr(TDX_USAGE);
      return EXIT.malformed;
    }
    io.stderr(`internal error: ${e instanceof Error ? e.name : 'unknown'}\n`);
    return EXIT.internal;
  }
}

const invokedDirectly = process.argv[1] !== undefined && /[\\/]cli[\\/]verify-tdx\.(ts|js)$/.test(process.argv[1]);
if (invokedDirectly) {
  runVerifyTdx(process.argv.slice(2)).then((code) => { process.exitCode = code; }, () => { process.exitCode = EXIT.internal; });
}

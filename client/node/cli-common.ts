// What `sealed chat` and `sealed proxy` share: argument parsing with usage errors, reading
// the policy file, connecting with the verification summary on stderr, and the one-line
// rejection of CONTRACT.md (`rejected: CODE: reason`). Node-only (reads files), so it lives
// apart from the SDK.
import { readFile } from 'node:fs/promises';
import { parseArgs, type ParseArgsConfig } from 'node:util';
import { parsePolicy } from '../../enclave/policy.js';
import { SealedClient, describeEvent } from '../sdk.js';
import { SealedClientError, isVerificationFailure } from '../errors.js';
import { formatSummary } from '../report.js';
import { linkabilityNote } from '../privacy.js';

/** Exit codes, matching `sealed verify` where they overlap. */
export const EXIT = { ok: 0, error: 1, usage: 2, rejected: 10, malformed: 30 } as const;

export interface Writable {
  write(s: string): unknown;
}

export class UsageError extends Error {}

/** node:util parseArgs, with its complaints (unknown flag, missing value) as UsageError. */
export function parseCliArgs<T extends ParseArgsConfig>(config: T): ReturnType<typeof parseArgs<T>> {
  try {
    return parseArgs(config);
  } catch (e) {
    throw new UsageError(e instanceof Error ? e.message : String(e));
  }
}

export async function loadPolicyFile(path: string): Promise<unknown> {
  let text: string;
  try {
    text = await readFile(path, 'utf8');
  } catch {
    throw new UsageError(`cannot read policy file ${path}`);
  }
  let policy: unknown;
  try {
    policy = JSON.parse(text);
  } catch {
    throw new UsageError(`policy file ${path} is not JSON`);
  }
  if (typeof policy !== 'object' || policy === null || Array.isArray(policy)) {
    throw new UsageError(`policy file ${path} must hold a JSON object`);
  }
  try {
    parsePolicy(policy); // a misspelt pin must stop us here, not silently pin nothing
  } catch (e) {
    throw new UsageError(`policy file ${path}: ${e instanceof Error ? e.message : String(e)}`);
  }
  return policy;
}

/** The flags every client command takes, for parseCliArgs' `options`. */
export const CONNECT_FLAGS = {
  url: { type: 'string' },
  policy: { type: 'string' },
  'allow-simulation': { type: 'boolean', default: false },
  relay: { type: 'string' },
  'attest-via': { type: 'string' },
  help: { type: 'boolean', short: 'h', default: false },
} as const;

/** The help lines for --relay and --attest-via, the same in every client command. */
export const ROUTE_HELP = `  --relay URL          send the encrypted requests through an OHTTP relay: each goes to
                       URL/v1/sessions/{sid}/ohttp, which the relay forwards to the server
                       (the relay is configured with the server; it sees this machine's
                       address and the session id, never the content)
  --attest-via URL     send the attestation through a forwarding proxy: URL/v1/sessions/{sid}/
                       attestation?nonce=... (without it the server sees this machine's address
                       when the session is made and can link it to every relayed request)`;

export interface ConnectOptions {
  url: string;
  /** The policy file's JSON, already checked by parsePolicy. */
  policy?: unknown;
  allowSimulation: boolean;
  relay?: string;
  attestVia?: string;
}

/** CONNECT_FLAGS' values as options: --url, --relay and --attest-via checked, the --policy file read and checked. */
export async function connectOptions(v: { url?: string; policy?: string; 'allow-simulation'?: boolean; relay?: string; 'attest-via'?: string }): Promise<ConnectOptions> {
  const opts: ConnectOptions = { url: parseServerUrl(v.url), allowSimulation: v['allow-simulation'] === true };
  if (v.relay !== undefined) opts.relay = parseBaseFlag('--relay', v.relay);
  if (v['attest-via'] !== undefined) opts.attestVia = parseBaseFlag('--attest-via', v['attest-via']);
  if (v.policy !== undefined) opts.policy = await loadPolicyFile(v.policy);
  return opts;
}

export function parseServerUrl(s: string | undefined): string {
  if (!s) throw new UsageError('--url is required');
  return parseBaseFlag('--url', s);
}

/** An http(s) base URL with nothing the session path could be confused with (query, fragment, credentials). */
function parseBaseFlag(flag: string, s: string): string {
  let u: URL;
  try {
    u = new URL(s);
  } catch {
    throw new UsageError(`${flag} must be an http(s) URL`);
  }
  if (u.protocol !== 'http:' && u.protocol !== 'https:') throw new UsageError(`${flag} must be an http(s) URL`);
  if (u.username || u.password || u.search || u.hash) throw new UsageError(`${flag} must not carry credentials, a query or a fragment`);
  return s;
}

/** `rejected: CODE: reason`, the line every client prints when it refuses a server. */
export function rejectionLine(e: SealedClientError): string {
  return `rejected: ${e.reason ?? e.code}: ${e.message}`;
}

/**
 * Connects (attests and verifies) and prints the summary. Returns the client, or the exit
 * code after printing why not: verification failures are `rejected` (10), anything else 1.
 * Later, every new session the client attests, and every wait on a busy server, is one
 * `sealed: ...` line on stderr, so a user knows the server they talk to was verified again.
 */
export async function connectAndReport(
  url: string,
  opts: { policy?: unknown; allowSimulation: boolean; relay?: string; attestVia?: string },
  stderr: Writable,
): Promise<SealedClient | number> {
  try {
    const client = await SealedClient.connect(url, {
      policy: opts.policy,
      allowSimulation: opts.allowSimulation,
      ...(opts.relay !== undefined && { relay: opts.relay }),
      ...(opts.attestVia !== undefined && { attestVia: opts.attestVia }),
      onEvent: (e) => stderr.write(`sealed: ${describeEvent(e)}\n`),
    });
    stderr.write(formatSummary(client.verification) + '\n');
    stderr.write(linkabilityNote(client.route) + '\n');
    return client;
  } catch (e) {
    return reportError(e, stderr);
  }
}

export function reportError(e: unknown, stderr: Writable): number {
  if (isVerificationFailure(e)) {
    stderr.write(rejectionLine(e as SealedClientError) + '\n');
    return EXIT.rejected;
  }
  if (e instanceof SealedClientError) {
    stderr.write(`error: ${e.code}: ${e.message}\n`);
    return EXIT.error;
  }
  stderr.write(`error: ${e instanceof Error ? e.message : String(e)}\n`);
  return EXIT.error;
}

/**
 * How every client command starts: parse argv (a usage error prints `sealed NAME: why` and the
 * usage text, exit 2; --help prints the usage text, exit 0), then attest and verify the server
 * and print the summary. Returns the options with the verified client, or the exit code to end with.
 */
export async function parseAndConnect<O extends ConnectOptions>(
  name: string,
  help: string,
  argv: string[],
  parse: (argv: string[]) => Promise<O | 'help'>,
  io: { stdout: Writable; stderr: Writable },
): Promise<{ opts: O; client: SealedClient } | number> {
  let opts: O | 'help';
  try {
    opts = await parse(argv);
  } catch (e) {
    if (e instanceof UsageError) {
      io.stderr.write(`sealed ${name}: ${e.message}\n\n${help}`);
      return EXIT.usage;
    }
    throw e;
  }
  if (opts === 'help') {
    io.stdout.write(help);
    return EXIT.ok;
  }
  const client = await connectAndReport(opts.url, opts, io.stderr);
  return typeof client === 'number' ? client : { opts, client };
}

// Hardware evidence through Linux configfs-tsm (Documentation/ABI/testing/configfs-tsm):
//   mkdir <root>/<entry>; write 64 bytes to inblob; read outblob (the SEV-SNP report or TDX quote),
//   auxblob (SEV-SNP: the certificate table holding VCEK or VLEK, ASK, ARK when the host provides it) and
//   provider ("sev_guest" / "tdx_guest"); then rmdir.
// Every write to an attribute bumps `generation`; if it moved by more than our own one write, another
// process wrote to the same entry between our write and our reads, so the blobs may not be ours:
// discard and retry. The kernel interaction sits behind `TsmOps` so tests drive a fake tree.
import { mkdir, readFile, rmdir, stat, writeFile } from 'node:fs/promises';
import { randomBytes } from 'node:crypto';
import { join } from 'node:path';
import { AttestationError } from '../errors.js';
import { toBase64, toHex, toPem, pemBlocks } from '../encoding.js';
import type { EvidenceProvider, Platform, PlatformEvidence } from './types.js';

export const DEFAULT_TSM_ROOT = '/sys/kernel/config/tsm/report';

/** The file-system operations we need; defaults are node:fs. */
export interface TsmOps {
  mkdir(path: string): Promise<void>;
  rmdir(path: string): Promise<void>;
  writeFile(path: string, data: Uint8Array): Promise<void>;
  /** Resolves undefined when the attribute does not exist (e.g. auxblob on TDX). */
  readFile(path: string): Promise<Uint8Array | undefined>;
}

export const nodeTsmOps: TsmOps = {
  mkdir: async (p) => { await mkdir(p); },
  // configfs entries are removed with rmdir(2) even though they list attribute files.
  rmdir: (p) => rmdir(p),
  writeFile: (p, d) => writeFile(p, d),
  readFile: async (p) => {
    try {
      return new Uint8Array(await readFile(p));
    } catch (e) {
      if ((e as NodeJS.ErrnoException).code === 'ENOENT') return undefined;
      throw e;
    }
  },
};

/** TDX collateral files to attach to every TDX evidence (read once at start-up). */
export interface TdxCollateralFiles {
  tcbInfo?: string; // JSON body from Intel PCS
  qeIdentity?: string; // JSON body from Intel PCS
  pckCrl?: string; // DER or PEM
  rootCrl?: string; // DER or PEM
  tcbInfoIssuerChain?: string; // PEM
  qeIdentityIssuerChain?: string; // PEM
  pckCrlIssuerChain?: string; // PEM
}

export interface ConfigfsTsmOptions {
  /** configfs-tsm report directory; default /sys/kernel/config/tsm/report. */
  root?: string;
  ops?: TsmOps;
  /** Attempts when a concurrent writer is detected; default 3. */
  maxAttempts?: number;
  /** Fail unless the kernel provider is this platform. */
  expect?: Platform;
  /** TDX only: collateral files to attach (see TdxCollateralFiles). Nothing is fetched from the network. */
  tdxCollateral?: TdxCollateralFiles;
  /** SEV-SNP only: certificates to use when the host supplies none in auxblob (DER or PEM files). */
  sevCerts?: { vcek?: string; askArk?: string };
}

export async function tsmAvailable(root: string = DEFAULT_TSM_ROOT): Promise<boolean> {
  try {
    return (await stat(root)).isDirectory();
  } catch {
    return false;
  }
}

// mkdir(2) in the report directory when no SEV-SNP/TDX guest driver registered with the tsm core:
// the kernel answers ENXIO (drivers/virt/coco/tsm.c); ENODEV is taken alike, for other versions.
const NO_PROVIDER_ERRNO = new Set(['ENXIO', 'ENODEV']);

export type TsmProbe = { tee: true } | { tee: false; reason: string };

/**
 * Whether `root` is a configfs-tsm report directory that can make reports. The directory alone
 * proves nothing: the tsm module stays loaded (and the directory present) on an ordinary VM after
 * sev-guest and tdx-guest refuse to bind. A TEE is there only when an entry can be created and the
 * kernel names its provider in it. Any other failure (permissions, I/O) is thrown: it may be a TEE
 * that is misconfigured, so it must not pass for "no TEE" (and so allow the simulator).
 */
export async function probeTsm(root: string = DEFAULT_TSM_ROOT, ops: TsmOps = nodeTsmOps): Promise<TsmProbe> {
  if (ops === nodeTsmOps && !(await tsmAvailable(root))) return { tee: false, reason: `${root} absent` };
  const entry = join(root, `sealed-probe-${toHex(new Uint8Array(randomBytes(8)))}`);
  try {
    await ops.mkdir(entry);
  } catch (e) {
    const errno = (e as NodeJS.ErrnoException).code ?? 'unknown error';
    if (errno === 'ENOENT') return { tee: false, reason: `${root} absent` };
    if (NO_PROVIDER_ERRNO.has(errno)) return { tee: false, reason: `configfs-tsm has no SEV-SNP or TDX provider (${errno})` };
    throw new AttestationError('tsm_unavailable', `cannot create a configfs-tsm report entry (${errno})`);
  }
  try {
    const provider = await ops.readFile(join(entry, 'provider')).catch(() => {
      throw new AttestationError('tsm_io', 'configfs-tsm I/O failed (provider)');
    });
    // An entry without a provider attribute is an ordinary directory, not configfs-tsm.
    if (provider === undefined) return { tee: false, reason: `${root} is not a configfs-tsm report directory` };
    readProvider(provider); // an unknown provider is an error of its own, never "no TEE"
    return { tee: true };
  } finally {
    await ops.rmdir(entry).catch(() => undefined);
  }
}

// GUIDs of the SEV-SNP extended-report certificate table (GHCB spec, "SNP Extended Guest Request"),
// in RFC 4122 byte order as go-sev-guest reads them.
const GUID = {
  vcek: '63da758de6644564adc5f4b93be8accd',
  vlek: 'a8074bc2a25a483eaae639c045a0b8a1',
  ask: '4ab7b379bbac4fe4a02f05aef327c782',
  ark: 'c0b406a4a803495297433fb6014cd0ae',
} as const;

export interface SevCertTable {
  vcek?: Uint8Array;
  vlek?: Uint8Array;
  ask?: Uint8Array;
  ark?: Uint8Array;
}

/**
 * The auxblob certificate table: entries { guid[16], offset u32le, length u32le } ending with an
 * all-zero entry; offsets are from the start of the blob. Strict: bounds, terminator, duplicates.
 */
export function parseSevCertTable(blob: Uint8Array): SevCertTable {
  const out: SevCertTable = {};
  const seen = new Set<string>();
  const le32 = (o: number) => (blob[o] | (blob[o + 1] << 8) | (blob[o + 2] << 16) | (blob[o + 3] << 24)) >>> 0;
  for (let o = 0; ; o += 24) {
    if (o + 24 > blob.length) throw new AttestationError('tsm_cert_table', 'certificate table is not terminated');
    const guid = toHex(blob.subarray(o, o + 16));
    const off = le32(o + 16);
    const len = le32(o + 20);
    if (/^0+$/.test(guid) && off === 0 && len === 0) break;
    if (seen.has(guid)) throw new AttestationError('tsm_cert_table', 'duplicate certificate table entry');
    seen.add(guid);
    if (off > blob.length || len > blob.length - off || len === 0) {
      throw new AttestationError('tsm_cert_table', 'certificate table entry out of bounds');
    }
    const data = Uint8Array.prototype.slice.call(blob, off, off + len); // a copy even for a Buffer
    for (const [name, g] of Object.entries(GUID)) if (g === guid) out[name as keyof SevCertTable] = data;
  }
  return out;
}

function readProvider(bytes: Uint8Array | undefined): Platform {
  const s = bytes ? new TextDecoder().decode(bytes).trim() : '';
  if (s === 'sev_guest') return 'sev-snp';
  if (s === 'tdx_guest') return 'tdx';
  throw new AttestationError('tsm_provider', 'unknown configfs-tsm provider');
}

function readGeneration(bytes: Uint8Array | undefined): number {
  const s = bytes ? new TextDecoder().decode(bytes).trim() : '';
  if (!/^\d{1,15}$/.test(s)) throw new AttestationError('tsm_generation', 'unreadable generation');
  return Number(s);
}

async function loadCollateral(files: TdxCollateralFiles): Promise<Record<string, string>> {
  const out: Record<string, string> = {};
  for (const [key, path] of Object.entries(files) as Array<[keyof TdxCollateralFiles, string | undefined]>) {
    if (!path) continue;
    const data = new Uint8Array(await readFile(path));
    if (key === 'pckCrl' || key === 'rootCrl') {
      // CRLs travel as base64 DER; accept a PEM file too.
      const text = new TextDecoder().decode(data);
      const pem = text.includes('-----BEGIN X509 CRL-----') ? pemBlocks(text, 'X509 CRL', 'tdx_collateral') : [];
      out[key] = toBase64(pem[0] ?? data);
    } else {
      out[key] = new TextDecoder('utf-8', { fatal: true }).decode(data);
    }
  }
  return out;
}

async function loadSevFallback(files: { vcek?: string; askArk?: string }): Promise<{ vcek?: Uint8Array; certChain?: string }> {
  const out: { vcek?: Uint8Array; certChain?: string } = {};
  if (files.vcek) {
    const data = new Uint8Array(await readFile(files.vcek));
    const pem = pemBlocks(new TextDecoder().decode(data), 'CERTIFICATE', 'sev_certs');
    out.vcek = pem[0] ?? data;
  }
  if (files.askArk) out.certChain = new TextDecoder().decode(await readFile(files.askArk));
  return out;
}

export interface TsmReport {
  provider: Platform;
  outblob: Uint8Array;
  auxblob?: Uint8Array;
}

/** One report through configfs-tsm, retrying when another writer raced us. */
export async function getTsmReport(inblob: Uint8Array, opts: ConfigfsTsmOptions = {}): Promise<TsmReport> {
  if (inblob.length !== 64) throw new AttestationError('bad_report_data', 'inblob must be 64 bytes');
  const root = opts.root ?? DEFAULT_TSM_ROOT;
  const ops = opts.ops ?? nodeTsmOps;
  const attempts = opts.maxAttempts ?? 3;
  for (let attempt = 1; attempt <= attempts; attempt++) {
    const entry = join(root, `sealed-${toHex(new Uint8Array(randomBytes(8)))}`);
    try {
      await ops.mkdir(entry);
    } catch (e) {
      const errno = (e as NodeJS.ErrnoException).code ?? 'unknown error';
      throw new AttestationError('tsm_unavailable', `cannot create a configfs-tsm report entry (${errno})`);
    }
    try {
      const before = readGeneration(await ops.readFile(join(entry, 'generation')));
      await ops.writeFile(join(entry, 'inblob'), inblob);
      const outblob = await ops.readFile(join(entry, 'outblob'));
      const auxblob = await ops.readFile(join(entry, 'auxblob'));
      const provider = readProvider(await ops.readFile(join(entry, 'provider')));
      const after = readGeneration(await ops.readFile(join(entry, 'generation')));
      if (after !== before + 1) continue; // a concurrent writer: these blobs may answer its inblob
      if (!outblob || outblob.length === 0) throw new AttestationError('tsm_no_report', 'configfs-tsm returned no report');
      return { provider, outblob, auxblob: auxblob && auxblob.length > 0 ? auxblob : undefined };
    } catch (e) {
      if (e instanceof AttestationError) throw e;
      throw new AttestationError('tsm_io', 'configfs-tsm I/O failed');
    } finally {
      await ops.rmdir(entry).catch(() => undefined);
    }
  }
  throw new AttestationError('tsm_contended', `configfs-tsm generation changed under us ${attempts} times`);
}

export async function createConfigfsTsmProvider(opts: ConfigfsTsmOptions = {}): Promise<EvidenceProvider> {
  const root = opts.root ?? DEFAULT_TSM_ROOT;
  const probed = await probeTsm(root, opts.ops ?? nodeTsmOps);
  if (!probed.tee) throw new AttestationError('no_tee', `no TEE found (${probed.reason})`);
  // Probe once so start-up fails early (and we know which platform we are).
  const probe = await getTsmReport(new Uint8Array(64), opts);
  const platform = probe.provider;
  if (opts.expect && opts.expect !== platform) {
    throw new AttestationError('tsm_provider', `configfs-tsm provider is ${platform}, not ${opts.expect}`);
  }
  const collateral = platform === 'tdx' && opts.tdxCollateral ? await loadCollateral(opts.tdxCollateral) : undefined;
  const sevFallback = platform === 'sev-snp' && opts.sevCerts ? await loadSevFallback(opts.sevCerts) : {};

  return {
    platform,
    simulated: false,
    async getEvidence(reportData: Uint8Array): Promise<PlatformEvidence> {
      const r = await getTsmReport(reportData, opts);
      if (r.provider !== platform) throw new AttestationError('tsm_provider', 'configfs-tsm provider changed');
      if (platform === 'tdx') return collateral ? { report: r.outblob, collateral } : { report: r.outblob };
      const table = r.auxblob ? parseSevCertTable(r.auxblob) : {};
      // The report's SIGNING_KEY (bits 4:2 of 0x48) says which key the client must check it with. A
      // VLEK's intermediate is the ASVK, which the table has no entry for: its ASK/ARK entries are
      // sent only with a VCEK, and a VLEK travels alone (the client has AMD's ASVKs pinned) unless the
      // operator configured its chain.
      const vlekSigned = r.outblob.length > 0x48 && ((r.outblob[0x48] >> 2) & 7) === 1;
      const vcek = vlekSigned ? table.vlek ?? sevFallback.vcek : table.vcek ?? sevFallback.vcek;
      const certChain =
        !vlekSigned && table.ask && table.ark ? toPem(table.ask) + toPem(table.ark) : sevFallback.certChain;
      const ev: PlatformEvidence = { report: r.outblob };
      if (vcek) ev.vcek = vcek;
      if (certChain) ev.certChain = certChain;
      return ev;
    },
  };
}

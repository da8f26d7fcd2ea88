// The simulated SEV-SNP provider: a genuine version-3 ATTESTATION_REPORT, every field set as
// firmware would set it, signed by a simulated VCEK whose ASK/ARK chain is created in memory at
// start-up (sim-chain.ts). Clients accept it only when told to allow simulation, and then verify
// it with exactly the code used for hardware, trusting only the chain it ships.
import { randomBytes } from 'node:crypto';
import { readFile, readdir } from 'node:fs/promises';
import { join, relative, sep } from 'node:path';
import { fileURLToPath } from 'node:url';
import { sha256, sha384 } from '@noble/hashes/sha2.js';
import { AttestationError } from '../errors.js';
import { fromHex, toHex, toPem } from '../encoding.js';
import {
  encodeReport, encodeTcb, OFF, SIG_ALGO_ECDSA_P384_SHA384, SIGNED_LENGTH, type SevProduct, type TcbParts,
} from '../sev-snp/report.js';
import { createSimulatedChain, signReportBody, type SimulatedChain } from './sim-chain.js';
import type { EvidenceProvider, PlatformEvidence } from './types.js';

export const SIM_MEASUREMENT_LABEL = 'sealed-inference simulated launch measurement v1';

/**
 * MEASUREMENT of the simulated guest:
 *   SHA-384("sealed-inference simulated launch measurement v1" || 0x00 || codeDigest[32] || modelDigest[32])
 * Pure, so a client can recompute the value it expects from a code digest and a model digest.
 */
export function simulatedMeasurement(codeDigest: Uint8Array, modelDigest: Uint8Array): Uint8Array {
  if (codeDigest.length !== 32 || modelDigest.length !== 32) {
    throw new AttestationError('sim_measurement_input', 'code and model digests must be 32 bytes');
  }
  const label = new TextEncoder().encode(SIM_MEASUREMENT_LABEL);
  const buf = new Uint8Array(label.length + 1 + 64);
  buf.set(label, 0);
  buf.set(codeDigest, label.length + 1);
  buf.set(modelDigest, label.length + 33);
  return sha384(buf);
}

const CODE_DIRS = ['bin', 'cli', 'client', 'enclave', 'engine', 'server', 'transport'];
const CODE_FILES = ['package.json', 'package-lock.json'];
const CODE_EXT = /\.(ts|mts|js|mjs|cjs|json|html|css)$/;

/** The repository root this module was loaded from (enclave/providers/ -> ../..). */
export function defaultCodeRoot(): string {
  return fileURLToPath(new URL('../../', import.meta.url));
}

/**
 * Digest of the running code: SHA-256 over the sorted lines "sha256hex  relative/path\n" of every
 * source file under the code directories (tests, docs and models excluded: the model is measured
 * by its own manifest digest).
 */
export async function codeDigest(root: string = defaultCodeRoot()): Promise<Uint8Array> {
  const files: string[] = [];
  async function walk(dir: string): Promise<void> {
    let entries;
    try {
      entries = await readdir(dir, { withFileTypes: true });
    } catch {
      return; // a directory this build does not have
    }
    for (const e of entries) {
      if (e.name === 'node_modules' || e.name.startsWith('.')) continue;
      const p = join(dir, e.name);
      if (e.isDirectory()) await walk(p);
      else if (e.isFile() && CODE_EXT.test(e.name)) files.push(p);
    }
  }
  for (const d of CODE_DIRS) await walk(join(root, d));
  for (const f of CODE_FILES) files.push(join(root, f));
  const lines: string[] = [];
  for (const f of files) {
    let data: Uint8Array;
    try {
      data = await readFile(f);
    } catch {
      continue;
    }
    lines.push(`${toHex(sha256(data))}  ${relative(root, f).split(sep).join('/')}\n`);
  }
  lines.sort();
  return sha256(new TextEncoder().encode(lines.join('')));
}

export interface SimulatedProviderOptions {
  /** hex SHA-256 of the model manifest (or 32 bytes); all-zero when not given. */
  modelDigest?: string | Uint8Array;
  /** Overrides the code digest (otherwise computed from `codeRoot`). */
  codeDigest?: Uint8Array;
  codeRoot?: string;
  product?: SevProduct;
  tcb?: TcbParts;
  /** RSA modulus for the simulated ARK/ASK; default 2048 (AMD uses 4096). */
  rsaBits?: number;
  /** HOST_DATA (32 bytes); zero by default. */
  hostData?: Uint8Array;
}

export interface SimulatedProvider extends EvidenceProvider {
  readonly platform: 'sev-snp';
  readonly simulated: true;
  /** The guest MEASUREMENT every report carries (48 bytes). */
  readonly measurement: Uint8Array;
  readonly chain: Pick<SimulatedChain, 'product' | 'ark' | 'ask' | 'vcek' | 'chipId' | 'tcb'>;
}

// CPUID family/model/stepping of a representative part of each product.
const CPUID: Record<SevProduct, [number, number, number]> = {
  Milan: [0x19, 0x01, 0x01],
  Genoa: [0x19, 0x11, 0x01],
  Turin: [0x1a, 0x02, 0x00],
};

// GUEST_POLICY: ABI 0.0, SMT allowed (bit 16), reserved must-be-one (bit 17); no debug, no
// migration agent, no single-socket restriction.
export const SIM_GUEST_POLICY = (1n << 16n) | (1n << 17n);

export async function createSimulatedProvider(opts: SimulatedProviderOptions = {}): Promise<SimulatedProvider> {
  const modelDigest =
    opts.modelDigest === undefined ? new Uint8Array(32)
    : typeof opts.modelDigest === 'string' ? fromHex(opts.modelDigest, 'bad_model_digest', 32)
    : opts.modelDigest;
  if (modelDigest.length !== 32) throw new AttestationError('bad_model_digest', 'model digest must be 32 bytes');
  const hostData = opts.hostData ?? new Uint8Array(32);
  if (hostData.length !== 32) throw new AttestationError('sim_host_data', 'hostData must be 32 bytes');
  const code = opts.codeDigest ?? (await codeDigest(opts.codeRoot));
  const measurement = simulatedMeasurement(code, modelDigest);
  const chain = createSimulatedChain({ product: opts.product, tcb: opts.tcb, rsaBits: opts.rsaBits });
  const product = chain.product;
  const tcb = encodeTcb(chain.tcb, product);
  const reportId = new Uint8Array(randomBytes(32)); // per guest launch
  const [fam, mod, step] = CPUID[product];
  const certChain = toPem(chain.ask) + toPem(chain.ark);
  let vcekKey: SimulatedChain['vcekKey'] | undefined = chain.vcekKey;

  return {
    platform: 'sev-snp',
    simulated: true,
    measurement,
    chain: { product, ark: chain.ark, ask: chain.ask, vcek: chain.vcek, chipId: chain.chipId, tcb: chain.tcb },
    async getEvidence(reportData: Uint8Array): Promise<PlatformEvidence> {
      if (!(reportData instanceof Uint8Array) || reportData.length !== 64) {
        throw new AttestationError('bad_report_data', 'REPORT_DATA must be 64 bytes');
      }
      if (!vcekKey) throw new AttestationError('provider_closed', 'provider is closed');
      const body = encodeReport({
        version: 3,
        guestSvn: 0,
        policy: SIM_GUEST_POLICY,
        familyId: new Uint8Array(16),
        imageId: new Uint8Array(16),
        vmpl: 0,
        signatureAlgo: SIG_ALGO_ECDSA_P384_SHA384,
        currentTcb: tcb,
        platformInfo: 1n, // SMT enabled
        authorKeyEn: false,
        maskChipKey: false,
        signingKey: 0, // VCEK
        reportData,
        measurement,
        hostData,
        idKeyDigest: new Uint8Array(48),
        authorKeyDigest: new Uint8Array(48),
        reportId,
        reportIdMa: new Uint8Array(32).fill(0xff), // no migration agent
        reportedTcb: tcb,
        cpuidFamId: fam,
        cpuidModId: mod,
        cpuidStep: step,
        chipId: chain.chipId,
        committedTcb: tcb,
        currentBuild: 21,
        currentMinor: 55,
        currentMajor: 1,
        committedBuild: 21,
        committedMinor: 55,
        committedMajor: 1,
        launchTcb: tcb,
      });
      const { r, s } = signReportBody(vcekKey, body.subarray(0, SIGNED_LENGTH));
      body.set(r, OFF.signatureR);
      body.set(s, OFF.signatureS);
      return { report: body, vcek: chain.vcek.slice(), certChain };
    },
    close() {
      // KeyObjects cannot be zeroed from JS; dropping the only reference is what we can do.
      vcekKey = undefined;
    },
  };
}

// `sealed measure`: the launch measurement an SEV-SNP (or SEV-ES / SEV) guest
// must report for a given OVMF, kernel, initrd, command line and vCPU set-up,
// with the flags of virtee/sev-snp-measure, and the policy file clients pin.
import { readFile, writeFile } from 'node:fs/promises';
import process from 'node:process';
import { parseArgs } from 'node:util';
import type { Command } from '../sealed.js';
import {
  MeasureError,
  VCPU_TYPES,
  VMM_TYPES,
  cpuSig,
  measurementPolicy,
  mergeMeasurementPolicy,
  sevEsLaunchDigest,
  sevLaunchDigest,
  snpLaunchDigest,
  snpOvmfHash,
  type DirectBoot,
  type VmmType,
} from '../../enclave/measure/index.js';

const HELP = `usage: sealed measure --ovmf FILE [--mode snp|seves|sev|snp:ovmf-hash] --vcpus N
                      [--vcpu-type TYPE | --vcpu-sig VALUE | --vcpu-family F --vcpu-model M --vcpu-stepping S]
                      [--kernel FILE [--initrd FILE] [--append CMDLINE]] [--vmm-type qemu|ec2|gce]
                      [--guest-features VALUE] [--snp-ovmf-hash HEX] [--output-format hex|base64]
                      [--policy-out FILE [--merge] [--model-dir DIR [--model-file NAME]]]

Computes the launch digest AMD firmware reports as MEASUREMENT for a guest booted from OVMF,
exactly as virtee/sev-snp-measure does, and prints it (hex by default).

options:
  --mode MODE            snp (default), seves, sev, or snp:ovmf-hash (print only the digest of
                         the OVMF pages, for --snp-ovmf-hash later)
  --ovmf FILE            the OVMF image the VM boots (e.g. OVMF AmdSevX64 for direct boot)
  --snp-ovmf-hash HEX    precomputed OVMF digest (96 hex digits); the OVMF file is then only read
                         for its metadata (the reset vector and the SEV sections)
  --vcpus N              number of vCPUs at launch (required for snp and seves)
  --vcpu-type TYPE       guest vCPU model: ${Object.keys(VCPU_TYPES).join(', ')}
  --vcpu-sig VALUE       guest vCPU signature (CPUID Fn0000_0001_EAX), decimal or 0x-hex
  --vcpu-family/--vcpu-model/--vcpu-stepping  the signature from its parts
  --kernel FILE          measured direct boot: kernel (the hashes page of OVMF AmdSev)
  --initrd FILE          initrd for --kernel (absent: hashed as empty)
  --append CMDLINE       kernel command line for --kernel (hashed with its trailing NUL)
  --vmm-type TYPE        qemu (default), ec2 or gce: the VMM's initial register state
  --guest-features VALUE SEV_FEATURES of the VMSAs (default 0x1: SNPActive)
  --output-format FMT    hex (default) or base64
  --policy-out FILE      also write the policy clients pin: {"measurement", "platforms": ["sev-snp"]}
  --merge                add the measurement to the policy already in FILE (keeps its other keys)
  --model-dir DIR        also pin "modelDigest": the manifest digest of the model in DIR
  --model-file NAME      the graph under DIR/onnx/ the server serves (as sealed serve --model-file)
  -h, --help             this text

exit status: 0 printed, 2 usage, 30 malformed input (OVMF without the needed metadata), 1 other error.
`;

export interface MeasureIo {
  stdout: { write(s: string): unknown };
  stderr: { write(s: string): unknown };
}

class UsageError extends Error {}

type Mode = 'snp' | 'seves' | 'sev' | 'snp:ovmf-hash';
const MODES: readonly Mode[] = ['snp', 'seves', 'sev', 'snp:ovmf-hash'];

function parseIntArg(name: string, s: string, max: number): number {
  if (!/^(0x[0-9a-fA-F]+|\d+)$/.test(s)) throw new UsageError(`--${name} must be a decimal or 0x-hex integer`);
  const n = Number(s);
  if (!Number.isSafeInteger(n) || n > max) throw new UsageError(`--${name} is out of range`);
  return n;
}

function parseBigArg(name: string, s: string): bigint {
  if (!/^(0x[0-9a-fA-F]{1,16}|\d{1,20})$/.test(s)) throw new UsageError(`--${name} must be a decimal or 0x-hex integer`);
  const n = BigInt(s);
  if (n > 0xffff_ffff_ffff_ffffn) throw new UsageError(`--${name} is out of range`);
  return n;
}

async function readInput(flag: string, path: string): Promise<Uint8Array> {
  try {
    const b = await readFile(path);
    return new Uint8Array(b.buffer, b.byteOffset, b.byteLength);
  } catch {
    throw new UsageError(`cannot read --${flag} file ${path}`);
  }
}

export async function runMeasure(argv: string[], io: MeasureIo): Promise<number> {
  let parsed;
  try {
    parsed = parseArgs({
      args: argv,
      strict: true,
      allowPositionals: false,
      options: {
        mode: { type: 'string', default: 'snp' },
        ovmf: { type: 'string' },
        'snp-ovmf-hash': { type: 'string' },
        vcpus: { type: 'string' },
        'vcpu-type': { type: 'string' },
        'vcpu-sig': { type: 'string' },
        'vcpu-family': { type: 'string' },
        'vcpu-model': { type: 'string' },
        'vcpu-stepping': { type: 'string' },
        kernel: { type: 'string' },
        initrd: { type: 'string' },
        append: { type: 'string' },
        'vmm-type': { type: 'string', default: 'qemu' },
        'guest-features': { type: 'string', default: '0x1' },
        'output-format': { type: 'string', default: 'hex' },
        'policy-out': { type: 'string' },
        merge: { type: 'boolean', default: false },
        'model-dir': { type: 'string' },
        'model-file': { type: 'string' },
        help: { type: 'boolean', short: 'h', default: false },
      },
    });
  } catch (e) {
    io.stderr.write(`sealed measure: ${e instanceof Error ? e.message : String(e)}\n${HELP}`);
    return 2;
  }
  const v = parsed.values;
  if (v.help) {
    io.stdout.write(HELP);
    return 0;
  }
  try {
    const mode = v.mode as Mode;
    if (!MODES.includes(mode)) throw new UsageError(`--mode must be one of ${MODES.join(', ')}`);
    const vmm = v['vmm-type'] as VmmType;
    if (!VMM_TYPES.includes(vmm)) throw new UsageError(`--vmm-type must be one of ${VMM_TYPES.join(', ')}`);
    if (v['output-format'] !== 'hex' && v['output-format'] !== 'base64') throw new UsageError('--output-format must be hex or base64');
    if (v.ovmf === undefined) throw new UsageError('--ovmf is required');
    if (v.kernel === undefined && (v.initrd !== undefined || v.append !== undefined)) {
      throw new UsageError('--initrd and --append need --kernel');
    }
    if (v['snp-ovmf-hash'] !== undefined && mode !== 'snp') throw new UsageError('--snp-ovmf-hash only applies to --mode snp');
    if (v['model-file'] !== undefined && v['model-dir'] === undefined) throw new UsageError('--model-file needs --model-dir');
    if ((v.merge || v['model-dir'] !== undefined) && v['policy-out'] === undefined) {
      throw new UsageError('--merge and --model-dir need --policy-out');
    }
    if (v['policy-out'] !== undefined && mode !== 'snp') throw new UsageError('--policy-out needs --mode snp');

    const ovmf = await readInput('ovmf', v.ovmf);
    let digest: Uint8Array;
    if (mode === 'snp:ovmf-hash') {
      digest = snpOvmfHash(ovmf);
    } else if (mode === 'sev') {
      digest = sevLaunchDigest({ ovmf, boot: await directBoot(v) });
    } else {
      if (v.vcpus === undefined) throw new UsageError(`--vcpus is required in mode ${mode}`);
      const vcpus = parseIntArg('vcpus', v.vcpus, 4096);
      const vcpuSig = resolveVcpuSig(v, vmm, mode);
      const boot = await directBoot(v);
      if (mode === 'seves') {
        digest = sevEsLaunchDigest({ ovmf, boot, vcpus, vcpuSig, vmm });
      } else {
        let ovmfHash: Uint8Array | undefined;
        if (v['snp-ovmf-hash'] !== undefined) {
          if (!/^[0-9a-fA-F]{96}$/.test(v['snp-ovmf-hash'])) throw new UsageError('--snp-ovmf-hash must be 96 hex digits');
          ovmfHash = Uint8Array.from(Buffer.from(v['snp-ovmf-hash'], 'hex'));
        }
        const guestFeatures = parseBigArg('guest-features', v['guest-features'] as string);
        digest = snpLaunchDigest({ ovmf, ovmfHash, vcpus, vcpuSig, guestFeatures, vmm, boot });
      }
    }
    const out = v['output-format'] === 'hex' ? Buffer.from(digest).toString('hex') : Buffer.from(digest).toString('base64');

    if (v['policy-out'] !== undefined) {
      await writePolicy(v['policy-out'], digest, v.merge === true, v['model-dir'], v['model-file']);
    }
    io.stdout.write(out + '\n');
    return 0;
  } catch (e) {
    if (e instanceof UsageError) {
      io.stderr.write(`sealed measure: ${e.message}\n`);
      return 2;
    }
    if (e instanceof MeasureError) {
      io.stderr.write(`sealed measure: ${e.code}: ${e.message}\n`);
      return e.code === 'invalid_argument' ? 2 : 30;
    }
    io.stderr.write(`sealed measure: internal error: ${e instanceof Error ? e.message : String(e)}\n`);
    return 1;
  }
}

interface Values {
  kernel?: string;
  initrd?: string;
  append?: string;
  'vcpu-type'?: string;
  'vcpu-sig'?: string;
  'vcpu-family'?: string;
  'vcpu-model'?: string;
  'vcpu-stepping'?: string;
}

async function directBoot(v: Values): Promise<DirectBoot | undefined> {
  if (v.kernel === undefined) return undefined;
  return {
    kernel: await readInput('kernel', v.kernel),
    initrd: v.initrd === undefined ? undefined : await readInput('initrd', v.initrd),
    append: v.append,
  };
}

function resolveVcpuSig(v: Values, vmm: VmmType, mode: Mode): number {
  const given = [v['vcpu-type'], v['vcpu-sig'], v['vcpu-family']].filter((x) => x !== undefined).length;
  if (given > 1) throw new UsageError('give only one of --vcpu-type, --vcpu-sig, --vcpu-family');
  if (v['vcpu-family'] !== undefined) {
    if (v['vcpu-model'] === undefined || v['vcpu-stepping'] === undefined) {
      throw new UsageError('--vcpu-family needs --vcpu-model and --vcpu-stepping');
    }
    return cpuSig(
      parseIntArg('vcpu-family', v['vcpu-family'], 0x10e),
      parseIntArg('vcpu-model', v['vcpu-model'], 0xff),
      parseIntArg('vcpu-stepping', v['vcpu-stepping'], 0xf),
    );
  }
  if (v['vcpu-sig'] !== undefined) return parseIntArg('vcpu-sig', v['vcpu-sig'], 0xffff_ffff);
  if (v['vcpu-type'] !== undefined) {
    if (!Object.hasOwn(VCPU_TYPES, v['vcpu-type'])) throw new UsageError(`unknown --vcpu-type; one of ${Object.keys(VCPU_TYPES).join(', ')}`);
    return VCPU_TYPES[v['vcpu-type']];
  }
  // EC2 and GCE put a fixed value in RDX, so the guest's CPU model is not measured there.
  if (vmm !== 'qemu') return 0;
  throw new UsageError(`missing --vcpu-type, --vcpu-sig or --vcpu-family in mode ${mode}`);
}

async function writePolicy(path: string, digest: Uint8Array, merge: boolean, modelDir: string | undefined, modelFile: string | undefined): Promise<void> {
  let policy;
  if (merge) {
    let existing: unknown;
    try {
      existing = JSON.parse(await readFile(path, 'utf8'));
    } catch {
      throw new UsageError(`--merge: cannot read a JSON policy from ${path}`);
    }
    policy = mergeMeasurementPolicy(existing, [digest]);
  } else {
    policy = measurementPolicy([digest]);
  }
  if (modelDir !== undefined) {
    // Loaded lazily: the engine's manifest code is Node-only and not needed otherwise.
    const { computeModelDigest } = await import('../../engine/manifest.js');
    policy.modelDigest = (await computeModelDigest(modelDir, modelFile)).digest;
  }
  await writeFile(path, JSON.stringify(policy, null, 2) + '\n', { mode: 0o644 });
}

export const command: Command = {
  summary: 'compute the expected SEV-SNP launch measurement and the policy clients pin',
  run: (argv) => runMeasure(argv, { stdout: process.stdout, stderr: process.stderr }),
};

// Launch digests for SEV, SEV-ES and SEV-SNP guests booted from OVMF, computed
// the way AMD firmware computes them for the page sequence QEMU (or EC2, or
// GCE) hands it, following virtee/sev-snp-measure.
import { sha256 } from '@noble/hashes/sha2.js';
import { LaunchDigest, LD_SIZE, PAGE_SIZE, PageType } from './gctx.js';
import { MeasureError } from './errors.js';
import { parseOvmf, SectionType, type MetadataSection, type Ovmf } from './ovmf.js';
import { hashTable, hashTablePage, kernelHashes, type DirectBoot } from './sev-hashes.js';
import { BSP_EIP, buildVmsa, VMM_TYPES, type VmmType } from './vmsa.js';

export const MAX_VCPUS = 512;

export interface SnpOptions {
  /** The OVMF image (its footer table and SEV metadata are always read). */
  ovmf: Uint8Array;
  /**
   * A precomputed digest of the OVMF pages alone (`snpOvmfHash`), used as the
   * starting point instead of measuring `ovmf`'s pages (sev-snp-measure
   * --snp-ovmf-hash): lets a verifier keep the 48-byte hash instead of the image.
   */
  ovmfHash?: Uint8Array;
  vcpus: number;
  /** CPUID signature (`VCPU_TYPES[...]` or `cpuSig(...)`); only QEMU measures it. */
  vcpuSig: number;
  /** SEV_FEATURES of every VMSA; bit 0 (SNPActive) must be set. Default 0x1. */
  guestFeatures?: bigint;
  vmm?: VmmType;
  /** Measured direct boot (OVMF AmdSev with the kernel hashes page). */
  boot?: DirectBoot;
}

function checkVcpus(vcpus: number): void {
  if (!Number.isInteger(vcpus) || vcpus < 1 || vcpus > MAX_VCPUS) {
    throw new MeasureError('invalid_argument', `vcpus must be an integer in 1..${MAX_VCPUS}`);
  }
}

function resetEip(ovmf: Ovmf): number {
  if (ovmf.sevEsResetEip === undefined) {
    throw new MeasureError('ovmf_no_reset_block', 'OVMF has no SEV-ES reset block; it cannot start SEV-ES/SNP vCPUs');
  }
  return ovmf.sevEsResetEip;
}

function vmsaPages(ovmf: Ovmf, vcpus: number, vcpuSig: number, sevFeatures: bigint, vmm: VmmType): Uint8Array[] {
  const apEip = resetEip(ovmf);
  const bsp = buildVmsa({ eip: BSP_EIP, vcpuSig, sevFeatures, vmm });
  const ap = vcpus > 1 ? buildVmsa({ eip: apEip, vcpuSig, sevFeatures, vmm }) : bsp;
  return Array.from({ length: vcpus }, (_, i) => (i === 0 ? bsp : ap));
}

/** The digest of the OVMF pages alone, mapped to end at 4 GiB. */
export function snpOvmfHash(ovmfImage: Uint8Array): Uint8Array {
  const ovmf = parseOvmf(ovmfImage);
  if (ovmfImage.length % PAGE_SIZE !== 0) throw new MeasureError('ovmf_not_page_aligned', 'OVMF size is not a multiple of 4 KiB');
  const ld = new LaunchDigest();
  ld.updateNormalPages(ovmf.gpa, ovmf.data);
  return ld.digest();
}

function kernelHashesSection(ld: LaunchDigest, ovmf: Ovmf, s: MetadataSection, boot: DirectBoot | undefined, vmm: VmmType): void {
  if (boot === undefined) {
    ld.updateContentlessPages(PageType.zero, BigInt(s.gpa), s.size);
    return;
  }
  if (ovmf.sevHashesTableGpa === undefined) {
    throw new MeasureError('ovmf_no_kernel_hashes', 'OVMF does not declare where the kernel hashes table goes');
  }
  if (s.size !== PAGE_SIZE) throw new MeasureError('ovmf_metadata_malformed', 'kernel hashes section is not one page');
  const page = hashTablePage(kernelHashes(boot), ovmf.sevHashesTableGpa & 0xfff);
  ld.updateNormalPages(BigInt(s.gpa), page);
}

export function snpLaunchDigest(opts: SnpOptions): Uint8Array {
  const vmm = opts.vmm ?? 'qemu';
  if (!VMM_TYPES.includes(vmm)) throw new MeasureError('invalid_argument', 'unknown VMM type');
  const guestFeatures = opts.guestFeatures ?? 0x1n;
  if ((guestFeatures & 1n) !== 1n) throw new MeasureError('invalid_argument', 'SNP guest features must set SNPActive (bit 0)');
  checkVcpus(opts.vcpus);
  const ovmf = parseOvmf(opts.ovmf);
  if (opts.boot && !ovmf.sections.some((s) => s.type === SectionType.snpKernelHashes)) {
    throw new MeasureError('ovmf_no_kernel_hashes', 'a kernel was given but OVMF has no SNP_KERNEL_HASHES section');
  }

  let ld: LaunchDigest;
  if (opts.ovmfHash !== undefined) {
    if (opts.ovmfHash.length !== LD_SIZE) throw new MeasureError('invalid_argument', 'OVMF hash is 48 bytes');
    ld = new LaunchDigest(opts.ovmfHash);
  } else {
    if (opts.ovmf.length % PAGE_SIZE !== 0) throw new MeasureError('ovmf_not_page_aligned', 'OVMF size is not a multiple of 4 KiB');
    ld = new LaunchDigest();
    ld.updateNormalPages(ovmf.gpa, ovmf.data);
  }

  for (const s of ovmf.sections) {
    const gpa = BigInt(s.gpa);
    switch (s.type) {
      case SectionType.snpSecMem:
        // GCE pre-validates these pages without measuring them.
        ld.updateContentlessPages(vmm === 'gce' ? PageType.unmeasured : PageType.zero, gpa, s.size);
        break;
      case SectionType.snpSecrets:
        ld.updateContentlessPages(PageType.secrets, gpa, PAGE_SIZE);
        break;
      case SectionType.cpuid:
        // EC2 inserts the CPUID page after every other metadata section.
        if (vmm !== 'ec2') ld.updateContentlessPages(PageType.cpuid, gpa, PAGE_SIZE);
        break;
      case SectionType.snpKernelHashes:
        kernelHashesSection(ld, ovmf, s, opts.boot, vmm);
        break;
      case SectionType.svsmCaa:
        ld.updateContentlessPages(PageType.zero, gpa, s.size);
        break;
    }
  }
  if (vmm === 'ec2') {
    for (const s of ovmf.sections) {
      if (s.type === SectionType.cpuid) ld.updateContentlessPages(PageType.cpuid, BigInt(s.gpa), PAGE_SIZE);
    }
  }

  for (const page of vmsaPages(ovmf, opts.vcpus, opts.vcpuSig, guestFeatures, vmm)) ld.updateVmsaPage(page);
  return ld.digest();
}

function legacyHash(ovmfImage: Uint8Array, boot: DirectBoot | undefined): { ovmf: Ovmf | undefined; parts: Uint8Array[] } {
  const parts: Uint8Array[] = [ovmfImage];
  let ovmf: Ovmf | undefined;
  if (boot) {
    ovmf = parseOvmf(ovmfImage);
    if (ovmf.sevHashesTableGpa === undefined) {
      throw new MeasureError('ovmf_no_kernel_hashes', "a kernel was given but OVMF doesn't support kernel hashes");
    }
    parts.push(hashTable(kernelHashes(boot)));
  }
  return { ovmf, parts };
}

function sha256Concat(parts: Uint8Array[]): Uint8Array {
  const h = sha256.create();
  for (const p of parts) h.update(p);
  return h.digest();
}

/** SEV (no ES): SHA-256 over OVMF and, with direct boot, the hashes table (GCTX.LD). */
export function sevLaunchDigest(opts: { ovmf: Uint8Array; boot?: DirectBoot }): Uint8Array {
  return sha256Concat(legacyHash(opts.ovmf, opts.boot).parts);
}

/** SEV-ES: as SEV, then every vCPU's initial VMSA (SEV_FEATURES zero). */
export function sevEsLaunchDigest(opts: { ovmf: Uint8Array; boot?: DirectBoot; vcpus: number; vcpuSig: number; vmm?: VmmType }): Uint8Array {
  checkVcpus(opts.vcpus);
  const vmm = opts.vmm ?? 'qemu';
  if (vmm === 'gce') throw new MeasureError('invalid_argument', 'SEV-ES measurement is not defined for GCE');
  const { ovmf: parsed, parts } = legacyHash(opts.ovmf, opts.boot);
  const ovmf = parsed ?? parseOvmf(opts.ovmf);
  parts.push(...vmsaPages(ovmf, opts.vcpus, opts.vcpuSig, 0n, vmm));
  return sha256Concat(parts);
}

// The initial VMSA (VM save area, AMD APM vol. 2 table B-4; Linux
// struct sev_es_save_area) of each vCPU. Under SEV-ES/SNP the VMM cannot
// change register state after launch, so the firmware measures these pages;
// the values below are the reset state each VMM hands to KVM.
import { MeasureError } from './errors.js';
import { PAGE_SIZE } from './gctx.js';

export type VmmType = 'qemu' | 'ec2' | 'gce';
export const VMM_TYPES: readonly VmmType[] = ['qemu', 'ec2', 'gce'];

/** The BSP starts at the architectural reset vector. */
export const BSP_EIP = 0xffff_fff0;

// Byte offsets inside the 4 KiB save area.
const OFF = {
  es: 0x000, cs: 0x010, ss: 0x020, ds: 0x030, fs: 0x040, gs: 0x050,
  gdtr: 0x060, ldtr: 0x070, idtr: 0x080, tr: 0x090,
  efer: 0x0d0, cr4: 0x148, cr0: 0x158, dr7: 0x160, dr6: 0x168, rflags: 0x170, rip: 0x178,
  gPat: 0x268, rdx: 0x310, sevFeatures: 0x3b0, xcr0: 0x3e8, mxcsr: 0x408, x87Fcw: 0x410,
} as const;

interface VmmRegs {
  csAttr: number;
  ssAttr: number;
  trAttr: number;
  rdx: bigint;
  gPat: bigint;
  mxcsr: number;
  fcw: number;
}

function vmmRegs(vmm: VmmType, eip: number, vcpuSig: number): VmmRegs {
  const pat = 0x0007_0406_0007_0406n; // power-on PAT (APM vol. 2 A.3)
  switch (vmm) {
    case 'qemu':
      // KVM since Linux 6.9 sets the x87/SSE control words to their reset
      // values for SEV-ES/SNP guests.
      return { csAttr: 0x9b, ssAttr: 0x93, trAttr: 0x8b, rdx: BigInt(vcpuSig), gPat: pat, mxcsr: 0x1f80, fcw: 0x37f };
    case 'ec2':
      // EC2 leaves the accessed bits clear on the BSP's CS and on SS/TR and
      // puts a fixed signature (0x600) in RDX instead of the vCPU model's.
      return { csAttr: eip === BSP_EIP ? 0x9a : 0x9b, ssAttr: 0x92, trAttr: 0x83, rdx: 0x600n, gPat: pat, mxcsr: 0, fcw: 0 };
    case 'gce':
      // Google's VMM: the same fixed RDX and its own PAT value
      // (google/gce-tcb-verifier sev/ld_from_ovmf.go).
      return { csAttr: 0x9b, ssAttr: 0x93, trAttr: 0x8b, rdx: 0x600n, gPat: 0x0007_0106n, mxcsr: 0, fcw: 0 };
  }
}

function putSeg(dv: DataView, off: number, selector: number, attrib: number, limit: number, base: bigint): void {
  dv.setUint16(off, selector, true);
  dv.setUint16(off + 2, attrib, true);
  dv.setUint32(off + 4, limit, true);
  dv.setBigUint64(off + 8, base, true);
}

export interface VmsaParams {
  /** Reset address: BSP_EIP for vCPU 0, the SEV-ES reset block's EIP for APs. */
  eip: number;
  vcpuSig: number;
  /** SEV_FEATURES (guest features); 0 for SEV-ES, bit 0 (SNPActive) set for SNP. */
  sevFeatures: bigint;
  vmm: VmmType;
}

export function buildVmsa(p: VmsaParams): Uint8Array {
  if (!Number.isInteger(p.eip) || p.eip < 0 || p.eip > 0xffff_ffff) throw new MeasureError('invalid_argument', 'EIP out of range');
  if (!Number.isInteger(p.vcpuSig) || p.vcpuSig < 0 || p.vcpuSig > 0xffff_ffff) {
    throw new MeasureError('invalid_argument', 'vCPU signature out of range');
  }
  if (p.sevFeatures < 0n || p.sevFeatures > 0xffff_ffff_ffff_ffffn) throw new MeasureError('invalid_argument', 'guest features out of range');
  if (!VMM_TYPES.includes(p.vmm)) throw new MeasureError('invalid_argument', 'unknown VMM type');
  const r = vmmRegs(p.vmm, p.eip, p.vcpuSig);
  const page = new Uint8Array(PAGE_SIZE);
  const dv = new DataView(page.buffer);
  // Real mode: CS.base holds the upper 16 bits of the reset address, RIP the rest.
  putSeg(dv, OFF.es, 0, 0x93, 0xffff, 0n);
  putSeg(dv, OFF.cs, 0xf000, r.csAttr, 0xffff, BigInt(p.eip & 0xffff_0000) & 0xffff_ffffn);
  putSeg(dv, OFF.ss, 0, r.ssAttr, 0xffff, 0n);
  putSeg(dv, OFF.ds, 0, 0x93, 0xffff, 0n);
  putSeg(dv, OFF.fs, 0, 0x93, 0xffff, 0n);
  putSeg(dv, OFF.gs, 0, 0x93, 0xffff, 0n);
  putSeg(dv, OFF.gdtr, 0, 0, 0xffff, 0n);
  putSeg(dv, OFF.ldtr, 0, 0x82, 0xffff, 0n);
  putSeg(dv, OFF.idtr, 0, 0, 0xffff, 0n);
  putSeg(dv, OFF.tr, 0, r.trAttr, 0xffff, 0n);
  dv.setBigUint64(OFF.efer, 0x1000n, true); // EFER.SVME, required by SEV-ES
  dv.setBigUint64(OFF.cr4, 0x40n, true); // CR4.MCE, set by KVM
  dv.setBigUint64(OFF.cr0, 0x10n, true); // CR0.ET
  dv.setBigUint64(OFF.dr7, 0x400n, true);
  dv.setBigUint64(OFF.dr6, 0xffff0ff0n, true);
  dv.setBigUint64(OFF.rflags, 0x2n, true);
  dv.setBigUint64(OFF.rip, BigInt(p.eip & 0xffff), true);
  dv.setBigUint64(OFF.gPat, r.gPat, true);
  dv.setBigUint64(OFF.rdx, r.rdx, true);
  dv.setBigUint64(OFF.sevFeatures, p.sevFeatures, true);
  dv.setBigUint64(OFF.xcr0, 0x1n, true);
  dv.setUint32(OFF.mxcsr, r.mxcsr, true);
  dv.setUint16(OFF.x87Fcw, r.fcw, true);
  return page;
}

// vCPU signatures (CPUID Fn0000_0001_EAX) of QEMU's AMD CPU models. QEMU puts
// the signature in RDX of every initial VMSA, so it is part of the launch
// measurement. Same table as sev-snp-measure's vcpu_types.
import { MeasureError } from './errors.js';

/** AMD CPUID spec #25481, Fn0000_0001_EAX: extended family/model encoding. */
export function cpuSig(family: number, model: number, stepping: number): number {
  for (const [name, v, max] of [['family', family, 0xff + 0xf], ['model', model, 0xff], ['stepping', stepping, 0xf]] as const) {
    if (!Number.isInteger(v) || v < 0 || v > max) throw new MeasureError('invalid_argument', `vCPU ${name} out of range`);
  }
  const familyLow = family > 0xf ? 0xf : family;
  const familyHigh = family > 0xf ? (family - 0xf) & 0xff : 0;
  return ((familyHigh << 20) | (((model >> 4) & 0xf) << 16) | (familyLow << 8) | ((model & 0xf) << 4) | (stepping & 0xf)) >>> 0;
}

export const VCPU_TYPES: Readonly<Record<string, number>> = Object.freeze({
  'EPYC': cpuSig(23, 1, 2),
  'EPYC-v1': cpuSig(23, 1, 2),
  'EPYC-v2': cpuSig(23, 1, 2),
  'EPYC-IBPB': cpuSig(23, 1, 2),
  'EPYC-v3': cpuSig(23, 1, 2),
  'EPYC-v4': cpuSig(23, 1, 2),
  'EPYC-Rome': cpuSig(23, 49, 0),
  'EPYC-Rome-v1': cpuSig(23, 49, 0),
  'EPYC-Rome-v2': cpuSig(23, 49, 0),
  'EPYC-Rome-v3': cpuSig(23, 49, 0),
  'EPYC-Milan': cpuSig(25, 1, 1),
  'EPYC-Milan-v1': cpuSig(25, 1, 1),
  'EPYC-Milan-v2': cpuSig(25, 1, 1),
  'EPYC-Genoa': cpuSig(25, 17, 0),
  'EPYC-Genoa-v1': cpuSig(25, 17, 0),
  'EPYC-Turin': cpuSig(26, 0, 0),
});

export function vcpuSigOf(type: string): number {
  if (!Object.hasOwn(VCPU_TYPES, type)) throw new MeasureError('invalid_argument', `unknown vCPU type '${type}'`);
  return VCPU_TYPES[type];
}

// Launch-measurement calculator: what MEASUREMENT an SEV-SNP report must carry
// for a given OVMF, kernel, initrd, command line, vCPU count and type.
export { MeasureError, type MeasureErrorCode } from './errors.js';
export { LaunchDigest, PageType, VMSA_GPA, PAGE_SIZE, LD_SIZE } from './gctx.js';
export { parseOvmf, SectionType, type Ovmf, type MetadataSection } from './ovmf.js';
export { kernelHashes, hashTable, hashTablePage, type DirectBoot, type KernelHashes } from './sev-hashes.js';
export { buildVmsa, BSP_EIP, VMM_TYPES, type VmmType, type VmsaParams } from './vmsa.js';
export { cpuSig, VCPU_TYPES, vcpuSigOf } from './vcpu-types.js';
export { snpLaunchDigest, snpOvmfHash, sevLaunchDigest, sevEsLaunchDigest, MAX_VCPUS, type SnpOptions } from './launch.js';
export { measurementPolicy, mergeMeasurementPolicy, type MeasurementPolicy } from './policy.js';

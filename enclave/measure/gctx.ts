// The SEV-SNP guest context launch digest (GCTX.LD): every SNP_LAUNCH_UPDATE
// folds one 4 KiB page into LD as SHA-384 over a PAGE_INFO structure
// (SEV-SNP ABI spec, "PAGE_INFO", 0x70 bytes):
//   DIGEST_CUR[48] | CONTENTS[48] | LENGTH u16 | PAGE_TYPE u8 | IMI_PAGE u8 |
//   VMPL3_PERMS u8 | VMPL2_PERMS u8 | VMPL1_PERMS u8 | reserved u8 | GPA u64
// CONTENTS is SHA-384 of the page for NORMAL and VMSA pages and zero for the
// page types whose contents the firmware does not measure.
import { sha384 } from '@noble/hashes/sha2.js';
import { MeasureError } from './errors.js';

export const PAGE_SIZE = 4096;
export const LD_SIZE = 48;
const PAGE_INFO_LEN = 0x70;

export const PageType = {
  normal: 0x01,
  vmsa: 0x02,
  zero: 0x03,
  unmeasured: 0x04,
  secrets: 0x05,
  cpuid: 0x06,
} as const;
export type PageTypeValue = (typeof PageType)[keyof typeof PageType];

/**
 * KVM registers every VMSA page in the RMP at GPA (u64)-1; the firmware
 * truncates it to the platform's guest-physical width (48 bits on Milan) and
 * page-aligns it. sev-snp-measure and AMD firmware agree on this value.
 */
export const VMSA_GPA = 0xffff_ffff_f000n;

export class LaunchDigest {
  #ld: Uint8Array;

  /** `seed` continues from a precomputed digest (e.g. the OVMF-only digest). */
  constructor(seed?: Uint8Array) {
    if (seed !== undefined && seed.length !== LD_SIZE) {
      throw new MeasureError('invalid_argument', `a launch digest seed is ${LD_SIZE} bytes`);
    }
    this.#ld = seed ? Uint8Array.from(seed) : new Uint8Array(LD_SIZE);
  }

  digest(): Uint8Array {
    return Uint8Array.from(this.#ld);
  }

  /** One PAGE_INFO update; `contents` is the 48-byte CONTENTS field. */
  update(pageType: PageTypeValue, gpa: bigint, contents: Uint8Array): void {
    if (contents.length !== LD_SIZE) throw new MeasureError('invalid_argument', 'PAGE_INFO contents is 48 bytes');
    if (gpa < 0n || gpa > 0xffff_ffff_ffff_ffffn) throw new MeasureError('invalid_argument', 'GPA out of range');
    const info = new Uint8Array(PAGE_INFO_LEN);
    const dv = new DataView(info.buffer);
    info.set(this.#ld, 0);
    info.set(contents, LD_SIZE);
    dv.setUint16(0x60, PAGE_INFO_LEN, true);
    dv.setUint8(0x62, pageType);
    // IMI_PAGE, VMPL3/2/1 permissions and the reserved byte stay zero: a
    // normal launch, no VMPL permissions granted at launch.
    dv.setBigUint64(0x68, gpa, true);
    this.#ld = sha384(info);
  }

  updateNormalPages(startGpa: bigint, data: Uint8Array): void {
    if (data.length % PAGE_SIZE !== 0) throw new MeasureError('invalid_argument', 'data is not a whole number of pages');
    for (let off = 0; off < data.length; off += PAGE_SIZE) {
      this.update(PageType.normal, startGpa + BigInt(off), sha384(data.subarray(off, off + PAGE_SIZE)));
    }
  }

  updateVmsaPage(page: Uint8Array): void {
    if (page.length !== PAGE_SIZE) throw new MeasureError('invalid_argument', 'a VMSA is one page');
    this.update(PageType.vmsa, VMSA_GPA, sha384(page));
  }

  /** Pages measured by GPA and type only (zero, unmeasured, secrets, CPUID). */
  updateContentlessPages(pageType: PageTypeValue, gpa: bigint, length: number): void {
    if (pageType === PageType.normal || pageType === PageType.vmsa) {
      throw new MeasureError('invalid_argument', 'normal and VMSA pages are measured with their contents');
    }
    if (length % PAGE_SIZE !== 0) throw new MeasureError('invalid_argument', 'length is not a whole number of pages');
    const zeros = new Uint8Array(LD_SIZE);
    for (let off = 0; off < length; off += PAGE_SIZE) this.update(pageType, gpa + BigInt(off), zeros);
  }
}

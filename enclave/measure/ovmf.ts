// OVMF's GUIDed footer table and SEV metadata: the firmware-declared facts a
// launch measurement depends on (which pages the VMM pre-validates, where the
// kernel hashes page sits, where application processors start).
//
// Layout at the end of an OVMF image (edk2 OvmfPkg/ResetVector):
//   ... | entry data | u16 size | GUID | ... | u16 table size | footer GUID | 32 bytes
// Entries are walked backwards from the footer; each entry's size covers its
// data, its size field and its GUID. The SEV metadata entry holds a u32 offset
// from the END of the image to an "ASEV" header followed by 12-byte section
// descriptors { u32 gpa, u32 size, u32 type }.
import { MeasureError } from './errors.js';
import { guidFromBytesLE } from './guid.js';

export const OVMF_TABLE_FOOTER_GUID = '96b582de-1fb2-45f7-baea-a366c55a082d';
export const SEV_HASH_TABLE_RV_GUID = '7255371f-3a3b-4b04-927b-1da6efa8d454';
export const SEV_ES_RESET_BLOCK_GUID = '00f771de-1a7e-4fcb-890e-68c77e2fb44e';
export const OVMF_SEV_METADATA_GUID = 'dc886566-984a-4798-a75e-5585a7bf67cc';

/** Section types of OvmfPkg/ResetVector/X64/OvmfSevMetadata.asm. */
export const SectionType = {
  snpSecMem: 1,
  snpSecrets: 2,
  cpuid: 3,
  svsmCaa: 4,
  snpKernelHashes: 0x10,
} as const;
export type SectionTypeValue = (typeof SectionType)[keyof typeof SectionType];
const KNOWN_SECTION_TYPES = new Set<number>(Object.values(SectionType));

export interface MetadataSection {
  gpa: number;
  size: number;
  type: SectionTypeValue;
}

export interface Ovmf {
  /** The whole image, as the VMM maps it below 4 GiB. */
  data: Uint8Array;
  /** GPA of the first byte: 4 GiB minus the image size. */
  gpa: bigint;
  /** Footer table entries by lower-case GUID. */
  table: ReadonlyMap<string, Uint8Array>;
  /** SEV metadata sections in image order (empty if the image declares none). */
  sections: readonly MetadataSection[];
  /** The AP reset address from the SEV-ES reset block, if present. */
  sevEsResetEip: number | undefined;
  /** GPA of the kernel hashes table, if the image supports measured direct boot. */
  sevHashesTableGpa: number | undefined;
}

const FOUR_GIB = 0x1_0000_0000n;
const ENTRY_HEADER = 18; // u16 size + GUID
const FOOTER_TRAILER = 32; // bytes after the footer GUID (reset vector)
const METADATA_HEADER = 16;
const DESCRIPTOR = 12;

function u16(b: Uint8Array, off: number): number {
  return b[off] | (b[off + 1] << 8);
}
function u32(b: Uint8Array, off: number): number {
  return (b[off] | (b[off + 1] << 8) | (b[off + 2] << 16)) + b[off + 3] * 0x100_0000;
}

function parseFooterTable(data: Uint8Array): Map<string, Uint8Array> {
  const size = data.length;
  if (size < FOOTER_TRAILER + ENTRY_HEADER) throw new MeasureError('ovmf_too_small', 'image too small for a footer table');
  const footerStart = size - FOOTER_TRAILER - ENTRY_HEADER;
  const footerGuid = guidFromBytesLE(data.subarray(footerStart + 2, footerStart + ENTRY_HEADER));
  if (footerGuid !== OVMF_TABLE_FOOTER_GUID) {
    throw new MeasureError('ovmf_footer_missing', 'no OVMF footer table GUID 32 bytes before the end of the image');
  }
  const fullSize = u16(data, footerStart);
  if (fullSize < ENTRY_HEADER) throw new MeasureError('ovmf_table_malformed', 'footer table size smaller than its header');
  const tableSize = fullSize - ENTRY_HEADER;
  if (tableSize > footerStart) throw new MeasureError('ovmf_table_malformed', 'footer table extends before the image');
  const table = data.subarray(footerStart - tableSize, footerStart);
  const entries = new Map<string, Uint8Array>();
  let end = table.length;
  while (end > 0) {
    if (end < ENTRY_HEADER) throw new MeasureError('ovmf_table_malformed', 'trailing bytes in footer table');
    const entrySize = u16(table, end - ENTRY_HEADER);
    if (entrySize < ENTRY_HEADER || entrySize > end) {
      throw new MeasureError('ovmf_table_malformed', 'footer table entry size out of bounds');
    }
    const guid = guidFromBytesLE(table.subarray(end - 16, end));
    if (entries.has(guid)) throw new MeasureError('ovmf_table_malformed', 'duplicate footer table entry');
    entries.set(guid, table.slice(end - entrySize, end - ENTRY_HEADER));
    end -= entrySize;
  }
  return entries;
}

function parseMetadata(data: Uint8Array, entry: Uint8Array): MetadataSection[] {
  if (entry.length < 4) throw new MeasureError('ovmf_metadata_malformed', 'SEV metadata entry too short');
  const offsetFromEnd = u32(entry, 0);
  if (offsetFromEnd < METADATA_HEADER || offsetFromEnd > data.length) {
    throw new MeasureError('ovmf_metadata_malformed', 'SEV metadata offset out of bounds');
  }
  const start = data.length - offsetFromEnd;
  const sig = String.fromCharCode(...data.subarray(start, start + 4));
  if (sig !== 'ASEV') throw new MeasureError('ovmf_metadata_malformed', 'SEV metadata signature is not ASEV');
  const len = u32(data, start + 4);
  const version = u32(data, start + 8);
  const count = u32(data, start + 12);
  if (version !== 1) throw new MeasureError('ovmf_metadata_malformed', 'unsupported SEV metadata version');
  if (len < METADATA_HEADER + count * DESCRIPTOR || start + len > data.length) {
    throw new MeasureError('ovmf_metadata_malformed', 'SEV metadata length out of bounds');
  }
  const sections: MetadataSection[] = [];
  for (let i = 0; i < count; i++) {
    const off = start + METADATA_HEADER + i * DESCRIPTOR;
    const gpa = u32(data, off);
    const size = u32(data, off + 4);
    const type = u32(data, off + 8);
    if (!KNOWN_SECTION_TYPES.has(type)) {
      throw new MeasureError('ovmf_section_unknown', `unknown SEV metadata section type ${type}`);
    }
    if (gpa % 4096 !== 0 || size === 0 || size % 4096 !== 0 || gpa + size > 0x1_0000_0000) {
      throw new MeasureError('ovmf_metadata_malformed', 'SEV metadata section is not a whole-page range below 4 GiB');
    }
    sections.push({ gpa, size, type: type as SectionTypeValue });
  }
  return sections;
}

function firstU32(entry: Uint8Array | undefined, what: string): number | undefined {
  if (entry === undefined) return undefined;
  if (entry.length < 4) throw new MeasureError('ovmf_table_malformed', `${what} entry too short`);
  return u32(entry, 0);
}

/** Parses an OVMF image's footer table and SEV metadata. Pure; never mutates `data`. */
export function parseOvmf(data: Uint8Array): Ovmf {
  if (data.length === 0 || data.length > 0xffff_f000) throw new MeasureError('ovmf_too_small', 'image size out of range');
  const table = parseFooterTable(data);
  const metadata = table.get(OVMF_SEV_METADATA_GUID);
  const sections = metadata ? parseMetadata(data, metadata) : [];
  const hashes = firstU32(table.get(SEV_HASH_TABLE_RV_GUID), 'kernel hashes table');
  return {
    data,
    gpa: FOUR_GIB - BigInt(data.length),
    table,
    sections,
    sevEsResetEip: firstU32(table.get(SEV_ES_RESET_BLOCK_GUID), 'SEV-ES reset block'),
    sevHashesTableGpa: hashes === 0 ? undefined : hashes,
  };
}

// The kernel hashes table QEMU writes into the page OVMF reserves for it when
// a guest boots a kernel directly (-kernel/-initrd/-append with
// kernel-hashes=on). OVMF refuses to boot a kernel, initrd or command line
// whose SHA-256 differs, so measuring this page measures all three.
//
//   table GUID | u16 length(168) | 3 x { entry GUID | u16 length(50) | SHA-256 }
//   order: command line, initrd, kernel; zero-padded to a multiple of 16.
// The command line is hashed with its trailing NUL; a missing initrd hashes as
// empty, a missing command line as the single NUL byte (QEMU's behaviour).
import { sha256 } from '@noble/hashes/sha2.js';
import { MeasureError } from './errors.js';
import { guidToBytesLE } from './guid.js';
import { PAGE_SIZE } from './gctx.js';

export const SEV_HASH_TABLE_HEADER_GUID = '9438d606-4f22-4cc9-b479-a793d411fd21';
export const SEV_KERNEL_ENTRY_GUID = '4de79437-abd2-427f-b835-d5b172d2045b';
export const SEV_INITRD_ENTRY_GUID = '44baf731-3a2f-4bd7-9af1-41e29169781d';
export const SEV_CMDLINE_ENTRY_GUID = '97d02dd8-bd20-4c94-aa78-e7714d36ab2a';

export interface DirectBoot {
  kernel: Uint8Array;
  /** Absent: no initrd (hashed as empty). */
  initrd?: Uint8Array;
  /** Absent or empty: no command line (hashed as a lone NUL). */
  append?: string;
}

export interface KernelHashes {
  kernel: Uint8Array;
  initrd: Uint8Array;
  cmdline: Uint8Array;
}

export function kernelHashes(boot: DirectBoot): KernelHashes {
  const cmd = boot.append ? new TextEncoder().encode(boot.append) : new Uint8Array(0);
  if (cmd.includes(0)) throw new MeasureError('invalid_argument', 'kernel command line contains a NUL byte');
  const withNul = new Uint8Array(cmd.length + 1);
  withNul.set(cmd);
  return {
    kernel: sha256(boot.kernel),
    initrd: sha256(boot.initrd ?? new Uint8Array(0)),
    cmdline: sha256(withNul),
  };
}

const ENTRY_LEN = 16 + 2 + 32;
const TABLE_LEN = 16 + 2 + 3 * ENTRY_LEN;
const TABLE_LEN_ALIGNED = (TABLE_LEN + 15) & ~15;

export function hashTable(h: KernelHashes): Uint8Array {
  const t = new Uint8Array(TABLE_LEN_ALIGNED);
  const dv = new DataView(t.buffer);
  t.set(guidToBytesLE(SEV_HASH_TABLE_HEADER_GUID), 0);
  dv.setUint16(16, TABLE_LEN, true);
  let off = 18;
  for (const [guid, digest] of [
    [SEV_CMDLINE_ENTRY_GUID, h.cmdline],
    [SEV_INITRD_ENTRY_GUID, h.initrd],
    [SEV_KERNEL_ENTRY_GUID, h.kernel],
  ] as const) {
    t.set(guidToBytesLE(guid), off);
    dv.setUint16(off + 16, ENTRY_LEN, true);
    t.set(digest, off + 18);
    off += ENTRY_LEN;
  }
  return t;
}

/** The whole 4 KiB page with the table at `offsetInPage`, as QEMU fills it. */
export function hashTablePage(h: KernelHashes, offsetInPage: number): Uint8Array {
  if (!Number.isInteger(offsetInPage) || offsetInPage < 0 || offsetInPage + TABLE_LEN_ALIGNED > PAGE_SIZE) {
    throw new MeasureError('ovmf_metadata_malformed', 'kernel hashes table does not fit in its page');
  }
  const page = new Uint8Array(PAGE_SIZE);
  page.set(hashTable(h), offsetInPage);
  return page;
}

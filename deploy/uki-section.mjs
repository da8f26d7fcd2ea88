#!/usr/bin/env node
// Writes one section of a PE file (a UKI: .cmdline, .linux, .initrd, .osrel) to stdout, so that
// building the image needs no binutils on the host; the bytes are exactly those the stub loads.
//
//   node deploy/uki-section.mjs build/sealed-inference.efi .cmdline
import { readFileSync } from 'node:fs';

const [file, name, ...rest] = process.argv.slice(2);
if (!file || !name || rest.length) {
  process.stderr.write('usage: uki-section.mjs PE_FILE SECTION\n');
  process.exit(2);
}
const fail = (msg) => {
  process.stderr.write(`uki-section: ${file}: ${msg}\n`);
  process.exit(1);
};
const pe = readFileSync(file);
if (pe.length < 0x40 || pe.toString('latin1', 0, 2) !== 'MZ') fail('not a PE file (no MZ header)');
const coff = pe.readUInt32LE(0x3c);
if (coff + 24 > pe.length || pe.toString('latin1', coff, coff + 4) !== 'PE\0\0') fail('no PE signature');
const count = pe.readUInt16LE(coff + 6);
const table = coff + 24 + pe.readUInt16LE(coff + 20);
if (table + count * 40 > pe.length) fail('section table past the end of the file');
for (let i = 0; i < count; i++) {
  const at = table + i * 40;
  if (pe.toString('latin1', at, at + 8).replace(/\0+$/, '') !== name) continue;
  // VirtualSize is the section's real length; SizeOfRawData is padded to the file alignment.
  const size = Math.min(pe.readUInt32LE(at + 8), pe.readUInt32LE(at + 16));
  const offset = pe.readUInt32LE(at + 20);
  if (offset + size > pe.length) fail(`section ${name} past the end of the file`);
  process.stdout.write(pe.subarray(offset, offset + size));
  process.exit(0);
}
fail(`no section ${name}`);

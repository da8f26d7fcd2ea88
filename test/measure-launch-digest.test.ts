// The launch-digest calculator against virtee/sev-snp-measure's own cases
// (test/fixtures/measurement), plus the structures it is built from and the
// strictness of its OVMF parser.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { readFileSync } from 'node:fs';
import { dirname, join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { sha256 } from '@noble/hashes/sha2.js';
import {
  MeasureError,
  VCPU_TYPES,
  buildVmsa,
  cpuSig,
  hashTable,
  hashTablePage,
  kernelHashes,
  measurementPolicy,
  mergeMeasurementPolicy,
  parseOvmf,
  SectionType,
  sevEsLaunchDigest,
  sevLaunchDigest,
  snpLaunchDigest,
  snpOvmfHash,
  vcpuSigOf,
  type DirectBoot,
  type VmmType,
} from '../enclave/measure/index.js';
import { guidFromBytesLE, guidToBytesLE } from '../enclave/measure/guid.js';

const root = join(dirname(fileURLToPath(import.meta.url)), '..');
const dataDir = join(root, 'test', 'fixtures', 'measurement');

interface Case {
  name: string;
  mode: 'snp' | 'sev-es' | 'sev';
  vcpus: number;
  vcpu_type: string | null;
  ovmf: string;
  kernel: string | null;
  initrd: string | null;
  append: string | null;
  guest_features: number;
  vmm_type: VmmType;
  ovmf_hash: string | null;
  expected_launch_digest: string;
}
const file = JSON.parse(readFileSync(join(dataDir, 'sev-snp-launch-digest-cases.json'), 'utf8')) as {
  cases: Case[];
  expected_ovmf_hashes: Record<string, string>;
};
const ovmfOf = (name: string) => new Uint8Array(readFileSync(join(dataDir, name)));
const hex = (b: Uint8Array) => Buffer.from(b).toString('hex');
const unhex = (s: string) => Uint8Array.from(Buffer.from(s, 'hex'));

// In the cases "/dev/null" is an empty file and null is "not given".
function bootOf(c: Case): DirectBoot | undefined {
  if (c.kernel === null) return undefined;
  const read = (p: string) => (p === '/dev/null' ? new Uint8Array(0) : new Uint8Array(readFileSync(p)));
  return { kernel: read(c.kernel), initrd: c.initrd === null ? undefined : read(c.initrd), append: c.append ?? undefined };
}

function digestOf(c: Case): Uint8Array {
  const ovmf = ovmfOf(c.ovmf);
  const vcpuSig = c.vcpu_type === null ? 0 : vcpuSigOf(c.vcpu_type);
  const boot = bootOf(c);
  if (c.mode === 'sev') return sevLaunchDigest({ ovmf, boot });
  if (c.mode === 'sev-es') return sevEsLaunchDigest({ ovmf, boot, vcpus: c.vcpus, vcpuSig, vmm: c.vmm_type });
  return snpLaunchDigest({
    ovmf,
    ovmfHash: c.ovmf_hash === null ? undefined : unhex(c.ovmf_hash),
    vcpus: c.vcpus,
    vcpuSig,
    guestFeatures: BigInt(c.guest_features),
    vmm: c.vmm_type,
    boot,
  });
}

test('the cases file has the SNP cases this suite counts on', () => {
  const snp = file.cases.filter((c) => c.mode === 'snp');
  assert.equal(snp.length, 16);
  assert.equal(file.cases.length, 21);
  assert.deepEqual(new Set(snp.map((c) => c.vmm_type)), new Set(['qemu', 'ec2', 'gce']));
});

for (const c of file.cases) {
  test(`sev-snp-measure case ${c.name} (${c.mode}, ${c.vmm_type}, ${c.vcpus} vCPU)`, () => {
    assert.equal(hex(digestOf(c)), c.expected_launch_digest);
  });
}

test('every SNP case through `sealed measure` prints the expected digest', async () => {
  const { runMeasure } = await import('../cli/commands/measure.js');
  let passed = 0;
  for (const c of file.cases.filter((x) => x.mode === 'snp')) {
    const argv = ['--ovmf', join(dataDir, c.ovmf), '--vcpus', String(c.vcpus), '--guest-features', `0x${c.guest_features.toString(16)}`, '--vmm-type', c.vmm_type];
    if (c.vcpu_type !== null) argv.push('--vcpu-type', c.vcpu_type);
    if (c.kernel !== null) argv.push('--kernel', c.kernel);
    if (c.initrd !== null) argv.push('--initrd', c.initrd);
    if (c.append !== null) argv.push('--append', c.append);
    if (c.ovmf_hash !== null) argv.push('--snp-ovmf-hash', c.ovmf_hash);
    let out = '';
    let err = '';
    const code = await runMeasure(argv, { stdout: { write: (s: string) => (out += s) }, stderr: { write: (s: string) => (err += s) } });
    assert.equal(code, 0, `${c.name}: ${err}`);
    assert.equal(out, c.expected_launch_digest + '\n', c.name);
    passed++;
  }
  assert.equal(passed, 16);
});

test('the OVMF-only digest equals the published one and seeds the same result', () => {
  for (const [name, expected] of Object.entries(file.expected_ovmf_hashes)) {
    assert.equal(hex(snpOvmfHash(ovmfOf(name))), expected);
  }
  const ovmf = ovmfOf('ovmf_AmdSev_suffix.bin');
  const boot = { kernel: new Uint8Array(0), initrd: new Uint8Array(0), append: 'x' };
  const opts = { ovmf, vcpus: 2, vcpuSig: VCPU_TYPES['EPYC-Milan'], boot };
  assert.deepEqual(snpLaunchDigest({ ...opts, ovmfHash: snpOvmfHash(ovmf) }), snpLaunchDigest(opts));
});

test('OVMF footer table and SEV metadata of the AmdSev build', () => {
  const o = parseOvmf(ovmfOf('ovmf_AmdSev_suffix.bin'));
  assert.equal(o.gpa, 0x1_0000_0000n - 4096n);
  assert.ok(o.table.has('dc886566-984a-4798-a75e-5585a7bf67cc'));
  assert.ok(o.sevHashesTableGpa !== undefined && o.sevHashesTableGpa > 0);
  assert.ok(o.sevEsResetEip !== undefined && o.sevEsResetEip > 0);
  const types = o.sections.map((s) => s.type);
  for (const t of [SectionType.snpSecMem, SectionType.snpSecrets, SectionType.cpuid, SectionType.snpKernelHashes]) {
    assert.ok(types.includes(t), `section type ${t}`);
  }
  // The kernel hashes table lives inside the SNP_KERNEL_HASHES page.
  const kh = o.sections.find((s) => s.type === SectionType.snpKernelHashes)!;
  assert.equal(Math.floor(o.sevHashesTableGpa! / 4096) * 4096, kh.gpa);

  const x = parseOvmf(ovmfOf('ovmf_OvmfX64_suffix.bin'));
  assert.equal(x.sevHashesTableGpa, undefined);
  assert.ok(!x.sections.some((s) => s.type === SectionType.snpKernelHashes));
});

test('a kernel with an OVMF that cannot measure it is refused, in every mode', () => {
  const ovmf = ovmfOf('ovmf_OvmfX64_suffix.bin');
  const boot = { kernel: new Uint8Array(0) };
  const code = (f: () => unknown) => {
    try {
      f();
    } catch (e) {
      assert.ok(e instanceof MeasureError);
      return e.code;
    }
    return 'no error';
  };
  assert.equal(code(() => snpLaunchDigest({ ovmf, vcpus: 1, vcpuSig: 0x800f12, boot })), 'ovmf_no_kernel_hashes');
  assert.equal(code(() => sevEsLaunchDigest({ ovmf, vcpus: 1, vcpuSig: 0x800f12, boot })), 'ovmf_no_kernel_hashes');
  assert.equal(code(() => sevLaunchDigest({ ovmf, boot })), 'ovmf_no_kernel_hashes');
});

test('GUIDs are stored mixed-endian', () => {
  const b = guidToBytesLE('9438d606-4f22-4cc9-b479-a793d411fd21');
  assert.equal(hex(b), '06d63894224fc94cb479a793d411fd21');
  assert.equal(guidFromBytesLE(b), '9438d606-4f22-4cc9-b479-a793d411fd21');
  assert.throws(() => guidToBytesLE('not-a-guid'), MeasureError);
});

test('kernel hashes table: QEMU layout, NUL-terminated command line, empty initrd', () => {
  const kernel = new TextEncoder().encode('kernel');
  const h = kernelHashes({ kernel, append: 'console=ttyS0' });
  assert.deepEqual(h.kernel, sha256(kernel));
  assert.deepEqual(h.initrd, sha256(new Uint8Array(0)));
  assert.deepEqual(h.cmdline, sha256(new TextEncoder().encode('console=ttyS0\0')));
  assert.deepEqual(kernelHashes({ kernel }).cmdline, sha256(Uint8Array.of(0)));
  const t = hashTable(h);
  assert.equal(t.length, 176); // 168 rounded up to 16
  assert.equal(t[16] | (t[17] << 8), 168);
  assert.equal(guidFromBytesLE(t.subarray(18, 34)), '97d02dd8-bd20-4c94-aa78-e7714d36ab2a'); // cmdline first
  assert.equal(t[34] | (t[35] << 8), 50);
  assert.deepEqual(t.subarray(36, 68), h.cmdline);
  assert.equal(guidFromBytesLE(t.subarray(68, 84)), '44baf731-3a2f-4bd7-9af1-41e29169781d');
  assert.equal(guidFromBytesLE(t.subarray(118, 134)), '4de79437-abd2-427f-b835-d5b172d2045b');
  assert.deepEqual(t.subarray(136, 168), h.kernel);
  assert.ok(t.subarray(168).every((x) => x === 0));
  const page = hashTablePage(h, 0xc00);
  assert.equal(page.length, 4096);
  assert.deepEqual(page.subarray(0xc00, 0xc00 + 176), t);
  assert.throws(() => hashTablePage(h, 4000), MeasureError);
  assert.throws(() => kernelHashes({ kernel, append: 'a\0b' }), MeasureError);
});

test('vCPU signatures follow AMD CPUID Fn0000_0001_EAX', () => {
  assert.equal(VCPU_TYPES['EPYC-v4'], 0x00800f12);
  assert.equal(VCPU_TYPES['EPYC-Rome'], 0x00830f10);
  assert.equal(VCPU_TYPES['EPYC-Milan'], 0x00a00f11);
  assert.equal(VCPU_TYPES['EPYC-Genoa'], 0x00a10f10);
  assert.equal(cpuSig(6, 0x55, 4), 0x00050654);
  assert.throws(() => vcpuSigOf('Skylake'), MeasureError);
  assert.throws(() => vcpuSigOf('__proto__'), MeasureError);
});

test('VMSA: reset state at the save-area offsets, per VMM', () => {
  const rd64 = (p: Uint8Array, off: number) => new DataView(p.buffer).getBigUint64(off, true);
  const q = buildVmsa({ eip: 0xfffffff0, vcpuSig: 0x800f12, sevFeatures: 0x21n, vmm: 'qemu' });
  assert.equal(q.length, 4096);
  assert.equal(rd64(q, 0x310), 0x800f12n); // RDX: the CPU signature
  assert.equal(rd64(q, 0x3b0), 0x21n); // SEV_FEATURES
  assert.equal(rd64(q, 0x178), 0xfff0n); // RIP
  assert.equal(rd64(q, 0x18), 0xffff0000n); // CS.base
  assert.equal(rd64(q, 0xd0), 0x1000n); // EFER.SVME
  assert.equal(rd64(q, 0x268), 0x0007040600070406n); // PAT
  const ap = buildVmsa({ eip: 0x80b004, vcpuSig: 0x800f12, sevFeatures: 1n, vmm: 'qemu' });
  assert.equal(rd64(ap, 0x18), 0x800000n);
  assert.equal(rd64(ap, 0x178), 0xb004n);
  const e = buildVmsa({ eip: 0xfffffff0, vcpuSig: 0x800f12, sevFeatures: 1n, vmm: 'ec2' });
  assert.equal(e[0x12], 0x9a); // CS attrib without the accessed bit on the BSP
  assert.equal(rd64(e, 0x310), 0x600n);
  const g = buildVmsa({ eip: 0xfffffff0, vcpuSig: 0, sevFeatures: 1n, vmm: 'gce' });
  assert.equal(rd64(g, 0x268), 0x70106n);
  assert.throws(() => buildVmsa({ eip: 2 ** 32, vcpuSig: 0, sevFeatures: 1n, vmm: 'qemu' }), MeasureError);
});

test('every input that defines the guest changes the SNP digest', () => {
  const ovmf = ovmfOf('ovmf_AmdSev_suffix.bin');
  const base = { ovmf, vcpus: 2, vcpuSig: VCPU_TYPES['EPYC-Genoa'], guestFeatures: 1n, vmm: 'qemu' as VmmType, boot: { kernel: Uint8Array.of(1), initrd: Uint8Array.of(2), append: 'ro' } };
  const d0 = hex(snpLaunchDigest(base));
  const variants = [
    { ...base, vcpus: 3 },
    { ...base, vcpuSig: VCPU_TYPES['EPYC-Milan'] },
    { ...base, guestFeatures: 0x21n },
    { ...base, vmm: 'ec2' as VmmType },
    { ...base, boot: { ...base.boot, kernel: Uint8Array.of(9) } },
    { ...base, boot: { ...base.boot, initrd: Uint8Array.of(9) } },
    { ...base, boot: { ...base.boot, append: 'rw' } },
    { ...base, boot: undefined },
  ];
  const seen = new Set([d0]);
  for (const v of variants) seen.add(hex(snpLaunchDigest(v)));
  assert.equal(seen.size, variants.length + 1);
});

test('bad arguments are typed errors', () => {
  const ovmf = ovmfOf('ovmf_AmdSev_suffix.bin');
  for (const bad of [
    { vcpus: 0 },
    { vcpus: 1.5 },
    { vcpus: 100000 },
    { guestFeatures: 0x20n },
    { ovmfHash: new Uint8Array(47) },
    { vmm: 'xen' as VmmType },
  ]) {
    assert.throws(() => snpLaunchDigest({ ovmf, vcpus: 1, vcpuSig: 0, ...bad }), (e: unknown) => e instanceof MeasureError && e.code === 'invalid_argument');
  }
  // Not page-aligned: the firmware measures whole pages only.
  const odd = new Uint8Array(4096 + 16);
  odd.set(ovmf, 16);
  assert.throws(() => snpLaunchDigest({ ovmf: odd, vcpus: 1, vcpuSig: 0 }), (e: unknown) => e instanceof MeasureError && e.code === 'ovmf_not_page_aligned');
});

test('OVMF parser: corrupted footer, table and metadata give typed errors', () => {
  const good = ovmfOf('ovmf_AmdSev_suffix.bin');
  const expectCode = (data: Uint8Array, code: string) =>
    assert.throws(() => parseOvmf(data), (e: unknown) => e instanceof MeasureError && e.code === code);
  expectCode(new Uint8Array(10), 'ovmf_too_small');
  expectCode(new Uint8Array(4096), 'ovmf_footer_missing');
  const n = good.length;
  const mut = (f: (b: Uint8Array) => void) => {
    const b = Uint8Array.from(good);
    f(b);
    return b;
  };
  // Footer table size larger than the image.
  expectCode(mut((b) => { b[n - 50] = 0xff; b[n - 49] = 0xff; }), 'ovmf_table_malformed');
  // Footer table size smaller than its own header.
  expectCode(mut((b) => { b[n - 50] = 4; b[n - 49] = 0; }), 'ovmf_table_malformed');
  // The metadata offset (in the last entry before the footer) pointed outside the image.
  const o = parseOvmf(good);
  const metaEntryEnd = findEntryEnd(good, 'dc886566-984a-4798-a75e-5585a7bf67cc');
  const metaOff = o.table.get('dc886566-984a-4798-a75e-5585a7bf67cc')!;
  assert.equal(metaOff.length, 4);
  expectCode(mut((b) => b.set([0xff, 0xff, 0, 0], metaEntryEnd - 18 - 4)), 'ovmf_metadata_malformed');
  // Signature broken.
  const metaStart = n - (metaOff[0] | (metaOff[1] << 8));
  expectCode(mut((b) => { b[metaStart] = 0x42; }), 'ovmf_metadata_malformed');
  // Descriptor count beyond the declared length.
  expectCode(mut((b) => { b[metaStart + 12] = 0xff; }), 'ovmf_metadata_malformed');
  // Unknown section type.
  expectCode(mut((b) => { b[metaStart + 16 + 8] = 0x7; }), 'ovmf_section_unknown');
  // Unaligned section.
  expectCode(mut((b) => { b[metaStart + 16] |= 0x1; }), 'ovmf_metadata_malformed');
});

/** End offset (exclusive) of the footer-table entry with this GUID, walking as the parser does. */
function findEntryEnd(data: Uint8Array, guid: string): number {
  const footerStart = data.length - 50;
  const tableSize = (data[footerStart] | (data[footerStart + 1] << 8)) - 18;
  let end = footerStart;
  const start = footerStart - tableSize;
  while (end > start) {
    const size = data[end - 18] | (data[end - 17] << 8);
    if (guidFromBytesLE(data.subarray(end - 16, end)) === guid) return end;
    end -= size;
  }
  throw new Error('entry not found');
}

test('fuzz: random corruption of the OVMF tail never escapes as anything but MeasureError', () => {
  const good = ovmfOf('ovmf_AmdSev_suffix.bin');
  let seed = 0x5eed;
  const rnd = () => ((seed = (Math.imul(seed, 1103515245) + 12345) >>> 0) >>> 8);
  let ok = 0;
  let typed = 0;
  for (let i = 0; i < 1500; i++) {
    const b = Uint8Array.from(good);
    const flips = 1 + (rnd() % 4);
    // Aim at the last 1 KiB, where the table and metadata live.
    for (let k = 0; k < flips; k++) b[b.length - 1 - (rnd() % 1024)] = rnd() & 0xff;
    try {
      snpLaunchDigest({ ovmf: b, ovmfHash: new Uint8Array(48), vcpus: 2, vcpuSig: 0x800f12 });
      ok++;
    } catch (e) {
      assert.ok(e instanceof MeasureError, `iteration ${i}: ${String(e)}`);
      typed++;
    }
  }
  assert.equal(ok + typed, 1500);
  assert.ok(typed > 0 && ok > 0);
});

test('policy: fresh and merged documents pin SEV-SNP measurements', () => {
  const a = new Uint8Array(48).fill(0xaa);
  const b = new Uint8Array(48).fill(0xbb);
  assert.deepEqual(measurementPolicy([a]), { measurement: 'aa'.repeat(48), platforms: ['sev-snp'] });
  const merged = mergeMeasurementPolicy({ measurement: 'AA'.repeat(48), platforms: ['tdx'], minTcb: { snp: 20 } }, [b, a]);
  assert.deepEqual(merged, { measurement: ['aa'.repeat(48), 'bb'.repeat(48)], platforms: ['tdx', 'sev-snp'], minTcb: { snp: 20 } });
  assert.throws(() => mergeMeasurementPolicy({ measurement: 'zz' }, [a]), MeasureError);
  assert.throws(() => mergeMeasurementPolicy([], [a]), MeasureError);
  assert.throws(() => measurementPolicy([]), MeasureError);
  assert.throws(() => measurementPolicy([new Uint8Array(32)]), MeasureError);
});

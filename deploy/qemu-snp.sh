#!/usr/bin/env bash
# Boots the image as an SEV-SNP guest on a KVM host with SNP enabled (measured direct boot:
# OVMF AmdSevX64 checks kernel, initrd and command line against the hashes page in the launch
# digest). The digest it produces is the one `deploy/build-image.sh` wrote to policy.json,
# provided OVMF, VCPUS, VCPU_TYPE and the host's SEV features match.
#
#   OVMF=/path/OVMF.amdsev.fd deploy/qemu-snp.sh     # serves on host port 8080
# Needs QEMU >= 9.1 (sev-snp-guest), a host kernel with SNP (Linux >= 6.11), root or kvm access.
# Not run where it was written (no SNP host there).
set -euo pipefail
repo=$(cd "$(dirname "$0")/.." && pwd)
OUT=${OUT:-$repo/.image-build/out}
: "${OVMF:?set OVMF to the AmdSevX64 firmware used for the measurement}"
VCPUS=${VCPUS:-4}
VCPU_TYPE=${VCPU_TYPE:-EPYC-v4}
MEM=${MEM:-4G}
PORT=${PORT:-8080}

exec qemu-system-x86_64 \
  -enable-kvm -nographic -no-reboot \
  -machine q35,confidential-guest-support=sev0,memory-backend=ram0,vmport=off \
  -object memory-backend-memfd,id=ram0,size="$MEM",share=true,prealloc=false \
  -object sev-snp-guest,id=sev0,cbitpos=51,reduced-phys-bits=1,kernel-hashes=on \
  -cpu "$VCPU_TYPE" -smp "$VCPUS" -m "$MEM" \
  -bios "$OVMF" \
  -kernel "$OUT/sealed-inference.vmlinuz" \
  -initrd "$OUT/sealed-inference.initrd" \
  -append "$(cat "$OUT/cmdline.txt")" \
  -drive if=none,id=disk0,format=raw,readonly=on,file="$OUT/sealed-inference.raw" \
  -device virtio-blk-pci,drive=disk0 \
  -netdev user,id=net0,hostfwd=tcp::"$PORT"-:8080 \
  -device virtio-net-pci,netdev=net0,romfile=

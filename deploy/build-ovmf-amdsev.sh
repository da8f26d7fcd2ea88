#!/usr/bin/env bash
# Builds OVMF's AmdSevX64 firmware, the one SEV-SNP measured direct boot needs (it checks the
# kernel, initrd and command line against the hashes page the launch digest covers), from Debian
# trixie's edk2 source package pinned by version and SHA-256, with Debian's patches. Debian ships
# no AmdSev build (neither bookworm's nor trixie's ovmf package has one).
#
#   deploy/build-ovmf-amdsev.sh          # -> .image-build/ovmf/OVMF.amdsev.fd and its SHA-256
#   OVMF=.image-build/ovmf/OVMF.amdsev.fd deploy/build-image.sh   # then: image + policy.json
#
# The firmware's bytes are an input of the measurement: every client policy pins them. The build
# is deterministic for one toolchain (the grub.efi it embeds is made with fixed FAT serial and
# times below), but another GCC, nasm, iasl or grub gives other bytes and so another measurement:
# publish the firmware file with the policy, or pin the toolchain (docs/DEPLOY.md, section 3).
# Needs: gcc, make, nasm, iasl (acpica-tools), uuid-dev, python3, grub-mkimage with the
# x86_64-efi modules (grub-common, grub-efi-amd64-bin), mtools, dosfstools, curl; 2.5 minutes on
# 2 idle cores. Builds in EDK2_BUILD_DIR (default /tmp/sealed-inference-edk2, see below).
set -euo pipefail

repo=$(cd "$(dirname "$0")/.." && pwd)
WORK=${WORK:-$repo/.image-build}
OUT=${OUT:-$WORK/ovmf}
DEBIAN_MIRROR=${DEBIAN_MIRROR:-http://deb.debian.org/debian}
EDK2_VERSION=2025.02-8+deb13u1
ORIG=edk2_2025.02.orig.tar.xz
ORIG_SHA256=b63b6053d6d89c74d9291f9e96fde1584be99e6fb9c169ba9511505129d6b049
DEBIAN_TAR=edk2_$EDK2_VERSION.debian.tar.xz
DEBIAN_TAR_SHA256=e2a7f6fc58640818416a028d6d5e9dfc255697a7cdc60c14566c236df6bd9b08

started=$SECONDS
step() { printf '==> [%4ss] %s\n' "$((SECONDS - started))" "$*"; }
die() { echo "build-ovmf-amdsev: $*" >&2; exit 1; }
unavailable() { echo "build-ovmf-amdsev: $*" >&2; exit 3; }

for tool in gcc make nasm iasl python3 grub-mkimage mcopy mkfs.msdos curl sha256sum flock; do
  command -v "$tool" >/dev/null || unavailable "$tool is required"
done
[ -f /usr/include/uuid/uuid.h ] || unavailable "uuid-dev is required"
[ -d /usr/lib/grub/x86_64-efi ] || unavailable "grub-efi-amd64-bin is required (grub's x86_64-efi modules)"
case "$OUT" in /*) ;; *) OUT=$PWD/$OUT ;; esac
case "$WORK" in /*) ;; *) WORK=$PWD/$WORK ;; esac
mkdir -p "$OUT" "$WORK/downloads"

fetch() {
  local name=$1 sha=$2 dest="$WORK/downloads/$1"
  if ! echo "$sha  $dest" | sha256sum -c --status 2>/dev/null; then
    step "fetching $name"
    curl -fsSL --retry 3 -o "$dest.part" "$DEBIAN_MIRROR/pool/main/e/edk2/$name" \
      || unavailable "could not download $DEBIAN_MIRROR/pool/main/e/edk2/$name"
    echo "$sha  $dest.part" | sha256sum -c --status || die "$name does not have the pinned SHA-256 $sha"
    mv "$dest.part" "$dest"
  fi
}
fetch "$ORIG" "$ORIG_SHA256"
fetch "$DEBIAN_TAR" "$DEBIAN_TAR_SHA256"

step "edk2 $EDK2_VERSION: unpacking, Debian's patches"
# One absolute build directory whatever the checkout: built from two directories whose paths differ
# in length, six of the 88 modules (DxeIpl, PcdPeim, PciBusDxe...) came out 64 bytes apart, and so
# did the firmware. The lock keeps two builds on one machine from sharing it at once.
src=${EDK2_BUILD_DIR:-/tmp/sealed-inference-edk2}
exec 9>"$src.lock"
flock -w 1800 9 || die "another build holds $src.lock"
rm -rf "$src" && mkdir -p "$src"
tar -xf "$WORK/downloads/$ORIG" -C "$src" --strip-components=1
tar -xf "$WORK/downloads/$DEBIAN_TAR" -C "$src"
while read -r patch; do
  case "$patch" in ''|'#'*) continue ;; esac
  patch -d "$src" -p1 -s < "$src/debian/patches/$patch" || die "Debian patch $patch does not apply"
done < "$src/debian/patches/series"

# The changelog's date, as Debian's own build uses it: the time of the files grub.sh packs.
SOURCE_DATE_EPOCH=$(date -d "$(sed -n 's/^ -- .*>  //p' "$src/debian/changelog" | head -1)" +%s)
export SOURCE_DATE_EPOCH
# grub.sh packs grub.cfg into a FAT memdisk inside grub.efi, which AmdSevX64 embeds: a random
# volume serial and the build's clock would make every firmware build, and so every launch
# measurement, different.
# And it asks for grub's `sevsecret` module, an out-of-tree patch no Debian grub carries; that
# grub is only the firmware's fallback for booting an encrypted disk with a secret injected at
# launch. Measured direct boot (-kernel/-initrd/-append, kernel-hashes=on) never runs it, so it
# is built without that module.
grubsh="$src/OvmfPkg/AmdSev/Grub/grub.sh"
grep -q 'mkfs.msdos -C -- ' "$grubsh" && grep -q 'mcopy -i ' "$grubsh" && grep -q '^ *sevsecret$' "$grubsh" \
  || die "grub.sh changed: review the edits below"
sed -i -e 's/mkfs.msdos -C -- /mkfs.msdos --invariant -C -- /' \
       -e 's/^mcopy -i /touch -d "@$SOURCE_DATE_EPOCH" -- "${basedir}\/grub.cfg"; mcopy -m -i /' \
       -e '/^ *sevsecret$/d' "$grubsh"

step "BaseTools"
(cd "$src" && set +u && . ./edksetup.sh >/dev/null && make -s -C BaseTools -j"$(nproc)" >"$WORK/edk2-basetools.log" 2>&1) \
  || { tail -30 "$WORK/edk2-basetools.log" >&2; die "BaseTools did not build (log: $WORK/edk2-basetools.log)"; }

step "OvmfPkg/AmdSev/AmdSevX64.dsc (RELEASE, GCC5 as Debian builds OVMF)"
# No vendor/version/date PCDs: their defaults are constants, and nothing from the build's clock
# gets into the firmware.
(cd "$src" && set +u && . ./edksetup.sh >/dev/null && build -q -a X64 -t GCC5 -b RELEASE -n "$(nproc)" \
   -p OvmfPkg/AmdSev/AmdSevX64.dsc >"$WORK/edk2-build.log" 2>&1) \
  || { tail -40 "$WORK/edk2-build.log" >&2; die "AmdSevX64 did not build (log: $WORK/edk2-build.log)"; }

cp "$src/Build/AmdSev/RELEASE_GCC5/FV/OVMF.fd" "$OUT/OVMF.amdsev.fd"
{
  echo "edk2 $EDK2_VERSION (Debian source), OvmfPkg/AmdSev/AmdSevX64.dsc RELEASE GCC5"
  echo "toolchain: $(gcc --version | head -1); $(nasm -v); iasl $(iasl -v 2>/dev/null | sed -n 's/.*version \([0-9]*\).*/\1/p' | head -1); $(grub-mkimage --version)"
} > "$OUT/OVMF.amdsev.txt"
(cd "$OUT" && sha256sum OVMF.amdsev.fd | tee OVMF.amdsev.fd.sha256)
cat "$OUT/OVMF.amdsev.txt"
step "done: $OUT/OVMF.amdsev.fd"

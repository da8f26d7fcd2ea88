#!/usr/bin/env bash
# Builds the confidential VM image and, for SEV-SNP direct boot, its expected measurement.
#
#   deploy/build-image.sh                             # image only
#   OVMF=/path/OVMF.amdsev.fd deploy/build-image.sh   # also policy.json for QEMU SEV-SNP direct boot
#   OVMF=amdsev deploy/build-image.sh                 # the same, building OVMF first (build-ovmf-amdsev.sh)
#   deploy/build-image.sh --preflight                 # only fetch mkosi and check the host and mirror
#
# Runs as root on a stock Debian 12 or 13 machine (no KVM, loop devices or user namespaces needed):
# it fetches Debian trixie's mkosi package, pinned below by version and SHA-256, runs it from the
# extracted package, and mkosi builds its own trixie tools tree (systemd-repart, ukify, mkfs.erofs,
# veritysetup) from enclave/image/mkosi.sandbox's apt sources. Needs on the host: Node.js >= 20 and
# npm, python3 >= 3.9, curl, dpkg, apt and debian-archive-keyring (with the trixie keys), network
# access to the npm registry and to the Debian mirror.
#
# Environment:
#   WORK  (default .image-build) downloads, mkosi workspace and package cache
#   OUT   (default $WORK/out) the artifacts
#   MODEL (default stories260K) a directory under models/
#   MKOSI a mkosi >= 25 command to use instead of the pinned package
#   DEBIAN_MIRROR (default http://deb.debian.org/debian) where the mkosi package is fetched
#   OVMF (an AmdSevX64 build, or "amdsev" to build one), VCPUS (default 4), VCPU_TYPE (default EPYC-v4), GUEST_FEATURES
#   (default 0x21: SNPActive|DebugSwap, what KVM on Linux >= 6.6 sets; 0x1 on older hosts).
set -euo pipefail

repo=$(cd "$(dirname "$0")/.." && pwd)
WORK=${WORK:-$repo/.image-build}
OUT=${OUT:-$WORK/out}
MODEL=${MODEL:-stories260K}
VCPUS=${VCPUS:-4}
VCPU_TYPE=${VCPU_TYPE:-EPYC-v4}
GUEST_FEATURES=${GUEST_FEATURES:-0x21}
DEBIAN_MIRROR=${DEBIAN_MIRROR:-http://deb.debian.org/debian}
# Debian trixie's mkosi (architecture all). A newer mkosi may lay the image out differently and so
# change every digest: bump these two together, deliberately, like any dependency.
MKOSI_DEB=mkosi_25.3-7_all.deb
MKOSI_DEB_SHA256=ef56c81324fd47d65490e944ec4697bb3f6fb21326d0d071bfc2fb5ba5383252

preflight=
case "${1:-}" in
  --preflight) preflight=1 ;;
  "") ;;
  *) echo "usage: build-image.sh [--preflight]" >&2; exit 2 ;;
esac

started=$SECONDS
step() { printf '==> [%4ss] %s\n' "$((SECONDS - started))" "$*"; }
die() { echo "build-image: $*" >&2; exit 1; }
# Exit status 3: what the build needs from this machine or the network is not there (the image
# test skips on it); any other failure is the build's own.
unavailable() { echo "build-image: $*" >&2; exit 3; }

[ "$(id -u)" = 0 ] || unavailable "run as root (mkosi needs it without user namespaces)"
for tool in node npm python3 curl dpkg sha256sum; do
  command -v "$tool" >/dev/null || unavailable "$tool is required"
done
python3 -c 'import sys; sys.exit(sys.version_info < (3, 9))' || unavailable "python3 >= 3.9 is required by mkosi"
[ -s /usr/share/keyrings/debian-archive-keyring.gpg ] || unavailable "debian-archive-keyring is required (the tools tree is bootstrapped with it)"
[ -d "$repo/models/$MODEL" ] || die "no model directory models/$MODEL"
case "$OUT" in /*) ;; *) OUT=$PWD/$OUT ;; esac
case "$WORK" in /*) ;; *) WORK=$PWD/$WORK ;; esac
mkdir -p "$OUT" "$WORK/downloads" "$WORK/workspace" "$WORK/packages"

if [ -n "${MKOSI:-}" ]; then
  read -r -a mkosi <<<"$MKOSI"
else
  deb="$WORK/downloads/$MKOSI_DEB"
  if ! echo "$MKOSI_DEB_SHA256  $deb" | sha256sum -c --status 2>/dev/null; then
    step "fetching $MKOSI_DEB from $DEBIAN_MIRROR"
    curl -fsSL --retry 3 -o "$deb.part" "$DEBIAN_MIRROR/pool/main/m/mkosi/$MKOSI_DEB" \
      || unavailable "could not download $DEBIAN_MIRROR/pool/main/m/mkosi/$MKOSI_DEB (superseded in the archive? then take it from snapshot.debian.org with DEBIAN_MIRROR, or set MKOSI)"
    echo "$MKOSI_DEB_SHA256  $deb.part" | sha256sum -c --status \
      || die "$MKOSI_DEB does not have the pinned SHA-256 $MKOSI_DEB_SHA256"
    mv "$deb.part" "$deb"
  fi
  rm -rf "$WORK/mkosi" && dpkg -x "$deb" "$WORK/mkosi"
  mkosi=(env "PYTHONPATH=$WORK/mkosi/usr/lib/python3/dist-packages" python3 -m mkosi)
fi
"${mkosi[@]}" --version >/dev/null || unavailable "mkosi does not run here: ${mkosi[*]}"
step "using $("${mkosi[@]}" --version)"
if [ -n "$preflight" ]; then
  # The image's apt sources must answer too (mkosi.sandbox); a 4xx/5xx here would fail the build.
  curl -fsS -o /dev/null --retry 2 http://deb.debian.org/debian/dists/trixie/InRelease \
    || unavailable "the Debian mirror does not serve trixie"
  step "preflight passed"
  exit 0
fi

if [ "${OVMF:-}" = amdsev ]; then
  step "OVMF AmdSevX64 from Debian's edk2 source (deploy/build-ovmf-amdsev.sh)"
  WORK=$WORK OUT=$WORK/ovmf "$repo/deploy/build-ovmf-amdsev.sh"
  OVMF=$WORK/ovmf/OVMF.amdsev.fd
fi
[ -z "${OVMF:-}" ] || [ -f "$OVMF" ] || die "OVMF=$OVMF: no such file"

stage="$WORK/app"
dropins="$WORK/etc-tree"
rm -rf "$stage" "$dropins"
mkdir -p "$stage/deploy" "$dropins/etc/systemd/system/sealed-inference.service.d"

step "production dependencies (the Dockerfile's deps stage)"
cp "$repo/package.json" "$repo/package-lock.json" "$repo/.npmrc" "$stage/"
cp "$repo/deploy/prune-production.sh" "$stage/deploy/"
(cd "$stage" && npm ci --omit=dev --no-audit --no-fund --loglevel=error && sh deploy/prune-production.sh .)
rm -rf "$stage/deploy" "$stage/package-lock.json" "$stage/.npmrc"

step "compiled app and chat page (the Dockerfile's build stage)"
(cd "$repo" && npm run --silent build)
cp -r "$repo/dist" "$repo/bin" "$stage/"
mkdir -p "$stage/models"
cp -r "$repo/models/$MODEL" "$stage/models/$MODEL"
# Relative, so that the file (and SHA256SUMS) is the same from any checkout.
(cd "$stage" && node "$repo/deploy/model-digest.mjs" "models/$MODEL") | tee "$OUT/model-digest.txt"

cat > "$dropins/etc/systemd/system/sealed-inference.service.d/model.conf" <<UNIT
[Service]
Environment=SEALED_MODEL_DIR=/opt/sealed-inference/models/$MODEL
UNIT

step "image (mkosi: tools tree, packages, root, initrd, UKI, disk)"
rm -f "$OUT"/sealed-inference*
"${mkosi[@]}" --force \
   --directory="$repo/enclave/image" \
   --output-dir="$OUT" \
   --workspace-directory="$WORK/workspace" \
   --package-cache-directory="$WORK/packages" \
   --extra-tree="$stage:/opt/sealed-inference" \
   --extra-tree="$dropins:/" \
   build

uki="$OUT/sealed-inference.efi"
kernel="$OUT/sealed-inference.vmlinuz"
initrd="$OUT/sealed-inference.initrd"
for f in "$OUT/sealed-inference.raw" "$uki" "$kernel" "$initrd"; do
  [ -f "$f" ] || die "mkosi did not produce $f"
done
# The command line (with roothash=) exactly as the UKI carries it; QEMU direct boot must pass
# these very bytes, since OVMF compares their SHA-256 with the measured hashes page.
node "$repo/deploy/uki-section.mjs" "$uki" .cmdline > "$OUT/cmdline.bin"
tr -d '\000' < "$OUT/cmdline.bin" | sed -e 's/[[:space:]]*$//' > "$OUT/cmdline.txt"
rm -f "$OUT/cmdline.bin"
roothash=$(grep -o 'roothash=[0-9a-f]\{64\}' "$OUT/cmdline.txt" | cut -d= -f2) \
  || die "no roothash= on the UKI's command line"
echo "$roothash" > "$OUT/roothash.txt"
echo "kernel command line: $(cat "$OUT/cmdline.txt")"

step "digests"
(cd "$OUT" && sha256sum sealed-inference.raw sealed-inference.efi sealed-inference.vmlinuz \
   sealed-inference.initrd cmdline.txt roothash.txt model-digest.txt > SHA256SUMS && cat SHA256SUMS)
(cd "$OUT" && ls -l sealed-inference.raw sealed-inference.efi sealed-inference.vmlinuz sealed-inference.initrd \
   && du -h --apparent-size sealed-inference.raw | sed 's/^/disk, apparent: /' \
   && du -h sealed-inference.raw | sed 's/^/disk, allocated: /')

if [ -n "${OVMF:-}" ]; then
  step "expected SEV-SNP measurement for QEMU direct boot ($VCPUS x $VCPU_TYPE, guest features $GUEST_FEATURES)"
  node "$repo/bin/sealed.mjs" measure --ovmf "$OVMF" --vcpus "$VCPUS" --vcpu-type "$VCPU_TYPE" \
    --guest-features "$GUEST_FEATURES" --kernel "$kernel" --initrd "$initrd" --append "$(cat "$OUT/cmdline.txt")" \
    --policy-out "$OUT/policy.json" --model-dir "$stage/models/$MODEL"
  # The firmware is an input of the measurement: it travels with the policy and the image.
  cp "$OVMF" "$OUT/OVMF.amdsev.fd"
  (cd "$OUT" && sha256sum OVMF.amdsev.fd policy.json >> SHA256SUMS && tail -2 SHA256SUMS)
  echo "policy for clients: $OUT/policy.json"
fi
step "done: $OUT"

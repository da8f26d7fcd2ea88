#!/usr/bin/env bash
# Builds the confidential VM image and, for SEV-SNP direct boot, its expected measurement.
#
#   deploy/build-image.sh                       # image only
#   OVMF=/path/OVMF.amdsev.fd deploy/build-image.sh   # also policy.json for QEMU SEV-SNP direct boot
#
# Environment: OUT (default build/image), MODEL (default stories260K), OVMF (an AmdSevX64 build),
# VCPUS (default 4), VCPU_TYPE (default EPYC-v4), GUEST_FEATURES (default 0x21: SNPActive|DebugSwap,
# what KVM on Linux >= 6.6 sets; 0x1 on older hosts).
# Needs: Node.js >= 20 and npm, mkosi >= 25 (with systemd-repart, mkfs.erofs, veritysetup), objcopy.
# Not run where it was written (no VM tooling there); see docs/DEPLOY.md.
set -euo pipefail

repo=$(cd "$(dirname "$0")/.." && pwd)
OUT=${OUT:-$repo/build/image}
MODEL=${MODEL:-stories260K}
VCPUS=${VCPUS:-4}
VCPU_TYPE=${VCPU_TYPE:-EPYC-v4}
GUEST_FEATURES=${GUEST_FEATURES:-0x21}

for tool in node npm mkosi objcopy; do
  command -v "$tool" >/dev/null || { echo "build-image: $tool is required" >&2; exit 1; }
done
[ -d "$repo/models/$MODEL" ] || { echo "build-image: no model directory models/$MODEL" >&2; exit 1; }

mkdir -p "$OUT"
stage="$OUT/app"
dropins="$OUT/etc-tree"
rm -rf "$stage" "$dropins"
mkdir -p "$stage/deploy" "$dropins/etc/systemd/system/sealed-inference.service.d"

echo "==> production dependencies (the Dockerfile's deps stage)"
cp "$repo/package.json" "$repo/package-lock.json" "$repo/.npmrc" "$stage/"
cp "$repo/deploy/prune-production.sh" "$stage/deploy/"
(cd "$stage" && npm ci --omit=dev --no-audit --no-fund && sh deploy/prune-production.sh .)
rm -rf "$stage/deploy" "$stage/package-lock.json" "$stage/.npmrc"

echo "==> compiled app (the Dockerfile's build stage)"
(cd "$repo" && npm run build)
cp -r "$repo/dist" "$repo/bin" "$stage/"
mkdir -p "$stage/models"
cp -r "$repo/models/$MODEL" "$stage/models/$MODEL"
node "$repo/deploy/model-digest.mjs" "$stage/models/$MODEL" | tee "$OUT/model-digest.txt"

cat > "$dropins/etc/systemd/system/sealed-inference.service.d/model.conf" <<UNIT
[Service]
Environment=SEALED_MODEL_DIR=/opt/sealed-inference/models/$MODEL
UNIT

echo "==> image (mkosi)"
(cd "$repo/enclave/image" && mkosi --force \
   --output-dir="$OUT" \
   --extra-tree="$stage:/opt/sealed-inference" \
   --extra-tree="$dropins:/" \
   build)

uki="$OUT/sealed-inference.efi"
kernel="$OUT/sealed-inference.vmlinuz"
initrd="$OUT/sealed-inference.initrd"
for f in "$OUT/sealed-inference.raw" "$uki" "$kernel" "$initrd"; do
  [ -f "$f" ] || { echo "build-image: mkosi did not produce $f" >&2; exit 1; }
done
# The command line (with roothash=) exactly as the UKI carries it; QEMU direct boot must pass
# these very bytes, since OVMF compares their SHA-256 with the measured hashes page.
objcopy -O binary --only-section=.cmdline "$uki" "$OUT/cmdline.bin"
tr -d '\000' < "$OUT/cmdline.bin" | sed -e 's/[[:space:]]*$//' > "$OUT/cmdline.txt"
grep -q 'roothash=[0-9a-f]\{64\}' "$OUT/cmdline.txt" || { echo "build-image: no roothash= on the command line" >&2; exit 1; }
echo "kernel command line: $(cat "$OUT/cmdline.txt")"
(cd "$OUT" && sha256sum sealed-inference.raw sealed-inference.efi sealed-inference.vmlinuz sealed-inference.initrd cmdline.txt > SHA256SUMS)

if [ -n "${OVMF:-}" ]; then
  echo "==> expected SEV-SNP measurement for QEMU direct boot ($VCPUS x $VCPU_TYPE, guest features $GUEST_FEATURES)"
  node "$repo/bin/sealed.mjs" measure --ovmf "$OVMF" --vcpus "$VCPUS" --vcpu-type "$VCPU_TYPE" \
    --guest-features "$GUEST_FEATURES" --kernel "$kernel" --initrd "$initrd" --append "$(cat "$OUT/cmdline.txt")" \
    --policy-out "$OUT/policy.json" --model-dir "$stage/models/$MODEL"
  echo "policy for clients: $OUT/policy.json"
fi

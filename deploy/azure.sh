#!/usr/bin/env bash
# Azure confidential VMs: upload the image to a compute gallery, boot it on DCasv5/ECasv5
# (SEV-SNP) or DCesv5/ECesv5 (TDX).
#
#   RG=rg LOCATION=westeurope STORAGE=acct GALLERY=gal deploy/azure.sh upload
#   RG=rg GALLERY=gal deploy/azure.sh create-snp NAME     # Standard_DC4as_v5
#   RG=rg GALLERY=gal deploy/azure.sh create-tdx NAME     # Standard_DC4es_v5
# On these sizes a paravisor owns the hardware report and hands the guest a vTPM-based one; the
# server's configfs-tsm provider then finds no usable TEE and refuses to start (platform auto
# fails closed). See docs/DEPLOY.md. Not run where it was written (no cloud access there).
set -euo pipefail
repo=$(cd "$(dirname "$0")/.." && pwd)
OUT=${OUT:-$repo/.image-build/out}
IMAGE=${IMAGE:-sealed-inference}
VERSION=${VERSION:-1.0.0}

need() { : "${!1:?set $1}"; }
cmd=${1:-}; shift || true
case "$cmd" in
  upload)
    need RG; need LOCATION; need STORAGE; need GALLERY
    vhd="$OUT/$IMAGE.vhd"
    # Azure wants a fixed-size VHD whose virtual size is a whole number of MiB.
    qemu-img convert -f raw -O vpc -o subformat=fixed,force_size "$OUT/sealed-inference.raw" "$vhd"
    az storage container create --account-name "$STORAGE" --name images --auth-mode login >/dev/null
    az storage blob upload --account-name "$STORAGE" --container-name images --name "$IMAGE-$VERSION.vhd" \
      --file "$vhd" --type page --auth-mode login --overwrite
    az sig image-definition create -g "$RG" --gallery-name "$GALLERY" --gallery-image-definition "$IMAGE" \
      --publisher sealed --offer sealed-inference --sku debian-trixie --os-type Linux --os-state Generalized \
      --hyper-v-generation V2 --features SecurityType=ConfidentialVmSupported 2>/dev/null || true
    az sig image-version create -g "$RG" --gallery-name "$GALLERY" --gallery-image-definition "$IMAGE" \
      --gallery-image-version "$VERSION" --location "$LOCATION" \
      --os-vhd-uri "https://$STORAGE.blob.core.windows.net/images/$IMAGE-$VERSION.vhd" \
      --os-vhd-storage-account "$STORAGE"
    ;;
  create-snp|create-tdx)
    need RG; need GALLERY; name=${1:?vm name}
    if [ "$cmd" = create-snp ]; then size=${SIZE_SNP:-Standard_DC4as_v5}; else size=${SIZE_TDX:-Standard_DC4es_v5}; fi
    image_id=$(az sig image-version show -g "$RG" --gallery-name "$GALLERY" --gallery-image-definition "$IMAGE" \
      --gallery-image-version "$VERSION" --query id -o tsv)
    az vm create -g "$RG" -n "$name" --size "$size" --image "$image_id" \
      --security-type ConfidentialVM --os-disk-security-encryption-type VMGuestStateOnly \
      --enable-vtpm true --enable-secure-boot false \
      --admin-username unused --generate-ssh-keys --nsg-rule NONE --public-ip-sku Standard
    az vm open-port -g "$RG" -n "$name" --port 8080
    az vm boot-diagnostics enable -g "$RG" -n "$name"
    ;;
  serial)
    need RG; name=${1:?vm name}
    az vm boot-diagnostics get-boot-log -g "$RG" -n "$name"
    ;;
  *)
    sed -n '2,10p' "$0" >&2; exit 2 ;;
esac

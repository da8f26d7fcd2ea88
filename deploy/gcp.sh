#!/usr/bin/env bash
# Google Cloud confidential VMs: upload the image, boot it with SEV-SNP (N2D) or TDX (C3).
#
#   PROJECT=my-proj BUCKET=my-bucket deploy/gcp.sh upload
#   PROJECT=my-proj deploy/gcp.sh create-snp NAME      # n2d-standard-4, AMD Milan, SEV-SNP
#   PROJECT=my-proj deploy/gcp.sh create-tdx NAME      # c3-standard-4, Intel Sapphire Rapids, TDX
#   PROJECT=my-proj deploy/gcp.sh firewall             # allow tcp:8080 to instances tagged sealed-inference
#   PROJECT=my-proj deploy/gcp.sh serial NAME          # the boot log (model digest, listening line)
#   GCE_OVMF=ovmf.fd VCPUS=4 deploy/gcp.sh measure-snp # expected MEASUREMENT (firmware only, see DEPLOY.md)
# Not run where it was written (no cloud access there).
set -euo pipefail
repo=$(cd "$(dirname "$0")/.." && pwd)
OUT=${OUT:-$repo/.image-build/out}
IMAGE=${IMAGE:-sealed-inference}
ZONE_SNP=${ZONE_SNP:-us-central1-a}
ZONE_TDX=${ZONE_TDX:-us-central1-a}

need() { : "${!1:?set $1}"; }
cmd=${1:-}; shift || true
case "$cmd" in
  upload)
    need PROJECT; need BUCKET
    # GCE imports a gzipped tar holding one sparse file named disk.raw.
    tmp=$(mktemp -d); trap 'rm -rf "$tmp"' EXIT
    cp --sparse=always "$OUT/sealed-inference.raw" "$tmp/disk.raw"
    tar --format=oldgnu -C "$tmp" -Sczf "$tmp/$IMAGE.tar.gz" disk.raw
    gcloud storage cp "$tmp/$IMAGE.tar.gz" "gs://$BUCKET/$IMAGE.tar.gz" --project "$PROJECT"
    gcloud compute images create "$IMAGE" --project "$PROJECT" \
      --source-uri "gs://$BUCKET/$IMAGE.tar.gz" \
      --guest-os-features=UEFI_COMPATIBLE,GVNIC,SEV_SNP_CAPABLE,TDX_CAPABLE
    ;;
  create-snp)
    need PROJECT; name=${1:?instance name}
    gcloud compute instances create "$name" --project "$PROJECT" --zone "$ZONE_SNP" \
      --machine-type "${MACHINE_SNP:-n2d-standard-4}" --min-cpu-platform "AMD Milan" \
      --confidential-compute-type SEV_SNP --maintenance-policy TERMINATE \
      --image "$IMAGE" --no-shielded-secure-boot --shielded-vtpm --shielded-integrity-monitoring \
      --tags sealed-inference --metadata serial-port-enable=TRUE
    ;;
  create-tdx)
    need PROJECT; name=${1:?instance name}
    gcloud compute instances create "$name" --project "$PROJECT" --zone "$ZONE_TDX" \
      --machine-type "${MACHINE_TDX:-c3-standard-4}" \
      --confidential-compute-type TDX --maintenance-policy TERMINATE \
      --image "$IMAGE" --no-shielded-secure-boot \
      --tags sealed-inference --metadata serial-port-enable=TRUE
    ;;
  firewall)
    need PROJECT
    gcloud compute firewall-rules create sealed-inference-8080 --project "$PROJECT" \
      --allow tcp:8080 --target-tags sealed-inference --direction INGRESS
    ;;
  serial)
    need PROJECT; name=${1:?instance name}
    gcloud compute instances get-serial-port-output "$name" --project "$PROJECT" --zone "${ZONE:-$ZONE_SNP}"
    ;;
  measure-snp)
    # GCE's own firmware (download it as docs/DEPLOY.md says); GCE sets no kernel hashes, so this
    # MEASUREMENT pins Google's firmware and the vCPU count, not the image.
    need GCE_OVMF
    node "$repo/bin/sealed.mjs" measure --vmm-type gce --ovmf "$GCE_OVMF" --vcpus "${VCPUS:-4}" \
      --guest-features "${GUEST_FEATURES:-0x1}" --policy-out "${POLICY:-policy-gcp-snp.json}" \
      ${MODEL_DIR:+--model-dir "$MODEL_DIR"}
    ;;
  *)
    sed -n '2,12p' "$0" >&2; exit 2 ;;
esac

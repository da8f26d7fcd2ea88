#!/usr/bin/env bash
# `npm run test:image`: the VM image, really built and booted (not part of `npm test`: it takes
# minutes, needs root, QEMU and the Debian mirror).
#   1. builds the image twice (deploy/build-image.sh) and requires every artifact's SHA-256 to match;
#   2. boots the disk under QEMU with TCG (q35, OVMF, UEFI, no KVM needed) as it is: the root must
#      come up through dm-verity and sealed-inference must refuse to start with "no TEE found";
#   3. boots it again with a test-only unit drop-in passed as an SMBIOS credential (systemd ignores
#      SMBIOS credentials inside SEV-SNP and TDX guests, so this hook does not exist where it
#      matters) that runs the server simulated and reports the root mount: /readyz must answer on a
#      forwarded port and `sealed chat --allow-simulation` must complete a full encrypted exchange.
# Exits 0 with "SKIP:" when this machine cannot obtain mkosi or QEMU (CI on machines without them);
# any failure of the build, the digests or the boot exits 1.
#
# Environment: WORK (default .image-build/test), BOOT_TIMEOUT (seconds per boot, default 600),
# PORT (host port forwarded to the guest's 8080, default 18080), SINGLE_BUILD=1 (build once: no
# digest comparison, for iterating on the boot checks).
set -euo pipefail

repo=$(cd "$(dirname "$0")/.." && pwd)
WORK=${WORK:-$repo/.image-build/test}
BOOT_TIMEOUT=${BOOT_TIMEOUT:-600}
PORT=${PORT:-18080}
started=$SECONDS
step() { printf '\n=== [test:image %4ss] %s\n' "$((SECONDS - started))" "$*"; }
skip() { echo "test:image: SKIP: $*"; exit 0; }
fail() { echo "test:image: FAIL: $*" >&2; exit 1; }

[ "$(id -u)" = 0 ] || skip "needs root (mkosi without user namespaces)"
command -v qemu-system-x86_64 >/dev/null || skip "no qemu-system-x86_64 (apt-get install qemu-system-x86 ovmf)"
ovmf_code= ovmf_vars=
for d in /usr/share/OVMF /usr/share/ovmf /usr/share/qemu; do
  if [ -f "$d/OVMF_CODE_4M.fd" ] && [ -f "$d/OVMF_VARS_4M.fd" ]; then ovmf_code=$d/OVMF_CODE_4M.fd ovmf_vars=$d/OVMF_VARS_4M.fd; break; fi
  if [ -f "$d/OVMF_CODE.fd" ] && [ -f "$d/OVMF_VARS.fd" ]; then ovmf_code=$d/OVMF_CODE.fd ovmf_vars=$d/OVMF_VARS.fd; break; fi
done
[ -n "$ovmf_code" ] || skip "no OVMF firmware (apt-get install ovmf)"
command -v curl >/dev/null || skip "no curl"

rm -rf "$WORK/a" "$WORK/b" "$WORK/boot"
mkdir -p "$WORK/boot"
export WORK_SHARED="$repo/.image-build"
rc=0
WORK=$WORK_SHARED "$repo/deploy/build-image.sh" --preflight || rc=$?
[ "$rc" = 3 ] && skip "the image cannot be built on this machine (see the line above)"
[ "$rc" = 0 ] || fail "build-image.sh --preflight exited $rc"

build() {
  local out=$1 t0=$SECONDS
  step "build into $out"
  WORK=$WORK_SHARED OUT=$out "$repo/deploy/build-image.sh" > "$out.log" 2>&1 || {
    tail -40 "$out.log" >&2
    fail "build-image.sh failed (full log: $out.log)"
  }
  grep -E '^==>' "$out.log"
  echo "build took $((SECONDS - t0)) s"
}

build "$WORK/a"
out=$WORK/a
if [ "${SINGLE_BUILD:-}" != 1 ]; then
  build "$WORK/b"
  step "digests of the two builds"
  cat "$WORK/a/SHA256SUMS"
  if ! diff -u "$WORK/a/SHA256SUMS" "$WORK/b/SHA256SUMS"; then
    fail "the two builds differ (above: a, then b)"
  fi
  echo "identical: disk, UKI, kernel, initrd, command line, roothash, model digest"
fi
roothash=$(cat "$out/roothash.txt")
ls -l "$out"/sealed-inference.{raw,efi,vmlinuz,initrd}

qemu_pid=
stop_qemu() { if [ -n "$qemu_pid" ]; then kill "$qemu_pid" 2>/dev/null || true; wait "$qemu_pid" 2>/dev/null || true; qemu_pid=; fi; }
trap stop_qemu EXIT
# A CI timeout's SIGTERM must not leave QEMU running behind it.
trap 'exit 1' TERM INT

# boot NAME [qemu args...]: starts QEMU in the background, the serial console in $WORK/boot/NAME.log.
boot() {
  local name=$1; shift
  cp "$ovmf_vars" "$WORK/boot/$name.vars"
  : > "$WORK/boot/$name.log"
  # TCG, not KVM: what CI machines have. The disk is read-only: nothing in the image may write to it.
  qemu-system-x86_64 -machine q35,accel=tcg -cpu max -smp 2 -m 2048 \
    -display none -monitor none -serial "file:$WORK/boot/$name.log" -no-reboot \
    -drive if=pflash,format=raw,unit=0,readonly=on,file="$ovmf_code" \
    -drive if=pflash,format=raw,unit=1,file="$WORK/boot/$name.vars" \
    -drive if=none,id=disk0,format=raw,readonly=on,file="$out/sealed-inference.raw" \
    -device virtio-blk-pci,drive=disk0 \
    -netdev "user,id=net0,hostfwd=tcp:127.0.0.1:$PORT-:8080" -device virtio-net-pci,netdev=net0,romfile= \
    "$@" &
  qemu_pid=$!
  boot_started=$SECONDS
}

# wait_for NAME REGEX: until the serial console shows REGEX, QEMU exits, or the boot times out.
wait_for() {
  local name=$1 re=$2
  while ! grep -aqE "$re" "$WORK/boot/$name.log"; do
    kill -0 "$qemu_pid" 2>/dev/null || { tail -40 "$WORK/boot/$name.log" >&2; fail "$name: QEMU exited before /$re/"; }
    if ((SECONDS - boot_started > BOOT_TIMEOUT)); then
      tail -40 "$WORK/boot/$name.log" >&2
      fail "$name: no /$re/ on the console within $BOOT_TIMEOUT s (log: $WORK/boot/$name.log)"
    fi
    sleep 2
  done
  echo "$name: +$((SECONDS - boot_started)) s: $(grep -aoE "$re" "$WORK/boot/$name.log" | head -1)"
}

step "boot 1: the image as built (no TEE here: must fail closed)"
boot plain
wait_for plain 'veritysetup@root\.service|Verity Protection Setup for root'
wait_for plain 'no TEE found'
if grep -aqE 'listening on|SIMULATION' "$WORK/boot/plain.log"; then fail "plain: the server started outside a TEE"; fi
if curl -fsS -m 5 "http://127.0.0.1:$PORT/readyz" >/dev/null 2>&1; then fail "plain: something answers on port 8080"; fi
grep -aE 'no TEE found' "$WORK/boot/plain.log" | head -1
plain_s=$((SECONDS - boot_started))
stop_qemu

step "boot 2: with the test-only credential (simulated server, root mount reported)"
# ExecStartPre=+ runs as root before the server: it prints what the root is mounted from, the
# device-mapper target behind it and the roothash= the kernel was started with ($$: systemd's
# own expansion would eat a single $).
dropin=$(cat <<'UNIT'
[Service]
ExecStartPre=+/bin/sh -c 'echo "image-check: root $$(findmnt -no SOURCE,FSTYPE,OPTIONS /)"; for d in /sys/block/dm-*/dm; do echo "image-check: dm $$(cat $$d/name) $$(cat $$d/uuid)"; done; for a in $$(cat /proc/cmdline); do case $$a in roothash=*) echo "image-check: $$a";; esac; done'
ExecStart=
ExecStart=/usr/bin/node /opt/sealed-inference/dist/cli/sealed.js serve --platform simulated --host 0.0.0.0 --port 8080
UNIT
)
boot cred -smbios "type=11,value=io.systemd.credential.binary:systemd.unit-dropin.sealed-inference.service=$(printf '%s\n' "$dropin" | base64 -w0)"
wait_for cred 'image-check: roothash=[0-9a-f]+'
log=$WORK/boot/cred.log
grep -a 'image-check:' "$log" | sed 's/^.*image-check:/image-check:/' | sort -u
grep -aqE "image-check: root /dev/mapper/root erofs ro" "$log" || fail "cred: / is not the EROFS root on /dev/mapper/root, read-only"
grep -aqE "image-check: dm root CRYPT-VERITY-" "$log" || fail "cred: /dev/mapper/root is not a dm-verity device"
grep -aqE "image-check: roothash=$roothash" "$log" || fail "cred: the kernel's roothash= is not the build's $roothash"
wait_for cred 'listening on http'
ready=
while ((SECONDS - boot_started < BOOT_TIMEOUT)); do
  if curl -fsS -m 10 "http://127.0.0.1:$PORT/readyz" > "$WORK/boot/readyz.json" 2>/dev/null; then ready=1; break; fi
  sleep 2
done
[ -n "$ready" ] || fail "cred: /readyz did not answer 200 through the forwarded port within $BOOT_TIMEOUT s"
echo "cred: +$((SECONDS - boot_started)) s: /readyz: $(cat "$WORK/boot/readyz.json")"
step "sealed chat --allow-simulation against the booted image"
chat_rc=0
timeout 300 node "$repo/bin/sealed.mjs" chat --url "http://127.0.0.1:$PORT" --allow-simulation --max-tokens 24 \
  "Once upon a time" > "$WORK/boot/chat.out" 2> "$WORK/boot/chat.err" || chat_rc=$?
cat "$WORK/boot/chat.err"
echo "answer: $(cat "$WORK/boot/chat.out")"
[ "$chat_rc" = 0 ] || fail "sealed chat exited $chat_rc"
[ -s "$WORK/boot/chat.out" ] || fail "sealed chat printed no answer"
cred_s=$((SECONDS - boot_started))
stop_qemu

step "passed in $((SECONDS - started)) s (boot 1: $plain_s s, boot 2 with chat: $cred_s s)"

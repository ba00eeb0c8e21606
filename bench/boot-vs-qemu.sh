#!/usr/bin/env bash
# Boot-to-init: Polyvisor vs QEMU TCG on the same Debian kernel, initramfs, command line, memory
# size and vCPU count, bzImage boot on both sides. Runs alternate (polyvisor, qemu, polyvisor, ...),
# RUNS of each (default 5). Boot-to-init is the wall time from launching the emulator process until
# the guest's /init prints its marker line on the serial console.
#
#   bench/boot-vs-qemu.sh [RUNS]        env: MEM (MiB, 512), SMP (1), JIT (Polyvisor's --jit: off|on, off),
#                                       BOOT (Polyvisor's --boot: linux|bzimage, linux)
#
# The command line has nokaslr, so with BOOT=linux (Polyvisor's default) Polyvisor unpacks the bzImage itself and
# enters startup_64 as the bzImage's decompressor would; BOOT=bzimage runs that decompressor in the guest, as
# QEMU's -kernel does on the other side (about 90 M of the boot's 715 M guest instructions).
#
# Each process's peak RSS (GNU time's maximum resident set size) is recorded too: the issue-12 memory target.
# Last lines: "boot-to-init ratio polyvisor/qemu: R" (R = median polyvisor / median qemu) and
# "peak RSS ratio polyvisor/qemu: M" (median peak RSS over median peak RSS).
set -euo pipefail
here="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
. "$here/scripts/env.sh"
pv_setup
command -v qemu-system-x86_64 >/dev/null 2>&1 || pv_apt_install qemu-system-x86
[ -x /usr/bin/time ] || pv_apt_install time
runs=${1:-5}; mem=${MEM:-512}; smp=${SMP:-1}
marker="polyvisor: init started"

eval "$("$here/polyvisor" image 2>/dev/null | grep -E '^(kernel|initramfs)=')"
[ -f "$kernel" ] && [ -f "$initramfs" ] || pv_die "could not build the default guest"
# The guest runs 'true' and powers off; both sides see exactly this command line.
append="console=ttyS0 nokaslr mitigations=off tsc=reliable nowatchdog cryptomgr.notests pv.exec=$(printf true | base64 -w0)"

rss_file="$(mktemp)"; trap 'rm -f "$rss_file"' EXIT
# Prints milliseconds from launch until the marker appears on stdout (or "timeout"), then a space and the
# process's peak RSS in KiB once it has exited (the guest powers off after the marker).
time_to_marker() {
  local start end line ms=timeout
  start=$(date +%s%N)
  : > "$rss_file"
  while IFS= read -r line; do
    if [[ "$line" == *"$marker"* ]]; then end=$(date +%s%N); ms=$(( (end - start) / 1000000 )); cat >/dev/null; break; fi
  done < <(timeout 600 /usr/bin/time -q -f %M -o "$rss_file" "$@" 2>/dev/null)
  wait 2>/dev/null || true   # the process substitution: time writes the file when the emulator exits
  local rss; rss=$(tail -n 1 "$rss_file" 2>/dev/null)
  echo "$ms ${rss:-0}"
}

run_polyvisor() {
  time_to_marker "$here/polyvisor" run --jit "${JIT:-off}" --boot "${BOOT:-linux}" --kernel "$kernel" --initrd "$initramfs" --append "$append" \
    --memory "$mem" --smp "$smp" --timeout 600
}
run_qemu() {
  time_to_marker qemu-system-x86_64 -accel tcg -cpu qemu64 -m "$mem" -smp "$smp" -nodefaults -no-reboot \
    -display none -serial stdio -monitor none -kernel "$kernel" -initrd "$initramfs" -append "$append"
}


"$here/polyvisor" --version >/dev/null 2>&1 # build once, outside the timed runs
pv=(); qm=(); pv_rss=(); qm_rss=()
for i in $(seq 1 "$runs"); do
  read -r p prss < <(run_polyvisor); read -r q qrss < <(run_qemu)
  echo "run $i: polyvisor ${p} ms (peak RSS $((prss / 1024)) MiB), qemu ${q} ms (peak RSS $((qrss / 1024)) MiB)"
  [ "$p" != timeout ] && pv+=("$p") && pv_rss+=("$prss"); [ "$q" != timeout ] && qm+=("$q") && qm_rss+=("$qrss")
done
[ ${#pv[@]} -gt 0 ] && [ ${#qm[@]} -gt 0 ] || pv_die "no successful runs (polyvisor ${#pv[@]}, qemu ${#qm[@]})"
mp=$(printf '%s\n' "${pv[@]}" | pv_median); mq=$(printf '%s\n' "${qm[@]}" | pv_median)
echo "kernel: $(basename "$(dirname "$kernel")"), memory ${mem} MiB, smp ${smp}, polyvisor --boot ${BOOT:-linux}, runs ${runs}"
echo "median boot-to-init polyvisor: ${mp} ms"
echo "median boot-to-init qemu-tcg: ${mq} ms"
rp=$(printf '%s\n' "${pv_rss[@]}" | pv_median); rq=$(printf '%s\n' "${qm_rss[@]}" | pv_median)
echo "median peak RSS polyvisor: $((${rp%.*} / 1024)) MiB, qemu-tcg: $((${rq%.*} / 1024)) MiB"
awk -v a="$mp" -v b="$mq" 'BEGIN {printf "boot-to-init ratio polyvisor/qemu: %.2f\n", a / b}'
awk -v a="$rp" -v b="$rq" 'BEGIN {printf "peak RSS ratio polyvisor/qemu: %.2f\n", a / b}'

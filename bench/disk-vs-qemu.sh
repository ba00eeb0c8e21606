#!/usr/bin/env bash
# Disk throughput: Polyvisor vs QEMU TCG, each with a virtio-blk device (virtio-pci, MSI-X) on a raw image
# in the host's page cache, the same Debian kernel, initramfs, command line, memory size and vCPU count.
# In the guest, busybox dd writes then reads SIZE MiB with O_DIRECT (oflag=direct, iflag=direct: every
# block goes through the virtqueue, none stays in the guest's page cache), timed by the guest's
# /proc/uptime (10 ms steps), whose clock runs at host speed on both. Runs alternate (polyvisor, qemu, ...),
# RUNS of each (default 3).
#
#   bench/disk-vs-qemu.sh [RUNS]     env: SIZE (MiB, 64), BS (dd block size, 1M), MEM (MiB, 512), SMP (1),
#                                    JIT (Polyvisor's --jit, off)
#
# Then boot-to-login (LOGIN_RUNS, default 1; 0 skips it): the Debian root filesystem of `polyvisor image
# --rootfs` (systemd, autologin on ttyS0) booted from a virtio-blk disk on both sides, the same kernel and
# initramfs (root=/dev/vda), 1 vCPU; wall time from launch to the autologin prompt on the serial console.
#
# Last lines: "sequential write speed ratio polyvisor/qemu: R" and the same for read (median MB/s over
# median MB/s; R >= 1 means Polyvisor is at least as fast), then "boot-to-login speed ratio polyvisor/qemu: R"
# (median QEMU time over median Polyvisor time).
set -euo pipefail
here="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
. "$here/scripts/env.sh"
pv_setup
command -v qemu-system-x86_64 >/dev/null 2>&1 || pv_apt_install qemu-system-x86
runs=${1:-3}; size=${SIZE:-64}; bs=${BS:-1M}; mem=${MEM:-512}; smp=${SMP:-1}; login_runs=${LOGIN_RUNS:-1}

eval "$("$here/polyvisor" image 2>/dev/null | grep -E '^(kernel|initramfs)=')"
[ -f "$kernel" ] && [ -f "$initramfs" ] || pv_die "could not build the default guest"
work="$(mktemp -d)"; trap 'rm -rf "$work"' EXIT
img="$work/disk.img"
count=$(( size * 1048576 / $(numfmt --from=iec "$bs") ))
# One line "DISKBENCH t0 t1 t2": uptime before the write, between, after the read.
script="t0=\$(cut -d' ' -f1 /proc/uptime); dd if=/dev/zero of=/dev/vda bs=$bs count=$count oflag=direct 2>/dev/null; \
t1=\$(cut -d' ' -f1 /proc/uptime); dd if=/dev/vda of=/dev/null bs=$bs count=$count iflag=direct 2>/dev/null; \
t2=\$(cut -d' ' -f1 /proc/uptime); echo DISKBENCH \$t0 \$t1 \$t2"
append="console=ttyS0 nokaslr mitigations=off tsc=reliable nowatchdog cryptomgr.notests pv.exec=$(printf '%s' "$script" | base64 -w0)"

# Prints "WRITE_MBPS READ_MBPS" from the guest's DISKBENCH line, or "failed".
measure() {
  local line
  line="$(timeout 900 "$@" 2>/dev/null | tr -d '\r' | grep -a -m1 '^DISKBENCH ' || true)"
  [ -n "$line" ] || { echo failed; return; }
  awk -v s="$size" '{w = $3 - $2; r = $4 - $3; if (w <= 0 || r <= 0) {print "failed"; exit}
                     printf "%.1f %.1f\n", s * 1.048576 / w, s * 1.048576 / r}' <<<"$line"
}
run_polyvisor() {
  truncate -s 0 "$img"; truncate -s "$((size + 16))M" "$img"
  measure "$here/polyvisor" run --jit "${JIT:-off}" --kernel "$kernel" --initrd "$initramfs" --append "$append" \
    --memory "$mem" --smp "$smp" --disk "$img" --timeout 900
}
run_qemu() {
  truncate -s 0 "$img"; truncate -s "$((size + 16))M" "$img"
  measure qemu-system-x86_64 -accel tcg -cpu qemu64 -m "$mem" -smp "$smp" -nodefaults -no-reboot \
    -display none -serial stdio -monitor none -kernel "$kernel" -initrd "$initramfs" -append "$append" \
    -drive "file=$img,if=virtio,format=raw"
}


"$here/polyvisor" --version >/dev/null 2>&1 # build once, outside the timed runs
pw=(); pr=(); qw=(); qr=()
for i in $(seq 1 "$runs"); do
  p=$(run_polyvisor); q=$(run_qemu)
  echo "run $i: polyvisor write/read ${p} MB/s, qemu write/read ${q} MB/s"
  if [ "$p" != failed ]; then read -r w r <<<"$p"; pw+=("$w"); pr+=("$r"); fi
  if [ "$q" != failed ]; then read -r w r <<<"$q"; qw+=("$w"); qr+=("$r"); fi
done
[ ${#pw[@]} -gt 0 ] && [ ${#qw[@]} -gt 0 ] || pv_die "no successful runs (polyvisor ${#pw[@]}, qemu ${#qw[@]})"
mpw=$(printf '%s\n' "${pw[@]}" | pv_median); mpr=$(printf '%s\n' "${pr[@]}" | pv_median)
mqw=$(printf '%s\n' "${qw[@]}" | pv_median); mqr=$(printf '%s\n' "${qr[@]}" | pv_median)
echo "kernel: $(basename "$(dirname "$kernel")"), ${size} MiB in ${bs} blocks, O_DIRECT, memory ${mem} MiB, smp ${smp}, runs ${runs}"
echo "median sequential write: polyvisor ${mpw} MB/s, qemu-tcg ${mqw} MB/s"
echo "median sequential read: polyvisor ${mpr} MB/s, qemu-tcg ${mqr} MB/s"
awk -v a="$mpw" -v b="$mqw" 'BEGIN {printf "sequential write speed ratio polyvisor/qemu: %.2f\n", a / b}'
awk -v a="$mpr" -v b="$mqr" 'BEGIN {printf "sequential read speed ratio polyvisor/qemu: %.2f\n", a / b}'

[ "$login_runs" -gt 0 ] || exit 0
# Boot-to-login on the Debian root filesystem (built once, cached; a copy per run, so every boot is a first boot).
"$here/polyvisor" image --rootfs >/dev/null || pv_die "could not build the Debian root filesystem (polyvisor image --rootfs)"
prompt="root@polyvisor:~#"
login_append="console=ttyS0 root=/dev/vda nokaslr mitigations=off tsc=reliable nowatchdog cryptomgr.notests"
# Prints milliseconds from launch until the autologin prompt appears (or "timeout"); the emulator is then stopped.
time_to_prompt() {
  local start pid line result=timeout
  "$here/polyvisor" image --rootfs --out "$work/root.img" >/dev/null
  start=$(date +%s%N)
  coproc EMU { exec "$@" 2>/dev/null; }
  pid=$EMU_PID
  # The prompt ends in '#' with no newline after it: read up to each '#'.
  while IFS= read -r -d '#' -t 900 line <&"${EMU[0]}"; do
    if [[ "$line#" == *"$prompt" ]]; then result=$(( ($(date +%s%N) - start) / 1000000 )); break; fi
  done
  kill -9 "$pid" 2>/dev/null || true; wait "$pid" 2>/dev/null || true
  echo "$result"
}
pl=(); ql=()
for i in $(seq 1 "$login_runs"); do
  p=$(time_to_prompt "$here/polyvisor" run --jit "${JIT:-off}" --kernel "$kernel" --initrd "$initramfs" --append "$login_append" \
      --memory "$mem" --smp 1 --disk "$work/root.img" --device virtio-rng --timeout 900)
  q=$(time_to_prompt qemu-system-x86_64 -accel tcg -cpu qemu64 -m "$mem" -smp 1 -nodefaults -no-reboot -display none \
      -serial stdio -monitor none -kernel "$kernel" -initrd "$initramfs" -append "$login_append" \
      -drive "file=$work/root.img,if=virtio,format=raw" -device virtio-rng-pci)
  echo "login run $i: polyvisor ${p} ms, qemu ${q} ms"
  [ "$p" != timeout ] && pl+=("$p"); [ "$q" != timeout ] && ql+=("$q")
done
[ ${#pl[@]} -gt 0 ] && [ ${#ql[@]} -gt 0 ] || pv_die "no successful boot-to-login (polyvisor ${#pl[@]}, qemu ${#ql[@]})"
mpl=$(printf '%s\n' "${pl[@]}" | pv_median); mql=$(printf '%s\n' "${ql[@]}" | pv_median)
echo "median boot-to-login (Debian rootfs, systemd, 1 vCPU): polyvisor ${mpl} ms, qemu-tcg ${mql} ms"
awk -v a="$mpl" -v b="$mql" 'BEGIN {printf "boot-to-login speed ratio polyvisor/qemu: %.2f\n", b / a}'

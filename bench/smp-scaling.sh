#!/usr/bin/env bash
# SMP scaling: a CPU-parallel workload in the Debian guest with --smp 2 against --smp 1, Polyvisor and, for
# reference, QEMU TCG (multi-threaded TCG: one host thread per vCPU) in the same run. The workload is two
# busybox shells, each counting to LOOPS in arithmetic expansion, started together; with one vCPU they share
# it, with two each can have one. It is timed inside the guest by /proc/uptime (10 ms steps; the guest's
# clock follows the host's on both), so boot time does not count. Runs alternate, RUNS of each (default 3).
#
#   bench/smp-scaling.sh [RUNS]      env: LOOPS (200000), MEM (MiB, 512), JIT (Polyvisor's --jit, off)
#
# Last lines: "polyvisor smp speed-up (smp1 time / smp2 time): S" and the same for qemu-tcg.
set -euo pipefail
here="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
. "$here/scripts/env.sh"
pv_setup
command -v qemu-system-x86_64 >/dev/null 2>&1 || pv_apt_install qemu-system-x86
runs=${1:-3}; loops=${LOOPS:-200000}; mem=${MEM:-512}

eval "$("$here/polyvisor" image 2>/dev/null | grep -E '^(kernel|initramfs)=')"
[ -f "$kernel" ] && [ -f "$initramfs" ] || pv_die "could not build the default guest"
worker="i=0; while [ \$i -lt $loops ]; do i=\$((i + 1)); done"
script="t0=\$(cut -d' ' -f1 /proc/uptime); sh -c '$worker' & sh -c '$worker' & wait; \
t1=\$(cut -d' ' -f1 /proc/uptime); echo SMPBENCH \$(nproc) \$t0 \$t1"
append="console=ttyS0 nokaslr mitigations=off tsc=reliable nowatchdog cryptomgr.notests pv.exec=$(printf '%s' "$script" | base64 -w0)"

# Prints the workload's seconds from the guest's SMPBENCH line (checking the vCPU count), or "failed".
measure() {
  local smp="$1"; shift
  local line
  line="$(timeout 900 "$@" 2>/dev/null | tr -d '\r' | grep -a -m1 '^SMPBENCH ' || true)"
  [ -n "$line" ] || { echo failed; return; }
  awk -v n="$smp" '{ if ($2 != n) {print "failed"; exit} printf "%.2f\n", $4 - $3 }' <<<"$line"
}
run_polyvisor() {
  measure "$1" "$here/polyvisor" run --jit "${JIT:-off}" --kernel "$kernel" --initrd "$initramfs" --append "$append" \
    --memory "$mem" --smp "$1" --timeout 900
}
run_qemu() {
  measure "$1" qemu-system-x86_64 -accel tcg,thread=multi -cpu qemu64 -m "$mem" -smp "$1" -nodefaults -no-reboot \
    -display none -serial stdio -monitor none -kernel "$kernel" -initrd "$initramfs" -append "$append"
}


"$here/polyvisor" --version >/dev/null 2>&1 # build once, outside the timed runs
p1=(); p2=(); q1=(); q2=()
for i in $(seq 1 "$runs"); do
  a=$(run_polyvisor 1); b=$(run_polyvisor 2); c=$(run_qemu 1); d=$(run_qemu 2)
  echo "run $i: polyvisor smp1 ${a} s, smp2 ${b} s; qemu smp1 ${c} s, smp2 ${d} s"
  [ "$a" != failed ] && p1+=("$a"); [ "$b" != failed ] && p2+=("$b")
  [ "$c" != failed ] && q1+=("$c"); [ "$d" != failed ] && q2+=("$d")
done
[ ${#p1[@]} -gt 0 ] && [ ${#p2[@]} -gt 0 ] && [ ${#q1[@]} -gt 0 ] && [ ${#q2[@]} -gt 0 ] || pv_die "a configuration had no successful run"
mp1=$(printf '%s\n' "${p1[@]}" | pv_median); mp2=$(printf '%s\n' "${p2[@]}" | pv_median)
mq1=$(printf '%s\n' "${q1[@]}" | pv_median); mq2=$(printf '%s\n' "${q2[@]}" | pv_median)
echo "kernel: $(basename "$(dirname "$kernel")"), 2 workers x ${loops} loops, memory ${mem} MiB, host CPUs $(nproc), runs ${runs}"
echo "median workload: polyvisor smp1 ${mp1} s, smp2 ${mp2} s; qemu-tcg smp1 ${mq1} s, smp2 ${mq2} s"
awk -v a="$mp1" -v b="$mp2" 'BEGIN {printf "polyvisor smp speed-up (smp1 time / smp2 time): %.2f\n", a / b}'
awk -v a="$mq1" -v b="$mq2" 'BEGIN {printf "qemu-tcg smp speed-up (smp1 time / smp2 time): %.2f\n", a / b}'

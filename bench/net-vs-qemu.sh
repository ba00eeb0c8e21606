#!/usr/bin/env bash
# Guest<->host TCP throughput through passt: Polyvisor (--net user) vs QEMU TCG (-netdev stream on a passt
# this script starts the same way), each with a virtio-net-pci device, the same Debian kernel, initramfs,
# command line, memory size and vCPU count. Debian's iperf3 runs on both ends: the host's `iperf3 -s` on
# 127.0.0.1, and in the guest the host's own iperf3 binary with its shared libraries, handed over on a
# read-only ext4 disk (the default guest is busybox without a libc) and started through the dynamic
# loader on that disk; the guest reaches the host's loopback through passt's gateway address. Each boot
# measures guest->host (iperf3 -c) and host->guest (iperf3 -c -R), DURATION seconds each. Runs alternate
# (polyvisor, qemu, ...), RUNS of each (default 3).
#
#   bench/net-vs-qemu.sh [RUNS]      env: DURATION (s, 5), MEM (MiB, 512), SMP (1), JIT (Polyvisor's --jit, off),
#                                    RING (the virtqueue layout of both sides' virtio devices: split or packed, split)
#
# Last lines: "guest->host throughput ratio polyvisor/qemu: R" and the same for host->guest (median
# receiver Mbit/s over median receiver Mbit/s; R >= 1 means Polyvisor is at least as fast).
set -euo pipefail
here="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
. "$here/scripts/env.sh"
pv_setup
command -v qemu-system-x86_64 >/dev/null 2>&1 || pv_apt_install qemu-system-x86
command -v iperf3 >/dev/null 2>&1 || pv_apt_install iperf3
command -v passt >/dev/null 2>&1 || pv_apt_install passt
command -v mke2fs >/dev/null 2>&1 || pv_apt_install e2fsprogs
runs=${1:-3}; duration=${DURATION:-5}; mem=${MEM:-512}; smp=${SMP:-1}
case "${RING:-split}" in split) packed=off ;; packed) packed=on ;; *) pv_die "RING must be split or packed, not ${RING}" ;; esac

eval "$("$here/polyvisor" image 2>/dev/null | grep -E '^(kernel|initramfs)=')"
[ -f "$kernel" ] && [ -f "$initramfs" ] || pv_die "could not build the default guest"
work="$(mktemp -d)"; chmod 755 "$work"
server_pid=""; passt_pid=""
cleanup() { [ -n "$server_pid" ] && kill "$server_pid" 2>/dev/null; [ -n "$passt_pid" ] && kill "$passt_pid" 2>/dev/null; rm -rf "$work"; }
trap cleanup EXIT

# The tools disk: iperf3, the libraries ldd lists for it, and the loader.
mkdir -p "$work/tools/bin" "$work/tools/lib"
cp "$(command -v iperf3)" "$work/tools/bin/"
ldd "$(command -v iperf3)" | awk '/=> \// {print $3} /^[ \t]*\/lib/ {print $1}' | while read -r lib; do cp -L "$lib" "$work/tools/lib/"; done
loader="$(basename "$(ldd "$(command -v iperf3)" | awk '/ld-linux/ {print ($3 ~ /^\// ? $3 : $1)}')")"
[ -f "$work/tools/lib/$loader" ] || pv_die "could not find iperf3's dynamic loader"
tools="$work/tools.img"
mke2fs -q -F -t ext4 -d "$work/tools" "$tools" 64M >/dev/null || pv_die "mke2fs could not build the tools disk"

port=$(python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1", 0)); print(s.getsockname()[1])')
iperf="/mnt/lib/$loader --library-path /mnt/lib /mnt/bin/iperf3"
script="mkdir -p /mnt; mount -o ro /dev/vda /mnt; gw=\$(ip route | awk '/^default/ {print \$3}'); \
$iperf -c \$gw -p $port -t $duration -f m | awk '/receiver/ {print \"NETBENCH tx\", \$7}'; \
$iperf -c \$gw -p $port -t $duration -f m -R | awk '/receiver/ {print \"NETBENCH rx\", \$7}'"
append="console=ttyS0 nokaslr mitigations=off tsc=reliable nowatchdog cryptomgr.notests pv.exec=$(printf '%s' "$script" | base64 -w0)"

start_server() { iperf3 -s -B 127.0.0.1 -p "$port" >/dev/null 2>&1 & server_pid=$!; sleep 0.5; }
stop_server() { kill "$server_pid" 2>/dev/null || true; wait "$server_pid" 2>/dev/null || true; server_pid=""; }

# Prints "TX_MBITS RX_MBITS" from the guest's NETBENCH lines, or "failed".
measure() {
  local out tx rx
  start_server
  out="$(timeout 900 "$@" 2>/dev/null | tr -d '\r' | grep -a '^NETBENCH ' || true)"
  stop_server
  tx="$(awk '$2 == "tx" {print $3}' <<<"$out")"; rx="$(awk '$2 == "rx" {print $3}' <<<"$out")"
  [ -n "$tx" ] && [ -n "$rx" ] && echo "$tx $rx" || echo failed
}
run_polyvisor() {
  measure "$here/polyvisor" run --jit "${JIT:-off}" --kernel "$kernel" --initrd "$initramfs" --append "$append" \
    --memory "$mem" --smp "$smp" --disk "$tools,readonly=on" --net user --virtio-ring "${RING:-split}" --timeout 900
}
run_qemu() {
  # passt started as root runs as nobody (passt(1), --runas) and creates its socket after that.
  mkdir -p "$work/passt"; chmod 733 "$work/passt"
  local sock="$work/passt/net.sock"
  rm -f "$sock"
  passt --foreground --one-off --quiet --socket "$sock" --tcp-ports none --udp-ports none >/dev/null 2>&1 & passt_pid=$!
  for _ in $(seq 1 100); do [ -S "$sock" ] && break; sleep 0.05; done
  measure qemu-system-x86_64 -accel tcg -cpu qemu64 -m "$mem" -smp "$smp" -nodefaults -no-reboot \
    -display none -serial stdio -monitor none -kernel "$kernel" -initrd "$initramfs" -append "$append" \
    -drive "file=$tools,if=none,id=d0,format=raw,readonly=on" -device "virtio-blk-pci,drive=d0,packed=$packed" \
    -netdev "stream,id=n0,server=off,addr.type=unix,addr.path=$sock" -device "virtio-net-pci,netdev=n0,packed=$packed"
  kill "$passt_pid" 2>/dev/null || true; wait "$passt_pid" 2>/dev/null || true; passt_pid=""
}


"$here/polyvisor" --version >/dev/null 2>&1 # build once, outside the timed runs
pt=(); pr=(); qt=(); qr=()
for i in $(seq 1 "$runs"); do
  p=$(run_polyvisor); q=$(run_qemu)
  echo "run $i: polyvisor guest->host/host->guest ${p} Mbit/s, qemu ${q} Mbit/s"
  if [ "$p" != failed ]; then read -r a b <<<"$p"; pt+=("$a"); pr+=("$b"); fi
  if [ "$q" != failed ]; then read -r a b <<<"$q"; qt+=("$a"); qr+=("$b"); fi
done
[ ${#pt[@]} -gt 0 ] && [ ${#qt[@]} -gt 0 ] || pv_die "no successful runs (polyvisor ${#pt[@]}, qemu ${#qt[@]})"
mpt=$(printf '%s\n' "${pt[@]}" | pv_median); mpr=$(printf '%s\n' "${pr[@]}" | pv_median)
mqt=$(printf '%s\n' "${qt[@]}" | pv_median); mqr=$(printf '%s\n' "${qr[@]}" | pv_median)
echo "kernel: $(basename "$(dirname "$kernel")"), iperf3 $(iperf3 --version | head -1 | awk '{print $2}'), ${duration} s each way, memory ${mem} MiB, smp ${smp}, ${RING:-split} virtqueues, runs ${runs}"
echo "median guest->host: polyvisor ${mpt} Mbit/s, qemu-tcg ${mqt} Mbit/s"
echo "median host->guest: polyvisor ${mpr} Mbit/s, qemu-tcg ${mqr} Mbit/s"
awk -v a="$mpt" -v b="$mqt" 'BEGIN {printf "guest->host throughput ratio polyvisor/qemu: %.2f\n", a / b}'
awk -v a="$mpr" -v b="$mqr" 'BEGIN {printf "host->guest throughput ratio polyvisor/qemu: %.2f\n", a / b}'

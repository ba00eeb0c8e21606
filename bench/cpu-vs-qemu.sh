#!/usr/bin/env bash
# CPU benchmark: the CPU-bound freestanding guest (src/test/guests/bench.c: integer mixing, memcpy,
# shell sort, CRC-32) under Polyvisor and under QEMU TCG, alternating, RUNS times each.
#   bench/cpu-vs-qemu.sh [ROUNDS] [RUNS]      (defaults: 300 rounds of the workload, 3 runs each)
#   env: JIT=off|on (Polyvisor's --jit, default off)
# Last two lines:
#   guest MIPS polyvisor: N        instructions retired / wall seconds of the guest run (Polyvisor's counter, median run)
#   ratio polyvisor/qemu wall: R   median process wall time, Polyvisor over QEMU (both include start-up)
set -euo pipefail
here="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
. "$here/scripts/env.sh"
pv_setup
command -v make >/dev/null 2>&1 || pv_apt_install make
command -v qemu-system-x86_64 >/dev/null 2>&1 || pv_apt_install qemu-system-x86
rounds="${1:-300}"
runs="${2:-3}"
out="$here/target/guests"
make -s -C "$here/src/test/guests" OUT="$out" "$out/bench.elf" >&2
gcc -O2 -o "$out/bench-host" "$here/src/test/guests/bench_host.c"
expected="$("$out/bench-host" "$rounds")"
kernel="$out/bench.elf"
polyvisor="${POLYVISOR:-$here/polyvisor}"   # override to benchmark another build
"$polyvisor" --version >/dev/null   # build once, outside the timed runs

now() { date +%s.%N; }
pv_walls=(); qemu_walls=(); pv_mips=()
for i in $(seq 1 "$runs"); do
  t0=$(now)
  set +e
  "$polyvisor" run --boot multiboot --kernel "$kernel" --append "rounds=$rounds" --memory 128 --stats --jit "${JIT:-off}" \
      > "$out/pv.out" 2> "$out/pv.err"
  st=$?
  set -e
  t1=$(now)
  if [ "$st" -ne 1 ] || ! grep -q "^$expected" <(tr -d '\r' < "$out/pv.out"); then
    echo "polyvisor run failed (status $st):" >&2; tail -n 3 "$out/pv.out" "$out/pv.err" >&2; exit 1
  fi
  mips=$(sed -n 's/.*guest MIPS \([0-9.]*\).*/\1/p' "$out/pv.err")
  pv_mips+=("$mips")
  pv_walls+=("$(awk -v a="$t0" -v b="$t1" 'BEGIN { printf "%.3f", b - a }')")

  t0=$(now)
  set +e
  timeout 600 qemu-system-x86_64 -accel tcg -m 128 -nographic -no-reboot -kernel "$kernel" -append "rounds=$rounds" \
      -device isa-debug-exit,iobase=0xf4,iosize=0x04 < /dev/null > "$out/qemu.out" 2>&1
  st=$?
  set -e
  t1=$(now)
  if [ "$st" -ne 1 ] || ! grep -q "^$expected" <(tr -d '\r' < "$out/qemu.out"); then
    echo "qemu run failed (status $st):" >&2; tail -n 3 "$out/qemu.out" >&2; exit 1
  fi
  qemu_walls+=("$(awk -v a="$t0" -v b="$t1" 'BEGIN { printf "%.3f", b - a }')")
  echo "run $i: polyvisor ${pv_walls[-1]} s (guest MIPS $mips), qemu ${qemu_walls[-1]} s" >&2
done
median() { printf '%s\n' "$@" | sort -n | awk '{ a[NR] = $1 } END { print (NR % 2) ? a[(NR + 1) / 2] : (a[NR / 2] + a[NR / 2 + 1]) / 2 }'; }
pv_med=$(median "${pv_walls[@]}")
qemu_med=$(median "${qemu_walls[@]}")
echo "workload: $rounds rounds, $runs runs each, $expected"
echo "median wall: polyvisor $pv_med s, qemu $qemu_med s"
echo "guest MIPS polyvisor: $(median "${pv_mips[@]}")"
echo "ratio polyvisor/qemu wall: $(awk -v a="$pv_med" -v b="$qemu_med" 'BEGIN { printf "%.2f", a / b }')"

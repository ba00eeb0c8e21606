#!/usr/bin/env bash
# Runs a hand-built kvm-unit-tests tree under Polyvisor, entry by entry, with the upstream harness's rules.
#   bench/kvm-unit-tests.sh DIR [ENTRY...]
# DIR is a kvm-unit-tests checkout configured and built for x86_64 by hand, following its own README
# (./configure --arch=x86_64 && make); this script never builds, fetches or changes it. With ENTRY names,
# only those entries of DIR/x86/unittests.cfg run; otherwise every one, in file order, as
# `./run_tests.sh -a` would (entries in the nodefault group included).
#
# Per entry (scripts/runtime.bash run(), scripts/arch-run.bash run_test(), x86/run upstream):
#   - arch other than x86_64: SKIP ("i386 only"). accel = kvm entries run: Polyvisor stands in for KVM (it
#     presents KVM's interfaces, and these entries test what KVM does beyond the CPU: its PMU, the VMware
#     backdoor); their check = lines decide, answered for Polyvisor. Any other accel: SKIP.
#   - check = PATH=VALUE lines ask about the host's KVM module; they are answered for the VMM that runs the
#     test instead, by translate_check below (unknown ones SKIP).
#   - Every machine gets --cpu ...,force-emulation-prefix=on, as on a KVM host with force_emulation_prefix=1
#     (KUT_FEP=off: as on one without), and --jit on (KUT_JIT=off: the interpreter alone).
#   - qemu_params are translated to Polyvisor flags (translate_qemu_params); an option Polyvisor has no
#     equivalent for is SKIP with the option as the reason. The machine is booted as QEMU's -kernel does:
#     multiboot, with the test devices x86/run always adds, the entry's smp (--smp), test_args as the command line
#     after the file name (argv[0], which the multiboot loader puts first),
#     an environment module like the harness's default one (its KEY=VALUE lines; the CPU count and RAM
#     size come from fw_cfg, as under QEMU), under `timeout` with the entry's timeout (default 90s).
#   - Like the harness's premature_failure(), Polyvisor is first started with a kernel that does not
#     exist: if it refuses the command line for another reason (a --cpu feature or --device it does
#     not offer), the entry is SKIP with Polyvisor's one-line message.
#   - Verdict from the exit status only: 1 = the guest exited 0 -> PASS, unless stderr has a line not
#     matching /warning/i (then FAIL); 77 -> SKIP; 124 -> FAIL (timeout); > 128 -> FAIL (signal);
#     anything else (3: test failures, 127: abort, 0/4/6/8: Polyvisor ended the run) -> FAIL.
#     The SUMMARY line among the last 5 lines of output is echoed, as the harness does.
# One line per entry, then "N passed, M failed, K skipped". Console logs go to $KUT_LOGS
# (default target/kvm-unit-tests-logs in this worktree).
set -uo pipefail
here="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
[ $# -ge 1 ] || { echo "usage: $0 KVM_UNIT_TESTS_DIR [ENTRY...]" >&2; exit 2; }
dir="$(cd "$1" && pwd)" || exit 2
shift
cfg="$dir/x86/unittests.cfg"
[ -f "$cfg" ] || { echo "$0: $cfg not found (a kvm-unit-tests tree configured for x86_64?)" >&2; exit 2; }
only=" $* "
polyvisor="${POLYVISOR:-$here/polyvisor}"
logs="${KUT_LOGS:-$here/target/kvm-unit-tests-logs}"
mkdir -p "$logs"
"$polyvisor" --version >/dev/null || { echo "$0: $polyvisor does not run" >&2; exit 2; }

# The harness's default environment module (arch-run.bash env_params): the host kernel version. x86 tests
# read only NR_CPUS, MEMSIZE, MEMLIMIT, TEST_DEVICE and BOOTLOADER from it, none of which the harness sets.
envfile="$logs/environ"
{
  echo "TARGET=qemu"
  kv="$(uname -r)"
  echo "KERNEL_VERSION_STRING=$kv"
  IFS=. read -r a b rest <<<"$kv"
  echo "KERNEL_VERSION=$a"
  echo "KERNEL_PATCHLEVEL=$b"
  sub="${rest%%[!0-9]*}"; [ -n "$sub" ] && echo "KERNEL_SUBLEVEL=$sub"
} > "$envfile"

skip_reason=""
pv_args=()
# The host this script stands for is a KVM host loaded with kvm.force_emulation_prefix=1, the setting without
# which access_fep and the FEP cases of emulator, msr, la57 and xsave skip: every machine accepts KVM's
# forced-emulation prefix (Polyvisor's --cpu property force-emulation-prefix). KUT_FEP=off runs as a host
# without it.
fep="force-emulation-prefix=${KUT_FEP:-on}"
# The CPU tier: the JIT (--jit on) by default, as QEMU runs these under TCG's translator; the CPU-bound entries
# (kvmclock_test's 7.6 billion instructions in 90 s, sieve) need it. KUT_JIT=off runs the interpreter alone.
jit="${KUT_JIT:-on}"

# check = PATH=VALUE: the host-module condition, answered for Polyvisor (which does not use the host's KVM).
translate_check() {
  local c path value
  for c in $1; do
    path="${c%%=*}"; value="${c#*=}"
    case "$path=$value" in
      /sys/module/kvm/parameters/enable_vmware_backdoor=Y)
        # KVM opens the VMware backdoor port and pseudo-PMCs to user mode with this parameter; Polyvisor's
        # VMware personality does so always (-machine vmport=on below puts it in the stack).
        ;;
      /proc/sys/kernel/nmi_watchdog=0|/sys/module/kvm/parameters/ignore_msrs=N)
        # the host's NMI watchdog does not share a PMU with Polyvisor; Polyvisor never ignores an unknown MSR
        ;;
      /sys/module/kvm/parameters/enable_pmu=Y)
        skip_reason="enable_pmu: Polyvisor's performance counters hold what is written but count nothing"; return 1 ;;
      /sys/devices/system/clocksource/clocksource0/current_clocksource=tsc)
        # KVM offers a stable TSC (and the Hyper-V reference TSC page) only on a TSC-clocked host;
        # Polyvisor's TSC always derives from its own virtual clock.
        ;;
      *) skip_reason="$path not equal to $value (a KVM host setting Polyvisor has no equivalent for)"; return 1 ;;
    esac
  done
}

# qemu_params -> Polyvisor flags (pv_args), or skip_reason.
translate_qemu_params() {
  local -a w; read -r -a w <<<"$1"
  local i=0 personality=kvm cpu_seen=0 vmport=0
  while [ $i -lt ${#w[@]} ]; do
    local o="${w[$i]}" v="${w[$((i + 1))]:-}"
    case "$o" in
      -cpu)
        local -a parts out; IFS=, read -r -a parts <<<"$v"; out=()
        local model="${parts[0]}" p
        # -cpu host: the CPU the accelerator can offer, i.e. Polyvisor's max model (QEMU: max = host under KVM).
        [ "$model" = host ] && model=max
        out+=("$model")
        for p in "${parts[@]:1}"; do
          case "$p" in
            hv_passthrough) personality=hyperv+kvm ;;  # every Hyper-V enlightenment, with KVM's leaves at 0x40000100
            migratable=no|host-phys-bits|host-phys-bits=on) ;;  # the software MMU checks against the model's own MAXPHYADDR
            *) out+=("$p") ;;
          esac
        done
        out+=("$fep")
        pv_args+=(--cpu "$(IFS=,; echo "${out[*]}")"); cpu_seen=1; i=$((i + 2)) ;;
      -m) pv_args+=(--memory "$v"); i=$((i + 2)) ;;
      -device) pv_args+=(--device "$v"); i=$((i + 2)) ;;
      -machine)
        case "$v" in
          pit=off) ;;  # the guest never programs the PIT, so an absent and an idle PIT look the same
          vmport=on) vmport=1 ;;  # QEMU's VMware backdoor device: Polyvisor's VMware personality, stacked after KVM's
          *) skip_reason="-machine $v is not offered"; return 1 ;;
        esac
        i=$((i + 2)) ;;
      -enable-kvm) skip_reason="needs KVM (-enable-kvm)"; return 1 ;;
      -M) skip_reason="-M $v: Polyvisor has only QEMU's pc machine"; return 1 ;;
      *) skip_reason="$o $v is not offered"; return 1 ;;
    esac
  done
  [ $cpu_seen = 1 ] || pv_args+=(--cpu "qemu64,$fep")
  [ $vmport = 1 ] && personality="$personality+vmware"
  pv_args+=(--personality "$personality")
}

pass=0; fail=0; skip=0
verdict() {  # STATUS NAME TEXT
  echo "$1 $2${3:+ $3}"
  case "$1" in PASS) pass=$((pass + 1)) ;; FAIL) fail=$((fail + 1)) ;; SKIP) skip=$((skip + 1)) ;; esac
}

run_entry() {
  local name="$1" file="$2" smp="${3:-1}" test_args="$4" qemu_params="$5" arch="$6" check="$7" accel="$8" timeout="${9:-90s}"
  [ "$only" = "  " ] || [[ "$only" == *" $name "* ]] || return 0
  if [ -n "$arch" ] && [ "$arch" != x86_64 ]; then verdict SKIP "$name" "($arch only)"; return; fi
  if [ -n "$accel" ] && [ "$accel" != kvm ]; then verdict SKIP "$name" "($accel only, but ACCEL=polyvisor)"; return; fi
  skip_reason=""; pv_args=()
  if [ -n "$check" ] && ! translate_check "$check"; then verdict SKIP "$name" "($skip_reason)"; return; fi
  if ! translate_qemu_params "$qemu_params"; then verdict SKIP "$name" "($skip_reason)"; return; fi
  local kernel="$dir/x86/$file"
  [ -f "$kernel" ] || { verdict SKIP "$name" "(Test file '$kernel' not found)"; return; }
  local -a args; eval "args=($test_args)"
  # Polyvisor's multiboot loader starts the command line with the kernel's file name (argv[0]), as QEMU's
  # -kernel does; test_args follow it.
  local append="${args[*]}"
  # x86/run always adds QEMU's test devices: -device pc-testdev -device isa-debug-exit,iobase=0xf4,iosize=0x4.
  local -a cmd=("$polyvisor" run --boot multiboot --smp "$smp" --initrd "$envfile"
                --device pc-testdev --device isa-debug-exit,iobase=0xf4,iosize=0x4 --jit "$jit" "${pv_args[@]}")
  # premature_failure(): does Polyvisor accept this machine at all?
  local pre
  pre="$("${cmd[@]}" --kernel "$logs/_NO_FILE_4Uhere_" --append "$append" 2>&1 >/dev/null </dev/null)"
  if ! grep -q "_NO_FILE_4Uhere_" <<<"$pre"; then verdict SKIP "$name" "($(tail -1 <<<"$pre"))"; return; fi
  local log="$logs/$name.log" err="$logs/$name.err"
  # test_args are evaluated again for the real run, as runtime.bash evals the command line only when it starts
  # the VMM: kvmclock_test's `date +%s` must not count the premature_failure() run.
  eval "args=($test_args)"; append="${args[*]}"
  timeout -k 1s --foreground "$timeout" "${cmd[@]}" --kernel "$kernel" --append "$append" > "$log" 2> "$err" < /dev/null
  local st=$?
  local summary; summary="$(tail -5 "$log" | tr -d '\r' | grep '^SUMMARY: ' | sed 's/^SUMMARY: /(/;s/$/)/')"
  if [ $st -eq 1 ] && grep -qvi warning "$err"; then
    verdict FAIL "$name" "(stderr: $(grep -vi warning "$err" | head -1))"
  elif [ $st -eq 1 ]; then verdict PASS "$name" "$summary"
  elif [ $st -eq 77 ]; then verdict SKIP "$name" "$summary"
  elif [ $st -eq 124 ]; then verdict FAIL "$name" "(timeout; duration=$timeout)"
  elif [ $st -gt 128 ]; then verdict FAIL "$name" "(terminated on SIG$(kill -l $((st - 128))))"
  else
    local why="$summary"
    [ -z "$why" ] && why="(exit status $st$( [ -s "$err" ] && echo ": $(tail -1 "$err")"))"
    verdict FAIL "$name" "$why"
  fi
}

# unittests.cfg: [name] sections of key = value lines.
name=""; declare -A e=()
flush() {
  [ -n "$name" ] && run_entry "$name" "${e[file]:-}" "${e[smp]:-}" "${e[test_args]:-}" "${e[qemu_params]:-}" \
      "${e[arch]:-}" "${e[check]:-}" "${e[accel]:-}" "${e[timeout]:-}"
  name=""; e=()
}
while IFS= read -r line || [ -n "$line" ]; do
  case "$line" in
    \#*|"") continue ;;
    \[*\]) flush; name="${line#[}"; name="${name%]}" ;;
    *=*) k="${line%%=*}"; k="${k// /}"; v="${line#*=}"; v="${v# }"; e[$k]="$v" ;;
  esac
done < "$cfg"
flush
echo "$pass passed, $fail failed, $skip skipped"

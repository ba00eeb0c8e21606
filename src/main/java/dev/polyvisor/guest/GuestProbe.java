package dev.polyvisor.guest;

/**
 * /bin/pv-probe: run inside the guest (e.g. {@code pv.exec=} of "pv-probe"), it reports what the
 * kernel bound to as one JSON object on the lines between {@value #BEGIN_MARKER} and
 * {@value #END_MARKER}; {@link ProbeReport#parse} reads it back. Written for busybox ash and awk only.
 *
 * <p>The facts follow what Linux 6.1 exposes: "Hypervisor detected" (arch/x86/kernel/cpu/hypervisor.c),
 * "Booting paravirtualized kernel on" (kernel/paravirt.c), the clocksource and clockevents sysfs files
 * (kernel/time/clocksource.c, clockevents.c), /sys/hypervisor (drivers/xen/sys-hypervisor.c), the steal
 * column of /proc/stat (fs/proc/stat.c: the eighth value of the "cpu" line, in USER_HZ ticks), and the
 * dmesg lines each ABI prints when it binds a PV feature (arch/x86/kernel/kvm.c, kvmclock.c,
 * cpu/mshyperv.c, xen/enlighten_hvm.c, cpu/vmware.c).
 *
 * <p>Strings are escaped per RFC 8259 section 7: backslash, double quote and every control character
 * below U+0020 (as {@code \}{@code uXXXX}); bytes from U+0080 up pass through unchanged.
 */
public final class GuestProbe {
    public static final String PATH = "/bin/pv-probe";
    public static final String BEGIN_MARKER = "=== polyvisor probe begin ===";
    public static final String END_MARKER = "=== polyvisor probe end ===";
    /** Centiseconds of /proc/uptime the steal measurement keeps a CPU busy: one second. */
    static final int BUSY_CENTISECONDS = 100;
    /** dmesg lines that report a PV feature bound (or a clocksource chosen); extended regular expression, case-insensitive. */
    static final String PV_FEATURE_PATTERN = "Hypervisor detected|Booting paravirtualized|kvm-clock|kvm-guest|PV spinlocks"
            + "|PV IPIs|pv remote TLB flush|PV sched yield|PV EOI|Hyper-V|Xen HVM callback|xen:|clocksource|vmware|steal";

    private GuestProbe() {}

    public static String script() {
        return """
                #!/bin/sh
                # Polyvisor guest probe (dev.polyvisor.guest.GuestProbe): one JSON object between marker lines.
                # The awk escaper: RFC 8259 string escapes for backslash, quote and C0 controls.
                ESC='function esc(s,  o, i, c) { o = ""; for (i = 1; i <= length(s); i++) { c = substr(s, i, 1);
                  if (c == "\\\\") o = o "\\\\\\\\"; else if (c == "\\"") o = o "\\\\\\"";
                  else if (c in ctl) o = o sprintf("\\\\u%%04x", ctl[c]); else o = o c } return o }
                  BEGIN { for (i = 1; i < 32; i++) ctl[sprintf("%%c", i)] = i }'
                # jstr VALUE: VALUE as a JSON string. jnull VALUE: the same, or null when VALUE is empty.
                jstr() { printf '%%s' "$1" | awk "$ESC"' { s = s (NR > 1 ? "\\n" : "") $0 } END { printf "\\"%%s\\"", esc(s) }'; }
                jnull() { if [ -n "$1" ]; then jstr "$1"; else printf null; fi; }
                # jlines: the non-empty lines of stdin as a JSON array of strings.
                jlines() { awk "$ESC"' $0 != "" { a = a (n++ ? "," : "") "\\"" esc($0) "\\"" } END { printf "[%%s]", a }'; }
                # steal: the steal ticks of all CPUs together, from the aggregate "cpu" line of /proc/stat.
                steal() { read -r _ _ _ _ _ _ _ _ st _ < /proc/stat; echo "${st:-0}"; }
                # now: /proc/uptime in centiseconds, without forking (the 1xx - 100 keeps "08" from reading as octal).
                now() { read -r up _ < /proc/uptime; echo $(( ${up%%.*} * 100 + 1${up#*.} - 100 )); }
                cs=/sys/devices/system/clocksource/clocksource0
                dm=$(dmesg)
                steal0=$(steal)
                t0=$(now); t=$t0; n=0
                # Busy one second in the shell itself: a runnable vCPU that another vCPU keeps off the host accrues steal.
                while [ $((t - t0)) -lt %d ] && [ $n -lt 1000000 ]; do
                  read -r up _ < /proc/uptime
                  t=$(( ${up%%.*} * 100 + 1${up#*.} - 100 )); n=$((n + 1))
                done
                steal1=$(steal)
                hv=
                for f in $(find /sys/hypervisor -type f 2>/dev/null | sort); do
                  v=$(cat "$f" 2>/dev/null) || continue
                  hv="$hv,$(jstr "${f#/sys/hypervisor/}"):$(jstr "$v")"
                done
                if [ -f /sys/hypervisor/version/major ]; then
                  ver="$(cat /sys/hypervisor/version/major 2>/dev/null).$(cat /sys/hypervisor/version/minor 2>/dev/null)$(cat /sys/hypervisor/version/extra 2>/dev/null)"
                  hv="$hv,\\"version\\":$(jstr "$ver")"
                fi
                vd=
                for d in /sys/bus/virtio/devices/*; do
                  [ -e "$d/device" ] || continue
                  drv=$(readlink "$d/driver" 2>/dev/null)
                  vd="$vd,{\\"name\\":$(jstr "${d##*/}"),\\"device\\":$(jstr "$(cat "$d/device")"),\\"driver\\":$(jnull "${drv##*/}"),\\"features\\":$(jnull "$(cat "$d/features" 2>/dev/null)")}"
                done
                echo "%s"
                printf '{'
                printf '"kernel":%%s' "$(jstr "$(uname -r)")"
                printf ',"hypervisor_detected":%%s' "$(jnull "$(echo "$dm" | sed -n 's/.*Hypervisor detected: //p' | head -n 1)")"
                printf ',"paravirt":%%s' "$(jnull "$(echo "$dm" | sed -n 's/.*Booting paravirtualized kernel on //p' | head -n 1)")"
                printf ',"clocksource":%%s' "$(jnull "$(cat $cs/current_clocksource 2>/dev/null)")"
                printf ',"clocksources":%%s' "$(cat $cs/available_clocksource 2>/dev/null | tr -s ' \\t' '\\n\\n' | jlines)"
                printf ',"clockevent":%%s' "$(jnull "$(cat /sys/devices/system/clockevents/clockevent0/current_device 2>/dev/null)")"
                printf ',"cpus":%%d' "$(grep -c '^processor' /proc/cpuinfo)"
                printf ',"cpuid_hypervisor_bit":%%s' "$(grep -qw hypervisor /proc/cpuinfo && echo true || echo false)"
                printf ',"steal_ticks":%%d' "$steal1"
                printf ',"steal_ticks_delta":%%d' "$((steal1 - steal0))"
                printf ',"steal_interval_centiseconds":%%d' "$((t - t0))"
                if [ -n "$hv" ]; then printf ',"sys_hypervisor":{%%s}' "${hv#,}"; else printf ',"sys_hypervisor":null'; fi
                printf ',"pv_features":%%s' "$(echo "$dm" | grep -iE '%s' | jlines)"
                printf ',"virtio_devices":[%%s]' "${vd#,}"
                printf '}\\n'
                echo "%s"
                exit 0
                """.formatted(BUSY_CENTISECONDS, BEGIN_MARKER, PV_FEATURE_PATTERN, END_MARKER);
    }
}

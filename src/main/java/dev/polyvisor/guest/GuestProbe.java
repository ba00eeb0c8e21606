package dev.polyvisor.guest;

/**
 * /bin/pv-probe: run inside the guest (e.g. {@code pv.exec=} of "pv-probe"), it reports what the
 * kernel bound to, one {@code pv-probe: key=value} line each, then the relevant dmesg lines as
 * {@code pv-probe-dmesg: ...}. The keys follow what Linux 6.1 exposes: "Hypervisor detected"
 * (arch/x86/kernel/cpu/hypervisor.c), "Booting paravirtualized kernel on" (kernel/paravirt.c),
 * the clocksource sysfs files, /sys/hypervisor/type (Xen), and the steal column of /proc/stat.
 */
public final class GuestProbe {
    public static final String PATH = "/bin/pv-probe";
    public static final String LINE_PREFIX = "pv-probe: ";

    private GuestProbe() {}

    public static String script() {
        return """
                #!/bin/sh
                # Polyvisor guest probe (dev.polyvisor.guest.GuestProbe).
                p() { echo "pv-probe: $1=$2"; }
                cs=/sys/devices/system/clocksource/clocksource0
                p kernel "$(uname -r)"
                p hypervisor_detected "$(dmesg | sed -n 's/.*Hypervisor detected: //p' | head -n 1)"
                p paravirt "$(dmesg | sed -n 's/.*Booting paravirtualized kernel on //p' | head -n 1)"
                p clocksource "$(cat $cs/current_clocksource 2>/dev/null)"
                p clocksources "$(cat $cs/available_clocksource 2>/dev/null)"
                p sys_hypervisor_type "$(cat /sys/hypervisor/type 2>/dev/null)"
                p cpus "$(grep -c '^processor' /proc/cpuinfo)"
                p cpuid_hypervisor_bit "$(grep -qw hypervisor /proc/cpuinfo && echo 1 || echo 0)"
                p steal_ticks "$(awk '/^cpu /{print $9}' /proc/stat)"
                p virtio_devices "$(ls /sys/bus/virtio/devices 2>/dev/null | wc -l)"
                dmesg | grep -iE 'hypervisor|paravirt|kvm|hyper-v|hyperv|xen|vmware|vmw|clocksource|tsc:' | sed 's/^/pv-probe-dmesg: /'
                exit 0
                """;
    }
}

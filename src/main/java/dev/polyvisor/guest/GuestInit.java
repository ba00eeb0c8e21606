package dev.polyvisor.guest;

import java.nio.charset.StandardCharsets;
import java.util.Base64;

/**
 * The guest's /init and the kernel command-line convention it obeys.
 *
 * <p>The kernel runs /init from the initramfs with /dev/console already open as stdin/stdout/stderr
 * (init/main.c, console_on_rootfs: the initramfs must carry the /dev/console node because Debian's
 * kernel has CONFIG_DEVTMPFS_MOUNT off). /init mounts proc, sysfs and devtmpfs, prints
 * {@value #STARTED_MARKER}, loads the drivers of the virtio PCI functions present (vendor 0x1AF4 in sysfs;
 * the load-order list tags each module with the roots that need it, and a machine without virtio devices
 * loads none: their signature checks and relocation were 186 M of the 701 M guest instructions of a
 * {@code run --exec true}), then either runs the
 * command given as {@code pv.exec=<base64>} on the kernel command line, prints
 * {@code polyvisor: exit status N} and powers off, or starts an interactive shell on the console and
 * powers off when it exits. Parameters with a dot are not passed to init by the kernel (they look
 * like module parameters), so /init reads /proc/cmdline.
 *
 * <p>With {@code pv.stdout=ttyS1} the command's standard output goes to the second serial port in raw
 * mode (no CR before LF, all 8 bits), which the VMM hands to the host's stdout untouched, while its
 * standard error, the kernel log and these marker lines stay on the console. The command's stdin is
 * /dev/null, as for a container started without {@code -i}: nothing feeds the console during --exec.
 *
 * <p>When the machine has a network interface (eth0, a virtio-net device), /init brings up lo and asks
 * for eth0's address with busybox's udhcpc, whose event script {@value #DHCP_SCRIPT} sets the address,
 * the default route and /etc/resolv.conf (busybox networking/udhcp/dhcpc.c passes ip, mask, router and
 * dns in the environment). With {@code pv.console=hvc0} the interactive shell runs on that terminal (a
 * virtio console) instead of /dev/console.
 *
 * <p>busybox's {@code poweroff}, {@code halt} and {@code reboot} ask PID 1 by signal (SIGUSR2, SIGUSR1,
 * SIGTERM: busybox init/halt.c), but a shell script as PID 1 runs its traps only after the foreground
 * shell has exited; running that shell in the background instead would leave SIGINT ignored in it for
 * good (POSIX, asynchronous lists without job control), and the busybox shell runs its own applets
 * before any file on PATH. So the interactive shell reads {@value #SHELL_RC} (through {@code ENV}),
 * which defines the three commands as functions doing what an init would: sync, then power off
 * (poweroff and halt: a VM has nothing to halt for, and the run ends with status 0) or reset the machine
 * (reboot). Signals sent to PID 1 some other way are honoured when the shell exits.
 *
 * <p>With {@code root=DEVICE} on the command line (a Debian root filesystem on a virtio disk,
 * {@link RootfsImages}), /init is the initramfs of a real system instead: after the virtio modules it loads
 * {@value #ROOTFS_ORDER} (ext4 and what systemd needs first), waits up to five seconds for the block
 * device, mounts it ({@code rootfstype=}, default ext4; read-only with {@code ro}, else read-write), moves
 * /dev there, unmounts the rest and hands PID 1 to the disk's init ({@code init=}, default /sbin/init) with
 * busybox {@code switch_root}, which empties the initramfs first (as klibc's run-init and
 * Documentation/filesystems/ramfs-rootfs-initramfs.rst describe). {@code pv.exec=} is then the disk's
 * business ({@link RootfsLayout#EXEC_UNIT}). If the root cannot be mounted, /init says so in one line
 * and carries on as the default guest.
 */
public final class GuestInit {
    public static final String STARTED_MARKER = "polyvisor: init started";
    public static final String EXIT_MARKER_PREFIX = "polyvisor: exit status ";
    /**
     * Changes whenever the script, the probe's ({@link GuestProbe#script}) or the image layout changes, so cached
     * images are rebuilt (10: the probe reports each virtio device's negotiated features).
     */
    public static final int REVISION = 10;
    /** The interactive shell's start-up file: poweroff, halt and reboot as an init would carry them out. */
    public static final String SHELL_RC = "/etc/polyvisor-shrc";
    /** Kernel parameter that sends the command's stdout to the second serial port ({@code pv.stdout=ttyS1}). */
    public static final String STDOUT_ON_COM2 = "pv.stdout=ttyS1";
    /** udhcpc's default event script (CONFIG_UDHCPC_DEFAULT_SCRIPT of Debian's busybox-static). */
    public static final String DHCP_SCRIPT = "/etc/udhcpc/default.script";
    /** Kernel parameter that moves the interactive shell to the virtio console ({@code pv.console=hvc0}). */
    public static final String SHELL_ON_HVC0 = "pv.console=hvc0";
    /** The list of modules /init loads, after the load-order list, only to mount a {@code root=} disk. */
    public static final String ROOTFS_ORDER = "rootfs-order";
    /** Printed when {@code root=} cannot be mounted; /init then goes on as the default guest. */
    public static final String ROOT_FAILED_PREFIX = "polyvisor: cannot mount root ";
    /** Kernel parameter that skips module loading ({@code pv.modules=0}). */
    public static final String NO_MODULES = "pv.modules=0";

    /** Applets linked in the archive itself; /init links the rest with busybox --install. */
    static final String[] APPLETS = {"sh", "mount", "umount", "mkdir", "cat", "echo", "ls", "insmod", "modprobe",
            "base64", "setsid", "cttyhack", "poweroff", "reboot", "halt", "sync", "uname", "dmesg", "stty", "chmod", "rm", "printf"};

    private GuestInit() {}

    /** The kernel parameter that makes /init run {@code command} with sh and power off. */
    public static String execParameter(String command) {
        return "pv.exec=" + Base64.getEncoder().encodeToString(command.getBytes(StandardCharsets.UTF_8));
    }

    /** udhcpc's event script: deconfig, bound, renew (busybox examples/udhcp/simple.script does the same with ifconfig). */
    public static String dhcpScript() {
        return """
                #!/bin/sh
                # Polyvisor guest: udhcpc event script (dev.polyvisor.guest.GuestInit).
                case "$1" in
                  deconfig)
                    ip addr flush dev "$interface"
                    ip link set "$interface" up
                    ;;
                  bound|renew)
                    ip addr flush dev "$interface"
                    ip addr add "$ip/${mask:-24}" dev "$interface"
                    for r in $router; do ip route add default via "$r" dev "$interface"; break; done
                    : > /etc/resolv.conf
                    for d in $dns; do echo "nameserver $d" >> /etc/resolv.conf; done
                    ;;
                esac
                exit 0
                """;
    }

    /** The virtio vendor ID as sysfs prints a PCI function's {@code vendor}. */
    private static String vendorId() { return "0x%04x".formatted(ModuleSet.VIRTIO_PCI_VENDOR); }

    /**
     * The case arms of /init that add to {@code wanted} the modules a virtio PCI function needs, by its sysfs
     * {@code device}: the transport and the function's driver ({@link ModuleSet#VIRTIO_DRIVERS}); a device ID no
     * driver claims gets the transport alone.
     */
    private static String driverCases() {
        String transport = ModuleSet.VIRTIO_DRIVERS.stream().filter(ModuleSet.VirtioDriver::transport)
                .map(ModuleSet.VirtioDriver::module).collect(java.util.stream.Collectors.joining(" "));
        StringBuilder b = new StringBuilder();
        for (ModuleSet.VirtioDriver d : ModuleSet.VIRTIO_DRIVERS) {
            if (d.transport()) continue;
            b.append("      ").append(d.pciDeviceIds().stream().map("0x%04x"::formatted).collect(java.util.stream.Collectors.joining("|")))
                    .append(") wanted=\"$wanted ").append(transport).append(' ').append(d.module()).append(" \" ;;\n");
        }
        return b.append("      *) wanted=\"$wanted ").append(transport).append(" \" ;;").toString();
    }

    /** The roots /init loads only when a device wants them, space-delimited; any other root always loads. */
    private static String gatedRoots() { return " " + String.join(" ", ModuleSet.VIRTIO_ROOTS) + " "; }

    /** The /init script. */
    public static String script() {
        return """
                #!/bin/sh
                # Polyvisor guest init (dev.polyvisor.guest.GuestInit, revision %d).
                export PATH=/bin:/sbin:/usr/bin:/usr/sbin
                mount -t proc proc /proc
                mount -t sysfs sysfs /sys
                mount -t devtmpfs devtmpfs /dev
                mkdir -p /dev/pts /tmp /run
                mount -t devpts devpts /dev/pts 2>/dev/null
                /bin/busybox --install -s /bin 2>/dev/null
                echo "%s"
                release=$(uname -r)
                cmd=
                out=
                con=
                root=
                rootfstype=ext4
                rootmode=rw
                rinit=/sbin/init
                modules=1
                set -f
                for arg in $(cat /proc/cmdline); do
                  case "$arg" in
                    pv.exec=*) cmd="${arg#pv.exec=}" ;;
                    pv.stdout=*) out="${arg#pv.stdout=}" ;;
                    pv.console=*) con="${arg#pv.console=}" ;;
                    %s) modules=0 ;;
                    root=*) root="${arg#root=}" ;;
                    rootfstype=*) rootfstype="${arg#rootfstype=}" ;;
                    ro) rootmode=ro ;;
                    rw) rootmode=rw ;;
                    init=*) rinit="${arg#init=}" ;;
                  esac
                done
                set +f
                if [ "$modules" = 1 ] && [ -f "/lib/modules/$release/load-order" ]; then
                  wanted=" "
                  for d in /sys/bus/pci/devices/*; do
                    [ "$(cat "$d/vendor" 2>/dev/null)" = %s ] || continue
                    case "$(cat "$d/device")" in
                %s
                    esac
                  done
                  while read -r m roots; do
                    for r in $roots; do
                      case "%s" in *" $r "*) case "$wanted" in *" $r "*) ;; *) continue ;; esac ;; esac
                      insmod "/lib/modules/$release/$m" || echo "polyvisor: insmod $m failed"
                      break
                    done
                  done < "/lib/modules/$release/load-order"
                fi
                if [ -n "$root" ]; then
                  if [ "$modules" = 1 ] && [ -f "/lib/modules/$release/%s" ]; then
                    while read -r m; do
                      insmod "/lib/modules/$release/$m" || echo "polyvisor: insmod $m failed"
                    done < "/lib/modules/$release/%s"
                  fi
                  i=0
                  while [ ! -b "$root" ] && [ $i -lt 50 ]; do sleep 0.1; i=$((i + 1)); done
                  mkdir -p /newroot
                  if mount -t "$rootfstype" -o "$rootmode" "$root" /newroot && [ -x "/newroot$rinit" -o -L "/newroot$rinit" ]; then
                    umount /dev/pts 2>/dev/null
                    mount --move /dev /newroot/dev 2>/dev/null || umount /dev
                    umount /sys
                    umount /proc
                    exec switch_root /newroot "$rinit"
                  fi
                  umount /newroot 2>/dev/null
                  echo "%s$root"
                fi
                ip link set lo up 2>/dev/null
                if [ -e /sys/class/net/eth0 ]; then
                  ip link set eth0 up
                  timeout 20 udhcpc -i eth0 -q -n -t 5 -T 1 >/dev/null 2>&1 || echo "polyvisor: no DHCP answer on eth0"
                fi
                if [ -n "$cmd" ]; then
                  if echo "$cmd" | base64 -d > /tmp/pv-exec.sh 2>/dev/null; then
                    if [ -n "$out" ] && stty -F "/dev/$out" raw -echo 2>/dev/null; then
                      sh /tmp/pv-exec.sh < /dev/null > "/dev/$out"
                    else
                      sh /tmp/pv-exec.sh < /dev/null
                    fi
                    status=$?
                  else
                    echo "polyvisor: pv.exec is not valid base64"
                    status=127
                  fi
                  echo "%s$status"
                else
                  action=
                  trap 'action=poweroff' USR1 USR2
                  trap 'action=reboot' TERM
                  mkdir -p /etc
                  cat > %s <<'EOF'
                poweroff() { sync; /bin/busybox poweroff -f; }
                halt() { sync; /bin/busybox poweroff -f; }
                reboot() { sync; /bin/busybox reboot -f; }
                EOF
                  if [ -n "$con" ] && [ -c "/dev/$con" ]; then
                    ENV=%s setsid sh -c "exec sh -i <>/dev/$con >&0 2>&0"
                  else
                    ENV=%s setsid cttyhack sh
                  fi
                  sync
                  if [ "$action" = reboot ]; then reboot -f; fi
                fi
                sync
                poweroff -f
                """.formatted(REVISION, STARTED_MARKER, NO_MODULES, vendorId(), driverCases(), gatedRoots(), ROOTFS_ORDER, ROOTFS_ORDER, ROOT_FAILED_PREFIX, EXIT_MARKER_PREFIX, SHELL_RC, SHELL_RC, SHELL_RC);
    }
}

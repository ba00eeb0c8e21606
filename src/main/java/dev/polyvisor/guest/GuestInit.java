package dev.polyvisor.guest;

import java.nio.charset.StandardCharsets;
import java.util.Base64;

/**
 * The guest's /init and the kernel command-line convention it obeys.
 *
 * <p>The kernel runs /init from the initramfs with /dev/console already open as stdin/stdout/stderr
 * (init/main.c, console_on_rootfs: the initramfs must carry the /dev/console node because Debian's
 * kernel has CONFIG_DEVTMPFS_MOUNT off). /init mounts proc, sysfs and devtmpfs, prints
 * {@value #STARTED_MARKER}, loads the virtio modules in dependency order, then either runs the
 * command given as {@code pv.exec=<base64>} on the kernel command line, prints
 * {@code polyvisor: exit status N} and powers off, or starts an interactive shell on the console and
 * powers off when it exits. Parameters with a dot are not passed to init by the kernel (they look
 * like module parameters), so /init reads /proc/cmdline.
 */
public final class GuestInit {
    public static final String STARTED_MARKER = "polyvisor: init started";
    public static final String EXIT_MARKER_PREFIX = "polyvisor: exit status ";
    /** Changes whenever the script or the image layout changes, so cached images are rebuilt. */
    public static final int REVISION = 3;
    /** Kernel parameter that skips module loading ({@code pv.modules=0}). */
    public static final String NO_MODULES = "pv.modules=0";

    /** Applets linked in the archive itself; /init links the rest with busybox --install. */
    static final String[] APPLETS = {"sh", "mount", "umount", "mkdir", "cat", "echo", "ls", "insmod", "modprobe",
            "base64", "setsid", "cttyhack", "poweroff", "reboot", "sync", "uname", "dmesg"};

    private GuestInit() {}

    /** The kernel parameter that makes /init run {@code command} with sh and power off. */
    public static String execParameter(String command) {
        return "pv.exec=" + Base64.getEncoder().encodeToString(command.getBytes(StandardCharsets.UTF_8));
    }

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
                modules=1
                set -f
                for arg in $(cat /proc/cmdline); do
                  case "$arg" in
                    pv.exec=*) cmd="${arg#pv.exec=}" ;;
                    %s) modules=0 ;;
                  esac
                done
                set +f
                if [ "$modules" = 1 ] && [ -f "/lib/modules/$release/load-order" ]; then
                  while read -r m; do
                    insmod "/lib/modules/$release/$m" || echo "polyvisor: insmod $m failed"
                  done < "/lib/modules/$release/load-order"
                fi
                if [ -n "$cmd" ]; then
                  if echo "$cmd" | base64 -d > /tmp/pv-exec.sh 2>/dev/null; then
                    sh /tmp/pv-exec.sh
                    status=$?
                  else
                    echo "polyvisor: pv.exec is not valid base64"
                    status=127
                  fi
                  echo "%s$status"
                else
                  setsid cttyhack sh
                fi
                sync
                poweroff -f
                """.formatted(REVISION, STARTED_MARKER, NO_MODULES, EXIT_MARKER_PREFIX);
    }
}

package dev.polyvisor.guest;

import java.nio.charset.StandardCharsets;
import java.util.LinkedHashMap;
import java.util.List;
import java.util.Map;

/**
 * What Polyvisor puts into a Debian root filesystem on top of what mmdebstrap installs: the files
 * (paths relative to the root, merged-/usr layout of bookworm) and the commands run in the chroot
 * afterwards. Pure data, so the image's contents are testable without building one and the cache key
 * ({@link RootfsSpec#key()}) can hash them.
 *
 * <ul>
 * <li>{@code /etc/fstab}: the first virtio disk as root (fstab(5)); the guest's initramfs mounts it
 *     read-write before {@code switch_root}, so systemd-remount-fs has nothing to change.</li>
 * <li>A drop-in for every {@code serial-getty@} instance (ttyS0 from {@code console=ttyS0}, hvc0, which
 *     systemd-getty-generator adds whenever the virtio console exists): agetty {@code --autologin root}
 *     (agetty(8)), and no getty at all while a {@code pv.exec=} command runs, so the console then carries
 *     only the command's output and the boot.</li>
 * <li>systemd-networkd asks DHCP on every Ethernet interface (systemd.network(5), {@code Type=ether});
 *     passt answers it. The interface name depends on the PCI slot ({@code enp0sN}), hence no name.</li>
 * <li>{@value #EXEC_UNIT}: runs {@code pv.exec=} after multi-user.target exactly as the initramfs /init
 *     does ({@link GuestInit}): stdout to {@code pv.stdout}'s port in raw mode, the marker
 *     {@link GuestInit#EXIT_MARKER_PREFIX} on the console, then power off.</li>
 * <li>Service start and device timeouts of ten minutes ({@code system.conf.d}), and e2scrub_reap masked (it runs
 *     e2scrub_all at every boot, which looks for LVM snapshots there are none of and took over a minute
 *     of emulated boot).</li>
 * <li>{@link GuestProbe#PATH}, so {@code --probe} runs the same probe as in the initramfs guest.</li>
 * <li>root's {@code authorized_keys} with the project's key, hostname and hosts.</li>
 * </ul>
 */
public final class RootfsLayout {
    /** A file to create: path relative to the root (no leading slash), permission bits, contents. */
    public record Entry(String path, int mode, String content) {
        public byte[] bytes() { return content.getBytes(StandardCharsets.UTF_8); }
    }

    public static final String HOSTNAME = "polyvisor";
    /** The root device: the first virtio-blk disk (virtio-rng takes 00:01.0, disks follow, DESIGN.md). */
    public static final String ROOT_DEVICE = "/dev/vda";
    public static final String EXEC_UNIT = "polyvisor-exec.service";
    static final String EXEC_SCRIPT = "usr/local/sbin/polyvisor-exec";
    static final String NETWORK_FILE = "etc/systemd/network/20-polyvisor-dhcp.network";
    static final String MANAGER_DROPIN = "etc/systemd/system.conf.d/polyvisor-timeouts.conf";
    static final String GETTY_DROPIN = "etc/systemd/system/serial-getty@.service.d/polyvisor-autologin.conf";
    /** The console line that tells a watcher the guest reached multi-user.target (systemd's own status line). */
    public static final String MULTI_USER_REACHED = "Reached target multi-user.target";

    private RootfsLayout() {}

    /** The files, in creation order (directories are created as needed, mode 0755; /root/.ssh 0700). */
    public static List<Entry> files(String sshPublicKey) {
        if (sshPublicKey == null || sshPublicKey.isBlank() || sshPublicKey.contains("\n"))
            throw new IllegalArgumentException("the ssh public key must be one non-empty line");
        return List.of(
                new Entry("etc/fstab", 0644, fstab()),
                new Entry("etc/hostname", 0644, HOSTNAME + "\n"),
                new Entry("etc/hosts", 0644, hosts()),
                new Entry(GETTY_DROPIN, 0644, gettyDropIn()),
                new Entry(NETWORK_FILE, 0644, network()),
                new Entry(MANAGER_DROPIN, 0644, managerDropIn()),
                new Entry("etc/systemd/system/" + EXEC_UNIT, 0644, execUnit()),
                new Entry(EXEC_SCRIPT, 0755, execScript()),
                new Entry(GuestProbe.PATH.substring(1).replaceFirst("^bin/", "usr/bin/"), 0755, GuestProbe.script()),
                new Entry("root/.ssh/authorized_keys", 0600, sshPublicKey.strip() + "\n"));
    }

    /**
     * Commands run with chroot(8) into the tree after the files are in place: root without a password
     * (passwd(1) --delete, so the console and an empty-password login work), the units enabled and
     * masked (systemctl works offline on the tree's symlinks), and depmod(8) for the kernel's modules.
     */
    public static List<List<String>> chrootCommands(String kernelRelease) {
        return List.of(
                List.of("passwd", "--delete", "root"),
                List.of("systemctl", "enable", "systemd-networkd.service", EXEC_UNIT),
                List.of("systemctl", "mask", "e2scrub_reap.service"),
                List.of("depmod", "-a", kernelRelease));
    }

    static String fstab() {
        return "# Polyvisor root filesystem (dev.polyvisor.guest.RootfsLayout)\n"
                + ROOT_DEVICE + "\t/\text4\trw,errors=remount-ro\t0\t1\n";
    }

    static String hosts() {
        return "127.0.0.1\tlocalhost\n127.0.1.1\t" + HOSTNAME + "\n::1\tlocalhost ip6-localhost ip6-loopback\n";
    }

    /** agetty's arguments follow Debian's serial-getty@.service of systemd 252 plus --autologin. */
    static String gettyDropIn() {
        return """
                # Polyvisor: root logs in on the serial and virtio consoles without a password.
                [Unit]
                ConditionKernelCommandLine=!pv.exec
                [Service]
                ExecStart=
                ExecStart=-/sbin/agetty -o '-p -f -- \\\\u' --autologin root --keep-baud 115200,57600,38400,9600 - $TERM
                """;
    }

    /**
     * Longer timeouts: an emulated boot runs tens of times slower than hardware. A service fails when it has
     * not started within DefaultTimeoutStartSec, and a device unit (dev-ttyS0.device, which
     * serial-getty@ttyS0 binds to) when udev's coldplug has not announced it within DefaultDeviceTimeoutSec
     * (both 90 s by default, systemd-system.conf(5), systemd 252); under a loaded host the coldplug alone
     * took longer than that ("Timed out waiting for device dev-ttyS0.device" with only the first raised).
     */
    static String managerDropIn() {
        return """
                # Polyvisor: an emulated machine boots slowly; do not give up on devices and services after 90 s.
                [Manager]
                DefaultTimeoutStartSec=10min
                DefaultDeviceTimeoutSec=10min
                """;
    }

    static String network() {
        return """
                # Polyvisor: DHCP on the virtio-net interface (passt's DHCP server answers under --net user).
                [Match]
                Type=ether

                [Network]
                DHCP=yes
                """;
    }

    static String execUnit() {
        return """
                # Polyvisor: 'polyvisor run --exec CMD' on a Debian root filesystem.
                [Unit]
                Description=Polyvisor pv.exec command
                ConditionKernelCommandLine=pv.exec
                After=multi-user.target

                [Service]
                Type=oneshot
                ExecStart=/%s
                StandardInput=null
                StandardOutput=tty
                StandardError=inherit
                TTYPath=/dev/console

                [Install]
                WantedBy=multi-user.target
                """.formatted(EXEC_SCRIPT);
    }

    /** The same contract as the initramfs /init's command branch ({@link GuestInit#script()}), for dash. */
    static String execScript() {
        return """
                #!/bin/sh
                # Polyvisor: runs pv.exec=<base64> from the kernel command line (dev.polyvisor.guest.RootfsLayout).
                cmd=
                out=
                set -f
                for arg in $(cat /proc/cmdline); do
                  case "$arg" in
                    pv.exec=*) cmd="${arg#pv.exec=}" ;;
                    pv.stdout=*) out="${arg#pv.stdout=}" ;;
                  esac
                done
                set +f
                [ -n "$cmd" ] || exit 0
                cd /root
                if printf '%%s' "$cmd" | base64 -d > /run/pv-exec.sh 2>/dev/null; then
                  if [ -n "$out" ] && stty -F "/dev/$out" raw -echo 2>/dev/null; then
                    sh /run/pv-exec.sh < /dev/null > "/dev/$out"
                  else
                    sh /run/pv-exec.sh < /dev/null
                  fi
                  status=$?
                else
                  echo "polyvisor: pv.exec is not valid base64"
                  status=127
                fi
                sync
                echo "%s$status"
                systemctl --no-block poweroff
                """.formatted(GuestInit.EXIT_MARKER_PREFIX);
    }

    /** Everything above as one string, for the cache key: any change to a file or command changes the image. */
    static String fingerprint(String sshPublicKey, String kernelRelease) {
        StringBuilder b = new StringBuilder();
        for (Entry e : files(sshPublicKey)) b.append(e.path()).append(' ').append(Integer.toOctalString(e.mode())).append('\n').append(e.content()).append('\0');
        for (List<String> c : chrootCommands(kernelRelease)) b.append(String.join(" ", c)).append('\0');
        return b.toString();
    }

    /** Paths and contents by path, for tests and for writing. */
    static Map<String, Entry> byPath(String sshPublicKey) {
        Map<String, Entry> m = new LinkedHashMap<>();
        for (Entry e : files(sshPublicKey)) m.put(e.path(), e);
        return m;
    }
}

package dev.polyvisor.guest;

import static org.junit.jupiter.api.Assertions.*;

import java.nio.charset.StandardCharsets;
import java.nio.file.Files;
import java.nio.file.Path;
import java.util.Base64;
import java.util.List;
import java.util.Map;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.io.TempDir;

/** The files and chroot commands a Debian root filesystem gets on top of mmdebstrap's install. */
class RootfsLayoutTest {
    static final String KEY = "ssh-ed25519 AAAAC3NzaC1lZDI1NTE5AAAAIK0testkey polyvisor-rootfs";
    @TempDir Path dir;

    @Test
    void fstabMountsTheFirstVirtioDiskAsExt4Root() {
        String fstab = RootfsLayout.byPath(KEY).get("etc/fstab").content();
        List<String> lines = fstab.lines().filter(l -> !l.startsWith("#")).toList();
        assertEquals(1, lines.size(), fstab);
        String[] f = lines.getFirst().split("\t");
        assertArrayEquals(new String[] {"/dev/vda", "/", "ext4", "rw,errors=remount-ro", "0", "1"}, f);
    }

    @Test
    void everySerialGettyLogsRootInAndStandsAsideForExec() {
        RootfsLayout.Entry e = RootfsLayout.byPath(KEY).get("etc/systemd/system/serial-getty@.service.d/polyvisor-autologin.conf");
        assertNotNull(e, "the drop-in covers serial-getty@ttyS0 and serial-getty@hvc0 alike");
        String c = e.content();
        // An empty ExecStart= first: a drop-in may only replace a service's command after clearing it (systemd.service(5)).
        int clear = c.indexOf("ExecStart=\n"), set = c.indexOf("ExecStart=-/sbin/agetty");
        assertTrue(clear >= 0 && set > clear, c);
        assertTrue(c.contains("--autologin root"), c);
        assertTrue(c.contains("- $TERM"), c); // the tty comes from TTYPath=/dev/%I of Debian's unit, as there
        assertTrue(c.contains("ConditionKernelCommandLine=!pv.exec"), c);
    }

    @Test
    void networkdAsksDhcpOnEthernet() {
        String n = RootfsLayout.byPath(KEY).get(RootfsLayout.NETWORK_FILE).content();
        assertTrue(n.contains("[Match]\nType=ether\n"), n);
        assertTrue(n.contains("[Network]\nDHCP=yes\n"), n);
        assertTrue(RootfsLayout.chrootCommands("6.1.0-9-cloud-amd64").contains(
                List.of("systemctl", "enable", "systemd-networkd.service", RootfsLayout.EXEC_UNIT)));
    }

    @Test
    void execUnitRunsAfterMultiUserOnlyForPvExec() {
        String u = RootfsLayout.byPath(KEY).get("etc/systemd/system/" + RootfsLayout.EXEC_UNIT).content();
        assertTrue(u.contains("ConditionKernelCommandLine=pv.exec\n"), u);
        assertTrue(u.contains("After=multi-user.target\n"), u);
        assertTrue(u.contains("WantedBy=multi-user.target\n"), u);
        assertTrue(u.contains("ExecStart=/usr/local/sbin/polyvisor-exec\n"), u);
        assertTrue(u.contains("TTYPath=/dev/console\n"), u);
    }

    /** The exec script run by the host's sh with a fake command line: the command's stdout, then the marker. */
    @Test
    void execScriptDecodesTheCommandAndReportsItsStatus() throws Exception {
        RootfsLayout.Entry e = RootfsLayout.byPath(KEY).get("usr/local/sbin/polyvisor-exec");
        assertEquals(0755, e.mode());
        String script = e.content();
        Path f = Files.writeString(dir.resolve("polyvisor-exec"), script);
        Process n = new ProcessBuilder("sh", "-n", f.toString()).redirectErrorStream(true).start();
        assertEquals(0, n.waitFor(), new String(n.getInputStream().readAllBytes(), StandardCharsets.UTF_8));
        // Run it with /proc/cmdline, /run and systemctl replaced by files in the temp dir.
        String cmd = Base64.getEncoder().encodeToString("echo hello-$((6*7)); exit 3".getBytes(StandardCharsets.UTF_8));
        Files.writeString(dir.resolve("cmdline"), "console=ttyS0 quiet pv.exec=" + cmd + " root=/dev/vda\n");
        Files.createDirectories(dir.resolve("run"));
        Files.writeString(dir.resolve("systemctl"), "#!/bin/sh\necho \"systemctl $*\"\n");
        dir.resolve("systemctl").toFile().setExecutable(true);
        String testable = script.replace("/proc/cmdline", dir.resolve("cmdline").toString())
                .replace("/run/", dir.resolve("run") + "/").replace("cd /root", "cd " + dir);
        Path g = Files.writeString(dir.resolve("exec-test"), testable);
        ProcessBuilder pb = new ProcessBuilder("sh", g.toString()).redirectErrorStream(true);
        pb.environment().put("PATH", dir + ":" + System.getenv("PATH"));
        Process p = pb.start();
        String out = new String(p.getInputStream().readAllBytes(), StandardCharsets.UTF_8);
        assertEquals(0, p.waitFor(), out);
        assertEquals("hello-42\n" + GuestInit.EXIT_MARKER_PREFIX + "3\nsystemctl --no-block poweroff\n", out);
    }

    @Test
    void probeAndKeyAndHostnameAreInPlace() {
        Map<String, RootfsLayout.Entry> m = RootfsLayout.byPath(KEY);
        assertEquals(GuestProbe.script(), m.get("usr/bin/pv-probe").content()); // /bin is usr/bin in merged /usr
        assertEquals(0755, m.get("usr/bin/pv-probe").mode());
        assertEquals(KEY + "\n", m.get("root/.ssh/authorized_keys").content());
        assertEquals(0600, m.get("root/.ssh/authorized_keys").mode());
        assertEquals("polyvisor\n", m.get("etc/hostname").content());
        assertTrue(m.get("etc/hosts").content().contains("127.0.1.1\tpolyvisor\n"));
        assertThrows(IllegalArgumentException.class, () -> RootfsLayout.files("two\nlines"));
        assertThrows(IllegalArgumentException.class, () -> RootfsLayout.files(" "));
    }

    @Test
    void rootHasNoPasswordAndModulesAreIndexedForTheKernel() {
        List<List<String>> c = RootfsLayout.chrootCommands("6.1.0-57-cloud-amd64");
        assertTrue(c.contains(List.of("passwd", "--delete", "root")));
        assertEquals(List.of("depmod", "-a", "6.1.0-57-cloud-amd64"), c.getLast());
    }

    @Test
    void fingerprintChangesWithTheKeyAndTheKernel() {
        String a = RootfsLayout.fingerprint(KEY, "6.1.0-57-cloud-amd64");
        assertEquals(a, RootfsLayout.fingerprint(KEY, "6.1.0-57-cloud-amd64"));
        assertNotEquals(a, RootfsLayout.fingerprint(KEY + "x", "6.1.0-57-cloud-amd64"));
        assertNotEquals(a, RootfsLayout.fingerprint(KEY, "6.1.0-58-cloud-amd64"));
    }
}

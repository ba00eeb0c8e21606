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

class GuestInitTest {
    @TempDir Path dir;

    @Test
    void execParameterIsBase64WithoutSpaces() {
        String p = GuestInit.execParameter("cat /proc/cpuinfo | grep -c processor; exit 3");
        assertTrue(p.startsWith("pv.exec="));
        assertFalse(p.contains(" "));
        assertEquals("cat /proc/cpuinfo | grep -c processor; exit 3",
                new String(Base64.getDecoder().decode(p.substring(8)), StandardCharsets.UTF_8));
    }

    @Test
    void initScriptHasTheMarkersAndIsValidShell() throws Exception {
        String s = GuestInit.script();
        assertTrue(s.startsWith("#!/bin/sh\n"));
        assertTrue(s.contains("echo \"polyvisor: init started\""));
        assertTrue(s.contains("echo \"polyvisor: exit status $status\""));
        assertTrue(s.contains("mount -t devtmpfs devtmpfs /dev"));
        assertTrue(s.contains("poweroff -f"));
        assertTrue(s.contains("setsid cttyhack sh"));
        Path f = Files.writeString(dir.resolve("init"), s);
        Process p = new ProcessBuilder("sh", "-n", f.toString()).redirectErrorStream(true).start();
        String out = new String(p.getInputStream().readAllBytes(), StandardCharsets.UTF_8);
        assertEquals(0, p.waitFor(), "sh -n: " + out);
    }

    @Test
    void probeScriptIsValidShell() throws Exception {
        Path f = Files.writeString(dir.resolve("pv-probe"), GuestProbe.script());
        Process p = new ProcessBuilder("sh", "-n", f.toString()).redirectErrorStream(true).start();
        String out = new String(p.getInputStream().readAllBytes(), StandardCharsets.UTF_8);
        assertEquals(0, p.waitFor(), "sh -n: " + out);
        assertTrue(GuestProbe.script().contains("echo \"" + GuestProbe.BEGIN_MARKER + "\""));
        assertTrue(GuestProbe.script().contains("echo \"" + GuestProbe.END_MARKER + "\""));
    }

    @Test
    void initramfsHoldsConsoleBusyboxModulesInOrderAndInit() throws Exception {
        Map<String, KernelModule> mods = new java.util.LinkedHashMap<>();
        for (String[] m : new String[][] {{"kernel/drivers/virtio/virtio_ring.ko", ""}, {"kernel/drivers/virtio/virtio.ko", "virtio_ring"},
                {"kernel/drivers/block/virtio_blk.ko", "virtio,virtio_ring"}, {"kernel/drivers/block/loop.ko", ""}}) {
            KernelModule km = KernelModule.parse(m[0], SyntheticDebs.module(KernelModule.moduleNameOf(m[0]), m[1]));
            mods.put(km.name(), km);
        }
        KernelPackage k = new KernelPackage("6.1.0-9-cloud-amd64", new byte[0], mods);
        byte[] busybox = {0x7F, 'E', 'L', 'F', 2, 1};
        var e = CpioReader.read(GuestInitramfs.build(k, busybox, List.of("virtio_blk")));
        assertEquals(0020600, e.get("dev/console").header().getMode());
        assertEquals(5, e.get("dev/console").header().getRemoteDeviceMaj());
        assertArrayEquals(busybox, e.get("bin/busybox").data());
        assertEquals("busybox", new String(e.get("bin/sh").data(), StandardCharsets.UTF_8));
        assertEquals(0100755, e.get("init").header().getMode());
        assertEquals(GuestInit.script(), new String(e.get("init").data(), StandardCharsets.UTF_8));
        assertEquals(GuestProbe.script(), new String(e.get("bin/pv-probe").data(), StandardCharsets.UTF_8));
        assertEquals(0100755, e.get("bin/pv-probe").header().getMode());
        String base = "lib/modules/6.1.0-9-cloud-amd64/";
        assertTrue(e.containsKey(base + "kernel/drivers/block/virtio_blk.ko"));
        assertFalse(e.containsKey(base + "kernel/drivers/block/loop.ko"));
        assertEquals("kernel/drivers/virtio/virtio_ring.ko virtio_blk\nkernel/drivers/virtio/virtio.ko virtio_blk\n"
                        + "kernel/drivers/block/virtio_blk.ko virtio_blk\n",
                new String(e.get(base + "load-order").data(), StandardCharsets.UTF_8));
        assertTrue(e.get("tmp").header().getMode() == 041777);
        assertEquals("busybox is not an ELF executable",
                assertThrows(GuestImageException.class, () -> GuestInitramfs.build(k, new byte[3], List.of())).getMessage());
    }

    @Test
    void rootfsModulesGetTheirOwnListWithoutRepeatingTheVirtioOnes() throws Exception {
        Map<String, KernelModule> mods = new java.util.LinkedHashMap<>();
        for (String[] m : new String[][] {{"kernel/lib/crc16.ko", ""}, {"kernel/fs/mbcache.ko", ""}, {"kernel/fs/jbd2/jbd2.ko", ""},
                {"kernel/fs/ext4/ext4.ko", "crc16,mbcache,jbd2"}, {"kernel/drivers/virtio/virtio_ring.ko", "crc16"},
                {"kernel/drivers/block/virtio_blk.ko", "virtio_ring"}}) {
            KernelModule km = KernelModule.parse(m[0], SyntheticDebs.module(KernelModule.moduleNameOf(m[0]), m[1]));
            mods.put(km.name(), km);
        }
        KernelPackage k = new KernelPackage("6.1.0-9-cloud-amd64", new byte[0], mods, java.util.Set.of("unix"));
        byte[] busybox = {0x7F, 'E', 'L', 'F', 2, 1};
        // unix is built in and crc32c_generic absent here: both are left out rather than failing the build.
        var e = CpioReader.read(GuestInitramfs.build(k, busybox, List.of("virtio_blk"), List.of("ext4", "crc32c_generic", "unix")));
        String base = "lib/modules/6.1.0-9-cloud-amd64/";
        assertEquals("kernel/lib/crc16.ko virtio_blk\nkernel/drivers/virtio/virtio_ring.ko virtio_blk\nkernel/drivers/block/virtio_blk.ko virtio_blk\n",
                new String(e.get(base + "load-order").data(), StandardCharsets.UTF_8));
        assertEquals("kernel/fs/mbcache.ko\nkernel/fs/jbd2/jbd2.ko\nkernel/fs/ext4/ext4.ko\n",
                new String(e.get(base + GuestInit.ROOTFS_ORDER).data(), StandardCharsets.UTF_8));
        assertTrue(e.containsKey(base + "kernel/fs/ext4/ext4.ko"));
        String dep = new String(e.get(base + "modules.dep").data(), StandardCharsets.UTF_8);
        assertTrue(dep.contains("kernel/fs/ext4/ext4.ko: kernel/lib/crc16.ko kernel/fs/mbcache.ko kernel/fs/jbd2/jbd2.ko\n"), dep);
        // Without rootfs roots there is no list at all (the three-argument build is unchanged).
        assertFalse(CpioReader.read(GuestInitramfs.build(k, busybox, List.of("virtio_blk"))).containsKey(base + GuestInit.ROOTFS_ORDER));
    }

    @Test
    void initSwitchesToARootDiskOnlyWhenTheCommandLineNamesOne() {
        String s = GuestInit.script();
        assertTrue(s.contains("root=*) root=\"${arg#root=}\" ;;"));
        assertTrue(s.contains("done < \"/lib/modules/$release/" + GuestInit.ROOTFS_ORDER + "\""));
        assertTrue(s.contains("mount -t \"$rootfstype\" -o \"$rootmode\" \"$root\" /newroot"));
        assertTrue(s.contains("mount --move /dev /newroot/dev"));
        assertTrue(s.contains("exec switch_root /newroot \"$rinit\""));
        assertTrue(s.contains("echo \"" + GuestInit.ROOT_FAILED_PREFIX + "$root\""));
        // The switch happens before the default guest's networking and command handling.
        assertTrue(s.indexOf("switch_root") < s.indexOf("udhcpc"));
        assertTrue(s.indexOf("switch_root") < s.indexOf("base64 -d"));
    }

    @Test
    void cacheDirectoryFollowsThePropertyThenXdgThenHome() {
        String old = System.getProperty("polyvisor.cache");
        try {
            System.setProperty("polyvisor.cache", dir.toString());
            assertEquals(dir, GuestCache.directory());
            assertEquals(dir.resolve("debs"), GuestCache.subdirectory("debs"));
            assertTrue(Files.isDirectory(dir.resolve("debs")));
            System.clearProperty("polyvisor.cache");
            String xdg = System.getenv("XDG_CACHE_HOME");
            Path expected = xdg != null && !xdg.isBlank() ? Path.of(xdg, "polyvisor") : Path.of(System.getProperty("user.home"), ".cache", "polyvisor");
            assertEquals(expected, GuestCache.directory());
        } finally {
            if (old != null) System.setProperty("polyvisor.cache", old);
            else System.clearProperty("polyvisor.cache");
        }
    }

    @Test
    void cacheKeyNamesEveryInputAndIsAFileName() {
        String k = GuestImages.key("linux-image-6.1.0-56-cloud-amd64", "6.1.192-2", "1:1.35.0-4+deb12u1+b1");
        assertEquals("linux-image-6.1.0-56-cloud-amd64_6.1.192-2+busybox_1_1.35.0-4+deb12u1+b1+init" + GuestInit.REVISION, k);
    }
}

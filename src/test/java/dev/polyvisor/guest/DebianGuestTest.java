package dev.polyvisor.guest;

import static org.junit.jupiter.api.Assertions.*;

import java.nio.charset.StandardCharsets;
import java.nio.file.Files;
import java.util.List;
import org.junit.jupiter.api.Tag;
import org.junit.jupiter.api.Test;

/** The default guest built from Debian's real packages. */
@Tag("debian")
class DebianGuestTest {
    @Test
    void theKernelIsDebiansCloudKernel() throws Exception {
        GuestImage g = DebianFixture.defaultGuest();
        assertTrue(g.kernelPackage().matches("linux-image-6\\.1\\.0-\\d+-cloud-amd64"), g.kernelPackage());
        assertTrue(g.kernelRelease().matches("6\\.1\\.0-\\d+-cloud-amd64"), g.kernelRelease());
        assertTrue(g.kernelPackage().endsWith(g.kernelRelease()));
        byte[] k = Files.readAllBytes(g.kernel());
        assertEquals(0x55, k[0x1FE] & 0xFF);
        assertEquals("HdrS", new String(k, 0x202, 4, StandardCharsets.US_ASCII));
    }

    @Test
    void theInitramfsHasConsoleBusyboxInitAndTheVirtioModulesInDependencyOrder() throws Exception {
        GuestImage g = DebianFixture.defaultGuest();
        var e = CpioReader.read(Files.readAllBytes(g.initramfs()));
        var console = e.get("dev/console").header();
        assertTrue(console.isCharacterDevice());
        assertEquals(0020600, console.getMode());
        assertEquals(5, console.getRemoteDeviceMaj());
        assertEquals(1, console.getRemoteDeviceMin());
        byte[] busybox = e.get("bin/busybox").data();
        assertTrue(busybox.length > 500_000, "busybox-static is a full static binary");
        assertEquals(0x7F, busybox[0]);
        assertEquals(GuestInit.script(), new String(e.get("init").data(), StandardCharsets.UTF_8));
        assertEquals(0100755, e.get("init").header().getMode());

        String base = "lib/modules/" + g.kernelRelease() + "/";
        List<String> lines = List.of(new String(e.get(base + "load-order").data(), StandardCharsets.UTF_8).split("\n"));
        List<String> order = lines.stream().map(l -> l.split(" ")[0]).toList();
        // Each module is tagged with the roots that need it: virtio_ring by every driver, vsock by the vsock transport only.
        assertTrue(lines.contains("kernel/net/vmw_vsock/vsock.ko vmw_vsock_virtio_transport"), lines.toString());
        assertTrue(lines.stream().anyMatch(l -> l.startsWith("kernel/drivers/virtio/virtio_ring.ko virtio_pci virtio_blk virtio_net")), lines.toString());
        for (String ko : new String[] {"kernel/drivers/virtio/virtio_ring.ko", "kernel/drivers/virtio/virtio.ko",
                "kernel/drivers/virtio/virtio_pci_modern_dev.ko", "kernel/drivers/virtio/virtio_pci_legacy_dev.ko",
                "kernel/drivers/virtio/virtio_pci.ko", "kernel/drivers/block/virtio_blk.ko", "kernel/drivers/net/virtio_net.ko",
                "kernel/drivers/char/virtio_console.ko", "kernel/drivers/char/hw_random/virtio-rng.ko",
                "kernel/net/vmw_vsock/vsock.ko", "kernel/net/vmw_vsock/vmw_vsock_virtio_transport.ko"}) {
            assertTrue(order.contains(ko), ko + " in " + order);
            byte[] data = e.get(base + ko).data();
            assertEquals('E', data[1], ko + " is an ELF object");
        }
        assertTrue(order.indexOf("kernel/drivers/virtio/virtio_ring.ko") < order.indexOf("kernel/drivers/virtio/virtio.ko"));
        assertTrue(order.indexOf("kernel/drivers/virtio/virtio.ko") < order.indexOf("kernel/drivers/virtio/virtio_pci.ko"));
        assertTrue(order.indexOf("kernel/net/vmw_vsock/vsock.ko") < order.indexOf("kernel/net/vmw_vsock/vmw_vsock_virtio_transport.ko"));
        String dep = new String(e.get(base + "modules.dep").data(), StandardCharsets.UTF_8);
        assertTrue(dep.contains("kernel/drivers/virtio/virtio_pci.ko: "), dep);
        assertTrue(Files.size(g.initramfs()) < 16 << 20, "initramfs stays small: " + Files.size(g.initramfs()));
    }

    @Test
    void theCachedImageIsReused() throws Exception {
        GuestImage g = DebianFixture.defaultGuest();
        long stamp = Files.getLastModifiedTime(g.initramfs()).toMillis();
        GuestImage again = GuestImages.build(DebPackage.of(DebianPackages.findCached(GuestCache.subdirectory("debs"),
                g.kernelPackage(), g.kernelVersion())), DebPackage.of(DebianPackages.findCached(GuestCache.subdirectory("debs"),
                DebianPackages.BUSYBOX, g.busyboxVersion())));
        assertEquals(g, again);
        assertEquals(stamp, Files.getLastModifiedTime(again.initramfs()).toMillis());
        assertEquals(g, GuestImages.defaultGuest());
    }

    @Test
    void aUserGivenKernelDebIsIdentifiedByItsControlFile() throws Exception {
        GuestImage g = DebianFixture.defaultGuest();
        java.nio.file.Path deb = DebianPackages.findCached(GuestCache.subdirectory("debs"), g.kernelPackage(), g.kernelVersion());
        java.nio.file.Path renamed = Files.createTempDirectory("pv-deb").resolve("my-kernel.deb");
        try {
            Files.createSymbolicLink(renamed, deb);
            assertEquals(g, GuestImages.withKernelDeb(renamed));
        } finally {
            Files.deleteIfExists(renamed);
            Files.deleteIfExists(renamed.getParent());
        }
    }

    /** A fake guest entry of {@code release}, built {@code minutes} after an old epoch. */
    private static java.nio.file.Path fakeGuest(java.nio.file.Path guests, String name, String release, int minutes) throws Exception {
        java.nio.file.Path d = Files.createDirectories(guests.resolve(name));
        Files.write(d.resolve(GuestImages.KERNEL_FILE), new byte[4096]);
        Files.write(d.resolve(GuestImages.INITRAMFS_FILE), new byte[4096]);
        Files.writeString(d.resolve(GuestImages.INFO_FILE), "release=" + release + "\n");
        Files.setLastModifiedTime(d.resolve(GuestImages.INFO_FILE), java.nio.file.attribute.FileTime.fromMillis(1_600_000_000_000L + minutes * 60_000L));
        return d;
    }

    @Test
    void aNewGuestBuildRemovesTheOlderGuestsOfItsKernelSeries() throws Exception {
        GuestImage g = DebianFixture.defaultGuest();
        java.nio.file.Path debs = GuestCache.subdirectory("debs");
        DebPackage kernel = DebPackage.of(DebianPackages.findCached(debs, g.kernelPackage(), g.kernelVersion()));
        DebPackage busybox = DebPackage.of(DebianPackages.findCached(debs, DebianPackages.BUSYBOX, g.busyboxVersion()));
        java.nio.file.Path cache = Files.createTempDirectory("pv-cache");
        String saved = System.getProperty("polyvisor.cache");
        System.setProperty("polyvisor.cache", cache.toString());
        try {
            java.nio.file.Path guests = cache.resolve("guests");
            java.nio.file.Path oldest = fakeGuest(guests, "old-init1", g.kernelRelease(), 1);
            java.nio.file.Path previous = fakeGuest(guests, "old-init2", g.kernelRelease(), 2);
            java.nio.file.Path other = fakeGuest(guests, "other-series", "9.9.1+deb99-cloud-amd64", 0);
            GuestImage built = GuestImages.build(kernel, busybox);
            assertTrue(built.kernel().startsWith(guests), built.kernel().toString());
            assertFalse(Files.exists(oldest), "the oldest guest of the series is removed by the build");
            assertTrue(Files.exists(previous), "the newest superseded one stays");
            assertTrue(Files.exists(other), "another kernel series is not superseded");
        } finally {
            if (saved == null) System.clearProperty("polyvisor.cache");
            else System.setProperty("polyvisor.cache", saved);
            DebianPackages.deleteTree(cache);
        }
    }
}

package dev.polyvisor.guest;

import static org.junit.jupiter.api.Assertions.*;

import java.nio.charset.StandardCharsets;
import java.nio.file.Path;
import java.util.List;
import java.util.Map;
import java.util.Set;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.io.TempDir;

/**
 * The two layouts of Debian's kernel packages (KernelPackage), on synthetic .debs shaped like the real
 * ones: bookworm/trixie's single linux-image package with boot/vmlinuz-RELEASE, and sid's split where
 * linux-image-RELEASE is empty and linux-binary/-modules/-base carry usr/lib/modules/RELEASE/.
 */
class KernelPackageLayoutTest {
    @TempDir Path dir;

    private static final byte[] BZIMAGE = {0x4D, 0x5A, 1, 2, 3};

    @Test
    void bootVmlinuzLayoutInOnePackage() throws Exception {
        String rel = "6.12.118+deb13-cloud-amd64";
        Path deb = SyntheticDebs.deb(dir, "linux-image-" + rel, "6.12.118-1", Map.of(
                "boot/vmlinuz-" + rel, BZIMAGE,
                "boot/System.map-" + rel, new byte[] {9},
                "lib/modules/" + rel + "/modules.builtin", "kernel/drivers/virtio/virtio.ko\n".getBytes(StandardCharsets.US_ASCII),
                "lib/modules/" + rel + "/kernel/drivers/virtio/virtio_ring.ko.xz", SyntheticDebs.xz(SyntheticDebs.module("virtio_ring", "")),
                "lib/modules/" + rel + "/kernel/drivers/block/virtio_blk.ko.xz", SyntheticDebs.xz(SyntheticDebs.module("virtio_blk", "virtio,virtio_ring"))), "xz");
        KernelPackage k = KernelPackage.read(deb);
        assertEquals(rel, k.release());
        assertArrayEquals(BZIMAGE, k.vmlinuz());
        assertEquals(Set.of("virtio_ring", "virtio_blk"), k.modules().keySet());
        assertEquals(Set.of("virtio"), k.builtin());
    }

    /** Returns the four packages of sid's layout, metapackage-resolved image first. */
    private List<Path> splitLayout(String rel) throws Exception {
        String base = "usr/lib/modules/" + rel + "/";
        Path image = SyntheticDebs.deb(dir, "linux-image-" + rel, "7.2.13-1", Map.of(
                "usr/share/lintian/overrides/linux-image-" + rel, new byte[] {1}), "xz");
        Path binary = SyntheticDebs.deb(dir, "linux-binary-" + rel, "7.2.13-1", Map.of(base + "vmlinuz", BZIMAGE), "xz");
        Path modules = SyntheticDebs.deb(dir, "linux-modules-" + rel, "7.2.13-1", Map.of(
                base + "kernel/drivers/virtio/virtio_balloon.ko.xz", SyntheticDebs.xz(SyntheticDebs.module("virtio_balloon", "")),
                base + "kernel/drivers/block/virtio_blk.ko.xz", SyntheticDebs.xz(SyntheticDebs.module("virtio_blk", "")),
                base + "kernel/net/vmw_vsock/vsock.ko.xz", SyntheticDebs.xz(SyntheticDebs.module("vsock", "")),
                base + "kernel/net/vmw_vsock/vmw_vsock_virtio_transport.ko.xz",
                SyntheticDebs.xz(SyntheticDebs.module("vmw_vsock_virtio_transport", "vsock"))), "xz");
        Path linuxBase = SyntheticDebs.deb(dir, "linux-base-" + rel, "7.2.13-1", Map.of(
                base + "modules.builtin", ("kernel/drivers/virtio/virtio.ko\nkernel/drivers/virtio/virtio_ring.ko\n"
                        + "kernel/drivers/virtio/virtio_pci.ko\nkernel/drivers/char/virtio_console.ko\n").getBytes(StandardCharsets.US_ASCII),
                base + "config", new byte[] {1}), "xz");
        return List.of(image, linuxBase, binary, modules);
    }

    @Test
    void splitLayoutMergesBinaryModulesAndBase() throws Exception {
        String rel = "7.2.13+deb14-cloud-amd64";
        KernelPackage k = KernelPackage.read(splitLayout(rel));
        assertEquals(rel, k.release());
        assertArrayEquals(BZIMAGE, k.vmlinuz());
        assertEquals(Set.of("virtio_balloon", "virtio_blk", "vsock", "vmw_vsock_virtio_transport"), k.modules().keySet());
        assertEquals("kernel/drivers/block/virtio_blk.ko.xz", k.modules().get("virtio_blk").path());
        assertEquals(Set.of("virtio", "virtio_ring", "virtio_pci", "virtio_console"), k.builtin());
    }

    @Test
    void theInitramfsSkipsBuiltInModulesAndCarriesTheOthersDecompressed() throws Exception {
        String rel = "7.2.13+deb14-cloud-amd64";
        KernelPackage k = KernelPackage.read(splitLayout(rel));
        byte[] busybox = {0x7F, 'E', 'L', 'F', 2, 1};
        byte[] cpio = GuestInitramfs.build(k, busybox, List.of("virtio_pci", "virtio_blk", "virtio_console", "vmw_vsock_virtio_transport"));
        var e = CpioReader.read(cpio);
        String base = "lib/modules/" + rel + "/";
        assertEquals("kernel/drivers/block/virtio_blk.ko virtio_blk\nkernel/net/vmw_vsock/vsock.ko vmw_vsock_virtio_transport\n"
                        + "kernel/net/vmw_vsock/vmw_vsock_virtio_transport.ko vmw_vsock_virtio_transport\n",
                new String(e.get(base + "load-order").data(), StandardCharsets.UTF_8));
        byte[] ko = e.get(base + "kernel/drivers/block/virtio_blk.ko").data();
        assertArrayEquals(SyntheticDebs.module("virtio_blk", ""), ko, "stored as an ELF object, not .ko.xz");
        assertFalse(e.containsKey(base + "kernel/drivers/block/virtio_blk.ko.xz"));
        assertTrue(new String(e.get(base + "modules.dep").data(), StandardCharsets.UTF_8)
                .contains("kernel/net/vmw_vsock/vmw_vsock_virtio_transport.ko: kernel/net/vmw_vsock/vsock.ko\n"));
        // Without modules.builtin a missing module is still an error.
        KernelPackage noBuiltin = new KernelPackage(k.release(), k.vmlinuz(), k.modules());
        assertEquals("kernel package has no module virtio_pci", assertThrows(GuestImageException.class,
                () -> GuestInitramfs.build(noBuiltin, busybox, List.of("virtio_pci"))).getMessage());
    }

    @Test
    void packagesWithoutOrWithTwoKernelsAreRefused() throws Exception {
        List<Path> split = splitLayout("7.2.13+deb14-cloud-amd64");
        String none = assertThrows(GuestImageException.class, () -> KernelPackage.read(List.of(split.get(0), split.get(3)))).getMessage();
        assertTrue(none.endsWith(": not a kernel package (no boot/vmlinuz-* or usr/lib/modules/*/vmlinuz)"), none);
        Path other = SyntheticDebs.deb(dir, "linux-image-6.1.0-9-cloud-amd64", "6.1.1-1", Map.of("boot/vmlinuz-6.1.0-9-cloud-amd64", BZIMAGE), "xz");
        String two = assertThrows(GuestImageException.class, () -> KernelPackage.read(List.of(split.get(2), other))).getMessage();
        assertTrue(two.endsWith("holds more than one kernel (7.2.13+deb14-cloud-amd64, 6.1.0-9-cloud-amd64)"), two);
    }
}

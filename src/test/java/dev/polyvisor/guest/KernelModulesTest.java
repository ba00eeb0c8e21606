package dev.polyvisor.guest;

import static org.junit.jupiter.api.Assertions.*;

import java.nio.file.Path;
import java.util.LinkedHashMap;
import java.util.List;
import java.util.Map;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.io.TempDir;

class KernelModulesTest {
    @TempDir Path dir;

    private static Map<String, KernelModule> modules(String... pathDeps) throws GuestImageException {
        Map<String, KernelModule> m = new LinkedHashMap<>();
        for (int i = 0; i < pathDeps.length; i += 2) {
            String path = pathDeps[i];
            KernelModule km = KernelModule.parse(path, SyntheticDebs.module(KernelModule.moduleNameOf(path), pathDeps[i + 1]));
            m.put(km.name(), km);
        }
        return m;
    }

    @Test
    void readsNameAndDependsFromModinfo() throws GuestImageException {
        KernelModule m = KernelModule.parse("kernel/drivers/virtio/virtio_pci.ko",
                SyntheticDebs.module("virtio_pci", "virtio_ring,virtio_pci_modern_dev,virtio"));
        assertEquals("virtio_pci", m.name());
        assertEquals(List.of("virtio_ring", "virtio_pci_modern_dev", "virtio"), m.depends());
        assertEquals("virtio_rng", KernelModule.moduleNameOf("kernel/drivers/char/hw_random/virtio-rng.ko"));
        assertEquals(List.of(), KernelModule.parse("x.ko", SyntheticDebs.module("x", "")).depends());
    }

    @Test
    void readsXzCompressedModules() throws GuestImageException {
        byte[] ko = SyntheticDebs.module("virtio_blk", "virtio,virtio_ring");
        KernelModule m = KernelModule.parse("kernel/drivers/block/virtio_blk.ko.xz", SyntheticDebs.xz(ko));
        assertEquals(List.of("virtio", "virtio_ring"), m.depends());
        assertEquals("virtio_blk", m.name());
    }

    @Test
    void rejectsNonElfModules() {
        String m = assertThrows(GuestImageException.class, () -> KernelModule.parse("a.ko", new byte[100])).getMessage();
        assertEquals("a.ko: not an ELF module", m);
        byte[] cut = java.util.Arrays.copyOf(SyntheticDebs.module("a", ""), 80);
        assertEquals("a.ko: truncated or corrupt ELF module", assertThrows(GuestImageException.class, () -> KernelModule.parse("a.ko", cut)).getMessage());
    }

    @Test
    void closureOrdersDependenciesFirst() throws GuestImageException {
        var all = modules("kernel/drivers/virtio/virtio_ring.ko", "", "kernel/drivers/virtio/virtio.ko", "virtio_ring",
                "kernel/drivers/net/virtio_net.ko", "virtio_ring,virtio,net_failover",
                "kernel/drivers/net/net_failover.ko", "failover", "kernel/net/core/failover.ko", "",
                "kernel/drivers/block/virtio_blk.ko", "virtio,virtio_ring", "kernel/drivers/unrelated.ko", "");
        List<String> order = ModuleSet.closure(all, List.of("virtio_net", "virtio_blk")).stream().map(KernelModule::name).toList();
        assertEquals(List.of("virtio_ring", "virtio", "failover", "net_failover", "virtio_net", "virtio_blk"), order);
        String dep = ModuleSet.modulesDep(ModuleSet.closure(all, List.of("virtio_net")));
        assertTrue(dep.contains("kernel/drivers/net/virtio_net.ko: kernel/drivers/virtio/virtio_ring.ko kernel/drivers/virtio/virtio.ko "
                + "kernel/drivers/net/net_failover.ko kernel/net/core/failover.ko\n"), dep);
        assertTrue(dep.contains("kernel/drivers/virtio/virtio_ring.ko:\n"), dep);
    }

    @Test
    void closureReportsMissingModulesAndCycles() throws GuestImageException {
        var all = modules("a.ko", "b", "c.ko", "d", "d.ko", "c");
        assertEquals("module a depends on b, which the kernel package lacks",
                assertThrows(GuestImageException.class, () -> ModuleSet.closure(all, List.of("a"))).getMessage());
        assertEquals("kernel package has no module zz",
                assertThrows(GuestImageException.class, () -> ModuleSet.closure(all, List.of("zz"))).getMessage());
        assertEquals("kernel modules have a dependency cycle through c",
                assertThrows(GuestImageException.class, () -> ModuleSet.closure(all, List.of("c"))).getMessage());
    }

    @Test
    void readsAKernelPackage() throws Exception {
        Path deb = SyntheticDebs.deb(dir, "linux-image-6.1.0-9-cloud-amd64", "6.1.1-1", Map.of(
                "boot/vmlinuz-6.1.0-9-cloud-amd64", new byte[] {1, 2, 3},
                "boot/config-6.1.0-9-cloud-amd64", new byte[] {9},
                "lib/modules/6.1.0-9-cloud-amd64/kernel/drivers/virtio/virtio.ko", SyntheticDebs.module("virtio", "virtio_ring"),
                "lib/modules/6.1.0-9-cloud-amd64/kernel/drivers/virtio/virtio_ring.ko", SyntheticDebs.module("virtio_ring", "")), "xz");
        KernelPackage k = KernelPackage.read(deb);
        assertEquals("6.1.0-9-cloud-amd64", k.release());
        assertArrayEquals(new byte[] {1, 2, 3}, k.vmlinuz());
        assertEquals(java.util.Set.of("virtio", "virtio_ring"), k.modules().keySet());
        assertEquals("kernel/drivers/virtio/virtio.ko", k.modules().get("virtio").path());
        Path notKernel = SyntheticDebs.deb(dir, "busybox-static", "1", Map.of("bin/busybox", new byte[1]), "xz");
        assertEquals(notKernel + ": not a kernel package (no boot/vmlinuz-* or usr/lib/modules/*/vmlinuz)",
                assertThrows(GuestImageException.class, () -> KernelPackage.read(notKernel)).getMessage());
    }
}

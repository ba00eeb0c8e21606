package dev.polyvisor.kernel;

import dev.polyvisor.guest.GuestImage;
import dev.polyvisor.guest.GuestImageException;
import dev.polyvisor.guest.GuestImages;
import dev.polyvisor.guest.KernelSource;
import dev.polyvisor.vmm.boot.linux.BzImage;
import dev.polyvisor.vmm.boot.linux.KernelPayload;
import java.nio.file.Files;
import java.util.List;
import org.junit.jupiter.api.Tag;
import org.junit.jupiter.params.ParameterizedTest;
import org.junit.jupiter.params.provider.ValueSource;
import org.opentest4j.TestAbortedException;

import static org.junit.jupiter.api.Assertions.*;

/**
 * The readers on the kernels after the default one: trixie's 6.12 and sid's current 7.x cloud kernels,
 * whose bzImage payload is zstd and (7.x) whose kallsyms tables are 4-aligned with place-relative
 * offsets and whose per-CPU symbols are image addresses. Fetched through the private apt configuration
 * (cached under ~/.cache/polyvisor); skipped when the packages cannot be obtained.
 */
@Tag("debian")
class DebianNewerKernelImageTest {
    private static GuestImage guest(String suite) {
        try {
            return GuestImages.build(KernelSource.parse(null, suite));
        } catch (GuestImageException e) {
            throw new TestAbortedException(suite + "'s kernel cannot be obtained here: " + e.getMessage());
        }
    }

    @ParameterizedTest
    @ValueSource(strings = {"trixie", "sid"})
    void theZstdKernelsSymbolsAndBtfAreRead(String suite) throws Exception {
        GuestImage g = guest(suite);
        byte[] bz = Files.readAllBytes(g.kernel());
        assertEquals(KernelPayload.Format.ZSTD, KernelPayload.detect(BzImage.parse(bz).payload()), "Debian's kernels are zstd from 6.12 on");
        long t0 = System.nanoTime();
        KernelImage image = KernelImage.of(KernelPayload.vmlinux(bz));
        KernelSymbols s = image.symbols();
        System.err.printf("%s: %s, %d kallsyms symbols, %d BTF types, read in %.1f s%n", suite, g.kernelRelease(), s.size(),
                image.btf().count(), (System.nanoTime() - t0) / 1e9);
        assertTrue(image.banner().startsWith("Linux version " + g.kernelRelease() + " "), image.banner());
        assertTrue(s.size() > 50_000, "kallsyms with CONFIG_KALLSYMS_ALL: " + s.size());
        long stext = s.require("_stext"), etext = s.require("_etext");
        for (String fn : List.of("free_initmem", "native_flush_tlb_multi", "kvm_flush_tlb_multi", "kvm_sched_clock_read", "kvm_send_ipi_mask")) {
            long a = s.require(fn);
            assertTrue(Long.compareUnsigned(a, stext) >= 0 && Long.compareUnsigned(a, etext) < 0, fn + " in .text");
            assertEquals(fn, s.describe(a));
        }
        long x86Init = s.require("x86_init");
        assertTrue(x86Init >= s.require("__init_begin") && x86Init < s.require("__init_end"), "x86_init is __initdata");
        assertTrue(image.btf().sizeOf(image.btf().typeOfVariable("pv_ops")) > 100, "pv_ops has a BTF type");
        assertTrue(image.btf().sizeOf(image.btf().typeOfVariable("x86_init")) > 100, "x86_init has a BTF type");
        // 7.x keeps the PV spinlock ops in pv_ops_lock (DispatchTables reads it as pv_ops.lock).
        if (suite.equals("sid")) {
            assertTrue(s.address(DispatchTables.PV_OPS_LOCK).isPresent(), "7.x has pv_ops_lock");
            assertEquals(image.btf().typeId("struct pv_lock_ops"), image.btf().typeOfVariable(DispatchTables.PV_OPS_LOCK));
        }
        // Per-CPU variables: offsets into the per-CPU area (6.12, absolute-percpu) or image addresses (7.x).
        long tick = s.require("tick_cpu_device");
        assertTrue(tick < 0x100000 || KernelAddresses.inImage(tick), String.format("tick_cpu_device at 0x%x", tick));
    }
}

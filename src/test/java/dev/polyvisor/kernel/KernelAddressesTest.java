package dev.polyvisor.kernel;

import org.junit.jupiter.api.Test;

import static org.junit.jupiter.api.Assertions.*;

class KernelAddressesTest {
    @Test
    void nokaslrMapsTheImageAtItsLinkAddressAndTheDirectMapAtItsDefaultBase() {
        KernelAddresses a = KernelAddresses.nokaslr();
        // Debian 6.1's pv_ops: linked at 0xffffffff82a37040 (in .data, phys 0x2a00000 + ...).
        assertEquals(0x2A3_7040L, a.toPhysical(0xFFFF_FFFF_82A3_7040L).orElseThrow());
        assertEquals(0x100_0000L, a.toPhysical(0xFFFF_FFFF_8100_0000L).orElseThrow());
        assertEquals(0x1000, a.toPhysical(0xFFFF_8880_0000_1000L).orElseThrow());
        assertTrue(a.toPhysical(0xFFFF_C900_0000_0000L).isEmpty(), "vmalloc space is not mapped linearly");
        assertTrue(a.toPhysical(0xFFFF_FFFF_C000_0000L).isEmpty(), "modules are not in the image mapping");
        assertThrows(UnreadableMemoryException.class, () -> a.requirePhysical(0x1000));
        assertEquals(0, a.physicalSlide());
    }

    @Test
    void slidesApplyToSymbolsAndBack() {
        KernelAddresses a = new KernelAddresses(0x260_0000, 0x1C0_0000, 0xFFFF_9A00_0000_0000L);
        assertEquals(0x420_0000, a.physicalSlide());
        assertEquals(0xFFFF_FFFF_8360_0000L, a.runtime(0xFFFF_FFFF_8100_0000L));
        assertEquals(0xFFFF_FFFF_8100_0000L, a.link(0xFFFF_FFFF_8360_0000L));
        assertEquals(0x520_0000L, a.symbolPhysical(0xFFFF_FFFF_8100_0000L), "_text at LOAD_PHYSICAL_ADDR + the physical slide");
        assertEquals(0x1234, a.toPhysical(0xFFFF_9A00_0000_1234L).orElseThrow());
    }

    @Test
    void detectFindsBothSlidesFromTheBannerAndPhysBase() throws Exception {
        SyntheticKernel k = new SyntheticKernel(0x260_0000, 0x1C0_0000, 0xFFFF_9A00_0000_0000L, 3);
        assertEquals(k.addresses, KernelAddresses.detect(k.ram, k.ram.size, k.image));
        SyntheticKernel plain = new SyntheticKernel(0, 0, KernelAddresses.DEFAULT_PAGE_OFFSET, 3);
        assertEquals(KernelAddresses.nokaslr(), KernelAddresses.detect(plain.ram, plain.ram.size, plain.image));
    }

    @Test
    void detectSaysSoWhenTheKernelIsNotInRam() throws Exception {
        SyntheticKernel k = new SyntheticKernel(0, 0, KernelAddresses.DEFAULT_PAGE_OFFSET, 3);
        String m = assertThrows(KernelFormatException.class, () -> KernelAddresses.detect(new SparseRam(1L << 30), 1L << 30, k.image)).getMessage();
        assertTrue(m.contains("banner"), m);
    }
}

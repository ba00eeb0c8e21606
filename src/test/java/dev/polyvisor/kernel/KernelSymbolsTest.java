package dev.polyvisor.kernel;

import java.util.List;
import org.junit.jupiter.api.Test;

import static org.junit.jupiter.api.Assertions.*;

class KernelSymbolsTest {
    static final String MAP = """
            ffffffff81000000 T _text
            ffffffff81000000 T startup_64
            ffffffff81001000 t native_io_delay
            ffffffff81001000 T __alias_of_io_delay
            ffffffff81001100 T native_flush_tlb_multi
            ffffffff81001180 t kvm_flush_tlb_multi
            ffffffff82000000 D pv_ops
            000000000001b6c0 A tick_cpu_device
            """;

    @Test
    void systemMapTextParsesAndLooksUpBothWays() throws Exception {
        KernelSymbols s = KernelSymbols.fromSystemMap(MAP);
        assertEquals(8, s.size());
        assertEquals(0xFFFF_FFFF_8100_1180L, s.require("kvm_flush_tlb_multi"));
        assertEquals('t', s.symbol("kvm_flush_tlb_multi").orElseThrow().type());
        assertEquals("kvm_flush_tlb_multi", s.describe(0xFFFF_FFFF_8100_1180L));
        assertEquals("kvm_flush_tlb_multi+0x10", s.describe(0xFFFF_FFFF_8100_1190L));
        // Two symbols at one address: the global one names it.
        assertEquals("__alias_of_io_delay", s.describe(0xFFFF_FFFF_8100_1000L));
        assertEquals("tick_cpu_device", s.describe(0x1b6c0));
        assertEquals("0x1000", s.describe(0x1000), "below every symbol");
        assertEquals("0xffffffffc0000000", s.describe(0xFFFF_FFFF_C000_0000L), "too far past the last symbol");
        assertTrue(s.address("nope").isEmpty());
        assertThrows(IllegalArgumentException.class, () -> s.require("nope"));
        assertEquals("ffffffff82000000 D pv_ops", s.symbol("pv_ops").orElseThrow().toString());
    }

    @Test
    void procKallsymsModuleColumnIsAccepted() throws Exception {
        KernelSymbols s = KernelSymbols.fromSystemMap("ffffffffc0002000 t virtblk_probe\t[virtio_blk]\nffffffff81000000 T _text\n");
        assertEquals(0xFFFF_FFFF_C000_2000L, s.require("virtblk_probe"));
    }

    @Test
    void debiansPlaceholderSystemMapIsRecognised() {
        // The whole of /boot/System.map-6.1.0-*-cloud-amd64 in Debian's linux-image packages.
        String placeholder = "ffffffffffffffff B The real System.map is in the linux-image-<version>-dbg package\n";
        String m = assertThrows(KernelFormatException.class, () -> KernelSymbols.fromSystemMap(placeholder)).getMessage();
        assertTrue(m.contains("placeholder") && m.contains("kallsyms"), m);
    }

    @Test
    void malformedLinesAreRefusedWithTheirLineNumber() {
        assertTrue(assertThrows(KernelFormatException.class, () -> KernelSymbols.fromSystemMap("ffffffff81000000 T _text\nzzzz T x\n"))
                .getMessage().contains("line 2"));
        assertTrue(assertThrows(KernelFormatException.class, () -> KernelSymbols.fromSystemMap("ffffffff81000000 _text\n"))
                .getMessage().contains("line 1"));
        assertTrue(assertThrows(KernelFormatException.class, () -> KernelSymbols.fromSystemMap("\n\n")).getMessage().contains("no symbols"));
    }

    @Test
    void nearestIsExactAtEveryBoundary() {
        KernelSymbols s = KernelSymbols.of(List.of(new KernelSymbols.Symbol(0x100, 'T', "a"), new KernelSymbols.Symbol(0x200, 'T', "b")));
        assertTrue(s.nearest(0xFF).isEmpty());
        assertEquals(new KernelSymbols.Hit(s.symbol("a").orElseThrow(), 0), s.nearest(0x100).orElseThrow());
        assertEquals(0xFF, s.nearest(0x1FF).orElseThrow().offset());
        assertEquals("b", s.nearest(0x200).orElseThrow().symbol().name());
    }
}

package dev.polyvisor.devices;

import dev.polyvisor.memory.GuestMemory;
import org.junit.jupiter.api.Test;

import java.util.ArrayList;
import java.util.List;

import static org.junit.jupiter.api.Assertions.*;

/** QEMU's pc-testdev (hw/misc/pc-testdev.c): scratch port, byte-lane port, IRQ lines, MMIO buffer. */
class PcTestdevTest {
    @Test
    void theScratchRegisterTakesAnyWidthAtAnyOffset() {
        IoBus io = new IoBus();
        try (GuestMemory mem = new GuestMemory(1 << 20)) {
            PcTestdev d = new PcTestdev(n -> IrqLine.NONE);
            d.register(io, mem);
            io.out(0xE0, 4, 0x11223344);
            assertEquals(0x11223344L, io.in(0xE0, 4));
            io.out(0xE2, 1, 0xAB); // test_ioport_write: lane 2
            assertEquals(0x11AB3344L, io.in(0xE0, 4));
            assertEquals(0x11AB, io.in(0xE2, 2));
            io.out(0xE9, 2, 0xBEEF); // 0xE8: the same register split into byte lanes
            assertEquals(0x11BEEF44L, io.in(0xE0, 4));
            assertEquals(0x11BEEF44L, io.in(0xE8, 4));
            assertEquals(0, io.in(0xE4, 4), "flush page reads 0");
        }
    }

    @Test
    void irqPortsDriveIsaLinesAndIomemIsMemoryBehindMmio() {
        IoBus io = new IoBus();
        List<String> events = new ArrayList<>();
        try (GuestMemory mem = new GuestMemory(1 << 20)) {
            new PcTestdev(n -> level -> events.add(n + "=" + level)).register(io, mem);
            io.out(0x200E, 1, 1);
            io.out(0x200E, 1, 0);
            io.out(0x2000 + 20, 1, 1); // no ISA IRQ 20
            assertEquals(List.of("14=true", "14=false"), events);
            var r = mem.mmioAt(0xFF00_0010L);
            assertNotNull(r);
            r.handler().write(0x10, 8, 0x0102030405060708L);
            assertEquals(0x0506, r.handler().read(0x12, 2));
        }
    }
}

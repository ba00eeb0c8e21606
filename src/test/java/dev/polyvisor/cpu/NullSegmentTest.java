package dev.polyvisor.cpu;

import org.junit.jupiter.api.AfterEach;
import org.junit.jupiter.api.Test;

import static org.junit.jupiter.api.Assertions.*;

/** Memory through a segment register holding a null selector (SDM Vol. 3A, 3.4.2). */
class NullSegmentTest {
    final LongModeFixture f = new LongModeFixture();
    final Cpu c = f.cpu;

    @AfterEach void close() { f.close(); }

    @Test void protectedModeAccessThroughANullSegmentIsGp0() {
        LongModeFixture.enterProtected32(c);
        Segments.cacheNull(c, Cpu.FS, 0);
        c.r[Cpu.RBX] = 0x1000;
        CpuFault fault = f.step("mov eax, fs:[ebx]");
        assertNotNull(fault);
        assertEquals(Exceptions.GP, fault.vector);
        assertEquals(0, fault.errorCode);
        assertNull(f.step("mov eax, ds:[ebx]"), "DS still holds a usable flat segment");
    }

    @Test void sixtyFourBitModeIgnoresTheNullSelectorOfFs() {
        Segments.cacheNull(c, Cpu.FS, 0);
        c.segBase[Cpu.FS] = 0; // FS base comes from the MSR in 64-bit mode; a null selector is usable
        c.r[Cpu.RBX] = LongModeFixture.DATA;
        assertNull(f.step("mov eax, fs:[rbx]"));
    }
}

package dev.polyvisor.cpu;

import dev.polyvisor.memory.GuestMemory;
import org.junit.jupiter.api.Test;

import static dev.polyvisor.cpu.Exceptions.*;
import static dev.polyvisor.cpu.Interrupts.*;
import static org.junit.jupiter.api.Assertions.*;

/** SDM Table 6-5: which second exception during delivery turns into a #DF. */
class DoubleFaultClassTest {
    @Test
    void contributoryAfterContributoryOrPageFaultIsDoubleFault() {
        assertTrue(causesDoubleFault(EXCEPTION, GP, NP));
        assertTrue(causesDoubleFault(EXCEPTION, DE, TS));
        assertTrue(causesDoubleFault(EXCEPTION, PF, PF));
        assertTrue(causesDoubleFault(EXCEPTION, PF, GP));
    }

    @Test
    void benignFirstOrPageFaultAfterContributoryIsDeliveredSerially() {
        assertFalse(causesDoubleFault(EXCEPTION, GP, PF), "contributory then #PF: handle #PF");
        assertFalse(causesDoubleFault(EXCEPTION, UD, GP), "benign first");
        assertFalse(causesDoubleFault(EXCEPTION, BP, PF));
        assertFalse(causesDoubleFault(EXTERNAL, GP, GP), "an interrupt is benign");
        assertFalse(causesDoubleFault(SOFTWARE, GP, NP), "INT 13 from software is benign");
    }

    @Test
    void onlyTheBootstrapProcessorReportsBspInApicBase() {
        try (GuestMemory mem = new GuestMemory(1 << 20)) {
            TestPlatform p = new TestPlatform();
            assertEquals(0xFEE00900L, CpuMsrs.read(new Cpu(0, mem, p), CpuMsrs.APIC_BASE));
            Cpu ap = new Cpu(1, mem, p);
            assertEquals(0xFEE00800L, CpuMsrs.read(ap, CpuMsrs.APIC_BASE));
            CpuMsrs.write(ap, CpuMsrs.APIC_BASE, 0xFEE00900L);
            assertEquals(0xFEE00800L, CpuMsrs.read(ap, CpuMsrs.APIC_BASE), "BSP is read-only");
            assertThrows(CpuFault.class, () -> CpuMsrs.write(ap, CpuMsrs.APIC_BASE, 0xFEE00801L), "reserved bit 0");
        }
    }
}

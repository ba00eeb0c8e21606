package dev.polyvisor.cpu;

import dev.polyvisor.memory.GuestMemory;
import org.junit.jupiter.api.Test;

import static org.junit.jupiter.api.Assertions.*;

/** IA32_APIC_BASE mode transitions (SDM Vol. 3A 11.12.5, Figure 11-27). */
class ApicBaseModeTest {
    private static final long BASE = 0xFEE0_0000L, EN = 0x800, EXTD = 0x400;

    private static void gp(Cpu c, long v, String why) {
        assertThrows(CpuFault.class, () -> CpuMsrs.write(c, CpuMsrs.APIC_BASE, v), why);
    }

    @Test
    void extdIsReservedWithoutX2apicSupport() {
        try (GuestMemory mem = new GuestMemory(1 << 20)) {
            Cpu c = new Cpu(1, mem, new TestPlatform());
            gp(c, BASE | EN | EXTD, "x2APIC not advertised: bit 10 reserved");
            assertEquals(BASE | EN, CpuMsrs.read(c, CpuMsrs.APIC_BASE));
        }
    }

    @Test
    void x2apicTransitionsFollowFigure11_27() {
        try (GuestMemory mem = new GuestMemory(1 << 20)) {
            Cpu c = new Cpu(1, mem, new TestPlatform());
            c.msrs.hasX2apic = true;
            gp(c, BASE | EXTD, "xAPIC to the invalid state (EXTD without EN)");
            CpuMsrs.write(c, CpuMsrs.APIC_BASE, BASE | EN | EXTD); // xAPIC -> x2APIC
            assertEquals(BASE | EN | EXTD, CpuMsrs.read(c, CpuMsrs.APIC_BASE));
            gp(c, BASE | EN, "x2APIC -> xAPIC");
            gp(c, BASE | EXTD, "x2APIC -> invalid");
            CpuMsrs.write(c, CpuMsrs.APIC_BASE, BASE | EN | EXTD); // x2APIC -> x2APIC is fine
            CpuMsrs.write(c, CpuMsrs.APIC_BASE, BASE);             // x2APIC -> disabled
            gp(c, BASE | EXTD, "disabled -> invalid");
            gp(c, BASE | EN | EXTD, "disabled -> x2APIC");
            CpuMsrs.write(c, CpuMsrs.APIC_BASE, BASE | EN);        // disabled -> xAPIC
            gp(c, BASE | EXTD, "xAPIC -> invalid");
            assertEquals(BASE | EN, CpuMsrs.read(c, CpuMsrs.APIC_BASE));
        }
    }
}

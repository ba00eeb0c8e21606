package dev.polyvisor.devices;

import dev.polyvisor.clock.VirtualClock;
import dev.polyvisor.cpu.Platform;
import org.junit.jupiter.api.Test;

import java.util.ArrayList;
import java.util.List;

import static org.junit.jupiter.api.Assertions.*;

/** x2APIC mode: registers as MSRs 0x800-0x8FF, 32-bit IDs, derived LDR, 64-bit ICR, SELF IPI (SDM Vol. 3A 11.12). */
class X2apicTest {
    private final VirtualClock clock = VirtualClock.icount(2_000_000_000L, 1);
    private final List<String> signals = new ArrayList<>();
    private final ApicBus bus = new ApicBus(clock, 18, new DualPic(), new ApicBus.CpuSignals() {
        @Override public void kick(int vcpu) { }
        @Override public void nmi(int vcpu) { signals.add("nmi" + vcpu); }
        @Override public void init(int vcpu) { }
        @Override public void sipi(int vcpu, int vector) { }
    }, ApicBus.DEFAULT_BUS_HZ);

    private static final long X2 = ApicBus.LAPIC_BASE | Lapic.APIC_BASE_ENABLE | Lapic.APIC_BASE_EXTD;

    private Lapic x2(int i) {
        Lapic l = bus.lapic(i);
        l.writeApicBaseMsr(X2);
        assertTrue(l.writeX2apic(0x80F, 0x1FF)); // SVR: software-enable
        return l;
    }

    private static long rd(Lapic l, int msr) {
        Platform.MsrResult r = l.readX2apic(msr);
        assertTrue(r.ok(), () -> "RDMSR " + Integer.toHexString(msr) + " #GP");
        return r.value();
    }

    @Test
    void msrsAreGpOutsideX2apicMode() {
        Lapic l = bus.lapic(1);
        assertFalse(l.readX2apic(0x802).ok());
        assertFalse(l.writeX2apic(0x808, 0));
        assertFalse(l.x2apicMode());
    }

    @Test
    void idIsThirtyTwoBitAndReadOnlyAndLdrIsDerived() {
        Lapic l = x2(17);
        assertEquals(17, rd(l, 0x802));
        assertFalse(l.writeX2apic(0x802, 5), "ID is read-only in x2APIC mode");
        assertEquals(1L << 16 | 1 << 1, rd(l, 0x80D), "cluster 17>>4 = 1, bit 17&15 = 1");
        assertFalse(l.writeX2apic(0x80D, 0), "LDR is read-only");
        assertEquals(Lapic.VERSION, rd(l, 0x803));
    }

    @Test
    void readOnlyWriteOnlyAndUnassignedRegistersGp() {
        Lapic l = x2(1);
        assertFalse(l.readX2apic(0x80B).ok(), "EOI is write-only");
        assertFalse(l.readX2apic(0x83F).ok(), "SELF IPI is write-only");
        assertFalse(l.readX2apic(0x80E).ok(), "no DFR in x2APIC mode");
        assertFalse(l.readX2apic(0x831).ok(), "no ICR high half");
        assertFalse(l.readX2apic(0x809).ok(), "no APR");
        assertFalse(l.writeX2apic(0x80A, 0), "PPR read-only");
        assertFalse(l.writeX2apic(0x839, 0), "current count read-only");
        assertFalse(l.writeX2apic(0x80B, 1), "non-zero EOI");
        assertFalse(l.writeX2apic(0x828, 1), "non-zero ESR write");
        assertFalse(l.writeX2apic(0x808, 1L << 32), "bits 63:32 reserved outside ICR");
        assertFalse(l.writeX2apic(0x83F, 0x120), "SELF IPI bits 31:8 reserved");
        assertTrue(l.writeX2apic(0x808, 0x20));
        assertEquals(0x20, rd(l, 0x808));
    }

    @Test
    void mmioIsNotTheApicInX2apicModeOrWhenDisabled() {
        x2(0);
        ApicBus.setCurrentVcpu(0);
        assertEquals(0xFFFF_FFFFL, bus.read(0x30, 4));
        bus.write(0x80, 4, 0xF0);
        assertEquals(0, rd(bus.lapic(0), 0x808), "MMIO writes are dropped");
        bus.lapic(0).writeApicBaseMsr(ApicBus.LAPIC_BASE); // disabled
        assertEquals(0xFFFF_FFFFL, bus.read(0x30, 4));
        bus.lapic(0).writeApicBaseMsr(ApicBus.LAPIC_BASE | Lapic.APIC_BASE_ENABLE);
        assertEquals(Lapic.VERSION, bus.read(0x30, 4));
    }

    @Test
    void icrIsOneSixtyFourBitRegisterWithThirtyTwoBitDestination() {
        Lapic src = x2(0), dst = x2(17);
        assertTrue(src.writeX2apic(0x830, 17L << 32 | 0x41));
        assertEquals(17L << 32 | 0x41, rd(src, 0x830));
        assertTrue(dst.requested(0x41));
        // Logical: cluster 1, bit 1 (ID 17) only.
        assertTrue(src.writeX2apic(0x830, (1L << 16 | 1 << 1) << 32 | 0x800 | 0x42));
        assertTrue(dst.requested(0x42));
        assertFalse(x2(1).requested(0x42));
        // Broadcast 0xFFFFFFFF, NMI.
        assertTrue(src.writeX2apic(0x830, 0xFFFF_FFFFL << 32 | 0x400));
        assertTrue(signals.contains("nmi17") && signals.contains("nmi0"));
    }

    @Test
    void selfIpiSetsTheVectorInIrr() {
        Lapic l = x2(3);
        assertTrue(l.writeX2apic(0x83F, 0x55));
        assertTrue(l.requested(0x55));
        assertEquals(0x55, l.acknowledge());
        assertTrue(l.writeX2apic(0x80B, 0));
        assertFalse(l.inService(0x55));
    }

    @Test
    void leavingX2apicThroughDisabledRestoresTheXapicId() {
        Lapic l = x2(5);
        l.writeApicBaseMsr(ApicBus.LAPIC_BASE);
        l.writeApicBaseMsr(ApicBus.LAPIC_BASE | Lapic.APIC_BASE_ENABLE);
        assertFalse(l.x2apicMode());
        ApicBus.setCurrentVcpu(5);
        assertEquals(5L << 24, bus.read(0x20, 4));
    }

    @Test
    void tmrIsNotClearedByEoi() {
        Lapic l = x2(2);
        l.accept(0x79, true);
        assertEquals(0x79, l.acknowledge());
        assertTrue(l.writeX2apic(0x80B, 0));
        assertTrue(l.levelTriggered(0x79), "TMR follows the last acceptance (SDM 11.8.4), not EOI");
        l.accept(0x79, false);
        assertFalse(l.levelTriggered(0x79));
    }

    @Test
    void apicBaseRelocationMovesThePage() {
        try (dev.polyvisor.memory.GuestMemory mem = new dev.polyvisor.memory.GuestMemory(1 << 20)) {
            bus.register(mem);
            Lapic l = bus.lapic(1);
            l.writeApicBaseMsr(0xFED4_0000L | Lapic.APIC_BASE_ENABLE);
            ApicBus.setCurrentVcpu(1);
            assertEquals(Lapic.VERSION, mem.readPhys(0xFED4_0030L, 4));
            assertEquals(0xFFFF_FFFFL, mem.readPhys(ApicBus.LAPIC_BASE + 0x30, 4), "no longer at the old base");
            ApicBus.setCurrentVcpu(0);
            assertEquals(0xFFFF_FFFFL, mem.readPhys(0xFED4_0030L, 4), "vCPU 0's APIC stayed at 0xFEE00000");
            assertEquals(Lapic.VERSION, mem.readPhys(ApicBus.LAPIC_BASE + 0x30, 4));
        }
    }

    @Test
    void oneShotThatReachedZeroStaysZeroWhenSwitchedToPeriodic() {
        Lapic l = x2(0);
        assertTrue(l.writeX2apic(0x83E, 0xB));       // divide by 1
        assertTrue(l.writeX2apic(0x832, 0x10040));  // one-shot, masked
        assertTrue(l.writeX2apic(0x838, 1000));
        clock.advanceInstructions(2_000);            // 1 ns each; 1 GHz bus: 1000 counts = 1 us
        assertEquals(0, rd(l, 0x839));
        assertTrue(l.writeX2apic(0x832, 0x10040 | 1 << 17)); // periodic
        assertEquals(0, rd(l, 0x839), "the counter is not reloaded by a mode change (SDM 11.5.4)");
    }
}

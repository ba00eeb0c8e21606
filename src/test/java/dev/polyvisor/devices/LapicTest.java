package dev.polyvisor.devices;

import dev.polyvisor.clock.VirtualClock;
import org.junit.jupiter.api.Test;

import java.util.ArrayList;
import java.util.List;

import static org.junit.jupiter.api.Assertions.*;

/** xAPIC registers, priorities, EOI, IPIs and the timer (Intel SDM Vol. 3A chapter 11). */
class LapicTest {
    private final VirtualClock clock = VirtualClock.icount(2_000_000_000L, 1);
    private final DualPic pic = new DualPic();
    private final List<String> signals = new ArrayList<>();
    private final ApicBus bus = new ApicBus(clock, 2, pic, new ApicBus.CpuSignals() {
        @Override public void kick(int vcpu) { signals.add("kick" + vcpu); }
        @Override public void nmi(int vcpu) { signals.add("nmi" + vcpu); }
        @Override public void init(int vcpu) { signals.add("init" + vcpu); }
        @Override public void sipi(int vcpu, int vector) { signals.add("sipi" + vcpu + ":" + Integer.toHexString(vector)); }
    }, ApicBus.DEFAULT_BUS_HZ);
    private final Lapic a0 = bus.lapic(0), a1 = bus.lapic(1);

    private long rd(int vcpu, int reg) { ApicBus.setCurrentVcpu(vcpu); return bus.read(reg, 4); }

    private void wr(int vcpu, int reg, long v) { ApicBus.setCurrentVcpu(vcpu); bus.write(reg, 4, v); }

    private void enable(int vcpu) { wr(vcpu, 0xF0, 0x1FF); }

    @Test
    void identificationRegistersPerVcpuThroughTheSameWindow() {
        assertEquals(0, rd(0, 0x20) >>> 24);
        assertEquals(1, rd(1, 0x20) >>> 24);
        assertEquals(0x50014, rd(0, 0x30));
        assertEquals(0xFFFFFFFFL, rd(1, 0xE0));
        assertEquals(0xFF, rd(1, 0xF0)); // software-disabled after reset
        assertEquals(0x10000, rd(1, 0x320)); // LVTs masked
        assertEquals(0xFEE00900L, a0.apicBaseMsr()); // enabled, BSP
        assertEquals(0xFEE00800L, a1.apicBaseMsr());
    }

    @Test
    void higherPriorityClassIsDeliveredFirstAndIsrBlocksLowerClasses() {
        enable(1);
        a1.accept(0x41, false);
        a1.accept(0x62, false);
        assertTrue(a1.hasPending());
        assertEquals(0x62, a1.acknowledge());
        assertEquals(0x60, rd(1, 0xA0)); // PPR = ISR class
        assertFalse(a1.hasPending());     // 0x41 is a lower class than 0x60
        assertEquals(1L << 2, rd(1, 0x100 + 0x30)); // ISR bit 0x62: word 3, bit 2
        wr(1, 0xB0, 0);                   // EOI
        assertEquals(0, rd(1, 0xA0));
        assertEquals(0x41, a1.acknowledge());
    }

    @Test
    void autoEoiVectorsAreAcknowledgedWithoutEnteringIsr() {
        enable(1);
        long[] set = new long[4];
        set[0xF2 >> 6] |= 1L << (0xF2 & 63);
        a1.setAutoEoiVectors(set);
        a1.accept(0xF2, false);
        assertEquals(0xF2, a1.acknowledge());
        assertFalse(a1.inService(0xF2), "Hyper-V AutoEOI: no ISR bit, so no EOI is owed");
        assertEquals(0, rd(1, 0xA0), "PPR stays 0: an equal-class vector is still deliverable");
        a1.accept(0xF1, false);
        assertEquals(0xF1, a1.acknowledge());
        assertTrue(a1.inService(0xF1), "other vectors enter ISR as usual");
        a1.setAutoEoiVectors(new long[4]);
        wr(1, 0xB0, 0);
        a1.accept(0xF2, false);
        assertEquals(0xF2, a1.acknowledge());
        assertTrue(a1.inService(0xF2), "the set was replaced");
    }

    @Test
    void tprMasksInterruptsAtOrBelowItsClass() {
        enable(1);
        wr(1, 0x80, 0x50);
        a1.accept(0x55, false);
        assertFalse(a1.hasPending());
        a1.accept(0x61, false);
        assertTrue(a1.hasPending());
        assertEquals(0x61, a1.acknowledge());
        wr(1, 0x80, 0x00);
        wr(1, 0xB0, 0);
        assertEquals(0x55, a1.acknowledge());
    }

    @Test
    void softwareDisabledApicDeliversNothingAndIllegalVectorsSetEsr() {
        a1.accept(0x40, false);
        assertFalse(a1.hasPending());
        enable(1);
        assertTrue(a1.hasPending());
        a1.accept(0x05, false);
        wr(1, 0x280, 0);
        assertEquals(0x40, rd(1, 0x280));
    }

    @Test
    void levelTriggeredEoiIsBroadcastToTheIoApic() {
        List<Integer> eois = new ArrayList<>();
        bus.setEoiListener(eois::add);
        enable(0);
        a0.accept(0x30, true);
        assertEquals(1L << 16, rd(0, 0x180 + 0x10)); // TMR bit 0x30: word 1, bit 16
        assertEquals(0x30, a0.acknowledge());
        wr(0, 0xB0, 0);
        assertEquals(List.of(0x30), eois);
        a0.accept(0x31, false);
        a0.acknowledge();
        wr(0, 0xB0, 0);
        assertEquals(List.of(0x30), eois); // edge: no broadcast
    }

    @Test
    void fixedIpiByPhysicalDestinationAndShorthands() {
        enable(0);
        enable(1);
        wr(0, 0x310, 1L << 24);
        wr(0, 0x300, 0x4050); // fixed, assert, vector 0x50 to APIC 1
        assertTrue(a1.requested(0x50));
        assertFalse(a0.requested(0x50));
        assertTrue(signals.contains("kick1"));
        wr(0, 0x300, 0xC4060); // all excluding self
        assertTrue(a1.requested(0x60));
        assertFalse(a0.requested(0x60));
        wr(1, 0x300, 0x44070); // self
        assertTrue(a1.requested(0x70));
        assertFalse(a0.requested(0x70));
        assertEquals(0, rd(0, 0x300) & 0x1000); // delivery status idle
    }

    @Test
    void logicalFlatDestinationMatchesTheLdrMask() {
        enable(0);
        enable(1);
        wr(0, 0xD0, 0x01000000);
        wr(1, 0xD0, 0x02000000);
        wr(0, 0x310, 0x02L << 24);
        wr(0, 0x300, 0x4800 | 0x45); // logical, fixed
        assertTrue(a1.requested(0x45));
        assertFalse(a0.requested(0x45));
        wr(0, 0x310, 0x03L << 24);
        wr(0, 0x300, 0x4900 | 0x46); // logical, lowest priority: exactly one target
        assertTrue(a0.requested(0x46) ^ a1.requested(0x46));
    }

    @Test
    void initAndStartupIpisGoToTheVmm() {
        enable(1);
        wr(0, 0x310, 1L << 24);
        wr(0, 0x300, 0x4500);       // INIT assert
        wr(0, 0x300, 0x8500);       // INIT level de-assert: ignored
        wr(0, 0x300, 0x4600 | 0x9A); // SIPI vector 0x9A
        wr(0, 0x300, 0x4400);       // NMI
        assertEquals(List.of("init1", "sipi1:9a", "nmi1"), signals);
        assertEquals(0xFF, rd(1, 0xF0)); // INIT reset the LAPIC
    }

    @Test
    void oneShotTimerFiresAtTheRightVirtualTimeAndCountsDown() {
        enable(0);
        wr(0, 0x3E0, 0x3);       // divide by 16
        wr(0, 0x320, 0x000EF);   // one-shot, vector 0xEF
        wr(0, 0x380, 1000);      // 1000 counts * 16 ns = 16 us
        clock.advanceInstructions(8_000);
        assertEquals(500, rd(0, 0x390));
        assertEquals(16_000, clock.timers().nextDeadline());
        clock.warpToNextDeadline();
        clock.timers().runExpired();
        assertEquals(16_000, clock.nanos());
        assertTrue(a0.requested(0xEF));
        assertEquals(0, rd(0, 0x390));
        assertEquals(Long.MAX_VALUE, clock.timers().nextDeadline());
    }

    @Test
    void periodicTimerReloadsAndKeepsFiring() {
        enable(0);
        wr(0, 0x3E0, 0xB);       // divide by 1
        wr(0, 0x320, 0x200E0);   // periodic
        wr(0, 0x380, 100_000);   // 100 us
        int fired = 0;
        for (int i = 0; i < 5; i++) {
            clock.warpToNextDeadline();
            clock.timers().runExpired();
            if (a0.requested(0xE0)) { fired++; a0.acknowledge(); wr(0, 0xB0, 0); }
        }
        assertEquals(5, fired);
        assertEquals(500_000, clock.nanos());
        clock.advanceInstructions(25_000);
        assertEquals(75_000, rd(0, 0x390));
    }

    @Test
    void periodicTicksMissedWhileLateOrPendingAreDeliveredOneByOne() {
        enable(0);
        wr(0, 0x3E0, 0xB);
        wr(0, 0x320, 0x200E0);   // periodic, vector 0xE0
        wr(0, 0x380, 1_000_000); // 1 ms
        clock.advanceInstructions(4_500_000); // the VMM was late: 4 periods ended
        clock.timers().runExpired();
        assertTrue(a0.requested(0xE0));
        int taken = 0;
        for (int i = 0; i < 40 && taken < 4; i++) {
            if (a0.hasPending()) {
                assertEquals(0xE0, a0.acknowledge());
                wr(0, 0xB0, 0);
                taken++;
            }
            clock.advanceInstructions(Lapic.CATCH_UP_POLL_NS);
            clock.timers().runExpired();
        }
        assertEquals(4, taken);
        assertTrue(clock.nanos() < 5_000_000, "caught up before the fifth period ended");
    }

    @Test
    void maskedTimerCountsButDoesNotInterrupt() {
        enable(0);
        wr(0, 0x3E0, 0xB);
        wr(0, 0x320, 0x100E0);
        wr(0, 0x380, 1000);
        clock.warpToNextDeadline();
        clock.timers().runExpired();
        assertFalse(a0.requested(0xE0));
    }

    @Test
    void tscDeadlineModeFiresWhenTheTscPassesTheDeadline() {
        enable(0);
        wr(0, 0x320, 0x400D0);   // TSC-deadline mode, vector 0xD0
        wr(0, 0x380, 1234);      // ignored in this mode
        assertEquals(0, rd(0, 0x380));
        a0.writeTscDeadline(clock.tscAt(50_000));
        assertEquals(100_000, a0.readTscDeadline()); // 2 GHz TSC
        clock.warpToNextDeadline();
        clock.timers().runExpired();
        assertEquals(50_000, clock.nanos());
        assertTrue(a0.requested(0xD0));
        assertEquals(0, a0.readTscDeadline());
        wr(0, 0x320, 0x000D0);   // leaving TSC-deadline mode disarms
        a0.writeTscDeadline(clock.tsc() + 10);
        assertEquals(0, a0.readTscDeadline());
    }

    @Test
    void virtualWireModePassesThePicThroughLint0OnTheBsp() {
        IoBus io = new IoBus();
        pic.register(io);
        io.out(0x20, 1, 0x11); io.out(0x21, 1, 0x20); io.out(0x21, 1, 0x04); io.out(0x21, 1, 0x01);
        io.out(0x21, 1, 0x00);
        pic.setIrq(0, true);
        assertTrue(a0.hasPending());     // BSP: LINT0 = ExtINT
        assertFalse(a1.hasPending());    // AP: LINT0 masked
        assertEquals(0x20, a0.acknowledge());
    }

    @Test
    void hardwareDisabledApicConnectsThePicDirectly() {
        IoBus io = new IoBus();
        pic.register(io);
        io.out(0x20, 1, 0x11); io.out(0x21, 1, 0x20); io.out(0x21, 1, 0x04); io.out(0x21, 1, 0x01);
        io.out(0x21, 1, 0x00);
        a1.writeApicBaseMsr(0); // globally disabled
        pic.setIrq(3, true);
        assertTrue(a1.hasPending());
        assertEquals(0x23, a1.acknowledge());
    }

    @Test
    void aSingleThreadedVmmCanSayWhichVcpuRuns() {
        int[] running = {1};
        bus.setCurrentVcpuSupplier(() -> running[0]);
        assertEquals(1, bus.read(0x20, 4) >>> 24);
        running[0] = 0;
        assertEquals(0, bus.read(0x20, 4) >>> 24);
        bus.setCurrentVcpuSupplier(null);
    }

    @Test
    void guestGarbageNeverThrows() {
        java.util.Random r = new java.util.Random(6);
        for (int i = 0; i < 50_000; i++) {
            int vcpu = r.nextInt(2);
            long off = r.nextInt(0x1000);
            int size = 1 << r.nextInt(4);
            if (r.nextBoolean()) wr(vcpu, (int) off, r.nextLong()); else { ApicBus.setCurrentVcpu(vcpu); bus.read(off, size); }
            if (r.nextInt(100) == 0) bus.lapic(vcpu).writeTscDeadline(r.nextBoolean() ? r.nextLong() : r.nextLong() & 0xFFFFFFFFL);
            clock.advanceInstructions(r.nextInt(10_000));
            clock.timers().runExpired();
            if (bus.lapic(vcpu).hasPending()) bus.lapic(vcpu).acknowledge();
        }
    }
}

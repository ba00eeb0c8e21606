package dev.polyvisor.devices;

import dev.polyvisor.clock.VirtualClock;
import org.junit.jupiter.api.Test;

import static org.junit.jupiter.api.Assertions.*;

/** 82093AA redirection, remote IRR and EOI behaviour. */
class IoApicTest {
    private final VirtualClock clock = VirtualClock.icount(1_000_000_000L, 1);
    private final ApicBus bus = new ApicBus(clock, 2, null, null, ApicBus.DEFAULT_BUS_HZ);
    private final IoApic ioapic = new IoApic(bus, 2);

    { ApicBus.setCurrentVcpu(0); bus.write(0xF0, 4, 0x1FF); ApicBus.setCurrentVcpu(1); bus.write(0xF0, 4, 0x1FF); }

    private int reg(int r) { ioapic.write(0x00, 4, r); return (int) ioapic.read(0x10, 4); }

    private void setReg(int r, long v) { ioapic.write(0x00, 4, r); ioapic.write(0x10, 4, v); }

    private void route(int pin, long low, int destApic) {
        setReg(0x11 + 2 * pin, (long) destApic << 24);
        setReg(0x10 + 2 * pin, low);
    }

    @Test
    void identificationAndResetState() {
        assertEquals(2, reg(0) >>> 24);
        assertEquals(0x00170020, reg(1));
        assertEquals(0x10000, reg(0x10)); // masked
        assertEquals(0, reg(0x11));
        assertEquals(0, reg(0x50)); // beyond the table
    }

    @Test
    void edgeTriggeredPinDeliversOnRisingEdgeToTheDestinationApic() {
        route(4, 0x0034, 1); // fixed, physical, edge, vector 0x34 -> APIC 1
        ioapic.setIrq(4, true);
        assertTrue(bus.lapic(1).requested(0x34));
        assertFalse(bus.lapic(0).requested(0x34));
        assertEquals(0x34, bus.lapic(1).acknowledge());
        ioapic.setIrq(4, true); // no new edge
        assertFalse(bus.lapic(1).requested(0x34));
    }

    @Test
    void maskedPinDeliversNothing() {
        route(3, 0x10033, 0);
        ioapic.setIrq(3, true);
        assertFalse(bus.lapic(0).requested(0x33));
    }

    @Test
    void levelTriggeredPinHoldsRemoteIrrUntilEoiThenRedelivers() {
        route(9, 0xA039, 0); // level (bit 15), active low polarity bit 13, vector 0x39
        ioapic.setIrq(9, true);
        assertTrue(bus.lapic(0).requested(0x39));
        assertTrue(bus.lapic(0).levelTriggered(0x39));
        assertEquals(0x4000, reg(0x10 + 18) & 0x4000); // remote IRR
        assertEquals(0x39, bus.lapic(0).acknowledge());
        ApicBus.setCurrentVcpu(0);
        bus.write(0xB0, 4, 0); // EOI, broadcast to the IOAPIC
        assertTrue(bus.lapic(0).requested(0x39)); // still asserted: delivered again
        bus.lapic(0).acknowledge();
        ioapic.setIrq(9, false);
        bus.write(0xB0, 4, 0);
        assertEquals(0, reg(0x10 + 18) & 0x4000);
        assertFalse(bus.lapic(0).requested(0x39));
    }

    @Test
    void unmaskingAnAssertedLevelPinDeliversIt() {
        route(10, 0x1803A, 1); // level, masked
        ioapic.setIrq(10, true);
        assertFalse(bus.lapic(1).requested(0x3A));
        route(10, 0x0803A, 1);
        assertTrue(bus.lapic(1).requested(0x3A));
    }

    @Test
    void eoiRegisterClearsRemoteIrr() {
        route(11, 0x803B, 0);
        ioapic.setIrq(11, true);
        ioapic.setIrq(11, false);
        ioapic.write(0x40, 4, 0x3B);
        assertEquals(0, reg(0x10 + 22) & 0x4000);
    }

    @Test
    void readOnlyBitsIgnoreWrites() {
        setReg(0x10, 0xFFFFFFFFL);
        assertEquals(0, reg(0x10) & 0x5000); // delivery status and remote IRR
        setReg(0x01, 0);
        assertEquals(0x00170020, reg(1));
    }

    @Test
    void logicalBroadcastReachesEveryApic() {
        route(5, 0x0835, 0xFF);
        ioapic.setIrq(5, true);
        assertTrue(bus.lapic(0).requested(0x35));
        assertTrue(bus.lapic(1).requested(0x35));
    }

    @Test
    void guestGarbageNeverThrows() {
        java.util.Random r = new java.util.Random(7);
        for (int i = 0; i < 30_000; i++) {
            if (r.nextBoolean()) ioapic.write(r.nextInt(0x100), 1 << r.nextInt(4), r.nextLong());
            else ioapic.read(r.nextInt(0x100), 1 << r.nextInt(4));
            ioapic.setIrq(r.nextInt(30) - 3, r.nextBoolean());
            if (r.nextInt(10) == 0) ioapic.eoi(r.nextInt(256));
        }
    }
}

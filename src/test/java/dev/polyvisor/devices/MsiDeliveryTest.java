package dev.polyvisor.devices;

import dev.polyvisor.clock.VirtualClock;
import org.junit.jupiter.api.Test;

import java.util.ArrayList;
import java.util.List;

import static org.junit.jupiter.api.Assertions.*;

/** MSI/MSI-X writes become APIC bus messages (SDM Vol. 3A 11.11 "Message Signalled Interrupts"). */
class MsiDeliveryTest {
    private final List<String> kicks = new ArrayList<>();
    private final ApicBus bus = new ApicBus(VirtualClock.icount(2_000_000_000L, 1), 2, new DualPic(), new ApicBus.CpuSignals() {
        @Override public void kick(int vcpu) { kicks.add("kick" + vcpu); }
        @Override public void nmi(int vcpu) { kicks.add("nmi" + vcpu); }
        @Override public void init(int vcpu) {}
        @Override public void sipi(int vcpu, int vector) {}
    }, ApicBus.DEFAULT_BUS_HZ);

    private void enable(int vcpu) { ApicBus.setCurrentVcpu(vcpu); bus.write(0xF0, 4, 0x1FF); }

    @Test
    void decodesTheAddressAndDataFormat() {
        ApicMessage m = ApicMessage.fromMsi(0xFEE0_1004L, 0x8000 | 4 << 8 | 0x41);
        assertEquals(0x41, m.vector());
        assertEquals(ApicMessage.NMI, m.deliveryMode());
        assertTrue(m.logical());
        assertEquals(1, m.destination());
        assertTrue(m.levelTriggered());
        assertNull(ApicMessage.fromMsi(0xFED0_0000L, 0x41), "not the interrupt window");
    }

    @Test
    void aFixedPhysicalMessageReachesItsLapic() {
        enable(0);
        enable(1);
        bus.deliverMsi(0xFEE0_1000L, 0x41); // physical destination 1, fixed, edge
        assertFalse(bus.lapic(0).hasPending());
        assertTrue(bus.lapic(1).hasPending());
        assertEquals(0x41, bus.lapic(1).acknowledge());
        assertTrue(kicks.contains("kick1"), kicks.toString());
    }

    @Test
    void writesOutsideTheWindowAreDropped() {
        enable(0);
        bus.deliverMsi(0x1000, 0x41);
        assertFalse(bus.lapic(0).hasPending());
    }
}

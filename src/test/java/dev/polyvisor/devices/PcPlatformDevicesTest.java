package dev.polyvisor.devices;

import dev.polyvisor.clock.VirtualClock;
import dev.polyvisor.memory.GuestMemory;
import org.junit.jupiter.api.Test;

import java.io.ByteArrayOutputStream;

import static org.junit.jupiter.api.Assertions.*;

/** One call wires the standard set; interrupts travel from devices through PIC or IOAPIC to a vCPU. */
class PcPlatformDevicesTest {
    private final VirtualClock clock = VirtualClock.icount(2_000_000_000L, 1);
    private final IoBus io = new IoBus();
    private final ByteArrayOutputStream serial = new ByteArrayOutputStream();
    private int resets, powerOffs;

    private PcPlatformDevices create(GuestMemory mem) {
        return PcPlatformDevices.create(clock, 2, io, mem, 1_700_000_000L,
                new PcPlatformDevices.Hooks(serial::writeBytes, () -> resets++, () -> powerOffs++, ApicBus.CpuSignals.NONE));
    }

    @Test
    void portsAndMmioAreClaimed() {
        try (GuestMemory mem = new GuestMemory(16 << 20)) {
            PcPlatformDevices d = create(mem);
            io.out(0x3F8, 1, 'A');
            assertEquals("A", serial.toString());
            assertEquals(0x60, io.in(0x3FD, 1) & 0x60);
            io.out(0x64, 1, 0xAA);
            assertEquals(0x55, io.in(0x60, 1));
            io.out(0x64, 1, 0xFE);
            assertEquals(1, resets);
            io.out(0x604, 2, 5 << 10 | 1 << 13);
            assertEquals(1, powerOffs);
            io.out(0xCF8, 4, 0x8000_0000L);
            assertEquals(0x1237_8086L, io.in(0xCFC, 4));
            assertEquals(0x50014, mem.readPhys(ApicBus.LAPIC_BASE + 0x30, 4));
            mem.writePhys(IoApic.BASE, 4, 1);
            assertEquals(0x00170020, mem.readPhys(IoApic.BASE + 0x10, 4));
            assertEquals(2, d.ioapicId());
            assertEquals(0xFF, io.in(0x3E8, 1)); // COM3 is not there
            io.out(0x2FF, 1, 0x5A);                // COM2 is: its scratch register holds a byte
            assertEquals(0x5A, io.in(0x2FF, 1));
        }
    }

    @Test
    void pitIrq0ReachesTheBspThroughThePicInVirtualWireMode() {
        try (GuestMemory mem = new GuestMemory(16 << 20)) {
            PcPlatformDevices d = create(mem);
            io.out(0x20, 1, 0x11); io.out(0x21, 1, 0x30); io.out(0x21, 1, 0x04); io.out(0x21, 1, 0x01);
            io.out(0x21, 1, 0xFE); // only IRQ0
            io.out(0x43, 1, 0x34);
            io.out(0x40, 1, 0x9C);
            io.out(0x40, 1, 0x2E); // 11932: 10 ms
            assertFalse(d.interruptSource(0).hasPending());
            clock.warpToNextDeadline();
            clock.timers().runExpired();
            assertTrue(d.interruptSource(0).hasPending());
            assertEquals(0x30, d.interruptSource(0).acknowledge());
            assertFalse(d.interruptSource(1).hasPending());
        }
    }

    @Test
    void pitIrq0ReachesIoApicPin2() {
        try (GuestMemory mem = new GuestMemory(16 << 20)) {
            PcPlatformDevices d = create(mem);
            mem.writePhys(ApicBus.LAPIC_BASE + 0xF0, 4, 0x1FF);
            mem.writePhys(IoApic.BASE, 4, 0x10 + 2 * 2);
            mem.writePhys(IoApic.BASE + 0x10, 4, 0xEC); // pin 2: fixed, edge, vector 0xEC, dest APIC 0
            io.out(0x43, 1, 0x30);
            io.out(0x40, 1, 100);
            io.out(0x40, 1, 0);
            clock.warpToNextDeadline();
            clock.timers().runExpired();
            assertTrue(d.lapic(0).requested(0xEC));
        }
    }

    @Test
    void aLateTickIsHeldUntilTheCpuTakesThePreviousIrq0() {
        try (GuestMemory mem = new GuestMemory(16 << 20)) {
            PcPlatformDevices d = create(mem);
            io.out(0x20, 1, 0x11); io.out(0x21, 1, 0x30); io.out(0x21, 1, 0x04); io.out(0x21, 1, 0x01);
            io.out(0x21, 1, 0xFE);
            io.out(0x43, 1, 0x34);
            io.out(0x40, 1, 0x9C);
            io.out(0x40, 1, 0x2E); // 10 ms
            clock.advanceInstructions(35_000_000); // 3 edges passed unserviced
            clock.timers().runExpired();
            int taken = 0;
            for (int i = 0; i < 50 && taken < 3; i++) {
                if (d.interruptSource(0).hasPending()) {
                    assertEquals(0x30, d.interruptSource(0).acknowledge());
                    io.out(0x20, 1, 0x20);
                    taken++;
                }
                clock.advanceInstructions(Pit8254.CATCH_UP_POLL_NS);
                clock.timers().runExpired();
            }
            assertEquals(3, taken); // none merged into a pending request
        }
    }

    @Test
    void serialInputRaisesIrq4() {
        try (GuestMemory mem = new GuestMemory(16 << 20)) {
            PcPlatformDevices d = create(mem);
            io.out(0x20, 1, 0x11); io.out(0x21, 1, 0x30); io.out(0x21, 1, 0x04); io.out(0x21, 1, 0x01);
            io.out(0x21, 1, 0xEF); // only IRQ4
            io.out(0x3F9, 1, 0x01); // ERBFI
            io.out(0x3FC, 1, 0x0A); // OUT2 | RTS: the host side may send
            d.com1.feed(new byte[] {'x'});
            assertEquals(0x34, d.interruptSource(0).acknowledge());
            assertEquals('x', io.in(0x3F8, 1));
        }
    }

    @Test
    void cmosReportsTheRamSize() {
        try (GuestMemory mem = new GuestMemory(64 << 20)) {
            create(mem);
            io.out(0x70, 1, 0x34);
            int lo = (int) io.in(0x71, 1);
            io.out(0x70, 1, 0x35);
            int hi = (int) io.in(0x71, 1);
            assertEquals((64 - 16) * 16, hi << 8 | lo);
        }
    }
}

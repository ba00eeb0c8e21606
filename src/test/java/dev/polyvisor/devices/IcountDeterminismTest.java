package dev.polyvisor.devices;

import dev.polyvisor.clock.VirtualClock;
import dev.polyvisor.cpu.InterruptSource;
import dev.polyvisor.memory.GuestMemory;
import org.junit.jupiter.api.Test;

import java.util.ArrayList;
import java.util.List;

import static org.junit.jupiter.api.Assertions.*;

/** In icount mode the whole platform is a deterministic function of the instruction stream. */
class IcountDeterminismTest {
    /** Programs PIT (IOAPIC pin 2), LAPIC timer, RTC periodic; "runs" one virtual second; returns the interrupt log. */
    private static List<String> run() {
        VirtualClock clock = VirtualClock.icount(2_000_000_000L, 1);
        IoBus io = new IoBus();
        try (GuestMemory mem = new GuestMemory(4 << 20)) {
            PcPlatformDevices d = PcPlatformDevices.create(clock, 1, io, mem, 1_000_000_000L, PcPlatformDevices.Hooks.none());
            long lapic = ApicBus.LAPIC_BASE, ioapic = IoApic.BASE;
            io.out(0x21, 1, 0xFF); io.out(0xA1, 1, 0xFF);       // PIC fully masked: IOAPIC mode
            mem.writePhys(lapic + 0x350, 4, 0x10700);           // LINT0 ExtINT masked, as Linux does
            mem.writePhys(lapic + 0xF0, 4, 0x1FF);
            mem.writePhys(ioapic, 4, 0x10 + 2 * 2);
            mem.writePhys(ioapic + 0x10, 4, 0x30);              // pin 2 -> vector 0x30, edge
            mem.writePhys(ioapic, 4, 0x10 + 2 * 8);
            mem.writePhys(ioapic + 0x10, 4, 0x38);              // pin 8 (RTC) -> vector 0x38, edge
            io.out(0x43, 1, 0x34);                              // PIT ch0 mode 2, 100 Hz
            io.out(0x40, 1, 11932 & 0xFF);
            io.out(0x40, 1, 11932 >> 8);
            mem.writePhys(lapic + 0x3E0, 4, 0xB);               // LAPIC timer /1, periodic 3 ms
            mem.writePhys(lapic + 0x320, 4, 0x200EF);
            mem.writePhys(lapic + 0x380, 4, 3_000_000);
            io.out(0x70, 1, 0x0A); io.out(0x71, 1, 0x2F);       // RTC 2 Hz periodic
            io.out(0x70, 1, 0x0B); io.out(0x71, 1, 0x42);
            InterruptSource cpu = d.interruptSource(0);
            List<String> log = new ArrayList<>();
            while (clock.nanos() < 1_000_000_000L) {
                clock.advanceInstructions(7_919); // a quantum of guest work
                clock.timers().runExpired();
                while (cpu.hasPending()) {
                    int v = cpu.acknowledge();
                    log.add(v + "@" + clock.nanos());
                    if (v == 0x38) { io.out(0x70, 1, 0x0C); io.in(0x71, 1); } // the RTC handler reads C
                    mem.writePhys(lapic + 0xB0, 4, 0);
                }
                if (clock.nanos() % 3 == 0) clock.warpToNextDeadline(); // sometimes halt
            }
            return log;
        }
    }

    @Test
    void twoRunsProduceTheSameInterruptTimeline() {
        List<String> a = run(), b = run();
        assertEquals(a, b);
        assertFalse(a.isEmpty());
    }

    @Test
    void oneVirtualSecondHasTheProgrammedNumberOfInterrupts() {
        List<String> log = run();
        long pit = log.stream().filter(s -> s.startsWith("48@")).count();
        long lapicTimer = log.stream().filter(s -> s.startsWith("239@")).count();
        long rtc = log.stream().filter(s -> s.startsWith("56@")).count();
        assertEquals(100, pit, 1);
        assertEquals(333, lapicTimer, 1);
        assertEquals(2, rtc, 1);
    }
}

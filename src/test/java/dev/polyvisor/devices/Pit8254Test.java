package dev.polyvisor.devices;

import dev.polyvisor.clock.VirtualClock;
import org.junit.jupiter.api.Test;

import static org.junit.jupiter.api.Assertions.*;

/** The 8254 as Linux's TSC calibration and timer setup drive it (arch/x86/kernel/tsc.c, i8253.c). */
class Pit8254Test {
    private final VirtualClock clock = VirtualClock.icount(2_000_000_000L, 1); // 1 ns per instruction
    private final IoBus io = new IoBus();
    private int irqs;
    private final Pit8254 pit = new Pit8254(clock, lvl -> { if (lvl) irqs++; });
    private final SystemControlPort portB = new SystemControlPort(clock, pit);

    { pit.register(io); portB.register(io); }

    private void advanceTicks(long ticks) {
        clock.advanceInstructions(Pit8254.nanosAtTicks(Pit8254.ticksAt(clock.nanos()) + ticks) - clock.nanos());
    }

    @Test
    void mode0CountdownRaisesOut2AtTerminalCountLikePitCalibrateTsc() {
        io.out(0x61, 1, (io.in(0x61, 1) & ~0x02) | 0x01); // gate high, speaker off
        io.out(0x43, 1, 0xB0);                              // channel 2, LSB/MSB, mode 0, binary
        int latch = 1193182 / 20;                           // 50 ms, as pit_calibrate_tsc uses
        io.out(0x42, 1, latch & 0xFF);
        io.out(0x42, 1, latch >> 8);
        assertEquals(0, io.in(0x61, 1) & 0x20);             // OUT2 low while counting
        advanceTicks(latch / 2);
        assertEquals(0, io.in(0x61, 1) & 0x20);
        advanceTicks(latch / 2 + 2);
        assertEquals(0x20, io.in(0x61, 1) & 0x20);          // terminal count: OUT2 high
        assertEquals(0x01, io.in(0x61, 1) & 0x0F);          // control bits read back
    }

    @Test
    void countReadsBackLsbThenMsbAndDecreasesWithVirtualTime() {
        io.out(0x61, 1, 0x01);
        io.out(0x43, 1, 0xB0);
        io.out(0x42, 1, 0xFF);
        io.out(0x42, 1, 0xFF);
        advanceTicks(1 + 0x100); // one clock to load, then 256 counts
        int lsb = (int) io.in(0x42, 1);
        int msb = (int) io.in(0x42, 1);
        assertEquals(0xFEFF, msb << 8 | lsb);
    }

    @Test
    void gateLowStopsMode0Counting() {
        io.out(0x61, 1, 0x01);
        io.out(0x43, 1, 0xB0);
        io.out(0x42, 1, 0x00);
        io.out(0x42, 1, 0x10); // 0x1000
        advanceTicks(0x101);
        io.out(0x61, 1, 0x00); // gate low
        advanceTicks(0x500);
        io.out(0x43, 1, 0x80); // latch channel 2
        int v = (int) io.in(0x42, 1) | (int) io.in(0x42, 1) << 8;
        assertEquals(0x0F00, v);
    }

    @Test
    void counterLatchFreezesTheValueUntilRead() {
        io.out(0x43, 1, 0x34); // channel 0, LSB/MSB, mode 2
        io.out(0x40, 1, 0x00);
        io.out(0x40, 1, 0x10);
        advanceTicks(0x11);
        io.out(0x43, 1, 0x00); // latch channel 0
        advanceTicks(0x200);
        int v = (int) io.in(0x40, 1) | (int) io.in(0x40, 1) << 8;
        assertEquals(0x1000 - 0x10, v);
    }

    @Test
    void readBackCommandLatchesStatusThenCount() {
        io.out(0x43, 1, 0xB0);
        io.out(0x42, 1, 0x34);
        io.out(0x42, 1, 0x12);
        io.out(0x43, 1, 0xC8); // read-back: count and status of channel 2
        int status = (int) io.in(0x42, 1);
        assertEquals(0x30, status & 0x3F); // RW=3, mode 0, binary
        assertEquals(0, status & 0x40);    // count loaded: null count clear
        int count = (int) io.in(0x42, 1) | (int) io.in(0x42, 1) << 8;
        assertEquals(0x1234, count);
    }

    @Test
    void controlWordSetsNullCountAndMode0OutLow() {
        io.out(0x43, 1, 0xB0);
        io.out(0x43, 1, 0xE8); // read-back status only, channel 2
        int status = (int) io.in(0x42, 1);
        assertEquals(0x40, status & 0xC0); // OUT low, null count
    }

    @Test
    void mode2OnChannel0RaisesIrq0EveryPeriod() {
        io.out(0x43, 1, 0x34);
        int count = 1193182 / 1000 + 1; // ~1 ms, as the i8253 clockevent uses LATCH for HZ
        io.out(0x40, 1, count & 0xFF);
        io.out(0x40, 1, count >> 8);
        for (int i = 0; i < 10; i++) {
            clock.warpToNextDeadline();
            clock.timers().runExpired();
        }
        assertEquals(10, irqs);
        // ten periods of count ticks (plus the load clock) of virtual time have passed
        assertEquals(Pit8254.nanosAtTicks(Pit8254.ticksAt(0) + 1 + 10L * count), clock.nanos(), 1000);
    }

    @Test
    void ticksMissedWhileTheVmmWasLateAreReinjectedOneByOne() {
        boolean[] busy = {false};
        pit.setIrq0PendingProbe(() -> busy[0]);
        io.out(0x43, 1, 0x34);
        int count = 11932; // 10 ms
        io.out(0x40, 1, count & 0xFF);
        io.out(0x40, 1, count >> 8);
        clock.advanceInstructions(55_000_000); // the VMM was busy for 55 ms: 5 edges passed
        clock.timers().runExpired();
        assertEquals(1, irqs);
        assertEquals(4, pit.lostTicks());
        busy[0] = true;                        // the guest has not taken IRQ0 yet: hold the next one
        clock.advanceInstructions(Pit8254.CATCH_UP_POLL_NS);
        clock.timers().runExpired();
        assertEquals(1, irqs);
        busy[0] = false;
        for (int i = 0; i < 4; i++) {
            clock.warpToNextDeadline();
            clock.timers().runExpired();
        }
        assertEquals(5, irqs);
        assertEquals(0, pit.lostTicks());
        assertTrue(clock.nanos() < 60_000_000, "caught up before the next regular edge");
        clock.warpToNextDeadline();
        clock.timers().runExpired();
        assertEquals(6, irqs);                 // the regular 60 ms edge
    }

    @Test
    void reprogrammingDropsOwedTicks() {
        io.out(0x43, 1, 0x34);
        io.out(0x40, 1, 0x9C);
        io.out(0x40, 1, 0x2E);
        clock.advanceInstructions(100_000_000);
        clock.timers().runExpired();
        assertTrue(pit.lostTicks() > 0);
        io.out(0x43, 1, 0x30);
        assertEquals(0, pit.lostTicks());
    }

    @Test
    void mode0OnChannel0RaisesIrq0Once() {
        io.out(0x43, 1, 0x30);
        io.out(0x40, 1, 100);
        io.out(0x40, 1, 0);
        clock.warpToNextDeadline();
        clock.timers().runExpired();
        assertEquals(1, irqs);
        assertEquals(Long.MAX_VALUE, clock.timers().nextDeadline());
    }

    @Test
    void mode3SquareWaveCountsDownByTwo() {
        io.out(0x43, 1, 0xB6); // channel 2, mode 3
        io.out(0x42, 1, 100);
        io.out(0x42, 1, 0);
        io.out(0x61, 1, 0x01); // rising gate starts it
        advanceTicks(11);
        io.out(0x43, 1, 0x80);
        int v = (int) io.in(0x42, 1) | (int) io.in(0x42, 1) << 8;
        assertEquals(80, v);
        assertEquals(0x20, io.in(0x61, 1) & 0x20); // first half of the period: high
        advanceTicks(45);
        assertEquals(0, io.in(0x61, 1) & 0x20);    // second half (elapsed 55 of 100): low
    }

    @Test
    void bcdCountsInDecimal() {
        io.out(0x43, 1, 0xB1); // channel 2, mode 0, BCD
        io.out(0x61, 1, 0x01);
        io.out(0x42, 1, 0x00);
        io.out(0x42, 1, 0x10); // 1000 decimal
        advanceTicks(1 + 1);
        io.out(0x43, 1, 0x80);
        int v = (int) io.in(0x42, 1) | (int) io.in(0x42, 1) << 8;
        assertEquals(0x0999, v);
    }

    @Test
    void refreshBitTogglesWithTime() {
        int a = (int) io.in(0x61, 1) & 0x10;
        clock.advanceInstructions(15_085);
        int b = (int) io.in(0x61, 1) & 0x10;
        assertNotEquals(a, b);
    }

    @Test
    void guestGarbageNeverThrows() {
        java.util.Random r = new java.util.Random(2);
        for (int i = 0; i < 20_000; i++) {
            int p = 0x40 + r.nextInt(4);
            if (r.nextInt(5) == 0) io.out(0x61, 1, r.nextInt(256));
            if (r.nextBoolean()) io.out(p, 1, r.nextInt(256)); else io.in(p, 1);
            clock.advanceInstructions(r.nextInt(5000));
            clock.timers().runExpired();
        }
    }
}

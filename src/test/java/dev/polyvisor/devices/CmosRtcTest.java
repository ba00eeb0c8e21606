package dev.polyvisor.devices;

import dev.polyvisor.clock.VirtualClock;
import org.junit.jupiter.api.Test;

import java.time.LocalDateTime;
import java.time.ZoneOffset;

import static org.junit.jupiter.api.Assertions.*;

class CmosRtcTest {
    // 2026-11-25 15:09:30 UTC, a Wednesday
    private static final long START = LocalDateTime.of(2026, 11, 25, 15, 9, 30).toEpochSecond(ZoneOffset.UTC);
    private final VirtualClock clock = VirtualClock.icount(1_000_000_000L, 1);
    private final IoBus io = new IoBus();
    private boolean irq8;
    private final CmosRtc rtc = new CmosRtc(clock, START, l -> irq8 = l);

    { rtc.register(io); }

    private int reg(int i) { io.out(0x70, 1, i); return (int) io.in(0x71, 1); }

    private void write(int i, int v) { io.out(0x70, 1, i); io.out(0x71, 1, v); }

    @Test
    void bcdTimeAndDateFromStartWallTime() {
        clock.advanceInstructions(10_000_000); // clear of the update window
        assertEquals(0x30, reg(0));
        assertEquals(0x09, reg(2));
        assertEquals(0x15, reg(4));
        assertEquals(0x04, reg(6)); // Wednesday: 1 = Sunday
        assertEquals(0x25, reg(7));
        assertEquals(0x11, reg(8));
        assertEquals(0x26, reg(9));
        assertEquals(0x20, reg(CmosRtc.CENTURY));
    }

    @Test
    void binaryAnd12HourModesPerRegisterB() {
        clock.advanceInstructions(10_000_000);
        write(CmosRtc.REG_B, 0x04); // binary, 12-hour
        assertEquals(30, reg(0));
        assertEquals(0x80 | 3, reg(4)); // 15h = 3 PM
        write(CmosRtc.REG_B, 0x00);     // BCD, 12-hour
        assertEquals(0x83, reg(4));
        write(CmosRtc.REG_B, 0x06);     // binary, 24-hour
        assertEquals(15, reg(4));
    }

    @Test
    void timeAdvancesWithTheVirtualClock() {
        clock.advanceInstructions(10_000_000);
        clock.advanceInstructions(45_000_000_000L);
        assertEquals(0x15, reg(0)); // 30 + 45 s = 1:15 later
        assertEquals(0x10, reg(2));
    }

    @Test
    void updateInProgressIsSetAroundEachSecondBoundary() {
        clock.advanceInstructions(500_000_000);
        assertEquals(0, reg(CmosRtc.REG_A) & 0x80);
        clock.advanceInstructions(500_000_000 - 100_000); // 100 us before the update
        assertEquals(0x80, reg(CmosRtc.REG_A) & 0x80);
        clock.advanceInstructions(1_000_000); // 0.9 ms into the update cycle
        assertEquals(0x80, reg(CmosRtc.REG_A) & 0x80);
        clock.advanceInstructions(1_500_000); // 2.4 ms after the boundary: done
        assertEquals(0, reg(CmosRtc.REG_A) & 0x80);
        assertEquals(0x26, reg(CmosRtc.REG_A));
    }

    @Test
    void registerDReportsValidRamAndBit6Clear() {
        assertEquals(0x80, reg(CmosRtc.REG_D));
    }

    @Test
    void settingTheTimeWithSetBitTakesEffectWhenSetClears() {
        clock.advanceInstructions(10_000_000);
        write(CmosRtc.REG_B, 0x82); // SET, 24h, BCD
        write(0, 0x00);
        write(2, 0x00);
        write(4, 0x12);
        write(7, 0x01);
        write(8, 0x01);
        write(9, 0x30);
        clock.advanceInstructions(5_000_000_000L); // frozen while SET
        assertEquals(0x00, reg(0));
        write(CmosRtc.REG_B, 0x02);
        clock.advanceInstructions(3_000_000_000L);
        assertEquals(0x03, reg(0));
        assertEquals(0x12, reg(4));
        assertEquals(0x30, reg(9));
    }

    @Test
    void registerCFlagsUpdateEndedAndPeriodicAndClearsOnRead() {
        reg(CmosRtc.REG_C);
        clock.advanceInstructions(1_100_000_000L);
        int c = reg(CmosRtc.REG_C);
        assertEquals(0x10, c & 0x10); // UF: an update completed
        assertEquals(0x40, c & 0x40); // PF: 1024 Hz periodic flag set (even with PIE off)
        assertEquals(0, c & 0x80);    // no interrupt enabled: IRQF clear
        assertEquals(0, reg(CmosRtc.REG_C));
    }

    @Test
    void periodicInterruptRaisesIrq8AndReadingCLowersIt() {
        write(CmosRtc.REG_A, 0x2F); // 2 Hz
        write(CmosRtc.REG_B, 0x42); // PIE
        clock.warpToNextDeadline();
        clock.timers().runExpired();
        assertEquals(500_000_000, clock.nanos());
        assertTrue(irq8);
        assertEquals(0xC0, reg(CmosRtc.REG_C) & 0xC0);
        assertFalse(irq8);
    }

    @Test
    void alarmFlagMatchesWithDontCareFields() {
        write(1, 0xFF);              // any second
        write(3, 0x10);              // minute 10
        write(5, 0xC0);              // any hour
        write(CmosRtc.REG_B, 0x22);  // AIE
        reg(CmosRtc.REG_C);
        clock.advanceInstructions(29_500_000_000L); // 15:09:59.5
        assertEquals(0, reg(CmosRtc.REG_C) & 0x20);
        clock.advanceInstructions(1_000_000_000L);  // 15:10:00.5
        assertEquals(0xA0, reg(CmosRtc.REG_C) & 0xA0);
    }

    @Test
    void alarmWithAieTellsTheWakeLogicAtTheSecondItMatches() {
        int[] alarms = {0};
        rtc.setAlarmListener(() -> alarms[0]++);
        write(1, 0xC0);              // every second
        write(3, 0xC0);
        write(5, 0xC0);
        reg(CmosRtc.REG_C);
        clock.warpToNextDeadline();  // nothing armed without AIE
        assertEquals(0, alarms[0]);
        write(CmosRtc.REG_B, 0x22);  // AIE
        clock.warpToNextDeadline();
        clock.timers().runExpired();
        assertEquals(1_000_000_000L, clock.nanos(), "at the next second boundary");
        assertEquals(1, alarms[0]);
        assertTrue(irq8);
        clock.warpToNextDeadline();  // IRQF pending until C is read: no second alarm
        clock.timers().runExpired();
        assertEquals(1, alarms[0]);
    }

    @Test
    void memorySizeBytesFollowTheBiosLayout() {
        rtc.setMemorySize(512L << 20);
        assertEquals(640, rtc.cmosByte(0x15) | rtc.cmosByte(0x16) << 8);
        assertEquals(0xFFFF, rtc.cmosByte(0x30) | rtc.cmosByte(0x31) << 8); // KiB above 1 MiB, capped at 0xFFFF
        assertEquals((512 - 16) * 16, rtc.cmosByte(0x34) | rtc.cmosByte(0x35) << 8); // 64 KiB units
        write(0x40, 0x5A);
        assertEquals(0x5A, reg(0x40));
    }

    @Test
    void ramAboveTheHoleIsCountedInTheAbove4GibBytes() {
        rtc.setMemorySize(6L << 30); // 3 GiB below the PCI hole, 3 GiB from 4 GiB up
        assertEquals(((3L << 30) - (16 << 20)) / 65536, rtc.cmosByte(0x34) | rtc.cmosByte(0x35) << 8);
        assertEquals((3L << 30) / 65536, rtc.cmosByte(0x5B) | rtc.cmosByte(0x5C) << 8 | rtc.cmosByte(0x5D) << 16);
    }

    @Test
    void indexBit7IsTheNmiMask() {
        io.out(0x70, 1, 0x80 | CmosRtc.REG_D);
        assertTrue(rtc.nmiMasked());
        assertEquals(0x80, io.in(0x71, 1));
        io.out(0x70, 1, 0x00);
        assertFalse(rtc.nmiMasked());
    }

    @Test
    void guestGarbageNeverThrows() {
        java.util.Random r = new java.util.Random(3);
        for (int i = 0; i < 20_000; i++) {
            io.out(0x70, 1, r.nextInt(256));
            if (r.nextBoolean()) io.out(0x71, 1, r.nextInt(256)); else io.in(0x71, 1);
            clock.advanceInstructions(r.nextInt(50_000_000));
            clock.timers().runExpired();
        }
    }
}

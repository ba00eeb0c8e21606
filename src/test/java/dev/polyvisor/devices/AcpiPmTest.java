package dev.polyvisor.devices;

import dev.polyvisor.clock.VirtualClock;
import org.junit.jupiter.api.Test;

import static org.junit.jupiter.api.Assertions.*;

class AcpiPmTest {
    private static final int B = AcpiPm.DEFAULT_BASE;
    private final VirtualClock clock = VirtualClock.icount(1_000_000_000L, 1);
    private final IoBus io = new IoBus();
    private int powerOffs;
    private boolean sci;
    private final AcpiPm pm = new AcpiPm(clock, B, false, l -> sci = l, () -> powerOffs++);

    { pm.register(io); }

    @Test
    void pmTimerRunsAt3579545HzFromTheVirtualClock() {
        long t0 = io.in(B + 8, 4);
        clock.advanceInstructions(1_000_000_000L);
        long t1 = io.in(B + 8, 4);
        assertEquals(3_579_545, (t1 - t0) & 0xFFFFFF, 1);
    }

    @Test
    void timerIs24BitsWideAndSetsTmrStsWhenBit23Toggles() {
        clock.advanceInstructions(VirtualClock.ceilScale(1L << 24, 1_000_000_000L, AcpiPm.TIMER_HZ));
        assertTrue(io.in(B + 8, 4) < (1 << 24));
        assertEquals(1, io.in(B, 2) & 1);
        io.out(B, 2, 1); // write 1 to clear
        assertEquals(0, io.in(B, 2) & 1);
    }

    @Test
    void tmrEnRaisesSciAtTheNextCarry() {
        io.out(B + 2, 2, 1); // TMR_EN
        assertFalse(sci);
        clock.warpToNextDeadline();
        clock.timers().runExpired();
        assertTrue(sci);
        assertEquals(VirtualClock.ceilScale(1L << 23, 1_000_000_000L, AcpiPm.TIMER_HZ), clock.nanos());
        io.out(B, 2, 1);
        assertFalse(sci);
    }

    @Test
    void sciEnReadsSetBecauseThereIsNoSmiCommandPort() {
        assertEquals(1, io.in(B + 4, 2) & 1);
        io.out(B + 4, 2, 0);
        assertEquals(1, io.in(B + 4, 2) & 1);
    }

    @Test
    void slpTyp5WithSlpEnPowersOff() {
        io.out(B + 4, 2, 5 << 10);            // SLP_TYP only: nothing happens
        assertEquals(0, powerOffs);
        io.out(B + 4, 2, 5 << 10 | 1 << 13);  // as acpi_hw_legacy_sleep writes it
        assertEquals(1, powerOffs);
        assertEquals(0, io.in(B + 4, 2) & (1 << 13)); // SLP_EN is write-only
    }

    @Test
    void otherSleepStatesWakeImmediately() {
        io.out(B + 4, 2, 2 << 10 | 1 << 13);
        assertEquals(0, powerOffs);
        assertEquals(0x8000, io.in(B, 2) & 0x8000);
        assertFalse(pm.sleeping());
    }

    @Test
    void slpTyp1EntersS3AndAnRtcAlarmWakesOnlyWithRtcEn() {
        int[] suspends = {0}, wakes = {0};
        pm.setSleepHandlers(() -> suspends[0]++, () -> wakes[0]++);
        pm.rtcAlarm();
        assertEquals(0, wakes[0], "an alarm while awake is no wake event");
        io.out(B + 4, 2, 1 << 10 | 1 << 13);   // the s3 write: SLP_TYP 1 (QEMU's S3) with SLP_EN
        assertEquals(1, suspends[0]);
        assertTrue(pm.sleeping());
        assertEquals(0, io.in(B, 2) & 0x8000, "no WAK_STS yet");
        pm.rtcAlarm();
        assertEquals(0, wakes[0], "RTC_EN clear: the alarm does not wake");
        io.out(B + 2, 2, 0x400);                // RTC_EN
        pm.rtcAlarm();
        assertEquals(1, wakes[0]);
        assertFalse(pm.sleeping());
        assertEquals(0x8400, io.in(B, 2) & 0x8400, "WAK_STS and RTC_STS");
        assertTrue(sci, "RTC_STS with RTC_EN asserts SCI");
        io.out(B, 2, 0x8400);
        assertFalse(sci);
        assertEquals(0, powerOffs);
    }

    @Test
    void powerButtonSetsStatusAndSciWhenEnabled() {
        io.out(B + 2, 2, 0x100);
        pm.pressPowerButton();
        assertTrue(sci);
        assertEquals(0x100, io.in(B, 2) & 0x100);
        io.out(B, 4, 0x100); // dword write clears status, rewrites EN as 0
        assertFalse(sci);
    }

    @Test
    void guestGarbageNeverThrows() {
        java.util.Random r = new java.util.Random(9);
        for (int i = 0; i < 20_000; i++) {
            int p = B + r.nextInt(AcpiPm.BLOCK_LEN);
            int size = 1 << r.nextInt(3);
            if (r.nextBoolean()) io.out(p, size, r.nextLong() & ~(1L << 13)); else io.in(p, size);
            clock.advanceInstructions(r.nextInt(1_000_000));
            clock.timers().runExpired();
        }
    }
}

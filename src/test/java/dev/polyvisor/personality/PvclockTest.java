package dev.polyvisor.personality;

import dev.polyvisor.personality.core.Pvclock;
import org.junit.jupiter.api.Test;

import static org.junit.jupiter.api.Assertions.*;

/** kvm_get_time_scale (arch/x86/kvm/x86.c) examples from pv-abi.md 2.5, and pvclock_tsc_khz's inverse. */
class PvclockTest {
    @Test
    void scaleMatchesKvmGetTimeScaleExamples() {
        assertEquals(new Pvclock.Scale(0x80000000, 0), Pvclock.scaleFor(2_000_000_000L));
        assertEquals(new Pvclock.Scale((int) 3435973836L, -1), Pvclock.scaleFor(2_500_000_000L));
        assertEquals(new Pvclock.Scale(0xAAAAAAAA, -1), Pvclock.scaleFor(3_000_000_000L));
        assertEquals(new Pvclock.Scale(0x80000000, 1), Pvclock.scaleFor(1_000_000_000L));
    }

    @Test
    void guestDerivedKhzAndScaledDeltasAgreeWithTheFrequency() {
        for (long hz : new long[] {1_000_000_000L, 2_000_000_000L, 2_500_000_000L, 3_000_000_000L, 123_456_789L, 5_000_000_000L}) {
            Pvclock.Scale s = Pvclock.scaleFor(hz);
            assertNotEquals(0, s.mul(), "mul 0 would divide by zero in pvclock_tsc_khz");
            assertEquals(hz / 1000, Pvclock.tscKhz(s), 1, "kHz for " + hz);
            long oneSecond = s.scaleDelta(hz);
            assertEquals(1_000_000_000L, oneSecond, 2, "one second of TSC at " + hz);
        }
    }
}

package dev.polyvisor.clock;

import org.junit.jupiter.api.Test;

import java.util.ArrayList;
import java.util.List;
import java.util.concurrent.atomic.AtomicLong;

import static org.junit.jupiter.api.Assertions.*;

class VirtualClockTest {
    @Test
    void realtimeFollowsHostButClampsAJumpToTheMaximumStep() {
        AtomicLong host = new AtomicLong(1_000);
        VirtualClock c = VirtualClock.realtime(2_000_000_000L, host::get, 50_000_000L);
        assertEquals(0, c.nanos());
        host.addAndGet(10_000_000);          // 10 ms: taken in full
        assertEquals(10_000_000, c.nanos());
        host.addAndGet(5_000_000_000L);      // a 5 s GC pause: only 50 ms reach the guest
        assertEquals(60_000_000, c.nanos());
        host.addAndGet(1_000);
        assertEquals(60_001_000, c.nanos());
    }

    @Test
    void realtimeNeverGoesBackwardsAndStopsWhilePaused() {
        AtomicLong host = new AtomicLong(0);
        VirtualClock c = VirtualClock.realtime(1_000_000_000L, host::get, 50_000_000L);
        host.set(1_000_000);
        assertEquals(1_000_000, c.nanos());
        host.set(500_000);                   // host clock stepped back
        assertEquals(1_000_000, c.nanos());
        c.pause();
        host.addAndGet(20_000_000);
        assertEquals(1_000_000, c.nanos());
        c.resume();
        host.addAndGet(3_000);
        assertEquals(1_003_000, c.nanos());
    }

    @Test
    void icountTimeIsInstructionsTimesNanosPerInstruction() {
        VirtualClock c = VirtualClock.icount(2_000_000_000L, 4);
        c.advanceInstructions(1000);
        assertEquals(4000, c.nanos());
        assertEquals(8000, c.tsc()); // 2 GHz: 2 ticks per ns
    }

    @Test
    void icountCanPullTheRetiredInstructionCountFromTheVmm() {
        AtomicLong retired = new AtomicLong();
        VirtualClock c = VirtualClock.icount(1_000_000_000L, 2, retired::get);
        retired.set(500);
        assertEquals(1000, c.nanos());
        c.timers().schedule(5000, () -> {});
        assertEquals(4000, c.warpToNextDeadline());
        assertEquals(5000, c.nanos());
        retired.set(600);
        assertEquals(5200, c.nanos());
    }

    @Test
    void warpJumpsToTheNextDeadlineOnlyInIcountMode() {
        VirtualClock c = VirtualClock.icount(1_000_000_000L, 1);
        List<String> fired = new ArrayList<>();
        c.timers().schedule(1_000_000, () -> fired.add("a"));
        c.advanceInstructions(10);
        assertEquals(999_990, c.warpToNextDeadline());
        assertEquals(1_000_000, c.nanos());
        assertEquals(1, c.timers().runExpired());
        assertEquals(List.of("a"), fired);
        assertEquals(0, c.warpToNextDeadline()); // nothing pending
        VirtualClock rt = VirtualClock.realtime(1_000_000_000L, () -> 0, 1);
        rt.timers().schedule(5, () -> {});
        assertEquals(0, rt.warpToNextDeadline());
    }

    @Test
    void tscConversionsRoundTripAndDoNotOverflowAfterYears() {
        VirtualClock c = VirtualClock.icount(2_500_000_000L, 1);
        long tenYears = 10L * 365 * 24 * 3600 * 1_000_000_000L;
        assertEquals(tenYears / 1_000_000_000L * 2_500_000_000L, c.tscAt(tenYears));
        assertEquals(2, c.tscAt(1)); // 1 ns = 2.5 ticks, floored
        assertEquals(1, c.nanosAtTsc(2));
        assertEquals(2, c.nanosAtTsc(3));  // 3 ticks are reached at 1.2 ns: rounded up
        assertTrue(c.tscAt(c.nanosAtTsc(123_456_789)) >= 123_456_789);
    }

    @Test
    void absurdValuesSaturateInsteadOfOverflowing() {
        VirtualClock c = VirtualClock.icount(100_000_000L, 1); // a slow 100 MHz TSC
        assertEquals(Long.MAX_VALUE, c.nanosAtTsc(Long.MAX_VALUE));
        assertEquals(Long.MAX_VALUE, VirtualClock.scale(Long.MAX_VALUE, 3_000_000_000L, 1_000_000_000L));
        assertEquals(0, c.nanosAtTsc(-5));
    }

    @Test
    void defaultConstructorKeepsTheMinimalRealtimeApi() {
        VirtualClock c = new VirtualClock();
        assertEquals(VirtualClock.DEFAULT_TSC_HZ, c.tscHz());
        assertEquals(VirtualClock.Mode.REALTIME, c.mode());
        long a = c.nanos(), b = c.nanos();
        assertTrue(b >= a);
        assertEquals(c.tscAt(1_000_000_000L), 2_000_000_000L);
    }
}

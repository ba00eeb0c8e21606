package dev.polyvisor.clock;

import org.junit.jupiter.api.Test;

import java.util.ArrayList;
import java.util.List;

import static org.junit.jupiter.api.Assertions.*;

class TimerQueueTest {
    private final VirtualClock clock = VirtualClock.icount(1_000_000_000L, 1);
    private final TimerQueue q = clock.timers();
    private final List<String> log = new ArrayList<>();

    @Test
    void expiredTimersRunInDeadlineThenSchedulingOrder() {
        q.schedule(300, () -> log.add("c"));
        q.schedule(100, () -> log.add("a"));
        q.schedule(100, () -> log.add("b"));
        q.schedule(500, () -> log.add("late"));
        assertEquals(100, q.nextDeadline());
        clock.advanceInstructions(300);
        assertEquals(3, q.runExpired());
        assertEquals(List.of("a", "b", "c"), log);
        assertEquals(500, q.nextDeadline());
    }

    @Test
    void cancelledTimersDoNotRunAndNoLongerCountAsDeadlines() {
        TimerQueue.Timer t = q.schedule(100, () -> log.add("x"));
        assertTrue(t.isPending());
        t.cancel();
        assertFalse(t.isPending());
        assertEquals(Long.MAX_VALUE, q.nextDeadline());
        clock.advanceInstructions(1000);
        assertEquals(0, q.runExpired());
        assertTrue(log.isEmpty());
    }

    @Test
    void rearmingReplacesThePreviousDeadline() {
        TimerQueue.Timer t = q.newTimer(() -> log.add("t@" + clock.nanos()));
        t.arm(100);
        t.arm(250);
        clock.advanceInstructions(200);
        assertEquals(0, q.runExpired());
        clock.advanceInstructions(50);
        assertEquals(1, q.runExpired());
        assertEquals(List.of("t@250"), log);
        assertFalse(t.isPending());
    }

    @Test
    void aCallbackMayRearmItselfAndOverdueRepeatsRunInTheSamePass() {
        TimerQueue.Timer[] self = new TimerQueue.Timer[1];
        self[0] = q.newTimer(() -> {
            log.add("tick");
            long next = self[0] == null ? 0 : log.size() * 100L;
            if (log.size() < 3) self[0].arm(next);
        });
        self[0].arm(0);
        clock.advanceInstructions(1000);
        assertEquals(3, q.runExpired());
        assertEquals(3, log.size());
    }

    @Test
    void anEarlierDeadlineNotifiesTheParkedVmm() {
        int[] wakes = {0};
        q.setOnEarlierDeadline(() -> wakes[0]++);
        q.schedule(1000, () -> {});
        q.schedule(2000, () -> {});
        q.schedule(500, () -> {});
        assertEquals(2, wakes[0]);
    }
}

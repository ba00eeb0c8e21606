package dev.polyvisor.clock;

import java.util.ArrayList;
import java.util.List;
import java.util.PriorityQueue;

/**
 * Virtual-nanosecond deadlines with callbacks: every device timer (PIT channel 0, LAPIC timer, RTC
 * periodic interrupt, ACPI PM timer carry) is one entry. The VMM loop calls {@link #runExpired()} when
 * {@link #nextDeadline()} has been reached and, when every vCPU halts, warps (icount) or parks
 * (realtime) until it.
 *
 * <p>Callbacks run on the thread that calls {@link #runExpired()}, outside the queue's lock, in order
 * of deadline and then of scheduling, so icount runs are deterministic. A callback may schedule,
 * re-arm or cancel timers, including its own.
 */
public final class TimerQueue {
    private final VirtualClock clock;
    private final PriorityQueue<Entry> queue = new PriorityQueue<>();
    private long seq;
    /** Cached earliest deadline so that polling it is one volatile read. */
    private volatile long next = Long.MAX_VALUE;
    private volatile Runnable onEarlierDeadline = () -> {};

    TimerQueue(VirtualClock clock) { this.clock = clock; }

    private record Entry(long deadline, long seq, Timer timer, long gen) implements Comparable<Entry> {
        @Override public int compareTo(Entry o) {
            int c = Long.compare(deadline, o.deadline);
            return c != 0 ? c : Long.compare(seq, o.seq);
        }
    }

    /** A re-armable timer: at most one pending deadline at a time. */
    public final class Timer {
        private final Runnable action;
        private long gen;
        private long deadline = -1;

        private Timer(Runnable action) { this.action = action; }

        /** Arms (or re-arms) the timer for virtual time {@code deadlineNs}; a past deadline fires at the next run. */
        public void arm(long deadlineNs) { TimerQueue.this.arm(this, deadlineNs); }

        public void cancel() { TimerQueue.this.cancel(this); }

        public boolean isPending() { synchronized (TimerQueue.this) { return deadline >= 0; } }

        /** The pending deadline, or -1. */
        public long deadline() { synchronized (TimerQueue.this) { return deadline; } }
    }

    /** A new, unarmed timer. */
    public Timer newTimer(Runnable action) { return new Timer(action); }

    /** Schedules a one-shot callback at virtual time {@code deadlineNs}; the result can cancel it. */
    public Timer schedule(long deadlineNs, Runnable action) {
        Timer t = new Timer(action);
        t.arm(deadlineNs);
        return t;
    }

    /** Called (outside the lock) when a newly armed deadline is earlier than every other: a parked VMM should wake. */
    public void setOnEarlierDeadline(Runnable r) { onEarlierDeadline = r == null ? () -> {} : r; }

    private void arm(Timer t, long deadlineNs) {
        long dl = Math.max(0, deadlineNs);
        boolean earlier;
        synchronized (this) {
            t.gen++;
            t.deadline = dl;
            queue.add(new Entry(dl, seq++, t, t.gen));
            earlier = dl < next;
            if (earlier) next = dl;
        }
        if (earlier) onEarlierDeadline.run();
    }

    private synchronized void cancel(Timer t) {
        if (t.deadline < 0) return;
        t.gen++;
        t.deadline = -1;
        refreshNext();
    }

    /** Drops stale entries at the head and recomputes the cached earliest deadline. */
    private void refreshNext() {
        Entry e;
        while ((e = queue.peek()) != null && e.gen != e.timer.gen) queue.poll();
        next = e == null ? Long.MAX_VALUE : e.deadline;
    }

    /** The earliest pending deadline in virtual ns, or {@code Long.MAX_VALUE} if none. */
    public long nextDeadline() { return next; }

    /** Runs every timer whose deadline is at or before the clock's current time; returns how many ran. */
    public int runExpired() { return runExpired(clock.nanos()); }

    /** Runs every timer whose deadline is at or before {@code now}. */
    public int runExpired(long now) {
        int ran = 0;
        for (;;) {
            List<Runnable> due = new ArrayList<>();
            synchronized (this) {
                refreshNext();
                Entry e;
                while ((e = queue.peek()) != null && e.deadline <= now) {
                    queue.poll();
                    if (e.gen != e.timer.gen) continue;
                    e.timer.deadline = -1;
                    e.timer.gen++;
                    due.add(e.timer.action);
                }
                refreshNext();
            }
            if (due.isEmpty()) return ran;
            for (Runnable r : due) r.run();
            ran += due.size();
            // callbacks may have armed timers that are already due (e.g. an overdue periodic timer)
            if (ran > 1_000_000) return ran; // a guest programming a zero period must not hang the VMM
        }
    }
}

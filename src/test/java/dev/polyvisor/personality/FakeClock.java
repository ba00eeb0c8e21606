package dev.polyvisor.personality;

import dev.polyvisor.clock.VirtualClock;

/** A virtual clock the test moves by hand. */
final class FakeClock extends VirtualClock {
    long now;

    FakeClock(long tscHz, long startNs) {
        super(tscHz);
        now = startNs;
    }

    @Override public long nanos() { return now; }

    void advance(long ns) { now += ns; }
}

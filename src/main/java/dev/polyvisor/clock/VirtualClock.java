package dev.polyvisor.clock;

/**
 * The VM's one clock (DESIGN.md "Time"). Every guest-visible timer derives from {@link #nanos()}:
 * TSC = offset + nanos * tscHz / 1e9, PIT ticks, LAPIC timer, RTC, kvmclock, Hyper-V reference time.
 *
 * <p>This is the minimal realtime form; the timer queue, GC-pause clamping and icount mode extend it.
 */
public class VirtualClock {
    public static final long DEFAULT_TSC_HZ = 2_000_000_000L;
    private final long tscHz;
    private final long start = System.nanoTime();

    public VirtualClock() { this(DEFAULT_TSC_HZ); }

    public VirtualClock(long tscHz) { this.tscHz = tscHz; }

    /** Virtual nanoseconds since the VM was created. */
    public long nanos() { return System.nanoTime() - start; }

    public long tscHz() { return tscHz; }

    /** The TSC value at virtual time {@code ns}. */
    public long tscAt(long ns) { return scale(ns); }

    public long tsc() { return tscAt(nanos()); }

    private long scale(long ns) {
        // ns * hz / 1e9 without overflow for any realistic uptime.
        return (ns / 1_000_000_000L) * tscHz + (ns % 1_000_000_000L) * tscHz / 1_000_000_000L;
    }
}

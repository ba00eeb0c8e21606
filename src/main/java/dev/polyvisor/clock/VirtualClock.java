package dev.polyvisor.clock;

import java.util.concurrent.atomic.AtomicLong;
import java.util.function.LongSupplier;

/**
 * The VM's one clock (DESIGN.md "Time"; reference/cpu-design.md 1.9 and 4.6). Every guest-visible
 * timer derives from {@link #nanos()}: TSC = nanos * tscHz / 1e9, PIT ticks, ACPI PM timer, LAPIC
 * timer, RTC, kvmclock, Hyper-V reference time. Because they share one source, the kernel's TSC
 * calibration against the PIT is self-consistent however fast or slow the emulator runs.
 *
 * <p>Two modes:
 * <ul>
 * <li><b>realtime</b>: virtual time follows the host's {@code System.nanoTime()}, but a gap of more
 *     than {@link #maxStepNanos()} between two observations (a GC pause, a suspended host, a JIT
 *     compile storm) advances virtual time by at most that clamp: the guest "loses" host time rather
 *     than seeing a jump that trips its RCU-stall and soft-lockup watchdogs. Consequently an idle
 *     vCPU must observe the clock at least every clamp interval: park for at most
 *     {@link #maxParkNanos()} at a time.</li>
 * <li><b>icount</b>: virtual time is instructions retired times a fixed number of nanoseconds per
 *     instruction, fed by the vCPU loop through {@link #advanceInstructions(long)}. When every vCPU
 *     halts the VMM calls {@link #warpToNextDeadline()} instead of sleeping (QEMU's icount design).
 *     Nothing reads the host clock, so runs are deterministic.</li>
 * </ul>
 *
 * <p>The clock owns the VM's {@link TimerQueue} of virtual-nanosecond deadlines.
 */
public class VirtualClock {
    public static final long DEFAULT_TSC_HZ = 2_000_000_000L;
    /** Default realtime clamp: no single observation advances virtual time by more than 50 ms. */
    public static final long DEFAULT_MAX_STEP_NS = 50_000_000L;

    public enum Mode { REALTIME, ICOUNT }

    private final Mode mode;
    private final long tscHz;
    private final TimerQueue timers = new TimerQueue(this);

    // realtime state, guarded by this
    private final LongSupplier host;
    private final long maxStepNs;
    private long lastHost;
    private long virt;
    private boolean paused;

    // icount state: virtual ns from pushed instructions plus warps, and an optional pulled counter
    private final long nsPerInstruction;
    private final AtomicLong icountNs = new AtomicLong();
    private final LongSupplier retired;

    /** A realtime clock with the default 2 GHz TSC. */
    public VirtualClock() { this(DEFAULT_TSC_HZ); }

    /** A realtime clock. */
    public VirtualClock(long tscHz) { this(Mode.REALTIME, tscHz, System::nanoTime, DEFAULT_MAX_STEP_NS, 0); }

    private VirtualClock(Mode mode, long tscHz, LongSupplier host, long maxStepNs, long nsPerInstruction) {
        this(mode, tscHz, host, maxStepNs, nsPerInstruction, null);
    }

    private VirtualClock(Mode mode, long tscHz, LongSupplier host, long maxStepNs, long nsPerInstruction, LongSupplier retired) {
        if (tscHz <= 0) throw new IllegalArgumentException("TSC frequency must be positive: " + tscHz);
        this.mode = mode;
        this.tscHz = tscHz;
        this.host = host;
        this.maxStepNs = maxStepNs;
        this.nsPerInstruction = nsPerInstruction;
        this.retired = retired;
        this.lastHost = host == null ? 0 : host.getAsLong();
    }

    /** Realtime mode with a given host time source and clamp (tests inject a fake host clock). */
    public static VirtualClock realtime(long tscHz, LongSupplier hostNanos, long maxStepNs) {
        if (maxStepNs <= 0) throw new IllegalArgumentException("clamp must be positive: " + maxStepNs);
        return new VirtualClock(Mode.REALTIME, tscHz, hostNanos, maxStepNs, 0);
    }

    /** icount mode: each retired instruction is {@code nsPerInstruction} virtual nanoseconds. */
    public static VirtualClock icount(long tscHz, long nsPerInstruction) {
        if (nsPerInstruction <= 0) throw new IllegalArgumentException("ns per instruction must be positive: " + nsPerInstruction);
        return new VirtualClock(Mode.ICOUNT, tscHz, null, DEFAULT_MAX_STEP_NS, nsPerInstruction);
    }

    /**
     * icount mode where the VMM counts instructions itself: virtual time is
     * {@code instructionsRetired * nsPerInstruction} plus the warps. The supplier must never decrease.
     */
    public static VirtualClock icount(long tscHz, long nsPerInstruction, LongSupplier instructionsRetired) {
        if (nsPerInstruction <= 0) throw new IllegalArgumentException("ns per instruction must be positive: " + nsPerInstruction);
        return new VirtualClock(Mode.ICOUNT, tscHz, null, DEFAULT_MAX_STEP_NS, nsPerInstruction, instructionsRetired);
    }

    public Mode mode() { return mode; }

    public long tscHz() { return tscHz; }

    public TimerQueue timers() { return timers; }

    public long maxStepNanos() { return maxStepNs; }

    /** The longest an idle VMM thread should park in realtime mode so that no real gap is clamped away. */
    public long maxParkNanos() { return maxStepNs / 2; }

    /** Virtual nanoseconds since the VM was created; never decreases. */
    public long nanos() {
        if (mode == Mode.ICOUNT) return icountNs.get() + (retired == null ? 0 : retired.getAsLong() * nsPerInstruction);
        synchronized (this) {
            long h = host.getAsLong();
            long d = h - lastHost;
            lastHost = h;
            if (!paused && d > 0) virt += Math.min(d, maxStepNs);
            return virt;
        }
    }

    /** Stops virtual time (realtime mode); the guest does not see the time the VM spent paused. */
    public synchronized void pause() {
        if (mode == Mode.REALTIME && !paused) { nanos(); paused = true; }
    }

    public synchronized void resume() {
        if (mode == Mode.REALTIME && paused) { lastHost = host.getAsLong(); paused = false; }
    }

    /** icount mode: the vCPU retired {@code n} instructions. Ignored in realtime mode. */
    public void advanceInstructions(long n) {
        if (mode == Mode.ICOUNT && n > 0) icountNs.addAndGet(n * nsPerInstruction);
    }

    /**
     * All vCPUs are halted. In icount mode, jump virtual time to the earliest timer deadline and
     * return how far it moved (0 if the deadline has passed or there is none). Realtime mode does
     * not warp (returns 0): the VMM parks until the deadline instead.
     */
    public long warpToNextDeadline() {
        if (mode != Mode.ICOUNT) return 0;
        long dl = timers.nextDeadline();
        if (dl == Long.MAX_VALUE) return 0;
        for (;;) {
            long base = icountNs.get();
            long now = nanos();
            if (dl <= now) return 0;
            if (icountNs.compareAndSet(base, base + dl - now)) return dl - now;
        }
    }

    /** True when some timer deadline has been reached: the VMM loop should call {@code timers().runExpired()}. */
    public boolean hasExpiredTimers() { return timers.nextDeadline() <= nanos(); }

    /** The TSC value at virtual time {@code ns}. */
    public long tscAt(long ns) { return scale(ns, tscHz, 1_000_000_000L); }

    public long tsc() { return tscAt(nanos()); }

    /** The earliest virtual time at which the TSC reaches {@code tsc} (the inverse of {@link #tscAt}, rounded up). */
    public long nanosAtTsc(long tsc) {
        if (tsc <= 0) return 0;
        return ceilScale(tsc, 1_000_000_000L, tscHz);
    }

    /** floor(v * mul / div) for v >= 0 without overflow for any realistic uptime; saturates at Long.MAX_VALUE. */
    public static long scale(long v, long mul, long div) {
        if (v <= 0) return 0;
        long hi = Math.multiplyHigh(v / div, mul);
        long q = (v / div) * mul;
        long r = (v % div) * mul / div; // v % div < div, so this fits when mul and div are below ~3e9
        if (hi != 0 || q < 0 || q + r < 0) return Long.MAX_VALUE;
        return q + r;
    }

    /** ceil(v * mul / div) for v >= 0; saturates at Long.MAX_VALUE. */
    public static long ceilScale(long v, long mul, long div) {
        if (v <= 0) return 0;
        long hi = Math.multiplyHigh(v / div, mul);
        long q = (v / div) * mul;
        long r = (v % div) * mul;
        long res = q + r / div + (r % div != 0 ? 1 : 0);
        if (hi != 0 || q < 0 || res < 0) return Long.MAX_VALUE;
        return res;
    }
}

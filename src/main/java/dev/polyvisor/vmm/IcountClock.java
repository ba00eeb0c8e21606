package dev.polyvisor.vmm;

import dev.polyvisor.clock.VirtualClock;

import java.util.function.LongSupplier;

/**
 * The {@code icount} clock mode (DESIGN.md "Time"): virtual time advances by a fixed number of
 * nanoseconds per retired instruction, so a run is deterministic whatever the host speed. Halts warp
 * time forward with {@link #warp(long)}.
 */
public final class IcountClock extends VirtualClock {
    /** One instruction = 1 ns: a 1 GHz in-order machine, QEMU's {@code -icount shift=0}. */
    public static final long NS_PER_INSN = 1;
    private final LongSupplier instructions;
    private long warped;

    public IcountClock(LongSupplier instructions) { this.instructions = instructions; }

    @Override public long nanos() { return instructions.getAsLong() * NS_PER_INSN + warped; }

    /** Moves time ahead by {@code ns} (all vCPUs idle). */
    public void warp(long ns) { warped += ns; }
}

package dev.polyvisor.personality.hyperv;

/**
 * One synthetic timer's registers (TLFS "Synthetic Timers"; union hv_stimer_config in hyperv-tlfs.h):
 * CONFIG bit0 enable, bit1 periodic, bit2 lazy, bit3 auto_enable, bits 11:4 apic_vector, bit12
 * direct_mode, bits 19:16 sintx; COUNT = absolute expiry (one-shot) or period (periodic) in 100 ns units.
 * Mutable, owned by one vCPU; guarded by the personality.
 */
public final class SyntheticTimer {
    public long config;
    public long count;
    /** Reference time (100 ns) of the next expiry, or -1 when not armed. */
    public long expiry = -1;
    /** An expiry whose message could not be delivered yet (slot busy or SIMP off); retried on EOM/ticks. */
    public boolean messagePending;

    public boolean enabled() { return (config & 1) != 0; }

    public boolean periodic() { return (config & 2) != 0; }

    public boolean autoEnable() { return (config & 8) != 0; }

    public int vector() { return (int) (config >>> 4) & 0xFF; }

    public boolean direct() { return (config & (1L << 12)) != 0; }

    public int sint() { return (int) (config >>> 16) & 0xF; }

    public void disable() {
        config &= ~1L;
        expiry = -1;
    }
}

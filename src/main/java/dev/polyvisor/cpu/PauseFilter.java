package dev.polyvisor.cpu;

/**
 * PAUSE (F3 90) as AMD-V's pause filter treats it (APM Vol. 2, 15.14.4 "Pause Intercept Filtering"):
 * to the guest a NOP, but a vCPU that executes {@link #COUNT} PAUSEs in a spin loop, each within
 * {@link #GAP} of the previous one (15.14.5 "Pause Filter Threshold"), leaves its quantum so that
 * the other vCPUs run. KVM does the same on that intercept ({@code pause_interception} calling
 * {@code kvm_vcpu_on_spin}, arch/x86/kvm/svm/svm.c; defaults {@code pause_filter_count} 3000 and
 * {@code pause_filter_thresh} 128). Here all vCPUs take turns on one host thread, so a vCPU spinning
 * on another one (a lock holder, an IPI it waits for in {@code csd_lock_wait} or in the clocksource
 * watchdog's cross-CPU read) would otherwise spin out the rest of its quantum while the other vCPU
 * cannot run. The gap is counted in retired instructions rather than TSC cycles.
 */
public final class PauseFilter {
    static final int COUNT = 3000;
    static final int GAP = 128;
    private static final VcpuExit YIELD = new VcpuExit.Interrupted();

    private PauseFilter() {}

    /** One PAUSE on {@code c}; ends the vCPU's quantum after the instruction when the filter count runs out. */
    static void pause(Cpu c) {
        long now = c.instructionsRetired;
        if (now - c.lastPause > GAP) c.pauseCountdown = COUNT;
        c.lastPause = now;
        if (--c.pauseCountdown <= 0) {
            c.pauseCountdown = COUNT;
            c.pendingExit = YIELD;
            c.traceExit = true;
        }
    }

    /** The instruction handler for F3 90. */
    public static final class Pause extends dev.polyvisor.cpu.decode.Insn {
        @Override public void exec(Cpu c) { pause(c); }
    }
}

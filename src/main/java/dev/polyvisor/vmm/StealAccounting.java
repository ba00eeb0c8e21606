package dev.polyvisor.vmm;

import java.util.function.IntPredicate;

/**
 * Steal time of round-robin vCPUs. The VMM runs every vCPU on one host thread, one quantum at a time, so
 * while vCPU i runs, every other vCPU that wants to run (started and not halted) waits: that wait is
 * exactly what a paravirtual guest calls steal time - "runnable but not running" (Linux
 * kernel/sched/cputime.c steal_account_process_time; KVM's host accounts run_delay the same way,
 * arch/x86/kvm/x86.c record_steal_time). Each quantum's virtual duration is charged to the waiting
 * vCPUs and reported through {@link Sink} (the personality stack, which writes KVM's kvm_steal_time,
 * Xen's runstate time[RUNSTATE_runnable] and VMware's steal clock).
 */
public final class StealAccounting {
    /** Where the steal of each quantum goes: {@code PersonalityStack::addSteal}. */
    @FunctionalInterface
    public interface Sink { void addSteal(int vcpu, long ns); }

    private final long[] stealNs;
    private final Sink sink;

    public StealAccounting(int vcpus, Sink sink) {
        if (vcpus < 1) throw new IllegalArgumentException("vCPU count must be positive: " + vcpus);
        this.stealNs = new long[vcpus];
        this.sink = sink;
    }

    /**
     * vCPU {@code running} just ran a quantum lasting {@code ns} of virtual time; every other vCPU for
     * which {@code runnable} holds waited that long. A non-positive duration (a quantum that ended at once,
     * or a clock that did not move) charges nothing.
     */
    public void quantum(int running, long ns, IntPredicate runnable) {
        if (ns <= 0) return;
        for (int v = 0; v < stealNs.length; v++) {
            if (v == running || !runnable.test(v)) continue;
            stealNs[v] += ns;
            sink.addSteal(v, ns);
        }
    }

    /** Total steal charged to {@code vcpu} so far, in virtual ns. */
    public long stealNs(int vcpu) { return stealNs[vcpu]; }
}

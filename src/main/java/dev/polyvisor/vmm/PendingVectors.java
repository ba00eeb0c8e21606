package dev.polyvisor.vmm;

import dev.polyvisor.cpu.InterruptSource;

import java.util.ArrayDeque;

/**
 * A stand-in for a vCPU's LAPIC while none is wired: fixed vectors a personality injects (synthetic
 * timers, upcalls, IPIs) queue here and are delivered in arrival order when RFLAGS.IF=1. It has no
 * priority classes, ISR or EOI; the LAPIC model in {@code devices} replaces it.
 */
final class PendingVectors implements InterruptSource {
    private final ArrayDeque<Integer> queue = new ArrayDeque<>();

    synchronized void post(int vector) { queue.add(vector & 0xFF); }

    @Override public synchronized boolean hasPending() { return !queue.isEmpty(); }

    @Override
    public synchronized int acknowledge() {
        Integer v = queue.poll();
        return v == null ? -1 : v;
    }
}

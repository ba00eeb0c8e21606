package dev.polyvisor.personality;

import dev.polyvisor.personality.core.InterruptInjector;

import java.util.ArrayList;
import java.util.List;
import java.util.function.BooleanSupplier;

/** Records what a personality asked the VMM to do, as readable strings. */
final class RecordingInjector implements InterruptInjector {
    final List<String> events = new ArrayList<>();
    /** What block() does: by default it returns at once (a spurious return, which callers must tolerate). */
    Runnable onBlock = () -> {};

    @Override public void fixed(int vcpu, int vector) { events.add("fixed " + vcpu + " 0x" + Integer.toHexString(vector)); }

    @Override public void nmi(int vcpu) { events.add("nmi " + vcpu); }

    /** The AutoEOI vectors last set per vCPU, as a sorted list of vector numbers. */
    final java.util.Map<Integer, List<Integer>> autoEoi = new java.util.HashMap<>();

    @Override
    public void setAutoEoiVectors(int vcpu, long[] vectors) {
        List<Integer> l = new ArrayList<>();
        for (int v = 0; v < 256; v++) if ((vectors[v >> 6] >>> (v & 63) & 1) != 0) l.add(v);
        autoEoi.put(vcpu, l);
    }

    @Override public void upcall(int vcpu, int vector) { events.add("upcall " + vcpu + " 0x" + Integer.toHexString(vector)); }

    @Override public void wake(int vcpu) { events.add("wake " + vcpu); }

    @Override public void flushTlb(int vcpu) { events.add("flush " + vcpu); }

    @Override
    public void block(int vcpu, boolean ignoreIf, BooleanSupplier until, long deadlineNs) {
        events.add("block " + vcpu + (ignoreIf ? " ignoreIf" : "") + (deadlineNs == Long.MAX_VALUE ? "" : " until " + deadlineNs));
        onBlock.run();
    }

    @Override public void shutdown(String reason) { events.add("shutdown " + reason); }
}

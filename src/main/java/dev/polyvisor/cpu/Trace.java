package dev.polyvisor.cpu;

import dev.polyvisor.cpu.decode.Insn;
import dev.polyvisor.cpu.jit.CompiledTrace;

/**
 * A straight-line run of decoded instructions starting at one physical address (Bochs' trace,
 * reference/cpu-design.md 1.3): it ends at a branch or any instruction marked endsTrace, at a page
 * boundary, or after {@link TraceCache#MAX_LEN} instructions.
 */
public final class Trace {
    final long physAddr;
    final int mode;
    final Insn[] insns;
    /** Physical pages the instruction bytes came from (the second only when an instruction crosses). */
    final long page1, page2;
    volatile boolean valid = true;
    /** Linear address just past the last instruction: where a not-taken branch or a full trace continues. */
    long endLinear;
    /**
     * Direct chaining (reference/cpu-design.md 1.3; QEMU's goto_tb): the traces that ran after this one,
     * by linear address, valid while the vCPU's {@code Mmu.fetchEpoch} (which also changes with the decode
     * mode) is the one recorded. Slot 0 is the fall-through successor (at {@link #endLinear}), slot 1 the
     * last other successor (taken branch).
     *
     * <p>Traces are shared by vCPUs that may run on separate host threads, and a successor paired with
     * another vCPU's epoch could send a vCPU into another address space's code. Fetch epochs are unique
     * per vCPU, so a slot is safe to follow when its epoch is the reader's own before and after the
     * successor is read: writers ({@link #chainFall}, {@link #chainOther}) hold the trace's monitor and
     * clear the epoch before they store the successor and then the new epoch, all in order (release);
     * readers read epoch, successor, epoch in order (acquire). A plain field pair, not an immutable
     * record per slot: an allocation per chain miss cost the interpreter about 15 % (bench/cpu-vs-qemu.sh).
     */
    Trace fallNext, otherNext;
    long fallEpoch, otherEpoch, otherLinear;

    static final java.lang.invoke.VarHandle FALL_NEXT, OTHER_NEXT, FALL_EPOCH, OTHER_EPOCH, OTHER_LINEAR;
    static {
        try {
            var l = java.lang.invoke.MethodHandles.lookup();
            FALL_NEXT = l.findVarHandle(Trace.class, "fallNext", Trace.class);
            OTHER_NEXT = l.findVarHandle(Trace.class, "otherNext", Trace.class);
            FALL_EPOCH = l.findVarHandle(Trace.class, "fallEpoch", long.class);
            OTHER_EPOCH = l.findVarHandle(Trace.class, "otherEpoch", long.class);
            OTHER_LINEAR = l.findVarHandle(Trace.class, "otherLinear", long.class);
        } catch (ReflectiveOperationException e) {
            throw new ExceptionInInitializerError(e);
        }
    }

    /** Empties both slots (the trace was dropped: it keeps no successor alive). */
    void unchain() {
        chainFall(null, 0L);
        chainOther(null, 0L, 0L);
    }

    /** Sets the fall-through slot (epochs are never 0: 0 means none). */
    synchronized void chainFall(Trace next, long epoch) {
        FALL_EPOCH.setRelease(this, 0L);
        FALL_NEXT.setRelease(this, next);
        FALL_EPOCH.setRelease(this, epoch);
    }

    /** Sets the other slot. */
    synchronized void chainOther(Trace next, long linear, long epoch) {
        OTHER_EPOCH.setRelease(this, 0L);
        OTHER_LINEAR.setRelease(this, linear);
        OTHER_NEXT.setRelease(this, next);
        OTHER_EPOCH.setRelease(this, epoch);
    }

    /** JIT tier ({@code cpu.jit}): instructions retired by interpreted runs, counted towards the compile threshold. */
    public int heat;
    /**
     * JIT tier: the running vCPU's retired count at the trace's first counted run, plus one, kept while it may be a
     * loop given a head start (0: none), so that the JIT can tell a hot loop from one that earned its head start
     * slowly ({@code Jit.LOOP_WINDOW}).
     */
    public long loopSince;
    /**
     * The trace's compiled form, run instead of the handlers when set ({@code cpu.jit}). The vCPU that
     * installs it need not be the one that runs it; a plain field suffices, since a compiled trace has no
     * instance state (its handlers are the hidden class's class data, published by class definition).
     */
    public CompiledTrace compiled;

    Trace(long physAddr, int mode, Insn[] insns, long page1, long page2) {
        this.physAddr = physAddr;
        this.mode = mode;
        this.insns = insns;
        this.page1 = page1;
        this.page2 = page2;
    }

    public Insn[] insns() { return insns; }

    public boolean isValid() { return valid; }

    public long physAddr() { return physAddr; }

    /** The decode mode it was decoded in (Cpu.decodeMode). */
    public int mode() { return mode; }
}

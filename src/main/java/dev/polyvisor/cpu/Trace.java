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
     * mode) is the one recorded. {@link #fall} is the fall-through successor (at {@link #endLinear}),
     * {@link #other} the last other successor (taken branch). Traces are shared by vCPUs that may run on
     * separate host threads, so a slot is one immutable {@link Link} written at once: a reader never pairs
     * one vCPU's successor with another's epoch (fetch epochs are unique per vCPU, so a vCPU only ever
     * follows links it made itself).
     */
    Link fall, other;

    /** One chain slot: {@code next} ran at linear address {@code linear} in fetch epoch {@code epoch}. */
    record Link(Trace next, long linear, long epoch) {}
    /** JIT tier ({@code cpu.jit}): instructions retired by interpreted runs, counted towards the compile threshold. */
    public int heat;
    /**
     * The trace's compiled form, run instead of the handlers when set ({@code cpu.jit}); volatile since the
     * vCPU that installs it need not be the one that runs it.
     */
    public volatile CompiledTrace compiled;

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
}

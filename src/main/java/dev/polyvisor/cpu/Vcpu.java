package dev.polyvisor.cpu;

import dev.polyvisor.cpu.decode.Insn;

/**
 * The run loop of one vCPU (reference/cpu-design.md 1.1): check events, look up the trace at CS:RIP,
 * run it, deliver faults. Returns a lifecycle {@link VcpuExit}; exits that need an answer are
 * completed synchronously through {@link Platform}.
 */
public final class Vcpu {
    private static final VcpuExit HALT = new VcpuExit.Halt();
    private static final VcpuExit INTERRUPTED = new VcpuExit.Interrupted();

    public final Cpu cpu;
    private final TraceCache traces;

    public Vcpu(Cpu cpu, TraceCache traces) {
        this.cpu = cpu;
        this.traces = traces;
        cpu.mmu.setCodePages(traces.codePages());
    }

    /** Asks a running vCPU to return {@link VcpuExit.Interrupted} soon; safe from any thread. */
    public void interrupt() { cpu.stopRequested = true; }

    /**
     * Runs until an exit or until about {@code budget} instructions have retired (then Interrupted,
     * so the VMM can run timers between quanta).
     */
    public VcpuExit run(long budget) {
        final Cpu c = cpu;
        long limit = c.instructionsRetired + budget;
        try {
            while (c.instructionsRetired < limit) {
                if (c.stopRequested) { c.stopRequested = false; return INTERRUPTED; }
                if (c.interruptShadow) {
                    stepOne(c);
                    c.interruptShadow = false;
                    continue;
                }
                if ((c.rflags & Flags.IF) != 0 && c.interrupts.hasPending()) {
                    int v = c.interrupts.acknowledge();
                    if (v >= 0) {
                        c.halted = false;
                        deliver(c, v, -1, Interrupts.EXTERNAL);
                    }
                }
                if (c.halted) return HALT;
                runTrace(c);
                if (c.pendingExit != null) { VcpuExit e = c.pendingExit; c.pendingExit = null; return e; }
            }
            return INTERRUPTED;
        } catch (Interrupts.TripleFault tf) {
            c.halted = true;
            return new VcpuExit.Shutdown(tf.getMessage());
        }
    }

    private void runTrace(Cpu c) {
        Trace t;
        try {
            long la = c.linear(Cpu.CS, c.rip);
            long pa = c.mmu.fetchPhys(la);
            t = traces.lookup(c, la, pa);
        } catch (CpuFault f) {
            deliver(c, f.vector, f.errorCode, Interrupts.EXCEPTION);
            return;
        }
        Insn[] insns = t.insns;
        int n = 0;
        try {
            for (Insn i : insns) {
                c.prevRip = c.rip;
                c.rip += i.len;
                i.exec(c);
                n++;
                if (!t.valid) break;
            }
        } catch (CpuFault f) {
            c.rip = c.prevRip;
            c.instructionsRetired += n;
            deliver(c, f.vector, f.errorCode, Interrupts.EXCEPTION);
            return;
        }
        c.instructionsRetired += n;
    }

    /** Executes exactly one instruction (used in an interrupt shadow). */
    private void stepOne(Cpu c) {
        c.prevRip = c.rip;
        try {
            long la = c.linear(Cpu.CS, c.rip);
            long pa = c.mmu.fetchPhys(la);
            Trace t = traces.lookup(c, la, pa);
            Insn i = t.insns[0];
            c.rip += i.len;
            i.exec(c);
            c.instructionsRetired++;
        } catch (CpuFault f) {
            c.rip = c.prevRip;
            deliver(c, f.vector, f.errorCode, Interrupts.EXCEPTION);
        }
    }

    private static void deliver(Cpu c, int vector, int errorCode, int kind) {
        Interrupts.deliver(c, vector, errorCode, kind);
    }
}

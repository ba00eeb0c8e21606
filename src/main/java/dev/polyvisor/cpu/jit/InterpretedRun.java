package dev.polyvisor.cpu.jit;

import dev.polyvisor.cpu.Cpu;
import dev.polyvisor.cpu.CpuFault;
import dev.polyvisor.cpu.Trace;
import dev.polyvisor.cpu.decode.Insn;

/**
 * The interpreter's way of running a trace, as {@code Vcpu.runTrace} does it, with the
 * {@link CompiledTrace} contract: the reference the self-check and the compiler's tests compare against.
 */
final class InterpretedRun implements CompiledTrace {
    static final InterpretedRun INSTANCE = new InterpretedRun();

    @Override
    public void run(Cpu c, Trace t) {
        int n = 0;
        c.traceExit = false;
        try {
            for (Insn i : t.insns()) {
                c.prevRip = c.rip;
                c.rip += i.len;
                i.exec(c);
                n++;
                if (c.traceExit) break;
            }
        } catch (CpuFault f) {
            c.rip = c.prevRip;
            c.instructionsRetired += n;
            throw f;
        }
        c.instructionsRetired += n;
    }
}

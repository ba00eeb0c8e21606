package dev.polyvisor.cpu.jit;

import dev.polyvisor.cpu.Cpu;
import dev.polyvisor.cpu.Trace;
import dev.polyvisor.cpu.Vcpu;

/**
 * A trace compiled to bytecode. {@link #run} has the contract of the interpreter loop in
 * {@code Vcpu.runTrace}: it clears {@code traceExit}, runs the instructions (each with prevRip set and
 * RIP advanced before it), stops after one that sets {@code traceExit} (a taken branch, or a write to a code page: Mmu.codeWritten), and adds
 * the instructions that completed to {@code instructionsRetired}. On a guest fault it sets RIP back to
 * the faulting instruction, counts the instructions before it and rethrows the {@code CpuFault}.
 */
public interface CompiledTrace {
    void run(Cpu c, Trace t);

    /**
     * Runs the trace as {@link #run(Cpu, Trace)} and then, while {@code loop.again} says the vCPU's run loop
     * would only run this trace again (a loop whose back edge jumps to the trace's start), runs it again
     * without returning: QEMU chains such a block to itself. The classes {@link TraceCompiler} generates do so;
     * by default the trace runs once and the run loop decides.
     *
     * @param loop the vCPU whose run loop this is; null: run once
     */
    default void run(Cpu c, Trace t, Vcpu loop) { run(c, t); }
}

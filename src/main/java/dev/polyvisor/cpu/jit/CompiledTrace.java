package dev.polyvisor.cpu.jit;

import dev.polyvisor.cpu.Cpu;
import dev.polyvisor.cpu.Trace;

/**
 * A trace compiled to bytecode. {@link #run} has the contract of the interpreter loop in
 * {@code Vcpu.runTrace}: it clears {@code traceExit}, runs the instructions (each with prevRip set and
 * RIP advanced before it), stops after one that sets {@code traceExit} (a taken branch, or a write to a code page: Mmu.codeWritten), and adds
 * the instructions that completed to {@code instructionsRetired}. On a guest fault it sets RIP back to
 * the faulting instruction, counts the instructions before it and rethrows the {@code CpuFault}.
 */
public interface CompiledTrace {
    void run(Cpu c, Trace t);
}

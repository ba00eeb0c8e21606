/**
 * The x86-64 vCPU: architectural state ({@link dev.polyvisor.cpu.Cpu}), the run loop ({@link
 * dev.polyvisor.cpu.Vcpu}) and its exits, lazy flags, exception delivery, the debug-register breakpoints
 * ({@link dev.polyvisor.cpu.Breakpoints}) and the trace cache.
 * Subpackages: {@code decode} (opcode table, decoder), {@code exec} (instruction handlers),
 * {@code mmu} (paging, TLB), {@code model} (the CPUID model).
 *
 * <p>Depends only on {@code memory}. Knows no device and no hypervisor ABI: it reaches the outside
 * through {@link dev.polyvisor.cpu.Platform} and {@link dev.polyvisor.cpu.InterruptSource}.
 */
package dev.polyvisor.cpu;

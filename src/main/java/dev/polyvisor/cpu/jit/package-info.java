/**
 * The JIT tier (issue #12; reference/cpu-design.md 1.10): a trace that the interpreter has run often enough
 * is compiled, with the traces its branches reach in the same page (a region), to a hidden class generated
 * with {@code java.lang.classfile}, whose method runs the instructions with exactly the interpreter loop's
 * semantics (RIP, the traceExit check after each instruction that may set it, precise faults, retired
 * count) but with each handler a constant from the class data, so HotSpot devirtualizes and inlines every
 * {@code exec}. The hottest integer forms are emitted as bytecode instead of handler calls, memory
 * operands included (the operand's shape as constants, then the MMU's access method, whose TLB fast path
 * C2 inlines); the guest registers and lazy flags they use live in JVM locals ({@link
 * dev.polyvisor.cpu.jit.StateCache}, RIP in {@link dev.polyvisor.cpu.jit.RipState}), and a taken branch to
 * one of the region's blocks continues in place while the vCPU's loop would only run that trace next.
 *
 * <p>{@link dev.polyvisor.cpu.jit.Jit} holds the policy (threshold, bounded code cache, self-check);
 * {@link dev.polyvisor.cpu.jit.TraceCompiler} generates the classes. Traces keep their trace-cache
 * identity and invalidation: a compiled trace runs only while its {@code Trace} is valid.
 *
 * <p>May import {@code cpu}, {@code cpu.decode}, {@code cpu.exec}, {@code cpu.mmu}.
 */
package dev.polyvisor.cpu.jit;

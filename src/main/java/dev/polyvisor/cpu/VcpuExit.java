package dev.polyvisor.cpu;

/**
 * Why {@link Vcpu#run()} returned to the VMM: KVM's exit reasons, for a software CPU.
 *
 * <p>Exits that need an answer before the instruction can finish (port I/O, CPUID, MSRs outside the
 * CPU's own set, hypercalls) are completed in place through {@link Platform}: the CPU builds the exit,
 * the VMM answers it synchronously, and the instruction retires. That keeps KVM's split (the CPU knows
 * no device and no ABI) without the instruction-restart machinery a hardware exit needs. The lifecycle
 * exits ({@link Halt}, {@link Shutdown}, {@link Interrupted}) end {@code run()}.
 */
public sealed interface VcpuExit {
    /** IN/OUT/INS/OUTS of {@code size} bytes. For a write, {@code value} is the data. */
    record PortIo(int port, int size, boolean write, long value) implements VcpuExit {}

    /** An access to a physical address no RAM and no MMIO region claims. */
    record Mmio(long address, int size, boolean write, long value) implements VcpuExit {}

    /** CPUID with EAX = leaf, ECX = subleaf. */
    record Cpuid(int leaf, int subleaf) implements VcpuExit {}

    /** RDMSR/WRMSR of an MSR the CPU does not implement itself. */
    record Msr(int index, boolean write, long value) implements VcpuExit {}

    /** VMCALL (Intel) or VMMCALL (AMD); the handler reads and writes registers through {@link GuestContext}. */
    record Hypercall(boolean vmmcall, GuestContext context) implements VcpuExit {}

    /** HLT with no interrupt deliverable: the VMM waits for an event (or warps time) and runs again. */
    record Halt() implements VcpuExit {}

    /** Triple fault, reset request or a VMM-side stop; {@code reason} is a one-line message for the user. */
    record Shutdown(String reason) implements VcpuExit {}

    /** Another thread asked the vCPU to stop ({@link Vcpu#interrupt()}), or the instruction budget ran out. */
    record Interrupted() implements VcpuExit {}
}

package dev.polyvisor.vmm;

/**
 * Answers CPUID for the VM. By default the {@link Vm} uses the personality stack's composed
 * {@code CpuidTable} (the qemu64 model plus each personality's hypervisor leaves); an embedder may
 * swap in another source with {@link Vm#setCpuidSource}.
 */
@FunctionalInterface
public interface CpuidSource {
    /** Returns {eax, ebx, ecx, edx} for the leaf/subleaf on the given vCPU. */
    int[] cpuid(int vcpuId, int leaf, int subleaf);
}

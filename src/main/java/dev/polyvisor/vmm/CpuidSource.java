package dev.polyvisor.vmm;

/**
 * Answers CPUID for the VM. The default is {@link DefaultCpuid}; the personality engine's composed
 * CpuidTable (base model plus hypervisor leaves) replaces it when it lands.
 */
@FunctionalInterface
public interface CpuidSource {
    /** Returns {eax, ebx, ecx, edx} for the leaf/subleaf on the given vCPU. */
    int[] cpuid(int vcpuId, int leaf, int subleaf);
}

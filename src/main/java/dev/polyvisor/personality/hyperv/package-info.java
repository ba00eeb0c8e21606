/**
 * Hyper-V's enlightenment ABI as data: CPUID leaves, synthetic MSR numbers, hypercall codes and HV_STATUS
 * values from include/asm-generic/hyperv-tlfs.h and arch/x86/include/asm/hyperv-tlfs.h; the contract;
 * the reference TSC page arithmetic; the synthetic timer register; the SynIC's host-side API
 * ({@code SynicHost}) and QEMU's {@code hyperv-testdev}, which uses it (the VMM puts it on port 0x3000).
 * Behaviour lives in {@code dev.polyvisor.personality.HypervPersonality}. Imports only {@code personality.core}.
 */
package dev.polyvisor.personality.hyperv;

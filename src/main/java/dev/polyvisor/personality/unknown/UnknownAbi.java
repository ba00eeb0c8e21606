package dev.polyvisor.personality.unknown;

import dev.polyvisor.personality.core.AbiContract;

import java.util.List;

/**
 * A hypervisor no kernel knows: CPUID.1:ECX[31] (HYPERVISOR) set and the signature "FoobieVisor!" at
 * 0x40000000 (EAX = 0x40000000, the signature leaf is the only one), nothing else - no MSR, no hypercall,
 * no shared structure. Linux's detect_hypervisor_vendor() (arch/x86/kernel/cpu/hypervisor.c) matches no
 * candidate and stays native, so what differs from {@code bare} is what the hypervisor bit alone changes
 * (X86_FEATURE_HYPERVISOR checks across the kernel). The coupling matrix's second reference column.
 */
public final class UnknownAbi {
    private UnknownAbi() {}

    /** The signature, as CPUID 0x40000000 returns it in EBX, ECX, EDX. */
    public static final String SIGNATURE = "FoobieVisor!";
    public static final int SIG_EBX = le(0), SIG_ECX = le(4), SIG_EDX = le(8);

    public static final AbiContract CONTRACT = new AbiContract("unknown", List.of());

    private static int le(int at) {
        int v = 0;
        for (int i = 3; i >= 0; i--) v = v << 8 | (SIGNATURE.charAt(at + i) & 0xFF);
        return v;
    }
}

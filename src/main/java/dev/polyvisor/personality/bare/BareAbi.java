package dev.polyvisor.personality.bare;

import dev.polyvisor.personality.core.AbiContract;

import java.util.List;

/**
 * Bare hardware offers no paravirtual element: CPUID.1:ECX[31] = 0, nothing in 0x40000000-0x4000FFFF,
 * VMCALL/VMMCALL raise #UD (pv-abi.md 3; arch/x86/kernel/cpu/hypervisor.c finds no candidate).
 */
public final class BareAbi {
    private BareAbi() {}

    public static final AbiContract CONTRACT = new AbiContract("bare", List.of());
}

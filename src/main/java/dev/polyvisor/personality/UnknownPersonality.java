package dev.polyvisor.personality;

import dev.polyvisor.cpu.VcpuExit;
import dev.polyvisor.personality.core.AbiGate;
import dev.polyvisor.personality.core.MsrAccess;

import static dev.polyvisor.personality.unknown.UnknownAbi.*;

/**
 * A hypervisor the guest cannot identify ({@link dev.polyvisor.personality.unknown.UnknownAbi}): the
 * hypervisor bit and the "FoobieVisor!" signature leaf, nothing else. VMCALL/VMMCALL raise #UD and no
 * MSR is its business, as on bare hardware. Linux probes the leaf at 0x40000000 for each hypervisor it
 * knows (arch/x86/kernel/cpu/hypervisor.c, detect_hypervisor_vendor); none matches, so the kernel runs
 * its native paths with only X86_FEATURE_HYPERVISOR set (which, e.g., turns on virt_spin_lock_key in
 * arch/x86/kernel/paravirt.c).
 */
public final class UnknownPersonality implements Personality {
    private final PersonalityConfig config;
    private final AbiGate gate;

    public UnknownPersonality(PersonalityConfig config) {
        this.config = config;
        this.gate = new AbiGate(CONTRACT, config.disabled());
    }

    @Override public PersonalityConfig config() { return config; }

    @Override public AbiGate gate() { return gate; }

    /** Leaf base + 0: the maximum leaf (the base itself) and the signature; every other leaf reads zeros. */
    @Override
    public int[] cpuid(int leaf, int subleaf, int vcpu) {
        return leaf == base() ? new int[] {base(), SIG_EBX, SIG_ECX, SIG_EDX} : new int[4];
    }

    @Override public MsrAccess rdmsr(int vcpu, int index) { return MsrAccess.NOT_HANDLED; }

    @Override public MsrAccess wrmsr(int vcpu, int index, long value) { return MsrAccess.NOT_HANDLED; }

    @Override public int hypercallClaim(int vcpu) { return CLAIM_NONE; }

    @Override public boolean hypercall(VcpuExit.Hypercall call) { return false; }

    @Override public void addSteal(int vcpu, long ns) { /* no steal-time ABI */ }
}

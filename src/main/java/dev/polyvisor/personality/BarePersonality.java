package dev.polyvisor.personality;

import dev.polyvisor.cpu.VcpuExit;
import dev.polyvisor.personality.bare.BareAbi;
import dev.polyvisor.personality.core.AbiGate;
import dev.polyvisor.personality.core.MsrAccess;

/** Bare hardware: the guest must see no hypervisor (pv-abi.md 3). */
public final class BarePersonality implements Personality {
    private final PersonalityConfig config;
    private final AbiGate gate;

    public BarePersonality(PersonalityConfig config) {
        this.config = config;
        this.gate = new AbiGate(BareAbi.CONTRACT, config.disabled());
    }

    @Override public PersonalityConfig config() { return config; }

    @Override public AbiGate gate() { return gate; }

    @Override public boolean setsHypervisorBit() { return false; }

    @Override public int leafCount() { return 0; }

    @Override public int[] cpuid(int leaf, int subleaf, int vcpu) { return new int[4]; }

    @Override public MsrAccess rdmsr(int vcpu, int index) { return MsrAccess.NOT_HANDLED; }

    @Override public MsrAccess wrmsr(int vcpu, int index, long value) { return MsrAccess.NOT_HANDLED; }

    @Override public int hypercallClaim(int vcpu) { return CLAIM_NONE; }

    /** VMCALL/VMMCALL on bare hardware raise #UD. */
    @Override public boolean hypercall(VcpuExit.Hypercall call) { return false; }

    @Override public void addSteal(int vcpu, long ns) { /* no steal-time ABI on bare hardware */ }
}

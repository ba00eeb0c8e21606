package dev.polyvisor.personality;

import dev.polyvisor.cpu.GuestContext;
import dev.polyvisor.cpu.VcpuExit;
import dev.polyvisor.cpu.model.CpuModel;
import dev.polyvisor.personality.core.AbiContract;
import dev.polyvisor.personality.core.AbiGate;
import dev.polyvisor.personality.core.AbiUsage;
import dev.polyvisor.personality.core.GuestPortIo;
import dev.polyvisor.personality.core.MsrAccess;

import java.util.Optional;

/**
 * One hypervisor ABI presented to the guest at one CPUID base (DESIGN.md "Personalities"). Built from
 * a {@link PersonalityConfig} (which elements are switched off, where its leaves sit) and the VM's
 * {@link dev.polyvisor.personality.core.PersonalityEnv}; it holds the per-vCPU state the ABI needs
 * (registered shared-structure addresses, timers, steal counters, kick flags).
 *
 * <p>Sealed over the six personalities (the five ABIs and the unknown hypervisor); they live in this package because a sealed hierarchy in the
 * unnamed module must, while their ABI numbers and contracts live in the {@code bare}, {@code kvm},
 * {@code hyperv}, {@code xen} and {@code vmware} subpackages.
 *
 * <p>Threading: MSR and hypercall methods are called on the calling vCPU's thread; {@link #onTick} and
 * {@link #addSteal} on the VMM's timer thread. Implementations keep per-vCPU state in per-vCPU slots and
 * synchronize on the instance where state is shared.
 */
public sealed interface Personality
        permits BarePersonality, KvmPersonality, HypervPersonality, XenPersonality, VmwarePersonality, UnknownPersonality {

    /** Hypercall claim strengths for {@link #hypercallClaim}. */
    int CLAIM_NONE = 0, CLAIM_DEFAULT = 1, CLAIM_ENABLED = 2;

    PersonalityConfig config();

    AbiGate gate();

    default String name() { return config().name(); }

    default int base() { return config().base(); }

    default AbiContract contract() { return gate().contract(); }

    /** False only for bare: CPUID.1:ECX[31] stays clear (pv-abi.md 3). */
    default boolean setsHypervisorBit() { return true; }

    /** Number of leaves this personality occupies from its base (0 for bare). */
    default int leafCount() { return 0x100; }

    /**
     * CPUID for {@code leaf} in [base, base + 0xFF], with disabled elements' bits already cleared.
     * Leaves the personality does not define return zeros.
     */
    int[] cpuid(int leaf, int subleaf, int vcpu);

    /** The base CPU model as this personality wants the guest to see it (e.g. KVM hides invariant TSC). */
    default CpuModel adjustModel(CpuModel model) { return model; }

    MsrAccess rdmsr(int vcpu, int index);

    MsrAccess wrmsr(int vcpu, int index, long value);

    /** How strongly this personality claims VMCALL/VMMCALL from {@code vcpu}: CLAIM_NONE, _DEFAULT or _ENABLED. */
    int hypercallClaim(int vcpu);

    /** Handles a hypercall (registers through its context). False makes the CPU raise #UD. Never throws. */
    boolean hypercall(VcpuExit.Hypercall call);

    /**
     * The call a VMCALL/VMMCALL (or a backdoor port access) is making, read from the registers before it is
     * handled, for {@link dev.polyvisor.personality.core.AbiUsage}: its number and, where the ABI has one, a
     * sub-operation that the contract's {@code HypercallRef}s can be matched against. Default: RAX.
     */
    default AbiUsage.Call abiCall(GuestContext c) {
        return AbiUsage.Call.of(c.longMode() ? c.reg(0) : c.reg(0) & 0xFFFF_FFFFL);
    }

    /** Port I/O the personality owns (the VMware backdoor). */
    default Optional<GuestPortIo> portIo() { return Optional.empty(); }

    /**
     * RDPMC of a counter index the hypervisor defines itself (VMware's pseudo-performance counters
     * 0x10000-0x10002), readable at every CPL whatever CR4.PCE says; empty for any other index.
     */
    default java.util.OptionalLong pseudoCounter(int vcpu, int index) { return java.util.OptionalLong.empty(); }

    /** Whether {@link #pseudoCounter} answers {@code index}, without reading it (the CPU's privilege check asks). */
    default boolean hasPseudoCounter(int index) { return false; }

    /**
     * Whether this hypervisor's instruction emulator, which completes instructions whose memory operand is
     * emulated MMIO, reads a far pointer with REX.W as m16:64 on every vendor (see
     * {@link dev.polyvisor.cpu.Platform#mmioFarPointersHonourRexW}).
     */
    default boolean mmioFarPointersHonourRexW() { return false; }

    /** Timer hook: fires whatever is due at virtual time {@code nowNs} (Hyper-V stimers, Xen single-shot timers). */
    default void onTick(long nowNs) {}

    /** The next virtual time at which {@link #onTick} has something to do, or Long.MAX_VALUE. */
    default long nextDeadlineNs() { return Long.MAX_VALUE; }

    /** Accounts {@code ns} of steal time to {@code vcpu} and reports it through the ABI's mechanism. */
    void addSteal(int vcpu, long ns);

    /**
     * KVM PV unhalt: true if the vCPU was kicked since its last HLT; clears the flag. The VMM calls this on
     * every HLT (and while the vCPU sits halted) and resumes the vCPU at once when it is true, even with IF=0.
     */
    default boolean consumeUnhalt(int vcpu) { return false; }

    /** True when another vCPU can end a HLT executed with IF=0 (KVM PV unhalt through KICK_CPU). */
    default boolean offersUnhalt() { return false; }

    /** Xen: the callback vector taken while {@link #upcallPending} is true, else 0. */
    default int upcallVector() { return 0; }

    /** Xen: the vCPU's evtchn_upcall_pending is set and the callback vector must be delivered when IF=1. */
    default boolean upcallPending(int vcpu) { return false; }
}

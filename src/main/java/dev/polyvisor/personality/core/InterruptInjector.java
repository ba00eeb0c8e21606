package dev.polyvisor.personality.core;

import java.util.function.BooleanSupplier;

/**
 * What a personality asks of the VMM: interrupt delivery, waking and blocking vCPUs, TLB flushes and
 * shutdown. The VMM implements it over its LAPICs and vCPU threads. vCPU numbers are indices
 * 0..n-1; the CPU model makes the APIC ID equal to the index.
 */
public interface InterruptInjector {
    /** A fixed, edge-triggered interrupt into the vCPU's LAPIC IRR (Hyper-V stimer direct mode, SINTs, IPIs). */
    void fixed(int vcpu, int vector);

    /**
     * The vectors the vCPU's LAPIC acknowledges without setting their ISR bit, so they need no EOI
     * (Hyper-V SINT AutoEOI, TLFS "SINTx Registers"; KVM's synic auto_eoi_bitmap): 256 bits, vector v
     * at bit v % 64 of {@code vectors[v / 64]}. Replaces the previous set.
     */
    void setAutoEoiVectors(int vcpu, long[] vectors);

    /** An NMI to the vCPU (KVM PV send-IPI with delivery mode NMI). */
    void nmi(int vcpu);

    /**
     * Xen HVM callback vector: an external interrupt that bypasses the LAPIC IRR/ISR (no EOI), to be
     * delivered while the personality reports the vCPU's upcall as pending and RFLAGS.IF=1
     * (pv-abi.md 6.4 "Upcall delivery"; KVM host arch/x86/kvm/irq.c). This call is the edge that tells
     * the VMM to look; it must also wake the vCPU if it is halted.
     */
    void upcall(int vcpu, int vector);

    /** Makes a halted vCPU runnable again (KVM kick, Xen event on a blocked vCPU). */
    void wake(int vcpu);

    /** Flushes the vCPU's TLB before it next runs guest code (PV TLB flush hypercalls). */
    void flushTlb(int vcpu);

    /**
     * Blocks the calling vCPU (from its own thread) until {@code until} is true, an interrupt is
     * deliverable ({@code ignoreIf}: even with RFLAGS.IF=0, as Hyper-V GUEST_IDLE requires), the vCPU is
     * woken, or the VM's clock reaches {@code deadlineNs} (Long.MAX_VALUE: none). Spurious returns are allowed.
     */
    void block(int vcpu, boolean ignoreIf, BooleanSupplier until, long deadlineNs);

    /**
     * The personality has just written a guest shared structure on behalf of ABI element {@code element}
     * (an element id). Nothing for the VMM to do: the personality layer counts it (AbiUsage
     * SHARED_UPDATE), so the default ignores it.
     */
    default void sharedUpdate(String element, AbiUsage.Structure structure) { }

    /** The guest asked to power off, reboot or crash (Xen SCHEDOP_shutdown); {@code reason} is one line. */
    void shutdown(String reason);
}

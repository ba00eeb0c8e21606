package dev.polyvisor.personality.core;

import java.util.HashSet;
import java.util.Set;

/**
 * A contract with some elements switched off ({@code --abi-disable}): answers whether an element, MSR or
 * hypercall is live, and clears the CPUID bits of disabled elements from a leaf.
 */
public final class AbiGate {
    private final AbiContract contract;
    private final Set<String> disabled;
    private final Set<Integer> deadMsrs = new HashSet<>();

    public AbiGate(AbiContract contract, Set<String> disabled) {
        this.contract = contract;
        this.disabled = Set.copyOf(disabled);
        for (String id : this.disabled) {
            AbiElement e = contract.element(id).orElseThrow(() -> new IllegalArgumentException(
                    "unknown ABI element '" + id + "' for personality " + contract.personality()));
            deadMsrs.addAll(e.msrs());
        }
    }

    public AbiContract contract() { return contract; }

    public Set<String> disabled() { return disabled; }

    public boolean enabled(String id) {
        if (contract.element(id).isEmpty()) throw new IllegalStateException("no ABI element " + id + " in " + contract.personality());
        return !disabled.contains(id);
    }

    public boolean msrEnabled(int index) { return !deadMsrs.contains(index); }

    public boolean hypercallEnabled(int nr, int subop) {
        for (String id : disabled)
            for (AbiElement.HypercallRef h : contract.element(id).orElseThrow().hypercalls())
                if (h.covers(nr, subop)) return false;
        return true;
    }

    /** Clears, in place, the bits disabled elements own at {@code base + leafOffset}; returns {@code regs}. */
    public int[] mask(int leafOffset, int[] regs) {
        for (String id : disabled)
            for (AbiElement.CpuidBit b : contract.element(id).orElseThrow().cpuidBits())
                if (b.leafOffset() == leafOffset) regs[b.reg().index()] &= ~(1 << b.bit());
        return regs;
    }
}

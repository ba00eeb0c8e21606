package dev.polyvisor.personality;

import dev.polyvisor.cpu.model.CpuFeature;
import dev.polyvisor.cpu.model.CpuModel;
import dev.polyvisor.personality.core.AbiElement;
import dev.polyvisor.personality.core.AbiUsage;

import java.util.Comparator;
import java.util.List;

/**
 * The CPUID the guest sees: the base CPU model for the architectural leaves, and each personality's
 * leaves at its base in the hypervisor range.
 *
 * <p>Every leaf 0x40000000-0x4000FFFF answers: Linux's hypervisor_cpuid_base() (used by kvm_cpuid_base
 * and xen_cpuid_base, arch/x86/include/asm/processor.h) executes CPUID at all 256 bases looking for a
 * signature, so bases without a personality, and leaves a personality does not define, read as zeros -
 * no signature matches zeros, and Xen's "EAX - base >= 2" test is only applied after a signature match.
 *
 * <p>CPUID.1:ECX[31] (HYPERVISOR) is set when any personality other than bare is present. The model seen
 * by the guest is adjusted by the personality Linux will select: the one at the highest base, because
 * every detect() in arch/x86/kernel/cpu/hypervisor.c returns its base or 0x40000000 and the largest value
 * wins (pv-abi.md 9).
 */
public final class CpuidTable {
    public static final int HV_FIRST = 0x4000_0000, HV_LAST = 0x4000_FFFF;

    private final CpuModel model;
    private final List<Personality> personalities;
    private final int vcpus;
    private final boolean hypervisorBit;
    private final AbiUsage usage;

    public CpuidTable(CpuModel base, List<Personality> personalities, int vcpus) { this(base, personalities, vcpus, null); }

    /** As above, counting every hypervisor-range leaf the guest reads in {@code usage} (null: not counted). */
    public CpuidTable(CpuModel base, List<Personality> personalities, int vcpus, AbiUsage usage) {
        this.usage = usage;
        this.personalities = List.copyOf(personalities);
        this.vcpus = vcpus;
        this.hypervisorBit = personalities.stream().anyMatch(Personality::setsHypervisorBit);
        CpuModel m = base;
        Personality winner = personalities.stream().filter(Personality::setsHypervisorBit)
                .max(Comparator.comparingInt(p -> p.base() - HV_FIRST)).orElse(null);
        if (winner != null) m = winner.adjustModel(m);
        this.model = m;
    }

    /** The CPU model as the guest sees it (after the selected personality's adjustments). */
    public CpuModel model() { return model; }

    public boolean hypervisorBit() { return hypervisorBit; }

    /** The one element with CPUID bits in the personality's leaf at {@code offset}, or null (none, or several share it). */
    private static String leafElement(Personality p, int offset) {
        List<String> ids = p.contract().elements().stream()
                .filter(e -> e.cpuidBits().stream().anyMatch(b -> b.leafOffset() == offset)).map(AbiElement::id).toList();
        return ids.size() == 1 ? ids.getFirst() : null;
    }

    /** CPUID for {@code vcpu}: returns {eax, ebx, ecx, edx}. Never throws for any leaf/subleaf. */
    public int[] cpuid(int vcpu, int leaf, int subleaf) {
        if (Integer.compareUnsigned(leaf, HV_FIRST) >= 0 && Integer.compareUnsigned(leaf, HV_LAST) <= 0) {
            for (Personality p : personalities)
                if (p.leafCount() > 0 && leaf - p.base() >= 0 && leaf - p.base() < p.leafCount()) {
                    if (usage != null) usage.add(p.name(), AbiUsage.Kind.CPUID, Integer.toUnsignedLong(leaf), AbiUsage.ANY, leafElement(p, leaf - p.base()));
                    return p.cpuid(leaf, subleaf, vcpu);
                }
            // Linux probes the signature leaf at all 256 bases: counted per offset within a base, not per leaf.
            if (usage != null) usage.add(AbiUsage.NONE, AbiUsage.Kind.CPUID, leaf & 0xFF, AbiUsage.ANY, null);
            return new int[4];
        }
        int[] r = model.leaf(leaf, subleaf, vcpu, vcpus);
        if (leaf == 1 && hypervisorBit) r[2] |= CpuFeature.HYPERVISOR.mask();
        return r;
    }
}

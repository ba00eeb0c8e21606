package dev.polyvisor.personality;

import dev.polyvisor.personality.bare.BareAbi;
import dev.polyvisor.personality.core.AbiContract;
import dev.polyvisor.personality.core.AbiElement;
import dev.polyvisor.personality.hyperv.HvAbi;
import dev.polyvisor.personality.kvm.KvmAbi;
import dev.polyvisor.personality.unknown.UnknownAbi;
import dev.polyvisor.personality.vmware.VmwareAbi;
import dev.polyvisor.personality.xen.XenAbi;

import java.util.ArrayList;
import java.util.LinkedHashMap;
import java.util.List;
import java.util.Locale;
import java.util.Map;
import java.util.Optional;

/** All personalities' ABI contracts, and the text behind {@code polyvisor abi list [--personality P]}. */
public final class AbiCatalog {
    private AbiCatalog() {}

    private static final Map<String, AbiContract> CONTRACTS = new LinkedHashMap<>();

    static {
        CONTRACTS.put("bare", BareAbi.CONTRACT);
        CONTRACTS.put("kvm", KvmAbi.CONTRACT);
        CONTRACTS.put("hyperv", HvAbi.CONTRACT);
        CONTRACTS.put("xen", XenAbi.CONTRACT);
        CONTRACTS.put("vmware", VmwareAbi.CONTRACT);
        CONTRACTS.put("unknown", UnknownAbi.CONTRACT);
    }

    /** What a personality without elements presents, for the listing. */
    private static final Map<String, String> NO_ELEMENTS = Map.of(
            "bare", "no paravirtual ABI: hypervisor bit clear, no CPUID leaves",
            "unknown", "no paravirtual ABI: hypervisor bit set, signature '" + UnknownAbi.SIGNATURE
                    + "' at 0x40000000 that no kernel knows, no other leaf, MSR or hypercall");

    public static List<String> names() { return List.copyOf(CONTRACTS.keySet()); }

    /** The contract of {@code personality}; unknown names give a one-line error listing the known ones. */
    public static AbiContract contract(String personality) {
        AbiContract c = CONTRACTS.get(personality);
        if (c == null) throw new IllegalArgumentException(unknownPersonality(personality));
        return c;
    }

    static String unknownPersonality(String name) {
        return "unknown personality '" + name + "' (known: " + String.join(", ", CONTRACTS.keySet()) + ")";
    }

    /** The element {@code id} in any personality's contract. */
    public static Optional<AbiElement> element(String id) {
        int dot = id.indexOf('.');
        if (dot < 0) return Optional.empty();
        AbiContract c = CONTRACTS.get(id.substring(0, dot));
        return c == null ? Optional.empty() : c.element(id);
    }

    /**
     * Renders the contracts as text: for each element its id, kind and numbers, then what it enables in
     * Linux and the source that shows it. {@code personality} null or empty lists all personalities.
     */
    public static String render(String personality) {
        List<AbiContract> list = new ArrayList<>();
        if (personality == null || personality.isEmpty()) list.addAll(CONTRACTS.values());
        else list.add(contract(personality));
        StringBuilder sb = new StringBuilder();
        for (AbiContract c : list) {
            sb.append(c.personality()).append(" (").append(c.elements().size()).append(" elements)\n");
            if (c.elements().isEmpty()) sb.append("  (").append(NO_ELEMENTS.getOrDefault(c.personality(), "no elements")).append(")\n");
            int w = c.elements().stream().mapToInt(e -> e.id().length()).max().orElse(0);
            for (AbiElement e : c.elements()) {
                sb.append(String.format(Locale.ROOT, "  %-" + w + "s  %-16s  %s%n", e.id(),
                        e.kind().name().toLowerCase(Locale.ROOT).replace('_', '-'), e.numbers()));
                String pad = " ".repeat(w + 4);
                sb.append(pad).append("enables: ").append(e.enables()).append('\n');
                sb.append(pad).append("source:  ").append(e.source()).append('\n');
            }
            sb.append('\n');
        }
        return sb.toString();
    }
}

package dev.polyvisor.personality.core;

import java.util.HashSet;
import java.util.List;
import java.util.Optional;
import java.util.Set;

/** Every ABI element one personality offers, in the order they are listed to the user. */
public record AbiContract(String personality, List<AbiElement> elements) {
    public AbiContract {
        elements = List.copyOf(elements);
        Set<String> ids = new HashSet<>();
        Set<Integer> msrs = new HashSet<>();
        for (AbiElement e : elements) {
            if (!e.personality().equals(personality))
                throw new IllegalArgumentException(e.id() + " does not belong to personality " + personality);
            if (!ids.add(e.id())) throw new IllegalArgumentException("duplicate ABI element " + e.id());
            for (int m : e.msrs())
                if (!msrs.add(m)) throw new IllegalArgumentException("MSR 0x" + Integer.toHexString(m) + " listed twice in " + personality);
        }
    }

    public Optional<AbiElement> element(String id) {
        return elements.stream().filter(e -> e.id().equals(id)).findFirst();
    }
}

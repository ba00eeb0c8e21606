package dev.polyvisor.matrix;

import java.util.List;
import java.util.Objects;

/**
 * One cell of the plan: a personality spec (one personality, or a stack such as {@code hyperv+kvm}) and
 * the ABI elements switched off in it.
 *
 * @param personality the {@code --personality} spec
 * @param disabled    element ids switched off, sorted
 * @param role        reference column, a personality's baseline, or one element off
 */
public record CellSpec(String personality, List<String> disabled, Role role) {
    public enum Role {
        /** {@code bare} or {@code unknown}: what a kernel does with no (known) hypervisor. */
        REFERENCE,
        /** Every element of the personality on. */
        BASELINE,
        /** One element switched off. */
        ELEMENT_OFF;

        public String label() { return name().toLowerCase(java.util.Locale.ROOT).replace('_', '-'); }
    }

    public CellSpec {
        Objects.requireNonNull(personality);
        Objects.requireNonNull(role);
        disabled = disabled.stream().sorted().toList();
    }

    public static CellSpec reference(String name) { return new CellSpec(name, List.of(), Role.REFERENCE); }

    public static CellSpec baseline(String personality) { return new CellSpec(personality, List.of(), Role.BASELINE); }

    public static CellSpec without(String personality, String element) { return new CellSpec(personality, List.of(element), Role.ELEMENT_OFF); }

    /** The cell's name in reports: {@code kvm}, {@code kvm -kvm.clocksource}. */
    public String id() {
        StringBuilder b = new StringBuilder(personality);
        for (String d : disabled) b.append(" -").append(d);
        return b.toString();
    }
}

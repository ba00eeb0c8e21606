package dev.polyvisor.personality;

import java.util.Map;
import java.util.Set;

/**
 * How one personality is configured: its name, the CPUID base its leaves start at, the ABI element ids
 * switched off ({@code --abi-disable}), and personality-specific options ({@code vmware:backdoor=vmmcall}).
 * Validated against the personality's contract when the personality is built.
 */
public record PersonalityConfig(String name, int base, Set<String> disabled, Map<String, String> options) {
    public static final int FIRST_BASE = 0x4000_0000;

    public PersonalityConfig {
        disabled = Set.copyOf(disabled);
        options = Map.copyOf(options);
        if ((base & 0xFF) != 0 || Integer.compareUnsigned(base, FIRST_BASE) < 0 || Integer.compareUnsigned(base, 0x4000_FF00) > 0)
            throw new IllegalArgumentException(String.format(
                    "CPUID base 0x%x for %s must be 0x40000000..0x4000ff00 in steps of 0x100", base, name));
    }

    public static PersonalityConfig of(String name) { return new PersonalityConfig(name, FIRST_BASE, Set.of(), Map.of()); }

    public PersonalityConfig withDisabled(Set<String> ids) { return new PersonalityConfig(name, base, ids, options); }

    public PersonalityConfig withBase(int b) { return new PersonalityConfig(name, b, disabled, options); }

    public String option(String key, String dflt) { return options.getOrDefault(key, dflt); }
}

package dev.polyvisor.personality.core;

import dev.polyvisor.cpu.model.CpuidReg;

import java.util.ArrayList;
import java.util.List;
import java.util.Objects;
import java.util.regex.Pattern;

/**
 * One element of a personality's ABI: a CPUID bit, an MSR, a hypercall, a shared structure or an I/O
 * port, with the numbers the guest sees and the Linux 6.1 behaviour it enables (and the file that
 * shows it). Switching an element off ({@code --abi-disable id}) clears its CPUID bits, makes its MSRs
 * raise #GP and makes its hypercalls return the ABI's "not implemented" error.
 *
 * @param id         stable identifier {@code personality.feature}, e.g. {@code kvm.pv-eoi}
 * @param kind       what sort of element it is (the first, most visible mechanism)
 * @param numbers    the numbers as a human reads them ("0x40000001.EAX bit 6; MSR 0x4b564d04")
 * @param enables    the Linux behaviour it enables
 * @param source     the Linux file (or TLFS/Xen header) that shows it
 * @param cpuidBits  CPUID bits this element sets, relative to the personality's base
 * @param msrs       MSR indices this element owns
 * @param hypercalls hypercalls this element owns
 */
public record AbiElement(String id, Kind kind, String numbers, String enables, String source,
                         List<CpuidBit> cpuidBits, List<Integer> msrs, List<HypercallRef> hypercalls) {
    /** FEATURE_BIT: a flag reported through a hypercall rather than CPUID (Xen's XENVER_get_features). */
    public enum Kind { CPUID_BIT, FEATURE_BIT, MSR, HYPERCALL, SHARED_STRUCTURE, PORT }

    /** A CPUID bit at {@code base + leafOffset}, register {@code reg}, bit {@code bit}. */
    public record CpuidBit(int leafOffset, CpuidReg reg, int bit) {}

    /** A hypercall number, optionally narrowed to one sub-operation ({@link #ANY} = the whole call). */
    public record HypercallRef(int number, int subop) {
        public static final int ANY = -1;

        public boolean covers(int nr, int op) { return number == nr && (subop == ANY || subop == op); }
    }

    private static final Pattern ID = Pattern.compile("[a-z]+\\.[a-z0-9][a-z0-9-]*");

    public AbiElement {
        Objects.requireNonNull(kind);
        if (!ID.matcher(id).matches()) throw new IllegalArgumentException("bad ABI element id: " + id);
        cpuidBits = List.copyOf(cpuidBits);
        msrs = List.copyOf(msrs);
        hypercalls = List.copyOf(hypercalls);
    }

    public String personality() { return id.substring(0, id.indexOf('.')); }

    public static Builder of(String id, Kind kind) { return new Builder(id, kind); }

    /** Fluent construction so that contracts read like tables. */
    public static final class Builder {
        private final String id;
        private final Kind kind;
        private String numbers = "", enables = "", source = "";
        private final List<CpuidBit> bits = new ArrayList<>();
        private final List<Integer> msrs = new ArrayList<>();
        private final List<HypercallRef> calls = new ArrayList<>();

        private Builder(String id, Kind kind) { this.id = id; this.kind = kind; }

        public Builder numbers(String s) { numbers = s; return this; }

        public Builder enables(String s) { enables = s; return this; }

        public Builder source(String s) { source = s; return this; }

        public Builder cpuid(int leafOffset, CpuidReg reg, int bit) { bits.add(new CpuidBit(leafOffset, reg, bit)); return this; }

        public Builder msr(int... indices) { for (int i : indices) msrs.add(i); return this; }

        public Builder msrRange(int first, int last) { for (int i = first; i <= last; i++) msrs.add(i); return this; }

        public Builder hypercall(int nr) { calls.add(new HypercallRef(nr, HypercallRef.ANY)); return this; }

        public Builder hypercall(int nr, int subop) { calls.add(new HypercallRef(nr, subop)); return this; }

        public AbiElement build() { return new AbiElement(id, kind, numbers, enables, source, bits, msrs, calls); }
    }
}

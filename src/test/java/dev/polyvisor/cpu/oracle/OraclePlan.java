package dev.polyvisor.cpu.oracle;

import dev.polyvisor.cpu.decode.OpcodeTable;
import dev.polyvisor.cpu.decode.OpcodeTable.Entry;

import java.util.ArrayList;
import java.util.LinkedHashMap;
import java.util.List;
import java.util.Map;

/**
 * Which forms the oracle runs, in which modes, and which it skips with what reason, given the opcode table,
 * the {@code oracle.only} filter and the host's capabilities. A pure function of those, so that what a host
 * without a capability skips is testable on any host ({@code HostCapabilitiesTest}); {@link HostCpuOracleTest}
 * generates and runs the cases.
 *
 * @param forms       the forms that get cases, in table order
 * @param skipped     form id -> why it gets none (host reasons included); the coverage guard counts these
 * @param hostSkipped the ids in {@code skipped} whose reason is the host's, not the oracle's (listed only with
 *                    {@code oracle.list=true}: {@link #hostLines} says why in one line)
 * @param hostLines   one printed line per host capability that changes the run, naming it and the probe's answer
 */
record OraclePlan(List<Planned> forms, Map<String, String> skipped, List<String> hostSkipped, List<String> hostLines) {

    OraclePlan {
        forms = List.copyOf(forms);
        skipped = java.util.Collections.unmodifiableMap(new LinkedHashMap<>(skipped));
        hostSkipped = List.copyOf(hostSkipped);
        hostLines = List.copyOf(hostLines);
    }

    /** The modes a form's cases run in. */
    enum Modes {
        /** 64-bit mode only (the form has no compatibility-mode generator, or the host cannot enter that mode). */
        LONG,
        /** Compatibility mode only: the NO64 forms. */
        COMPAT,
        /** 64-bit mode, and one case in {@link Compat32#SHARE} in compatibility mode. */
        BOTH
    }

    record Planned(Entry entry, Modes modes) {}

    /** The plan for {@code table} (forms whose id contains {@code only}, when not null) on {@code host}. */
    static OraclePlan of(List<Entry> table, String only, HostCapabilities host) {
        List<Planned> forms = new ArrayList<>();
        Map<String, String> skipped = new LinkedHashMap<>();
        List<String> hostSkipped = new ArrayList<>();
        boolean compat = host.compat().present();
        String noCompat = "host cannot enter 32-bit compatibility mode (" + host.compat().observed() + ")";
        int longInstead = 0;
        boolean intImm8 = false, flow = false;
        for (Entry e : table) {
            // The system family (SystemForms) adds the CPL-3 check of privileged forms and prints its exclusions.
            if (!e.has(OpcodeTable.ORACLE) && !SystemForms.handles(e)) continue;
            String id = HostCpuOracleTest.formId(e);
            if (only != null && !id.contains(only)) continue;
            boolean system = SystemForms.handles(e);
            // NO64 forms run in compatibility mode only (Compat32); the others in both modes where Compat32 can encode them.
            String why = system ? SystemForms.unsupported(e, host) : Compat32.only(e) ? Compat32.unsupported(e) : Encoder.unsupported(e);
            if (why != null) {
                skipped.put(id, why);
                continue;
            }
            if (Compat32.only(e)) {
                if (compat) {
                    forms.add(new Planned(e, Modes.COMPAT));
                } else {
                    skipped.put(id, noCompat);
                    hostSkipped.add(id);
                }
                continue;
            }
            boolean both = !system && Compat32.unsupported(e) == null;
            if (both && !compat) longInstead++;
            forms.add(new Planned(e, both && compat ? Modes.BOTH : Modes.LONG));
            if (system && e.map() == OpcodeTable.MAP_1BYTE && e.opcode() == 0xCD) intImm8 = true;
            if (Flow.covers(e)) flow = true;
        }
        List<String> lines = new ArrayList<>();
        if (!compat && (!hostSkipped.isEmpty() || longInstead > 0))
            lines.add(String.format("oracle: %s: %d compatibility-only forms are skipped, and the other %d forms with a"
                    + " compatibility-mode share run all their cases in 64-bit mode", noCompat, hostSkipped.size(), longInstead));
        if (!host.user32Cs().present())
            lines.add(String.format("oracle: host GDT has no 32-bit user code segment at 0x23 (%s): the emulator's mirror"
                    + " of it leaves that entry empty, so 64-bit cases that name 0x23 compare the host's #GP", host.user32Cs().observed()));
        if (intImm8 && !host.intVectors().isEmpty())
            lines.add(String.format("oracle: host IDT is not Linux's at %d INT vectors (probe: %s): INT imm8 does not generate"
                    + " them; its other vectors are compared", host.intVectors().size(), host.intVectorsDescribed()));
        if (flow && !host.ntKept().present())
            lines.add(String.format("oracle: host does not keep RFLAGS.NT at CPL 3 (%s): no case starts with NT or pops"
                    + " it (POPF, IRET), so IRET's #GP for NT=1 is not compared here", host.ntKept().observed()));
        return new OraclePlan(forms, skipped, hostSkipped, lines);
    }

    /**
     * The forms of {@code table} (within {@code only}) that this plan neither runs nor skips with a reason: the
     * part of the coverage guard that does not depend on running the cases (HostCpuOracleTest adds the planned
     * forms that no generated encoding decoded to).
     */
    List<String> unaccounted(List<Entry> table, String only) {
        java.util.Set<String> planned = new java.util.HashSet<>();
        for (Planned p : forms) planned.add(HostCpuOracleTest.formId(p.entry()));
        List<String> missing = new ArrayList<>();
        for (Entry e : table) {
            String id = HostCpuOracleTest.formId(e);
            if (only != null && !id.contains(only)) continue;
            if (!planned.contains(id) && !skipped.containsKey(id)) missing.add(id);
        }
        return missing;
    }
}

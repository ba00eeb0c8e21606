package dev.polyvisor.matrix;

import com.fasterxml.jackson.annotation.JsonInclude;
import dev.polyvisor.personality.core.AbiUsage;

import java.util.List;
import java.util.Map;

/**
 * What one cell recorded (schema in docs/MATRIX.md). Everything but {@link #host} is a function of the
 * kernel, the plan and the settings: icount makes a cell's run reproducible.
 *
 * @param id           {@link CellSpec#id()}
 * @param personality  the personality spec
 * @param disabled     the element ids switched off
 * @param role         {@code reference}, {@code baseline} or {@code element-off}
 * @param reference    the id of the cell this one is compared with, or null
 * @param outcome      how the run ended
 * @param clocksource  the clocksource the kernel ended on (read from its memory), or null
 * @param clockevent   CPU 0's clockevent device, or null
 * @param instructions guest instructions retired over the whole run (all vCPUs)
 * @param virtualNanos virtual time at the end of the run
 * @param tables       the dispatch tables, path → value (a symbol name, a string, a count or a reason in angle brackets)
 * @param usage        the ABI usage counters
 * @param workloads    the micro-workloads' costs by name (empty until a workload is plugged in)
 * @param host         host-side facts that vary between runs (not compared)
 */
public record CellResult(String id, String personality, List<String> disabled, String role, String reference,
                         Outcome outcome, String clocksource, String clockevent, long instructions, long virtualNanos,
                         Map<String, String> tables, List<Usage> usage, Map<String, WorkloadCost> workloads,
                         Host host) {
    /** Outcome kinds. */
    public static final String BOOTS = "boots", WARNINGS = "warnings", PANICS = "panics", HANGS = "hangs",
            FAILS = "fails", ERROR = "error";
    /** The one {@link #tables} key of a cell whose tables could not be read; its value says why. */
    public static final String TABLES_UNREAD = "tables";

    /** True when the VMM could not read this cell's dispatch tables (e.g. a kernel payload it cannot unpack). */
    public boolean tablesUnread() { return tables.size() == 1 && tables.containsKey(TABLES_UNREAD); }

    public CellResult {
        disabled = List.copyOf(disabled);
        tables = tables == null ? Map.of() : java.util.Collections.unmodifiableMap(new java.util.LinkedHashMap<>(tables));
        usage = usage == null ? List.of() : List.copyOf(usage);
        workloads = workloads == null ? Map.of() : java.util.Collections.unmodifiableMap(new java.util.TreeMap<>(workloads));
    }

    /**
     * How a cell's run ended.
     *
     * @param kind       boots (the command ran, no warning), warnings (it ran, the kernel warned), panics,
     *                   hangs (virtual or wall timeout, or every vCPU stopped for good), fails (triple fault,
     *                   reset, no exit marker), error (an emulator error: a Polyvisor bug, not a finding)
     * @param detail     one line: the VM's end message, or empty
     * @param exitStatus the command's exit status from /init's marker, or null when it never ran
     * @param warnings   console lines with BUG:, kernel BUG at, WARNING:, unchecked MSR access, Call Trace, Kernel panic, Oops:,
     *                   general protection fault or invalid opcode: (at most 20)
     */
    @JsonInclude(JsonInclude.Include.ALWAYS)
    public record Outcome(String kind, String detail, Integer exitStatus, List<String> warnings) {
        public Outcome { warnings = warnings == null ? List.of() : List.copyOf(warnings); }
    }

    /** One usage counter (see {@link dev.polyvisor.personality.core.AbiUsage}); {@code subop} -1 when none, {@code element} null when unattributed. */
    public record Usage(String personality, String kind, long number, int subop, String element, long count) {
        /** The counter's name in reports: {@code kvm hypercall 10}, {@code xen hypercall 24/11}, {@code kvm shared-update pvclock}. */
        public String label() {
            String n = kind.equals("cpuid") || kind.endsWith("msr") || kind.endsWith("msr-gp") || kind.startsWith("port")
                    ? "0x" + Long.toHexString(number)
                    : kind.equals(AbiUsage.Kind.SHARED_UPDATE.label()) ? AbiUsage.Structure.label(number) : Long.toString(number);
            return personality + " " + kind + " " + n + (subop >= 0 ? "/" + subop : "");
        }
    }

    /** Host-side facts (wall time, whether the cell came from the cache): excluded from comparisons. */
    public record Host(long wallMillis, long cpuMillis, boolean cached) {
        /** {@code cpuMillis}: the host CPU time of the thread that ran the cell (its VM runs every vCPU on it). */
        public Host(long wallMillis, boolean cached) { this(wallMillis, 0, cached); }
    }

    public CellResult withHost(Host h) {
        return new CellResult(id, personality, disabled, role, reference, outcome, clocksource, clockevent, instructions,
                virtualNanos, tables, usage, workloads, h);
    }

    public CellResult withReference(String r) {
        return new CellResult(id, personality, disabled, role, r, outcome, clocksource, clockevent, instructions,
                virtualNanos, tables, usage, workloads, host);
    }
}

package dev.polyvisor.matrix;

import java.util.ArrayList;
import java.util.LinkedHashMap;
import java.util.LinkedHashSet;
import java.util.List;
import java.util.Locale;
import java.util.Map;
import java.util.Objects;
import java.util.Set;
import java.util.TreeMap;

/**
 * A cell against its reference (an element-off cell against its personality's baseline, a baseline and
 * {@code unknown} against {@code bare}): every observable whose value differs, with a weight in (0, 1]
 * for the heat map.
 *
 * <p>Observables: {@code outcome}; {@code instructions} (guest instructions retired, weight 4× the relative
 * change, capped at 1); every dispatch-table path; {@code usage:ID} for each ABI element's total use by the
 * guest, {@code usage:ID KIND} for what the VMM did on its behalf (interrupts injected, vCPUs woken, ...),
 * {@code usage:PERSONALITY KIND} for counters no element owns (weight 1 when one side is zero, else the
 * relative change); {@code counter:LABEL} for each single counter (detail only, not a heat-map column);
 * {@code workload:NAME instructions|exits}. A <em>coupling</em> is a change of outcome or of a table entry,
 * or a usage total or counter that went from zero to non-zero or back.
 */
public final class MatrixDiff {
    private MatrixDiff() {}

    public static final String OUTCOME = "outcome", INSTRUCTIONS = "instructions";
    /** Absent on one side. */
    public static final String ABSENT = "<absent>";

    /** Groups, in column order. */
    public enum Group { OUTCOME, COST, TABLE, USAGE, COUNTER, WORKLOAD;
        public String label() { return name().toLowerCase(Locale.ROOT); }
    }

    /** One observable that differs. */
    public record Change(String observable, Group group, String reference, String value, double weight, boolean coupling) {
        /** A heat-map column (fine counters are shown only in the detail). */
        public boolean column() { return group != Group.COUNTER; }
    }

    public static List<Change> diff(CellResult ref, CellResult cell) {
        List<Change> out = new ArrayList<>();
        String ro = outcomeText(ref), co = outcomeText(cell);
        if (!ro.equals(co)) out.add(new Change(OUTCOME, Group.OUTCOME, ro, co, 1, true));
        if (ref.instructions() != cell.instructions()) {
            double rel = relative(ref.instructions(), cell.instructions());
            out.add(new Change(INSTRUCTIONS, Group.COST, Long.toString(ref.instructions()), Long.toString(cell.instructions()),
                    Math.min(1, Math.max(0.02, 4 * rel)), false));
        }
        Set<String> paths = new LinkedHashSet<>(ref.tables().keySet());
        paths.addAll(cell.tables().keySet());
        for (String p : paths) {
            String a = ref.tables().getOrDefault(p, ABSENT), b = cell.tables().getOrDefault(p, ABSENT);
            if (!a.equals(b)) out.add(new Change(p, Group.TABLE, a, b, 1, true));
        }
        counts(out, Group.USAGE, "usage:", elementTotals(ref), elementTotals(cell));
        counts(out, Group.COUNTER, "counter:", counters(ref), counters(cell));
        Set<String> loads = new LinkedHashSet<>(ref.workloads().keySet());
        loads.addAll(cell.workloads().keySet());
        for (String w : loads) {
            WorkloadCost a = ref.workloads().get(w), b = cell.workloads().get(w);
            for (String what : List.of("instructions", "exits")) {
                Long x = a == null ? null : what.equals("exits") ? a.exits() : a.instructions();
                Long y = b == null ? null : what.equals("exits") ? b.exits() : b.instructions();
                if (Objects.equals(x, y)) continue;
                double wgt = x == null || y == null ? 1 : Math.min(1, Math.max(0.02, 4 * relative(x, y)));
                out.add(new Change("workload:" + w + " " + what, Group.WORKLOAD, x == null ? ABSENT : x.toString(),
                        y == null ? ABSENT : y.toString(), wgt, false));
            }
        }
        return out;
    }

    private static void counts(List<Change> out, Group g, String prefix, Map<String, Long> a, Map<String, Long> b) {
        Set<String> keys = new java.util.TreeSet<>(a.keySet());
        keys.addAll(b.keySet());
        for (String k : keys) {
            long x = a.getOrDefault(k, 0L), y = b.getOrDefault(k, 0L);
            if (x == y) continue;
            boolean flip = x == 0 || y == 0;
            out.add(new Change(prefix + k, g, Long.toString(x), Long.toString(y), flip ? 1 : Math.max(0.02, relative(x, y)), flip));
        }
    }

    /** What the VMM did on a personality's behalf (rather than the guest asking): counted apart from the element's own use. */
    static final Set<String> VMM_ACTIONS = Set.of("inject-fixed", "inject-nmi", "upcall", "wake", "flush-tlb", "block", "shared-update");

    /**
     * Each ABI element's total use by the guest (CPUID leaves, MSR accesses, hypercalls, backdoor and port
     * accesses it owns); what the VMM did for it ({@link #VMM_ACTIONS}) as {@code ELEMENT KIND}; counters no
     * element owns summed as {@code PERSONALITY KIND}.
     */
    static Map<String, Long> elementTotals(CellResult c) {
        Map<String, Long> m = new TreeMap<>();
        for (CellResult.Usage u : c.usage()) {
            String owner = u.element() != null ? u.element() : u.personality();
            String key = u.element() != null && !VMM_ACTIONS.contains(u.kind()) ? owner : owner + " " + u.kind();
            m.merge(key, u.count(), Long::sum);
        }
        return m;
    }

    static Map<String, Long> counters(CellResult c) {
        Map<String, Long> m = new TreeMap<>();
        for (CellResult.Usage u : c.usage()) m.merge(u.label(), u.count(), Long::sum);
        return m;
    }

    static String outcomeText(CellResult c) {
        int n = c.outcome().warnings().size();
        return c.outcome().kind() + (n == 0 ? "" : " (" + n + " warning line" + (n == 1 ? "" : "s") + ")");
    }

    static double relative(long a, long b) {
        long max = Math.max(Math.abs(a), Math.abs(b));
        return max == 0 ? 0 : Math.abs((double) a - b) / max;
    }

    /** Every cell with a reference in {@code m}, with its changes, in plan order. */
    public static Map<CellResult, List<Change>> all(MatrixResult m) {
        Map<CellResult, List<Change>> out = new LinkedHashMap<>();
        for (CellResult c : m.cells()) {
            if (c.reference() == null) continue;
            m.cell(c.reference()).ifPresent(r -> out.put(c, diff(r, c)));
        }
        return out;
    }

    /** The heat map's columns: every column observable that changes in some cell, grouped and in first-seen order. */
    public static List<String> columns(Map<CellResult, List<Change>> diffs) {
        Map<Group, Set<String>> byGroup = new TreeMap<>();
        for (List<Change> cs : diffs.values())
            for (Change c : cs) if (c.column()) byGroup.computeIfAbsent(c.group(), g -> new LinkedHashSet<>()).add(c.observable());
        List<String> cols = new ArrayList<>();
        for (var e : byGroup.entrySet()) {
            if (e.getKey() == Group.TABLE) {
                List<String> t = new ArrayList<>(e.getValue());
                List<String> seen = List.copyOf(t);
                t.sort(java.util.Comparator.comparingInt(MatrixDiff::rootRank).thenComparingInt(seen::indexOf));
                cols.addAll(t);
            } else if (e.getKey() == Group.OUTCOME || e.getKey() == Group.COST) cols.addAll(e.getValue());
            else cols.addAll(new java.util.TreeSet<>(e.getValue()));
        }
        return cols;
    }

    /** Table roots in the order DispatchTables reads them. */
    private static final List<String> ROOTS = List.of("pv_ops", "static_call", "apic", "x86_platform", "x86_init", "x86_cpuinit",
            "static_key", "clocksource", "clockevent");

    static int rootRank(String path) {
        for (int i = 0; i < ROOTS.size(); i++) if (path.startsWith(ROOTS.get(i))) return i;
        return ROOTS.size();
    }

    /** The couplings of one cell: observable → change. */
    public static Map<String, Change> couplings(List<Change> changes) {
        Map<String, Change> m = new LinkedHashMap<>();
        for (Change c : changes) if (c.coupling()) m.put(c.observable(), c);
        return m;
    }
}

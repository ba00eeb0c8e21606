package dev.polyvisor.matrix;

import java.util.ArrayList;
import java.util.LinkedHashSet;
import java.util.List;
import java.util.Map;
import java.util.Objects;
import java.util.Set;

/**
 * {@code --compare A.json B.json}: two matrices (two kernels, or one kernel under two Polyvisor versions)
 * compared coupling by coupling. For each cell present in both, a coupling (see {@link MatrixDiff}) that
 * only B has <em>appeared</em>, one only A has <em>disappeared</em>, and one both have with different
 * values <em>moved</em> (e.g. the element now switches a table entry to another function). Cells only
 * one matrix has, and cells whose own outcome differs, are listed too. Where one side's dispatch tables
 * could not be read, its table couplings were not measured: they are counted as such, never reported as
 * appeared or disappeared.
 */
public final class MatrixCompare {
    private MatrixCompare() {}

    public enum Change { APPEARED, DISAPPEARED, MOVED;
        public String label() { return name().toLowerCase(java.util.Locale.ROOT); }
    }

    /** One difference: in {@code cell}, {@code observable} went from A's (reference → value) to B's. */
    public record Entry(String cell, Change change, String observable, String a, String b) {}

    /**
     * @param unmeasured table couplings left out because one side's tables could not be read, by cell
     * @param unreadWhy  why the tables could not be read ("A: ...", "B: ...")
     */
    public record Result(List<Entry> entries, List<String> onlyInA, List<String> onlyInB, List<String> outcomes,
                         Map<String, Integer> unmeasured, Set<String> unreadWhy) {
        public int count(Change c) { return (int) entries.stream().filter(e -> e.change() == c).count(); }
    }

    public static Result compare(MatrixResult a, MatrixResult b) {
        Map<CellResult, List<MatrixDiff.Change>> da = MatrixDiff.all(a), db = MatrixDiff.all(b);
        List<Entry> entries = new ArrayList<>();
        List<String> onlyA = new ArrayList<>(), onlyB = new ArrayList<>(), outcomes = new ArrayList<>();
        Map<String, Integer> unmeasured = new java.util.LinkedHashMap<>();
        Set<String> why = new LinkedHashSet<>();
        for (CellResult ca : a.cells()) if (b.cell(ca.id()).isEmpty()) onlyA.add(ca.id());
        for (CellResult cb : b.cells()) {
            var ca = a.cell(cb.id());
            if (ca.isEmpty()) { onlyB.add(cb.id()); continue; }
            String oa = MatrixDiff.outcomeText(ca.get()), ob = MatrixDiff.outcomeText(cb);
            if (!oa.equals(ob)) outcomes.add(cb.id() + ": " + oa + " → " + ob);
            Map<String, MatrixDiff.Change> ka = MatrixDiff.couplings(da.getOrDefault(ca.get(), List.of()));
            Map<String, MatrixDiff.Change> kb = MatrixDiff.couplings(db.getOrDefault(cb, List.of()));
            Set<String> obs = new LinkedHashSet<>(ka.keySet());
            obs.addAll(kb.keySet());
            boolean unreadA = ca.get().tablesUnread(), unreadB = cb.tablesUnread();
            if (unreadA) why.add("A: " + ca.get().tables().get(CellResult.TABLES_UNREAD));
            if (unreadB) why.add("B: " + cb.tables().get(CellResult.TABLES_UNREAD));
            for (String o : obs) {
                MatrixDiff.Change x = ka.get(o), y = kb.get(o);
                MatrixDiff.Change any = x != null ? x : y;
                if ((unreadA || unreadB) && any.group() == MatrixDiff.Group.TABLE) {
                    unmeasured.merge(cb.id(), 1, Integer::sum);
                    continue;
                }
                if (x == null) entries.add(new Entry(cb.id(), Change.APPEARED, o, null, arrow(y)));
                else if (y == null) entries.add(new Entry(cb.id(), Change.DISAPPEARED, o, arrow(x), null));
                else if (!Objects.equals(arrow(x), arrow(y))) entries.add(new Entry(cb.id(), Change.MOVED, o, arrow(x), arrow(y)));
            }
        }
        return new Result(entries, onlyA, onlyB, outcomes, unmeasured, why);
    }

    private static String arrow(MatrixDiff.Change c) { return c.reference() + " → " + c.value(); }

    /** The comparison as Markdown. */
    public static String render(MatrixResult a, MatrixResult b, String nameA, String nameB) {
        Result r = compare(a, b);
        StringBuilder s = new StringBuilder();
        s.append("# Coupling matrix comparison\n\n");
        s.append("- A: ").append(nameA).append(" — kernel ").append(kernel(a)).append(", ").append(a.cells().size()).append(" cells\n");
        s.append("- B: ").append(nameB).append(" — kernel ").append(kernel(b)).append(", ").append(b.cells().size()).append(" cells\n\n");
        s.append(String.format("%d couplings appeared, %d disappeared, %d moved; %d cells only in A, %d only in B; %d cells changed outcome.%n",
                r.count(Change.APPEARED), r.count(Change.DISAPPEARED), r.count(Change.MOVED), r.onlyInA().size(), r.onlyInB().size(),
                r.outcomes().size()));
        if (!r.unmeasured().isEmpty()) {
            int n = r.unmeasured().values().stream().mapToInt(Integer::intValue).sum();
            s.append(String.format("%nNot compared: %d table couplings in %d cells, whose dispatch tables could not be read (%s).%n",
                    n, r.unmeasured().size(), MatrixMarkdown.md(String.join("; ", r.unreadWhy()))));
        }
        if (!r.outcomes().isEmpty()) {
            s.append("\n## Outcomes\n\n");
            for (String o : r.outcomes()) s.append("- ").append(MatrixMarkdown.md(o)).append('\n');
        }
        String cell = null;
        for (Entry e : r.entries()) {
            if (!e.cell().equals(cell)) {
                s.append("\n## ").append(MatrixMarkdown.md(e.cell())).append("\n\n");
                cell = e.cell();
            }
            s.append("- ").append(e.change().label()).append(" `").append(e.observable()).append("`: ");
            switch (e.change()) {
                case APPEARED -> s.append(MatrixMarkdown.md(e.b()));
                case DISAPPEARED -> s.append(MatrixMarkdown.md(e.a()));
                case MOVED -> s.append("A ").append(MatrixMarkdown.md(e.a())).append("; B ").append(MatrixMarkdown.md(e.b()));
            }
            s.append('\n');
        }
        if (!r.onlyInA().isEmpty()) s.append("\nOnly in A: ").append(String.join(", ", r.onlyInA())).append('\n');
        if (!r.onlyInB().isEmpty()) s.append("\nOnly in B: ").append(String.join(", ", r.onlyInB())).append('\n');
        return s.toString();
    }

    private static String kernel(MatrixResult m) {
        String rel = m.kernel().release() == null ? "?" : m.kernel().release();
        return "`" + rel + "` (sha256 " + m.kernel().sha256().substring(0, Math.min(12, m.kernel().sha256().length())) + "…)";
    }
}

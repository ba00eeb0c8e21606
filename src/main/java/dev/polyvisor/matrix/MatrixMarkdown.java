package dev.polyvisor.matrix;

import java.util.List;
import java.util.Map;

/** matrix.md: the summary table, then each cell's couplings against its reference. */
public final class MatrixMarkdown {
    private MatrixMarkdown() {}

    public static String render(MatrixResult m) {
        StringBuilder b = new StringBuilder();
        MatrixResult.Kernel k = m.kernel();
        b.append("# ABI coupling matrix\n\n");
        b.append("Kernel ").append(k.release() == null ? "?" : "`" + k.release() + "`");
        if (k.pkg() != null) b.append(" (").append(k.pkg()).append(k.version() == null ? "" : " " + k.version()).append(")");
        b.append(", bzImage sha256 `").append(k.sha256(), 0, Math.min(16, k.sha256().length())).append("…`; ")
                .append(m.settings().smp()).append(" vCPUs, ").append(m.settings().memoryMiB()).append(" MiB, icount, workload `")
                .append(m.settings().workload()).append("`.\n\n");
        b.append("Command line: `").append(m.settings().commandLine()).append("`\n\n");
        Map<CellResult, List<MatrixDiff.Change>> diffs = MatrixDiff.all(m);
        b.append("| cell | compared with | outcome | clocksource | clockevent | instructions | couplings |\n");
        b.append("|---|---|---|---|---|---:|---:|\n");
        for (CellResult c : m.cells()) {
            List<MatrixDiff.Change> d = diffs.get(c);
            b.append("| ").append(md(c.id())).append(" | ").append(c.reference() == null ? "" : md(c.reference())).append(" | ")
                    .append(md(MatrixDiff.outcomeText(c))).append(" | ").append(md(nz(c.clocksource()))).append(" | ")
                    .append(md(nz(c.clockevent()))).append(" | ").append(c.instructions()).append(" | ")
                    .append(d == null ? "" : Long.toString(MatrixDiff.couplings(d).size())).append(" |\n");
        }
        b.append("\nA coupling is a dispatch-table entry or the outcome that differs from the reference cell, or an ABI element's")
                .append(" use that went from zero to non-zero or back. Counter and cost changes are in matrix.json and matrix.html.\n");
        for (CellResult c : m.cells()) {
            List<MatrixDiff.Change> d = diffs.get(c);
            if (d == null) continue;
            b.append("\n## ").append(md(c.id())).append(" (vs ").append(md(c.reference())).append(")\n\n");
            Map<String, MatrixDiff.Change> cp = MatrixDiff.couplings(d);
            if (cp.isEmpty()) b.append("No coupling: the kernel bound the same tables and used the same elements.\n");
            for (MatrixDiff.Change ch : cp.values())
                b.append("- `").append(ch.observable()).append("`: ").append(md(ch.reference())).append(" → ").append(md(ch.value())).append('\n');
            for (MatrixDiff.Change ch : d)
                if (ch.observable().equals(MatrixDiff.INSTRUCTIONS))
                    b.append("- instructions: ").append(ch.reference()).append(" → ").append(ch.value())
                            .append(String.format(java.util.Locale.ROOT, " (%+.1f%%)", 100.0 * (Long.parseLong(ch.value()) - Long.parseLong(ch.reference())) / Math.max(1, Long.parseLong(ch.reference()))))
                            .append('\n');
            if (!c.outcome().warnings().isEmpty()) {
                b.append("\nConsole warnings:\n\n```\n");
                for (String w : c.outcome().warnings()) b.append(w).append('\n');
                b.append("```\n");
            }
        }
        return b.toString();
    }

    private static String nz(String s) { return s == null ? "" : s; }

    static String md(String s) { return s == null ? "" : s.replace("|", "\\|").replace("\n", " "); }
}

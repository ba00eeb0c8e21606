package dev.polyvisor.matrix;

import java.util.ArrayList;
import java.util.HashMap;
import java.util.LinkedHashMap;
import java.util.List;
import java.util.Locale;
import java.util.Map;

/**
 * matrix.html: one self-contained page (inline CSS and JS, no external asset) with the heat map of cells
 * (rows, grouped by personality) × observables (columns: the outcome, the instruction count, every
 * dispatch-table entry that differs from its reference in some cell, each ABI element's use, the
 * workloads), a cell's colour saying how much it changed, and below it each cell's exact diff against
 * its reference. Clicking a heat-map cell opens that diff and marks the observable (a plain link to it
 * without JavaScript).
 */
public final class MatrixHtml {
    private MatrixHtml() {}

    private static final String CSS = """
            body{font:13px/1.4 system-ui,sans-serif;margin:16px;color:#222}
            h1{font-size:20px;margin:0 0 4px}h2{font-size:16px;margin:24px 0 6px}
            .meta{color:#555;margin:0 0 8px}code{font:12px ui-monospace,monospace}
            .wrap{overflow:auto;max-width:100%;border:1px solid #ccc}
            table.heat{border-collapse:collapse}
            table.heat th,table.heat td{border:1px solid #e4e4e4;padding:0}
            table.heat thead th{background:#f6f6f6;font-weight:normal;position:sticky;top:0}
            table.heat th.grp{font-weight:bold;text-align:left;padding:2px 2px;white-space:nowrap}
            table.heat th.grp div{overflow:hidden;text-overflow:ellipsis}
            table.heat th.col{vertical-align:bottom;height:220px}
            table.heat th.col div{writing-mode:vertical-rl;transform:rotate(180deg);white-space:nowrap;font:11px ui-monospace,monospace;padding:4px 1px;max-height:215px;overflow:hidden}
            table.heat tbody th{text-align:left;white-space:nowrap;padding:1px 6px;font:12px ui-monospace,monospace;background:#fafafa;position:sticky;left:0}
            table.heat tbody tr.pers th{background:#eef;font:bold 12px system-ui,sans-serif}
            table.heat td{width:14px;min-width:14px;height:16px}
            table.heat td.c{cursor:pointer}
            table.heat td.c:hover{outline:2px solid #000}
            table.heat td.o{width:auto;min-width:60px;padding:0 4px;font:11px ui-monospace,monospace;white-space:nowrap}
            .k-boots{color:#060}.k-warnings{color:#a60}.k-panics,.k-fails,.k-error{color:#b00;font-weight:bold}.k-hangs{color:#a0a;font-weight:bold}
            .legend span{display:inline-block;width:14px;height:12px;vertical-align:middle;margin:0 3px 0 10px;border:1px solid #ccc}
            details{margin:4px 0;border:1px solid #ddd;border-radius:3px;padding:2px 6px}
            details[open]{background:#fcfcff}
            summary{cursor:pointer;font:12px ui-monospace,monospace}
            table.diff{border-collapse:collapse;margin:6px 0;font:12px ui-monospace,monospace}
            table.diff td,table.diff th{border:1px solid #e4e4e4;padding:1px 6px;text-align:left;vertical-align:top}
            table.diff tr.hl td{background:#ffec99}
            pre{background:#f6f6f6;padding:6px;overflow:auto;font:11px ui-monospace,monospace}
            """;

    /**
     * A click on a heat-map cell sets the location hash to {@code #diff-N:OBSERVABLE} (so a finding can be
     * linked to); the hash opens that cell's diff and marks the observable's row, on load too.
     */
    private static final String JS = """
            function pvShow(hash) {
              var m = /^#(diff-[0-9]+)(?::(.*))?$/.exec(hash || '');
              if (!m) return;
              var d = document.getElementById(m[1]);
              if (!d) return;
              d.open = true;
              var rows = document.querySelectorAll('table.diff tr.hl');
              for (var i = 0; i < rows.length; i++) rows[i].classList.remove('hl');
              var obs = m[2] ? decodeURIComponent(m[2]) : null, tr = null;
              if (obs) {
                var all = d.querySelectorAll('tr[data-obs]');
                for (var j = 0; j < all.length; j++) if (all[j].dataset.obs === obs) tr = all[j];
              }
              if (tr) tr.classList.add('hl');
              (tr || d).scrollIntoView({block: 'center'});
            }
            document.getElementById('matrix').addEventListener('click', function (e) {
              var td = e.target.closest('td.c');
              if (!td) return;
              e.preventDefault();
              location.hash = td.dataset.diff + ':' + encodeURIComponent(td.dataset.obs);
            });
            window.addEventListener('hashchange', function () { pvShow(location.hash); });
            pvShow(location.hash);
            document.documentElement.setAttribute('data-ready', '1');
            """;

    /** Colour of a group's changes (RGB). */
    private static String rgb(MatrixDiff.Group g) {
        return switch (g) {
            case OUTCOME -> "150,0,170";
            case COST, WORKLOAD -> "20,130,40";
            case TABLE -> "210,40,30";
            case USAGE, COUNTER -> "30,90,200";
        };
    }

    public static String render(MatrixResult m) {
        Map<CellResult, List<MatrixDiff.Change>> diffs = MatrixDiff.all(m);
        List<String> cols = MatrixDiff.columns(diffs);
        Map<String, MatrixDiff.Group> groupOf = new HashMap<>();
        for (List<MatrixDiff.Change> cs : diffs.values()) for (MatrixDiff.Change c : cs) groupOf.putIfAbsent(c.observable(), c.group());
        Map<String, Integer> rowOf = new HashMap<>();
        for (int i = 0; i < m.cells().size(); i++) rowOf.put(m.cells().get(i).id(), i);

        StringBuilder b = new StringBuilder(1 << 16);
        b.append("<!DOCTYPE html>\n<html lang=\"en\"><head><meta charset=\"utf-8\"><title>ABI coupling matrix</title>\n<style>")
                .append(CSS).append("</style></head><body>\n");
        MatrixResult.Kernel k = m.kernel();
        b.append("<h1>ABI coupling matrix</h1>\n<p class=\"meta\">Kernel <code>").append(esc(k.release() == null ? "?" : k.release()))
                .append("</code>").append(k.pkg() == null ? "" : " (" + esc(k.pkg()) + (k.version() == null ? "" : " " + esc(k.version())) + ")")
                .append(", sha256 <code>").append(esc(k.sha256())).append("</code>; ").append(m.settings().smp()).append(" vCPUs, ")
                .append(m.settings().memoryMiB()).append(" MiB, icount; workload <code>").append(esc(m.settings().workload()))
                .append("</code>; ").append(m.cells().size()).append(" cells.<br>Command line: <code>").append(esc(m.settings().commandLine()))
                .append("</code></p>\n");
        b.append("<p class=\"legend\">Each row is a cell compared with its reference (an element switched off vs its personality's")
                .append(" baseline; a baseline and <code>unknown</code> vs <code>bare</code>); a coloured square is an observable that differs,")
                .append(" darker for a larger change. Click one for the exact diff.")
                .append("<span style=\"background:rgb(").append(rgb(MatrixDiff.Group.TABLE)).append(")\"></span>dispatch table")
                .append("<span style=\"background:rgb(").append(rgb(MatrixDiff.Group.USAGE)).append(")\"></span>ABI use")
                .append("<span style=\"background:rgb(").append(rgb(MatrixDiff.Group.COST)).append(")\"></span>cost")
                .append("<span style=\"background:rgb(").append(rgb(MatrixDiff.Group.OUTCOME)).append(")\"></span>outcome</p>\n");

        // Header: one row of group spans, one of column names.
        b.append("<div class=\"wrap\"><table id=\"matrix\" class=\"heat\"><thead><tr><th class=\"grp\">cell</th><th class=\"grp\">ends</th>");
        List<String[]> spans = new ArrayList<>();
        for (String c : cols) {
            String s = section(c, groupOf.get(c));
            if (spans.isEmpty() || !spans.getLast()[0].equals(s)) spans.add(new String[] {s, "0"});
            spans.getLast()[1] = Integer.toString(Integer.parseInt(spans.getLast()[1]) + 1);
        }
        for (String[] s : spans)
            b.append("<th class=\"grp\" colspan=\"").append(s[1]).append("\" title=\"").append(esc(s[0])).append("\"><div style=\"max-width:")
                    .append(15 * Integer.parseInt(s[1]) - 4).append("px\">").append(esc(s[0])).append("</div></th>");
        b.append("</tr>\n<tr><th></th><th class=\"col\"><div>outcome · clocksource</div></th>");
        for (String c : cols) b.append("<th class=\"col\" title=\"").append(esc(c)).append("\"><div>").append(esc(c)).append("</div></th>");
        b.append("</tr></thead>\n<tbody>\n");
        String lastPersonality = null;
        for (CellResult c : m.cells()) {
            String group = c.role().equals(CellSpec.Role.REFERENCE.label()) ? "references" : c.personality();
            if (!group.equals(lastPersonality)) {
                b.append("<tr class=\"pers\"><th colspan=\"").append(cols.size() + 2).append("\">").append(esc(group)).append("</th></tr>\n");
                lastPersonality = group;
            }
            int row = rowOf.get(c.id());
            List<MatrixDiff.Change> d = diffs.get(c);
            Map<String, MatrixDiff.Change> byObs = new LinkedHashMap<>();
            if (d != null) for (MatrixDiff.Change ch : d) byObs.put(ch.observable(), ch);
            b.append("<tr><th>").append(d == null ? esc(c.id()) : "<a href=\"#diff-" + row + "\">" + esc(c.id()) + "</a>").append("</th>");
            b.append("<td class=\"o k-").append(esc(c.outcome().kind())).append("\">").append(esc(c.outcome().kind()))
                    .append(c.clocksource() == null ? "" : " · " + esc(c.clocksource())).append("</td>");
            for (String col : cols) {
                MatrixDiff.Change ch = byObs.get(col);
                if (ch == null) { b.append("<td></td>"); continue; }
                double a = 0.15 + 0.85 * Math.min(1, ch.weight());
                b.append("<td class=\"c\" data-diff=\"diff-").append(row).append("\" data-obs=\"").append(esc(col))
                        .append("\" style=\"background:rgba(").append(rgb(ch.group())).append(',')
                        .append(String.format(Locale.ROOT, "%.2f", a)).append(")\" title=\"").append(esc(c.id() + "\n" + col + "\n"
                                + ch.reference() + " → " + ch.value())).append("\"></td>");
            }
            b.append("</tr>\n");
        }
        b.append("</tbody></table></div>\n");

        b.append("<h2>Diffs against the reference</h2>\n");
        for (CellResult c : m.cells()) {
            List<MatrixDiff.Change> d = diffs.get(c);
            if (d == null) continue;
            int row = rowOf.get(c.id());
            b.append("<details id=\"diff-").append(row).append("\"><summary>").append(esc(c.id())).append(" vs ").append(esc(c.reference()))
                    .append(": ").append(esc(MatrixDiff.outcomeText(c))).append(", ").append(MatrixDiff.couplings(d).size())
                    .append(" couplings, ").append(d.size()).append(" changes</summary>\n<table class=\"diff\"><tr><th>group</th><th>observable</th><th>")
                    .append(esc(c.reference())).append("</th><th>").append(esc(c.id())).append("</th></tr>\n");
            for (MatrixDiff.Change ch : d)
                b.append("<tr data-obs=\"").append(esc(ch.observable())).append("\"><td>").append(ch.group().label())
                        .append(ch.coupling() ? " ●" : "").append("</td><td>").append(esc(ch.observable())).append("</td><td>")
                        .append(esc(ch.reference())).append("</td><td>").append(esc(ch.value())).append("</td></tr>\n");
            b.append("</table>\n");
            if (!c.outcome().detail().isEmpty()) b.append("<p>").append(esc(c.outcome().detail())).append("</p>\n");
            if (!c.outcome().warnings().isEmpty()) b.append("<pre>").append(esc(String.join("\n", c.outcome().warnings()))).append("</pre>\n");
            b.append("</details>\n");
        }
        b.append("<script>").append(JS).append("</script>\n</body></html>\n");
        return b.toString();
    }

    /** The header group of a column: outcome, cost, the table's root (pv_ops, apic, clockevent, ...), usage or workload. */
    static String section(String observable, MatrixDiff.Group g) {
        if (g == null) return "";
        return switch (g) {
            case TABLE -> {
                int cut = observable.length();
                for (char ch : new char[] {'.', '['}) { int i = observable.indexOf(ch); if (i > 0) cut = Math.min(cut, i); }
                yield observable.substring(0, cut);
            }
            default -> g.label();
        };
    }

    static String esc(String s) {
        if (s == null) return "";
        StringBuilder b = new StringBuilder(s.length());
        for (char c : s.toCharArray())
            switch (c) {
                case '<' -> b.append("&lt;");
                case '>' -> b.append("&gt;");
                case '&' -> b.append("&amp;");
                case '"' -> b.append("&quot;");
                case '\n' -> b.append("&#10;");
                default -> b.append(c);
            }
        return b.toString();
    }
}

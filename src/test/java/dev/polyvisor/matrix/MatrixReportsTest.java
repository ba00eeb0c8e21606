package dev.polyvisor.matrix;

import dev.polyvisor.vmm.Outcome;
import org.junit.jupiter.api.Test;

import java.nio.file.Files;
import java.nio.file.Path;
import java.util.List;
import java.util.Map;

import static org.junit.jupiter.api.Assertions.*;

/** Diff, JSON, Markdown, HTML, comparison and classification, on synthetic cells: nothing boots. */
class MatrixReportsTest {
    private final MatrixResult m = Cells.matrix(false, "ab".repeat(32));

    @Test
    void aCellIsDiffedAgainstItsReference() {
        Map<CellResult, List<MatrixDiff.Change>> d = MatrixDiff.all(m);
        assertEquals(3, d.size(), "bare has no reference");
        CellResult noClock = m.cell("kvm -kvm.clocksource").orElseThrow();
        Map<String, MatrixDiff.Change> c = MatrixDiff.couplings(d.get(noClock));
        assertEquals("kvm_sched_clock_read", c.get("static_call.pv_sched_clock").reference());
        assertEquals("native_sched_clock", c.get("static_call.pv_sched_clock").value());
        assertEquals("tsc", c.get("clocksource.name").value());
        assertEquals("0", c.get("usage:kvm.clocksource").value());
        assertFalse(c.containsKey("apic.send_IPI_mask"));
        assertFalse(c.containsKey("usage:kvm.pv-send-ipi"), "700 → 690 is a change, not a coupling");
        MatrixDiff.Change ipi = d.get(noClock).stream().filter(x -> x.observable().equals("usage:kvm.pv-send-ipi")).findFirst().orElseThrow();
        assertTrue(ipi.weight() > 0 && ipi.weight() < 0.1, "weight " + ipi.weight());
        CellResult noIpi = m.cell("kvm -kvm.pv-send-ipi").orElseThrow();
        Map<String, MatrixDiff.Change> i = MatrixDiff.couplings(d.get(noIpi));
        assertEquals("flat_send_IPI_mask", i.get("apic.send_IPI_mask").value());
        assertEquals("0", i.get("counter:kvm hypercall 10").value());
        assertTrue(i.containsKey("usage:kvm.pv-send-ipi inject-fixed"), "what the VMM did for the element, apart");
        List<String> cols = MatrixDiff.columns(d);
        assertEquals(MatrixDiff.INSTRUCTIONS, cols.getFirst(), cols.toString());
        assertTrue(cols.indexOf("pv_ops.mmu.flush_tlb_multi") < cols.indexOf("static_call.pv_sched_clock"));
        assertTrue(cols.indexOf("apic.send_IPI_mask") < cols.indexOf("clocksource.name"));
        assertTrue(cols.stream().noneMatch(x -> x.startsWith("counter:")), "fine counters are detail only");
    }

    @Test
    void jsonRoundTripsAndHostFieldsAreLeftOutOfComparisons(@org.junit.jupiter.api.io.TempDir Path dir) throws Exception {
        Path f = dir.resolve("matrix.json");
        Files.write(f, MatrixJson.write(m));
        MatrixResult back = MatrixJson.read(f);
        assertEquals(m, back);
        CellResult c = m.cells().get(1);
        MatrixResult other = new MatrixResult(m.schema(), m.planVersion(), m.kernel(), m.settings(),
                List.of(m.cells().get(0), c.withHost(new CellResult.Host(99, true)), m.cells().get(2), m.cells().get(3)),
                new MatrixResult.Host("2030-01-01T00:00:00Z", 1, 1, 0, 4, Map.of()));
        assertNotEquals(m, other);
        assertEquals(MatrixJson.withoutHostText(m), MatrixJson.withoutHostText(other));
        String text = Files.readString(f);
        for (String field : List.of("\"schema\"", "\"planVersion\"", "\"kernel\"", "\"settings\"", "\"cells\"", "\"tables\"", "\"usage\"",
                "\"workloads\"", "\"outcome\"", "\"clocksource\"", "\"reference\"", "\"host\""))
            assertTrue(text.contains(field), field);
        Files.writeString(dir.resolve("bad.json"), "{\"x\": 1}");
        assertThrows(java.io.IOException.class, () -> MatrixJson.read(dir.resolve("bad.json")));
    }

    @Test
    void markdownListsEachCellsCouplings() {
        String md = MatrixMarkdown.render(m);
        assertTrue(md.contains("| kvm -kvm.clocksource | kvm | boots | tsc |"), md);
        assertTrue(md.contains("## kvm -kvm.pv-send-ipi (vs kvm)"), md);
        assertTrue(md.contains("- `apic.send_IPI_mask`: kvm_send_ipi_mask → flat_send_IPI_mask"), md);
    }

    @Test
    void theHtmlPageIsSelfContainedWithAClickableHeatMapAndTheDiffs() {
        String html = MatrixHtml.render(m);
        assertTrue(html.startsWith("<!DOCTYPE html>"));
        assertTrue(html.contains("<table id=\"matrix\" class=\"heat\">"));
        assertFalse(html.contains("http://") || html.contains("https://") || html.contains(" src=") || html.contains("<link"),
                "no external asset");
        assertTrue(html.contains("<details id=\"diff-3\">"), "the pv-send-ipi cell's diff");
        assertTrue(html.contains("data-diff=\"diff-3\" data-obs=\"apic.send_IPI_mask\""));
        assertTrue(html.contains("<tr data-obs=\"apic.send_IPI_mask\">"));
        assertTrue(html.contains("<script>") && html.contains("addEventListener('click'"));
        MatrixResult evil = Cells.matrix(false, "<script>alert(1)</script>");
        assertFalse(MatrixHtml.render(evil).contains("<script>alert(1)"), "escaped");
    }

    @Test
    void compareCountsTableCouplingsAsNotMeasuredWhereOneKernelsTablesCouldNotBeRead() {
        MatrixResult a = Cells.matrix(false, "aaaa");
        MatrixResult m = Cells.matrix(false, "bbbb");
        Map<String, String> unread = Map.of(CellResult.TABLES_UNREAD, "<cannot read the kernel's symbols and BTF: zstd>");
        List<CellResult> cells = m.cells().stream().map(c -> new CellResult(c.id(), c.personality(), c.disabled(), c.role(),
                c.reference(), c.outcome(), null, null, c.instructions(), c.virtualNanos(), unread, c.usage(), c.workloads(),
                c.host())).toList();
        MatrixResult b = new MatrixResult(m.schema(), m.planVersion(), m.kernel(), m.settings(), cells, m.host());
        assertTrue(b.cells().get(1).tablesUnread());
        MatrixCompare.Result r = MatrixCompare.compare(a, b);
        assertTrue(r.entries().stream().noneMatch(e -> e.observable().startsWith("static_call.") || e.observable().startsWith("apic.")
                || e.observable().startsWith("pv_ops.")), "no table coupling reported as gone: " + r.entries());
        assertEquals(2, r.unmeasured().get("kvm -kvm.clocksource"), r.toString()); // pv_sched_clock and clocksource.name
        assertEquals(java.util.Set.of("B: <cannot read the kernel's symbols and BTF: zstd>"), r.unreadWhy());
        String text = MatrixCompare.render(a, b, "a.json", "b.json");
        assertTrue(text.contains("Not compared: "), text);
    }

    @Test
    void compareFindsCouplingsThatAppearedDisappearedOrMoved() {
        MatrixResult b = Cells.matrix(true, "cd".repeat(32));
        CellResult noClock = b.cell("kvm -kvm.clocksource").orElseThrow();
        java.util.Map<String, String> t = new java.util.LinkedHashMap<>(noClock.tables());
        t.put("static_call.pv_sched_clock", "hv_sched_clock"); // moved
        t.put("clocksource.name", "kvm-clock");                  // disappeared
        t.put("pv_ops.mmu.flush_tlb_multi", "native_flush_tlb_multi"); // appeared
        CellResult changed = new CellResult(noClock.id(), noClock.personality(), noClock.disabled(), noClock.role(), noClock.reference(),
                noClock.outcome(), "kvm-clock", noClock.clockevent(), noClock.instructions(), noClock.virtualNanos(), t, noClock.usage(),
                noClock.workloads(), noClock.host());
        MatrixResult b2 = new MatrixResult(b.schema(), b.planVersion(), b.kernel(), b.settings(),
                List.of(b.cells().get(0), b.cells().get(1), changed, b.cells().get(3)), b.host());
        MatrixCompare.Result r = MatrixCompare.compare(m, b2);
        assertTrue(r.entries().contains(new MatrixCompare.Entry("kvm -kvm.clocksource", MatrixCompare.Change.MOVED,
                "static_call.pv_sched_clock", "kvm_sched_clock_read → native_sched_clock", "kvm_sched_clock_read → hv_sched_clock")), r.toString());
        assertTrue(r.entries().stream().anyMatch(e -> e.change() == MatrixCompare.Change.DISAPPEARED && e.observable().equals("clocksource.name")));
        assertTrue(r.entries().stream().anyMatch(e -> e.change() == MatrixCompare.Change.APPEARED && e.observable().equals("pv_ops.mmu.flush_tlb_multi")));
        assertTrue(r.entries().stream().anyMatch(e -> e.cell().equals("kvm -kvm.pv-send-ipi") && e.observable().equals("outcome")));
        assertEquals(List.of("kvm -kvm.pv-send-ipi: boots → panics"), r.outcomes());
        String text = MatrixCompare.render(m, b2, "a.json", "b.json");
        assertTrue(text.contains("moved `static_call.pv_sched_clock`"), text);
        assertTrue(MatrixCompare.compare(m, m).entries().isEmpty());
    }

    @Test
    void outcomesAreClassifiedFromTheEndAndTheConsole() {
        Outcome off = new Outcome(Outcome.Kind.POWEROFF, 0, "", 1, 1);
        String ok = "polyvisor: init started\npolyvisor: exit status 0\n";
        assertEquals("boots", MatrixRunner.classify(off, ok).kind());
        assertEquals(0, MatrixRunner.classify(off, ok).exitStatus());
        CellResult.Outcome w = MatrixRunner.classify(off, "[    1.234567] unchecked MSR access error: WRMSR to 0x4b564d05\n" + ok);
        assertEquals("warnings", w.kind());
        assertEquals(List.of("unchecked MSR access error: WRMSR to 0x4b564d05"), w.warnings());
        Outcome reset = new Outcome(Outcome.Kind.RESET, 4, "guest reset the machine", 1, 1);
        CellResult.Outcome panic = MatrixRunner.classify(reset, "[    0.5] kernel BUG at drivers/xen/events/events_base.c:1228!\n[    0.5] Kernel panic - not syncing: VFS\n");
        assertEquals("panics", panic.kind());
        assertEquals(List.of("kernel BUG at drivers/xen/events/events_base.c:1228!", "Kernel panic - not syncing: VFS"), panic.warnings());
        assertEquals("fails", MatrixRunner.classify(reset, "").kind());
        Outcome to = new Outcome(Outcome.Kind.TIMEOUT, 124, "virtual timeout", 1, 1);
        assertEquals("hangs", MatrixRunner.classify(to, "").kind());
        assertNull(MatrixRunner.classify(to, "").exitStatus());
        assertEquals("hangs", MatrixRunner.classify(new Outcome(Outcome.Kind.STOPPED, 6, "guest stopped", 1, 1), "").kind());
        assertEquals("error", MatrixRunner.classify(new Outcome(Outcome.Kind.ERROR, 8, "emulator error", 1, 1), "").kind());
        assertEquals("fails", MatrixRunner.classify(off, "polyvisor: init started\n").kind(), "powered off without the command");
    }

    @Test
    void theProgressLineHasABarCountsAndAnEta() {
        java.io.ByteArrayOutputStream bytes = new java.io.ByteArrayOutputStream();
        java.io.PrintStream out = new java.io.PrintStream(bytes, true, java.nio.charset.StandardCharsets.UTF_8);
        MatrixRunner.Progress p = new MatrixRunner.Progress(out, false, 4);
        p.cached(m.cells().get(0));
        p.finished(m.cells().get(1));
        p.done();
        String[] lines = bytes.toString(java.nio.charset.StandardCharsets.UTF_8).split("\n");
        assertEquals(2, lines.length, String.join("\n", lines));
        assertTrue(lines[0].startsWith("matrix [#####...............] 1/4 cells (1 cached)"), lines[0]);
        assertTrue(lines[0].contains("ETA ?") && lines[0].endsWith("bare: boots (cached)"), lines[0]);
        assertTrue(lines[1].contains("2/4 cells (1 cached)") && lines[1].contains("ETA ") && lines[1].endsWith("kvm: boots in 1s (0.0 s CPU)"), lines[1]);
        bytes.reset();
        MatrixRunner.Progress t = new MatrixRunner.Progress(out, true, 1);
        t.finished(m.cells().get(1));
        t.done();
        String tty = bytes.toString(java.nio.charset.StandardCharsets.UTF_8);
        assertTrue(tty.startsWith("\rmatrix [####################] 1/1 cells") && tty.contains("done") && tty.endsWith("\n"), tty);
    }
}

package dev.polyvisor.matrix;

import java.util.ArrayList;
import java.util.LinkedHashMap;
import java.util.List;
import java.util.Map;

/** Synthetic cells and matrices for the tests that boot nothing. */
final class Cells {
    private Cells() {}

    static CellResult cell(String id, String role, String reference, String outcome, long instructions, Map<String, String> tables,
                           List<CellResult.Usage> usage) {
        String[] parts = id.split(" -");
        List<String> disabled = new ArrayList<>();
        for (int i = 1; i < parts.length; i++) disabled.add(parts[i]);
        return new CellResult(id, parts[0], disabled, role, reference, new CellResult.Outcome(outcome, "", 0, List.of()),
                tables.get("clocksource.name"), tables.get("clockevent[0].name"), instructions, 1_000_000_000L, tables, usage,
                Map.of(), new CellResult.Host(1234, false));
    }

    static Map<String, String> tables(String... kv) {
        Map<String, String> m = new LinkedHashMap<>();
        for (int i = 0; i < kv.length; i += 2) m.put(kv[i], kv[i + 1]);
        return m;
    }

    static CellResult.Usage use(String p, String kind, long nr, String element, long count) {
        return new CellResult.Usage(p, kind, nr, -1, element, count);
    }

    static final Map<String, String> BARE = tables("pv_ops.mmu.flush_tlb_multi", "native_flush_tlb_multi",
            "static_call.pv_sched_clock", "native_sched_clock", "apic.send_IPI_mask", "flat_send_IPI_mask",
            "clocksource.name", "tsc", "clockevent[0].name", "lapic");
    static final Map<String, String> KVM = tables("pv_ops.mmu.flush_tlb_multi", "kvm_flush_tlb_multi",
            "static_call.pv_sched_clock", "kvm_sched_clock_read", "apic.send_IPI_mask", "kvm_send_ipi_mask",
            "clocksource.name", "kvm-clock", "clockevent[0].name", "lapic");
    static final Map<String, String> KVM_NO_CLOCK = tables("pv_ops.mmu.flush_tlb_multi", "kvm_flush_tlb_multi",
            "static_call.pv_sched_clock", "native_sched_clock", "apic.send_IPI_mask", "kvm_send_ipi_mask",
            "clocksource.name", "tsc", "clockevent[0].name", "lapic");
    static final Map<String, String> KVM_NO_IPI = tables("pv_ops.mmu.flush_tlb_multi", "kvm_flush_tlb_multi",
            "static_call.pv_sched_clock", "kvm_sched_clock_read", "apic.send_IPI_mask", "flat_send_IPI_mask",
            "clocksource.name", "kvm-clock", "clockevent[0].name", "lapic");

    /** bare, kvm, kvm -kvm.clocksource, kvm -kvm.pv-send-ipi (the latter panicking when {@code panics}). */
    static MatrixResult matrix(boolean ipiPanics, String sha) {
        List<CellResult.Usage> kvmUse = List.of(use("kvm", "hypercall", 10, "kvm.pv-send-ipi", 700),
                use("kvm", "wrmsr", 0x4b564d01L, "kvm.clocksource", 2), use("kvm", "inject-fixed", 251, "kvm.pv-send-ipi", 650));
        List<CellResult.Usage> noClockUse = List.of(use("kvm", "hypercall", 10, "kvm.pv-send-ipi", 690),
                use("kvm", "inject-fixed", 251, "kvm.pv-send-ipi", 640));
        List<CellResult.Usage> noIpiUse = List.of(use("kvm", "wrmsr", 0x4b564d01L, "kvm.clocksource", 2));
        List<CellResult> cells = List.of(
                cell("bare", "reference", null, "boots", 800_000_000L, BARE, List.of()),
                cell("kvm", "baseline", "bare", "boots", 780_000_000L, KVM, kvmUse),
                cell("kvm -kvm.clocksource", "element-off", "kvm", "boots", 781_000_000L, KVM_NO_CLOCK, noClockUse),
                cell("kvm -kvm.pv-send-ipi", "element-off", "kvm", ipiPanics ? "panics" : "boots", 779_000_000L, KVM_NO_IPI, noIpiUse));
        return new MatrixResult(MatrixResult.SCHEMA, MatrixPlan.VERSION, new MatrixResult.Kernel(sha, "6.1.0-test", "linux-image-test", "1"),
                new MatrixResult.Settings(2, 128, "console=ttyS0 nokaslr", "none", 60), cells,
                new MatrixResult.Host("2025-01-01T00:00:00Z", 5000, 2, 4, 0, Map.of("kernel", "/tmp/k")));
    }
}

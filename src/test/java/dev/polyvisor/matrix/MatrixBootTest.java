package dev.polyvisor.matrix;

import dev.polyvisor.cli.RunCommand;
import dev.polyvisor.guest.GuestImage;
import dev.polyvisor.guest.GuestImageException;
import dev.polyvisor.guest.GuestImages;
import dev.polyvisor.personality.core.AbiUsage;
import org.junit.jupiter.api.BeforeAll;
import org.junit.jupiter.api.Tag;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.io.TempDir;
import org.opentest4j.TestAbortedException;

import java.nio.charset.StandardCharsets;
import java.nio.file.Files;
import java.nio.file.Path;
import java.util.List;
import java.util.concurrent.TimeUnit;

import static org.junit.jupiter.api.Assertions.*;

/**
 * Issue 10's acceptance: a small matrix on the default Debian kernel - kvm's baseline, kvm.clocksource
 * off, kvm.pv-send-ipi off, 2 vCPUs, icount - and the known couplings, read from the tables in guest
 * memory and from the VMM's counters: without kvm.clocksource the clocksource leaves kvm-clock for the
 * TSC and the sched_clock static call leaves kvm_sched_clock_read; without kvm.pv-send-ipi the APIC
 * driver's IPI callbacks leave kvm_send_ipi_mask* and KVM_HC_SEND_IPI (10) is never called; x86_init's
 * hooks are read at free_initmem() and the VMM's pvclock updates are counted. The same
 * matrix run again (no cache) is identical apart from host-time fields, a third run comes entirely from
 * the cache, and matrix.html renders in headless Chromium when it is installed.
 */
@Tag("linux")
class MatrixBootTest {
    private static GuestImage guest;
    @TempDir static Path dir;

    @BeforeAll
    static void guestImage() {
        try {
            guest = GuestImages.defaultGuest();
        } catch (GuestImageException e) {
            throw new TestAbortedException("the default Debian guest cannot be built here: " + e.getMessage());
        }
    }

    private static MatrixResult run(MatrixPlan plan, Path out) throws Exception {
        MatrixRunner r = new MatrixRunner(guest, MatrixSettings.defaults().withJobs(2), CellWorkload.NONE,
                RunCommand::linuxCommandLine, out, System.err, false);
        return r.run(plan);
    }

    @Test
    void theKnownKvmCouplingsAreFoundAndTheMatrixRepeats() throws Exception {
        MatrixPlan plan = MatrixPlan.of(List.of("kvm"), List.of("kvm.clocksource", "kvm.pv-send-ipi"), false);
        Path out = dir.resolve("first");
        long t0 = System.nanoTime();
        MatrixResult m = run(plan, out);
        System.err.printf("small matrix: %d cells in %.1f s%n", m.cells().size(), (System.nanoTime() - t0) / 1e9);
        MatrixResult.Kernel k = m.kernel();
        assertEquals(64, k.sha256().length());

        CellResult base = m.cell("kvm").orElseThrow(), noClock = m.cell("kvm -kvm.clocksource").orElseThrow(),
                noIpi = m.cell("kvm -kvm.pv-send-ipi").orElseThrow();
        for (CellResult c : m.cells()) {
            assertEquals("boots", c.outcome().kind(), c.id() + ": " + c.outcome());
            assertEquals(0, c.outcome().exitStatus(), c.id());
            assertTrue(c.workloads().isEmpty(), "no workload plugged in yet");
            assertTrue(c.tables().size() > 100, c.id() + " has " + c.tables().size() + " table entries");
        }
        assertEquals("kvm", noClock.reference());
        assertEquals("kvm", noIpi.reference());

        // The baseline binds KVM's clock and PV IPIs, and uses the hypercall.
        assertEquals("kvm-clock", base.clocksource());
        assertEquals("kvm_sched_clock_read", base.tables().get("static_call.pv_sched_clock"));
        assertEquals("kvm_send_ipi_mask", base.tables().get("apic.send_IPI_mask"));
        assertEquals("kvm_send_ipi_mask_allbutself", base.tables().get("apic.send_IPI_mask_allbutself"));
        long ipis = MatrixRunner.usage(base, "kvm", AbiUsage.Kind.HYPERCALL, 10);
        assertTrue(ipis > 0, "KVM_HC_SEND_IPI during a 2-vCPU boot");
        assertTrue(MatrixRunner.usage(base, "kvm", AbiUsage.Kind.WRMSR, 0x4b564d01L) > 0, "MSR_KVM_SYSTEM_TIME_NEW");
        // ... and the VMM fills the pvclock structure the guest registered (a shared-structure update).
        long pvclock = AbiUsage.Structure.PVCLOCK.ordinal();
        assertTrue(MatrixRunner.usage(base, "kvm", AbiUsage.Kind.SHARED_UPDATE, pvclock) > 0, "pvclock_vcpu_time_info written");
        // x86_init (__initdata) read when the guest entered free_initmem(): KVM's platform hooks, not "freed".
        assertNull(base.tables().get("x86_init"), base.tables().get("x86_init"));
        assertEquals("kvm_init_platform", base.tables().get("x86_init.hyper.init_platform"));
        assertEquals("kvm_guest_init", base.tables().get("x86_init.hyper.guest_late_init"));

        // kvm.clocksource off: kvm-clock → TSC, sched_clock leaves kvm_sched_clock_read, the MSRs are never written.
        assertTrue(noClock.clocksource().startsWith("tsc"), noClock.clocksource());
        assertEquals("native_sched_clock", noClock.tables().get("static_call.pv_sched_clock"));
        assertEquals(0, MatrixRunner.usage(noClock, "kvm", AbiUsage.Kind.WRMSR, 0x4b564d01L));
        assertEquals(0, MatrixRunner.usage(noClock, "kvm", AbiUsage.Kind.SHARED_UPDATE, pvclock));
        assertEquals("kvm_send_ipi_mask", noClock.tables().get("apic.send_IPI_mask"), "IPIs are not the clock's business");

        // kvm.pv-send-ipi off: the APIC callbacks leave kvm_send_ipi_mask*, the hypercall count drops to 0.
        assertFalse(noIpi.tables().get("apic.send_IPI_mask").startsWith("kvm_"), noIpi.tables().get("apic.send_IPI_mask"));
        assertFalse(noIpi.tables().get("apic.send_IPI_mask_allbutself").startsWith("kvm_"));
        assertEquals(0, MatrixRunner.usage(noIpi, "kvm", AbiUsage.Kind.HYPERCALL, 10));
        assertEquals("kvm_sched_clock_read", noIpi.tables().get("static_call.pv_sched_clock"));
        assertEquals("kvm-clock", noIpi.clocksource());

        // The diffs name exactly these couplings.
        var d = MatrixDiff.all(m);
        var cc = MatrixDiff.couplings(d.get(noClock));
        assertEquals("kvm-clock", cc.get("clocksource.name").reference());
        assertTrue(cc.containsKey("static_call.pv_sched_clock"));
        var ci = MatrixDiff.couplings(d.get(noIpi));
        assertTrue(ci.containsKey("apic.send_IPI_mask") && ci.containsKey("apic.send_IPI_mask_allbutself"), ci.keySet().toString());
        assertEquals("0", ci.get("counter:kvm hypercall 10").value());
        assertFalse(ci.containsKey("clocksource.name"));
        assertEquals("0", cc.get("usage:kvm.clocksource shared-update").value(), "the pvclock updates stop with the element");

        // Run again without the cache: identical apart from host-time fields.
        MatrixResult again = run(plan, null);
        assertEquals(MatrixJson.withoutHostText(m), MatrixJson.withoutHostText(again));
        // And from the cache: nothing boots, same result.
        MatrixResult cached = run(plan, out);
        assertEquals(plan.cells().size(), cached.host().cellsCached());
        assertEquals(0, cached.host().cellsRun());
        assertEquals(MatrixJson.withoutHostText(m), MatrixJson.withoutHostText(cached));

        Files.createDirectories(out);
        Files.write(out.resolve("matrix.json"), MatrixJson.write(m));
        Files.writeString(out.resolve("matrix.html"), MatrixHtml.render(m), StandardCharsets.UTF_8);
        Files.writeString(out.resolve("matrix.md"), MatrixMarkdown.render(m), StandardCharsets.UTF_8);
        rendersInChromium(out.resolve("matrix.html"), m);
    }

    /**
     * Debian's headless Chromium loads the page, runs its script (which opens the diff the URL names), and
     * takes a screenshot. ./run-tests installs Chromium where it is missing (scripts/env.sh, pv_test_setup);
     * a run without it (plain mvn, or PV_NO_CHROMIUM=1) skips this check with a printed reason.
     */
    private static void rendersInChromium(Path html, MatrixResult m) throws Exception {
        Path chromium = Path.of("/usr/bin/chromium");
        if (!Files.isExecutable(chromium)) {
            System.err.println("MatrixBootTest: skipping the browser check: /usr/bin/chromium is not installed (./run-tests installs it; or apt-get install chromium)");
            return;
        }
        int row = m.cells().indexOf(m.cell("kvm -kvm.pv-send-ipi").orElseThrow());
        String url = html.toUri() + "#diff-" + row + ":apic.send_IPI_mask";
        Path profile = Files.createTempDirectory(dir, "chromium");
        Path png = html.resolveSibling("matrix.png");
        List<String> common = List.of(chromium.toString(), "--headless", "--no-sandbox", "--disable-gpu", "--disable-background-networking",
                "--disable-component-update", "--disable-sync", "--no-first-run", "--user-data-dir=" + profile, "--window-size=1400,900");
        String dom = chromium(common, "--dump-dom", url);
        assertTrue(dom.contains("<table id=\"matrix\" class=\"heat\">"), "the heat map is in the DOM");
        assertTrue(dom.contains("data-ready=\"1\""), "the page's script ran");
        assertTrue(dom.matches("(?s).*<details id=\"diff-" + row + "\" open=\"\">.*"), "the diff named in the URL is open");
        assertTrue(dom.contains("<tr data-obs=\"apic.send_IPI_mask\" class=\"hl\">"), "its observable is marked");
        chromium(common, "--screenshot=" + png, url);
        byte[] bytes = Files.readAllBytes(png);
        assertTrue(bytes.length > 10_000, "screenshot of " + bytes.length + " bytes");
        assertArrayEquals(new byte[] {(byte) 0x89, 'P', 'N', 'G'}, java.util.Arrays.copyOf(bytes, 4));
        System.err.println("MatrixBootTest: matrix.html rendered in Chromium, screenshot " + png + " (" + bytes.length + " bytes)");
    }

    private static String chromium(List<String> common, String... more) throws Exception {
        List<String> cmd = new java.util.ArrayList<>(common);
        cmd.addAll(List.of(more));
        Path outFile = Files.createTempFile(dir, "chromium", ".out");
        Process p = new ProcessBuilder(cmd).redirectErrorStream(false).redirectOutput(outFile.toFile())
                .redirectError(ProcessBuilder.Redirect.DISCARD).start();
        if (!p.waitFor(120, TimeUnit.SECONDS)) {
            p.destroyForcibly();
            fail("chromium did not finish in 120 s: " + cmd);
        }
        assertEquals(0, p.exitValue(), "chromium " + String.join(" ", more));
        return Files.readString(outFile);
    }
}

package dev.polyvisor.guest;

import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.io.TempDir;

import java.nio.charset.StandardCharsets;
import java.nio.file.Files;
import java.nio.file.Path;

import java.util.List;
import java.util.Map;

import static org.junit.jupiter.api.Assertions.*;

class ProbeReportTest {
    /** A KVM boot's console as the serial port carries it: CRLF line ends, kernel lines around the report. */
    private static final String KVM_CONSOLE = String.join("\r\n",
            "[    0.000000] Hypervisor detected: KVM",
            "polyvisor: init started",
            GuestProbe.BEGIN_MARKER,
            "{\"kernel\":\"6.1.0-9-cloud-amd64\",\"hypervisor_detected\":\"KVM\",\"paravirt\":\"KVM\","
                    + "\"clocksource\":\"kvm-clock\",\"clocksources\":[\"kvm-clock\",\"tsc\",\"acpi_pm\"],"
                    + "\"clockevent\":\"lapic-deadline\",\"cpus\":2,\"cpuid_hypervisor_bit\":true,\"steal_ticks\":17,"
                    + "\"steal_ticks_delta\":9,\"steal_interval_centiseconds\":100,\"sys_hypervisor\":null,"
                    + "\"pv_features\":[\"[    0.000000] kvm-clock: Using msrs 4b564d01 and 4b564d00\","
                    + "\"[    0.112000] kvm-guest: PV spinlocks enabled\"],"
                    + "\"virtio_devices\":[{\"name\":\"virtio0\",\"device\":\"0x0002\",\"driver\":\"virtio_blk\","
                    + "\"features\":\"0000000000000000000000000000110010000000000000000000000000000000\"},"
                    + "{\"name\":\"virtio1\",\"device\":\"0x0005\",\"driver\":null}]}",
            GuestProbe.END_MARKER,
            "polyvisor: exit status 0",
            "");

    @Test
    void parsesEveryFieldOfAKvmReportFromACrlfConsole() {
        ProbeReport r = ProbeReport.parse(KVM_CONSOLE);
        assertEquals("6.1.0-9-cloud-amd64", r.kernel());
        assertEquals("KVM", r.hypervisorDetected());
        assertEquals("KVM", r.paravirt());
        assertEquals("kvm-clock", r.clocksource());
        assertEquals(List.of("kvm-clock", "tsc", "acpi_pm"), r.clocksources());
        assertEquals("lapic-deadline", r.clockevent());
        assertEquals(2, r.cpus());
        assertTrue(r.cpuidHypervisorBit());
        assertEquals(17, r.stealTicks());
        assertEquals(9, r.stealTicksDelta());
        assertNull(r.sysHypervisor());
        assertEquals(2, r.pvFeatures().size());
        assertTrue(r.reportsFeature("PV spinlocks enabled"));
        assertFalse(r.reportsFeature("setup PV IPIs"));
        assertEquals(List.of(new ProbeReport.VirtioDevice("virtio0", "0x0002", "virtio_blk", "0000000000000000000000000000110010000000000000000000000000000000"),
                new ProbeReport.VirtioDevice("virtio1", "0x0005", null)), r.virtioDevices(), "a report without features has null");
        assertEquals(List.of("INDIRECT_DESC", "EVENT_IDX", "VERSION_1"), r.virtioDevices().get(0).transportFeatures());
        assertTrue(r.virtioDevices().get(0).negotiated(32));
        assertFalse(r.virtioDevices().get(0).negotiated(34), "a split ring");
        assertEquals(List.of(), r.virtioDevices().get(1).transportFeatures());
    }

    @Test
    void decodesEscapedStringsAndNullsOfABareXenLikeReport() {
        String json = "{\"kernel\":\"6.1\",\"hypervisor_detected\":null,\"paravirt\":\"bare hardware\","
                + "\"clocksource\":\"xen\",\"clocksources\":[],\"clockevent\":null,\"cpus\":1,\"cpuid_hypervisor_bit\":false,"
                + "\"steal_ticks\":0,\"steal_ticks_delta\":0,"
                + "\"sys_hypervisor\":{\"type\":\"xen\",\"version/extra\":\".0\",\"version\":\"4.16.0\"},"
                + "\"pv_features\":[\"a \\\"quoted\\\" back\\\\slash\\ttab\\u0001ctl\\u000anewline\"],\"virtio_devices\":[]}";
        ProbeReport r = ProbeReport.parse(GuestProbe.BEGIN_MARKER + "\n" + json + "\n" + GuestProbe.END_MARKER + "\n");
        assertNull(r.hypervisorDetected());
        assertNull(r.clockevent());
        assertFalse(r.cpuidHypervisorBit());
        assertEquals(List.of(), r.clocksources());
        assertEquals(Map.of("type", "xen", "version/extra", ".0", "version", "4.16.0"), r.sysHypervisor());
        assertEquals(List.of("a \"quoted\" back\\slash\ttab\u0001ctl\nnewline"), r.pvFeatures());
    }

    /** The script needs only POSIX sh and awk, so the host runs it too; its output must parse. */
    @Test
    void theProbeScriptRunOnTheHostPrintsAReportThatParses(@TempDir Path dir) throws Exception {
        Path f = Files.writeString(dir.resolve("pv-probe"), GuestProbe.script());
        Process p = new ProcessBuilder("sh", f.toString()).redirectErrorStream(true).start();
        String out = new String(p.getInputStream().readAllBytes(), StandardCharsets.UTF_8);
        assertEquals(0, p.waitFor(), out);
        ProbeReport r = ProbeReport.parse(out);
        assertEquals(System.getProperty("os.version"), r.kernel());
        assertTrue(r.cpus() >= 1, out);
        assertTrue(r.stealTicksDelta() >= 0, out);
        if (r.clocksource() != null) assertTrue(r.clocksources().contains(r.clocksource()), out);
    }

    @Test
    void aConsoleWithoutTheMarkersIsAClearError() {
        var e = assertThrows(ProbeReport.MalformedProbeReport.class, () -> ProbeReport.parse("Kernel panic - not syncing\n"));
        assertEquals("no probe report: the console has no '" + GuestProbe.BEGIN_MARKER + "' line", e.getMessage());
        var cut = assertThrows(ProbeReport.MalformedProbeReport.class,
                () -> ProbeReport.parse(GuestProbe.BEGIN_MARKER + "\n{\"kernel\":"));
        assertTrue(cut.getMessage().contains("the probe did not finish"), cut.getMessage());
    }

    @Test
    void malformedJsonAndWrongTypesAreClearErrors() {
        var bad = assertThrows(ProbeReport.MalformedProbeReport.class,
                () -> ProbeReport.parse(GuestProbe.BEGIN_MARKER + "\n{\"kernel\": oops}\n" + GuestProbe.END_MARKER));
        assertTrue(bad.getMessage().startsWith("probe report is not valid JSON: "), bad.getMessage());
        var array = assertThrows(ProbeReport.MalformedProbeReport.class,
                () -> ProbeReport.parse(GuestProbe.BEGIN_MARKER + "\n[1,2]\n" + GuestProbe.END_MARKER));
        assertEquals("probe report is not a JSON object", array.getMessage());
        String cpusAsString = KVM_CONSOLE.replace("\"cpus\":2", "\"cpus\":\"2\"");
        var type = assertThrows(ProbeReport.MalformedProbeReport.class, () -> ProbeReport.parse(cpusAsString));
        assertEquals("probe report 'cpus' is not an integer: \"2\"", type.getMessage());
        String noKernel = KVM_CONSOLE.replace("\"kernel\":\"6.1.0-9-cloud-amd64\",", "");
        var missing = assertThrows(ProbeReport.MalformedProbeReport.class, () -> ProbeReport.parse(noKernel));
        assertEquals("probe report lacks 'kernel'", missing.getMessage());
        String badFeatures = KVM_CONSOLE.replaceFirst("\"features\":\"[01]+\"", "\"features\":\"0x3\"");
        var features = assertThrows(ProbeReport.MalformedProbeReport.class, () -> ProbeReport.parse(badFeatures));
        assertEquals("probe report virtio features are not a bit string: 0x3", features.getMessage());
    }
}

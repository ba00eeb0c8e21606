package dev.polyvisor.cli;

import dev.polyvisor.matrix.MatrixJson;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.io.TempDir;

import java.io.ByteArrayOutputStream;
import java.io.PrintStream;
import java.nio.charset.StandardCharsets;
import java.nio.file.Files;
import java.nio.file.Path;

import static org.junit.jupiter.api.Assertions.*;

/** {@code polyvisor abi matrix}'s bad input and {@code --compare}, without booting. */
class AbiMatrixCommandTest {
    private static String[] run(String... args) {
        ByteArrayOutputStream out = new ByteArrayOutputStream(), err = new ByteArrayOutputStream();
        PrintStream o = System.out, e = System.err;
        System.setOut(new PrintStream(out, true, StandardCharsets.UTF_8));
        System.setErr(new PrintStream(err, true, StandardCharsets.UTF_8));
        try {
            int st = PolyvisorCommand.commandLine().execute(args);
            return new String[] {Integer.toString(st), out.toString(StandardCharsets.UTF_8), err.toString(StandardCharsets.UTF_8)};
        } finally {
            System.setOut(o);
            System.setErr(e);
        }
    }

    private static void oneLineUsageError(String[] r, String... needles) {
        assertEquals(Integer.toString(RunCommand.USAGE), r[0], r[2]);
        assertEquals(1, r[2].strip().lines().count(), r[2]);
        for (String n : needles) assertTrue(r[2].contains(n), r[2]);
    }

    @Test
    void unknownPersonalitiesAndElementsAreOneLineErrorsWithStatus2() {
        oneLineUsageError(run("abi", "matrix", "--personality", "kvm,qnx"), "unknown personality 'qnx'", "bare, kvm, hyperv, xen, vmware, unknown");
        oneLineUsageError(run("abi", "matrix", "--personality", "kvm", "--elements", "kvm.nope"), "'kvm.nope'", "kvm.pv-send-ipi");
        oneLineUsageError(run("abi", "matrix", "--elements", "hyperv.nope"), "'hyperv.nope'", "kvm.clocksource");
        oneLineUsageError(run("abi", "matrix", "--jobs", "0"), "--jobs");
        oneLineUsageError(run("abi", "matrix", "--compare", "only-one.json"), "--compare");
    }

    @Test
    void compareDiffsTwoMatrixFiles(@TempDir Path dir) throws Exception {
        Path a = dir.resolve("a.json"), b = dir.resolve("b.json");
        Files.write(a, MatrixJson.write(dev.polyvisor.matrix.TestMatrices.small(false)));
        Files.write(b, MatrixJson.write(dev.polyvisor.matrix.TestMatrices.small(true)));
        String[] r = run("abi", "matrix", "--compare", a.toString(), b.toString());
        assertEquals("0", r[0], r[2]);
        assertTrue(r[1].contains("# Coupling matrix comparison") && r[1].contains("boots → panics"), r[1]);
        oneLineUsageError(run("abi", "matrix", "--compare", a.toString(), dir.resolve("missing.json").toString()), "missing.json");
    }
}

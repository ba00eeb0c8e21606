package dev.polyvisor.cli;

import org.junit.jupiter.api.Test;

import java.io.ByteArrayOutputStream;
import java.io.PrintStream;
import java.nio.charset.StandardCharsets;

import static org.junit.jupiter.api.Assertions.*;

class AbiCommandTest {
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

    @Test
    void listShowsEveryPersonalitysElementsWithTheirIds() {
        String[] r = run("abi", "list");
        assertEquals("0", r[0], r[2]);
        for (String p : new String[] {"bare", "kvm", "hyperv", "xen", "vmware"}) assertTrue(r[1].contains(p + " ("), p);
        assertTrue(r[1].contains("kvm.pv-eoi"), r[1]);
        assertTrue(r[1].contains("kvm.clocksource"), r[1]);
    }

    @Test
    void listForOnePersonalityShowsOnlyIt() {
        String[] r = run("abi", "list", "--personality", "kvm");
        assertEquals("0", r[0], r[2]);
        assertTrue(r[1].startsWith("kvm ("), r[1]);
        assertFalse(r[1].contains("hyperv."), r[1]);
    }

    @Test
    void anUnknownPersonalityIsAOneLineError() {
        String[] r = run("abi", "list", "--personality", "qnx");
        assertEquals(Integer.toString(RunCommand.USAGE), r[0]);
        assertEquals(1, r[2].strip().lines().count(), r[2]);
        assertTrue(r[2].contains("unknown personality 'qnx'"), r[2]);
    }
}

package dev.polyvisor.cli;

import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.io.TempDir;

import java.io.PrintWriter;
import java.io.StringWriter;
import java.nio.file.Files;
import java.nio.file.Path;

import static org.junit.jupiter.api.Assertions.*;
import static org.junit.jupiter.api.Assumptions.assumeFalse;

/** {@code --disk FILE[,readonly=on]}: bad files and options are one line and status 2, before any VM is built. */
class DiskFlagTest {
    @TempDir Path dir;

    private String[] run(String... diskArgs) throws Exception {
        Path k = dir.resolve("flat.bin");
        Files.write(k, new byte[] {(byte) 0xF4}); // hlt: never reached
        java.util.List<String> a = new java.util.ArrayList<>(java.util.List.of("run", "--boot", "flat", "--kernel", k.toString(), "--timeout", "5"));
        for (String d : diskArgs) a.addAll(java.util.List.of("--disk", d));
        var cl = PolyvisorCommand.commandLine();
        StringWriter err = new StringWriter();
        cl.setErr(new PrintWriter(err, true));
        int st = cl.execute(a.toArray(String[]::new));
        return new String[] {Integer.toString(st), err.toString()};
    }

    @Test
    void missingFile() throws Exception {
        String[] r = run(dir.resolve("nope.img").toString());
        assertEquals("2", r[0]);
        assertTrue(r[1].startsWith("polyvisor: --disk " + dir.resolve("nope.img") + ": no such file"), r[1]);
        assertEquals(1, r[1].lines().count(), r[1]);
    }

    @Test
    void unknownOption() throws Exception {
        Path img = Files.write(dir.resolve("a.img"), new byte[4096]);
        String[] r = run(img + ",cache=none");
        assertEquals("2", r[0]);
        assertTrue(r[1].contains("unknown option 'cache=none'"), r[1]);
    }

    @Test
    void readOnlyFileGivenAsWritable() throws Exception {
        assumeFalse("root".equals(System.getProperty("user.name")), "root may write any file: the check is access(2)'s");
        Path img = Files.write(dir.resolve("ro.img"), new byte[4096]);
        assertTrue(img.toFile().setWritable(false));
        String[] r = run(img.toString());
        assertEquals("2", r[0]);
        assertTrue(r[1].contains("read-only file; add ,readonly=on"), r[1]);
    }

    @Test
    void unreadableFile() throws Exception {
        assumeFalse("root".equals(System.getProperty("user.name")), "root may read any file");
        Path img = Files.write(dir.resolve("x.img"), new byte[4096]);
        assertTrue(img.toFile().setReadable(false));
        String[] r = run(img + ",readonly=on");
        assertEquals("2", r[0]);
        assertTrue(r[1].contains("not readable"), r[1]);
    }

    @Test
    void aDirectoryIsNotADisk() throws Exception {
        String[] r = run(dir.toString());
        assertEquals("2", r[0]);
    }
}

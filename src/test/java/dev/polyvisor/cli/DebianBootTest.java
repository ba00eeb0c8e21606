package dev.polyvisor.cli;

import dev.polyvisor.guest.GuestImage;
import dev.polyvisor.guest.GuestImages;
import org.junit.jupiter.api.BeforeAll;
import org.junit.jupiter.api.Tag;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.io.TempDir;
import picocli.CommandLine;

import java.io.ByteArrayOutputStream;
import java.io.PrintStream;
import java.io.PrintWriter;
import java.io.StringWriter;
import java.nio.charset.StandardCharsets;
import java.nio.file.Files;
import java.nio.file.Path;
import java.util.Arrays;
import java.util.List;
import java.util.regex.Pattern;

import static org.junit.jupiter.api.Assertions.*;

/**
 * Debian's stock cloud kernel and busybox, booted through the CLI as a user would (issue "PC platform
 * and Linux boot", acceptance). Each test is one boot; they share the cached guest image.
 */
@Tag("linux")
class DebianBootTest {
    /** Kernel log on the console (the default command line is quiet when --exec runs). */
    private static final String VERBOSE = "loglevel=7";
    private static final Pattern BAD_LOG = Pattern.compile("BUG:|Oops|WARNING:|Call Trace|Kernel panic|panic\\(");
    private static GuestImage guest;
    @TempDir Path dir;

    record Result(int status, String out, String err) {}

    @BeforeAll
    static void prepareGuest() throws Exception {
        guest = GuestImages.defaultGuest(); // download and build once, outside the timed boots
    }

    private static synchronized Result run(String... args) {
        StringWriter err = new StringWriter();
        ByteArrayOutputStream out = new ByteArrayOutputStream();
        PrintStream oldOut = System.out;
        System.setOut(new PrintStream(out, true, StandardCharsets.UTF_8));
        try {
            CommandLine cl = PolyvisorCommand.commandLine();
            cl.setErr(new PrintWriter(err, true));
            List<String> a = new java.util.ArrayList<>(Arrays.asList(args));
            a.addAll(List.of("--timeout", "900"));
            int st = cl.execute(a.toArray(String[]::new));
            return new Result(st, out.toString(StandardCharsets.UTF_8), err.toString());
        } finally {
            System.setOut(oldOut);
        }
    }

    private static void assertCleanKernelLog(Result r) {
        var m = BAD_LOG.matcher(r.out());
        assertFalse(m.find(), () -> "kernel log has '" + m.group() + "':\n" + r.out());
        assertFalse(r.out().contains("unstable"), () -> "a clocksource was marked unstable:\n" + r.out());
    }

    @Test
    void bareBootRunsTheCommandAndExitsWithItsStatus() {
        Result r = run("run", "--append", VERBOSE, "--exec",
                "uname -r; grep -c ^processor /proc/cpuinfo; cat /sys/devices/system/clocksource/clocksource0/current_clocksource; exit 3");
        assertEquals(3, r.status(), r.err() + r.out());
        assertTrue(r.out().contains("Booting paravirtualized kernel on bare hardware"), r.out());
        assertFalse(r.out().contains("Hypervisor detected"), r.out());
        assertTrue(r.out().contains("Run /init as init process"), r.out());
        List<String> plain = r.out().lines().map(String::strip).filter(l -> !l.startsWith("[")).toList();
        assertTrue(plain.contains(guest.kernelRelease()), "uname -r: " + plain);
        assertTrue(guest.kernelRelease().startsWith("6.1."), guest.kernelRelease());
        int i = plain.indexOf(guest.kernelRelease());
        assertEquals("1", plain.get(i + 1), "processor count: " + plain);
        assertEquals("tsc", plain.get(i + 2), "clocksource: " + plain);
        assertCleanKernelLog(r);
    }

    @Test
    void twoVcpusAreBroughtUpThroughInitAndSipi() {
        Result r = run("run", "--smp", "2", "--exec", "grep -c ^processor /proc/cpuinfo");
        assertEquals(0, r.status(), r.err() + r.out());
        assertTrue(r.out().lines().map(String::strip).anyMatch("2"::equals), r.out());
    }

    @Test
    void pvhEntryBootsTheSameKernelWithRamAboveFourGib() {
        // 5 GiB: 3 GiB below the PCI hole and 2 GiB from 4 GiB up, reported through the PVH memory map.
        Result r = run("run", "--boot", "pvh", "--memory", "5G", "--append", VERBOSE, "--exec",
                "uname -r; grep MemTotal /proc/meminfo");
        assertEquals(0, r.status(), r.err() + r.out());
        assertTrue(r.out().lines().map(String::strip).anyMatch(guest.kernelRelease()::equals), r.out());
        assertTrue(r.out().contains("[mem 0x0000000100000000-0x000000017fffffff] usable"), r.out());
        long memTotalKib = r.out().lines().filter(l -> l.startsWith("MemTotal:"))
                .mapToLong(l -> Long.parseLong(l.replaceAll("\\D", ""))).findFirst().orElse(0);
        assertTrue(memTotalKib > (4_800L << 10), "MemTotal " + memTotalKib + " KiB with 5 GiB of RAM");
        assertCleanKernelLog(r);
    }

    @Test
    void icountRunsAreByteIdentical() {
        Result a = run("run", "--clock", "icount", "--append", VERBOSE, "--exec", "cat /proc/uptime; dmesg | tail -3");
        Result b = run("run", "--clock", "icount", "--append", VERBOSE, "--exec", "cat /proc/uptime; dmesg | tail -3");
        assertEquals(0, a.status(), a.err() + a.out());
        assertEquals(a.out(), b.out());
        assertTrue(a.out().contains("Run /init"), a.out());
    }

    @Test
    void corruptAndTruncatedImagesAreOneLineErrors() throws Exception {
        byte[] k = Files.readAllBytes(guest.kernel());
        Path truncated = dir.resolve("vmlinuz-truncated");
        Files.write(truncated, Arrays.copyOf(k, k.length / 3));
        Path garbage = dir.resolve("initrd-garbage");
        Files.writeString(garbage, "this is not an initramfs\n");
        Path cut = dir.resolve("initrd-cut");
        byte[] rd = Files.readAllBytes(guest.initramfs());
        Files.write(cut, Arrays.copyOf(rd, rd.length / 2));
        for (Result r : List.of(
                run("run", "--kernel", truncated.toString(), "--initrd", guest.initramfs().toString()),
                run("run", "--kernel", guest.kernel().toString(), "--initrd", garbage.toString()),
                run("run", "--kernel", guest.kernel().toString(), "--initrd", cut.toString()),
                run("run", "--kernel", dir.resolve("missing").toString()))) {
            assertNotEquals(0, r.status(), r.err());
            assertEquals(1, r.err().strip().lines().count(), r.err());
            assertTrue(r.err().startsWith("polyvisor: "), r.err());
            assertFalse(r.err().contains("\tat "), r.err());
        }
    }
}

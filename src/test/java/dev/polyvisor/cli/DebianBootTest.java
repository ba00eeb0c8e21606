package dev.polyvisor.cli;

import dev.polyvisor.guest.GuestImage;
import dev.polyvisor.guest.GuestImages;
import org.junit.jupiter.api.BeforeAll;
import org.junit.jupiter.api.Tag;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.io.TempDir;
import picocli.CommandLine;

import java.io.ByteArrayInputStream;
import java.io.ByteArrayOutputStream;
import java.io.InputStream;
import java.io.PipedInputStream;
import java.io.PipedOutputStream;
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

    /** One CLI run: its status, its stdout, and its stderr (the console when a command runs, split). */
    record Result(int status, String out, String err) {}

    /** The stdout of the run in progress, for a test that types in reply to what it sees. */
    private static volatile ByteArrayOutputStream liveOut;

    @BeforeAll
    static void prepareGuest() throws Exception {
        guest = GuestImages.defaultGuest(); // download and build once, outside the timed boots
    }

    private static Result run(String... args) { return run(InputStream.nullInputStream(), args); }

    /** Runs the CLI in this JVM with {@code stdin} as standard input; stdout and stderr are captured as bytes. */
    private static synchronized Result run(InputStream stdin, String... args) {
        ByteArrayOutputStream out = new ByteArrayOutputStream(), errBytes = new ByteArrayOutputStream();
        StringWriter err = new StringWriter();
        PrintStream oldOut = System.out, oldErr = System.err;
        InputStream oldIn = System.in;
        liveOut = out;
        System.setOut(new PrintStream(out, true));
        System.setErr(new PrintStream(errBytes, true));
        System.setIn(stdin);
        try {
            CommandLine cl = PolyvisorCommand.commandLine();
            cl.setErr(new PrintWriter(err, true));
            List<String> a = new java.util.ArrayList<>(Arrays.asList(args));
            if (!a.contains("--timeout")) a.addAll(List.of("--timeout", "900"));
            int st = cl.execute(a.toArray(String[]::new));
            System.err.flush();
            return new Result(st, out.toString(StandardCharsets.ISO_8859_1),
                    errBytes.toString(StandardCharsets.ISO_8859_1) + err);
        } finally {
            System.setOut(oldOut);
            System.setErr(oldErr);
            System.setIn(oldIn);
        }
    }

    private static void assertCleanKernelLog(Result r) {
        var m = BAD_LOG.matcher(r.err());
        assertFalse(m.find(), () -> "kernel log has '" + m.group() + "':\n" + r.err());
        assertFalse(r.err().contains("unstable"), () -> "a clocksource was marked unstable:\n" + r.err());
    }

    @Test
    void bareBootRunsTheCommandAndExitsWithItsStatus() {
        Result r = run("run", "--append", VERBOSE, "--exec",
                "uname -r; grep -c ^processor /proc/cpuinfo; cat /sys/devices/system/clocksource/clocksource0/current_clocksource; "
                        + "cut -d' ' -f1 /proc/modules | grep -E '^virtio_(rng|blk|net|console)$|^vsock$' | sort | tr '\\n' ' '; echo; "
                        + "wc -l < /proc/modules; exit 3");
        assertEquals(3, r.status(), r.err() + r.out());
        // The kernel log is on stderr (split console), the command's output alone on stdout.
        assertTrue(r.err().contains("Booting paravirtualized kernel on bare hardware"), r.err());
        assertFalse(r.err().contains("Hypervisor detected"), r.err());
        assertTrue(r.err().contains("Run /init as init process"), r.err());
        assertTrue(guest.kernelRelease().startsWith("6.1."), guest.kernelRelease());
        // The machine has no virtio function unless asked for (no --disk, --net, --device virtio-rng...), so /init
        // loaded no virtio driver (and no module at all: /proc/modules is empty).
        assertEquals(guest.kernelRelease() + "\n1\ntsc\n\n0\n", r.out());
        // The VMM's SETUP_RNG_SEED (LinuxBoot) readies the kernel's RNG in setup_arch, long before /init.
        int seeded = r.err().indexOf("random: crng init done"), init = r.err().indexOf("Run /init as init process");
        assertTrue(seeded >= 0 && seeded < init, r.err());
        assertCleanKernelLog(r);
    }

    @Test
    void execStdoutCarriesExactlyTheCommandsBytesWithUnixLineEnds() {
        Result r = run("run", "--exec", "printf 'a\\nb\\n'; echo to-stderr >&2");
        assertEquals(0, r.status(), r.err());
        assertEquals("a\nb\n", r.out());
        assertTrue(r.err().contains("to-stderr\n"), r.err());
        assertFalse(r.err().contains("\r\n"), "the console on stderr has LF line ends");
        assertTrue(r.err().contains("polyvisor: exit status 0"), r.err());
    }

    @Test
    void execStdoutIsBinarySafe() throws Exception {
        // 4096 random bytes straight to stdout, and their base64; the guest's sha256sum goes to stderr.
        Result r = run("run", "--exec", "head -c 4096 /dev/urandom > /tmp/r; sha256sum /tmp/r >&2; cat /tmp/r");
        assertEquals(0, r.status(), r.err());
        byte[] raw = r.out().getBytes(StandardCharsets.ISO_8859_1);
        assertEquals(4096, raw.length);
        String sha = java.util.HexFormat.of().formatHex(java.security.MessageDigest.getInstance("SHA-256").digest(raw));
        assertTrue(r.err().contains(sha + "  /tmp/r"), "guest sha256 " + sha + " not in:\n" + r.err());
        Result b = run("run", "--exec", "head -c 4096 /dev/urandom > /tmp/r; sha256sum /tmp/r >&2; base64 /tmp/r");
        assertEquals(0, b.status(), b.err());
        byte[] decoded = java.util.Base64.getMimeDecoder().decode(b.out());
        String sha2 = java.util.HexFormat.of().formatHex(java.security.MessageDigest.getInstance("SHA-256").digest(decoded));
        assertTrue(b.err().contains(sha2 + "  /tmp/r"), "base64 round trip: " + sha2 + " not in:\n" + b.err());
    }

    @Test
    void rawConsoleShowsEverythingOnStdout() {
        Result r = run("run", "--console", "raw", "--exec", "echo raw-ok");
        assertEquals(0, r.status(), r.err());
        assertTrue(r.out().contains("raw-ok\r\n"), r.out());
        assertTrue(r.out().contains("polyvisor: init started"), r.out());
    }

    @Test
    void pipedInputReachesTheShellAndExitEndsTheRunWithStatusZero() {
        Result r = run(new ByteArrayInputStream("echo piped-ok\nexit\n".getBytes()), "run");
        assertEquals(0, r.status(), r.err() + r.out());
        assertTrue(r.out().lines().anyMatch(l -> l.strip().equals("piped-ok")), r.out());
    }

    @Test
    void poweroffAndHaltAtThePromptEndTheRunWithStatusZero() {
        Result r = run(new ByteArrayInputStream("echo before-halt\nhalt\n".getBytes()), "run");
        assertEquals(0, r.status(), r.err() + r.out());
        assertTrue(r.out().contains("reboot: Power down"), r.out());
        Result p = run(new ByteArrayInputStream("poweroff\n".getBytes()), "run");
        assertEquals(0, p.status(), p.err() + p.out());
    }

    @Test
    void rebootBootsTheGuestAgainUnlessNoReboot() throws Exception {
        Result once = run(new ByteArrayInputStream("reboot\n".getBytes()), "run", "--no-reboot");
        assertEquals(4, once.status(), once.err() + once.out());
        assertTrue(once.err().contains("polyvisor: guest reset the machine (--no-reboot: the run ends)"), once.err());
        // Without --no-reboot the machine comes back: the second boot's shell takes the next line.
        PipedOutputStream keys = new PipedOutputStream();
        PipedInputStream stdin = new PipedInputStream(keys, 4096);
        Thread typist = Thread.ofPlatform().daemon().start(() -> {
            try {
                keys.write("echo first-boot; reboot\n".getBytes());
                keys.flush();
                // Type the next line once the second boot is under way (flow control holds it until its shell).
                while (liveOut.toString(StandardCharsets.ISO_8859_1).split("Run /init as init process", -1).length < 3)
                    Thread.sleep(100);
                keys.write("echo second-boot; poweroff\n".getBytes());
                keys.close();
            } catch (Exception ignored) {
                // the run ended
            }
        });
        Result r = run(stdin, "run", "--timeout", "240");
        typist.interrupt();
        assertEquals(0, r.status(), r.err() + r.out());
        assertEquals(2, r.out().split("Run /init as init process", -1).length - 1, "two boots:\n" + r.out());
        assertTrue(r.out().contains("second-boot"), r.out());
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
        assertTrue(r.err().contains("[mem 0x0000000100000000-0x000000017fffffff] usable"), r.err());
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
        assertEquals(a.err(), b.err());
        assertTrue(a.err().contains("Run /init"), a.err());
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

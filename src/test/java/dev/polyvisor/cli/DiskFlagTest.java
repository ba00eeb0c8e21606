package dev.polyvisor.cli;

import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.io.TempDir;

import java.io.PrintWriter;
import java.io.StringWriter;
import java.nio.file.Files;
import java.nio.file.Path;

import static org.junit.jupiter.api.Assertions.*;
import static org.junit.jupiter.api.Assumptions.assumeFalse;
import static org.junit.jupiter.api.Assumptions.assumeTrue;

/**
 * {@code --disk FILE[,readonly=on]}: bad files and options are one line and status 2, before any VM is built; an image
 * another VM holds is one line and status 2 when the VM is built (QEMU's image locking).
 */
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
        assertTrue(r[1].contains("unknown option 'cache=none' (readonly=on|off, serial=ID, format=raw)"), r[1]);
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
    void onlyRawImagesAndShortPrintableSerials() throws Exception {
        Path img = Files.write(dir.resolve("f.img"), new byte[4096]);
        String[] qcow = run(img + ",format=qcow2");
        assertEquals("2", qcow[0]);
        assertTrue(qcow[1].startsWith("polyvisor: --disk " + img + ",format=qcow2: only raw images (format=raw)"), qcow[1]);
        String[] longSerial = run(img + ",serial=abcdefghijklmnopqrstu"); // 21
        assertEquals("2", longSerial[0]);
        assertTrue(longSerial[1].contains("serial= takes 1 to 20 printable ASCII characters"), longSerial[1]);
        String[] empty = run(img + ",serial=");
        assertEquals("2", empty[0]);
        String[] fine = run(img + ",format=raw,serial=abcdefghijklmnopqrst"); // 20: the flat guest halts, the timeout ends it
        assertFalse(fine[1].contains("--disk"), fine[1]);
        assertNotEquals("2", fine[0], fine[1]);
    }

    @Test
    void theSameImageTwiceIsInUse() throws Exception {
        dev.polyvisor.guest.FileLockProbe.assumeLocks(dir);
        Path img = Files.write(dir.resolve("twice.img"), new byte[4096]);
        String[] r = run(img.toString(), img.toString());
        assertEquals("2", r[0]);
        assertEquals("polyvisor: --disk " + img + ": the image is in use: another VM holds its lock (or it is given twice);"
                + " a writable image belongs to one VM at a time", r[1].strip());
    }

    /** Another process (a JVM running a one-file program) holds the image's lock; when it lets go, the image opens. */
    @Test
    void anImageAnotherProcessLockedIsInUseUntilItsLockGoes() throws Exception {
        dev.polyvisor.guest.FileLockProbe.assumeLocks(dir);
        Path img = Files.write(dir.resolve("locked.img"), new byte[4096]);
        Path holder = Files.writeString(dir.resolve("Holder.java"), """
                import java.nio.channels.FileChannel;
                import java.nio.file.*;
                class Holder {
                    public static void main(String[] a) throws Exception {
                        try (FileChannel f = FileChannel.open(Path.of(a[0]), StandardOpenOption.READ, StandardOpenOption.WRITE);
                             var lock = f.lock()) {
                            System.out.println("locked");
                            System.out.flush();
                            System.in.read(); // holds the lock until the test closes our stdin
                        }
                    }
                }
                """);
        Process p = new ProcessBuilder(Path.of(System.getProperty("java.home"), "bin", "java").toString(), holder.toString(), img.toString())
                .redirectError(ProcessBuilder.Redirect.INHERIT).start();
        try {
            var out = new java.io.BufferedReader(new java.io.InputStreamReader(p.getInputStream()));
            assertEquals("locked", out.readLine());
            String[] writable = run(img.toString()), readOnly = run(img + ",readonly=on");
            assertEquals("2", writable[0]);
            assertTrue(writable[1].startsWith("polyvisor: --disk " + img + ": the image is in use"), writable[1]);
            assertEquals(1, writable[1].lines().count(), writable[1]);
            assertEquals("2", readOnly[0]);
            assertTrue(readOnly[1].contains("another VM holds its lock for writing"), readOnly[1]);
        } finally {
            p.getOutputStream().close();
            assertEquals(0, p.waitFor());
        }
        String[] after = run(img.toString());
        assertFalse(after[1].contains("in use"), after[1]);
        assertNotEquals("2", after[0], after[1]);
    }

    /**
     * A reboot builds the machine again: the old one lets go of its disks first, so the next boot gets them. The guest
     * here resets at once, every time: --timeout still ends the run (it bounds the whole run, not each boot).
     */
    @Test
    @org.junit.jupiter.api.Timeout(value = 60, threadMode = org.junit.jupiter.api.Timeout.ThreadMode.SEPARATE_THREAD) // a reset loop that --timeout does not end fails here, not hangs
    void aRebootKeepsTheDiskAndTheTimeoutEndsAResetLoop() throws Exception {
        Path k = Files.write(dir.resolve("reset.bin"), new byte[] {(byte) 0xB0, (byte) 0xFE, (byte) 0xE6, 0x64, (byte) 0xF4}); // mov al,0FEh; out 64h,al: 8042 reset
        Path img = Files.write(dir.resolve("boot.img"), new byte[4096]);
        var cl = PolyvisorCommand.commandLine();
        StringWriter err = new StringWriter();
        cl.setErr(new PrintWriter(err, true));
        int st = cl.execute("run", "--boot", "flat", "--kernel", k.toString(), "--timeout", "2", "--disk", img.toString());
        assertFalse(err.toString().contains("in use"), err.toString());
        assertEquals(124, st, err.toString());
        assertTrue(err.toString().matches("(?s)polyvisor: timeout: the guest ran for 2 s without exiting \\(it reset the machine [1-9][0-9]* times\\)\\R"),
                err.toString());
    }

    @Test
    void aDirectoryIsNotADisk() throws Exception {
        String[] r = run(dir.toString());
        assertEquals("2", r[0]);
        assertTrue(r[1].startsWith("polyvisor: --disk " + dir + ": not a disk image (a raw image file or a host block device)"), r[1]);
    }

    @Test
    void aCharacterDeviceIsNotADisk() throws Exception {
        String[] r = run("/dev/null");
        assertEquals("2", r[0]);
        assertTrue(r[1].startsWith("polyvisor: --disk /dev/null: not a disk image"), r[1]);
    }

    @Test
    void blockDevicesAreTold() throws Exception {
        assertFalse(RunCommand.isBlockDevice(dir));
        assertFalse(RunCommand.isBlockDevice(Path.of("/dev/null")));
        Path loop = Path.of("/dev/loop0");
        assumeTrue(Files.exists(loop), "no /dev/loop0 on this host to check a block device with");
        assertTrue(RunCommand.isBlockDevice(loop));
    }
}

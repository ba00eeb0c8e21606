package dev.polyvisor.cli;

import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.io.TempDir;
import picocli.CommandLine;

import java.io.ByteArrayOutputStream;
import java.io.PrintStream;
import java.io.PrintWriter;
import java.io.StringWriter;
import java.nio.file.Files;
import java.nio.file.Path;

import static org.junit.jupiter.api.Assertions.*;

class RunCommandTest {
    @TempDir Path dir;

    record Result(int status, String out, String err) {}

    private static Result run(String... args) {
        StringWriter err = new StringWriter();
        ByteArrayOutputStream out = new ByteArrayOutputStream();
        PrintStream oldOut = System.out;
        System.setOut(new PrintStream(out, true));
        try {
            CommandLine cl = PolyvisorCommand.commandLine();
            cl.setErr(new PrintWriter(err, true));
            int st = cl.execute(args);
            return new Result(st, out.toString(), err.toString());
        } finally {
            System.setOut(oldOut);
        }
    }

    private static void assertOneLineUsageError(Result r, String contains) {
        assertEquals(RunCommand.USAGE, r.status(), r.err());
        assertEquals(1, r.err().lines().count(), r.err());
        assertTrue(r.err().startsWith("polyvisor: "), r.err());
        assertTrue(r.err().contains(contains), r.err());
        assertFalse(r.err().contains("\tat "), r.err());
    }

    /** The boot kind config() settles on for a bzImage file and these extra arguments. */
    private dev.polyvisor.vmm.VmConfig.BootKind bootKind(String... args) throws Exception { return config(args).boot(); }

    /** The VmConfig for a bzImage file and these extra arguments. */
    private dev.polyvisor.vmm.VmConfig config(String... args) throws Exception {
        byte[] bz = new byte[0x1000];
        bz[0x202] = 'H'; bz[0x203] = 'd'; bz[0x204] = 'r'; bz[0x205] = 'S'; // what detect() looks for
        Path k = Files.write(dir.resolve("bzImage"), bz);
        RunCommand cmd = new RunCommand();
        String[] all = java.util.stream.Stream.concat(java.util.stream.Stream.of("--kernel", k.toString()), java.util.Arrays.stream(args))
                .toArray(String[]::new);
        new CommandLine(cmd).parseArgs(all);
        return cmd.config();
    }

    @Test
    void theEntropyDeviceIsThereOnlyWhenAskedFor() throws Exception {
        // As QEMU's machines and Firecracker's: no virtio-rng by default (its driver and module signature checks
        // cost a default boot 65 M of its 487 M guest instructions, and the boot loader's RNG seed gives the kernel
        // its entropy), -device virtio-rng-pci's name accepted too.
        assertFalse(config().links().rng());
        assertTrue(config("--device", "virtio-rng").links().rng());
        assertTrue(config("--device", "virtio-rng-pci").links().rng());
        assertTrue(config("--device", "virtio-rng").devices().isEmpty(), "not a test device");
        var twice = assertThrows(CommandLine.ParameterException.class, () -> config("--device", "virtio-rng", "--device", "virtio-rng-pci"));
        assertTrue(twice.getMessage().contains("only one entropy device"), twice.getMessage());
        var props = assertThrows(CommandLine.ParameterException.class, () -> config("--device", "virtio-rng,max-bytes=1024"));
        assertEquals("--device virtio-rng,max-bytes=1024: virtio-rng has no properties", props.getMessage());
    }

    @Test
    void theVmmUnpacksTheBzImageUnlessBzimageIsAskedFor() throws Exception {
        assertEquals(dev.polyvisor.vmm.VmConfig.BootKind.LINUX_VMLINUX, bootKind("--append", "console=ttyS0 nokaslr"));
        assertEquals(dev.polyvisor.vmm.VmConfig.BootKind.LINUX_VMLINUX, bootKind("--boot", "linux", "--append", "nokaslr"));
        assertEquals(dev.polyvisor.vmm.VmConfig.BootKind.LINUX, bootKind("--boot", "bzimage", "--append", "nokaslr"));
        assertEquals(dev.polyvisor.vmm.VmConfig.BootKind.LINUX_VMLINUX, bootKind("--append", "console=ttyS0"),
                "KASLR on: the VMM places the kernel as the decompressor would (KernelRelocations)");
        assertEquals(dev.polyvisor.vmm.VmConfig.BootKind.LINUX, bootKind("--boot", "bzimage", "--append", "console=ttyS0"));
        assertEquals(dev.polyvisor.vmm.VmConfig.BootKind.PVH, bootKind("--boot", "pvh", "--append", "nokaslr"));
    }

    @Test
    void unknownFlagIsAOneLineErrorWithStatus2() {
        assertOneLineUsageError(run("run", "--bogus"), "Unknown option: '--bogus'");
    }

    @Test
    void badValuesAreOneLineErrors() {
        assertOneLineUsageError(run("run", "--memory", "lots"), "--memory must be a size in MiB");
        assertOneLineUsageError(run("run", "--memory", "1"), "--memory must be between 2 and");
        assertOneLineUsageError(run("run", "--smp", "x"), "--smp");
        assertOneLineUsageError(run("run", "--smp", "0"), "--smp must be between 1 and 64, got 0");
        assertOneLineUsageError(run("run", "--boot", "uefi"), "--boot must be one of linux, bzimage, pvh, multiboot, flat, got 'uefi'");
        assertOneLineUsageError(run("run", "--clock", "fast"), "--clock must be realtime or icount");
        assertOneLineUsageError(run("run", "--timeout", "0"), "--timeout must be a positive number of seconds");
        assertOneLineUsageError(run("run", "--personality", "nope"), "unknown personality 'nope'");
    }

    @Test
    void missingKernelFileIsAOneLineError() {
        Result r = run("run", "--kernel", dir.resolve("missing.elf").toString());
        assertOneLineUsageError(r, "kernel " + dir.resolve("missing.elf") + ": no such file");
    }

    @Test
    void unsupportedCombinationsAreRefused() throws Exception {
        Path bin = Files.write(dir.resolve("x.bin"), new byte[] {(byte) 0xF4});
        assertOneLineUsageError(run("run", "--kernel", bin.toString(), "--boot", "flat", "--exec", "ls"),
                "--exec needs the default Linux guest, whose /init runs the command: drop --kernel");
        assertOneLineUsageError(run("run", "--kernel", bin.toString(), "--boot", "flat", "--probe"), "--probe needs the default Linux guest");
        assertOneLineUsageError(run("run", "--boot", "multiboot", "--exec", "ls"), "--exec needs the Linux guest, not --boot multiboot");
        assertOneLineUsageError(run("run", "--boot", "flat"), "--boot flat needs --kernel");
        assertOneLineUsageError(run("run", "--initrd", bin.toString()), "--initrd needs --kernel");
        assertOneLineUsageError(run("run", "--kernel", bin.toString(), "--flat-mode", "real"), "--flat-address and --flat-mode need --boot flat");
        assertOneLineUsageError(run("run", "--kernel", bin.toString()), "cannot tell how to boot");
        Path fifo = bin.resolveSibling("kernel-fifo");
        assertEquals(0, new ProcessBuilder("mkfifo", fifo.toString()).start().waitFor());
        assertOneLineUsageError(run("run", "--kernel", fifo.toString()), "(a pipe is read once): give --boot");
        assertOneLineUsageError(run("run", "--kernel", bin.toString(), "--boot", "multiboot", "--flat-mode", "real"),
                "--flat-address and --flat-mode need --boot flat");
        assertOneLineUsageError(run("run", "--kernel", bin.toString(), "--boot", "flat", "--flat-mode", "v86"), "--flat-mode must be");
    }

    @Test
    void malformedMultibootKernelIsAOneLineError() throws Exception {
        Path k = Files.write(dir.resolve("k.elf"), new byte[64]);
        assertOneLineUsageError(run("run", "--kernel", k.toString(), "--boot", "multiboot"), "no multiboot header");
    }

    @Test
    void exitStatusFollowsTheDebugExitDevice() throws Exception {
        // 16-bit real mode: mov ax, 0x21 ; out 0xf4, al
        Path bin = Files.write(dir.resolve("exit.bin"), new byte[] {(byte) 0xB8, 0x21, 0, (byte) 0xE6, (byte) 0xF4});
        Result r = run("run", "--kernel", bin.toString(), "--boot", "flat", "--flat-mode", "real", "--flat-address", "0x7c00",
                "--stats", "--memory", "4");
        assertEquals((0x21 << 1) | 1, r.status(), r.err());
        assertTrue(r.err().matches("(?s)polyvisor: stats: instructions 2, wall [0-9.]+ s, guest MIPS [0-9.]+, vm thread cpu [0-9.]+ s, MIPS per cpu-second [0-9.]+\\R"
                + "polyvisor: traces: built 1, evicted on a slot collision 0\\R"), r.err());
    }

    @Test
    void timeoutEndsWithStatus124AndAMessage() throws Exception {
        Path bin = Files.write(dir.resolve("loop.bin"), new byte[] {(byte) 0xEB, (byte) 0xFE});
        Result r = run("run", "--kernel", bin.toString(), "--boot", "flat", "--timeout", "0.2", "--memory", "4");
        assertEquals(124, r.status());
        assertTrue(r.err().startsWith("polyvisor: timeout: the guest ran for"), r.err());
        assertEquals(1, r.err().lines().count(), r.err());
    }

    @Test
    void multibootWithoutKernelBootsTheBundledGuestWhichPowersOff() {
        Result r = run("run", "--boot", "multiboot", "--memory", "64", "--append", "hello");
        assertEquals(0, r.status(), r.err() + r.out());
        assertTrue(r.out().startsWith("Polyvisor freestanding guest: a small multiboot kernel"), r.out());
        assertTrue(r.out().contains("cpu: AuthenticAMD"), r.out());
        assertTrue(r.out().contains(", no hypervisor bit"), r.out());
        assertTrue(r.out().contains("memory: 64 MiB"), r.out());
        assertTrue(r.out().contains("default-guest.elf hello"), r.out());
        assertTrue(r.out().endsWith("powering off\r\n"), r.out());
        assertEquals("", r.err());
    }

    @Test
    void kvmPersonalitySetsTheHypervisorBitTheBundledGuestSees() {
        Result r = run("run", "--boot", "multiboot", "--personality", "kvm", "--memory", "32");
        assertEquals(0, r.status(), r.err() + r.out());
        assertTrue(r.out().contains(", hypervisor bit set"), r.out());
    }

    @Test
    void helpSaysWhatTheDefaultGuestsAre() {
        Result r = run("run", "--help");
        assertEquals(0, r.status());
        String text = r.out().replaceAll("\\s+", " ");
        assertTrue(text.contains("boots the default guest: Debian's cloud kernel with a busybox initramfs"), r.out());
        assertTrue(text.contains("the bundled freestanding guest instead: a small multiboot kernel"), r.out());
    }

    @Test
    void defaultLinuxCommandLinePutsTheConsoleOnCom1AndEncodesTheCommand() {
        String base = "console=ttyS0 panic=-1 cryptomgr.notests";
        assertEquals(base, RunCommand.linuxCommandLine("", null));
        assertEquals(base + " loglevel=8", RunCommand.linuxCommandLine(" loglevel=8 ", null));
        String c = RunCommand.linuxCommandLine("", "echo hi");
        assertEquals(base + " quiet pv.exec=ZWNobyBoaQ==", c);
    }

    @Test
    void aRootfsImageAsFirstDiskIsBootedAsRoot(@org.junit.jupiter.api.io.TempDir java.nio.file.Path dir) throws Exception {
        java.nio.file.Path rootfs = dir.resolve("debian.img"), scratch = dir.resolve("scratch.img");
        for (var f : java.util.List.of(rootfs, scratch)) {
            try (var r = new java.io.RandomAccessFile(f.toFile(), "rw")) {
                r.setLength(1 << 20);
                r.seek(1024 + 0x38); // struct ext4_super_block: s_magic 0xEF53, s_volume_name at 0x78
                r.write(new byte[] {0x53, (byte) 0xEF});
                r.seek(1024 + 0x78);
                r.write((f == rootfs ? "polyvisor-root" : "data").getBytes(java.nio.charset.StandardCharsets.US_ASCII));
            }
        }
        String base = "console=ttyS0 panic=-1 cryptomgr.notests";
        assertEquals(base + " root=/dev/vda", RunCommand.withRootDisk(base, "", java.util.List.of(rootfs.toString())));
        assertEquals(base + " root=/dev/vda", RunCommand.withRootDisk(base, null, java.util.List.of(rootfs + ",readonly=off", scratch.toString())));
        // Only the first disk, only our label, and never over the user's own root=.
        assertEquals(base, RunCommand.withRootDisk(base, "", java.util.List.of(scratch.toString(), rootfs.toString())));
        assertEquals(base, RunCommand.withRootDisk(base, "root=/dev/vdb", java.util.List.of(rootfs.toString())));
        assertEquals(base, RunCommand.withRootDisk(base, "", java.util.List.of()));
        assertTrue(RunCommand.hasRootParameter(" loglevel=7  root=/dev/vda "));
        assertFalse(RunCommand.hasRootParameter("rootfstype=ext4 noroot=1"));
    }

    @Test
    void exitStatusWatcherFindsTheInitMarker() throws Exception {
        ByteArrayOutputStream sink = new ByteArrayOutputStream();
        ExitStatusWatcher w = new ExitStatusWatcher(sink);
        w.write("hello\r\n[   1.0] x\r\n".getBytes());
        assertEquals(-1, w.status());
        w.write("polyvisor: exit status 42\r\n".getBytes());
        assertEquals(42, w.status());
        assertEquals("hello\r\n[   1.0] x\r\npolyvisor: exit status 42\r\n", sink.toString());
    }
}

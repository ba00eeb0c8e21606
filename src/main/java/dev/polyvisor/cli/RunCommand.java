package dev.polyvisor.cli;

import dev.polyvisor.devices.virtio.VirtioBlk;
import dev.polyvisor.guest.GuestImage;
import dev.polyvisor.guest.GuestImageException;
import dev.polyvisor.guest.GuestInit;
import dev.polyvisor.guest.GuestProbe;
import dev.polyvisor.guest.RootfsImages;
import dev.polyvisor.guest.RootfsLayout;
import dev.polyvisor.personality.PersonalityStack;
import dev.polyvisor.personality.PersonalityConfig;
import dev.polyvisor.vmm.Outcome;
import dev.polyvisor.vmm.TeeOutputStream;
import dev.polyvisor.vmm.Vm;
import dev.polyvisor.cpu.jit.JitMode;
import dev.polyvisor.vmm.VmConfig;
import dev.polyvisor.vmm.boot.linux.LinuxBoot;
import dev.polyvisor.vmm.VmConfig.BootKind;
import dev.polyvisor.vmm.VmConfig.ClockMode;
import dev.polyvisor.vmm.VmConfig.FlatEntry;
import dev.polyvisor.vmm.VmConfig.FlatMode;
import dev.polyvisor.vmm.boot.ImageFile;
import dev.polyvisor.vmm.boot.LoadException;
import dev.polyvisor.vmm.boot.Multiboot;
import picocli.CommandLine.Command;
import picocli.CommandLine.Mixin;
import picocli.CommandLine.Option;
import picocli.CommandLine.ParameterException;
import picocli.CommandLine.Spec;
import picocli.CommandLine.Model.CommandSpec;

import java.io.IOException;
import java.io.OutputStream;
import java.nio.file.Files;
import java.nio.file.Path;
import java.time.Duration;
import java.util.ArrayList;
import java.util.List;
import java.util.Locale;
import java.util.concurrent.Callable;

/**
 * {@code polyvisor run}: builds a VM from the flags and runs it with the console on stdout. The exit
 * status is the guest's isa-debug-exit status ((v << 1) | 1), 0 on poweroff, and for ends the guest
 * did not choose: 4 triple fault, 6 guest stopped for good, 8 emulator error, 124 timeout; 2 for a bad
 * command line or an image that cannot be loaded.
 */
@Command(name = "run", mixinStandardHelpOptions = true,
        description = {"Boot a virtual machine with its console on stdout.",
                "",
                "Without --kernel, boots the default guest: Debian's cloud kernel with a busybox initramfs (fetched "
                        + "with apt-get download and built on first use, cached under ~/.cache/polyvisor/guests), with a shell "
                        + "on the console, or running --exec CMD / --probe and exiting with the command's status. "
                        + "With --boot multiboot and no --kernel, boots the bundled freestanding guest instead: a small "
                        + "multiboot kernel (sources in the jar, built with the host gcc at first use) that prints what the "
                        + "machine looks like from inside and powers off.",
                "",
                "Exit status: the guest's isa-debug-exit status ((value << 1) | 1), or 0 on poweroff; 2 bad usage or "
                        + "unloadable image; 4 triple fault; 6 guest halted for good; 8 emulator error; 124 timeout.",
                ""},
        sortOptions = false)
public final class RunCommand implements Callable<Integer> {
    public static final int USAGE = 2;
    static final List<String> BOOT_KINDS = List.of("linux", "bzimage", "pvh", "multiboot", "flat");

    @Spec CommandSpec spec;

    @Option(names = "--kernel", paramLabel = "FILE", description = "Kernel image: bzImage (linux), vmlinux ELF (pvh), multiboot ELF/a.out kludge, or a flat binary.")
    Path kernel;

    @Option(names = "--initrd", paramLabel = "FILE", description = "Initial ramdisk (linux, pvh) or the one multiboot module.")
    Path initrd;

    @Option(names = "--append", paramLabel = "STRING", description = "Kernel command line.")
    String append = "";

    @Mixin KernelPackageOptions kernelPackage = new KernelPackageOptions();

    @Option(names = "--memory", paramLabel = "MiB", description = "Guest RAM in MiB; a G or M suffix is accepted (default: ${DEFAULT-VALUE}).")
    String memory = "128";

    @Option(names = "--smp", paramLabel = "N", description = "Number of vCPUs (default: ${DEFAULT-VALUE}).")
    int smp = 1;

    @Option(names = "--personality", paramLabel = "NAME", description = "Hypervisor ABI(s) to present: bare, kvm, hyperv, xen, vmware, or a stack like hyperv+kvm (default: ${DEFAULT-VALUE}).")
    String personality = "bare";

    @Option(names = "--boot", paramLabel = "KIND", description = "How to enter the kernel: linux, bzimage, pvh, multiboot or flat (default: from the image). "
            + "linux is the Linux 64-bit boot protocol; Polyvisor unpacks the bzImage itself and enters the kernel at startup_64, "
            + "as the bzImage's decompressor would, with KASLR (a random virtual base) unless the command line says nokaslr. "
            + "bzimage always runs that decompressor in the guest, as QEMU's -kernel does.")
    String boot;

    @Option(names = "--flat-address", paramLabel = "ADDR", description = "Load and entry address of a flat binary (default: 0x100000).")
    String flatAddress;

    @Option(names = "--flat-mode", paramLabel = "MODE", description = "Start mode of a flat binary: real, protected or long (default: protected).")
    String flatMode;

    @Option(names = "--clock", paramLabel = "MODE", description = "realtime (host time) or icount (time follows retired instructions) (default: ${DEFAULT-VALUE}).")
    String clock = "realtime";

    @Option(names = "--timeout", paramLabel = "SECONDS", description = "Stop the VM after this many seconds of wall time (exit status 124).")
    String timeout;

    @Option(names = "--console-log", paramLabel = "FILE", description = "Also write the console output to FILE.")
    Path consoleLog;

    @Option(names = "--exec", paramLabel = "CMD", description = "Run CMD with sh in the default Linux guest and exit with its status.")
    String exec;

    @Option(names = "--probe", description = "Run the guest probe in the default Linux guest: what the kernel bound (clocksource, hypervisor, steal time, PV features), as one JSON object between '=== polyvisor probe begin ===' and '=== polyvisor probe end ===' lines.")
    boolean probe;

    @Option(names = "--abi-disable", paramLabel = "LIST", split = ",", description = "Switch off ABI elements of the personality, comma separated (see 'polyvisor abi list').")
    List<String> abiDisable = new ArrayList<>();

    @Option(names = "--console", paramLabel = "MODE", description = "With --exec/--probe: split (default) puts the command's "
            + "stdout alone on stdout, byte for byte, and the console (kernel log, the command's stderr, Polyvisor's lines) "
            + "on stderr; raw puts the whole console on stdout as the UART sends it.")
    String consoleMode;

    @Option(names = "--no-reboot", description = "End the run when the guest resets the machine instead of booting it again "
            + "(as QEMU's -no-reboot; --exec and --probe runs always end).")
    boolean noReboot;

    @Option(names = "--disk", paramLabel = "FILE[,readonly=on][,serial=ID]", description = "A raw disk image, or a host block device, as a virtio-blk device "
            + "(repeatable: /dev/vda, /dev/vdb, ...); readonly=on offers it read-only and fails the guest's writes; serial=ID (up to 20 characters) is the disk's serial "
            + "(/sys/block/vda/serial, /dev/disk/by-id/virtio-ID), the file's name by default; format=raw is accepted, as QEMU spells it. The image is locked while the VM runs, as QEMU "
            + "locks it: a writable one for this VM alone, a read-only one shared with other read-only users. A first disk "
            + "made by 'polyvisor image --rootfs' is booted as the root filesystem (root=/dev/vda is added unless --append names a root=).")
    List<String> disks = new ArrayList<>();

    @Option(names = "--net", paramLabel = "user[,hostfwd=tcp:ADDR:HOSTPORT-:GUESTPORT]|tap=IFNAME", description = "A virtio-net device "
            + "with user-mode networking through passt (Debian package passt), as QEMU's -nic user: the guest gets its "
            + "address by DHCP (udhcpc in the default guest), the gateway address reaches the host's loopback, and each "
            + "hostfwd=tcp|udp:[ADDR]:HOSTPORT-:GUESTPORT forwards a host port to the guest; or on the host's TAP "
            + "interface IFNAME, as QEMU's -nic tap,ifname=IFNAME,script=no (make it with ip tuntap add dev IFNAME mode "
            + "tap user $USER and configure it yourself). Repeatable.")
    List<String> nets = new ArrayList<>();

    @Option(names = "--vsock", paramLabel = "cid=N,uds=PATH", description = "A virtio-vsock device with guest context ID N "
            + "and Firecracker's host convention: the guest's connections to CID 2 port P go to the Unix socket PATH_P; "
            + "a host program connects to PATH and writes 'CONNECT P\\n' to reach guest port P (answer 'OK HOSTPORT\\n').")
    String vsock;

    @Option(names = "--virtio-ring", paramLabel = "LAYOUT", description = "The virtqueue layout the virtio devices offer: split "
            + "(the default) or packed (virtio 1.2 2.8, VIRTIO_F_RING_PACKED, which Linux takes when offered; QEMU's packed=on).")
    String virtioRing;

    @Option(names = "--jit", paramLabel = "MODE", description = "The JIT tier: off (interpreter only), on (compile hot traces to "
            + "JVM bytecode), always (compile every trace on first use, for testing) or check (as on, verifying each new "
            + "compilation against the interpreter; a difference stops the VM) (default: the polyvisor.jit system property, else off).")
    String jit;

    @Option(names = "--stats", description = "Print instructions retired, wall time and guest MIPS to stderr at the end.")
    boolean stats;

    @Option(names = "--cpu", paramLabel = "MODEL", description = "CPU model as QEMU spells it: qemu64 (default), max or Opteron_G1, then ,+FEATURE ,-FEATURE ,vendor=VENDOR; a feature Polyvisor does not implement is an error. ,force-emulation-prefix=on accepts KVM's forced-emulation prefix (ud2; .ascii \"kvm\") before an instruction, as KVM's module parameter force_emulation_prefix=1 does; without it the prefix is #UD.")
    String cpu;

    @Option(names = "--device", paramLabel = "NAME[,OPTS]", description = "Add a device, as QEMU's -device: virtconsole (a "
            + "virtio console, the guest's hvc0, whose host end is this console: its output goes to stdout and the "
            + "keyboard goes to it instead of the serial port; the default guest then runs its shell on hvc0), "
            + "virtio-rng (an entropy device at 00:01.0 fed from the host's SecureRandom: the guest's /dev/hwrng; "
            + "also spelled virtio-rng-pci), pc-testdev, hyperv-testdev (with --personality hyperv), or isa-debug-exit[,iobase=PORT][,iosize=N] "
            + "to move the exit port from 0xf4 (repeatable).")
    List<String> devices = new ArrayList<>();

    private ParameterException usage(String msg) { return new ParameterException(spec.commandLine(), msg); }

    /** Turns the flags into a VmConfig; every problem is a ParameterException with a one-line message. */
    VmConfig config() throws LoadException {
        int mib = parseMemory(memory);
        if (smp < 1 || smp > VmConfig.MAX_SMP) throw usage("--smp must be between 1 and " + VmConfig.MAX_SMP + ", got " + smp);
        ClockMode clockMode = switch (clock.toLowerCase(Locale.ROOT)) {
            case "realtime" -> ClockMode.REALTIME;
            case "icount" -> ClockMode.ICOUNT;
            default -> throw usage("--clock must be realtime or icount, got '" + clock + "'");
        };
        if (jit != null) {
            try {
                JitMode.parse(jit);
            } catch (IllegalArgumentException e) {
                throw usage("--jit: " + e.getMessage());
            }
        }
        Duration to = timeout == null ? null : parseTimeout(timeout);
        List<PersonalityConfig> personalities;
        try {
            personalities = PersonalityStack.parse(personality, abiDisable);
        } catch (IllegalArgumentException e) {
            throw usage("--personality " + personality + ": " + e.getMessage());
        }
        BootKind kind = boot == null ? null : switch (boot.toLowerCase(Locale.ROOT)) {
            case "linux", "bzimage" -> BootKind.LINUX;
            case "pvh" -> BootKind.PVH;
            case "multiboot" -> BootKind.MULTIBOOT;
            case "flat" -> BootKind.FLAT;
            default -> throw usage("--boot must be one of " + String.join(", ", BOOT_KINDS) + ", got '" + boot + "'");
        };
        if ((flatAddress != null || flatMode != null) && kind != BootKind.FLAT)
            throw usage("--flat-address and --flat-mode need --boot flat");
        boolean wantsCommand = exec != null || probe;
        try {
            kernelPackage.source(); // a bad --suite or --kernel-package is a usage error before anything is fetched
        } catch (IllegalArgumentException e) {
            throw usage(e.getMessage());
        }
        if (kernelPackage.given() && (kernel != null || kind == BootKind.MULTIBOOT || kind == BootKind.FLAT))
            throw usage("--kernel-package and --suite choose the Linux guest's kernel: drop --kernel and --boot multiboot/flat");
        Path k = kernel, rd = initrd;
        String cmdline = append;
        if (k == null) {
            if (rd != null) throw usage("--initrd needs --kernel");
            if (kind == BootKind.FLAT) throw usage("--boot flat needs --kernel");
            if (kind == BootKind.MULTIBOOT) {
                if (wantsCommand) throw usage((exec != null ? "--exec" : "--probe") + " needs the Linux guest, not --boot multiboot");
                try {
                    k = DefaultGuest.kernel();
                } catch (DefaultGuest.BuildException e) {
                    throw new LoadException(e.getMessage());
                }
            } else {
                GuestImage g;
                try {
                    g = kernelPackage.guest();
                } catch (GuestImageException e) {
                    throw new LoadException(kernelPackage.given()
                            ? "cannot prepare the Linux guest for " + kernelPackage.source() + ": " + e.getMessage()
                            : "cannot prepare the default Linux guest: " + e.getMessage()
                            + " (--boot multiboot runs the bundled freestanding guest instead)");
                }
                k = g.kernel();
                rd = g.initramfs();
                if (kind == null) kind = BootKind.LINUX;
                cmdline = linuxCommandLine(append, guestCommand(), splitConsole());
                // A Debian root filesystem from 'polyvisor image --rootfs' as the first disk is booted: /init mounts it.
                cmdline = withRootDisk(cmdline, append, disks);
                // The interactive shell follows the keyboard to the virtio console.
                if (!wantsCommand && devices.stream().anyMatch(RunCommand::isVirtconsole)) cmdline += " " + GuestInit.SHELL_ON_HVC0;
            }
        } else {
            if (kind == null) kind = detect(k);
            if (wantsCommand) throw usage((exec != null ? "--exec" : "--probe")
                    + " needs the default Linux guest, whose /init runs the command: drop --kernel");
        }
        // The bzImage's decompressor only unpacks the vmlinux and, with KASLR, moves it: the VMM does both (VmlinuxStream,
        // KernelRelocations) and the guest starts at startup_64 in the state the decompressor's last jump leaves; 96 M
        // guest instructions of a default boot's 676 M were the decompressor's. --boot bzimage runs it in the guest.
        if (kind == BootKind.LINUX && !"bzimage".equalsIgnoreCase(boot)) kind = BootKind.LINUX_VMLINUX;
        if (consoleMode != null) {
            String m = consoleMode.toLowerCase(Locale.ROOT);
            if (!m.equals("split") && !m.equals("raw")) throw usage("--console must be split or raw, got '" + consoleMode + "'");
            if (m.equals("split") && !wantsCommand)
                throw usage("--console split needs --exec or --probe (an interactive console is always raw)");
        }
        FlatEntry flat = kind == BootKind.FLAT ? flatEntry() : null;
        if (personalities.isEmpty()) throw usage("--personality must name at least one personality");
        List<String> parts = List.of(personality.trim().split("\\+"));
        try {
            // The console log is opened here, once for all the boots of a run (a reboot appends to it).
            VmConfig.Links links = links();
            List<String> testDevices = devices.stream().filter(d -> !isVirtio(d)).toList();
            return new VmConfig(mib, smp, k, rd, cmdline, kind, clockMode, to, null, parts, flat, abiDisable, cpu, testDevices,
                    parseDisks(), links);
        } catch (IllegalArgumentException e) {
            throw usage(e.getMessage());
        }
    }

    /**
     * The default guest's command line with {@code root=/dev/vda} added when the first --disk is a root
     * filesystem image that 'polyvisor image --rootfs' built (its ext4 label says so) and the user's
     * --append names no root= of its own; /init then mounts it and switch_roots ({@link GuestInit}).
     */
    static String withRootDisk(String cmdline, String userAppend, List<String> diskArgs) {
        if (diskArgs.isEmpty() || hasRootParameter(userAppend)) return cmdline;
        if (!RootfsImages.isRootfs(Path.of(diskArgs.getFirst().split(",")[0]))) return cmdline;
        return cmdline + " root=" + RootfsLayout.ROOT_DEVICE;
    }

    /** True when the user's --append names the root device already. */
    static boolean hasRootParameter(String userAppend) {
        if (userAppend == null) return false;
        for (String a : userAppend.trim().split("\\s+")) if (a.startsWith("root=")) return true;
        return false;
    }

    /** The command /init runs for --exec/--probe (pv-probe first), or null for an interactive shell. */
    String guestCommand() {
        if (!probe) return exec;
        return exec == null ? GuestProbe.PATH : GuestProbe.PATH + "; " + exec;
    }

    /**
     * What every default-guest command line starts with (documented in README "The default guest"):
     * the console on COM1; {@code panic=-1} so a guest kernel panic reboots at once, which ends the run
     * with a message instead of spinning until --timeout (Firecracker passes panic=1 for the same
     * reason); {@code cryptomgr.notests} skips the crypto self-tests, seconds of pure computation under
     * emulation (crypto/testmgr.c; a user who wants them appends cryptomgr.notests=0).
     */
    static final String DEFAULT_KERNEL_ARGS = "console=ttyS0 panic=-1 cryptomgr.notests";

    /** True when --exec/--probe output goes to stdout alone, the console to stderr (the default for commands). */
    boolean splitConsole() {
        return guestCommand() != null && (consoleMode == null || consoleMode.equalsIgnoreCase("split"));
    }

    /** As {@link #linuxCommandLine(String, String, boolean)} with the command's output on the console. */
    public static String linuxCommandLine(String userAppend, String command) { return linuxCommandLine(userAppend, command, false); }

    /**
     * The default guest's kernel command line: {@link #DEFAULT_KERNEL_ARGS} (and quiet when a command
     * runs, so its output is what the user sees), the command for /init and, with {@code split}, the
     * port for its stdout ({@link GuestInit#STDOUT_ON_COM2}), then the user's --append.
     */
    public static String linuxCommandLine(String userAppend, String command, boolean split) {
        StringBuilder b = new StringBuilder(DEFAULT_KERNEL_ARGS);
        if (command != null) {
            b.append(" quiet ").append(GuestInit.execParameter(command));
            if (split) b.append(' ').append(GuestInit.STDOUT_ON_COM2);
        }
        if (userAppend != null && !userAppend.isBlank()) b.append(' ').append(userAppend.trim());
        return b.toString();
    }

    private FlatEntry flatEntry() {
        long addr = FlatEntry.DEFAULT.address();
        if (flatAddress != null) {
            try {
                String a = flatAddress.toLowerCase(Locale.ROOT);
                addr = a.startsWith("0x") ? Long.parseUnsignedLong(a.substring(2), 16) : Long.parseLong(a);
            } catch (NumberFormatException e) {
                throw usage("--flat-address must be a number like 0x100000, got '" + flatAddress + "'");
            }
        }
        FlatMode mode = flatMode == null ? FlatMode.PROTECTED32 : switch (flatMode.toLowerCase(Locale.ROOT)) {
            case "real" -> FlatMode.REAL;
            case "protected" -> FlatMode.PROTECTED32;
            case "long" -> FlatMode.LONG64;
            default -> throw usage("--flat-mode must be real, protected or long, got '" + flatMode + "'");
        };
        return new FlatEntry(addr, mode);
    }

    private BootKind detect(Path k) throws LoadException {
        // A pipe (--kernel <(...)) can be read once: looking at its header would leave the loader the rest.
        if (Files.exists(k) && !Files.isDirectory(k) && !Files.isRegularFile(k))
            throw usage("cannot tell how to boot " + k + " without reading it, and it is not a regular file (a pipe is read once): give --boot");
        // The setup header and the multiboot search window, not the whole image (tens of MiB).
        byte[] img = ImageFile.head(k, "kernel", Multiboot.SEARCH_LIMIT + 64);
        if (img.length >= 0x206 && img[0x202] == 'H' && img[0x203] == 'd' && img[0x204] == 'r' && img[0x205] == 'S')
            return BootKind.LINUX;
        if (Multiboot.isMultiboot(img)) return BootKind.MULTIBOOT;
        throw usage("cannot tell how to boot " + k + " (no bzImage or multiboot header): give --boot");
    }

    static boolean isVirtconsole(String device) {
        String n = deviceName(device);
        return n.equals("virtconsole") || n.equals("virtio-console");
    }

    static boolean isVirtioRng(String device) {
        String n = deviceName(device);
        return n.equals("virtio-rng") || n.equals("virtio-rng-pci");
    }

    private static String deviceName(String device) { return device.split(",")[0].trim().toLowerCase(Locale.ROOT); }

    /** The --device values that name a virtio device (VmConfig.Links), not a test device. */
    private static boolean isVirtio(String device) { return isVirtconsole(device) || isVirtioRng(device); }

    /**
     * --net, --vsock and --device virtconsole / virtio-rng (IllegalArgumentException for a bad one). No guest needs
     * the entropy device to boot: the VMM seeds the kernel's RNG as a boot loader does (LinuxBoot's SETUP_RNG_SEED).
     */
    private VmConfig.Links links() {
        List<VmConfig.Net> n = new ArrayList<>();
        for (String s : nets) n.add(LinkFlags.net(s));
        for (String d : devices)
            if (isVirtio(d) && d.contains(",")) throw new IllegalArgumentException("--device " + d + ": " + deviceName(d) + " has no properties");
        if (devices.stream().filter(RunCommand::isVirtconsole).count() > 1)
            throw new IllegalArgumentException("--device virtconsole: only one virtio console is offered");
        if (devices.stream().filter(RunCommand::isVirtioRng).count() > 1)
            throw new IllegalArgumentException("--device virtio-rng: only one entropy device is offered (at 00:01.0)");
        boolean packed = switch (virtioRing == null ? "split" : virtioRing) {
            case "split" -> false;
            case "packed" -> true;
            default -> throw new IllegalArgumentException("--virtio-ring " + virtioRing + ": the layouts are split and packed");
        };
        return new VmConfig.Links(n, devices.stream().anyMatch(RunCommand::isVirtconsole), vsock == null ? null : LinkFlags.vsock(vsock),
                devices.stream().anyMatch(RunCommand::isVirtioRng), packed);
    }

    /**
     * --disk FILE[,readonly=on|off][,serial=ID][,format=raw]: the file must exist and be readable, and writable unless
     * read-only. serial= and format= are spelled as QEMU's -drive spells them: the serial is the disk's GET_ID answer
     * (at most 20 printable ASCII bytes, virtio 1.2 5.2.6), and raw is the only format.
     */
    private List<VmConfig.Disk> parseDisks() {
        List<VmConfig.Disk> out = new ArrayList<>();
        for (String d : disks) {
            String[] p = d.split(",");
            boolean ro = false;
            String serial = null;
            for (int i = 1; i < p.length; i++) {
                String o = p[i];
                String lower = o.toLowerCase(Locale.ROOT);
                if (lower.startsWith("serial=")) {
                    serial = o.substring("serial=".length());
                    if (serial.isEmpty() || serial.length() > VirtioBlk.ID_BYTES || !serial.chars().allMatch(ch -> ch > ' ' && ch < 0x7F))
                        throw usage("--disk " + d + ": serial= takes 1 to " + VirtioBlk.ID_BYTES + " printable ASCII characters, got '" + serial + "'");
                    continue;
                }
                switch (lower) {
                    case "readonly=on", "readonly", "readonly=true" -> ro = true;
                    case "readonly=off", "readonly=false" -> ro = false;
                    case "format=raw" -> { } // the only format
                    default -> throw usage(lower.startsWith("format=")
                            ? "--disk " + d + ": only raw images (format=raw); convert with 'qemu-img convert -O raw'"
                            : "--disk " + d + ": unknown option '" + o + "' (readonly=on|off, serial=ID, format=raw)");
                }
            }
            Path f = Path.of(p[0]);
            if (p[0].isEmpty() || !Files.exists(f)) throw usage("--disk " + p[0] + ": no such file");
            if (!Files.isRegularFile(f) && !isBlockDevice(f))
                throw usage("--disk " + p[0] + ": not a disk image (a raw image file or a host block device)");
            if (!Files.isReadable(f)) throw usage("--disk " + p[0] + ": not readable");
            if (!ro && !Files.isWritable(f)) throw usage("--disk " + p[0] + ": read-only file; add ,readonly=on");
            out.add(new VmConfig.Disk(f, ro, serial));
        }
        return out;
    }

    /**
     * Whether {@code f} is a block device (a disk, partition, LVM volume or loop device), which QEMU and Firecracker take
     * as a raw disk too: its size is the device's ({@link java.nio.channels.FileChannel#size} asks the kernel for it).
     */
    static boolean isBlockDevice(Path f) {
        try {
            return ((Integer) Files.getAttribute(f, "unix:mode") & S_IFMT) == S_IFBLK;
        } catch (IOException | UnsupportedOperationException | IllegalArgumentException e) {
            return false; // no unix view (not Linux): image files only
        }
    }

    /** st_mode's file type bits and the block-device type (stat(2), inode(7)). */
    private static final int S_IFMT = 0170000, S_IFBLK = 0060000;

    private int parseMemory(String s) {
        String t = s.trim().toUpperCase(Locale.ROOT);
        long mult = 1;
        if (t.endsWith("G")) { mult = 1024; t = t.substring(0, t.length() - 1); }
        else if (t.endsWith("M")) t = t.substring(0, t.length() - 1);
        try {
            long v = Long.parseLong(t) * mult;
            if (v < 2 || v > VmConfig.MAX_MEMORY_MIB)
                throw usage("--memory must be between 2 and " + VmConfig.MAX_MEMORY_MIB + " MiB, got '" + s + "'");
            return (int) v;
        } catch (NumberFormatException e) {
            throw usage("--memory must be a size in MiB like 512 or 2G, got '" + s + "'");
        }
    }

    private Duration parseTimeout(String s) {
        try {
            double sec = Double.parseDouble(s);
            if (!(sec > 0) || sec > 1e9) throw usage("--timeout must be a positive number of seconds, got '" + s + "'");
            return Duration.ofNanos((long) (sec * 1e9));
        } catch (NumberFormatException e) {
            throw usage("--timeout must be a number of seconds, got '" + s + "'");
        }
    }

    @Override
    public Integer call() {
        java.io.PrintWriter err = spec.commandLine().getErr();
        VmConfig cfg;
        try {
            cfg = config();
        } catch (LoadException e) {
            err.println("polyvisor: " + e.getMessage());
            err.flush();
            return USAGE;
        }
        boolean runsCommand = kernel == null && (exec != null || probe);
        boolean split = runsCommand && splitConsole();
        OutputStream log;
        try {
            log = consoleLog == null ? null : Files.newOutputStream(consoleLog);
        } catch (IOException e) {
            err.println("polyvisor: console log " + consoleLog + ": cannot create: " + e.getMessage());
            err.flush();
            return USAGE;
        }
        // split: the command's stdout (COM2) alone on stdout; the console, with LF line ends, on stderr.
        // Buffered here, flushed by the Vm (at once, or after each round of quanta when it may batch): System.out and
        // System.err flush at every write, which was a write(2) per byte the guest's UART sent.
        OutputStream terminal = new java.io.BufferedOutputStream(split ? new CrlfToLf(System.err) : System.out, 8192);
        OutputStream consoleOut = log == null ? terminal : new TeeOutputStream(terminal, log);
        ExitStatusWatcher watcher = runsCommand ? new ExitStatusWatcher(consoleOut) : null;
        OutputStream console = watcher != null ? watcher : consoleOut;
        // A reset boots the guest again (QEMU's default), except for a command run, which ran its command once.
        boolean reboot = !noReboot && !runsCommand;
        Outcome o;
        // The VM runs on this thread: its CPU time measures the emulator even on a loaded host.
        java.lang.management.ThreadMXBean threads = java.lang.management.ManagementFactory.getThreadMXBean();
        long cpu0 = threads.getCurrentThreadCpuTime();
        long cpuNanos;
        long instructions = 0, t0 = System.nanoTime();
        String jitStats = "", traceStats = "", vcpuStats = "";
        JitMode jitMode = jit == null ? JitMode.fromSystemProperty() : JitMode.parse(jit);
        try (log) {
            Vm vm = new Vm(cfg, console, jitMode);
            ConsoleInput in = null;
            try {
                if (split) vm.setSecondSerialOutput(System.out);
                // Only an interactive Linux guest reads its console: the freestanding guests never do, and
                // --exec/--probe run a command without input. Leaving stdin alone otherwise keeps Polyvisor
                // usable where stdin belongs to someone else (CI, a test runner's fork channel).
                boolean linux = cfg.boot() == BootKind.LINUX || cfg.boot() == BootKind.LINUX_VMLINUX || cfg.boot() == BootKind.PVH;
                in = linux && guestCommand() == null ? ConsoleInput.start(vm) : null;
                // --timeout bounds the whole run: a guest that resets the machine over and over must still end.
                long runDeadline = cfg.timeout() == null ? Long.MAX_VALUE : t0 + cfg.timeout().toNanos();
                int resets = 0;
                for (;;) {
                    o = vm.run();
                    instructions += o.instructions();
                    if (vm.traces.jit() != null) jitStats = vm.traces.jit().summary();
                    traceStats = vm.traces.summary();
                    vcpuStats = vm.vcpus.size() > 1 ? vm.vcpuSummary() : "";
                    if (o.kind() == Outcome.Kind.RESET && reboot) {
                        resets++;
                        long left = runDeadline - System.nanoTime();
                        if (left > 0) {
                            // The old machine goes first: the next one takes its disks' locks (VirtioSlots.lock) and its RAM.
                            vm.close();
                            Vm next = new Vm(cfg.timeout() == null ? cfg : cfg.withTimeout(Duration.ofNanos(left)), console, jitMode);
                            if (in != null) in.retarget(next);
                            vm = next;
                            continue;
                        }
                        o = new Outcome(Outcome.Kind.TIMEOUT, Outcome.TIMEOUT_STATUS, "", 0, 0);
                    }
                    if (o.kind() == Outcome.Kind.TIMEOUT && resets > 0)
                        o = new Outcome(o.kind(), o.status(), "timeout: the guest ran for " + cfg.timeout().toSeconds()
                                + " s without exiting (it reset the machine " + resets + " times)", 0, 0);
                    break;
                }
                cpuNanos = threads.getCurrentThreadCpuTime() - cpu0;
            } finally {
                if (in != null) in.close();
                vm.close();
            }
        } catch (LoadException e) {
            err.println("polyvisor: " + e.getMessage());
            err.flush();
            return USAGE;
        } catch (IOException e) {
            err.println("polyvisor: console log " + consoleLog + ": " + e.getMessage());
            err.flush();
            return USAGE;
        }
        o = new Outcome(o.kind(), o.status(), o.message(), instructions, System.nanoTime() - t0);
        if (o.kind() == Outcome.Kind.RESET)
            o = new Outcome(o.kind(), o.status(), o.message() + (runsCommand ? "" : " (--no-reboot: the run ends)"),
                    o.instructions(), o.wallNanos());
        try {
            console.flush(); // the Vm flushed at its end; a console that went away meanwhile is not an error here
        } catch (IOException ignored) {
        }
        System.out.flush();
        if (!o.message().isEmpty()) err.println("polyvisor: " + o.message());
        if (stats)
            err.printf(Locale.ROOT, "polyvisor: stats: instructions %d, wall %.3f s, guest MIPS %.1f, vm thread cpu %.3f s, MIPS per cpu-second %.1f%n",
                    o.instructions(), o.wallNanos() / 1e9, o.mips(), cpuNanos / 1e9,
                    cpuNanos > 0 ? o.instructions() * 1e3 / cpuNanos : 0.0);
        if (stats && !vcpuStats.isEmpty()) err.println("polyvisor: vcpus: " + vcpuStats);
        if (stats && !traceStats.isEmpty()) err.println("polyvisor: traces: " + traceStats);
        if (stats && !jitStats.isEmpty()) err.println("polyvisor: jit: " + jitStats);
        err.flush();
        if (watcher != null && o.kind() == Outcome.Kind.POWEROFF) {
            if (watcher.status() >= 0) return watcher.status();
            err.println("polyvisor: the guest powered off without reporting the command's exit status");
            err.flush();
            return 1;
        }
        return o.status();
    }
}

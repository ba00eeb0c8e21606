package dev.polyvisor.vmm;

import java.nio.file.Path;
import java.time.Duration;
import java.util.List;

/**
 * Everything needed to build a {@link Vm}. Validated on construction, so a bad value is reported as a
 * one-line {@link IllegalArgumentException} before anything is allocated.
 *
 * @param memoryMiB     guest RAM in MiB
 * @param smp           number of vCPUs
 * @param kernel        the kernel image (ELF, multiboot, bzImage or flat binary, per {@code boot})
 * @param initrd        an initial ramdisk or multiboot module, or null
 * @param append        the kernel command line ("" when none)
 * @param boot          how the kernel is entered
 * @param clock         realtime (host time) or icount (time follows retired instructions)
 * @param timeout       wall-clock limit for the run, or null for none
 * @param consoleLog    a file that receives a copy of the console output, or null
 * @param personalities hypervisor ABIs to present, in base order, each as in a {@code --personality}
 *                      spec part ("kvm", "vmware:backdoor=off"); empty means bare
 * @param flat          where and in which mode a {@link BootKind#FLAT} image starts
 * @param abiDisable    ABI element ids switched off ({@code --abi-disable})
 * @param cpu           the CPU model as QEMU spells it ({@code --cpu}: MODEL[,+FEATURE][,-FEATURE][,vendor=...])
 * @param devices       test devices asked for ({@code --device}), each as in {@link DeviceSpec#parse}
 * @param disks         virtio-blk disks in PCI slot order ({@code --disk}); the first is the guest's /dev/vda
 * @param links         the virtio devices with a host end: network, console, vsock, entropy ({@code --net},
 *                      {@code --device virtconsole}, {@code --vsock}, {@code --device virtio-rng})
 */
public record VmConfig(int memoryMiB, int smp, Path kernel, Path initrd, String append, BootKind boot,
                       ClockMode clock, Duration timeout, Path consoleLog, List<String> personalities,
                       FlatEntry flat, List<String> abiDisable, String cpu, List<String> devices,
                       List<Disk> disks, Links links) {
    /**
     * LINUX: a bzImage by the 64-bit boot protocol; PVH: its vmlinux at the PVH entry; LINUX_VMLINUX: as
     * LINUX but with the decompressor skipped (the payload decompressed by the VMM and entered at
     * startup_64; for kernels at their link address, i.e. {@code nokaslr}); MULTIBOOT and FLAT: test images.
     */
    public enum BootKind { LINUX, PVH, LINUX_VMLINUX, MULTIBOOT, FLAT }

    public enum ClockMode { REALTIME, ICOUNT }

    /** The processor mode a flat binary starts in. */
    public enum FlatMode { REAL, PROTECTED32, LONG64 }

    /** Load address (also the entry point) and start mode of a flat binary. */
    public record FlatEntry(long address, FlatMode mode) {
        public static final FlatEntry DEFAULT = new FlatEntry(0x100000, FlatMode.PROTECTED32);
    }

    /**
     * A disk image ({@code --disk FILE[,readonly=on][,serial=ID]}); {@code serial} is what GET_ID answers (Linux's
     * /sys/block/vdX/serial), null for the default: the file's name.
     */
    public record Disk(Path path, boolean readOnly, String serial) {
        public Disk(Path path, boolean readOnly) { this(path, readOnly, null); }
    }

    /**
     * The virtio devices whose other end is on the host: user-mode networks through passt ({@code --net
     * user}), a virtio console whose host end is the VM's console ({@code --device virtconsole}), a
     * vsock device ({@code --vsock}), and the entropy device fed from the host's SecureRandom ({@code --device
     * virtio-rng}; absent unless asked for, as in QEMU and Firecracker).
     */
    public record Links(List<Net> nets, boolean virtconsole, Vsock vsock, boolean rng, boolean packedRings) {
        public static final Links NONE = new Links(List.of(), false, null, false);

        /** Devices with split virtqueues. */
        public Links(List<Net> nets, boolean virtconsole, Vsock vsock, boolean rng) { this(nets, virtconsole, vsock, rng, false); }

        public Links {
            nets = nets == null ? List.of() : List.copyOf(nets);
        }
    }

    /** A {@code --net} device's host end. */
    public sealed interface Net {
        /** {@code --net user[,hostfwd=...]}: user-mode networking through passt, and the host ports forwarded to the guest. */
        record User(List<HostForward> forwards) implements Net {
            public User { forwards = List.copyOf(forwards); }
        }

        /** {@code --net tap=IFNAME}: the host's TAP interface IFNAME. */
        record Tap(String ifname) implements Net {}
    }

    /** {@code hostfwd=tcp|udp:[HOSTADDR]:HOSTPORT-:GUESTPORT} (QEMU's slirp spelling). */
    public record HostForward(boolean udp, String hostAddress, int hostPort, int guestPort) {}

    /** {@code --vsock cid=N,uds=PATH}: the guest's context ID and the host's Unix socket (Firecracker's convention). */
    public record Vsock(long cid, Path uds) {}

    /** The most --disk flags: one PCI slot each, after the entropy device (slots 2-31 of bus 0). */
    public static final int MAX_DISKS = 30;

    public static final int MAX_MEMORY_MIB = 64 * 1024;
    public static final int MAX_SMP = 64;

    public VmConfig {
        if (memoryMiB < 2 || memoryMiB > MAX_MEMORY_MIB)
            throw new IllegalArgumentException("memory must be between 2 and " + MAX_MEMORY_MIB + " MiB, got " + memoryMiB);
        if (smp < 1 || smp > MAX_SMP)
            throw new IllegalArgumentException("smp must be between 1 and " + MAX_SMP + ", got " + smp);
        if (boot == null) throw new IllegalArgumentException("boot kind is required");
        if (clock == null) clock = ClockMode.REALTIME;
        if (append == null) append = "";
        if (timeout != null && (timeout.isNegative() || timeout.isZero()))
            throw new IllegalArgumentException("timeout must be positive, got " + timeout.toSeconds() + " s");
        personalities = personalities == null || personalities.isEmpty() ? List.of("bare") : List.copyOf(personalities);
        abiDisable = abiDisable == null ? List.of() : List.copyOf(abiDisable);
        if (flat == null) flat = FlatEntry.DEFAULT;
        if (cpu == null || cpu.isBlank()) cpu = dev.polyvisor.cpu.model.CpuModels.DEFAULT;
        try {
            dev.polyvisor.cpu.model.CpuModels.parse(cpu);
        } catch (IllegalArgumentException e) {
            throw new IllegalArgumentException("--cpu " + cpu + ": " + e.getMessage());
        }
        devices = devices == null ? List.of() : List.copyOf(devices);
        for (String d : devices) DeviceSpec.parse(d);
        disks = disks == null ? List.of() : List.copyOf(disks);
        if (disks.size() > MAX_DISKS) throw new IllegalArgumentException("at most " + MAX_DISKS + " disks, got " + disks.size());
        if (links == null) links = Links.NONE;
    }

    public VmConfig(int memoryMiB, int smp, Path kernel, Path initrd, String append, BootKind boot, ClockMode clock,
                    Duration timeout, Path consoleLog, List<String> personalities, FlatEntry flat, List<String> abiDisable) {
        this(memoryMiB, smp, kernel, initrd, append, boot, clock, timeout, consoleLog, personalities, flat, abiDisable, null, null, List.of(), null);
    }

    public VmConfig(int memoryMiB, int smp, Path kernel, Path initrd, String append, BootKind boot, ClockMode clock,
                    Duration timeout, Path consoleLog, List<String> personalities, FlatEntry flat) {
        this(memoryMiB, smp, kernel, initrd, append, boot, clock, timeout, consoleLog, personalities, flat, List.of());
    }

    /** The {@code --personality} spec: the parts joined by '+'. */
    public String personalitySpec() { return String.join("+", personalities); }

    /** A config with defaults: 128 MiB, 1 vCPU, realtime clock, no timeout, no log, bare. */
    public static VmConfig of(Path kernel, BootKind boot) {
        return new VmConfig(128, 1, kernel, null, "", boot, ClockMode.REALTIME, null, null, List.of(), null);
    }

    public VmConfig withMemory(int mib) { return new VmConfig(mib, smp, kernel, initrd, append, boot, clock, timeout, consoleLog, personalities, flat, abiDisable, cpu, devices, disks, links); }
    public VmConfig withSmp(int n) { return new VmConfig(memoryMiB, n, kernel, initrd, append, boot, clock, timeout, consoleLog, personalities, flat, abiDisable, cpu, devices, disks, links); }
    public VmConfig withTimeout(Duration t) { return new VmConfig(memoryMiB, smp, kernel, initrd, append, boot, clock, t, consoleLog, personalities, flat, abiDisable, cpu, devices, disks, links); }
    public VmConfig withAppend(String a) { return new VmConfig(memoryMiB, smp, kernel, initrd, a, boot, clock, timeout, consoleLog, personalities, flat, abiDisable, cpu, devices, disks, links); }
    public VmConfig withInitrd(Path p) { return new VmConfig(memoryMiB, smp, kernel, p, append, boot, clock, timeout, consoleLog, personalities, flat, abiDisable, cpu, devices, disks, links); }
    public VmConfig withClock(ClockMode c) { return new VmConfig(memoryMiB, smp, kernel, initrd, append, boot, c, timeout, consoleLog, personalities, flat, abiDisable, cpu, devices, disks, links); }
    public VmConfig withFlat(FlatEntry f) { return new VmConfig(memoryMiB, smp, kernel, initrd, append, boot, clock, timeout, consoleLog, personalities, f, abiDisable, cpu, devices, disks, links); }

    public VmConfig withPersonalities(List<String> p, List<String> disable) { return new VmConfig(memoryMiB, smp, kernel, initrd, append, boot, clock, timeout, consoleLog, p, flat, disable, cpu, devices, disks, links); }

    public VmConfig withCpu(String c) { return new VmConfig(memoryMiB, smp, kernel, initrd, append, boot, clock, timeout, consoleLog, personalities, flat, abiDisable, c, devices, disks, links); }
    public VmConfig withDevices(List<String> d) { return new VmConfig(memoryMiB, smp, kernel, initrd, append, boot, clock, timeout, consoleLog, personalities, flat, abiDisable, cpu, d, disks, links); }

    /** The CPU model {@link #cpu} names. */
    public dev.polyvisor.cpu.model.CpuModel cpuModel() { return dev.polyvisor.cpu.model.CpuModels.parse(cpu); }

    /** The parsed {@link #devices}. */
    public List<DeviceSpec> deviceSpecs() { return devices.stream().map(DeviceSpec::parse).toList(); }

    public VmConfig withDisks(List<Disk> d) { return new VmConfig(memoryMiB, smp, kernel, initrd, append, boot, clock, timeout, consoleLog, personalities, flat, abiDisable, cpu, devices, d, links); }
    public VmConfig withLinks(Links l) { return new VmConfig(memoryMiB, smp, kernel, initrd, append, boot, clock, timeout, consoleLog, personalities, flat, abiDisable, cpu, devices, disks, l); }

    public long memoryBytes() { return (long) memoryMiB << 20; }
}

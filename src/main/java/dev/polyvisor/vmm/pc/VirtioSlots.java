package dev.polyvisor.vmm.pc;

import dev.polyvisor.devices.PcPlatformDevices;
import dev.polyvisor.devices.virtio.GuestDma;
import dev.polyvisor.devices.virtio.VirtioBlk;
import dev.polyvisor.devices.virtio.VirtioConsole;
import dev.polyvisor.devices.virtio.VirtioDevice;
import dev.polyvisor.devices.virtio.VirtioNet;
import dev.polyvisor.devices.virtio.VirtioPciFunction;
import dev.polyvisor.devices.virtio.VirtioRng;
import dev.polyvisor.devices.virtio.VirtioVsock;
import dev.polyvisor.memory.GuestMemory;
import dev.polyvisor.vmm.VmConfig;
import dev.polyvisor.vmm.boot.LoadException;
import dev.polyvisor.vmm.hostio.NetworkBackend;
import dev.polyvisor.vmm.hostio.PasstNetwork;
import dev.polyvisor.vmm.hostio.TapNetwork;
import dev.polyvisor.vmm.hostio.UnixVsockHost;

import java.io.IOException;
import java.nio.channels.FileChannel;
import java.nio.file.StandardOpenOption;
import java.security.SecureRandom;
import java.util.ArrayList;
import java.util.List;
import java.util.concurrent.atomic.AtomicBoolean;
import java.util.function.Consumer;
import java.util.function.LongConsumer;

/**
 * The virtio devices of a PC, on PCI bus 0: the entropy device at 00:01.0 when asked for ({@code --device
 * virtio-rng}; the slot stays reserved without it, so that a disk's address does not depend on it), then one
 * virtio-blk per {@code --disk} from 00:02.0, in order (so the first disk is the guest's /dev/vda), then
 * the devices with a host end: one virtio-net per {@code --net} (eth0, eth1, ...; MAC 52:54:00:12:34:56
 * and up, QEMU's first address), the virtio console, the vsock device.
 *
 * <p>BARs are assigned here, as Firecracker and cloud-hypervisor do (there is no firmware): slot n's
 * 32 KiB BAR at {@link #BAR_BASE} + n * 32 KiB, inside the root bridge's window. Linux 6.1 claims
 * firmware-assigned BARs that fit a host bridge window (pcibios_resource_survey) and keeps them, so
 * the addresses are the same on every boot and do not depend on the guest's resource allocator; a
 * guest that moves a BAR anyway is followed ({@link dev.polyvisor.devices.PciMmioWindow}).
 * MSI-X messages go to the APIC bus; DMA writes drop decoded code of the pages they touch.
 *
 * <p>The entropy device reads the host's {@link SecureRandom}, except in icount runs, which must retire
 * the same instructions every time: there it is a SHA1PRNG seeded with a fixed value (as the RTC and
 * the pvclocks use a fixed epoch), so the guest's entropy is reproducible and, of course, not secret.
 */
public final class VirtioSlots implements AutoCloseable {
    public static final long BAR_BASE = 0xFE00_0000L;
    public static final int RNG_SLOT = 1, FIRST_DISK_SLOT = 2;

    /** QEMU's default MAC for the first NIC (52:54:00 is QEMU's locally administered prefix); later NICs count up. */
    static final byte[] FIRST_MAC = {0x52, 0x54, 0x00, 0x12, 0x34, 0x56};

    private final List<FileChannel> files = new ArrayList<>();
    private final List<VirtioPciFunction> functions = new ArrayList<>();
    private final List<AutoCloseable> hostEnds = new ArrayList<>();
    /** Set by a host thread when a device has host data for the guest; the VM thread then runs {@link #serviceHost}. */
    private final AtomicBoolean hostWork = new AtomicBoolean();
    private final Runnable wakeVm;
    private VirtioConsole console;
    /** Offer every function packed virtqueues ({@code --virtio-ring packed}). */
    private final boolean packedRings;

    private VirtioSlots(Runnable wakeVm, boolean packedRings) {
        this.wakeVm = wakeVm;
        this.packedRings = packedRings;
    }

    /** A device's host side has data: note it and wake the VM thread (any thread). */
    private void signalHost() {
        hostWork.set(true);
        wakeVm.run();
    }

    /** Delivers host data that arrived since the last call to the devices' receive queues (VM thread). */
    public void serviceHost() {
        if (!hostWork.getAndSet(false)) return;
        for (VirtioPciFunction f : functions) f.serviceHost();
    }

    /** Whether a device can receive host data at any time (then a guest idling with no timer armed is waiting for it). */
    public boolean hasHostEnds() { return !hostEnds.isEmpty() || console != null; }

    /**
     * Opens the disks and attaches every device.
     *
     * @param codeWritten called for each guest page a device writes (the trace cache's invalidation)
     * @param log         one line per device error the guest caused
     * @param reproducible entropy from a fixed seed (icount runs) instead of the host
     */
    public static VirtioSlots attach(PcPlatformDevices devices, GuestMemory mem, LongConsumer codeWritten,
                                     List<VmConfig.Disk> disks, Consumer<String> log, boolean reproducible) throws LoadException {
        return attach(devices, mem, codeWritten, disks, VmConfig.Links.NONE, log, reproducible, () -> {});
    }

    /**
     * As above, with the devices that have a host end.
     *
     * @param wakeVm makes the VM thread call {@link #serviceHost} soon (any thread)
     */
    public static VirtioSlots attach(PcPlatformDevices devices, GuestMemory mem, LongConsumer codeWritten, List<VmConfig.Disk> disks,
                                     VmConfig.Links links, Consumer<String> log, boolean reproducible, Runnable wakeVm) throws LoadException {
        return attach(devices, mem, codeWritten, disks, links, log, reproducible, wakeVm, b -> {});
    }

    /**
     * As above, with the virtio console's output going to {@code consoleOut} (VM thread).
     */
    public static VirtioSlots attach(PcPlatformDevices devices, GuestMemory mem, LongConsumer codeWritten, List<VmConfig.Disk> disks,
                                     VmConfig.Links links, Consumer<String> log, boolean reproducible, Runnable wakeVm,
                                     Consumer<byte[]> consoleOut) throws LoadException {
        VirtioSlots s = new VirtioSlots(wakeVm, links.packedRings());
        GuestDma dma = new GuestDma(mem, codeWritten);
        try {
            if (links.rng()) s.add(devices, dma, RNG_SLOT, new VirtioRng(dma, entropy(reproducible)), log);
            for (int i = 0; i < disks.size(); i++) {
                VmConfig.Disk d = disks.get(i);
                FileChannel f;
                try {
                    f = d.readOnly() ? FileChannel.open(d.path(), StandardOpenOption.READ)
                            : FileChannel.open(d.path(), StandardOpenOption.READ, StandardOpenOption.WRITE);
                } catch (IOException | UnsupportedOperationException e) {
                    throw new LoadException("--disk " + d.path() + ": cannot open" + (d.readOnly() ? "" : " for writing")
                            + ": " + e.getMessage());
                }
                s.files.add(f);
                lock(f, d, log);
                try {
                    s.add(devices, dma, FIRST_DISK_SLOT + i, new VirtioBlk(dma, f, d.readOnly(), serial(d, i)), log);
                } catch (IOException e) {
                    throw new LoadException("--disk " + d.path() + ": " + e.getMessage());
                }
            }
            int slot = FIRST_DISK_SLOT + disks.size();
            for (int i = 0; i < links.nets().size(); i++) s.addNet(devices, dma, slot++, links.nets().get(i), i, log);
            if (links.virtconsole()) {
                checkSlot(slot, "--device virtconsole");
                s.console = new VirtioConsole(consoleOut, s::signalHost);
                s.add(devices, dma, slot++, s.console, log);
            }
            if (links.vsock() != null) {
                checkSlot(slot, "--vsock");
                VirtioVsock v = new VirtioVsock(links.vsock().cid(), s::signalHost);
                try {
                    s.hostEnds.add(UnixVsockHost.start(links.vsock().uds(), v));
                } catch (IOException e) {
                    throw new LoadException("--vsock " + links.vsock().uds() + ": " + e.getMessage());
                }
                s.add(devices, dma, slot++, v, log);
            }
        } catch (LoadException | RuntimeException e) {
            s.close();
            throw e;
        }
        return s;
    }

    /**
     * Locks a disk image for the VM's lifetime, as QEMU does (its "Failed to get "write" lock" error): a writable
     * image exclusively, a read-only one shared, so two VMs never write one image and no VM reads an image another
     * Polyvisor writes, while read-only users may share. Closing the channel (VM teardown, or the kernel at the
     * process's exit, SIGKILL included) releases the lock. These are POSIX record locks ({@link FileChannel#tryLock}),
     * advisory, whole-file; the kernel sets them against QEMU's byte-range OFD locks too (fcntl(2)), so QEMU refuses an
     * image a Polyvisor VM holds ("Failed to lock byte 100") and Polyvisor one a writing QEMU holds, but a read-only
     * Polyvisor disk beside a writing QEMU is not refused (QEMU's own read-only users test its permission bytes). A
     * lock this process already holds (another VM in the same JVM, or the same image given twice) conflicts whatever
     * its kind. A file system without locking (ENOLCK) gets one log line and no lock, as QEMU warns and goes on.
     */
    private static void lock(FileChannel f, VmConfig.Disk d, Consumer<String> log) throws LoadException {
        java.nio.channels.FileLock lock;
        try {
            lock = f.tryLock(0, Long.MAX_VALUE, d.readOnly());
        } catch (java.nio.channels.OverlappingFileLockException e) {
            lock = null;
        } catch (IOException e) {
            log.accept("--disk " + d.path() + ": not locked (" + e.getMessage() + "): nothing keeps another VM from using it");
            return;
        }
        if (lock == null)
            throw new LoadException("--disk " + d.path() + ": the image is in use: another VM holds its lock"
                    + (d.readOnly() ? " for writing" : "") + " (or it is given twice); a writable image belongs to one VM at a time");
    }

    /** The VM's entropy (virtio-rng, the VMM's KASLR): the host's SecureRandom, or a fixed seed when icount must repeat runs. */
    public static SecureRandom entropy(boolean reproducible) {
        if (!reproducible) return new SecureRandom();
        try {
            SecureRandom r = SecureRandom.getInstance("SHA1PRNG");
            r.setSeed("polyvisor icount entropy".getBytes(java.nio.charset.StandardCharsets.US_ASCII)); // before any output: deterministic
            return r;
        } catch (java.security.NoSuchAlgorithmException e) {
            throw new IllegalStateException("SHA1PRNG is a required JDK algorithm", e);
        }
    }

    /** GET_ID's answer (what /sys/block/vdX/serial shows): serial=ID, else the file name, at most 20 bytes (virtio 1.2 5.2.6). */
    private static String serial(VmConfig.Disk d, int index) {
        if (d.serial() != null) return d.serial();
        String n = d.path().getFileName() == null ? "disk" + index : d.path().getFileName().toString();
        return n.length() > VirtioBlk.ID_BYTES ? n.substring(0, VirtioBlk.ID_BYTES) : n;
    }

    /** A virtio-net device on a passt process that this VM starts and stops, or on a host TAP interface. */
    private void addNet(PcPlatformDevices devices, GuestDma dma, int slot, VmConfig.Net net, int index, Consumer<String> log) throws LoadException {
        checkSlot(slot, "--net");
        NetworkBackend backend;
        try {
            backend = switch (net) {
                case VmConfig.Net.User user -> PasstNetwork.start(user.forwards().stream()
                        .map(f -> new PasstNetwork.Forward(f.udp(), f.hostAddress(), f.hostPort(), f.guestPort())).toList());
                case VmConfig.Net.Tap tap -> TapNetwork.open(tap.ifname());
            };
        } catch (java.io.IOException e) {
            throw new LoadException("--net " + (net instanceof VmConfig.Net.Tap t ? "tap=" + t.ifname() : "user") + ": " + e.getMessage());
        }
        hostEnds.add(backend);
        backend.logTo(log);
        byte[] mac = FIRST_MAC.clone();
        mac[5] += (byte) index;
        VirtioNet nic = new VirtioNet(mac, backend.mtu(), backend::send, this::signalHost);
        add(devices, dma, slot, nic, log);
        backend.startReceiving("polyvisor-net-" + index, frame -> {
            try {
                return nic.receive(frame);
            } catch (InterruptedException e) {
                return false;
            }
        });
    }

    private static void checkSlot(int slot, String flag) throws LoadException {
        if (slot > 31) throw new LoadException(flag + ": no PCI slot left on bus 0 (32 slots, one per device)");
    }

    private void add(PcPlatformDevices devices, GuestDma dma, int slot, VirtioDevice dev, Consumer<String> log) {
        String label = String.format("00:%02x.0", slot);
        VirtioPciFunction f = new VirtioPciFunction(dev, dma, devices.apics::deliverMsi,
                BAR_BASE + slot * VirtioPciFunction.BAR_SIZE, label, log);
        f.setIntx(devices.pciIntx.pin(slot, 0)); // virtio functions use INTA# (interrupt pin register 1)
        if (packedRings) f.offerPackedRings();
        devices.pci.registerWithBars(0, slot, 0, f);
        functions.add(f);
    }

    /** The virtio console ({@code --device virtconsole}), or null. */
    public VirtioConsole console() { return console; }

    public List<VirtioPciFunction> functions() { return List.copyOf(functions); }

    @Override
    public void close() {
        for (VirtioPciFunction f : functions) f.device().close();
        for (AutoCloseable h : hostEnds) {
            try {
                h.close();
            } catch (Exception ignored) {
                // a host end that fails to close on teardown: nothing left to do
            }
        }
        for (FileChannel f : files) {
            try {
                f.close();
            } catch (IOException ignored) {
                // closing a disk on teardown: nothing left to do
            }
        }
    }
}

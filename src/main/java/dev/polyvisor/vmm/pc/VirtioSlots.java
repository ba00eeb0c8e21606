package dev.polyvisor.vmm.pc;

import dev.polyvisor.devices.PcPlatformDevices;
import dev.polyvisor.devices.virtio.GuestDma;
import dev.polyvisor.devices.virtio.VirtioBlk;
import dev.polyvisor.devices.virtio.VirtioDevice;
import dev.polyvisor.devices.virtio.VirtioPciFunction;
import dev.polyvisor.devices.virtio.VirtioRng;
import dev.polyvisor.memory.GuestMemory;
import dev.polyvisor.vmm.VmConfig;
import dev.polyvisor.vmm.boot.LoadException;

import java.io.IOException;
import java.nio.channels.FileChannel;
import java.nio.file.StandardOpenOption;
import java.security.SecureRandom;
import java.util.ArrayList;
import java.util.List;
import java.util.function.Consumer;
import java.util.function.LongConsumer;

/**
 * The virtio devices of a PC, on PCI bus 0: the entropy device at 00:01.0 (always present), then one
 * virtio-blk per {@code --disk} from 00:02.0, in order (so the first disk is the guest's /dev/vda).
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

    private final List<FileChannel> files = new ArrayList<>();
    private final List<VirtioPciFunction> functions = new ArrayList<>();

    private VirtioSlots() {}

    /**
     * Opens the disks and attaches every device.
     *
     * @param codeWritten called for each guest page a device writes (the trace cache's invalidation)
     * @param log         one line per device error the guest caused
     * @param reproducible entropy from a fixed seed (icount runs) instead of the host
     */
    public static VirtioSlots attach(PcPlatformDevices devices, GuestMemory mem, LongConsumer codeWritten,
                                     List<VmConfig.Disk> disks, Consumer<String> log, boolean reproducible) throws LoadException {
        VirtioSlots s = new VirtioSlots();
        GuestDma dma = new GuestDma(mem, codeWritten);
        try {
            s.add(devices, dma, RNG_SLOT, new VirtioRng(dma, entropy(reproducible)), log);
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
                try {
                    s.add(devices, dma, FIRST_DISK_SLOT + i, new VirtioBlk(dma, f, d.readOnly(), serial(d, i)), log);
                } catch (IOException e) {
                    throw new LoadException("--disk " + d.path() + ": " + e.getMessage());
                }
            }
        } catch (LoadException | RuntimeException e) {
            s.close();
            throw e;
        }
        return s;
    }

    private static SecureRandom entropy(boolean reproducible) {
        if (!reproducible) return new SecureRandom();
        try {
            SecureRandom r = SecureRandom.getInstance("SHA1PRNG");
            r.setSeed("polyvisor icount entropy".getBytes(java.nio.charset.StandardCharsets.US_ASCII)); // before any output: deterministic
            return r;
        } catch (java.security.NoSuchAlgorithmException e) {
            throw new IllegalStateException("SHA1PRNG is a required JDK algorithm", e);
        }
    }

    /** GET_ID's answer: the file name, at most 20 bytes (what /sys/block/vdX/serial shows). */
    private static String serial(VmConfig.Disk d, int index) {
        String n = d.path().getFileName() == null ? "disk" + index : d.path().getFileName().toString();
        return n.length() > 20 ? n.substring(0, 20) : n;
    }

    private void add(PcPlatformDevices devices, GuestDma dma, int slot, VirtioDevice dev, Consumer<String> log) {
        String label = String.format("00:%02x.0", slot);
        VirtioPciFunction f = new VirtioPciFunction(dev, dma, devices.apics::deliverMsi,
                BAR_BASE + slot * VirtioPciFunction.BAR_SIZE, label, log);
        devices.pci.registerWithBars(0, slot, 0, f);
        functions.add(f);
    }

    public List<VirtioPciFunction> functions() { return List.copyOf(functions); }

    @Override
    public void close() {
        for (FileChannel f : files) {
            try {
                f.close();
            } catch (IOException ignored) {
                // closing a disk on teardown: nothing left to do
            }
        }
    }
}

package dev.polyvisor.devices.virtio;

import dev.polyvisor.devices.IrqLine;
import dev.polyvisor.devices.MsiSink;
import dev.polyvisor.devices.PciConfigSpace;
import dev.polyvisor.devices.PciMemoryDecoder;

import java.util.function.Consumer;

/**
 * The virtio-over-PCI transport, modern (non-transitional) device (virtio 1.2, 4.1 "Virtio Over PCI
 * Bus"): vendor 0x1AF4, device 0x1040 + type, revision 1, one 64-bit memory BAR (BAR 4) holding
 * <pre>
 *   0x0000  common configuration (4.1.4.3)      0x3000  notifications, 4 bytes per queue (4.1.4.4)
 *   0x1000  ISR status, read to clear (4.1.4.5)  0x4000  MSI-X table, 16 bytes per vector
 *   0x2000  device-specific configuration        0x5000  MSI-X pending bit array
 * </pre>
 * described by the capability list at 0x40: MSI-X, then the vendor-specific virtio capabilities
 * COMMON_CFG, ISR_CFG, DEVICE_CFG (when the device has configuration), NOTIFY_CFG and PCI_CFG (the
 * window into the BAR through configuration space, 4.1.4.9).
 *
 * <p>The BAR is sized the PCI way (write all-ones, read back the mask), starts at the address the VMM
 * gives it and follows whatever the guest programs; it decodes only while Memory Space is enabled in
 * the command register, and the device does DMA and sends MSI-X messages only while Bus Master is.
 * Interrupts are MSI-X messages while the driver enables MSI-X (vector 0xFFFF = none); otherwise INTA#
 * (interrupt pin 1, routed by the DSDT's _PRT), asserted while the ISR status is not zero and the command
 * register's Interrupt Disable bit is clear, and dropped by the driver's read of the ISR (4.1.4.5.1); the
 * status register's Interrupt Status bit shows the pin's state (PCI Local Bus 3.0, 6.2.2-6.2.3).
 *
 * <p>Queues are served synchronously on the thread that writes the notify register. A driver that
 * breaks the ring rules gets DEVICE_NEEDS_RESET and a configuration-change interrupt, one log line,
 * and a device that ignores its queues until reset (4.1.4.3, 2.1.2).
 */
public final class VirtioPciFunction extends PciConfigSpace implements PciMemoryDecoder, DeviceQueues {
    public static final int VENDOR = 0x1AF4, DEVICE_BASE = 0x1040, SUBSYSTEM_ID = 0x1100;
    public static final long F_INDIRECT_DESC = 1L << 28, F_EVENT_IDX = 1L << 29, F_VERSION_1 = 1L << 32,
            F_RING_PACKED = 1L << 34;
    public static final int S_ACKNOWLEDGE = 1, S_DRIVER = 2, S_DRIVER_OK = 4, S_FEATURES_OK = 8,
            S_NEEDS_RESET = 0x40, S_FAILED = 0x80;
    public static final int CAP_COMMON = 1, CAP_NOTIFY = 2, CAP_ISR = 3, CAP_DEVICE = 4, CAP_PCI_CFG = 5;
    public static final int BAR = 4;
    public static final long BAR_SIZE = 0x8000;
    public static final int COMMON = 0x0000, ISR = 0x1000, DEVICE = 0x2000, NOTIFY = 0x3000, MSIX_TABLE = 0x4000,
            MSIX_PBA = 0x5000, NOTIFY_MULTIPLIER = 4, COMMON_LENGTH = 0x40;
    /** Configuration-space offsets of the capabilities. */
    public static final int CAP_MSIX = 0x40, CAP_COMMON_AT = 0x50, CAP_ISR_AT = 0x60, CAP_DEVICE_AT = 0x70,
            CAP_NOTIFY_AT = 0x80, CAP_PCI_CFG_AT = 0x98;

    private final VirtioDevice device;
    private final GuestDma dma;
    private final MsiSink msi;
    private final Consumer<String> log;
    private final String label;
    private final Virtqueue[] queues;
    private final int vectors;
    private long deviceFeatures;

    private int status, isr, generation;
    private int deviceFeatureSelect, driverFeatureSelect, queueSelect;
    private long driverFeatures;
    private int msixConfig = Virtqueue.NO_VECTOR;
    private IrqLine intx = IrqLine.NONE;
    private final int[] msixTable;
    private long pending;

    /**
     * @param label      how log lines name the device, e.g. its PCI address
     * @param barAddress where BAR 4 starts until the guest moves it (a multiple of {@link #BAR_SIZE})
     * @param log        receives one line when the driver breaks the device
     */
    public VirtioPciFunction(VirtioDevice device, GuestDma dma, MsiSink msi, long barAddress, String label, Consumer<String> log) {
        super(VENDOR, DEVICE_BASE + device.deviceType(), 0x01, device.pciClass(), 0x00);
        if ((barAddress & BAR_SIZE - 1) != 0) throw new IllegalArgumentException("BAR address not aligned: " + barAddress);
        this.device = device;
        this.dma = dma;
        this.msi = msi == null ? MsiSink.NONE : msi;
        this.log = log == null ? s -> {} : log;
        this.label = label;
        queues = new Virtqueue[device.queueCount()];
        for (int q = 0; q < queues.length; q++) queues[q] = new Virtqueue(dma, device.queueMaxSize(q));
        vectors = queues.length + 1;
        if (vectors > 64) throw new IllegalArgumentException("too many queues for the MSI-X table: " + queues.length);
        msixTable = new int[vectors * 4];
        for (int v = 0; v < vectors; v++) msixTable[v * 4 + 3] = 1; // vector control: masked
        deviceFeatures = device.features() | F_VERSION_1 | F_EVENT_IDX | F_INDIRECT_DESC;
        set8(0x3D, 1);                      // interrupt pin: INTA#
        setWritable(0x04, 2, 0x0547);       // command: the defaults and Interrupt Disable (bit 10)

        set16(0x06, 0x0010);            // status: capabilities list
        set16(0x2C, VENDOR);            // subsystem vendor
        set16(0x2E, SUBSYSTEM_ID);
        set8(0x34, CAP_MSIX);           // capabilities pointer
        // BAR 4/5: 64-bit memory BAR, not prefetchable; the address bits above the size are writable.
        set32(0x20, (int) barAddress | 0x4);
        set32(0x24, (int) (barAddress >>> 32));
        setWritable(0x20, 4, ~(BAR_SIZE - 1) & 0xFFFF_FFF0L);
        setWritable(0x24, 4, 0xFFFF_FFFFL);

        // MSI-X (PCI 3.0 6.8.2): table size N-1, table and PBA in BAR 4.
        set8(CAP_MSIX, 0x11);
        set8(CAP_MSIX + 1, CAP_COMMON_AT);
        set16(CAP_MSIX + 2, vectors - 1);
        setWritable(CAP_MSIX + 2, 2, 0xC000); // enable, function mask
        set32(CAP_MSIX + 4, MSIX_TABLE | BAR);
        set32(CAP_MSIX + 8, MSIX_PBA | BAR);

        boolean hasConfig = device.configSize() > 0;
        virtioCap(CAP_COMMON_AT, CAP_ISR_AT, 16, CAP_COMMON, COMMON, COMMON_LENGTH);
        virtioCap(CAP_ISR_AT, hasConfig ? CAP_DEVICE_AT : CAP_NOTIFY_AT, 16, CAP_ISR, ISR, 1);
        if (hasConfig) virtioCap(CAP_DEVICE_AT, CAP_NOTIFY_AT, 16, CAP_DEVICE, DEVICE, device.configSize());
        virtioCap(CAP_NOTIFY_AT, CAP_PCI_CFG_AT, 20, CAP_NOTIFY, NOTIFY, NOTIFY_MULTIPLIER * queues.length);
        set32(CAP_NOTIFY_AT + 16, NOTIFY_MULTIPLIER);
        virtioCap(CAP_PCI_CFG_AT, 0, 20, CAP_PCI_CFG, 0, 0);
        setWritable(CAP_PCI_CFG_AT + 4, 1, 0xFF);      // bar
        setWritable(CAP_PCI_CFG_AT + 8, 8, -1L);       // offset, length
        device.attach(this);
    }

    /** struct virtio_pci_cap (4.1.4): vendor cap 0x09, next, length, cfg_type, bar, id, padding, offset, length. */
    private void virtioCap(int at, int next, int len, int type, int offset, int length) {
        set8(at, 0x09);
        set8(at + 1, next);
        set8(at + 2, len);
        set8(at + 3, type);
        set8(at + 4, BAR);
        set32(at + 8, offset);
        set32(at + 12, length);
    }

    public VirtioDevice device() { return device; }

    public int status() { return status; }

    public Virtqueue queue(int q) { return queues[q]; }

    /** The BAR's current base address. */
    public long barAddress() { return (configRead(0x20, 4) & 0xFFFF_FFF0L) | (long) configRead(0x24, 4) << 32; }

    private boolean memoryEnabled() { return (configRead(0x04, 2) & 0x2) != 0; }

    private boolean busMaster() { return (configRead(0x04, 2) & 0x4) != 0; }

    /** The INTx line: INTA# of this function's slot (the VMM wires it; none by default). */
    public void setIntx(IrqLine line) {
        intx = line == null ? IrqLine.NONE : line;
        updateIntx();
    }

    /**
     * INTA# follows the ISR status while MSI-X is off; Interrupt Status (status register bit 3) shows the
     * pending interrupt whatever Interrupt Disable (command bit 10) says (PCI Local Bus 3.0, 6.2.2, 6.2.3).
     */
    private void updateIntx() {
        boolean pendingIntx = isr != 0 && !msixEnabled();
        data[0x06] = (byte) (pendingIntx ? data[0x06] | 0x08 : data[0x06] & ~0x08);
        intx.set(pendingIntx && (configRead(0x04, 2) & 0x400) == 0);
    }

    private boolean msixEnabled() { return (configRead(CAP_MSIX + 2, 2) & 0x8000) != 0; }

    private boolean functionMasked() { return (configRead(CAP_MSIX + 2, 2) & 0x4000) != 0; }

    // ---- configuration space ----

    @Override
    public int configRead(int offset, int size) {
        int d = CAP_PCI_CFG_AT + 16;
        if (offset >= d && offset < d + 4) return (int) pciCfgAccess(false, 0) >>> 8 * (offset - d);
        return super.configRead(offset, size);
    }

    @Override
    public void configWrite(int offset, int size, int value) {
        int d = CAP_PCI_CFG_AT + 16;
        if (offset >= d && offset < d + 4) { pciCfgAccess(true, value << 8 * (offset - d)); return; }
        super.configWrite(offset, size, value);
        if (offset <= CAP_MSIX + 3 && offset + size > CAP_MSIX + 2) deliverPending();
        if (offset <= 0x05 && offset + size > 0x04 || offset <= CAP_MSIX + 3 && offset + size > CAP_MSIX + 2) updateIntx();
    }

    /** VIRTIO_PCI_CAP_PCI_CFG: an access of cap.length bytes at cap.offset in BAR cap.bar (4.1.4.9). */
    private long pciCfgAccess(boolean write, int value) {
        int bar = super.configRead(CAP_PCI_CFG_AT + 4, 1);
        long off = Integer.toUnsignedLong(super.configRead(CAP_PCI_CFG_AT + 8, 4));
        int len = super.configRead(CAP_PCI_CFG_AT + 12, 4);
        if (bar != BAR || (len != 1 && len != 2 && len != 4) || off + len > BAR_SIZE || (off & len - 1) != 0) return 0;
        if (write) { barWrite(BAR, off, len, value & 0xFFFF_FFFFL); return 0; }
        return barRead(BAR, off, len);
    }

    // ---- the BAR ----

    @Override
    public long decode(long pa) {
        if (!memoryEnabled()) return -1;
        long off = pa - barAddress();
        return off >= 0 && off < BAR_SIZE ? (long) BAR << 48 | off : -1;
    }

    @Override
    public long barRead(int bar, long offset, int size) {
        int off = (int) offset;
        if (off < ISR) return off < COMMON_LENGTH ? bytes(off, size, this::commonByte) : 0;
        if (off < DEVICE) {
            if (off != ISR) return 0;
            int v = isr;
            isr = 0; // read to clear (4.1.4.5), which also deasserts INTx (4.1.4.5.1)
            updateIntx();
            return v;
        }
        if (off < NOTIFY) {
            int o = off - DEVICE;
            return o + size <= device.configSize() ? device.configRead(o, size) : 0;
        }
        if (off < MSIX_TABLE) return 0;
        if (off < MSIX_PBA) {
            int o = off - MSIX_TABLE;
            return o + size <= vectors * 16 ? bytes(o, size, i -> msixTable[i >> 2] >>> 8 * (i & 3) & 0xFF) : 0;
        }
        int o = off - MSIX_PBA;
        return o < 8 ? pending >>> 8 * o & GuestMask.of(size) : 0;
    }

    @Override
    public void barWrite(int bar, long offset, int size, long value) {
        int off = (int) offset;
        if (off < ISR) { if (off < COMMON_LENGTH) commonWrite(off, size, value); return; }
        if (off < DEVICE) return;
        if (off < NOTIFY) {
            int o = off - DEVICE;
            if (o + size <= device.configSize()) device.configWrite(o, size, value);
            return;
        }
        if (off < MSIX_TABLE) {
            int q = (off - NOTIFY) / NOTIFY_MULTIPLIER;
            if (q < queues.length) notifyQueue(q);
            return;
        }
        if (off < MSIX_PBA) {
            int o = off - MSIX_TABLE;
            if (o + size > vectors * 16) return;
            for (int i = 0; i < size; i++) {
                int b = o + i, shift = 8 * (b & 3);
                msixTable[b >> 2] = msixTable[b >> 2] & ~(0xFF << shift) | (int) (value >>> 8 * i & 0xFF) << shift;
            }
            deliverPending();
        }
        // the PBA is read-only
    }

    private interface ByteSource { int at(int i); }

    private static long bytes(int off, int size, ByteSource s) {
        long v = 0;
        for (int i = 0; i < size; i++) v |= (long) (s.at(off + i) & 0xFF) << 8 * i;
        return v;
    }

    // ---- common configuration (4.1.4.3) ----

    private Virtqueue selected() { return queueSelect < queues.length ? queues[queueSelect] : null; }

    /** One byte of struct virtio_pci_common_cfg. */
    private int commonByte(int i) {
        int field = fieldStart(i);
        return (int) (commonField(field) >>> 8 * (i - field));
    }

    private static int fieldStart(int i) {
        if (i < 0x10) return i & ~3;
        if (i < 0x14) return i & ~1;
        if (i < 0x16) return i;
        if (i < 0x20) return i & ~1;
        if (i < 0x38) return i & ~7;
        return i & ~1;
    }

    private static int fieldSize(int field) {
        if (field < 0x10) return 4;
        if (field == 0x14 || field == 0x15) return 1;
        if (field >= 0x20 && field < 0x38) return 8;
        return 2;
    }

    private long commonField(int field) {
        Virtqueue q = selected();
        return switch (field) {
            case 0x00 -> deviceFeatureSelect;
            case 0x04 -> deviceFeatureSelect < 2 ? deviceFeatures >>> 32 * deviceFeatureSelect & 0xFFFF_FFFFL : 0;
            case 0x08 -> driverFeatureSelect;
            case 0x0C -> driverFeatureSelect < 2 ? driverFeatures >>> 32 * driverFeatureSelect & 0xFFFF_FFFFL : 0;
            case 0x10 -> msixConfig;
            case 0x12 -> queues.length;
            case 0x14 -> status;
            case 0x15 -> generation & 0xFF;
            case 0x16 -> queueSelect;
            case 0x18 -> q == null ? 0 : q.size();
            case 0x1A -> q == null ? Virtqueue.NO_VECTOR : q.msixVector();
            case 0x1C -> q != null && q.enabled() ? 1 : 0;
            case 0x1E, 0x38 -> q == null ? 0 : queueSelect; // queue_notify_off, queue_notify_data
            case 0x20 -> q == null ? 0 : q.descAddr();
            case 0x28 -> q == null ? 0 : q.availAddr();
            case 0x30 -> q == null ? 0 : q.usedAddr();
            default -> 0;
        };
    }

    private void commonWrite(int off, int size, long value) {
        // Merge the written bytes into each field they touch, then store that field (a 64-bit address
        // is written as two 32-bit halves by Linux's vp_iowrite64_twopart).
        int i = 0;
        while (i < size) {
            int field = fieldStart(off + i), fsize = fieldSize(field);
            long v = commonField(field);
            for (; i < size && off + i < field + fsize; i++) {
                int shift = 8 * (off + i - field);
                v = v & ~(0xFFL << shift) | (value >>> 8 * i & 0xFF) << shift;
            }
            setCommonField(field, v);
        }
    }

    private void setCommonField(int field, long v) {
        Virtqueue q = selected();
        boolean featuresOpen = (status & S_FEATURES_OK) == 0;
        switch (field) {
            case 0x00 -> deviceFeatureSelect = (int) v;
            case 0x08 -> driverFeatureSelect = (int) v;
            case 0x0C -> {
                if (featuresOpen && driverFeatureSelect < 2) {
                    int s = 32 * driverFeatureSelect;
                    driverFeatures = driverFeatures & ~(0xFFFF_FFFFL << s) | (v & 0xFFFF_FFFFL) << s;
                }
            }
            case 0x10 -> msixConfig = validVector((int) v);
            case 0x14 -> writeStatus((int) v & 0xFF);
            case 0x16 -> queueSelect = (int) v & 0xFFFF;
            case 0x18 -> { if (q != null) q.setSize((int) v & 0xFFFF); }
            case 0x1A -> { if (q != null) q.setMsixVector(validVector((int) v & 0xFFFF)); }
            case 0x1C -> {
                if (q != null && (v & 1) != 0 && !q.enabled()) {
                    try {
                        q.enable();
                    } catch (VirtqueueException e) {
                        fail("queue " + queueSelect + ": " + e.getMessage());
                    }
                }
            }
            case 0x20 -> { if (q != null) q.setDescAddr(v); }
            case 0x28 -> { if (q != null) q.setAvailAddr(v); }
            case 0x30 -> { if (q != null) q.setUsedAddr(v); }
            default -> {} // read-only fields
        }
    }

    /** A vector the table has, or NO_VECTOR: the driver reads the register back to learn whether it took (4.1.5.1.2). */
    private int validVector(int v) { return v < vectors ? v : Virtqueue.NO_VECTOR; }

    /** Device status (2.1): 0 resets; FEATURES_OK stays set only for an acceptable feature set (3.1.1). */
    private void writeStatus(int v) {
        if (v == 0) { reset(); return; }
        if ((v & S_FEATURES_OK) != 0 && (status & S_FEATURES_OK) == 0) {
            boolean ok = (driverFeatures & ~deviceFeatures) == 0 && (driverFeatures & F_VERSION_1) != 0;
            if (ok) {
                for (Virtqueue q : queues)
                    q.setFeatures((driverFeatures & F_EVENT_IDX) != 0, (driverFeatures & F_INDIRECT_DESC) != 0,
                            (driverFeatures & F_RING_PACKED) != 0);
                device.negotiated(driverFeatures);
            } else {
                v &= ~S_FEATURES_OK;
            }
        }
        status = v & ~S_NEEDS_RESET | status & S_NEEDS_RESET;
    }

    private void reset() {
        status = isr = 0;
        updateIntx();
        deviceFeatureSelect = driverFeatureSelect = queueSelect = 0;
        driverFeatures = 0;
        msixConfig = Virtqueue.NO_VECTOR;
        pending = 0;
        for (Virtqueue q : queues) { q.reset(); q.setFeatures(false, false); }
        device.reset();
    }

    /** The driver broke the rules: DEVICE_NEEDS_RESET, a configuration-change interrupt, one log line. */
    private void fail(String why) {
        if ((status & S_NEEDS_RESET) != 0) return;
        status |= S_NEEDS_RESET;
        generation++;
        log.accept(device.name() + " " + label + ": " + why + "; device needs reset");
        isr |= 2;
        updateIntx();
        signal(msixConfig);
    }

    /**
     * Offers VIRTIO_F_RING_PACKED (virtio 1.2, 2.8), which a driver that knows it takes for every queue (Linux
     * does from 5.0). Off unless asked for, as QEMU's {@code packed=off} default; before the driver reads the
     * features.
     */
    public void offerPackedRings() { deviceFeatures |= F_RING_PACKED; }

    // ---- queues and interrupts ----

    /**
     * The driver wrote queue {@code q}'s notify register: serve every request it posted, or, on a
     * receive queue, let the device fill the buffers it posted with host data that waits.
     */
    public void notifyQueue(int q) {
        Virtqueue vq = queues[q];
        if ((status & S_NEEDS_RESET) != 0 || !busMaster() || !vq.enabled()) return;
        if (device.hostDriven(q)) { serviceHost(); return; }
        int oldUsed = vq.usedIndex();
        try {
            do {
                for (DescriptorChain c; device.takes(q) && (c = vq.pop()) != null; ) vq.push(c, device.handle(q, c));
            } while (device.takes(q) && vq.publishAvailEvent());
        } catch (VirtqueueException e) {
            fail("queue " + q + ": " + e.getMessage());
            return;
        }
        if (vq.needsInterrupt(oldUsed)) {
            if (!msixEnabled()) { isr |= 1; updateIntx(); }
            signal(vq.msixVector());
        }
    }

    /** The device's host side has data: deliver it (VM thread). */
    public void serviceHost() {
        if ((status & (S_NEEDS_RESET | S_DRIVER_OK)) == S_DRIVER_OK && busMaster()) device.serviceHost();
    }

    // ---- DeviceQueues: receive queues the device fills (2.7.13, "Receiving Used Buffers From The Device") ----

    /** No buffer is used before DRIVER_OK (3.1.2) or while the device needs a reset. */
    private Virtqueue live(int q) {
        if (q < 0 || q >= queues.length) return null;
        Virtqueue vq = queues[q];
        return (status & (S_NEEDS_RESET | S_DRIVER_OK)) == S_DRIVER_OK && busMaster() && vq.enabled() ? vq : null;
    }

    @Override
    public DescriptorChain next(int q) {
        Virtqueue vq = live(q);
        if (vq == null) return null;
        try {
            return vq.pop();
        } catch (VirtqueueException e) {
            fail("queue " + q + ": " + e.getMessage());
            return null;
        }
    }

    @Override
    public void broken(String why) { fail(why); }

    @Override
    public void log(String line) { log.accept(device.name() + " " + label + ": " + line); }

    @Override
    public void putBack(int q) { queues[q].unpop(); }

    @Override
    public void resume(int q) { notifyQueue(q); }

    @Override
    public void complete(int q, DescriptorChain c, long written) { queues[q].push(c, written); }

    @Override
    public boolean flush(int q) {
        Virtqueue vq = live(q);
        if (vq == null) return false;
        boolean more = vq.publishAvailEvent();
        if (vq.takeInterrupt()) {
            if (!msixEnabled()) { isr |= 1; updateIntx(); }
            signal(vq.msixVector());
        }
        return more;
    }

    /** Sends MSI-X vector {@code v}, or latches it in the PBA while masked (PCI 3.0 6.8.2.9). */
    private void signal(int v) {
        if (!msixEnabled() || v >= vectors || !busMaster()) return;
        if (functionMasked() || (msixTable[v * 4 + 3] & 1) != 0) { pending |= 1L << v; return; }
        send(v);
    }

    private void send(int v) {
        long address = Integer.toUnsignedLong(msixTable[v * 4]) | (long) msixTable[v * 4 + 1] << 32;
        msi.send(address, msixTable[v * 4 + 2]);
    }

    private void deliverPending() {
        if (pending == 0 || !msixEnabled() || functionMasked() || !busMaster()) return;
        for (int v = 0; v < vectors; v++) {
            if ((pending & 1L << v) != 0 && (msixTable[v * 4 + 3] & 1) == 0) {
                pending &= ~(1L << v);
                send(v);
            }
        }
    }

    private static final class GuestMask {
        static long of(int size) { return size == 8 ? -1L : (1L << 8 * size) - 1; }
    }
}

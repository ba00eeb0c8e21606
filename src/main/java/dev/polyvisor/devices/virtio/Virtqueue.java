package dev.polyvisor.devices.virtio;

/**
 * A split virtqueue (virtio 1.2, 2.7): the descriptor table, the driver's available ring and the
 * device's used ring, at the guest-physical addresses the driver programmed. Supports indirect
 * descriptors (2.7.5.3) and event-index notification suppression (2.7.7, 2.7.10) when negotiated.
 *
 * <p>The device side never trusts the driver: {@link #pop} checks every index and address against the
 * queue and guest RAM and throws {@link VirtqueueException} for anything the specification forbids
 * (descriptors outside RAM, loops, chains longer than the ring or the indirect table, readable after
 * writable buffers, nested indirect tables, the available index running more than a ring ahead).
 */
public final class Virtqueue {
    public static final int DESC_F_NEXT = 1, DESC_F_WRITE = 2, DESC_F_INDIRECT = 4;
    public static final int AVAIL_F_NO_INTERRUPT = 1;
    public static final int NO_VECTOR = 0xFFFF;
    /** The longest indirect table accepted: as many entries as the largest queue (2.7.5.3.1 leaves the bound to the device). */
    public static final int MAX_INDIRECT = 32768;

    private final GuestDma dma;
    public final int maxSize;
    private int size;
    private long desc, avail, used;
    private boolean enabled;
    private int msixVector = NO_VECTOR;
    private boolean eventIdx, indirect;
    private int lastAvail, usedIdx;
    /** The used index when the device last decided about an interrupt ({@link #takeInterrupt}). */
    private int flushedUsed;

    public Virtqueue(GuestDma dma, int maxSize) {
        if (maxSize < 1 || maxSize > 32768 || Integer.bitCount(maxSize) != 1)
            throw new IllegalArgumentException("queue size must be a power of 2 up to 32768: " + maxSize);
        this.dma = dma;
        this.maxSize = maxSize;
        reset();
    }

    /** Back to the state after a device reset: size at its maximum, addresses 0, disabled, no vector. */
    public void reset() {
        size = maxSize;
        desc = avail = used = 0;
        enabled = false;
        msixVector = NO_VECTOR;
        lastAvail = usedIdx = flushedUsed = 0;
    }

    /** The negotiated ring features (VIRTIO_F_RING_EVENT_IDX, VIRTIO_F_INDIRECT_DESC). */
    public void setFeatures(boolean eventIdx, boolean indirect) { this.eventIdx = eventIdx; this.indirect = indirect; }

    public int size() { return size; }

    /** The driver may shrink the queue before enabling it; anything but a power of 2 up to the maximum is refused (kept). */
    public void setSize(int s) { if (!enabled && s >= 1 && s <= maxSize && Integer.bitCount(s) == 1) size = s; }

    public long descAddr() { return desc; }
    public long availAddr() { return avail; }
    public long usedAddr() { return used; }
    public void setDescAddr(long a) { if (!enabled) desc = a; }
    public void setAvailAddr(long a) { if (!enabled) avail = a; }
    public void setUsedAddr(long a) { if (!enabled) used = a; }

    public int msixVector() { return msixVector; }
    public void setMsixVector(int v) { msixVector = v; }

    public boolean enabled() { return enabled; }

    /** The driver set queue_enable: the three areas must be aligned (2.7, table "Virtqueue Part Alignment") and lie in RAM. */
    public void enable() throws VirtqueueException {
        if ((desc & 15) != 0 || (avail & 1) != 0 || (used & 3) != 0)
            throw new VirtqueueException(String.format("misaligned rings: desc 0x%x, driver 0x%x, device 0x%x", desc, avail, used));
        if (!dma.isRam(desc, 16L * size) || !dma.isRam(avail, 6L + 2L * size) || !dma.isRam(used, 6L + 8L * size))
            throw new VirtqueueException(String.format("rings outside guest RAM: desc 0x%x, driver 0x%x, device 0x%x (size %d)",
                    desc, avail, used, size));
        // The driver zeroes the rings before enabling them; the device starts where the used index stands.
        usedIdx = dma.read16(used + 2);
        lastAvail = flushedUsed = usedIdx;
        enabled = true;
    }

    /** The used index as the device last published it. */
    public int usedIndex() { return usedIdx; }

    /** The next available request, or null when the driver has posted nothing new. */
    public DescriptorChain pop() throws VirtqueueException {
        if (!enabled) return null;
        int availIdx = dma.read16(avail + 2);
        int pending = availIdx - lastAvail & 0xFFFF;
        if (pending == 0) return null;
        if (pending > size)
            throw new VirtqueueException(String.format("available index jumped from %d to %d (queue size %d)", lastAvail, availIdx, size));
        int head = dma.read16(avail + 4 + 2L * (lastAvail & size - 1));
        if (head >= size) throw new VirtqueueException("head descriptor " + head + " is beyond the queue (size " + size + ")");
        DescriptorChain c = new DescriptorChain(dma, head);
        walk(c, desc, size, head, false);
        lastAvail = lastAvail + 1 & 0xFFFF;
        return c;
    }

    private void walk(DescriptorChain c, long table, int entries, int first, boolean inIndirect) throws VirtqueueException {
        int i = first;
        for (int n = 1; ; n++) {
            long d = table + 16L * i;
            long addr = dma.read64(d);
            int len = dma.read32(d + 8);
            int flags = dma.read16(d + 12);
            int next = dma.read16(d + 14);
            if ((flags & DESC_F_INDIRECT) != 0) {
                if (inIndirect) throw new VirtqueueException("indirect descriptor inside an indirect table");
                if (!indirect) throw new VirtqueueException("indirect descriptor without VIRTIO_F_INDIRECT_DESC");
                if ((flags & DESC_F_NEXT) != 0) throw new VirtqueueException("descriptor " + i + " has both INDIRECT and NEXT");
                long l = Integer.toUnsignedLong(len);
                if (l == 0 || l % 16 != 0 || l / 16 > MAX_INDIRECT)
                    throw new VirtqueueException("indirect table length " + l + " is not a multiple of 16 up to " + 16 * MAX_INDIRECT);
                if (!dma.isRam(addr, l)) throw new VirtqueueException(String.format("indirect table 0x%x+0x%x outside guest RAM", addr, l));
                walk(c, addr, (int) (l / 16), 0, true);
                return;
            }
            if (!dma.isRam(addr, Integer.toUnsignedLong(len)))
                throw new VirtqueueException(String.format("descriptor %d buffer 0x%x+0x%x outside guest RAM", i, addr, Integer.toUnsignedLong(len)));
            boolean w = (flags & DESC_F_WRITE) != 0;
            if (!w && c.hasWritable())
                throw new VirtqueueException("device-readable descriptor " + i + " after a device-writable one");
            c.add(addr, len, w);
            if ((flags & DESC_F_NEXT) == 0) return;
            if (next >= entries) throw new VirtqueueException("descriptor " + i + " chains to " + next + ", beyond " + entries + " entries");
            if (n >= entries) throw new VirtqueueException("descriptor chain longer than its table (" + entries + " entries): a loop");
            i = next;
        }
    }

    /**
     * Hands the request {@link #pop} returned last back to the available ring unused: a device that takes
     * a buffer before knowing whether it has data for it (a receive queue) returns it this way.
     */
    public void unpop() { lastAvail = lastAvail - 1 & 0xFFFF; }

    /** Returns a request to the driver: {@code written} bytes were written into its writable buffers. */
    public void push(DescriptorChain c, long written) {
        long e = used + 4 + 8L * (usedIdx & size - 1);
        dma.write32(e, c.head);
        dma.write32(e + 4, (int) Math.min(written, 0xFFFF_FFFFL));
        usedIdx = usedIdx + 1 & 0xFFFF;
        dma.write16(used + 2, usedIdx);
    }

    /**
     * After a batch: with event index, tell the driver where to notify next (avail_event = the next
     * index the device will read, 2.7.10); returns true when there is more to do after all.
     */
    public boolean publishAvailEvent() {
        if (!enabled) return false;
        if (eventIdx) dma.write16(used + 4 + 8L * size, lastAvail);
        return (dma.read16(avail + 2) - lastAvail & 0xFFFF) != 0;
    }

    /**
     * Whether the driver wants an interrupt for the used entries added since {@code oldUsed}:
     * vring_need_event(used_event, new, old) with event index, else the avail ring's NO_INTERRUPT flag.
     */
    public boolean needsInterrupt(int oldUsed) {
        if (!enabled || oldUsed == usedIdx) return false;
        if (eventIdx) {
            int usedEvent = dma.read16(avail + 4 + 2L * size);
            return (usedIdx - usedEvent - 1 & 0xFFFF) < (usedIdx - oldUsed & 0xFFFF);
        }
        return (dma.read16(avail) & AVAIL_F_NO_INTERRUPT) == 0;
    }

    /**
     * {@link #needsInterrupt} for the used entries added since the previous call: for queues the device
     * fills in batches of its own (host data arriving), where no single notify brackets the work.
     */
    public boolean takeInterrupt() {
        boolean r = needsInterrupt(flushedUsed);
        flushedUsed = usedIdx;
        return r;
    }
}

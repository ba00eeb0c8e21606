package dev.polyvisor.devices.virtio;

/**
 * A virtqueue at the guest-physical addresses the driver programmed, in either layout:
 * <ul>
 * <li>split (virtio 1.2, 2.7): the descriptor table, the driver's available ring and the device's used ring;
 * <li>packed (2.8, VIRTIO_F_RING_PACKED): one ring of descriptors that the driver marks available and the
 *     device marks used, flag bits against wrap counters, plus the driver's and the device's event
 *     suppression structures in the driver and device areas.
 * </ul>
 * Both support indirect descriptors (2.7.5.3, 2.8.7) and event-index notification suppression (2.7.7,
 * 2.7.10, 2.8.10) when negotiated. The device completes requests in the order it takes them.
 *
 * <p>The device side never trusts the driver: {@link #pop} checks every index and address against the
 * queue and guest RAM and throws {@link VirtqueueException} for anything the specification forbids
 * (descriptors outside RAM, loops, chains longer than the ring or the indirect table, readable after
 * writable buffers, nested indirect tables, the available index running more than a ring ahead).
 */
public final class Virtqueue {
    public static final int DESC_F_NEXT = 1, DESC_F_WRITE = 2, DESC_F_INDIRECT = 4;
    /** Packed descriptor flags: available and used, each compared with a wrap counter (2.8.1). */
    public static final int DESC_F_AVAIL = 1 << 7, DESC_F_USED = 1 << 15;
    /** Packed event suppression flags (2.8.10): notify, do not, or notify at the descriptor off_wrap names. */
    public static final int EVENT_F_ENABLE = 0, EVENT_F_DISABLE = 1, EVENT_F_DESC = 2;
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
    private boolean eventIdx, indirect, packed;
    /**
     * Split: the next available ring index to read and the used index. Packed: the ring positions of the next
     * descriptor to read and to write, each with its wrap counter in bit 15 (2.8.1), and the slots the
     * last request took (for {@link #unpop}).
     */
    private int lastAvail, usedIdx, lastSlots;
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

    /** The negotiated ring features (VIRTIO_F_RING_EVENT_IDX, VIRTIO_F_INDIRECT_DESC), split layout. */
    public void setFeatures(boolean eventIdx, boolean indirect) { setFeatures(eventIdx, indirect, false); }

    /** The negotiated ring features, with VIRTIO_F_RING_PACKED choosing the packed layout. */
    public void setFeatures(boolean eventIdx, boolean indirect, boolean packed) {
        this.eventIdx = eventIdx;
        this.indirect = indirect;
        this.packed = packed;
    }

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
        if (packed) { enablePacked(); return; }
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

    /** The used index as the device last published it (packed: the next used position with its wrap counter in bit 15). */
    public int usedIndex() { return usedIdx; }

    /** The next available request, or null when the driver has posted nothing new. */
    public DescriptorChain pop() throws VirtqueueException {
        if (!enabled) return null;
        if (packed) return popPacked();
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
                walk(c, addr, indirectEntries(addr, len), 0, true);
                return;
            }
            addBuffer(c, i, addr, len, flags);
            if ((flags & DESC_F_NEXT) == 0) return;
            if (next >= entries) throw new VirtqueueException("descriptor " + i + " chains to " + next + ", beyond " + entries + " entries");
            if (n >= entries) throw new VirtqueueException("descriptor chain longer than its table (" + entries + " entries): a loop");
            i = next;
        }
    }

    /** The entries of an indirect table at {@code addr}, {@code len} bytes (2.7.5.3.1, 2.8.7): whole descriptors, in RAM. */
    private int indirectEntries(long addr, int len) throws VirtqueueException {
        long l = Integer.toUnsignedLong(len);
        if (l == 0 || l % 16 != 0 || l / 16 > MAX_INDIRECT)
            throw new VirtqueueException("indirect table length " + l + " is not a multiple of 16 up to " + 16 * MAX_INDIRECT);
        if (!dma.isRam(addr, l)) throw new VirtqueueException(String.format("indirect table 0x%x+0x%x outside guest RAM", addr, l));
        return (int) (l / 16);
    }

    /** One buffer of a request (either layout): in RAM, and device-readable ones before device-writable ones (2.7.4.2). */
    private void addBuffer(DescriptorChain c, int i, long addr, int len, int flags) throws VirtqueueException {
        if (!dma.isRam(addr, Integer.toUnsignedLong(len)))
            throw new VirtqueueException(String.format("descriptor %d buffer 0x%x+0x%x outside guest RAM", i, addr, Integer.toUnsignedLong(len)));
        boolean w = (flags & DESC_F_WRITE) != 0;
        if (!w && c.hasWritable()) throw new VirtqueueException("device-readable descriptor " + i + " after a device-writable one");
        c.add(addr, len, w);
    }

    /**
     * Hands the request {@link #pop} returned last back to the available ring unused: a device that takes
     * a buffer before knowing whether it has data for it (a receive queue) returns it this way.
     */
    public void unpop() {
        if (packed) lastAvail = advance(lastAvail, -lastSlots);
        else lastAvail = lastAvail - 1 & 0xFFFF;
    }

    /** Returns a request to the driver: {@code written} bytes were written into its writable buffers. */
    public void push(DescriptorChain c, long written) {
        if (packed) { pushPacked(c, written); return; }
        long e = used + 4 + 8L * (usedIdx & size - 1);
        dma.write32(e, c.head());
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
        if (packed) return availablePacked(lastAvail); // the device area stays ENABLE: the driver always notifies
        if (eventIdx) dma.write16(used + 4 + 8L * size, lastAvail);
        return (dma.read16(avail + 2) - lastAvail & 0xFFFF) != 0;
    }

    /**
     * Whether the driver wants an interrupt for the used entries added since {@code oldUsed}:
     * vring_need_event(used_event, new, old) with event index, else the avail ring's NO_INTERRUPT flag.
     */
    public boolean needsInterrupt(int oldUsed) {
        if (!enabled || oldUsed == usedIdx) return false;
        if (packed) return needsInterruptPacked(oldUsed);
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

    // ---- packed layout (virtio 1.2, 2.8) ----

    /** Bit 15 of a packed ring position: its wrap counter. */
    private static final int WRAP = 1 << 15;

    /**
     * Packed: the descriptor ring 16-byte aligned, the two event suppression structures 4-byte aligned (2.8.10.1
     * "Packed Virtqueue Part Alignment"), all in RAM. Both wrap counters start at 1 (2.8.1), and the device area
     * says ENABLE: Polyvisor serves every notification, so it never asks the driver to hold them back.
     */
    private void enablePacked() throws VirtqueueException {
        if ((desc & 15) != 0 || (avail & 3) != 0 || (used & 3) != 0)
            throw new VirtqueueException(String.format("misaligned packed ring: desc 0x%x, driver 0x%x, device 0x%x", desc, avail, used));
        if (!dma.isRam(desc, 16L * size) || !dma.isRam(avail, 4) || !dma.isRam(used, 4))
            throw new VirtqueueException(String.format("packed ring outside guest RAM: desc 0x%x, driver 0x%x, device 0x%x (size %d)",
                    desc, avail, used, size));
        lastAvail = usedIdx = flushedUsed = WRAP;
        lastSlots = 0;
        dma.write32(used, EVENT_F_ENABLE << 16);
        enabled = true;
    }

    /** {@code pos} (a position with its wrap counter) moved by {@code n} slots, the counter flipping at each wrap. */
    private int advance(int pos, int n) {
        int i = (pos & ~WRAP) + n, wrap = pos & WRAP;
        while (i >= size) { i -= size; wrap ^= WRAP; }
        while (i < 0) { i += size; wrap ^= WRAP; }
        return i | wrap;
    }

    /** Whether the descriptor at {@code pos} is available: its AVAIL bit equals the wrap counter and USED does not (2.8.1). */
    private boolean availablePacked(int pos) {
        int flags = dma.read16(desc + 16L * (pos & ~WRAP) + 14);
        boolean wrap = (pos & WRAP) != 0;
        return ((flags & DESC_F_AVAIL) != 0) == wrap && ((flags & DESC_F_USED) != 0) != wrap;
    }

    /**
     * The request at the next available position: the descriptors from there while NEXT is set (2.8.6; the
     * driver writes the first one's flags last, so only the first is checked for availability), or one
     * descriptor naming an indirect table (2.8.7). The buffer ID that goes back is the last descriptor's.
     */
    private DescriptorChain popPacked() throws VirtqueueException {
        if (!availablePacked(lastAvail)) return null;
        java.lang.invoke.VarHandle.acquireFence(); // the descriptors after the flags that made them available
        int i = lastAvail & ~WRAP, slots = 0, id;
        DescriptorChain c = new DescriptorChain(dma, 0);
        while (true) {
            long d = desc + 16L * i;
            long addr = dma.read64(d);
            int len = dma.read32(d + 8), flags = dma.read16(d + 14);
            id = dma.read16(d + 12);
            slots++;
            if ((flags & DESC_F_INDIRECT) != 0) {
                if (!indirect) throw new VirtqueueException("indirect descriptor without VIRTIO_F_INDIRECT_DESC");
                if ((flags & DESC_F_NEXT) != 0 || slots > 1)
                    throw new VirtqueueException("indirect descriptor at " + i + " is part of a chain");
                walkPackedIndirect(c, addr, indirectEntries(addr, len));
                break;
            }
            addBuffer(c, i, addr, len, flags);
            if ((flags & DESC_F_NEXT) == 0) break;
            if (slots >= size) throw new VirtqueueException("descriptor chain longer than the ring (" + size + " entries)");
            i = i + 1 == size ? 0 : i + 1;
        }
        c.packed(id, slots); // the buffer ID is the last descriptor's (2.8.6)
        lastSlots = slots;
        lastAvail = advance(lastAvail, slots);
        return c;
    }

    /** An indirect table of packed descriptors (2.8.7): {@code entries} in order; NEXT and the IDs in it mean nothing. */
    private void walkPackedIndirect(DescriptorChain c, long table, int entries) throws VirtqueueException {
        for (int k = 0; k < entries; k++) {
            long d = table + 16L * k;
            int flags = dma.read16(d + 14);
            if ((flags & DESC_F_INDIRECT) != 0) throw new VirtqueueException("indirect descriptor inside an indirect table");
            addBuffer(c, k, dma.read64(d), dma.read32(d + 8), flags);
        }
    }

    /**
     * Marks a request used (2.8.5): one descriptor at the next used position with the buffer ID and the length
     * written, its AVAIL and USED bits both the used wrap counter, written last; the position then moves past
     * every slot the request took (the driver frees them by its own count).
     */
    private void pushPacked(DescriptorChain c, long written) {
        long d = desc + 16L * (usedIdx & ~WRAP);
        dma.write32(d + 8, (int) Math.min(written, 0xFFFF_FFFFL));
        dma.write16(d + 12, c.head());
        java.lang.invoke.VarHandle.releaseFence(); // ID and length before the flags that hand them over
        dma.write16(d + 14, (usedIdx & WRAP) != 0 ? DESC_F_AVAIL | DESC_F_USED : 0);
        usedIdx = advance(usedIdx, c.ringSlots());
    }

    /**
     * The driver's event suppression structure (2.8.10, in the driver area): DISABLE, ENABLE, or with event index
     * DESC: an interrupt once the used position passes off_wrap. Positions compare as a count modulo twice the
     * ring size (the wrap counter is its top half), as vring_need_event compares 16-bit indices.
     */
    private boolean needsInterruptPacked(int oldUsed) {
        int offWrap = dma.read16(avail), flags = dma.read16(avail + 2) & 3;
        if (flags == EVENT_F_DISABLE) return false;
        if (flags != EVENT_F_DESC || !eventIdx) return true;
        int m = 2 * size;
        int event = linear(offWrap), now = linear(usedIdx), old = linear(oldUsed);
        return Math.floorMod(now - event - 1, m) < Math.floorMod(now - old, m);
    }

    /** A packed position as a count modulo twice the ring size (wrap counter 1 is the first half). */
    private int linear(int pos) { return (pos & ~WRAP) % size + ((pos & WRAP) != 0 ? 0 : size); }
}

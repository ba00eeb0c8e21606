package dev.polyvisor.devices.virtio;

import dev.polyvisor.memory.GuestMemory;

import java.lang.foreign.MemorySegment;
import java.nio.ByteBuffer;
import java.util.function.LongConsumer;

/**
 * A device's view of guest RAM for bus-master DMA: only RAM is reachable (a range touching the PCI
 * hole, MMIO or the end of RAM is refused, so a descriptor cannot aim a device at its own registers),
 * and every write reports the 4 KiB pages it touched, which the VMM uses to drop decoded instructions
 * of those pages (a disk read into a page that held code must not leave stale traces).
 */
public final class GuestDma {
    private final GuestMemory mem;
    private final LongConsumer pageWritten;

    /** @param pageWritten called with each physical page address a DMA write touches (may be a no-op) */
    public GuestDma(GuestMemory mem, LongConsumer pageWritten) {
        this.mem = mem;
        this.pageWritten = pageWritten == null ? p -> {} : pageWritten;
    }

    public GuestMemory memory() { return mem; }

    /** True when [pa, pa + len) is guest RAM. */
    public boolean isRam(long pa, long len) { return len >= 0 && pa >= 0 && pa + len >= pa && mem.backed(pa, len); }

    public int read16(long pa) { return mem.ld16(pa); }

    public int read32(long pa) { return mem.ld32(pa); }

    public long read64(long pa) { return mem.ld64(pa); }

    public void write16(long pa, int v) { mem.st16(pa, v); written(pa, 2); }

    public void write32(long pa, int v) { mem.st32(pa, v); written(pa, 4); }

    /** A view of RAM for host I/O straight into or out of guest memory; call {@link #written} after filling it. */
    public ByteBuffer buffer(long pa, int len) { return slice(pa, len).asByteBuffer(); }

    public MemorySegment slice(long pa, long len) { return mem.ram.asSlice(pa, len); }

    public void read(long pa, byte[] dst, int off, int len) { MemorySegment.copy(mem.ram, GuestMemory.U8, pa, dst, off, len); }

    public void write(long pa, byte[] src, int off, int len) {
        MemorySegment.copy(src, off, mem.ram, GuestMemory.U8, pa, len);
        written(pa, len);
    }

    public void fill(long pa, long len, byte v) { slice(pa, len).fill(v); written(pa, len); }

    /** Reports a DMA write of [pa, pa + len) page by page. */
    public void written(long pa, long len) {
        if (len <= 0) return;
        for (long p = pa & ~0xFFFL; p < pa + len; p += 4096) pageWritten.accept(p);
    }
}

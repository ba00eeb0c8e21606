package dev.polyvisor.devices.virtio;

import dev.polyvisor.memory.GuestMemory;

import java.util.ArrayList;
import java.util.List;

/** A driver's side of one split virtqueue in a small guest RAM, for tests: descriptors, the available ring, the used ring. */
final class TestRing {
    static final long DESC = 0x1000, AVAIL = 0x2000, USED = 0x3000, DATA = 0x10000;
    final GuestMemory mem;
    final List<Long> writtenPages = new ArrayList<>();
    final GuestDma dma;
    final int size;
    int availIdx;

    TestRing(int size) {
        this.mem = new GuestMemory(1 << 20);
        this.dma = new GuestDma(mem, writtenPages::add);
        this.size = size;
    }

    Virtqueue queue(boolean eventIdx, boolean indirect) throws VirtqueueException {
        Virtqueue q = new Virtqueue(dma, size);
        q.setDescAddr(DESC);
        q.setAvailAddr(AVAIL);
        q.setUsedAddr(USED);
        q.setFeatures(eventIdx, indirect);
        q.enable();
        return q;
    }

    void desc(int i, long addr, int len, int flags, int next) { desc(DESC, i, addr, len, flags, next); }

    void desc(long table, int i, long addr, int len, int flags, int next) {
        long d = table + 16L * i;
        mem.st64(d, addr);
        mem.st32(d + 8, len);
        mem.st16(d + 12, flags);
        mem.st16(d + 14, next);
    }

    void post(int head) {
        mem.st16(AVAIL + 4 + 2L * (availIdx % size), head);
        availIdx = availIdx + 1 & 0xFFFF;
        mem.st16(AVAIL + 2, availIdx);
    }

    int usedIdx() { return mem.ld16(USED + 2); }

    int usedId(int i) { return mem.ld32(USED + 4 + 8L * (i % size)); }

    int usedLen(int i) { return mem.ld32(USED + 4 + 8L * (i % size) + 4); }

    void setUsedEvent(int v) { mem.st16(AVAIL + 4 + 2L * size, v); }

    int availEvent() { return mem.ld16(USED + 4 + 8L * size); }
}

package dev.polyvisor.devices.virtio;

import dev.polyvisor.memory.GuestMemory;

import java.util.ArrayList;
import java.util.List;

import static dev.polyvisor.devices.virtio.VirtioPciFunction.*;

/**
 * A driver for tests that drives a whole device through the PCI transport as Linux does: the status
 * handshake with VERSION_1 and EVENT_IDX off (every completion interrupts), MSI-X vector q + 1 for queue q,
 * every queue at size 16 in its own 64 KiB area of a 4 MiB guest RAM, and buffers posted one descriptor each.
 */
final class TestDriver {
    static final int SIZE = 16;
    static final long RING_BASE = 0x10_0000, DATA_BASE = 0x20_0000;
    final GuestMemory mem;
    final GuestDma dma;
    final List<Integer> vectors = new ArrayList<>();
    final List<String> log = new ArrayList<>();
    final VirtioPciFunction f;
    private final int[] availIdx, nextDesc, usedSeen;
    private long data = DATA_BASE;

    /** @param device built with this driver's {@link #dma} */
    TestDriver(java.util.function.Function<GuestDma, VirtioDevice> device) { this(device, 4 << 20); }

    /** With {@code ramBytes} of guest RAM: buffers are never reused, so a test that moves much data needs more. */
    TestDriver(java.util.function.Function<GuestDma, VirtioDevice> device, int ramBytes) {
        mem = new GuestMemory(ramBytes);
        dma = new GuestDma(mem, p -> {});
        f = new VirtioPciFunction(device.apply(dma), dma, (a, d) -> vectors.add((int) d), 0xFE00_0000L, "test", log::add);
        int n = f.device().queueCount();
        availIdx = new int[n];
        nextDesc = new int[n];
        usedSeen = new int[n];
    }

    long common(int off, int size) { return f.barRead(BAR, COMMON + off, size); }

    void common(int off, int size, long v) { f.barWrite(BAR, COMMON + off, size, v); }

    static long desc(int q) { return RING_BASE + 0x1_0000L * q; }
    static long avail(int q) { return desc(q) + 0x1000; }
    static long used(int q) { return desc(q) + 0x2000; }

    /** Negotiates {@code features} (VERSION_1 added) and brings every queue up; returns this. */
    TestDriver start(long features) {
        common(0x14, 1, S_ACKNOWLEDGE | S_DRIVER);
        long want = features | F_VERSION_1;
        common(0x08, 4, 0);
        common(0x0C, 4, want & 0xFFFF_FFFFL);
        common(0x08, 4, 1);
        common(0x0C, 4, want >>> 32);
        common(0x14, 1, S_ACKNOWLEDGE | S_DRIVER | S_FEATURES_OK);
        if ((common(0x14, 1) & S_FEATURES_OK) == 0) throw new AssertionError("features refused");
        f.configWrite(0x04, 2, 0x6);
        f.configWrite(CAP_MSIX + 2, 2, 0x8000);
        int n = f.device().queueCount();
        for (int v = 0; v <= n; v++) {
            f.barWrite(BAR, MSIX_TABLE + 16 * v, 4, 0xFEE0_0000L);
            f.barWrite(BAR, MSIX_TABLE + 16 * v + 8, 4, v);
            f.barWrite(BAR, MSIX_TABLE + 16 * v + 12, 4, 0);
        }
        common(0x10, 2, 0);
        for (int q = 0; q < n; q++) {
            common(0x16, 2, q);
            common(0x18, 2, SIZE);
            common(0x1A, 2, q + 1);
            common(0x20, 8, desc(q));
            common(0x28, 8, avail(q));
            common(0x30, 8, used(q));
            common(0x1C, 2, 1);
        }
        common(0x14, 1, S_ACKNOWLEDGE | S_DRIVER | S_FEATURES_OK | S_DRIVER_OK);
        return this;
    }

    int status() { return (int) common(0x14, 1); }

    /** Posts one buffer of {@code len} bytes on queue q (device-writable, or holding {@code content}); returns its guest address. */
    long post(int q, int len, byte[] content, boolean notify) {
        long addr = data;
        data += (len + 15) & ~15;
        int d = nextDesc[q];
        nextDesc[q] = (d + 1) % SIZE;
        if (content != null) mem.load(addr, content);
        long e = desc(q) + 16L * d;
        mem.st64(e, addr);
        mem.st32(e + 8, len);
        mem.st16(e + 12, content == null ? Virtqueue.DESC_F_WRITE : 0);
        mem.st16(e + 14, 0);
        mem.st16(avail(q) + 4 + 2L * (availIdx[q] % SIZE), d);
        availIdx[q] = availIdx[q] + 1 & 0xFFFF;
        mem.st16(avail(q) + 2, availIdx[q]);
        if (notify) f.barWrite(BAR, NOTIFY + NOTIFY_MULTIPLIER * q, 2, q);
        return addr;
    }

    long postWritable(int q, int len) { return post(q, len, null, true); }

    long postReadable(int q, byte[] content) { return post(q, content.length, content, true); }

    /** A used buffer the driver has not looked at yet: the bytes the device wrote, or null when none. */
    byte[] takeUsed(int q) {
        int idx = mem.ld16(used(q) + 2);
        if (idx == usedSeen[q]) return null;
        long e = used(q) + 4 + 8L * (usedSeen[q] % SIZE);
        int id = mem.ld32(e), len = mem.ld32(e + 4);
        usedSeen[q] = usedSeen[q] + 1 & 0xFFFF;
        long addr = mem.ld64(desc(q) + 16L * id);
        return mem.readBytes(addr, len);
    }
}

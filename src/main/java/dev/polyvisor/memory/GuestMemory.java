package dev.polyvisor.memory;

import java.lang.foreign.Arena;
import java.lang.foreign.MemorySegment;
import java.lang.foreign.ValueLayout;
import java.lang.invoke.VarHandle;
import java.nio.ByteOrder;
import java.util.ArrayList;
import java.util.List;

/**
 * Guest physical memory of one VM.
 *
 * <p>RAM is a single off-heap segment indexed by guest physical address, mapped lazily ({@link LazyRam}).
 * A PC with more RAM than fits below its 32-bit PCI hole ({@link #pc}) has the rest above 4 GiB, as QEMU's
 * "pc" machine does; the hole [3 GiB, 4 GiB) inside the span is not RAM (never touched, so it costs no host
 * memory). MMIO windows shadow whatever is behind them. Accesses are little-endian and may be unaligned,
 * as x86 permits. Reads of physical addresses that are neither RAM nor MMIO return all-ones and writes are
 * dropped, like an unclaimed bus cycle on a PC.
 *
 * <p>Atomic helpers implement LOCK semantics: naturally aligned operands use VarHandle CAS on the
 * segment; misaligned ones fall back to a global lock (the analogue of QEMU's EXCP_ATOMIC
 * exclusive section, see reference/cpu-design.md 1.5).
 */
public final class GuestMemory implements AutoCloseable {
    public static final ValueLayout.OfByte U8 = ValueLayout.JAVA_BYTE;
    public static final ValueLayout.OfShort U16 = ValueLayout.JAVA_SHORT_UNALIGNED.withOrder(ByteOrder.LITTLE_ENDIAN);
    public static final ValueLayout.OfInt U32 = ValueLayout.JAVA_INT_UNALIGNED.withOrder(ByteOrder.LITTLE_ENDIAN);
    public static final ValueLayout.OfLong U64 = ValueLayout.JAVA_LONG_UNALIGNED.withOrder(ByteOrder.LITTLE_ENDIAN);

    private static final VarHandle AI32 = ValueLayout.JAVA_INT.withOrder(ByteOrder.LITTLE_ENDIAN).varHandle();
    private static final VarHandle AI64 = ValueLayout.JAVA_LONG.withOrder(ByteOrder.LITTLE_ENDIAN).varHandle();

    private final Arena arena;
    /** The RAM; final so that C2 can treat base and size as constants in hot code. */
    public final MemorySegment ram;
    /**
     * The same memory as {@link #ram}, as a segment of the global scope, for the JIT's generated classes, which
     * hold it as a constant (class data). Java's documented fast path: a constant segment of a scope that cannot
     * close needs no liveness check per access (MemorySessionImpl's {@code @Stable state}), and its bounds and
     * read-only checks fold too, where {@link #ram} (this VM's closeable arena) is checked at every access: about
     * a tenth of the CPU-bound guest's compiled code in a profile. Only code on a vCPU thread uses it, and the
     * VM closes the memory after its vCPUs have stopped ({@code Vm.close}), so no access outlives the mapping.
     */
    public final MemorySegment ramForCompiledCode;
    /** End of the RAM span: physical addresses below it are RAM unless they fall in the hole. */
    public final long ramSize;
    /** The guest's RAM in bytes (the span less the hole). */
    public final long ramBytes;
    /** The hole [holeStart, holeEnd) inside the span that is not RAM; empty (both = ramSize) for flat RAM. */
    public final long holeStart, holeEnd;
    /** Start of the PC's 32-bit PCI hole: RAM beyond it is placed from 4 GiB up (QEMU "pc", below_4g_mem_size). */
    public static final long PCI_HOLE_START = 0xC000_0000L, FOUR_GIB = 1L << 32;
    private volatile MmioRegion[] mmio = new MmioRegion[0];
    private final Object exclusive = new Object();

    /** Flat RAM at [0, ramSize). */
    public GuestMemory(long ramSize) { this(ramSize, ramSize, ramSize); }

    private GuestMemory(long span, long holeStart, long holeEnd) {
        if (span <= 0 || (span & 0xFFF) != 0)
            throw new IllegalArgumentException("RAM size must be a positive multiple of 4 KiB: " + span);
        this.arena = Arena.ofShared();
        this.ram = LazyRam.allocate(span, arena);
        this.ramForCompiledCode = MemorySegment.ofAddress(ram.address()).reinterpret(span);
        this.ramSize = span;
        this.holeStart = holeStart;
        this.holeEnd = holeEnd;
        this.ramBytes = span - (holeEnd - holeStart);
    }

    /** A PC's RAM: up to 3 GiB below the PCI hole, the rest from 4 GiB up. */
    public static GuestMemory pc(long ramBytes) {
        if (ramBytes <= PCI_HOLE_START) return new GuestMemory(ramBytes);
        return new GuestMemory(FOUR_GIB + (ramBytes - PCI_HOLE_START), PCI_HOLE_START, FOUR_GIB);
    }

    /** True when [pa, pa + len) lies in the RAM span and does not touch the hole (MMIO not considered). */
    public boolean backed(long pa, long len) {
        return pa >= 0 && len >= 0 && Long.compareUnsigned(pa + len, ramSize) <= 0
                && (pa + len <= holeStart || pa >= holeEnd);
    }

    /** Registers an MMIO window; it takes precedence over RAM at the same addresses. */
    public synchronized void addMmio(MmioRegion region) {
        for (MmioRegion r : mmio)
            if (r.contains(region.base()) || region.contains(r.base()))
                throw new IllegalArgumentException("MMIO region " + region.name() + " overlaps " + r.name());
        List<MmioRegion> l = new ArrayList<>(List.of(mmio));
        l.add(region);
        mmio = l.toArray(MmioRegion[]::new);
    }

    /** The MMIO region containing {@code pa}, or null. */
    public MmioRegion mmioAt(long pa) {
        for (MmioRegion r : mmio) if (r.contains(pa)) return r;
        return null;
    }

    /** True when the 4 KiB page holding {@code pa} is plain RAM (no MMIO overlaps it). */
    public boolean isRamPage(long pa) {
        long page = pa & ~0xFFFL;
        if (!backed(page, 4096)) return false;
        for (MmioRegion r : mmio)
            if (Long.compareUnsigned(r.base(), page + 4096) < 0 && Long.compareUnsigned(page, r.base() + r.length()) < 0)
                return false;
        return true;
    }

    // ---- physical access with MMIO dispatch (slow path: page walks, DMA, loaders) ----

    public long readPhys(long pa, int size) {
        MmioRegion r = mmioAt(pa);
        if (r != null) return r.handler().read(pa - r.base(), size);
        if (!backed(pa, size)) return size == 8 ? -1L : (1L << (size * 8)) - 1;
        return switch (size) {
            case 1 -> ram.get(U8, pa) & 0xFFL;
            case 2 -> ram.get(U16, pa) & 0xFFFFL;
            case 4 -> ram.get(U32, pa) & 0xFFFF_FFFFL;
            case 8 -> ram.get(U64, pa);
            default -> throw new IllegalArgumentException("size " + size);
        };
    }

    public void writePhys(long pa, int size, long v) {
        MmioRegion r = mmioAt(pa);
        if (r != null) { r.handler().write(pa - r.base(), size, v); return; }
        if (!backed(pa, size)) return;
        switch (size) {
            case 1 -> ram.set(U8, pa, (byte) v);
            case 2 -> ram.set(U16, pa, (short) v);
            case 4 -> ram.set(U32, pa, (int) v);
            case 8 -> ram.set(U64, pa, v);
            default -> throw new IllegalArgumentException("size " + size);
        }
    }

    /** Copies host bytes into RAM (loaders). Throws if the range is not RAM. */
    public void load(long pa, byte[] data, int off, int len) {
        checkRam(pa, len);
        MemorySegment.copy(data, off, ram, U8, pa, len);
    }

    public void load(long pa, byte[] data) { load(pa, data, 0, data.length); }

    /** Copies a segment's bytes (an image file read off the heap) into RAM (loaders). Throws if the range is not RAM. */
    public void load(long pa, MemorySegment data) {
        checkRam(pa, data.byteSize());
        MemorySegment.copy(data, 0, ram, pa, data.byteSize());
    }

    /**
     * Asks the host for huge pages on [pa, pa + len) of RAM that a loader is about to fill whole (a kernel's
     * segments, an initrd), so that the copy faults once per 2 MiB instead of once per 4 KiB; the rest of RAM
     * keeps 4 KiB pages (see {@link LazyRam#HUGE_PAGES} for why). Advice only. Throws if the range is not RAM.
     */
    public void adviseHugePages(long pa, long len) {
        checkRam(pa, len);
        LazyRam.adviseHugePages(ram, pa, len);
    }

    /**
     * Zeroes [pa, pa + len) without touching the pages that already read as zero: RAM is mapped lazily
     * ({@link LazyRam}), so a page written only to clear it would cost host memory that the guest may never
     * use (a vmlinux's .brk and the tail of its .bss, which the kernel clears or hands out itself).
     */
    public void zero(long pa, long len) {
        checkRam(pa, len);
        for (long at = pa, end = pa + len; at < end; ) {
            long n = Math.min(end - at, ZERO_PAGE.byteSize() - (at & 0xFFF));
            MemorySegment s = ram.asSlice(at, n);
            if (s.mismatch(ZERO_PAGE.asSlice(0, n)) >= 0) s.fill((byte) 0);
            at += n;
        }
    }

    private static final MemorySegment ZERO_PAGE = Arena.global().allocate(4096);

    /** Copies RAM into host bytes (loaders). Throws if the range is not RAM. */
    public void copyOut(long pa, byte[] into, int off, int len) {
        checkRam(pa, len);
        MemorySegment.copy(ram, U8, pa, into, off, len);
    }

    public byte[] readBytes(long pa, int len) {
        checkRam(pa, len);
        byte[] b = new byte[len];
        copyOut(pa, b, 0, len);
        return b;
    }

    public void checkRam(long pa, long len) {
        if (!backed(pa, len))
            throw new IllegalArgumentException(String.format("range 0x%x+0x%x is outside guest RAM (0x%x bytes)", pa, len, ramBytes));
    }

    // ---- RAM fast accessors (caller guarantees pa is RAM) ----
    public int ld8(long pa) { return ram.get(U8, pa) & 0xFF; }
    public int ld16(long pa) { return ram.get(U16, pa) & 0xFFFF; }
    public int ld32(long pa) { return ram.get(U32, pa); }
    public long ld64(long pa) { return ram.get(U64, pa); }
    public void st8(long pa, int v) { ram.set(U8, pa, (byte) v); }
    public void st16(long pa, int v) { ram.set(U16, pa, (short) v); }
    public void st32(long pa, int v) { ram.set(U32, pa, v); }
    public void st64(long pa, long v) { ram.set(U64, pa, v); }

    // ---- atomics for LOCK semantics (RAM only) ----

    /** Atomic compare-and-exchange of {@code size} bytes at pa; returns the old value (zero-extended). */
    public long cmpxchg(long pa, int size, long expected, long update) {
        if (size == 8 && (pa & 7) == 0) return (long) AI64.compareAndExchange(ram, pa, expected, update);
        if (size == 4 && (pa & 3) == 0) return ((int) AI32.compareAndExchange(ram, pa, (int) expected, (int) update)) & 0xFFFF_FFFFL;
        synchronized (exclusive) {
            long old = readPhys(pa, size);
            if (old == (expected & mask(size))) writePhys(pa, size, update);
            return old;
        }
    }

    /** Runs an arbitrary read-modify-write atomically (fallback for sizes/alignments VarHandles lack). */
    public long atomicRmw(long pa, int size, java.util.function.LongUnaryOperator op) {
        if ((size == 8 && (pa & 7) == 0) || (size == 4 && (pa & 3) == 0)) {
            for (;;) {
                long old = readPhys(pa, size);
                long nv = op.applyAsLong(old) & mask(size);
                if (cmpxchg(pa, size, old, nv) == old) return old;
            }
        }
        synchronized (exclusive) {
            long old = readPhys(pa, size);
            writePhys(pa, size, op.applyAsLong(old));
            return old;
        }
    }

    /**
     * A pure update for {@link #atomicUpdate}: the new value from the old one and two operands of the
     * instruction. It may run more than once (each time the compare-and-set loses a race).
     */
    @FunctionalInterface
    public interface Update { long apply(long old, long x, long y); }

    /**
     * A LOCK'd read-modify-write of the {@code size}-byte RAM operand at pa (SDM Vol. 3A 9.1.2.2: no other
     * access to the operand can come between the read and the write). An operand inside one naturally
     * aligned 8-byte word is updated with a compare-and-set of that word, so the update is atomic against
     * every other access, plain stores to the word's other bytes included (they make the CAS retry); x86
     * byte and word locks need no wider alignment, and VarHandle CAS exists for long but not for byte/short.
     * An operand that straddles two words (a split lock, which Linux avoids and recent CPUs can trap, SDM
     * Vol. 1 "split lock detection") falls back to the global lock: atomic only against other split locks.
     * Returns the old value (zero-extended); the caller recomputes the new one for its flags.
     */
    public long atomicUpdate(long pa, int size, Update u, long x, long y) {
        long m = mask(size);
        long word = pa & ~7L;
        int shift = (int) (pa - word) << 3;
        if (shift + (size << 3) <= 64) {
            long fm = m << shift;
            for (;;) {
                long w = (long) AI64.getVolatile(ram, word);
                long old = (w >>> shift) & m;
                long nw = (w & ~fm) | ((u.apply(old, x, y) & m) << shift);
                if (AI64.compareAndSet(ram, word, w, nw)) return old;
            }
        }
        synchronized (exclusive) {
            long old = readPhys(pa, size);
            writePhys(pa, size, u.apply(old, x, y));
            return old;
        }
    }

    /** The lock that makes split-lock read-modify-writes (and MMIO ones) exclusive with one another. */
    public Object splitLock() { return exclusive; }

    public static long mask(int size) { return size == 8 ? -1L : (1L << (size * 8)) - 1; }

    @Override
    public void close() { arena.close(); }
}

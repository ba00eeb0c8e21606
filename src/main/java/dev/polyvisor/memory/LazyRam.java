package dev.polyvisor.memory;

import java.lang.foreign.Arena;
import java.lang.foreign.FunctionDescriptor;
import java.lang.foreign.Linker;
import java.lang.foreign.MemorySegment;
import java.lang.invoke.MethodHandle;
import java.util.Optional;

import static java.lang.foreign.ValueLayout.ADDRESS;
import static java.lang.foreign.ValueLayout.JAVA_INT;
import static java.lang.foreign.ValueLayout.JAVA_LONG;

/**
 * Guest RAM as a private anonymous mapping (mmap(2) with MAP_NORESERVE), as QEMU allocates it: pages
 * are zero and cost host memory only once the guest touches them, so a large --memory, and the unbacked
 * PCI hole inside the RAM span, are free until used. {@code Arena.allocate} would zero (touch) every page
 * up front. Where mmap is not available (a non-POSIX host), it falls back to the arena.
 *
 * <p>The VMM's other large native buffers, the kernel and initrd images read before boot, come from here too
 * ({@link #allocateFilled}): zeroing 17 MiB with {@code Arena.allocate} only for the file's bytes to overwrite it
 * took about 50 ms of a Debian boot's start (page faults under nested virtualization, in a CPU profile).
 */
public final class LazyRam {
    private static final int PROT_READ = 1, PROT_WRITE = 2, MAP_PRIVATE = 2, MAP_ANONYMOUS = 0x20, MAP_NORESERVE = 0x4000;
    private static final Optional<MethodHandle> MMAP = function("mmap",
            FunctionDescriptor.of(ADDRESS, ADDRESS, JAVA_LONG, JAVA_INT, JAVA_INT, JAVA_INT, JAVA_LONG));
    private static final Optional<MethodHandle> MUNMAP = function("munmap",
            FunctionDescriptor.of(JAVA_INT, ADDRESS, JAVA_LONG));
    /** Made when first used (huge pages asked for): the downcall handle costs nothing otherwise. */
    private static final class Madvise {
        static final Optional<MethodHandle> MADVISE = function("madvise",
                FunctionDescriptor.of(JAVA_INT, ADDRESS, JAVA_LONG, JAVA_INT));
    }
    /** madvise(2) advice: back the range with transparent huge pages where the host allows it. */
    private static final int MADV_HUGEPAGE = 14;
    /** The x86-64 host's huge page size, to which the RAM is aligned so that every 2 MiB of it can be one page. */
    static final long HUGE_PAGE = 2L << 20;
    /**
     * Whether guest RAM asks for transparent huge pages: off unless {@code polyvisor.ram.hugepages=true}. On, a Debian
     * boot took 30 k page faults instead of 50 k, but its peak RSS was 212 MiB every time against 192-209 (2 MiB pages
     * take in the untouched rest of each; about 10 MiB of the difference was a C2 arena since capped by the launcher),
     * above QEMU TCG's 200 MiB, and the boot was no faster beyond this machine's noise (bench/boot-vs-qemu.sh,
     * session 13; session 8 found the same for the shell workload). The loader advises the ranges it fills whole
     * ({@link #adviseHugePages(MemorySegment, long, long)}).
     */
    static final boolean HUGE_PAGES = Boolean.getBoolean("polyvisor.ram.hugepages");

    private LazyRam() {}

    private static Optional<MethodHandle> function(String name, FunctionDescriptor fd) {
        if (!System.getProperty("os.name", "").toLowerCase(java.util.Locale.ROOT).contains("linux")) return Optional.empty();
        Linker linker = Linker.nativeLinker();
        return linker.defaultLookup().find(name).map(addr -> linker.downcallHandle(addr, fd));
    }

    /** Guest RAM: a zero-filled, page-aligned segment of {@code size} bytes whose lifetime is {@code arena}'s. */
    static MemorySegment allocate(long size, Arena arena) { return allocate(size, arena, HUGE_PAGES, "guest RAM"); }

    /**
     * A buffer the VMM fills whole at once (an image file, a decompressed block): zero pages that the bytes overwrite,
     * never zeroed first, on huge pages where the host gives them (the whole 2 MiB pages inside it: being filled whole,
     * they cost no more memory, and the host takes a page fault per 2 MiB instead of per 4 KiB). Session 13 measured
     * 10 MiB more peak RSS with the advice, which was the C2 arena the launcher caps now (see GuestMemory).
     */
    public static MemorySegment allocateFilled(long size, Arena arena) { return allocate(size, arena, true, "an image buffer"); }

    /**
     * A zero-filled segment of {@code size} bytes whose lifetime is {@code arena}'s, 2 MiB aligned (so that parts can
     * be advised later, {@link #adviseHugePages(MemorySegment, long, long)}), and advised whole for huge pages with
     * {@code hugePages}; {@code what} names it in errors.
     */
    static MemorySegment allocate(long size, Arena arena, boolean hugePages, String what) {
        if (MMAP.isEmpty() || MUNMAP.isEmpty()) return arena.allocate(size, 4096);
        // Mapped with a huge page of slack, so that the segment can start on a 2 MiB boundary: address space only
        // (MAP_NORESERVE), the slack is never touched.
        long mapped = size + HUGE_PAGE;
        MemorySegment base;
        try {
            base = (MemorySegment) MMAP.get().invokeExact(MemorySegment.NULL, mapped,
                    PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS | MAP_NORESERVE, -1, 0L);
        } catch (Throwable t) {
            throw new IllegalStateException("mmap for " + what + " failed", t);
        }
        if (base.address() == -1L || base.address() == 0L)
            throw new OutOfMemoryError("cannot map " + (size >> 20) + " MiB for " + what);
        long start = (base.address() + HUGE_PAGE - 1) & -HUGE_PAGE;
        if (hugePages) adviseHugePages(start, size);
        MethodHandle munmap = MUNMAP.get();
        long mappedAt = base.address();
        return MemorySegment.ofAddress(start).reinterpret(size, arena, seg -> {
            try {
                int rc = (int) munmap.invokeExact(MemorySegment.ofAddress(mappedAt), mapped);
                assert rc == 0;
            } catch (Throwable t) {
                throw new IllegalStateException("munmap for " + what + " failed", t);
            }
        });
    }

    /**
     * Asks for transparent huge pages on the whole host huge pages inside [{@code offset}, {@code offset + len}) of
     * a segment (guest RAM is 2 MiB aligned, so that these are the guest's 2 MiB pages too): for a range that will
     * be touched whole anyway, such as the kernel image the VMM copies into guest RAM, huge pages cost no memory
     * and save the host 511 of every 512 first-touch page faults.
     */
    public static void adviseHugePages(MemorySegment segment, long offset, long len) {
        java.util.Objects.checkFromIndexSize(offset, len, segment.byteSize());
        long from = (segment.address() + offset + HUGE_PAGE - 1) & -HUGE_PAGE;
        long to = (segment.address() + offset + len) & -HUGE_PAGE;
        if (to > from) adviseHugePages(from, to - from);
    }

    /**
     * Asks for transparent huge pages on a range, as QEMU does for every RAM block (qemu_madvise with
     * QEMU_MADV_HUGEPAGE in ram_block_add): touching fresh memory then costs the host one page fault per 2 MiB
     * instead of one per 4 KiB. Advice only: a host whose THP setting is "never" (or that has none) keeps 4 KiB
     * pages, and a failure changes nothing else.
     */
    private static void adviseHugePages(long start, long size) {
        if (Madvise.MADVISE.isEmpty()) return;
        try {
            int ignored = (int) Madvise.MADVISE.get().invokeExact(MemorySegment.ofAddress(start), size, MADV_HUGEPAGE);
        } catch (Throwable t) {
            // advice only: the RAM works the same without it
        }
    }
}

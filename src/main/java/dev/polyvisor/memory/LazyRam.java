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
 */
final class LazyRam {
    private static final int PROT_READ = 1, PROT_WRITE = 2, MAP_PRIVATE = 2, MAP_ANONYMOUS = 0x20, MAP_NORESERVE = 0x4000;
    private static final Optional<MethodHandle> MMAP = function("mmap",
            FunctionDescriptor.of(ADDRESS, ADDRESS, JAVA_LONG, JAVA_INT, JAVA_INT, JAVA_INT, JAVA_LONG));
    private static final Optional<MethodHandle> MUNMAP = function("munmap",
            FunctionDescriptor.of(JAVA_INT, ADDRESS, JAVA_LONG));

    private LazyRam() {}

    private static Optional<MethodHandle> function(String name, FunctionDescriptor fd) {
        if (!System.getProperty("os.name", "").toLowerCase(java.util.Locale.ROOT).contains("linux")) return Optional.empty();
        Linker linker = Linker.nativeLinker();
        return linker.defaultLookup().find(name).map(addr -> linker.downcallHandle(addr, fd));
    }

    /** A zero-filled, page-aligned segment of {@code size} bytes whose lifetime is {@code arena}'s. */
    static MemorySegment allocate(long size, Arena arena) {
        if (MMAP.isEmpty() || MUNMAP.isEmpty()) return arena.allocate(size, 4096);
        MemorySegment base;
        try {
            base = (MemorySegment) MMAP.get().invokeExact(MemorySegment.NULL, size,
                    PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS | MAP_NORESERVE, -1, 0L);
        } catch (Throwable t) {
            throw new IllegalStateException("mmap of guest RAM failed", t);
        }
        if (base.address() == -1L || base.address() == 0L)
            throw new OutOfMemoryError("cannot map " + (size >> 20) + " MiB of guest RAM");
        MethodHandle munmap = MUNMAP.get();
        return base.reinterpret(size, arena, seg -> {
            try {
                int rc = (int) munmap.invokeExact(MemorySegment.ofAddress(seg.address()), size);
                assert rc == 0;
            } catch (Throwable t) {
                throw new IllegalStateException("munmap of guest RAM failed", t);
            }
        });
    }
}

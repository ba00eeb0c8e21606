package dev.polyvisor.vmm.boot;

import dev.polyvisor.memory.LazyRam;

import java.io.IOException;
import java.lang.foreign.Arena;
import java.lang.foreign.MemorySegment;
import java.nio.channels.FileChannel;
import java.nio.file.Files;
import java.nio.file.NoSuchFileException;
import java.nio.file.Path;
import java.nio.file.StandardOpenOption;

/** Reads a boot image, onto the heap or into native memory, with one-line errors for the usual file problems. */
public final class ImageFile {
    /** Images larger than this are refused rather than exhausting the heap. */
    public static final long MAX_SIZE = 1L << 30;

    private ImageFile() {}

    public static byte[] read(Path p, String what) throws LoadException {
        return reading(p, what, () -> Files.readAllBytes(p));
    }

    /**
     * The file read into native memory that lives as long as {@code arena}: a kernel and an initrd are copied (or
     * decompressed) into guest RAM once, so they should not pass through the Java heap. Read into arrays (17 MiB for
     * Debian's kernel and initramfs), they were live at the boot's second young collection, so the collector copied
     * them to the old generation (a 62 ms pause), where they stayed as garbage and made it grow the heap later: 15 MiB
     * of the boot benchmark's peak RSS (bench/boot-vs-qemu.sh, session 10). Read, not mapped: a mapped file that
     * another process truncates while the native LZ4 decoder reads it would raise SIGBUS in native code, which the
     * JVM cannot turn into an exception.
     */
    public static MemorySegment readOffHeap(Path p, String what, Arena arena) throws LoadException {
        return reading(p, what, () -> {
            if (!Files.isRegularFile(p)) {
                // A pipe (--kernel <(...)) has no size to allocate for: read to its end, as read() does, then copy.
                byte[] bytes = Files.readAllBytes(p);
                return arena.allocate(bytes.length, 4096).copyFrom(MemorySegment.ofArray(bytes));
            }
            try (FileChannel ch = FileChannel.open(p, StandardOpenOption.READ)) {
                MemorySegment s = LazyRam.allocateFilled(Math.max(1, ch.size()), arena).asSlice(0, ch.size()); // zero pages, not zeroed ones
                java.nio.ByteBuffer b = s.asByteBuffer();
                while (b.hasRemaining())
                    if (ch.read(b) < 0) throw new LoadException(what + " " + p + ": the file shrank while it was read");
                return s;
            }
        });
    }

    /** At most the first {@code n} bytes of the file (format detection), with {@link #read}'s errors. */
    public static byte[] head(Path p, String what, int n) throws LoadException {
        return reading(p, what, () -> {
            try (var in = Files.newInputStream(p)) {
                return in.readNBytes(n);
            }
        });
    }

    private interface Reading<T> { T run() throws IOException, LoadException; }

    /**
     * Checks the usual file problems (none given, missing, a directory, larger than {@link #MAX_SIZE}), then does
     * {@code how}, each failure a one-line LoadException naming {@code what} and the file.
     */
    private static <T> T reading(Path p, String what, Reading<T> how) throws LoadException {
        if (p == null) throw new LoadException("no " + what + " given");
        try {
            if (!Files.exists(p)) throw new LoadException(what + " " + p + ": no such file");
            if (Files.isDirectory(p)) throw new LoadException(what + " " + p + ": is a directory");
            long size = Files.size(p);
            if (size > MAX_SIZE) throw new LoadException(what + " " + p + ": too large (" + size + " bytes)");
            return how.run();
        } catch (NoSuchFileException e) {
            throw new LoadException(what + " " + p + ": no such file");
        } catch (IOException e) {
            throw new LoadException(what + " " + p + ": cannot read: " + e.getMessage());
        }
    }
}

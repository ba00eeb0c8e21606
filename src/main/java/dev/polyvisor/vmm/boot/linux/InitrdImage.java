package dev.polyvisor.vmm.boot.linux;

import dev.polyvisor.vmm.boot.LoadException;
import java.lang.foreign.MemorySegment;
import java.nio.charset.StandardCharsets;

/**
 * Checks an initrd before it is handed to the kernel, so that a wrong or damaged file is a one-line
 * error now rather than a kernel panic ("VFS: Unable to mount root fs") half a minute later.
 *
 * <p>Accepted: a cpio "newc" archive (magic 070701 or 070702, Documentation/driver-api/early-userspace/
 * buffer-format.rst), which is walked header by header up to its TRAILER!!! entry so that truncation is
 * caught; or one of the compressed formats the kernel's initramfs unpacker recognises by magic
 * (lib/decompress.c: gzip, bzip2, lzma, xz, lzo, lz4 legacy, zstd), whose contents are not checked.
 */
public final class InitrdImage {
    private InitrdImage() {}

    public static void check(byte[] d) throws LoadException { check(MemorySegment.ofArray(d)); }

    /** As {@link #check(byte[])}, for an image in a segment (an image file read off the heap, ImageFile.readOffHeap). */
    public static void check(MemorySegment d) throws LoadException {
        long n = d.byteSize();
        if (n == 0) throw new LoadException("initrd is empty");
        if (n > Integer.MAX_VALUE) throw new LoadException("initrd too large: " + n + " bytes");
        if (startsWith(d, "070701") || startsWith(d, "070702")) { walkNewc(d); return; }
        if (compressed(d, 0)) return;
        throw new LoadException(String.format(
                "initrd is neither a cpio archive nor a compressed image the kernel can unpack (starts with %02x %02x %02x %02x)",
                u8(d, 0), n > 1 ? u8(d, 1) : 0, n > 2 ? u8(d, 2) : 0, n > 3 ? u8(d, 3) : 0));
    }

    private static boolean compressed(MemorySegment d, int at) {
        return magic(d, at, 0x1F, 0x8B) || magic(d, at, 0x1F, 0x9E)          // gzip
                || magic(d, at, 'B', 'Z', 'h')                                // bzip2
                || magic(d, at, 0x5D, 0x00, 0x00)                             // lzma
                || magic(d, at, 0xFD, '7', 'z', 'X', 'Z', 0x00)               // xz
                || magic(d, at, 0x89, 'L', 'Z', 'O')                          // lzo
                || magic(d, at, 0x02, 0x21, 0x4C, 0x18)                       // lz4 legacy
                || magic(d, at, 0x28, 0xB5, 0x2F, 0xFD);                      // zstd
    }

    /** newc: 110-byte ASCII-hex header, name (NUL-terminated, padded to 4), data padded to 4. */
    private static void walkNewc(MemorySegment d) throws LoadException {
        int length = (int) d.byteSize();
        int pos = 0;
        while (true) {
            if (pos + 110 > length)
                throw new LoadException("initrd cpio archive is truncated at byte " + pos + " (no TRAILER!!! entry)");
            if (!startsWith(d, pos, "070701") && !startsWith(d, pos, "070702")) {
                // The kernel accepts concatenated archives and zero padding between them.
                if (u8(d, pos) == 0) { pos = skipZeros(d, pos); if (pos >= length) return; continue; }
                throw new LoadException("initrd cpio archive is corrupt at byte " + pos + " (bad header magic)");
            }
            long fileSize = hex(d, pos + 54), nameSize = hex(d, pos + 94);
            if (fileSize < 0 || nameSize <= 0) throw new LoadException("initrd cpio archive is corrupt at byte " + pos + " (bad header field)");
            long nameEnd = pos + 110 + nameSize;
            if (nameEnd > length) throw new LoadException("initrd cpio archive is truncated in the entry at byte " + pos);
            String name = new String(d.asSlice(pos + 110, nameSize - 1).toArray(java.lang.foreign.ValueLayout.JAVA_BYTE), StandardCharsets.US_ASCII);
            long next = align4(align4(nameEnd) + fileSize);
            if (next > length && !(name.equals("TRAILER!!!") && fileSize == 0))
                throw new LoadException("initrd cpio archive is truncated in '" + name + "' (needs " + next + " bytes, file has " + length + ")");
            if (name.equals("TRAILER!!!")) {
                pos = (int) Math.min(next, length);
                pos = skipZeros(d, pos);
                if (pos >= length) return;
                if (!startsWith(d, pos, "070701") && !startsWith(d, pos, "070702") && !compressed(d, pos))
                    throw new LoadException("initrd has unrecognised data after its cpio archive at byte " + pos);
                if (!startsWith(d, pos, "0707")) return; // a compressed archive follows (early microcode + main image)
                continue;
            }
            pos = (int) next;
        }
    }

    private static int u8(MemorySegment d, long at) { return d.get(java.lang.foreign.ValueLayout.JAVA_BYTE, at) & 0xFF; }

    private static int skipZeros(MemorySegment d, int pos) {
        while (pos < d.byteSize() && u8(d, pos) == 0) pos++;
        return pos;
    }

    private static long align4(long v) { return (v + 3) & ~3L; }

    private static long hex(MemorySegment d, int at) {
        long v = 0;
        for (int i = 0; i < 8; i++) {
            int c = Character.digit(u8(d, at + i), 16);
            if (c < 0) return -1;
            v = v << 4 | c;
        }
        return v;
    }

    private static boolean startsWith(MemorySegment d, String s) { return startsWith(d, 0, s); }

    private static boolean startsWith(MemorySegment d, int at, String s) {
        if (at + s.length() > d.byteSize()) return false;
        for (int i = 0; i < s.length(); i++) if (u8(d, at + i) != s.charAt(i)) return false;
        return true;
    }

    private static boolean magic(MemorySegment d, int at, int... m) {
        if (d.byteSize() - at < m.length) return false;
        for (int i = 0; i < m.length; i++) if (u8(d, at + i) != m[i]) return false;
        return true;
    }
}

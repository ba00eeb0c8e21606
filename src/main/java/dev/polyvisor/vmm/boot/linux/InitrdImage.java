package dev.polyvisor.vmm.boot.linux;

import dev.polyvisor.vmm.boot.LoadException;
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

    public static void check(byte[] d) throws LoadException {
        if (d.length == 0) throw new LoadException("initrd is empty");
        if (startsWith(d, "070701") || startsWith(d, "070702")) { walkNewc(d); return; }
        if (compressed(d)) return;
        throw new LoadException(String.format(
                "initrd is neither a cpio archive nor a compressed image the kernel can unpack (starts with %02x %02x %02x %02x)",
                d[0] & 0xFF, d.length > 1 ? d[1] & 0xFF : 0, d.length > 2 ? d[2] & 0xFF : 0, d.length > 3 ? d[3] & 0xFF : 0));
    }

    private static boolean compressed(byte[] d) {
        return magic(d, 0x1F, 0x8B) || magic(d, 0x1F, 0x9E)          // gzip
                || magic(d, 'B', 'Z', 'h')                            // bzip2
                || magic(d, 0x5D, 0x00, 0x00)                         // lzma
                || magic(d, 0xFD, '7', 'z', 'X', 'Z', 0x00)           // xz
                || magic(d, 0x89, 'L', 'Z', 'O')                      // lzo
                || magic(d, 0x02, 0x21, 0x4C, 0x18)                   // lz4 legacy
                || magic(d, 0x28, 0xB5, 0x2F, 0xFD);                  // zstd
    }

    /** newc: 110-byte ASCII-hex header, name (NUL-terminated, padded to 4), data padded to 4. */
    private static void walkNewc(byte[] d) throws LoadException {
        int pos = 0;
        while (true) {
            if (pos + 110 > d.length)
                throw new LoadException("initrd cpio archive is truncated at byte " + pos + " (no TRAILER!!! entry)");
            if (!startsWith(d, pos, "070701") && !startsWith(d, pos, "070702")) {
                // The kernel accepts concatenated archives and zero padding between them.
                if (d[pos] == 0) { pos = skipZeros(d, pos); if (pos >= d.length) return; continue; }
                throw new LoadException("initrd cpio archive is corrupt at byte " + pos + " (bad header magic)");
            }
            long fileSize = hex(d, pos + 54), nameSize = hex(d, pos + 94);
            if (fileSize < 0 || nameSize <= 0) throw new LoadException("initrd cpio archive is corrupt at byte " + pos + " (bad header field)");
            int nameEnd = pos + 110 + (int) nameSize;
            if (nameEnd > d.length) throw new LoadException("initrd cpio archive is truncated in the entry at byte " + pos);
            String name = new String(d, pos + 110, (int) nameSize - 1, StandardCharsets.US_ASCII);
            long next = align4(align4(nameEnd) + fileSize);
            if (next > d.length && !(name.equals("TRAILER!!!") && fileSize == 0))
                throw new LoadException("initrd cpio archive is truncated in '" + name + "' (needs " + next + " bytes, file has " + d.length + ")");
            if (name.equals("TRAILER!!!")) {
                pos = (int) Math.min(next, d.length);
                pos = skipZeros(d, pos);
                if (pos >= d.length) return;
                if (!startsWith(d, pos, "070701") && !startsWith(d, pos, "070702") && !compressed(java.util.Arrays.copyOfRange(d, pos, Math.min(d.length, pos + 8))))
                    throw new LoadException("initrd has unrecognised data after its cpio archive at byte " + pos);
                if (!startsWith(d, pos, "0707")) return; // a compressed archive follows (early microcode + main image)
                continue;
            }
            pos = (int) next;
        }
    }

    private static int skipZeros(byte[] d, int pos) {
        while (pos < d.length && d[pos] == 0) pos++;
        return pos;
    }

    private static long align4(long v) { return (v + 3) & ~3L; }

    private static long hex(byte[] d, int at) {
        long v = 0;
        for (int i = 0; i < 8; i++) {
            int c = Character.digit(d[at + i], 16);
            if (c < 0) return -1;
            v = v << 4 | c;
        }
        return v;
    }

    private static boolean startsWith(byte[] d, String s) { return startsWith(d, 0, s); }

    private static boolean startsWith(byte[] d, int at, String s) {
        if (at + s.length() > d.length) return false;
        for (int i = 0; i < s.length(); i++) if (d[at + i] != s.charAt(i)) return false;
        return true;
    }

    private static boolean magic(byte[] d, int... m) {
        if (d.length < m.length) return false;
        for (int i = 0; i < m.length; i++) if ((d[i] & 0xFF) != m[i]) return false;
        return true;
    }
}

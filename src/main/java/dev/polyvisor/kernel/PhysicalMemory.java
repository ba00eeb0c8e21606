package dev.polyvisor.kernel;

import dev.polyvisor.memory.GuestMemory;
import java.nio.charset.StandardCharsets;

/**
 * Guest physical memory as this package reads it: one bulk read, little-endian helpers on top. An
 * implementation throws {@link UnreadableMemoryException} for a range it does not back.
 */
@FunctionalInterface
public interface PhysicalMemory {
    /** Copies {@code len} bytes at guest-physical {@code address} into {@code dst[off..]}. */
    void read(long address, byte[] dst, int off, int len);

    /** A VM's RAM (MMIO and the PCI hole are not read: they are not where the kernel keeps its tables). */
    static PhysicalMemory of(GuestMemory memory) {
        return (address, dst, off, len) -> {
            if (!memory.backed(address, len))
                throw new UnreadableMemoryException(String.format("guest-physical 0x%x+0x%x is not RAM", address, len));
            System.arraycopy(memory.readBytes(address, len), 0, dst, off, len);
        };
    }

    /** A byte array standing for RAM from physical address 0 (tests). */
    static PhysicalMemory of(byte[] ram) {
        return (address, dst, off, len) -> {
            if (address < 0 || len < 0 || address > ram.length - (long) len)
                throw new UnreadableMemoryException(String.format("guest-physical 0x%x+0x%x is outside the 0x%x-byte RAM", address, len, ram.length));
            System.arraycopy(ram, (int) address, dst, off, len);
        };
    }

    default byte[] bytes(long address, int len) {
        byte[] b = new byte[len];
        read(address, b, 0, len);
        return b;
    }

    default int u8(long address) { return bytes(address, 1)[0] & 0xFF; }

    default int u32(long address) { return (int) Bytes.le(bytes(address, 4), 0, 4); }

    default long u64(long address) { return Bytes.le(bytes(address, 8), 0, 8); }

    /** A NUL-terminated string of at most {@code max} bytes (read in small steps so it never runs far past its end). */
    default String cString(long address, int max) {
        StringBuilder sb = new StringBuilder();
        byte[] chunk = new byte[16];
        long at = address;
        for (int left = max; left > 0; ) {
            int n = (int) Math.min(Math.min(chunk.length, left), 0x1000 - (at & 0xFFF)); // never cross a page in one read
            read(at, chunk, 0, n);
            for (int i = 0; i < n; i++) {
                if (chunk[i] == 0) return sb.toString();
                sb.append((char) (chunk[i] & 0xFF));
            }
            at += n;
            left -= n;
        }
        return sb.toString();
    }

    /** Decodes ASCII/UTF-8 bytes up to the first NUL. */
    static String cString(byte[] b, int off, int max) {
        int end = off;
        while (end < b.length && end - off < max && b[end] != 0) end++;
        return new String(b, off, end - off, StandardCharsets.UTF_8);
    }
}

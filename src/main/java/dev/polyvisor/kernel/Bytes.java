package dev.polyvisor.kernel;

import java.nio.charset.StandardCharsets;

/**
 * A bounds-checked little-endian view of part of a byte array, for the parsers: every read outside
 * the view is a {@link KernelFormatException} naming what was being read, never an
 * ArrayIndexOutOfBoundsException.
 */
final class Bytes {
    final byte[] data;
    final int base, length;
    private final String what;

    Bytes(byte[] data, String what) { this(data, 0, data.length, what); }

    Bytes(byte[] data, int base, int length, String what) {
        if (base < 0 || length < 0 || base > data.length - length) throw new IllegalArgumentException("view outside its array");
        this.data = data;
        this.base = base;
        this.length = length;
        this.what = what;
    }

    /** The sub-view [off, off + len), checked. */
    Bytes slice(long off, long len, String name) throws KernelFormatException {
        check(off, len, name);
        return new Bytes(data, base + (int) off, (int) len, name);
    }

    void check(long off, long len, String field) throws KernelFormatException {
        if (off < 0 || len < 0 || off > length - len)
            throw KernelFormatException.of("%s: %s at 0x%x+0x%x lies outside its 0x%x bytes", what, field, off, len, length);
    }

    int u8(long off) throws KernelFormatException { check(off, 1, "byte"); return data[base + (int) off] & 0xFF; }

    int u16(long off) throws KernelFormatException { check(off, 2, "u16"); return (int) le(data, base + (int) off, 2); }

    int s32(long off) throws KernelFormatException { check(off, 4, "u32"); return (int) le(data, base + (int) off, 4); }

    long u32(long off) throws KernelFormatException { return Integer.toUnsignedLong(s32(off)); }

    long u64(long off) throws KernelFormatException { check(off, 8, "u64"); return le(data, base + (int) off, 8); }

    /** The NUL-terminated string at {@code off}; it must end inside the view. */
    String cString(long off, String field) throws KernelFormatException {
        check(off, 1, field);
        int start = base + (int) off, end = start, limit = base + length;
        while (end < limit && data[end] != 0) end++;
        if (end == limit) throw KernelFormatException.of("%s: %s at 0x%x is not NUL-terminated", what, field, off);
        return new String(data, start, end - start, StandardCharsets.UTF_8);
    }

    byte[] copy(long off, int len) throws KernelFormatException {
        check(off, len, "bytes");
        byte[] b = new byte[len];
        System.arraycopy(data, base + (int) off, b, 0, len);
        return b;
    }

    static long le(byte[] b, int off, int size) {
        long v = 0;
        for (int i = size - 1; i >= 0; i--) v = v << 8 | (b[off + i] & 0xFF);
        return v;
    }
}

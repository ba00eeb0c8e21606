package dev.polyvisor.vmm.boot;

import java.nio.ByteBuffer;
import java.nio.ByteOrder;

/** Builds small kernel images byte by byte for loader tests. */
public final class TestImages {
    private TestImages() {}

    /** An ELF32 i386 executable with one PT_LOAD of {@code code} at {@code paddr}, plus {@code bss} zero bytes. */
    public static byte[] elf32(long paddr, long entry, byte[] code, int bss, boolean multibootHeader) {
        int hdr = 52, ph = 32, codeOff = 0x100;
        byte[] payload = multibootHeader ? concat(multibootHeader(0), code) : code;
        ByteBuffer b = ByteBuffer.allocate(codeOff + payload.length).order(ByteOrder.LITTLE_ENDIAN);
        b.put(new byte[] {0x7F, 'E', 'L', 'F', 1, 1, 1, 0});
        b.putShort(16, (short) 2).putShort(18, (short) 3).putInt(20, 1).putInt(24, (int) entry).putInt(28, hdr)
                .putShort(40, (short) hdr).putShort(42, (short) ph).putShort(44, (short) 1);
        b.putInt(hdr, 1).putInt(hdr + 4, codeOff).putInt(hdr + 8, (int) paddr).putInt(hdr + 12, (int) paddr)
                .putInt(hdr + 16, payload.length).putInt(hdr + 20, payload.length + bss).putInt(hdr + 24, 5);
        b.put(codeOff, payload);
        return b.array();
    }

    /** The 12-byte multiboot header with the given flags and a correct checksum. */
    public static byte[] multibootHeader(int flags) {
        return ByteBuffer.allocate(12).order(ByteOrder.LITTLE_ENDIAN)
                .putInt(Multiboot.HEADER_MAGIC).putInt(flags).putInt(-(Multiboot.HEADER_MAGIC + flags)).array();
    }

    /**
     * An a.out-kludge image: the header at file offset 0 (address {@code load}), code right after the
     * 32-byte header, entry at the code.
     */
    public static byte[] aout(long load, byte[] code, int bss) {
        int flags = Multiboot.HF_AOUT_KLUDGE;
        ByteBuffer b = ByteBuffer.allocate(32 + code.length).order(ByteOrder.LITTLE_ENDIAN);
        b.putInt(Multiboot.HEADER_MAGIC).putInt(flags).putInt(-(Multiboot.HEADER_MAGIC + flags));
        b.putInt((int) load).putInt((int) load).putInt((int) (load + 32 + code.length))
                .putInt((int) (load + 32 + code.length + bss)).putInt((int) (load + 32));
        b.put(code);
        return b.array();
    }

    public static byte[] concat(byte[] a, byte[] b) {
        byte[] r = java.util.Arrays.copyOf(a, a.length + b.length);
        System.arraycopy(b, 0, r, a.length, b.length);
        return r;
    }
}

package dev.polyvisor.kernel;

import java.util.HashMap;
import java.util.Map;

/** Guest RAM for tests: 4 KiB pages allocated on first write, reads of unwritten pages return zeros, reads above {@code size} fail. */
final class SparseRam implements PhysicalMemory {
    final long size;
    private final Map<Long, byte[]> pages = new HashMap<>();

    SparseRam(long size) { this.size = size; }

    @Override
    public void read(long address, byte[] dst, int off, int len) {
        if (address < 0 || address + len > size) throw new UnreadableMemoryException(String.format("0x%x+0x%x outside test RAM", address, len));
        for (int i = 0; i < len; i++) {
            byte[] p = pages.get((address + i) >>> 12);
            dst[off + i] = p == null ? 0 : p[(int) ((address + i) & 0xFFF)];
        }
    }

    void write(long address, byte[] data) {
        for (int i = 0; i < data.length; i++) pages.computeIfAbsent((address + i) >>> 12, k -> new byte[4096])[(int) ((address + i) & 0xFFF)] = data[i];
    }

    void u64(long address, long v) {
        byte[] b = new byte[8];
        for (int i = 0; i < 8; i++) b[i] = (byte) (v >>> 8 * i);
        write(address, b);
    }

    void u32(long address, int v) {
        byte[] b = new byte[4];
        for (int i = 0; i < 4; i++) b[i] = (byte) (v >>> 8 * i);
        write(address, b);
    }

    void cString(long address, String s) {
        byte[] b = (s + "\0").getBytes(java.nio.charset.StandardCharsets.US_ASCII);
        write(address, b);
    }
}

package dev.polyvisor.memory;

/**
 * A device register window in guest physical address space. Offsets are relative to the region base;
 * size is 1, 2, 4 or 8 bytes. Values are little-endian, zero-extended.
 */
public interface MmioHandler {
    long read(long offset, int size);

    void write(long offset, int size, long value);
}

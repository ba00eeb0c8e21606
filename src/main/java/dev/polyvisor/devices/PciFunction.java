package dev.polyvisor.devices;

/**
 * One PCI function's 256-byte configuration space (PCI Local Bus Specification 3.0, chapter 6).
 * Offsets are byte offsets, size 1, 2 or 4, naturally aligned by the host bridge.
 */
public interface PciFunction {
    int configRead(int offset, int size);

    void configWrite(int offset, int size, int value);
}

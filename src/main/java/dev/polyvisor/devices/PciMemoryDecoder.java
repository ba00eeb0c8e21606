package dev.polyvisor.devices;

/**
 * A PCI function with memory BARs: it says whether it decodes a physical address (its BAR's current
 * base, with Memory Space enabled in its command register) and answers the access. Used by
 * {@link PciMmioWindow}, which forwards the root bridge's memory window to the functions.
 */
public interface PciMemoryDecoder {
    /** The offset of {@code pa} inside one of this function's enabled memory BARs, encoded as {@code bar << 48 | offset}, or -1. */
    long decode(long pa);

    long barRead(int bar, long offset, int size);

    void barWrite(int bar, long offset, int size, long value);
}

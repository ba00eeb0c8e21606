package dev.polyvisor.memory;

/** One MMIO window: [base, base+length) handled by {@code handler}. */
public record MmioRegion(String name, long base, long length, MmioHandler handler) {
    public MmioRegion {
        if (length <= 0) throw new IllegalArgumentException("MMIO region " + name + " has no length");
    }

    public boolean contains(long pa) {
        return Long.compareUnsigned(pa - base, length) < 0;
    }
}

package dev.polyvisor.devices;

import dev.polyvisor.memory.MmioHandler;

import java.util.List;
import java.util.concurrent.CopyOnWriteArrayList;

/**
 * The root bridge's 32-bit memory window (the PC's PCI hole, as the DSDT's PCI0 _CRS describes it):
 * one MMIO region whose accesses go to whichever function's BAR decodes the address at the moment,
 * so that BARs move when the guest reprograms them. Addresses no BAR claims read all-ones and drop
 * writes: the host bridge ends a transaction no target claims with a Master-Abort, which returns
 * all ones on reads and discards writes (PCI Local Bus Specification 3.0, 3.3.3.1).
 */
public final class PciMmioWindow implements MmioHandler {
    private final long base;
    private final long length;
    private final List<PciMemoryDecoder> decoders = new CopyOnWriteArrayList<>();

    public PciMmioWindow(long base, long length) { this.base = base; this.length = length; }

    public long base() { return base; }

    public long length() { return length; }

    public void add(PciMemoryDecoder d) { decoders.add(d); }

    @Override
    public long read(long offset, int size) {
        long pa = base + offset;
        for (PciMemoryDecoder d : decoders) {
            long hit = d.decode(pa);
            if (hit >= 0) return d.barRead((int) (hit >>> 48), hit & 0xFFFF_FFFF_FFFFL, size);
        }
        return size == 8 ? -1L : (1L << (8 * size)) - 1;
    }

    @Override
    public void write(long offset, int size, long value) {
        long pa = base + offset;
        for (PciMemoryDecoder d : decoders) {
            long hit = d.decode(pa);
            if (hit >= 0) { d.barWrite((int) (hit >>> 48), hit & 0xFFFF_FFFF_FFFFL, size, value); return; }
        }
    }
}

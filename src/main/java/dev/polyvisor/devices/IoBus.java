package dev.polyvisor.devices;

/**
 * The PC's 64 KiB port-I/O space: a handler per port. Unassigned ports read all-ones and ignore
 * writes, as an ISA bus with no device answering does.
 */
public final class IoBus {
    private final PortIoDevice[] ports = new PortIoDevice[65536];

    /** Claims {@code count} ports starting at {@code base}; a port can have only one owner. */
    public void register(int base, int count, PortIoDevice dev) {
        for (int p = base; p < base + count; p++) {
            if (ports[p] != null && ports[p] != dev)
                throw new IllegalStateException(String.format("I/O port 0x%x is already claimed", p));
            ports[p] = dev;
        }
    }

    public long in(int port, int size) {
        PortIoDevice d = ports[port & 0xFFFF];
        if (d == null) return size == 4 ? 0xFFFF_FFFFL : (1L << (8 * size)) - 1;
        return d.in(port & 0xFFFF, size);
    }

    public void out(int port, int size, long value) {
        PortIoDevice d = ports[port & 0xFFFF];
        if (d != null) d.out(port & 0xFFFF, size, value);
    }
}

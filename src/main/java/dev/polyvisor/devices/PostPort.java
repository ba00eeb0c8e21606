package dev.polyvisor.devices;

/**
 * Port 0x80, the POST diagnostic port. Linux writes to it as an I/O delay (arch/x86/boot io_delay,
 * outb_p); writes are accepted and dropped, reads return the last value written, as a POST card
 * latch would.
 */
public final class PostPort implements PortIoDevice {
    private volatile int last;

    public void register(IoBus bus) { bus.register(0x80, 1, this); }

    @Override public long in(int port, int size) { return last; }

    @Override public void out(int port, int size, long value) { last = (int) value & 0xFF; }
}

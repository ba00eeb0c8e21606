package dev.polyvisor.vmm;

import dev.polyvisor.devices.PortIoDevice;

/**
 * QEMU's {@code isa-debug-exit} device at port 0xf4 (hw/misc/debugexit.c): a guest write of value v
 * ends the VM with host exit status {@code (v << 1) | 1}, so a test kernel can report pass/fail.
 * Reads return all-ones (the device has no readable register). The width of the write is the access
 * size, as in QEMU ({@code iosize} up to 4).
 */
public final class DebugExit implements PortIoDevice {
    public static final int PORT = 0xF4;

    /** Called with the host exit status when the guest writes the port. */
    public interface Listener { void exit(int status); }

    private final Listener listener;

    public DebugExit(Listener listener) { this.listener = listener; }

    @Override public long in(int port, int size) { return -1L; }

    @Override
    public void out(int port, int size, long value) {
        long v = size == 4 ? value & 0xFFFF_FFFFL : value & ((1L << (8 * size)) - 1);
        listener.exit((int) ((v << 1) | 1));
    }
}

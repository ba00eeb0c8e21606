package dev.polyvisor.devices;

/** A device's port-I/O registers. {@code port} is the absolute port number; size is 1, 2 or 4. */
public interface PortIoDevice {
    long in(int port, int size);

    void out(int port, int size, long value);
}

package dev.polyvisor.devices;

/**
 * Where a PCI function's message-signalled interrupts go: a DWORD memory write of {@code data} to
 * {@code address} (PCI Local Bus Specification 3.0, 6.8). On a PC every such write targets the
 * 0xFEExxxxx window and becomes an APIC bus message ({@link ApicBus#deliverMsi}).
 */
@FunctionalInterface
public interface MsiSink {
    void send(long address, int data);

    MsiSink NONE = (a, d) -> {};
}

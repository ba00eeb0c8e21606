package dev.polyvisor.devices.virtio;

/**
 * A virtio device type behind a transport (virtio 1.2, chapter 5): its ID, feature bits, configuration
 * space and what it does with each request the driver posts. The transport ({@link VirtioPciFunction})
 * owns the status handshake, feature negotiation, the queues and interrupts.
 */
public interface VirtioDevice {
    /** The virtio device ID (5 "Device Types": 2 block, 4 entropy). */
    int deviceType();

    /** A short name for log lines ("virtio-blk"). */
    String name();

    /** The PCI class code (base class, sub-class, programming interface). */
    int pciClass();

    /** Device-specific feature bits (the transport adds VERSION_1, EVENT_IDX and INDIRECT_DESC). */
    long features();

    int queueCount();

    int queueMaxSize(int queue);

    /** Bytes of device-specific configuration space (0: none, and no DEVICE_CFG capability). */
    int configSize();

    /** A little-endian read of 1, 2 or 4 bytes at {@code offset} inside the configuration space. */
    long configRead(int offset, int size);

    default void configWrite(int offset, int size, long value) {}

    /** The features the driver accepted (FEATURES_OK). */
    default void negotiated(long features) {}

    /**
     * Serves one request; returns the number of bytes written into the chain's device-writable buffers.
     * A request that breaks the device type's own rules (no room for a status byte) throws.
     */
    long handle(int queue, DescriptorChain chain) throws VirtqueueException;

    /**
     * Whether the device takes another request from {@code queue} now. False leaves the driver's requests in
     * the ring (back-pressure, as vhost does) until the device calls {@link DeviceQueues#resume}.
     */
    default boolean takes(int queue) { return true; }

    /** Device reset (status 0): forget negotiated state. */
    default void reset() {}

    /**
     * Whether {@code queue} is a receive queue the device fills when host data arrives: a notify on it
     * runs {@link #serviceHost} instead of taking every posted buffer through {@link #handle}.
     */
    default boolean hostDriven(int queue) { return false; }

    /** The transport's queues, given once when the device is plugged in (devices with receive queues keep them). */
    default void attach(DeviceQueues queues) {}

    /**
     * Moves host data that waits into the buffers the driver posted (VM thread; called after a notify on
     * a {@link #hostDriven} queue and whenever the device's host side signalled new data).
     */
    default void serviceHost() {}

    /** Frees host resources (sockets, processes, threads) when the VM ends. */
    default void close() {}
}

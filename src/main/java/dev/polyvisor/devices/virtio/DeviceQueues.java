package dev.polyvisor.devices.virtio;

/**
 * The transport's queues as a device that fills them on its own sees them: receive queues, where host
 * data (a network frame, console input, a vsock packet) arrives at any time and waits for a buffer the
 * driver posted (virtio 1.2, 5.1.6.3 "Setting Up Receive Buffers", 5.3.6.1, 5.10.6.3). Called on the VM
 * thread only, from {@link VirtioDevice#serviceHost} or {@link VirtioDevice#handle}.
 */
public interface DeviceQueues {
    /**
     * The next buffer the driver posted on {@code queue}, or null: none posted, the device is not live
     * (DRIVER_OK not set, bus mastering off, NEEDS_RESET), or the ring broke the rules (the transport has
     * then set NEEDS_RESET and logged it).
     */
    DescriptorChain next(int queue);

    /** Puts the buffer {@link #next} returned last back, unused (nothing to put in it after all). */
    void putBack(int queue);

    /** Returns a buffer to the driver with {@code written} bytes in its device-writable part. */
    void complete(int queue, DescriptorChain chain, long written);

    /**
     * Ends a batch on {@code queue}: publishes the event index and interrupts the driver when it asked
     * for one. Returns true when the driver posted more buffers meanwhile.
     */
    boolean flush(int queue);

    /** Serves the requests waiting on {@code queue}, which the device held back ({@link VirtioDevice#takes}). */
    default void resume(int queue) {}

    /** The driver broke the device type's rules (a receive buffer too small for any packet): NEEDS_RESET and one log line. */
    void broken(String why);

    /**
     * One log line, naming the device, for a driver error the device handles on its own while the rest of
     * it runs on (a vsock connection reset because the guest broke its flow control).
     */
    default void log(String line) {}
}

package dev.polyvisor.devices.virtio;

/**
 * A driver broke the virtqueue contract (virtio 1.2, 2.7 "Split Virtqueues"): a descriptor outside RAM,
 * a loop, a chain longer than the ring, a device-readable descriptor after a device-writable one, an
 * available index that jumped ahead by more than the queue size. The device sets DEVICE_NEEDS_RESET.
 */
public final class VirtqueueException extends Exception {
    public VirtqueueException(String message) { super(message, null, false, false); }
}

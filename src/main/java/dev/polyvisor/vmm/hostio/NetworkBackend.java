package dev.polyvisor.vmm.hostio;

import java.io.IOException;
import java.util.function.Consumer;
import java.util.function.Function;

/**
 * The host end of a virtio-net device: where the Ethernet frames the guest sends go, and where the frames
 * for the guest come from. User-mode networking through passt ({@code --net user}) or a host TAP device
 * ({@code --net tap=IFNAME}).
 */
public sealed interface NetworkBackend extends AutoCloseable permits PasstNetwork, TapNetwork {
    /**
     * Sends one frame the guest transmitted (VM thread): copies it and returns without waiting for the host
     * end, which a frame may still wait for on the backend's own writer thread; dropped (and counted in
     * {@link #transmitDropped}) when too many wait.
     *
     * @throws IOException once the host end is closed or gone
     */
    void send(byte[] frame, int length) throws IOException;

    /** Frames the guest sent that were dropped because the host end did not keep up (or refused them). */
    long transmitDropped();

    /**
     * Starts the thread that reads frames for the guest and hands each to {@code deliver} (which may block
     * while the guest has no buffers); {@code deliver} returns false once the device is gone.
     */
    void startReceiving(String threadName, Function<byte[], Boolean> deliver);

    /**
     * Where to say, in one line, that the host end stopped for good (the VMM prints it as a
     * {@code polyvisor:} line on stderr); said at most once per backend. Call before frames flow.
     */
    default void logTo(Consumer<String> log) {}

    /** The MTU the host end handles and tells the guest (VIRTIO_NET_F_MTU), or 0 to leave Ethernet's 1500. */
    default int mtu() { return 0; }

    @Override void close();
}

package dev.polyvisor.devices.virtio;

import java.io.IOException;
import java.util.concurrent.ArrayBlockingQueue;
import java.util.concurrent.BlockingQueue;
import java.util.concurrent.TimeUnit;

/**
 * virtio network device (virtio 1.2, 5.1): one receive queue (0) and one transmit queue (1), no control
 * queue. Features: VIRTIO_NET_F_MAC (the address in configuration space), VIRTIO_NET_F_STATUS (link up),
 * VIRTIO_NET_F_CSUM (the device completes the partial checksums the driver leaves, 5.1.6.2),
 * VIRTIO_NET_F_GUEST_CSUM (the device marks received TCP/UDP packets whose checksum it verified
 * VIRTIO_NET_HDR_F_DATA_VALID, 5.1.6.4, so the guest does not sum them again) and, when the host end gives
 * one, VIRTIO_NET_F_MTU (passt's 65520-byte MTU: Linux's virtio_net then uses it as the interface MTU and
 * posts "big" receive buffers of 17 pages, drivers/net/virtio_net.c add_recvbuf_big, so bulk TCP moves in
 * 64 KiB frames instead of 1500-byte ones; there is no GSO). Every buffer starts with the 12-byte {@code
 * struct virtio_net_hdr} (VERSION_1 always includes num_buffers, 5.1.6); without VIRTIO_NET_F_MRG_RXBUF
 * each frame fills one posted buffer, num_buffers = 1 (5.1.6.4.2): one of header plus 1518 bytes per frame
 * (add_recvbuf_small), or a big one.
 *
 * <p>The host side is a {@link FrameSink} for the frames the guest sends and {@link #receive} for the
 * frames that reach the guest. {@link #receive} may be called from any thread: frames wait in a bounded
 * queue (the caller blocks while it is full, which slows a TCP sender down instead of dropping), and the
 * {@code hostSignal} given at construction makes the VM thread call {@link #serviceHost}. A frame larger
 * than the buffer the guest posted is dropped and counted (a NIC would count a length error too).
 */
public final class VirtioNet implements VirtioDevice {
    public static final int TYPE = 1;
    public static final long F_CSUM = 1L, F_GUEST_CSUM = 1L << 1, F_MTU = 1L << 3, F_MAC = 1L << 5, F_STATUS = 1L << 16;
    public static final int RX = 0, TX = 1, QUEUE_SIZE = 256, HEADER = 12;
    public static final int S_LINK_UP = 1;
    /** struct virtio_net_hdr flags (5.1.6). */
    public static final int HDR_F_NEEDS_CSUM = 1, HDR_F_DATA_VALID = 2;
    /** Frames waiting for receive buffers before {@link #receive} blocks its caller. */
    static final int BACKLOG = 512;
    /** The largest frame taken from the guest: a 64 KiB IP packet plus Ethernet and VLAN headers. */
    public static final int MAX_FRAME = 65535 + 18;
    /** struct virtio_net_config up to mtu: mac[6], status, max_virtqueue_pairs, mtu (le16 each). */
    static final int CONFIG_SIZE = 12;

    /**
     * Where the frames the guest transmits go (the passt socket, a TAP device, a test). The frame is the
     * first {@code length} bytes of an array the device reuses for the next frame once {@code send} returns.
     */
    @FunctionalInterface
    public interface FrameSink { void send(byte[] frame, int length) throws IOException; }

    /**
     * A frame waiting for a receive buffer, with the verdict on its TCP/UDP checksum, which the host thread
     * that queued it computed (a 64 KiB frame's sum is VM-thread time otherwise, and the VM thread is the
     * guest's CPU).
     */
    private record Incoming(byte[] frame, boolean checksumValid) {}

    private final byte[] mac;
    private final FrameSink sink;
    private final Runnable hostSignal;
    private final BlockingQueue<Incoming> backlog = new ArrayBlockingQueue<>(BACKLOG);
    /** The transmit queue's staging: one frame at a time, reused (no 64 KiB allocation per frame). */
    private final byte[] txHeader = new byte[HEADER], txFrame = new byte[MAX_FRAME];
    private DeviceQueues queues;
    private volatile boolean closed;
    private long rxFrames, rxDropped, txFrames, txDropped;
    /** The MTU offered with VIRTIO_NET_F_MTU, or 0 for none. */
    private final int mtu;
    private boolean txChecksumOffload, rxChecksumValidation;

    /**
     * @param mac        the 6-byte MAC address offered in configuration space
     * @param hostSignal tells the VM thread to call {@link #serviceHost} soon (any thread)
     */
    public VirtioNet(byte[] mac, FrameSink sink, Runnable hostSignal) { this(mac, 0, sink, hostSignal); }

    /** @param mtu the MTU of the host end, offered to the driver with VIRTIO_NET_F_MTU (68-65535), or 0 */
    public VirtioNet(byte[] mac, int mtu, FrameSink sink, Runnable hostSignal) {
        if (mac.length != 6) throw new IllegalArgumentException("a MAC address has 6 bytes");
        if (mtu != 0 && (mtu < 68 || mtu > MAX_FRAME - 18)) throw new IllegalArgumentException("MTU out of range: " + mtu);
        this.mtu = mtu;
        this.mac = mac.clone();
        this.sink = sink;
        this.hostSignal = hostSignal;
    }

    @Override public int deviceType() { return TYPE; }
    @Override public String name() { return "virtio-net"; }
    @Override public int pciClass() { return 0x020000; } // network controller, Ethernet (QEMU's virtio-net-pci)
    @Override public long features() { return F_MAC | F_STATUS | F_CSUM | F_GUEST_CSUM | (mtu != 0 ? F_MTU : 0); }

    @Override
    public void negotiated(long features) {
        txChecksumOffload = (features & F_CSUM) != 0;
        rxChecksumValidation = (features & F_GUEST_CSUM) != 0;
    }

    @Override
    public void reset() { txChecksumOffload = rxChecksumValidation = false; }
    @Override public int queueCount() { return 2; }
    @Override public int queueMaxSize(int queue) { return QUEUE_SIZE; }
    @Override public int configSize() { return CONFIG_SIZE; }
    @Override public boolean hostDriven(int queue) { return queue == RX; }
    @Override public void attach(DeviceQueues q) { queues = q; }

    /** struct virtio_net_config: mac[6], le16 status, le16 max_virtqueue_pairs (0: no MQ), le16 mtu (5.1.4). */
    @Override
    public long configRead(int offset, int size) {
        long v = 0;
        for (int i = 0; i < size; i++) {
            int o = offset + i;
            int b = o < 6 ? mac[o] & 0xFF : o == 6 ? S_LINK_UP : o == 10 ? mtu & 0xFF : o == 11 ? mtu >>> 8 : 0;
            v |= (long) b << 8 * i;
        }
        return v;
    }

    /** A frame for the guest (any thread): waits while {@link #BACKLOG} frames are queued; false once closed. */
    public boolean receive(byte[] frame) throws InterruptedException {
        Incoming in = new Incoming(frame, InternetChecksum.transportChecksumValid(frame));
        while (!closed) {
            if (backlog.offer(in, 100, TimeUnit.MILLISECONDS)) {
                hostSignal.run();
                return true;
            }
            hostSignal.run(); // the queue is full: make sure the VM thread is draining it
        }
        return false;
    }

    /** Transmit queue: header, then the frame, all device-readable (5.1.6.2). */
    @Override
    public long handle(int queue, DescriptorChain c) throws VirtqueueException {
        if (queue != TX) return 0;
        long n = c.readableBytes() - HEADER;
        if (n < 0) throw new VirtqueueException("transmit buffer without its " + HEADER + "-byte virtio_net_hdr");
        if (n == 0 || n > MAX_FRAME) { txDropped++; return 0; }
        byte[] header = txHeader, frame = txFrame;
        int length = (int) n;
        c.read(0, header, 0, HEADER);
        if (header[1] != 0) { txDropped++; return 0; } // a GSO type, which was not offered (5.1.6.2)
        c.read(HEADER, frame, 0, length);
        if ((header[0] & HDR_F_NEEDS_CSUM) != 0) {
            // The driver may ask only after negotiating VIRTIO_NET_F_CSUM; a checksum that cannot be completed
            // would go out wrong, so such a frame is dropped like a malformed one.
            int start = header[6] & 0xFF | (header[7] & 0xFF) << 8, offset = header[8] & 0xFF | (header[9] & 0xFF) << 8;
            if (!txChecksumOffload || !InternetChecksum.complete(frame, length, start, offset)) { txDropped++; return 0; }
        }
        try {
            sink.send(frame, length);
            txFrames++;
        } catch (IOException e) {
            txDropped++; // the host side went away: the wire is cut, the guest's stack retransmits or gives up
        }
        return 0;
    }

    /** Fills receive buffers with waiting frames, one frame per buffer, then interrupts once. */
    @Override
    public void serviceHost() {
        if (queues == null) return;
        do {
            for (Incoming in; (in = backlog.peek()) != null; ) {
                byte[] f = in.frame();
                DescriptorChain c = queues.next(RX);
                if (c == null) break;
                backlog.poll();
                if (c.writableBytes() < HEADER + f.length) {
                    rxDropped++;
                    queues.putBack(RX);
                    continue;
                }
                byte[] h = new byte[HEADER];
                if (rxChecksumValidation && in.checksumValid()) h[0] = HDR_F_DATA_VALID;
                h[10] = 1; // num_buffers (le16)
                c.write(0, h, 0, HEADER);
                c.write(HEADER, f, 0, f.length);
                queues.complete(RX, c, HEADER + f.length);
                rxFrames++;
            }
        } while (queues.flush(RX) && !backlog.isEmpty());
    }

    public long rxFrames() { return rxFrames; }
    public long rxDropped() { return rxDropped; }
    public long txFrames() { return txFrames; }
    public long txDropped() { return txDropped; }

    @Override
    public void close() { closed = true; }
}

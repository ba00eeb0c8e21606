package dev.polyvisor.devices.virtio;

import java.util.function.Consumer;

/**
 * virtio console device (virtio 1.2, 5.3) with one port and no features: receiveq (0) carries host input
 * to the guest, transmitq (1) the guest's output (5.3.2). Linux's virtio_console makes the port a hvc
 * terminal, hvc0 (drivers/char/virtio_console.c, init_port_console). No VIRTIO_CONSOLE_F_SIZE, MULTIPORT
 * or EMERG_WRITE: the configuration space reads as zeros (5.3.4).
 *
 * <p>Input is fed on the VM thread ({@link #feed}) and waits in a byte queue until the driver posts
 * receive buffers; {@link #pendingInput} lets the feeder hold back, as it does for a UART. It also waits
 * until the guest has written to the console once: without VIRTIO_CONSOLE_F_MULTIPORT the device is not
 * told when a program opens hvc0 (the PORT_OPEN control message, 5.3.6.2.1), and bytes that reach the
 * port before then are lost to the program that opens it later (Debian 6.1 drops such typeahead). A
 * shell or getty writes its prompt first, so its first output is the sign that someone reads.
 */
public final class VirtioConsole implements VirtioDevice {
    public static final int TYPE = 3;
    public static final int RX = 0, TX = 1, QUEUE_SIZE = 128;
    static final int CONFIG_SIZE = 12;
    /** The most bytes one transmit buffer hands to the host at once (a larger buffer is still consumed whole, in pieces). */
    static final int CHUNK = 4096;

    private final Consumer<byte[]> output;
    private final Runnable hostSignal;
    private byte[] pending = new byte[256];
    private int head, count;
    private DeviceQueues queues;
    private boolean guestWrote;

    /**
     * @param output     receives the guest's output (VM thread)
     * @param hostSignal tells the VM thread to call {@link #serviceHost} soon
     */
    public VirtioConsole(Consumer<byte[]> output, Runnable hostSignal) {
        this.output = output;
        this.hostSignal = hostSignal;
    }

    @Override public int deviceType() { return TYPE; }
    @Override public String name() { return "virtio-console"; }
    @Override public int pciClass() { return 0x078000; } // simple communication controller, other (QEMU's virtio-serial-pci)
    @Override public long features() { return 0; }
    @Override public int queueCount() { return 2; }
    @Override public int queueMaxSize(int queue) { return QUEUE_SIZE; }
    @Override public int configSize() { return CONFIG_SIZE; }
    @Override public long configRead(int offset, int size) { return 0; }
    @Override public boolean hostDriven(int queue) { return queue == RX; }
    @Override public void attach(DeviceQueues q) { queues = q; }

    /** Input bytes not yet in a receive buffer. */
    public int pendingInput() { return count; }

    /** Host input for the guest (VM thread). */
    public void feed(byte[] b) {
        if (b.length == 0) return;
        if (count + b.length > pending.length) {
            byte[] n = new byte[Integer.highestOneBit(count + b.length) * 2];
            for (int i = 0; i < count; i++) n[i] = pending[(head + i) % pending.length];
            pending = n;
            head = 0;
        }
        for (byte x : b) pending[(head + count++) % pending.length] = x;
        hostSignal.run();
    }

    /** Transmit queue: every device-readable byte is output (5.3.6.2). */
    @Override
    public long handle(int queue, DescriptorChain c) {
        if (queue != TX) return 0;
        if (c.readableBytes() > 0 && !guestWrote) {
            guestWrote = true;
            hostSignal.run(); // input that waited for a reader can go now
        }
        for (long off = 0; off < c.readableBytes(); ) {
            int n = (int) Math.min(CHUNK, c.readableBytes() - off);
            byte[] b = new byte[n];
            c.read(off, b, 0, n);
            output.accept(b);
            off += n;
        }
        return 0;
    }

    /** Moves waiting input into receive buffers, as much as each holds. */
    @Override
    public void serviceHost() {
        if (queues == null || !guestWrote) return;
        do {
            while (count > 0) {
                DescriptorChain c = queues.next(RX);
                if (c == null) break;
                int n = (int) Math.min(count, c.writableBytes());
                byte[] b = new byte[n];
                for (int i = 0; i < n; i++) b[i] = pending[(head + i) % pending.length];
                c.write(0, b, 0, n);
                head = (head + n) % pending.length;
                count -= n;
                queues.complete(RX, c, n);
            }
        } while (queues.flush(RX) && count > 0);
    }

    /** Input typed before the driver came back is kept (a serial line keeps its bytes too); it waits for new output. */
    @Override
    public void reset() { guestWrote = false; }
}

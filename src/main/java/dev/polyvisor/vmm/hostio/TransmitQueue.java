package dev.polyvisor.vmm.hostio;

import dev.polyvisor.devices.virtio.VirtioNet;

import java.io.IOException;
import java.nio.ByteBuffer;
import java.util.concurrent.locks.Condition;
import java.util.concurrent.locks.ReentrantLock;
import java.util.function.Consumer;

/**
 * The frames the guest transmits on their way to a host end that may be slow, stalled or gone (passt
 * stopped with SIGSTOP, wedged, or slower than the guest; a TAP device whose send buffer is full). The VM
 * thread copies each frame into a byte ring and returns; one writer thread per backend drains the ring
 * into the host end and is the only thread that ever blocks on it. When the ring is full the frame is
 * dropped and counted, as a NIC drops on a congested link (the guest's TCP retransmits): nothing the host
 * end does can hold the vCPU inside an MMIO notify. QEMU gets the same property differently, with
 * non-blocking writes that stop the transmit queue until the descriptor is writable again (net/tap.c
 * tap_write_packet, net/stream.c); a blocking write on the VM thread would have no such way out.
 *
 * <p>The ring holds records of a 32-bit big-endian length and the frame: QEMU's stream framing, which passt
 * reads (passt tap.c tap_handler_passt), so passt's writer hands runs of records to the socket unchanged.
 * A record never wraps: when it does not fit before the ring's end, a length of -1 (or, with fewer than 4
 * bytes left, nothing) marks the rest as skipped. The ring is allocated once (no allocation per frame);
 * the VM thread copies under a lock that the writer holds only to read and advance the indices, never
 * while writing.
 */
final class TransmitQueue implements AutoCloseable {
    /** Bytes of frames that may wait: 64 full 64 KiB frames, about a second of a slow (30 Mbit/s) link. */
    static final int CAPACITY = 4 << 20;
    /** The most bytes handed to the wire at once, so that the ring frees up while a stalled peer drains. */
    static final int MAX_RUN = 256 << 10;
    static final int HEADER = 4;
    private static final int SKIP = -1;
    /** How long close() waits for the writer thread before leaving it (it is a daemon). */
    static final long JOIN_MS = 2000;

    /**
     * The host end, called on the writer thread: writes a run of whole records (each a 4-byte big-endian
     * length and that many bytes of frame), blocking as long as it must; throws when the wire is cut for good.
     */
    @FunctionalInterface
    interface Wire { void write(ByteBuffer records) throws IOException; }

    private final ByteBuffer ring;
    private final Wire wire;
    private final Thread writer;
    private final ReentrantLock lock = new ReentrantLock();
    private final Condition queued = lock.newCondition();
    /** Stream positions (the ring index is the position modulo its capacity): guarded by {@link #lock}. */
    private long head, tail;
    private boolean closed;
    private long dropped;
    /** The error that cut the wire, thrown to every later {@link #offer}: set once, by the writer. */
    private volatile IOException failure;
    /** Told of {@link #failure} once, on the writer thread, when it is latched (not when the queue is closed). */
    private final Consumer<IOException> failed;

    TransmitQueue(String threadName, Wire wire) { this(threadName, CAPACITY, wire, e -> {}); }

    /** As {@link #TransmitQueue(String, Wire)}; {@code failed} hears once of the error that cut the wire for good. */
    TransmitQueue(String threadName, Wire wire, Consumer<IOException> failed) { this(threadName, CAPACITY, wire, failed); }

    TransmitQueue(String threadName, int capacity, Wire wire) { this(threadName, capacity, wire, e -> {}); }

    TransmitQueue(String threadName, int capacity, Wire wire, Consumer<IOException> failed) {
        if (capacity < 2 * (HEADER + VirtioNet.MAX_FRAME))
            throw new IllegalArgumentException("a transmit ring must hold two of the largest frames");
        this.ring = ByteBuffer.allocateDirect(capacity);
        this.wire = wire;
        this.failed = failed;
        this.writer = Thread.ofPlatform().daemon().name(threadName).start(this::drain);
    }

    /**
     * Queues a copy of the first {@code length} bytes of {@code frame} (VM thread; never blocks on the host
     * end). False when the ring is full and the frame was dropped.
     *
     * @throws IOException once the queue is closed or the wire failed (the same exception each time)
     */
    boolean offer(byte[] frame, int length) throws IOException {
        if (length < 0 || length > VirtioNet.MAX_FRAME) throw new IllegalArgumentException("frame length " + length);
        IOException f = failure;
        if (f != null) throw f;
        int capacity = ring.capacity();
        lock.lock();
        try {
            if (closed) throw new IOException("transmit queue closed");
            int at = (int) (tail % capacity);
            int skip = at + HEADER + length <= capacity ? 0 : capacity - at;
            if (tail + skip + HEADER + length - head > capacity) {
                dropped++;
                return false;
            }
            if (skip >= HEADER) ring.putInt(at, SKIP);
            if (skip > 0) at = 0;
            ring.putInt(at, length).put(at + HEADER, frame, 0, length);
            tail += skip + HEADER + length;
            queued.signal();
            return true;
        } finally {
            lock.unlock();
        }
    }

    /** Frames dropped because the ring was full. */
    long dropped() {
        lock.lock();
        try {
            return dropped;
        } finally {
            lock.unlock();
        }
    }

    /** The writer thread (for tests: it ends with {@link #close}). */
    Thread writer() { return writer; }

    private void drain() {
        int capacity = ring.capacity();
        try {
            for (;;) {
                long end;
                lock.lock();
                try {
                    while (head == tail && !closed) queued.await();
                    if (closed) return; // frames still queued are dropped with the wire
                    end = tail;
                } finally {
                    lock.unlock();
                }
                // [head, end) belongs to this thread until head moves: the VM thread writes only after tail.
                int at = (int) (head % capacity), run = 0;
                if (capacity - at < HEADER || ring.getInt(at) == SKIP) {
                    advance(capacity - at);
                    continue;
                }
                long available = Math.min(end - head, capacity - at);
                while (run < available && run < MAX_RUN && capacity - (at + run) >= HEADER) {
                    int n = ring.getInt(at + run);
                    if (n == SKIP) break;
                    run += HEADER + n;
                }
                wire.write(ring.slice(at, run));
                advance(run);
            }
        } catch (IOException e) {
            boolean cut;
            lock.lock();
            try {
                cut = !closed;
                if (cut) failure = e; // the host end went away: later frames fail at once, not one by one
            } finally {
                lock.unlock();
            }
            // Once: the writer ends here. Outside the lock, so a listener that takes its time holds no sender.
            if (cut) failed.accept(e);
        } catch (InterruptedException e) {
            // closed
        }
    }

    private void advance(int bytes) {
        lock.lock();
        try {
            head += bytes;
        } finally {
            lock.unlock();
        }
    }

    /**
     * Stops the writer and waits for it. A writer blocked in a channel write is interrupted, which closes
     * that channel (java.nio.channels.InterruptibleChannel): the wire is being cut anyway.
     */
    @Override
    public void close() {
        lock.lock();
        try {
            if (closed) return;
            closed = true;
            queued.signalAll();
        } finally {
            lock.unlock();
        }
        writer.interrupt();
        try {
            writer.join(JOIN_MS);
        } catch (InterruptedException e) {
            Thread.currentThread().interrupt();
        }
    }
}

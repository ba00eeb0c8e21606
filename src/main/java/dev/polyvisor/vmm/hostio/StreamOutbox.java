package dev.polyvisor.vmm.hostio;

import java.io.IOException;
import java.nio.ByteBuffer;
import java.nio.channels.SocketChannel;

/**
 * The guest's bytes on one vsock connection on their way to the host program's socket, which may be slow,
 * stopped or gone. The VM thread copies what the guest sent into a bounded ring and returns; one writer
 * thread per connection drains the ring into the socket and is the only thread that ever blocks on it.
 *
 * <p>Unlike a network frame ({@link TransmitQueue}) a stream byte cannot be dropped, and it need not be:
 * the ring never overflows because the device lets the guest send only what the ring can still hold. It
 * advertises the ring's size as buf_alloc and counts in fwd_cnt only the bytes this writer has handed to
 * the socket ({@link Listener#drained}), and the guest's transport sends at most
 * {@code buf_alloc - (tx_cnt - fwd_cnt)} (virtio 1.2, 5.10.6.3 "Buffer Space Management"; Linux
 * net/vmw_vsock/virtio_transport_common.c, virtio_transport_get_credit). A guest that sends more anyway
 * finds {@link #offer} refusing it, and the device resets the connection.
 *
 * <p>End of stream keeps its place behind the data: {@link #shutdown} (the guest's SHUTDOWN SEND) shuts
 * the socket's output once the ring is empty, and {@link #finish} (the guest closed) then also ends the
 * connection ({@link Listener#finished}). {@link #close} drops what is left and ends the writer at once.
 */
final class StreamOutbox implements AutoCloseable {
    /** The most bytes handed to the socket at once: room in the ring, and credit for the guest, come back in steps no larger. */
    static final int MAX_WRITE = 64 << 10;

    /** What the writer thread reports (on the writer thread). */
    interface Listener {
        /** {@code bytes} more are in the socket and their room in the ring is free again. */
        void drained(int bytes);

        /** The socket refused a write (the host program went away); the writer has ended. */
        void failed(IOException e);

        /** {@link #finish} asked for the end and every byte went out (then the output was shut down). */
        void finished();
    }

    private final byte[] ring;
    private final SocketChannel ch;
    private final Listener listener;
    private final Thread writer;
    /** Stream positions (the ring index is the position modulo its capacity), and the states below: guarded by this. */
    private long head, tail;
    private boolean shutdown, finish, outputShut, closed;
    private IOException failure;

    /** A ring of {@code capacity} bytes before {@code ch} (blocking); {@link #start} starts the writer, a daemon. */
    StreamOutbox(String threadName, int capacity, SocketChannel ch, Listener listener) {
        this.ring = new byte[capacity];
        this.ch = ch;
        this.listener = listener;
        this.writer = Thread.ofPlatform().daemon().name(threadName).unstarted(this::drain);
    }

    /** Starts the writer (apart from the constructor, so that the listener is whole first). */
    StreamOutbox start() {
        writer.start();
        return this;
    }

    /**
     * Copies {@code len} bytes for the socket (VM thread); never waits (the writer holds the monitor only to
     * read and move the positions, never while writing). False, taking nothing, when the ring has no room
     * for all of them.
     *
     * @throws IOException once the socket failed, the output is shut down, or the outbox is closed
     */
    synchronized boolean offer(byte[] b, int off, int len) throws IOException {
        if (failure != null) throw failure;
        if (closed || shutdown) throw new IOException("the stream to the host program is " + (closed ? "closed" : "shut down"));
        int capacity = ring.length;
        if (tail + len - head > capacity) return false;
        int at = (int) (tail % capacity), first = Math.min(len, capacity - at);
        System.arraycopy(b, off, ring, at, first);
        System.arraycopy(b, off + first, ring, 0, len - first);
        tail += len;
        notifyAll();
        return true;
    }

    /** No more bytes will come: shut the socket's output once those in the ring went out (any thread). */
    synchronized void shutdown() {
        shutdown = true;
        notifyAll();
    }

    /**
     * As {@link #shutdown}, then {@link Listener#finished} once the output is shut: at once (on this thread)
     * when the writer already shut it, else on the writer thread.
     */
    void finish() {
        boolean now;
        synchronized (this) {
            shutdown = finish = true;
            now = outputShut;
            notifyAll();
        }
        if (now) listener.finished();
    }

    /** The writer thread (for tests: it ends with {@link #close}, or after the output is shut). */
    Thread writer() { return writer; }

    private void drain() {
        int capacity = ring.length;
        try {
            for (;;) {
                int at, n;
                synchronized (this) {
                    while (head == tail && !shutdown && !closed) wait();
                    if (closed) return; // bytes still in the ring go with the connection
                    if (head == tail) break; // shut down and drained
                    at = (int) (head % capacity);
                    n = (int) Math.min(Math.min(tail - head, capacity - at), MAX_WRITE);
                }
                // [head, head + n) is this thread's until head moves: the VM thread writes only after tail.
                ByteBuffer w = ByteBuffer.wrap(ring, at, n);
                while (w.hasRemaining()) ch.write(w);
                synchronized (this) { head += n; }
                // Only after the room is free: fwd_cnt may then grow, and the guest send as much again.
                listener.drained(n);
            }
            ch.shutdownOutput();
            boolean done;
            synchronized (this) {
                outputShut = true;
                done = finish;
            }
            if (done) listener.finished();
        } catch (IOException e) {
            boolean report;
            synchronized (this) {
                report = !closed;
                if (report) failure = e;
            }
            if (report) listener.failed(e);
        } catch (InterruptedException e) {
            // closed
        }
    }

    /**
     * Drops what waits and ends the writer without waiting for it. A writer blocked in the socket's write
     * is interrupted, which closes the channel (java.nio.channels.InterruptibleChannel): the connection is
     * being cut anyway. Never blocks, so the VM thread may call it.
     */
    @Override
    public void close() {
        synchronized (this) {
            if (closed) return;
            closed = true;
            notifyAll();
        }
        writer.interrupt();
    }
}

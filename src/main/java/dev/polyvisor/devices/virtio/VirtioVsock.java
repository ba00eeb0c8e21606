package dev.polyvisor.devices.virtio;

import java.io.IOException;
import java.nio.ByteBuffer;
import java.nio.ByteOrder;
import java.util.ArrayDeque;
import java.util.HashMap;
import java.util.Map;
import java.util.concurrent.ConcurrentLinkedQueue;
import java.util.concurrent.atomic.AtomicInteger;
import java.util.function.Consumer;

/**
 * virtio socket device (virtio 1.2, 5.10), stream sockets only: rx (0), tx (1) and event (2) queues,
 * no feature bits, configuration {@code le64 guest_cid}. Every packet starts with the 44-byte
 * {@code struct virtio_vsock_hdr} (src_cid, dst_cid, src_port, dst_port, len, type, op, flags, buf_alloc,
 * fwd_cnt); the host is CID 2. Flow control is credit based (5.10.6.3): a side sends at most
 * {@code peer buf_alloc - (bytes sent - peer fwd_cnt)} bytes; every packet carries the sender's
 * buf_alloc and fwd_cnt, and CREDIT_UPDATE announces them on their own.
 *
 * <p>The host end is a {@link Host}: the guest's REQUEST to CID 2 port P asks it for a {@link Peer}
 * (refused: RST). A peer that is still {@linkplain Peer#connecting connecting} is answered later: RESPONSE
 * once the host end reports {@link #connectedToHost}, RST on {@link #resetFromHost}, so that a host end
 * that is slow to connect never holds the VM thread. {@link #connectFromHost} starts a connection the other way (REQUEST to the guest, the
 * peer learns the local port on RESPONSE). Host data and end-of-stream arrive from any thread through
 * {@link #dataFromHost} and {@link #eofFromHost} and are sent on the VM thread as the guest's credit
 * allows. Packets for unknown connections get RST (5.10.6.4).
 *
 * <p>The guest's data goes the other way under the device's own credit, which is what keeps a slow or
 * stopped host program from holding the VM thread. Each connection's receive buffer is the peer's, of
 * {@link #BUF_ALLOC} bytes, advertised as buf_alloc: {@link Peer#write} only copies into it and returns, and
 * the peer reports through {@link #forwarded} the bytes it actually handed to the host program. Only those
 * count in fwd_cnt, so the guest's transport, which sends at most {@code buf_alloc - (tx_cnt - fwd_cnt)}
 * (5.10.6.3; Linux net/vmw_vsock/virtio_transport_common.c, virtio_transport_get_credit), can never
 * overfill the buffer, and a guest that waits for credit waits in its own kernel, not in the device. As
 * bytes drain the device tells the guest with CREDIT_UPDATE (or the fwd_cnt of its next packet), and it
 * answers CREDIT_REQUEST the same way. A guest that sends beyond its credit is a broken peer: its
 * connection is reset with one log line (Linux drops such packets, virtio_transport_inc_rx_pkt; for a
 * stream that would lose bytes silently).
 */
public final class VirtioVsock implements VirtioDevice {
    public static final int TYPE = 19;
    public static final int RX = 0, TX = 1, EVENT = 2, QUEUE_SIZE = 128;
    public static final int HEADER = 44;
    public static final long HOST_CID = 2;
    public static final int OP_REQUEST = 1, OP_RESPONSE = 2, OP_RST = 3, OP_SHUTDOWN = 4, OP_RW = 5,
            OP_CREDIT_UPDATE = 6, OP_CREDIT_REQUEST = 7;
    public static final int TYPE_STREAM = 1;
    public static final int SHUTDOWN_RCV = 1, SHUTDOWN_SEND = 2;
    /** What the device advertises as its receive buffer per connection. */
    public static final int BUF_ALLOC = 256 * 1024;
    /** Host bytes a connection may have waiting for guest credit before {@link #dataFromHost} holds its caller. */
    static final int HOST_BACKLOG = 256 * 1024;
    /** The largest payload taken from the guest in one packet (Linux sends at most 64 KiB, VIRTIO_VSOCK_MAX_PKT_BUF_SIZE). */
    static final int MAX_PAYLOAD = 64 * 1024;
    /** First local port of host-initiated connections (Firecracker's convention, 1 << 30 and up). */
    static final int FIRST_LOCAL_PORT = 1 << 30;

    /** The host's end of one connection. Called on the VM thread. */
    public interface Peer {
        /**
         * Takes the guest's bytes without waiting for the host program: the peer buffers up to
         * {@link VirtioVsock#BUF_ALLOC} bytes beyond those it reported through {@link VirtioVsock#forwarded}, which is
         * all the device lets the guest send.
         *
         * @throws IOException when the host end is gone or cannot take them (the connection is reset)
         */
        void write(byte[] b, int off, int len) throws IOException;

        /**
         * True when the host end is not connected yet and will report {@link VirtioVsock#connectedToHost} or
         * {@link VirtioVsock#resetFromHost} from its own thread; the guest's REQUEST is answered then. False
         * (a peer that is ready when {@link Host#connect} returns it): RESPONSE at once.
         */
        default boolean connecting() { return false; }

        /** The guest accepted a connection the host started; {@code localPort} is the host-side port. */
        default void accepted(int localPort) {}

        /** The guest will send nothing more. */
        void shutdownOutput();

        /** The connection is over (reset, refused, the device reset or closed): drop what is left. */
        void close();

        /**
         * The guest closed the connection in order (SHUTDOWN with both flags): deliver the bytes already
         * written, then end of stream, then close; the device has forgotten the connection already.
         */
        default void finish() { close(); }
    }

    /** Host services the guest can connect to. */
    @FunctionalInterface
    public interface Host {
        /** The guest connects to host port {@code port} (VM thread); null refuses (RST). */
        Peer connect(int port);
    }

    private final long guestCid;
    private final Runnable hostSignal;
    private Host host = port -> null;
    private DeviceQueues queues;
    private final ConcurrentLinkedQueue<Runnable> hostEvents = new ConcurrentLinkedQueue<>();
    /** Packets of the device's own (RST, RESPONSE, REQUEST) waiting for a receive buffer. */
    private final ArrayDeque<byte[]> control = new ArrayDeque<>();
    /**
     * Replies waiting at most before the device stops taking the guest's packets: most packets the guest sends
     * may need one (an RST for a port nobody listens on), so a guest that sends without posting receive
     * buffers would otherwise grow this queue without end. Linux's vhost-vsock does the same (it stops
     * reading the TX ring while its queued replies fill the RX ring, drivers/vhost/vsock.c
     * vhost_vsock_more_replies); 256 is the ring size of Firecracker's vsock device and twice QEMU's
     * vhost-vsock queue (128, hw/virtio/vhost-vsock-common.h).
     */
    static final int MAX_QUEUED_REPLIES = 256;
    /** The transport was told to hold the TX ring (takes); serviceHost resumes it once replies drain. */
    private boolean txHeld, resuming;
    private final Map<Long, Conn> conns = new HashMap<>();
    private final Map<Peer, Conn> byPeer = new HashMap<>();
    private int nextLocalPort = FIRST_LOCAL_PORT;
    /**
     * Open connections at most. Each holds a host socket, a 256 KiB ring for the guest's bytes and two host
     * threads, so a guest that opened connections without end would exhaust the VMM's heap and threads; past
     * the bound a new one is refused with RST, as a host out of sockets refuses it. Firecracker's muxer
     * bounds them too (1023, vsock/unix/muxer defs::MAX_CONNECTIONS), with no thread or ring per connection.
     */
    static final int MAX_CONNECTIONS = 256;
    /** Whether a refusal at {@link #MAX_CONNECTIONS} was logged (once per device: a flood is one line). */
    private boolean capLogged;

    /** One stream: host port (CID 2 side) and guest port. VM thread only. */
    private static final class Conn {
        final int hostPort, guestPort;
        final Peer peer;
        boolean established, hostEof, eofSent;
        boolean connecting;    // the guest's REQUEST waits for the host end to connect (Peer.connecting)
        final ArrayDeque<byte[]> toGuest = new ArrayDeque<>();
        int headOffset;
        long txCnt;            // bytes sent to the guest
        long peerBufAlloc, peerFwdCnt;
        long rxCnt;            // guest bytes taken into the peer's buffer
        long fwdCnt;           // of those, bytes the peer handed to the host program (forwarded)
        long fwdReported;      // the fwd_cnt the guest has last been sent
        boolean creditDue;     // a CREDIT_UPDATE waits for a receive buffer

        Conn(int hostPort, int guestPort, Peer peer) { this.hostPort = hostPort; this.guestPort = guestPort; this.peer = peer; }

        long key() { return (long) hostPort << 32 | guestPort & 0xFFFF_FFFFL; }

        /** The guest's free receive space. Its fwd_cnt is a wrapping le32: so is the difference (5.10.6.3). */
        long credit() { return peerBufAlloc - (txCnt - peerFwdCnt & 0xFFFF_FFFFL); }

        /** Room in the device's receive buffer as the guest last heard of it: what it may still send. */
        long guestCredit() { return BUF_ALLOC - (rxCnt - fwdReported); }
    }

    public VirtioVsock(long guestCid, Runnable hostSignal) {
        this.guestCid = guestCid;
        this.hostSignal = hostSignal;
    }

    public void setHost(Host h) { host = h; }

    @Override public int deviceType() { return TYPE; }
    @Override public String name() { return "virtio-vsock"; }
    @Override public int pciClass() { return 0xFF0000; } // QEMU's vhost-vsock-pci: unclassified
    @Override public long features() { return 0; }
    @Override public int queueCount() { return 3; }
    @Override public int queueMaxSize(int queue) { return QUEUE_SIZE; }
    @Override public int configSize() { return 8; }
    @Override public long configRead(int offset, int size) { return guestCid >>> 8 * offset & (size == 8 ? -1L : (1L << 8 * size) - 1); }
    @Override public boolean hostDriven(int queue) { return queue != TX; }
    @Override public void attach(DeviceQueues q) { queues = q; }

    // ---- from host threads ----

    /** Host bytes waiting per connection, for the backpressure of {@link #dataFromHost}; removed when the connection ends. */
    private final java.util.concurrent.ConcurrentHashMap<Peer, AtomicInteger> backlogs = new java.util.concurrent.ConcurrentHashMap<>();

    /** A host program wants guest port {@code guestPort} (any thread). */
    public void connectFromHost(int guestPort, Peer peer) {
        backlogs.put(peer, new AtomicInteger());
        hostEvents.add(() -> {
            if (conns.size() >= MAX_CONNECTIONS) {
                refused("a host program's connection to guest port " + Integer.toUnsignedString(guestPort));
                backlogs.remove(peer);
                peer.close();
                return;
            }
            int local = nextLocalPort++;
            if (nextLocalPort < FIRST_LOCAL_PORT) nextLocalPort = FIRST_LOCAL_PORT;
            Conn c = new Conn(local, guestPort, peer);
            add(c);
            control.add(packet(c, OP_REQUEST, 0, 0));
        });
        hostSignal.run();
    }

    /** Host bytes for the guest (any thread); waits while the connection has {@link #HOST_BACKLOG} bytes queued. */
    public void dataFromHost(Peer peer, byte[] data) throws InterruptedException {
        if (data.length == 0) return;
        // A guest-initiated connection's reader may run before the VM thread has registered the connection.
        AtomicInteger b = backlogs.computeIfAbsent(peer, k -> new AtomicInteger());
        b.addAndGet(data.length);
        onVmThread(peer, x -> x.toGuest.add(data));
        while (b.get() > HOST_BACKLOG && backlogs.get(peer) == b) Thread.sleep(1);
    }

    /**
     * The peer handed {@code bytes} more of the guest's data to the host program (any thread): they count
     * in fwd_cnt from now on, and their room in the peer's buffer is the guest's again. The guest hears of
     * it with the next packet, or with a CREDIT_UPDATE once the credit it knows of runs low: as Linux does
     * on its receive side (virtio_transport_stream_do_dequeue), when less than a full packet,
     * {@link #MAX_PAYLOAD}, is left, so that a guest with data waiting never stalls and one without gets no
     * update per byte.
     */
    public void forwarded(Peer peer, int bytes) {
        if (bytes <= 0) return;
        onVmThread(peer, x -> {
            x.fwdCnt += Math.min(bytes, x.rxCnt - x.fwdCnt); // never more than the guest sent
            if (x.guestCredit() < MAX_PAYLOAD && x.fwdCnt != x.fwdReported) x.creditDue = true;
        });
    }

    /**
     * The host end of a guest's REQUEST that was {@linkplain Peer#connecting connecting} is connected (any
     * thread): RESPONSE to the guest. Host data the peer hands over afterwards comes after it, as the
     * host-event queue keeps the order.
     */
    public void connectedToHost(Peer peer) {
        onVmThread(peer, x -> {
            if (!x.connecting) return;
            x.connecting = false;
            x.established = true;
            control.add(packet(x, OP_RESPONSE, 0, 0));
        });
    }

    /**
     * The host end failed (any thread): RST to the guest. Also a connect that failed or did not complete
     * in time, for a peer that was {@linkplain Peer#connecting connecting}.
     */
    public void resetFromHost(Peer peer) { onVmThread(peer, this::reset); }

    /** The host side closed its end (any thread). */
    public void eofFromHost(Peer peer) { onVmThread(peer, x -> x.hostEof = true); }

    /** Runs {@code event} on the VM thread with {@code peer}'s connection, if it still has one, and wakes that thread. */
    private void onVmThread(Peer peer, Consumer<Conn> event) {
        hostEvents.add(() -> {
            Conn x = byPeer.get(peer);
            if (x != null) event.accept(x);
        });
        hostSignal.run();
    }

    // ---- VM thread ----

    /** One line the first time the connection bound refuses one (VM thread). */
    private void refused(String what) {
        if (capLogged) return;
        capLogged = true;
        queues.log(what + " refused: " + MAX_CONNECTIONS + " vsock connections are open (further refusals are not logged)");
    }

    private void add(Conn c) {
        conns.put(c.key(), c);
        byPeer.put(c.peer, c);
        backlogs.putIfAbsent(c.peer, new AtomicInteger());
    }

    private void remove(Conn c) {
        forget(c);
        c.peer.close();
    }

    private void forget(Conn c) {
        conns.remove(c.key());
        byPeer.remove(c.peer);
        backlogs.remove(c.peer);
    }

    /** A packet from the host (src CID 2) to the guest for connection {@code c}. */
    private byte[] packet(Conn c, int op, int flags, int len) {
        return header(c.hostPort, c.guestPort, op, flags, len, c.fwdCnt);
    }

    private byte[] header(int hostPort, int guestPort, int op, int flags, int len, long fwdCnt) {
        ByteBuffer h = ByteBuffer.allocate(HEADER + len).order(ByteOrder.LITTLE_ENDIAN);
        h.putLong(HOST_CID).putLong(guestCid).putInt(hostPort).putInt(guestPort).putInt(len)
                .putShort((short) TYPE_STREAM).putShort((short) op).putInt(flags).putInt(BUF_ALLOC).putInt((int) fwdCnt);
        return h.array();
    }

    /** Transmit queue: one packet per chain, header then payload, all device-readable. */
    @Override
    public long handle(int queue, DescriptorChain c) throws VirtqueueException {
        if (queue != TX) return 0;
        if (c.readableBytes() < HEADER) throw new VirtqueueException("vsock packet without its " + HEADER + "-byte header");
        byte[] hb = new byte[HEADER];
        c.read(0, hb, 0, HEADER);
        ByteBuffer h = ByteBuffer.wrap(hb).order(ByteOrder.LITTLE_ENDIAN);
        long src = h.getLong(0), dst = h.getLong(8);
        int srcPort = h.getInt(16), dstPort = h.getInt(20);
        long len = Integer.toUnsignedLong(h.getInt(24));
        int type = h.getShort(28) & 0xFFFF, op = h.getShort(30) & 0xFFFF, flags = h.getInt(32);
        long bufAlloc = Integer.toUnsignedLong(h.getInt(36)), fwd = Integer.toUnsignedLong(h.getInt(40));
        if (len > MAX_PAYLOAD || len > c.readableBytes() - HEADER)
            throw new VirtqueueException("vsock packet claims " + len + " payload bytes, has " + (c.readableBytes() - HEADER));
        // Packets not from this guest to the host, or not streams, are answered with RST (5.10.6.4, 5.10.6.6).
        if (src != guestCid || dst != HOST_CID || type != TYPE_STREAM) {
            if (op != OP_RST) control.add(header(dstPort, srcPort, OP_RST, 0, 0, 0));
            serviceHost();
            return 0;
        }
        Conn conn = conns.get((long) dstPort << 32 | srcPort & 0xFFFF_FFFFL);
        if (conn != null) { conn.peerBufAlloc = bufAlloc; conn.peerFwdCnt = fwd; }
        // Still connecting to the host: the guest has nothing to say but RST (it gave up) until our RESPONSE;
        // anything else is a broken peer, and the half-made connection is reset (5.10.6.4).
        if (conn != null && conn.connecting && op != OP_RST && op != OP_CREDIT_UPDATE) op = -1;
        switch (op) {
            case OP_REQUEST -> {
                if (conn != null) { reset(conn); break; }
                if (conns.size() >= MAX_CONNECTIONS) {
                    refused("guest port " + Integer.toUnsignedString(srcPort) + "'s connection to host port " + Integer.toUnsignedString(dstPort));
                    control.add(header(dstPort, srcPort, OP_RST, 0, 0, 0));
                    break;
                }
                Peer p = host.connect(dstPort);
                if (p == null) { control.add(header(dstPort, srcPort, OP_RST, 0, 0, 0)); break; }
                Conn n = new Conn(dstPort, srcPort, p);
                n.peerBufAlloc = bufAlloc;
                n.peerFwdCnt = fwd;
                add(n);
                if (p.connecting()) { n.connecting = true; break; } // RESPONSE or RST from connectedToHost/resetFromHost
                n.established = true;
                control.add(packet(n, OP_RESPONSE, 0, 0));
            }
            case OP_RESPONSE -> {
                if (conn == null || conn.established) { if (conn != null) reset(conn); else rstTo(dstPort, srcPort); break; }
                conn.established = true;
                conn.peer.accepted(conn.hostPort);
            }
            case OP_RW -> {
                if (conn == null || !conn.established) { rstTo(dstPort, srcPort); break; }
                // Measured against what the peer has really forwarded, which is at least what the guest was told:
                // a guest that keeps to its credit always fits, and the peer's buffer can never overflow.
                long room = BUF_ALLOC - (conn.rxCnt - conn.fwdCnt);
                if (len > room) {
                    queues.log("guest port " + Integer.toUnsignedString(srcPort) + " sent " + len + " bytes to host port "
                            + Integer.toUnsignedString(dstPort) + " with credit for " + room + "; connection reset");
                    reset(conn);
                    break;
                }
                byte[] data = new byte[(int) len];
                c.read(HEADER, data, 0, (int) len);
                try {
                    conn.peer.write(data, 0, data.length);
                    conn.rxCnt += len;
                } catch (IOException e) {
                    reset(conn);
                    break;
                }
            }
            // Answered with the current fwd_cnt (5.10.6.3; Linux answers too, virtio_transport_recv_connected).
            case OP_CREDIT_REQUEST -> { if (conn != null) creditUpdate(conn); else rstTo(dstPort, srcPort); }
            case OP_CREDIT_UPDATE -> { if (conn == null) rstTo(dstPort, srcPort); }
            case OP_SHUTDOWN -> {
                if (conn == null) { rstTo(dstPort, srcPort); break; }
                if ((flags & (SHUTDOWN_SEND | SHUTDOWN_RCV)) == (SHUTDOWN_SEND | SHUTDOWN_RCV)) {
                    // The guest closed: it waits for our RST (virtio_transport_close), while the peer may still
                    // hold its last bytes for the host program; those are delivered, not dropped with the RST.
                    control.add(packet(conn, OP_RST, 0, 0));
                    forget(conn);
                    conn.peer.finish();
                } else if ((flags & SHUTDOWN_SEND) != 0) conn.peer.shutdownOutput();
            }
            case OP_RST -> { if (conn != null) remove(conn); }
            default -> { if (conn != null) reset(conn); else rstTo(dstPort, srcPort); }
        }
        serviceHost();
        return 0;
    }

    private void rstTo(int hostPort, int guestPort) { control.add(header(hostPort, guestPort, OP_RST, 0, 0, 0)); }

    /** Ends a connection: RST to the guest, the host end closed. */
    private void reset(Conn c) {
        control.add(packet(c, OP_RST, 0, 0));
        remove(c);
    }

    /**
     * Tells the guest the current fwd_cnt with the next receive buffer, in a packet of its own unless an RW
     * packet carries it first; any number of requests before then make one packet.
     */
    private void creditUpdate(Conn c) { c.creditDue = true; }

    /** Runs host events, then sends control packets and host data into the receive queue as credit allows. */
    @Override
    public void serviceHost() {
        for (Runnable r; (r = hostEvents.poll()) != null; ) r.run();
        if (queues == null) return;
        boolean sent = false;
        while (!control.isEmpty()) {
            DescriptorChain c = queues.next(RX);
            if (c == null) break;
            byte[] p = control.peek();
            if (c.writableBytes() < p.length) {
                queues.broken("queue " + RX + ": receive buffer of " + c.writableBytes() + " bytes, less than a " + HEADER + "-byte header");
                return;
            }
            control.poll();
            c.write(0, p, 0, p.length);
            queues.complete(RX, c, p.length);
            sent = true;
        }
        if (control.isEmpty()) sent |= sendData();
        if (sent || !control.isEmpty()) queues.flush(RX);
        if (txHeld && !resuming && control.size() < MAX_QUEUED_REPLIES) {
            // The guest took replies: take the packets it has waiting on the TX ring (not from inside that).
            txHeld = false;
            resuming = true;
            try {
                queues.resume(TX);
            } finally {
                resuming = false;
            }
        }
    }

    /** RW packets from each connection's host bytes, then SHUTDOWN(SEND) once the host end is drained. */
    private boolean sendData() {
        boolean sent = false;
        for (Conn c : conns.values()) {
            if (!c.established) continue;
            while (!c.toGuest.isEmpty() && c.credit() > 0) {
                DescriptorChain d = queues.next(RX);
                if (d == null) return sent;
                long room = d.writableBytes() - HEADER;
                if (room <= 0) {
                    queues.broken("queue " + RX + ": receive buffer of " + d.writableBytes() + " bytes, no room after the header");
                    return sent;
                }
                byte[] b = c.toGuest.peek();
                int n = (int) Math.min(Math.min(room, c.credit()), b.length - c.headOffset);
                byte[] h = packet(c, OP_RW, 0, 0);
                ByteBuffer.wrap(h).order(ByteOrder.LITTLE_ENDIAN).putInt(24, n);
                d.write(0, h, 0, HEADER);
                d.write(HEADER, b, c.headOffset, n);
                queues.complete(RX, d, HEADER + n);
                c.fwdReported = c.fwdCnt;
                c.creditDue = false;
                c.txCnt += n;
                c.headOffset += n;
                if (c.headOffset == b.length) { c.toGuest.poll(); c.headOffset = 0; }
                AtomicInteger bl = backlogs.get(c.peer);
                if (bl != null) bl.addAndGet(-n);
                sent = true;
            }
            if (c.creditDue) {
                if (!sendHeader(c, OP_CREDIT_UPDATE, 0)) return sent;
                c.fwdReported = c.fwdCnt;
                c.creditDue = false;
                sent = true;
            }
            if (c.hostEof && !c.eofSent && c.toGuest.isEmpty()) {
                // The host closed its sending half only: SEND, as a TCP FIN. Adding RCV would make Linux reset the
                // socket as soon as its receive queue drains (net/vmw_vsock/virtio_transport_common.c,
                // virtio_transport_recv_connected: peer_shutdown == SHUTDOWN_MASK), cutting off a reply the guest
                // is still writing. A host that closed both halves is found when the guest's next bytes cannot be
                // written to it: RST then (resetFromHost).
                if (!sendHeader(c, OP_SHUTDOWN, SHUTDOWN_SEND)) return sent;
                c.eofSent = true;
                sent = true;
            }
        }
        return sent;
    }

    /** A packet without payload for {@code c} in the next receive buffer; false when there is none (or it is too small: the device is then broken). */
    private boolean sendHeader(Conn c, int op, int flags) {
        DescriptorChain d = queues.next(RX);
        if (d == null) return false;
        if (d.writableBytes() < HEADER) {
            queues.broken("queue " + RX + ": receive buffer of " + d.writableBytes() + " bytes, less than a " + HEADER + "-byte header");
            return false;
        }
        byte[] p = packet(c, op, flags, 0);
        d.write(0, p, 0, p.length);
        queues.complete(RX, d, p.length);
        return true;
    }

    /** Device reset: every connection is gone (5.10.6.7 after a transport reset the driver drops them too). */
    @Override
    public void reset() {
        for (Conn c : conns.values().toArray(Conn[]::new)) remove(c);
        control.clear();
        txHeld = false;
    }

    /** The guest's next TX packet is taken while fewer than {@link #MAX_QUEUED_REPLIES} replies wait. */
    @Override
    public boolean takes(int queue) {
        if (queue != TX || control.size() < MAX_QUEUED_REPLIES) return true;
        txHeld = true;
        return false;
    }

    @Override
    public void close() {
        for (Conn c : conns.values().toArray(Conn[]::new)) remove(c);
    }
}

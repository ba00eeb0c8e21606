package dev.polyvisor.vmm.hostio;

import dev.polyvisor.devices.virtio.VirtioVsock;

import java.io.IOException;
import java.lang.ref.WeakReference;
import java.net.ConnectException;
import java.net.StandardProtocolFamily;
import java.net.UnixDomainSocketAddress;
import java.nio.ByteBuffer;
import java.nio.channels.ServerSocketChannel;
import java.nio.channels.SocketChannel;
import java.nio.charset.StandardCharsets;
import java.nio.file.Files;
import java.nio.file.LinkOption;
import java.nio.file.Path;
import java.util.Set;
import java.util.concurrent.CompletableFuture;
import java.util.concurrent.ConcurrentHashMap;
import java.util.concurrent.TimeUnit;

/**
 * The host end of virtio-vsock in Firecracker's convention (firecracker docs/vsock.md): the guest's
 * connection to CID 2 port P is a connection to the Unix socket {@code PATH_P}; a host program that
 * connects to {@code PATH} and writes {@code CONNECT P\n} reaches guest port P and reads
 * {@code OK <local port>\n} once the guest accepted (a refused connection is closed). After that each
 * side is a plain byte stream. One reader thread per connection hands host bytes to the device; one writer
 * thread per connection ({@link StreamOutbox}) feeds the guest's bytes to the host program, so that a
 * program that reads slowly or not at all never holds the VM thread: the guest waits for credit instead.
 * The guest's connect to {@code PATH_P} is made on that connection's reader thread, not the VM thread, so
 * a program that listens but never accepts cannot hold the VM either ({@link #connect}).
 */
public final class UnixVsockHost implements VirtioVsock.Host, AutoCloseable {
    /** The longest CONNECT line accepted ("CONNECT 4294967295\n" is 19 bytes). */
    static final int MAX_LINE = 32;
    /**
     * How long a connection the guest closed may still wait for its host program to take the last bytes
     * before it is cut: a little more than Linux gives the guest's own close (VSOCK_CLOSE_TIMEOUT, 8 s,
     * net/vmw_vsock/virtio_transport_common.c).
     */
    static final long LINGER_MS = 10_000;
    /**
     * How long the guest's connect to {@code PATH_P} may take before the guest gets RST: Linux's own bound
     * for a vsock connect (VSOCK_DEFAULT_CONNECT_TIMEOUT, 2 s, net/vmw_vsock/af_vsock.c), after which the
     * guest has given up anyway.
     */
    static final long CONNECT_TIMEOUT_MS = 2_000;
    private final Path uds;
    private final VirtioVsock device;
    private final ServerSocketChannel server;
    private final Set<SocketPeer> peers = ConcurrentHashMap.newKeySet();
    private volatile boolean closed;

    private UnixVsockHost(Path uds, VirtioVsock device, ServerSocketChannel server) {
        this.uds = uds;
        this.device = device;
        this.server = server;
    }

    /** Listens on {@code uds} (a stale socket file there is replaced; any other file is an error) and becomes the device's host. */
    public static UnixVsockHost start(Path uds, VirtioVsock device) throws IOException {
        if (Files.exists(uds, LinkOption.NOFOLLOW_LINKS)) {
            if (!"s".equals(fileType(uds))) throw new IOException(uds + " exists and is not a socket");
            Files.delete(uds);
        }
        ServerSocketChannel s = ServerSocketChannel.open(StandardProtocolFamily.UNIX);
        s.bind(UnixDomainSocketAddress.of(uds));
        UnixVsockHost h = new UnixVsockHost(uds, device, s);
        device.setHost(h);
        Thread.ofPlatform().daemon().name("polyvisor-vsock-accept").start(h::acceptLoop);
        return h;
    }

    /** "s" for a socket, "f" for anything else (sockets are neither regular files, directories nor links). */
    private static String fileType(Path p) {
        return Files.isRegularFile(p, LinkOption.NOFOLLOW_LINKS) || Files.isDirectory(p, LinkOption.NOFOLLOW_LINKS)
                || Files.isSymbolicLink(p) ? "f" : "s";
    }

    private void acceptLoop() {
        while (!closed) {
            try {
                SocketChannel ch = server.accept();
                Thread.ofPlatform().daemon().name("polyvisor-vsock-host").start(() -> hostConnection(ch));
            } catch (IOException e) {
                if (closed) return;
            }
        }
    }

    /** A host program connected to PATH: read its CONNECT line, then pass the stream on. */
    private void hostConnection(SocketChannel ch) {
        try {
            ByteBuffer one = ByteBuffer.allocate(1);
            StringBuilder line = new StringBuilder();
            while (line.length() < MAX_LINE) {
                one.clear();
                if (ch.read(one) < 0) { ch.close(); return; }
                char c = (char) (one.get(0) & 0xFF);
                if (c == '\n') break;
                line.append(c);
            }
            String l = line.toString().strip();
            int port;
            try {
                if (!l.startsWith("CONNECT ")) throw new NumberFormatException();
                port = Integer.parseUnsignedInt(l.substring(8).strip());
            } catch (NumberFormatException e) {
                ch.close(); // not the protocol: nothing to say (Firecracker closes too)
                return;
            }
            SocketPeer p = new SocketPeer(ch, "polyvisor-vsock-host-" + Integer.toUnsignedString(port));
            peers.add(p);
            device.connectFromHost(port, p);
            p.pump();
        } catch (IOException e) {
            try {
                ch.close();
            } catch (IOException ignored) {
                // already gone
            }
        }
    }

    /**
     * The guest connects to host port {@code port}: PATH_port (VM thread). Returns at once with a peer that
     * is {@linkplain VirtioVsock.Peer#connecting connecting}; its thread connects ({@link SocketPeer#dialThenPump})
     * and the device answers the guest RESPONSE or RST when that is done. A blocking connect here would hang the
     * VMM on a program that listens but never accepts once its backlog is full (Linux waits for room in
     * unix_wait_for_peer, net/unix/af_unix.c).
     */
    @Override
    public VirtioVsock.Peer connect(int port) {
        if (closed) return null;
        Path target = Path.of(uds + "_" + Integer.toUnsignedString(port));
        String name = "polyvisor-vsock-" + Integer.toUnsignedString(port);
        SocketPeer p = new SocketPeer(name);
        peers.add(p);
        Thread.ofPlatform().daemon().name(name).start(() -> p.dialThenPump(target));
        return p;
    }

    /**
     * Connects to {@code target} without ever blocking: a channel connected and back in blocking mode, or
     * null when there is nothing to connect to, the peer was closed meanwhile, or {@link #CONNECT_TIMEOUT_MS}
     * passed. A Unix-domain connect does not pend on Linux: a non-blocking one to a listener whose backlog
     * is full fails with EAGAIN at once (net/unix/af_unix.c, unix_stream_connect: unix_recvq_full with a
     * zero timeout gives -EAGAIN), and the JDK closes the channel after a failed connect. So a failure is
     * retried on a new channel, with a growing pause, until the bound, which is what a blocking connect with
     * a timeout does (it waits for room in the backlog): a program that is only slow to accept still gets
     * the connection. Java does not tell EAGAIN apart by type (a SocketException, as most errors are), so
     * only the failures that cannot heal within the bound give RST at once: no file at PATH_port (ENOENT)
     * and no listener on it (ECONNREFUSED, ConnectException); any other one (EACCES, say) gives it when
     * the bound runs out. Should a connect ever pend, finishConnect is polled within the same bound.
     */
    private static SocketChannel dial(Path target, SocketPeer p) {
        UnixDomainSocketAddress addr = UnixDomainSocketAddress.of(target);
        long deadline = System.nanoTime() + TimeUnit.MILLISECONDS.toNanos(CONNECT_TIMEOUT_MS);
        try {
            for (long pause = 1; !p.isClosed(); pause = Math.min(2 * pause, 50)) {
                SocketChannel ch = null;
                try {
                    ch = SocketChannel.open(StandardProtocolFamily.UNIX);
                    ch.configureBlocking(false);
                    boolean done = ch.connect(addr);
                    while (!done && !p.isClosed() && System.nanoTime() < deadline) {
                        Thread.sleep(1);
                        done = ch.finishConnect();
                    }
                    if (done) {
                        ch.configureBlocking(true);
                        return ch;
                    }
                    ch.close();
                    return null;
                } catch (ConnectException e) {
                    closeQuietly(ch);
                    return null; // ECONNREFUSED: nobody listens
                } catch (IOException e) {
                    closeQuietly(ch);
                    if (!Files.exists(target, LinkOption.NOFOLLOW_LINKS)) return null; // ENOENT
                }
                if (System.nanoTime() + TimeUnit.MILLISECONDS.toNanos(pause) >= deadline) return null;
                Thread.sleep(pause);
            }
        } catch (InterruptedException e) {
            Thread.currentThread().interrupt();
        }
        return null;
    }

    private static void closeQuietly(SocketChannel ch) {
        if (ch == null) return;
        try {
            ch.close();
        } catch (IOException ignored) {
            // it failed already
        }
    }

    /** One host stream: a reader thread ({@link #pump}) towards the guest, a {@link StreamOutbox} from it. */
    private final class SocketPeer implements VirtioVsock.Peer, StreamOutbox.Listener {
        private final String name;
        /** A guest's connection that {@link #dialThenPump} connects off the VM thread (Peer.connecting). */
        private final boolean dialing;
        /** Set once connected ({@link #attach}); the device uses the peer only after that, bar close. */
        private volatile SocketChannel ch;
        /**
         * The guest's bytes for the host program. It holds BUF_ALLOC, the receive buffer the device advertises,
         * plus room for the OK line of a host-initiated connection, which is ours and not the guest's.
         */
        private volatile StreamOutbox out;
        /** Closed by the device (or the VM's end), perhaps before {@link #attach}: a connect under way gives up. */
        private boolean gone;
        /** Bytes at the start of the outbox that are the OK line, not guest data: not counted in fwd_cnt (writer thread, after accepted). */
        private int preamble;

        /** A connection the host program made: connected already. */
        SocketPeer(SocketChannel ch, String name) {
            this.name = name;
            this.dialing = false;
            attach(ch);
        }

        /** A guest's connection, connected later by {@link #dialThenPump}. */
        SocketPeer(String name) {
            this.name = name;
            this.dialing = true;
        }

        @Override
        public boolean connecting() { return dialing; }

        synchronized boolean isClosed() { return gone; }

        /** The connected channel becomes this peer's; false (and the channel closed) if the peer was closed meanwhile. */
        private synchronized boolean attach(SocketChannel c) {
            if (gone) {
                closeQuietly(c);
                return false;
            }
            out = new StreamOutbox(name + "-out", VirtioVsock.BUF_ALLOC + MAX_LINE, c, this).start();
            ch = c;
            return true;
        }

        /** The guest's connection, on its own thread: connect within the bound, tell the device, then read. */
        void dialThenPump(Path target) {
            SocketChannel c = dial(target, this);
            if (c == null || !attach(c)) {
                device.resetFromHost(this); // RST (nothing if the device dropped the connection already)
                close();
                return;
            }
            device.connectedToHost(this);
            pump();
        }

        /** Host bytes to the device until end of stream. */
        void pump() {
            ByteBuffer b = ByteBuffer.allocate(64 * 1024);
            try {
                for (int n; (n = ch.read(b.clear())) >= 0; ) {
                    if (n == 0) continue;
                    byte[] d = new byte[n];
                    b.flip().get(d);
                    device.dataFromHost(this, d);
                }
            } catch (IOException | InterruptedException e) {
                // closed by the device or by the host: end of stream either way
            }
            device.eofFromHost(this);
        }

        /** Queues the guest's bytes (VM thread); never waits for the host program. */
        @Override
        public void write(byte[] b, int off, int len) throws IOException {
            StreamOutbox out = this.out;
            if (out == null) throw new IOException("not connected"); // the device writes only once connected
            // The device lets the guest send only what the outbox can hold; refusing is the safety net.
            if (!out.offer(b, off, len)) throw new IOException("the guest sent more than the outbox holds");
        }

        @Override
        public void accepted(int localPort) { // host-initiated: attached in the constructor
            byte[] line = ("OK " + Integer.toUnsignedString(localPort) + "\n").getBytes(StandardCharsets.US_ASCII);
            preamble = line.length; // before offer, whose lock hands it to the writer
            try {
                if (!out.offer(line, 0, line.length)) close();
            } catch (IOException e) {
                close();
            }
        }

        @Override
        public void drained(int bytes) {
            int ours = Math.min(bytes, preamble);
            preamble -= ours;
            if (bytes > ours) device.forwarded(this, bytes - ours);
        }

        /** The host program went away while the guest's bytes were on their way: the guest gets RST. */
        @Override
        public void failed(IOException e) { device.resetFromHost(this); }

        @Override
        public void finished() { close(); }

        /** After the bytes already queued (a half-close, as a TCP FIN after the data). */
        @Override
        public void shutdownOutput() {
            StreamOutbox out = this.out;
            if (out != null) out.shutdown();
        }

        /**
         * The guest closed: the host program still gets every byte the guest sent, then end of stream, then
         * the socket is closed. Its bytes for the guest have nowhere to go any more, so the input is shut at
         * once (which also ends {@link #pump}); a program that does not take the last bytes within
         * {@link #LINGER_MS} is cut off.
         */
        @Override
        public void finish() {
            if (ch == null) { close(); return; } // never connected: nothing to deliver
            try {
                ch.shutdownInput();
            } catch (IOException ignored) {
                // already closed
            }
            out.finish();
            // Weakly: a connection that finished in time is unreachable (closed, out of peers, its writer
            // ended) and its ring is freed now, not after the linger; one still lingering is held by its writer.
            WeakReference<SocketPeer> self = new WeakReference<>(this);
            CompletableFuture.delayedExecutor(LINGER_MS, TimeUnit.MILLISECONDS).execute(() -> {
                SocketPeer p = self.get();
                if (p != null) p.close();
            });
        }

        /** At once: bytes not yet written are dropped (RST, device reset, the VM's end). */
        @Override
        public void close() {
            peers.remove(this);
            StreamOutbox o;
            SocketChannel c;
            synchronized (this) {
                gone = true;
                o = out;
                c = ch;
            }
            if (o != null) o.close();
            closeQuietly(c);
        }
    }

    @Override
    public void close() {
        closed = true;
        try {
            server.close();
        } catch (IOException ignored) {
            // teardown
        }
        for (SocketPeer p : peers.toArray(SocketPeer[]::new)) p.close();
        try {
            Files.deleteIfExists(uds);
        } catch (IOException ignored) {
            // a socket file left behind is replaced on the next start
        }
    }
}

package dev.polyvisor.vmm.hostio;

import dev.polyvisor.devices.virtio.VirtioVsock;

import java.io.IOException;
import java.lang.ref.WeakReference;
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

    /** The guest connects to host port {@code port}: PATH_port (VM thread). */
    @Override
    public VirtioVsock.Peer connect(int port) {
        if (closed) return null;
        Path target = Path.of(uds + "_" + Integer.toUnsignedString(port));
        SocketChannel ch = null;
        try {
            ch = SocketChannel.open(StandardProtocolFamily.UNIX);
            ch.connect(UnixDomainSocketAddress.of(target));
        } catch (IOException e) {
            if (ch != null) try { ch.close(); } catch (IOException ignored) { /* refused anyway */ }
            return null;
        }
        SocketPeer p = new SocketPeer(ch, "polyvisor-vsock-" + Integer.toUnsignedString(port));
        peers.add(p);
        Thread.ofPlatform().daemon().name("polyvisor-vsock-" + Integer.toUnsignedString(port)).start(p::pump);
        return p;
    }

    /** One host stream: a reader thread ({@link #pump}) towards the guest, a {@link StreamOutbox} from it. */
    private final class SocketPeer implements VirtioVsock.Peer, StreamOutbox.Listener {
        private final SocketChannel ch;
        /**
         * The guest's bytes for the host program. It holds BUF_ALLOC, the receive buffer the device advertises,
         * plus room for the OK line of a host-initiated connection, which is ours and not the guest's.
         */
        private final StreamOutbox out;
        /** Bytes at the start of the outbox that are the OK line, not guest data: not counted in fwd_cnt (writer thread, after accepted). */
        private int preamble;

        SocketPeer(SocketChannel ch, String name) {
            this.ch = ch;
            this.out = new StreamOutbox(name + "-out", VirtioVsock.BUF_ALLOC + MAX_LINE, ch, this).start();
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
            // The device lets the guest send only what the outbox can hold; refusing is the safety net.
            if (!out.offer(b, off, len)) throw new IOException("the guest sent more than the outbox holds");
        }

        @Override
        public void accepted(int localPort) {
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
        public void shutdownOutput() { out.shutdown(); }

        /**
         * The guest closed: the host program still gets every byte the guest sent, then end of stream, then
         * the socket is closed. Its bytes for the guest have nowhere to go any more, so the input is shut at
         * once (which also ends {@link #pump}); a program that does not take the last bytes within
         * {@link #LINGER_MS} is cut off.
         */
        @Override
        public void finish() {
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
            out.close();
            try {
                ch.close();
            } catch (IOException ignored) {
                // already closed
            }
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

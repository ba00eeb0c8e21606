package dev.polyvisor.devices.virtio;

import dev.polyvisor.vmm.hostio.UnixVsockHost;
import org.junit.jupiter.api.AfterEach;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.io.TempDir;

import java.io.IOException;
import java.net.StandardProtocolFamily;
import java.net.UnixDomainSocketAddress;
import java.nio.ByteBuffer;
import java.nio.ByteOrder;
import java.nio.channels.ServerSocketChannel;
import java.nio.channels.SocketChannel;
import java.nio.charset.StandardCharsets;
import java.nio.file.Files;
import java.nio.file.Path;
import java.time.Duration;
import java.util.ArrayList;
import java.util.List;
import java.util.concurrent.CompletableFuture;
import java.util.concurrent.TimeUnit;

import static dev.polyvisor.devices.virtio.VirtioVsock.*;
import static org.junit.jupiter.api.Assertions.*;

/**
 * The guest's bytes to a host program over real Unix sockets ({@link UnixVsockHost}, issue #13): a program
 * that does not read never holds the VM thread, the guest is held to its credit instead, and once the
 * program reads the credit comes back and every byte arrives in order. The guest is the test, keeping to
 * the credit the device advertises as Linux's transport does.
 */
class VsockUnixHostTest {
    static final long CID = 42;
    static final int GUEST_PORT = 1000;
    @TempDir Path dir;
    private VirtioVsock vs;
    private TestDriver d;
    private UnixVsockHost host;
    private long sent, fwd;
    private int updates;
    private boolean reset, responded;

    @AfterEach
    void closeVm() {
        if (host != null) host.close();
        if (vs != null) vs.close();
    }

    /** A VM whose guest RAM holds {@code bytes} of packets, its host end at dir/v.sock, eight receive buffers posted. */
    private void startVm(long bytes) throws IOException {
        d = new TestDriver(dma -> vs = new VirtioVsock(CID, () -> {}), (int) (bytes + (4 << 20) + 0xFFFFF & ~0xFFFFF));
        host = UnixVsockHost.start(dir.resolve("v.sock"), vs);
        d.start(0);
        for (int i = 0; i < 8; i++) d.postWritable(RX, HEADER + 4096);
    }

    /** The guest connects to host port {@code port}: the host program's end of that connection, from its socket PATH_port. */
    private SocketChannel guestConnects(int port) throws IOException, InterruptedException {
        try (ServerSocketChannel program = ServerSocketChannel.open(StandardProtocolFamily.UNIX)) {
            program.bind(UnixDomainSocketAddress.of(dir.resolve("v.sock_" + port)));
            guestSends(port, OP_REQUEST, 0, new byte[0]);
            assertTrue(answered(Duration.ofSeconds(30)), "no answer to the guest's REQUEST");
            assertFalse(reset, "refused");
            return program.accept();
        }
    }

    private void guestSends(int hostPort, int op, int flags, byte[] data) {
        d.postReadable(TX, VirtioVsockTest.guestPacket(GUEST_PORT, hostPort, op, flags, 65536, 0, data));
    }

    /** Takes what the device put in the receive queue (after running its host events), posting a buffer for each. */
    private int pollReceived() {
        d.f.serviceHost();
        int n = 0;
        for (byte[] b; (b = d.takeUsed(RX)) != null; n++) {
            ByteBuffer h = ByteBuffer.wrap(b).order(ByteOrder.LITTLE_ENDIAN);
            int op = h.getShort(30);
            if (op == OP_RST) reset = true;
            if (op == OP_RESPONSE) responded = true;
            if (op == OP_CREDIT_UPDATE) updates++;
            fwd = Math.max(fwd, Integer.toUnsignedLong(h.getInt(40)));
            assertEquals(BUF_ALLOC, h.getInt(36));
        }
        for (int i = 0; i < n; i++) d.postWritable(RX, HEADER + 4096);
        return n;
    }

    /** Polls the receive queue until the guest's REQUEST got RESPONSE or RST, or {@code within} passed. */
    private boolean answered(Duration within) throws InterruptedException {
        long deadline = System.nanoTime() + within.toNanos();
        while (!reset && !responded && System.nanoTime() < deadline) {
            if (pollReceived() == 0) Thread.sleep(2);
        }
        return reset || responded;
    }

    /** A test with the program's listener and the number of connections waiting in its backlog. */
    interface WithProgram { void run(ServerSocketChannel program, int queued) throws Exception; }

    /**
     * Runs {@code test} with a program listening on PATH_port with a backlog of 1, filled by connects that
     * do not wait (a Unix-domain connect does not pend: once the backlog is full Linux refuses with EAGAIN).
     */
    private void withFullBacklog(int port, WithProgram test) throws Exception {
        Path path = dir.resolve("v.sock_" + port);
        List<SocketChannel> fill = new ArrayList<>();
        try (ServerSocketChannel program = ServerSocketChannel.open(StandardProtocolFamily.UNIX)) {
            program.bind(UnixDomainSocketAddress.of(path), 1);
            while (fill.size() < 64) {
                SocketChannel c = SocketChannel.open(StandardProtocolFamily.UNIX);
                c.configureBlocking(false);
                try {
                    assertTrue(c.connect(UnixDomainSocketAddress.of(path)), "a Unix-domain connect does not pend");
                    fill.add(c);
                } catch (IOException full) {
                    c.close();
                    break;
                }
            }
            assertTrue(fill.size() < 64, "the backlog never filled");
            test.run(program, fill.size());
        } finally {
            for (SocketChannel c : fill) c.close();
        }
    }

    /**
     * A program that listens on PATH_P but never accepts, its backlog full: the guest's REQUEST returns on
     * the VM thread at once (a blocking connect would wait there for ever) and the guest gets RST once the
     * connect bound (2 s) has passed.
     */
    @Test
    void aListenerThatNeverAcceptsDoesNotHoldTheVmThread() throws Exception {
        startVm(4 << 20);
        withFullBacklog(5010, (program, queued) -> {
            assertTimeoutPreemptively(Duration.ofSeconds(10), () -> {
                guestSends(5010, OP_REQUEST, 0, new byte[0]);
                pollReceived();
            });
            assertFalse(responded);
            assertTrue(answered(Duration.ofSeconds(30)), "no RST after the connect bound");
            assertTrue(reset, "RST");
            assertFalse(responded);
        });
    }

    /** A listener whose backlog is full but that accepts soon after: the retried connect gets through, RESPONSE, data flows. */
    @Test
    void aListenerThatAcceptsLateStillGetsTheConnection() throws Exception {
        startVm(4 << 20);
        withFullBacklog(5011, (program, queued) -> {
            guestSends(5011, OP_REQUEST, 0, new byte[0]);
            pollReceived();
            assertFalse(responded || reset, "answered while the backlog is full");
            Thread.sleep(300);
            // Room in the backlog again. Exactly the waiting ones: the backlog is FIFO, the guest's comes after.
            for (int i = 0; i < queued; i++) program.accept().close();
            assertTrue(answered(Duration.ofSeconds(30)));
            assertTrue(responded, "RESPONSE once the program made room");
            try (SocketChannel conn = program.accept()) {
                guestSends(5011, OP_RW, 0, "ping".getBytes(StandardCharsets.US_ASCII));
                ByteBuffer got = ByteBuffer.allocate(4);
                while (got.hasRemaining() && conn.read(got) >= 0) { /* until the four bytes are in */ }
                assertEquals("ping", new String(got.array(), StandardCharsets.US_ASCII));
            }
        });
    }

    /** No socket at PATH_P: RST well before the connect bound, as before. */
    @Test
    void aMissingSocketIsRefusedPromptly() throws Exception {
        startVm(4 << 20);
        long t0 = System.nanoTime();
        guestSends(5012, OP_REQUEST, 0, new byte[0]);
        assertTrue(answered(Duration.ofSeconds(30)));
        assertTrue(reset);
        assertTrue(System.nanoTime() - t0 < TimeUnit.MILLISECONDS.toNanos(1500), "RST without waiting for the 2 s bound");
    }

    static byte pattern(long i) { return (byte) (i % 251); }

    /**
     * The guest sends the pattern to {@code hostPort} up to byte {@code upTo}, each packet within the credit
     * it was told of (buf_alloc - (sent - fwd_cnt)), until all went or no credit came for {@code quietMs}.
     */
    private void guestPushes(int hostPort, long upTo, long quietMs) throws InterruptedException {
        long quietSince = System.nanoTime();
        while (sent < upTo && !reset) {
            if (pollReceived() > 0) quietSince = System.nanoTime();
            long credit = BUF_ALLOC - (sent - fwd);
            if (credit > 0) {
                byte[] b = new byte[(int) Math.min(Math.min(credit, MAX_PAYLOAD), upTo - sent)];
                for (int i = 0; i < b.length; i++) b[i] = pattern(sent + i);
                guestSends(hostPort, OP_RW, 0, b);
                sent += b.length;
                quietSince = System.nanoTime();
            } else if (System.nanoTime() - quietSince > TimeUnit.MILLISECONDS.toNanos(quietMs)) {
                return;
            } else {
                Thread.sleep(2);
            }
        }
    }

    /**
     * More than the device's buffer and the socket's own (net.core.wmem_default, which a Unix socket starts
     * with) can hold. Read by lines: Files.readString stops early on procfs, whose files claim no size.
     */
    private static long beyondAllBuffers() throws IOException {
        Path wmem = Path.of("/proc/sys/net/core/wmem_default");
        long sndbuf = Files.exists(wmem) ? Long.parseLong(Files.readAllLines(wmem).getFirst().strip()) : 1 << 20;
        return BUF_ALLOC + 4 * sndbuf + MAX_PAYLOAD;
    }

    private static Thread thread(String name) {
        return Thread.getAllStackTraces().keySet().stream().filter(t -> t.getName().equals(name)).findFirst().orElse(null);
    }

    @Test
    void aHostProgramThatDoesNotReadHoldsTheGuestNotTheVmThreadUntilItReads() throws Exception {
        long total = beyondAllBuffers();
        startVm(total);
        try (SocketChannel conn = guestConnects(5001)) { // and then the program reads nothing
            // Without the device's own credit this hung in a blocking write on the VM thread once the socket was full.
            assertTimeoutPreemptively(Duration.ofSeconds(10), () -> guestPushes(5001, total, 1000),
                    "the guest's sends return although the host program reads nothing");
            assertFalse(reset);
            assertTrue(sent < total, "the guest is held up: " + sent + " of " + total + " bytes went");
            assertEquals(BUF_ALLOC, sent - fwd, "it used all of its credit and got no more");

            // The program reads: credit comes back, the rest flows, every byte in order, then end of stream.
            // Its own thread: the default async pool may have a single worker, which another blocking task could hold.
            CompletableFuture<String> reader = CompletableFuture.supplyAsync(() -> readPattern(conn, total),
                    r -> Thread.ofPlatform().daemon().start(r));
            assertTimeoutPreemptively(Duration.ofSeconds(60), () -> guestPushes(5001, total, 20_000));
            assertEquals(total, sent);
            assertTrue(updates > 0, "CREDIT_UPDATE packets gave the guest its credit back");
            guestSends(5001, OP_SHUTDOWN, SHUTDOWN_SEND | SHUTDOWN_RCV, new byte[0]);
            pollReceived();
            assertTrue(reset, "the guest's close is answered with RST");
            assertEquals("ok", reader.get(60, TimeUnit.SECONDS));

            Thread out = thread("polyvisor-vsock-5001-out");
            if (out != null) out.join(10_000);
            assertTrue(out == null || !out.isAlive(), "the connection's writer ends once its bytes are out");
        }
    }

    /** Reads {@code total} bytes of the pattern, then end of stream: "ok", or what went wrong. */
    private static String readPattern(SocketChannel c, long total) {
        try (c) {
            ByteBuffer b = ByteBuffer.allocate(64 << 10);
            long at = 0;
            for (int n; (n = c.read(b.clear())) >= 0; ) {
                for (int i = 0; i < n; i++, at++) {
                    if (at >= total) return "more than " + total + " bytes";
                    if (b.get(i) != pattern(at)) return "byte " + at + " is " + b.get(i);
                }
            }
            return at == total ? "ok" : "end of stream after " + at + " of " + total + " bytes";
        } catch (IOException e) {
            return e.toString();
        }
    }

    @Test
    void closingTheVmEndsAWriterBlockedOnAHostProgramThatDoesNotRead() throws Exception {
        long total = beyondAllBuffers();
        startVm(total);
        try (SocketChannel ignored = guestConnects(5002)) {
            assertTimeoutPreemptively(Duration.ofSeconds(10), () -> guestPushes(5002, total, 1000));
            Thread out = thread("polyvisor-vsock-5002-out");
            assertNotNull(out);
            assertTrue(out.isAlive(), "blocked on the full socket");
            host.close();
            vs.close();
            out.join(10_000);
            assertFalse(out.isAlive(), "closing the VM ends the writer");
        }
    }

    @Test
    void aHostProgramThatGoesAwayResetsTheConnection() throws Exception {
        startVm(4 << 20);
        try (SocketChannel conn = guestConnects(5003)) {
            conn.close();
            long deadline = System.nanoTime() + TimeUnit.SECONDS.toNanos(30);
            while (!reset && System.nanoTime() < deadline) {
                // A guest that keeps writing: the socket refuses the bytes (EPIPE) on the writer thread.
                guestSends(5003, OP_RW, 0, new byte[100]);
                pollReceived();
                Thread.sleep(10);
            }
            assertTrue(reset, "RST once the host program's socket refused the guest's bytes");
        }
    }

    @Test
    void theOkLineOfAHostConnectionIsNotCountedAsForwarded() throws Exception {
        startVm(4 << 20);
        try (SocketChannel program = SocketChannel.open(UnixDomainSocketAddress.of(dir.resolve("v.sock")))) {
            program.write(ByteBuffer.wrap("CONNECT 6000\n".getBytes(StandardCharsets.US_ASCII)));
            int hostPort = -1;
            long deadline = System.nanoTime() + TimeUnit.SECONDS.toNanos(30);
            while (hostPort < 0 && System.nanoTime() < deadline) {
                d.f.serviceHost();
                byte[] b = d.takeUsed(RX);
                if (b == null) { Thread.sleep(5); continue; }
                ByteBuffer h = ByteBuffer.wrap(b).order(ByteOrder.LITTLE_ENDIAN);
                assertEquals(OP_REQUEST, h.getShort(30));
                hostPort = h.getInt(16);
            }
            assertEquals(FIRST_LOCAL_PORT, hostPort);
            d.postReadable(TX, VirtioVsockTest.guestPacket(6000, hostPort, OP_RESPONSE, 0, 65536, 0, new byte[0]));
            byte[] data = "0123456789".getBytes(StandardCharsets.US_ASCII);
            d.postReadable(TX, VirtioVsockTest.guestPacket(6000, hostPort, OP_RW, 0, 65536, 0, data));
            ByteBuffer got = ByteBuffer.allocate(64);
            String expect = "OK " + hostPort + "\n0123456789";
            while (got.position() < expect.length() && program.read(got) >= 0) { /* until the line and the data are in */ }
            assertEquals(expect, new String(got.array(), 0, got.position(), StandardCharsets.US_ASCII));

            long reported = 0;
            while (reported < data.length && System.nanoTime() < deadline) {
                d.postReadable(TX, VirtioVsockTest.guestPacket(6000, hostPort, OP_CREDIT_REQUEST, 0, 65536, 0, new byte[0]));
                d.f.serviceHost();
                for (byte[] b; (b = d.takeUsed(RX)) != null; ) {
                    ByteBuffer h = ByteBuffer.wrap(b).order(ByteOrder.LITTLE_ENDIAN);
                    assertEquals(OP_CREDIT_UPDATE, h.getShort(30));
                    reported = Integer.toUnsignedLong(h.getInt(40));
                    assertTrue(reported <= data.length, "fwd_cnt " + reported + " counts the OK line");
                    d.postWritable(RX, HEADER + 4096);
                }
                Thread.sleep(5);
            }
            assertEquals(data.length, reported);
        }
    }
}

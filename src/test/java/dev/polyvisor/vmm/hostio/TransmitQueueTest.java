package dev.polyvisor.vmm.hostio;

import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.io.TempDir;

import java.io.IOException;
import java.net.StandardProtocolFamily;
import java.net.UnixDomainSocketAddress;
import java.nio.ByteBuffer;
import java.nio.channels.ServerSocketChannel;
import java.nio.channels.SocketChannel;
import java.nio.file.Path;
import java.time.Duration;
import java.util.ArrayList;
import java.util.List;
import java.util.Random;
import java.util.concurrent.CopyOnWriteArrayList;

import static org.junit.jupiter.api.Assertions.*;

/**
 * The transmit path of the network backends: the VM thread's send never waits for the host end, frames
 * that find the ring full are dropped and counted, the frames that go out arrive whole and in order, and
 * close ends the writer thread even while it is blocked on a peer that never reads.
 */
class TransmitQueueTest {
    @TempDir Path dir;

    /** Both ends of a connected Unix stream socket, as between Polyvisor and passt. */
    private record Pair(SocketChannel ours, SocketChannel peer) implements AutoCloseable {
        @Override public void close() throws IOException { ours.close(); peer.close(); }
    }

    private Pair connect() throws IOException {
        try (ServerSocketChannel server = ServerSocketChannel.open(StandardProtocolFamily.UNIX)) {
            server.bind(UnixDomainSocketAddress.of(dir.resolve("net.sock")));
            SocketChannel ours = SocketChannel.open(StandardProtocolFamily.UNIX);
            ours.connect(server.getLocalAddress());
            return new Pair(ours, server.accept());
        }
    }

    /** passt's wire: the records as they are. */
    private static TransmitQueue.Wire streamTo(SocketChannel ch) {
        return records -> { while (records.hasRemaining()) ch.write(records); };
    }

    @Test
    void aPeerThatNeverReadsCostsDroppedFramesNotABlockedSender() throws Exception {
        try (Pair p = connect()) {
            TransmitQueue q = new TransmitQueue("test-tx", streamTo(p.ours()));
            byte[] frame = new byte[64 << 10];
            int sent = 10_000;
            // 655 MB against a 4 MiB ring and a socket buffer of a few hundred KiB: the sender must not wait.
            int accepted = assertTimeoutPreemptively(Duration.ofSeconds(20), () -> {
                int a = 0;
                for (int i = 0; i < sent; i++) if (q.offer(frame, frame.length)) a++;
                return a;
            }, "10,000 sends return although nobody reads");
            assertTrue(q.dropped() > 0, "frames beyond the ring are dropped");
            assertEquals(sent, accepted + q.dropped(), "every frame is queued or counted as dropped");
            assertTrue(accepted >= TransmitQueue.CAPACITY / (frame.length + TransmitQueue.HEADER) - 1,
                    "the ring holds what fits in it: " + accepted);
            assertTrue(q.writer().isAlive(), "the writer waits on the peer");
            assertTimeoutPreemptively(Duration.ofSeconds(10), q::close, "close does not wait for the peer");
            assertFalse(q.writer().isAlive(), "close ends the writer blocked in its write");
        }
    }

    /** Frame {@code i}: a length and content of its own, so that a lost, torn or reordered frame shows. */
    private static int fill(byte[] buf, int i, Random r) {
        int length = 1 + r.nextInt(i % 7 == 0 ? buf.length : 1514);
        for (int k = 0; k < length; k++) buf[k] = (byte) (i * 31 + k * 7);
        return length;
    }

    @Test
    void framesThatGoOutArriveWholeAndInOrder() throws Exception {
        try (Pair p = connect()) {
            List<byte[]> received = new CopyOnWriteArrayList<>();
            Thread reader = Thread.ofPlatform().daemon().start(() -> {
                ByteBuffer len = ByteBuffer.allocate(4);
                try {
                    for (;;) {
                        len.clear();
                        while (len.hasRemaining()) if (p.peer().read(len) < 0) return;
                        ByteBuffer f = ByteBuffer.allocate(len.getInt(0));
                        while (f.hasRemaining()) if (p.peer().read(f) < 0) return;
                        received.add(f.array());
                    }
                } catch (IOException e) {
                    // closed at the end of the test
                }
            });
            List<byte[]> accepted = new ArrayList<>();
            byte[] buf = new byte[dev.polyvisor.devices.virtio.VirtioNet.MAX_FRAME]; // reused, as VirtioNet's is
            Random r = new Random(13);
            try (TransmitQueue q = new TransmitQueue("test-tx", streamTo(p.ours()))) {
                for (int i = 0; i < 3000; i++) {
                    int n = fill(buf, i, r);
                    if (q.offer(buf, n)) accepted.add(java.util.Arrays.copyOf(buf, n));
                }
                long deadline = System.nanoTime() + 20_000_000_000L;
                while (received.size() < accepted.size() && System.nanoTime() < deadline) Thread.sleep(10);
                assertEquals(3000, accepted.size() + q.dropped());
                assertTrue(accepted.size() >= 100, "a reading peer takes most frames: " + accepted.size());
            }
            assertEquals(accepted.size(), received.size(), "every queued frame arrives");
            for (int i = 0; i < accepted.size(); i++) assertArrayEquals(accepted.get(i), received.get(i), "frame " + i);
            p.close();
            reader.join(5000);
        }
    }

    @Test
    void closeEndsAnIdleWriterAndLaterSendsFail() throws Exception {
        try (Pair p = connect()) {
            TransmitQueue q = new TransmitQueue("test-tx", streamTo(p.ours()));
            assertTrue(q.offer(new byte[60], 60));
            q.close();
            assertFalse(q.writer().isAlive());
            assertThrows(IOException.class, () -> q.offer(new byte[60], 60));
        }
    }

    @Test
    void aCutWireIsOneErrorForEveryLaterFrame() throws Exception {
        Pair p = connect();
        List<IOException> told = new CopyOnWriteArrayList<>();
        try (TransmitQueue q = new TransmitQueue("test-tx", streamTo(p.ours()), told::add)) {
            p.peer().close(); // passt went away: the next write is EPIPE
            byte[] frame = new byte[1500];
            IOException first = assertTimeoutPreemptively(Duration.ofSeconds(10), () -> {
                for (;;) {
                    try {
                        q.offer(frame, frame.length);
                    } catch (IOException e) {
                        return e;
                    }
                    Thread.sleep(1);
                }
            });
            assertSame(first, assertThrows(IOException.class, () -> q.offer(frame, frame.length)),
                    "the error is latched once, not made again per frame");
            q.writer().join(5000);
            assertFalse(q.writer().isAlive(), "the writer stops with the wire");
            assertEquals(List.of(first), told, "the backend hears of the cut once");
        } finally {
            p.close();
        }
    }
}

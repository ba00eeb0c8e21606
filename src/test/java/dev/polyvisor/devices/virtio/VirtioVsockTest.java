package dev.polyvisor.devices.virtio;

import org.junit.jupiter.api.Test;

import java.io.ByteArrayOutputStream;
import java.nio.ByteBuffer;
import java.nio.ByteOrder;
import java.nio.charset.StandardCharsets;
import java.util.ArrayList;
import java.time.Duration;
import java.util.List;

import static dev.polyvisor.devices.virtio.VirtioVsock.*;
import static org.junit.jupiter.api.Assertions.*;

/** virtio-vsock (virtio 1.2, 5.10) stream connections both ways, with credit-based flow control. */
class VirtioVsockTest {
    static final long CID = 42;
    private VirtioVsock vs;
    private final TestDriver d = new TestDriver(dma -> vs = new VirtioVsock(CID, () -> {}));
    private final List<TestPeer> peers = new ArrayList<>();

    /** A host end that records what it gets and, unless told not to, forwards it to the host at once. */
    final class TestPeer implements Peer {
        final ByteArrayOutputStream got = new ByteArrayOutputStream();
        int accepted = -1;
        boolean shut, closed, finished;
        /** False: a host program that does not read, nothing is forwarded until the test says so. */
        boolean forwards = true;
        /** True: a host end that reports connectedToHost or resetFromHost later (Peer.connecting). */
        boolean connecting;

        @Override public void write(byte[] b, int off, int len) {
            got.write(b, off, len);
            if (forwards) vs.forwarded(this, len);
        }
        @Override public void accepted(int localPort) { accepted = localPort; }
        @Override public boolean connecting() { return connecting; }
        @Override public void shutdownOutput() { shut = true; }
        @Override public void close() { closed = true; }
        @Override public void finish() { finished = true; }
    }

    record Pkt(long src, long dst, int srcPort, int dstPort, int op, int flags, long bufAlloc, long fwdCnt, byte[] data) {}

    static byte[] guestPacket(int srcPort, int dstPort, int op, int flags, int bufAlloc, int fwd, byte[] data) {
        ByteBuffer b = ByteBuffer.allocate(HEADER + data.length).order(ByteOrder.LITTLE_ENDIAN);
        b.putLong(CID).putLong(HOST_CID).putInt(srcPort).putInt(dstPort).putInt(data.length).putShort((short) TYPE_STREAM)
                .putShort((short) op).putInt(flags).putInt(bufAlloc).putInt(fwd).put(data);
        return b.array();
    }

    private void send(int srcPort, int dstPort, int op, int flags, int bufAlloc, int fwd, byte[] data) {
        d.postReadable(TX, guestPacket(srcPort, dstPort, op, flags, bufAlloc, fwd, data));
    }

    private Pkt received() {
        byte[] b = d.takeUsed(RX);
        if (b == null) return null;
        ByteBuffer h = ByteBuffer.wrap(b).order(ByteOrder.LITTLE_ENDIAN);
        int len = h.getInt(24);
        assertEquals(HEADER + len, b.length);
        assertEquals(TYPE_STREAM, h.getShort(28));
        byte[] data = new byte[len];
        h.get(HEADER, data);
        return new Pkt(h.getLong(0), h.getLong(8), h.getInt(16), h.getInt(20), h.getShort(30), h.getInt(32),
                Integer.toUnsignedLong(h.getInt(36)), Integer.toUnsignedLong(h.getInt(40)), data);
    }

    private void rxBuffers(int n) { for (int i = 0; i < n; i++) d.post(RX, HEADER + 4096, null, i == n - 1); }

    private static byte[] ascii(String s) { return s.getBytes(StandardCharsets.US_ASCII); }

    @Test
    void configurationHoldsTheGuestCid() {
        assertEquals(0x1040 + 19, d.f.configRead(0x02, 2));
        assertEquals(3, d.common(0x12, 2), "rx, tx, event");
        assertEquals(CID, d.f.barRead(VirtioPciFunction.BAR, VirtioPciFunction.DEVICE, 4));
        assertEquals(0, d.f.barRead(VirtioPciFunction.BAR, VirtioPciFunction.DEVICE + 4, 4));
    }

    @Test
    void aRefusedConnectionIsReset() {
        d.start(0);
        rxBuffers(4);
        send(1000, 5000, OP_REQUEST, 0, 65536, 0, new byte[0]);
        Pkt p = received();
        assertEquals(OP_RST, p.op());
        assertEquals(HOST_CID, p.src());
        assertEquals(CID, p.dst());
        assertEquals(5000, p.srcPort());
        assertEquals(1000, p.dstPort());
    }

    /**
     * A host end that is still connecting (Peer.connecting): the guest's REQUEST gets nothing yet, then
     * RESPONSE when the host end reports it connected, or RST when it reports failure; the guest's data
     * before RESPONSE resets the half-made connection.
     */
    @Test
    void aConnectingHostEndIsAnsweredWhenItIsDone() {
        d.start(0);
        TestPeer ok = new TestPeer(), refused = new TestPeer(), early = new TestPeer();
        ok.connecting = refused.connecting = early.connecting = true;
        vs.setHost(port -> port == 5000 ? ok : port == 5001 ? refused : early);
        rxBuffers(8);
        send(1000, 5000, OP_REQUEST, 0, 65536, 0, new byte[0]);
        send(1001, 5001, OP_REQUEST, 0, 65536, 0, new byte[0]);
        send(1002, 5002, OP_REQUEST, 0, 65536, 0, new byte[0]);
        assertNull(received(), "no answer while the host end connects");
        vs.connectedToHost(ok);
        vs.resetFromHost(refused);
        d.f.serviceHost();
        Pkt r = received(), f = received();
        assertEquals(OP_RESPONSE, r.op());
        assertEquals(5000, r.srcPort());
        assertEquals(OP_RST, f.op());
        assertEquals(5001, f.srcPort());
        assertTrue(refused.closed);
        send(1002, 5002, OP_RW, 0, 65536, 0, ascii("too soon"));
        Pkt e = received();
        assertEquals(OP_RST, e.op());
        assertEquals(5002, e.srcPort());
        assertTrue(early.closed);
        assertEquals(0, early.got.size());
        vs.connectedToHost(early); // too late: the connection is gone
        d.f.serviceHost();
        assertNull(received());
        send(1000, 5000, OP_RW, 0, 65536, 0, ascii("hi"));
        assertEquals("hi", ok.got.toString(StandardCharsets.US_ASCII));
    }

    @Test
    void connectionsPastTheBoundAreRefusedWithRstAndOneLogLine() throws Exception {
        d.start(0);
        vs.setHost(port -> new TestPeer());
        int n = VirtioVsock.MAX_CONNECTIONS;
        for (int i = 0; i < n; i++) {
            rxBuffers(1);
            send(1000 + i, 5000, OP_REQUEST, 0, 10, 0, new byte[0]);
            assertEquals(OP_RESPONSE, received().op(), "connection " + i + " is within the bound");
        }
        for (int i = 0; i < 3; i++) {
            rxBuffers(1);
            send(9000 + i, 5000, OP_REQUEST, 0, 10, 0, new byte[0]);
            assertEquals(OP_RST, received().op(), "past the bound");
        }
        assertEquals(1, d.log.size(), "a flood of refusals is one line: " + d.log);
        assertTrue(d.log.get(0).contains(n + " vsock connections are open"), d.log.get(0));
        TestPeer fromHost = new TestPeer();
        vs.connectFromHost(7000, fromHost);
        d.f.serviceHost();
        assertTrue(fromHost.closed, "a host program's connection past the bound is closed");
        rxBuffers(1);
        send(1000, 5000, OP_RST, 0, 10, 0, new byte[0]); // one closes: there is room again
        send(9100, 5000, OP_REQUEST, 0, 10, 0, new byte[0]);
        assertEquals(OP_RESPONSE, received().op(), "room again after a connection ended");
    }

    @Test
    void guestConnectsSendsAndReceivesWithinCredit() throws Exception {
        d.start(0);
        TestPeer peer = new TestPeer();
        vs.setHost(port -> port == 5000 ? peer : null);
        rxBuffers(8);
        send(1000, 5000, OP_REQUEST, 0, 10, 0, new byte[0]); // the guest can take 10 bytes
        Pkt r = received();
        assertEquals(OP_RESPONSE, r.op());
        assertEquals(BUF_ALLOC, r.bufAlloc());
        send(1000, 5000, OP_RW, 0, 10, 0, ascii("hello host"));
        assertEquals("hello host", peer.got.toString(StandardCharsets.US_ASCII));
        vs.dataFromHost(peer, ascii("0123456789abcdef"));
        d.f.serviceHost();
        Pkt data = received();
        assertEquals(OP_RW, data.op());
        assertEquals("0123456789", new String(data.data(), StandardCharsets.US_ASCII), "no more than the guest's credit");
        assertEquals(10, data.fwdCnt(), "the device reports the 10 bytes it forwarded");
        assertNull(received());
        send(1000, 5000, OP_CREDIT_UPDATE, 0, 10, 10, new byte[0]); // the guest read them
        Pkt rest = received();
        assertEquals("abcdef", new String(rest.data(), StandardCharsets.US_ASCII));
        vs.eofFromHost(peer);
        d.f.serviceHost();
        Pkt shut = received();
        assertEquals(OP_SHUTDOWN, shut.op());
        assertEquals(SHUTDOWN_SEND, shut.flags(), "the host's end of stream is a half-close: the guest may still reply");
        send(1000, 5000, OP_RW, 0, 10, 16, ascii("reply"));
        assertEquals("hello hostreply", peer.got.toString(StandardCharsets.US_ASCII), "a reply after the host's end of stream is delivered");
        send(1000, 5000, OP_RST, 0, 10, 16, new byte[0]);
        assertTrue(peer.closed);
    }

    @Test
    void hostConnectsAndLearnsItsPortWhenTheGuestAccepts() {
        d.start(0);
        rxBuffers(4);
        TestPeer peer = new TestPeer();
        vs.connectFromHost(6000, peer);
        d.f.serviceHost();
        Pkt req = received();
        assertEquals(OP_REQUEST, req.op());
        assertEquals(6000, req.dstPort());
        assertEquals(FIRST_LOCAL_PORT, req.srcPort());
        assertEquals(-1, peer.accepted);
        send(6000, FIRST_LOCAL_PORT, OP_RESPONSE, 0, 65536, 0, new byte[0]);
        assertEquals(FIRST_LOCAL_PORT, peer.accepted);
        send(6000, FIRST_LOCAL_PORT, OP_SHUTDOWN, SHUTDOWN_SEND, 65536, 0, new byte[0]);
        assertTrue(peer.shut);
        assertFalse(peer.closed);
        send(6000, FIRST_LOCAL_PORT, OP_SHUTDOWN, SHUTDOWN_SEND | SHUTDOWN_RCV, 65536, 0, new byte[0]);
        assertEquals(OP_RST, received().op(), "both directions shut: the device resets the connection");
        assertTrue(peer.finished, "the guest closed in order: the host still gets what it sent");
        assertFalse(peer.closed);
        send(6000, FIRST_LOCAL_PORT, OP_RW, 0, 65536, 0, ascii("late"));
        assertEquals(OP_RST, received().op(), "the connection is gone");
        assertEquals(0, peer.got.size());
    }

    /**
     * A guest connection from port 1000 to host port 5000 with a peer that forwards nothing until told to
     * ({@link VirtioVsock#forwarded}); {@code buffers} receive buffers posted, one taken by the RESPONSE.
     */
    private TestPeer connectToAHostThatDoesNotRead(int buffers) {
        d.start(0);
        rxBuffers(buffers);
        TestPeer peer = new TestPeer();
        peer.forwards = false;
        vs.setHost(port -> port == 5000 ? peer : null);
        send(1000, 5000, OP_REQUEST, 0, 65536, 0, new byte[0]);
        Pkt r = received();
        assertEquals(OP_RESPONSE, r.op());
        assertEquals(BUF_ALLOC, r.bufAlloc(), "the receive buffer the device advertises");
        assertEquals(0, r.fwdCnt());
        return peer;
    }

    /** The host program took {@code bytes} of what the peer holds; the VM thread hears of it. */
    private void hostReads(TestPeer peer, int bytes) {
        vs.forwarded(peer, bytes);
        d.f.serviceHost();
    }

    /** Sends {@code total} bytes of a counting pattern from {@code from} on, in packets of at most MAX_PAYLOAD. */
    private void sendPattern(long from, int total) {
        for (int done = 0; done < total; ) {
            byte[] b = new byte[Math.min(MAX_PAYLOAD, total - done)];
            for (int i = 0; i < b.length; i++) b[i] = (byte) ((from + done + i) % 251);
            send(1000, 5000, OP_RW, 0, 65536, 0, b);
            done += b.length;
        }
    }

    @Test
    void aHostThatDoesNotReadHoldsTheGuestToTheAdvertisedBuffer() {
        TestPeer peer = connectToAHostThatDoesNotRead(8);
        // A guest that keeps to its credit sends buf_alloc bytes and then waits in its own kernel: each call
        // returns, whatever the host does.
        assertTimeoutPreemptively(Duration.ofSeconds(10), () -> sendPattern(0, BUF_ALLOC));
        assertEquals(BUF_ALLOC, peer.got.size(), "all of the advertised buffer is taken");
        assertNull(received(), "nothing was forwarded: no credit comes back");
        assertFalse(peer.closed);
        assertEquals(0, d.log.size());

        // One byte beyond the credit: a broken peer, reset with one log line, the device itself unharmed.
        send(1000, 5000, OP_RW, 0, 65536, 0, ascii("x"));
        Pkt rst = received();
        assertEquals(OP_RST, rst.op());
        assertEquals(1000, rst.dstPort());
        assertEquals(BUF_ALLOC, peer.got.size(), "the byte beyond the credit is not taken");
        assertTrue(peer.closed);
        assertEquals(1, d.log.size(), d.log.toString());
        assertTrue(d.log.get(0).contains("credit"), d.log.get(0));
        assertEquals(0, d.status() & VirtioPciFunction.S_NEEDS_RESET);
    }

    @Test
    void forwardedBytesComeBackAsCreditAndTheRestFlows() {
        TestPeer peer = connectToAHostThatDoesNotRead(8);
        sendPattern(0, 1000);
        hostReads(peer, 1000);
        assertNull(received(), "plenty of credit left: no update for every forwarded byte");

        sendPattern(1000, BUF_ALLOC - 1000); // the guest heard of no forwarded byte: buf_alloc in all
        assertEquals(BUF_ALLOC, peer.got.size());
        assertNull(received());
        hostReads(peer, 100_000);
        Pkt up = received();
        assertEquals(OP_CREDIT_UPDATE, up.op(), "the guest's credit ran out: the host reading gives it back");
        assertEquals(101_000, up.fwdCnt());
        assertEquals(BUF_ALLOC, up.bufAlloc());
        assertEquals(1000, up.dstPort());
        assertEquals(5000, up.srcPort());
        assertNull(received(), "one update");

        sendPattern(BUF_ALLOC, 101_000);
        assertFalse(peer.closed, "the new credit is used to the last byte");
        byte[] got = peer.got.toByteArray();
        assertEquals(BUF_ALLOC + 101_000, got.length);
        for (int i = 0; i < got.length; i++) if (got[i] != (byte) (i % 251)) fail("byte " + i + " out of order");
        send(1000, 5000, OP_RW, 0, 65536, 0, ascii("x"));
        assertEquals(OP_RST, received().op(), "and not one byte more");
    }

    @Test
    void aCreditRequestIsAnsweredWithTheCurrentFwdCnt() {
        TestPeer peer = connectToAHostThatDoesNotRead(8);
        sendPattern(0, 5000);
        hostReads(peer, 3000);
        assertNull(received());
        send(1000, 5000, OP_CREDIT_REQUEST, 0, 65536, 0, new byte[0]);
        Pkt up = received();
        assertEquals(OP_CREDIT_UPDATE, up.op());
        assertEquals(3000, up.fwdCnt(), "what reached the host, not what the guest sent");
        assertEquals(BUF_ALLOC, up.bufAlloc());
        assertNull(received());
    }

    @Test
    void creditUpdatesWaitForAReceiveBuffer() {
        TestPeer peer = connectToAHostThatDoesNotRead(1);
        sendPattern(0, BUF_ALLOC);
        vs.forwarded(peer, 70_000);
        send(1000, 5000, OP_CREDIT_REQUEST, 0, 65536, 0, new byte[0]);
        vs.forwarded(peer, 30_000);
        d.f.serviceHost();
        assertNull(received(), "no buffer posted");
        rxBuffers(4);
        Pkt up = received();
        assertEquals(OP_CREDIT_UPDATE, up.op());
        assertEquals(100_000, up.fwdCnt(), "one update, with the latest count");
        assertNull(received());
    }

    @Test
    void packetsForUnknownConnectionsAreReset() {
        d.start(0);
        rxBuffers(2);
        send(7, 8, OP_RW, 0, 100, 0, ascii("x"));
        assertEquals(OP_RST, received().op());
        send(7, 8, OP_RST, 0, 100, 0, new byte[0]);
        assertNull(received(), "an RST is never answered");
    }

    /**
     * A guest that sends packets needing a reply (RST: nobody listens) without posting receive buffers: past
     * MAX_QUEUED_REPLIES waiting replies the device stops taking its packets, which wait in the TX ring; once
     * receive buffers come, the replies go out and the waiting packets are taken and answered too.
     */
    @Test
    void aGuestThatTakesNoRepliesIsHeldAtTheBoundAndResumedWhenItDoes() {
        d.start(0);
        int extra = 10, total = MAX_QUEUED_REPLIES + extra, taken = 0;
        for (int i = 0; i < total; i++) {
            send(1000 + i, 5000, OP_REQUEST, 0, 65536, 0, new byte[0]);
            while (d.takeUsed(TX) != null) taken++;
        }
        assertEquals(MAX_QUEUED_REPLIES, taken, "taken up to the bound; the rest wait in the ring");
        int rst = 0;
        for (int round = 0; round < 100 && rst < total; round++) {
            rxBuffers(TestDriver.SIZE);
            for (Pkt p; (p = received()) != null; ) {
                assertEquals(OP_RST, p.op());
                assertEquals(1000 + rst, p.dstPort(), "replies in the order of the requests");
                rst++;
            }
            while (d.takeUsed(TX) != null) taken++;
        }
        assertEquals(total, rst, "every request answered");
        assertEquals(total, taken, "every packet taken from the ring");
        assertEquals(0, d.status() & VirtioPciFunction.S_NEEDS_RESET);
    }

    @Test
    void aPacketShorterThanItsHeaderBreaksTheDevice() {
        d.start(0);
        d.postReadable(TX, new byte[20]);
        assertEquals(VirtioPciFunction.S_NEEDS_RESET, d.status() & VirtioPciFunction.S_NEEDS_RESET);
        assertEquals(1, d.log.size());
    }

    @Test
    void aPayloadLongerThanTheBufferBreaksTheDevice() {
        d.start(0);
        byte[] p = guestPacket(1, 2, OP_RW, 0, 0, 0, new byte[4]);
        ByteBuffer.wrap(p).order(ByteOrder.LITTLE_ENDIAN).putInt(24, 4096);
        d.postReadable(TX, p);
        assertEquals(VirtioPciFunction.S_NEEDS_RESET, d.status() & VirtioPciFunction.S_NEEDS_RESET);
    }
}

package dev.polyvisor.devices.virtio;

import org.junit.jupiter.api.Test;

import java.io.IOException;
import java.util.ArrayList;
import java.util.Arrays;
import java.util.List;
import java.util.concurrent.atomic.AtomicInteger;

import static org.junit.jupiter.api.Assertions.*;

/** virtio-net (virtio 1.2, 5.1) as Linux's virtio_net drives it without offloads or mergeable buffers. */
class VirtioNetTest {
    static final byte[] MAC = {0x52, 0x54, 0x00, 0x12, 0x34, 0x56};
    private final List<byte[]> sent = new ArrayList<>();
    private final AtomicInteger signals = new AtomicInteger();
    private VirtioNet net;
    private final TestDriver d = new TestDriver(dma -> net = new VirtioNet(MAC, (f, n) -> sent.add(Arrays.copyOf(f, n)), signals::incrementAndGet));

    private static byte[] frame(int len, int seed) {
        byte[] f = new byte[len];
        for (int i = 0; i < len; i++) f[i] = (byte) (i * 7 + seed);
        return f;
    }

    @Test
    void offersMacAndLinkStatusInConfigurationSpace() {
        assertEquals(0x1041, d.f.configRead(0x02, 2), "device ID 0x1040 + 1");
        assertEquals(0x020000, d.f.configRead(0x08, 4) >>> 8, "Ethernet controller");
        d.common(0x00, 4, 0);
        long low = d.common(0x04, 4);
        assertEquals(VirtioNet.F_MAC, low & VirtioNet.F_MAC);
        assertEquals(VirtioNet.F_STATUS, low & VirtioNet.F_STATUS);
        assertEquals(0, low & 1L << 15, "no MRG_RXBUF: one frame per buffer");
        long cfg = VirtioPciFunction.DEVICE;
        for (int i = 0; i < 6; i++) assertEquals(MAC[i] & 0xFF, d.f.barRead(VirtioPciFunction.BAR, cfg + i, 1));
        assertEquals(VirtioNet.S_LINK_UP, d.f.barRead(VirtioPciFunction.BAR, cfg + 6, 2));
        assertEquals(2, d.common(0x12, 2), "receive and transmit queues");
    }

    @Test
    void transmittedFramesLoseTheirHeaderAndReachTheHost() {
        d.start(VirtioNet.F_MAC | VirtioNet.F_STATUS);
        byte[] f = frame(60, 1);
        byte[] buf = new byte[VirtioNet.HEADER + f.length];
        System.arraycopy(f, 0, buf, VirtioNet.HEADER, f.length);
        d.postReadable(VirtioNet.TX, buf);
        assertEquals(1, sent.size());
        assertArrayEquals(f, sent.getFirst());
        assertNotNull(d.takeUsed(VirtioNet.TX), "the transmit buffer comes back");
        assertEquals(List.of(VirtioNet.TX + 1), d.vectors);
    }

    @Test
    void aTransmitBufferShorterThanTheHeaderBreaksTheDevice() {
        d.start(0);
        d.postReadable(VirtioNet.TX, new byte[4]);
        assertEquals(VirtioPciFunction.S_NEEDS_RESET, d.status() & VirtioPciFunction.S_NEEDS_RESET);
        assertEquals(1, d.log.size());
        assertTrue(sent.isEmpty());
    }

    @Test
    void receivedFramesWaitForBuffersAndGetAHeaderWithOneBuffer() throws Exception {
        d.start(VirtioNet.F_MAC);
        byte[] a = frame(1514, 2), b = frame(42, 3);
        assertTrue(net.receive(a));
        assertTrue(net.receive(b));
        assertEquals(2, signals.get(), "each frame asks the VM thread to deliver");
        d.f.serviceHost();
        assertNull(d.takeUsed(VirtioNet.RX), "no buffer posted yet: the frames wait");
        d.postWritable(VirtioNet.RX, VirtioNet.HEADER + 1518); // the notify delivers
        byte[] got = d.takeUsed(VirtioNet.RX);
        assertNotNull(got);
        assertEquals(VirtioNet.HEADER + a.length, got.length);
        assertEquals(1, got[10], "num_buffers");
        assertArrayEquals(a, Arrays.copyOfRange(got, VirtioNet.HEADER, got.length));
        assertEquals(List.of(VirtioNet.RX + 1), d.vectors);
        d.postWritable(VirtioNet.RX, VirtioNet.HEADER + 1518);
        got = d.takeUsed(VirtioNet.RX);
        assertArrayEquals(b, Arrays.copyOfRange(got, VirtioNet.HEADER, got.length));
        assertEquals(2, net.rxFrames());
    }

    @Test
    void aFrameLargerThanTheBufferIsDroppedAndTheBufferReused() throws Exception {
        d.start(0);
        d.postWritable(VirtioNet.RX, VirtioNet.HEADER + 100);
        net.receive(frame(200, 4));
        net.receive(frame(100, 5));
        d.f.serviceHost();
        byte[] got = d.takeUsed(VirtioNet.RX);
        assertArrayEquals(frame(100, 5), Arrays.copyOfRange(got, VirtioNet.HEADER, got.length));
        assertEquals(1, net.rxDropped());
        assertNull(d.takeUsed(VirtioNet.RX));
    }

    @Test
    void nothingIsDeliveredBeforeDriverOk() throws Exception {
        net = null;
        TestDriver early = new TestDriver(dma -> net = new VirtioNet(MAC, (f, n) -> {}, () -> {}));
        early.common(0x14, 1, VirtioPciFunction.S_ACKNOWLEDGE);
        net.receive(frame(60, 6));
        early.f.serviceHost();
        assertEquals(0, early.mem.ld16(TestDriver.used(VirtioNet.RX) + 2));
    }

    @Test
    void aHostThatGoesAwayDropsTransmittedFrames() {
        TestDriver g = new TestDriver(dma -> net = new VirtioNet(MAC, (f, n) -> { throw new IOException("closed"); }, () -> {}));
        g.start(0);
        g.postReadable(VirtioNet.TX, new byte[VirtioNet.HEADER + 60]);
        assertEquals(1, net.txDropped());
        assertEquals(0, g.status() & VirtioPciFunction.S_NEEDS_RESET);
    }

    @Test
    void checksumOffloadsAreOfferedAndTheMtuOnlyWhenTheHostEndHasOne() {
        d.common(0x00, 4, 0);
        long low = d.common(0x04, 4);
        assertEquals(VirtioNet.F_CSUM | VirtioNet.F_GUEST_CSUM, low & (VirtioNet.F_CSUM | VirtioNet.F_GUEST_CSUM));
        assertEquals(0, low & VirtioNet.F_MTU);
        TestDriver big = new TestDriver(dma -> new VirtioNet(MAC, 65520, (f, n) -> {}, () -> {}));
        big.common(0x00, 4, 0);
        assertEquals(VirtioNet.F_MTU, big.common(0x04, 4) & VirtioNet.F_MTU);
        assertEquals(65520, big.f.barRead(VirtioPciFunction.BAR, VirtioPciFunction.DEVICE + 10, 2), "virtio_net_config.mtu");
    }

    private byte[] withHeader(byte[] frame, int flags, int csumStart, int csumOffset) {
        byte[] buf = new byte[VirtioNet.HEADER + frame.length];
        buf[0] = (byte) flags;
        buf[6] = (byte) csumStart;
        buf[7] = (byte) (csumStart >>> 8);
        buf[8] = (byte) csumOffset;
        System.arraycopy(frame, 0, buf, VirtioNet.HEADER, frame.length);
        return buf;
    }

    @Test
    void theDeviceCompletesAPartialChecksumTheDriverLeftIt() {
        d.start(VirtioNet.F_MAC | VirtioNet.F_CSUM);
        byte[] f = InternetChecksumTest.udp4("partial".getBytes());
        InternetChecksumTest.partial(f);
        d.postReadable(VirtioNet.TX, withHeader(f, VirtioNet.HDR_F_NEEDS_CSUM, 34, 6));
        assertEquals(1, sent.size());
        assertTrue(InternetChecksum.transportChecksumValid(sent.getFirst()), "the UDP checksum went out complete");
    }

    @Test
    void aChecksumRequestWithoutTheFeatureOrOutsideTheFrameIsDropped() {
        d.start(VirtioNet.F_MAC);
        byte[] f = InternetChecksumTest.udp4("x".getBytes());
        d.postReadable(VirtioNet.TX, withHeader(f, VirtioNet.HDR_F_NEEDS_CSUM, 34, 6));
        assertEquals(0, sent.size(), "VIRTIO_NET_F_CSUM was not negotiated");
        assertEquals(1, net.txDropped());
        assertEquals(0, d.status() & VirtioPciFunction.S_NEEDS_RESET, "a dropped frame, not a broken device");
    }

    @Test
    void receivedPacketsWithAVerifiedChecksumAreMarkedDataValid() throws Exception {
        d.start(VirtioNet.F_MAC | VirtioNet.F_GUEST_CSUM);
        byte[] good = InternetChecksumTest.udp4("ok".getBytes());
        InternetChecksumTest.partial(good);
        InternetChecksum.complete(good, good.length, 34, 6);
        byte[] bad = good.clone();
        bad[43] ^= 1;
        net.receive(good);
        net.receive(bad);
        d.postWritable(VirtioNet.RX, VirtioNet.HEADER + 1518);
        assertEquals(VirtioNet.HDR_F_DATA_VALID, d.takeUsed(VirtioNet.RX)[0]);
        d.postWritable(VirtioNet.RX, VirtioNet.HEADER + 1518);
        assertEquals(0, d.takeUsed(VirtioNet.RX)[0], "a wrong checksum is left for the guest to find");
    }

    @Test
    void aClosedDeviceRefusesFramesInsteadOfBlocking() throws Exception {
        d.start(0);
        for (int i = 0; i < VirtioNet.BACKLOG; i++) assertTrue(net.receive(frame(60, i)));
        net.close();
        assertFalse(net.receive(frame(60, 0)), "a full backlog on a closed device does not block for ever");
    }
}

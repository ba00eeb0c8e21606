package dev.polyvisor.devices.virtio;

import com.code_intelligence.jazzer.api.FuzzedDataProvider;
import com.code_intelligence.jazzer.driver.FuzzedDataProviderImpl;
import com.code_intelligence.jazzer.junit.FuzzTest;
import dev.polyvisor.memory.GuestMemory;
import org.junit.jupiter.api.MethodOrderer;
import org.junit.jupiter.api.Order;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.TestMethodOrder;

import java.io.IOException;
import java.nio.file.Files;
import java.nio.file.Path;
import java.util.ArrayDeque;
import java.util.ArrayList;
import java.util.Arrays;
import java.util.Collections;
import java.util.Deque;
import java.util.EnumSet;
import java.util.IdentityHashMap;
import java.util.List;
import java.util.Set;
import java.util.stream.Stream;

import static org.junit.jupiter.api.Assertions.*;

/**
 * virtio-net's header and frame handling against arbitrary guest buffers and host frames, fuzzed by
 * Jazzer: a transmit chain with any {@code struct virtio_net_hdr} (flags, GSO type, csum_start/offset) and
 * any frame, split over any descriptors, either reaches the host as exactly the bytes after the header
 * (with the partial checksum completed right when the driver asked for one) or is dropped and counted;
 * only a chain shorter than the header is a {@link VirtqueueException} (NEEDS_RESET). On receive, any
 * frame goes into the next buffer big enough for it behind a header with num_buffers 1 (5.1.6.4), marked
 * DATA_VALID when VIRTIO_NET_F_GUEST_CSUM was negotiated and the frame is TCP or UDP over IPv4 or IPv6 with
 * the right checksum (the harness makes some frames so), and a buffer too small drops the frame and serves
 * the next. Nothing else is thrown.
 *
 * <p>Runs like {@link VirtqueueFuzzTest}: regression with {@code mvn test -Dtest=VirtioNetFuzzTest} on the
 * inputs in {@code src/test/resources/dev/polyvisor/devices/virtio/VirtioNetFuzzTestInputs/} (one per
 * {@link Event}, which {@link #seedCorpusReachesEveryTransmitAndReceiveOutcome} checks, and a checksum field
 * at an odd offset from csum_start), replay plus bounded fuzzing in a JVM of its own in plain
 * {@code mvn verify} (pom.xml's {@code jazzer-fuzz} profile), and an opt-in longer run:
 * {@code JAZZER_FUZZ=1 mvn test -Dtest=VirtioNetFuzzTest -Djazzer.max_duration=10m}.
 */
@TestMethodOrder(MethodOrderer.OrderAnnotation.class)
class VirtioNetFuzzTest {
    static final long BUFFERS = 0x1000;

    @Order(1)
    @FuzzTest(maxDuration = "6s")
    void headersAndFramesNeverBreakTheDeviceUnlessShorterThanTheHeader(FuzzedDataProvider in) throws Exception {
        oneCase(in);
    }

    /** What an input made the device do. */
    enum Event { TX_SENT, TX_CHECKSUM_COMPLETED, TX_DROPPED, TX_SHORTER_THAN_HEADER, RX_DELIVERED, RX_DATA_VALID, RX_DROPPED }

    /** After the fuzz test, whose first run installs Jazzer's runtime, which FuzzedDataProviderImpl needs. */
    @Order(2)
    @Test
    void seedCorpusReachesEveryTransmitAndReceiveOutcome() throws Exception {
        var dir = VirtioNetFuzzTest.class.getResource("VirtioNetFuzzTestInputs/headersAndFramesNeverBreakTheDeviceUnlessShorterThanTheHeader");
        assertNotNull(dir, "seed corpus on the test class path");
        Set<Event> seen = EnumSet.noneOf(Event.class);
        try (Stream<Path> files = Files.list(Path.of(dir.toURI()))) {
            for (Path f : files.toList())
                try (FuzzedDataProviderImpl in = FuzzedDataProviderImpl.withJavaData(Files.readAllBytes(f))) {
                    seen.addAll(oneCase(in));
                }
        }
        assertEquals(EnumSet.allOf(Event.class), seen);
    }

    static Set<Event> oneCase(FuzzedDataProvider in) throws InterruptedException {
        long features = in.consumeLong() & (VirtioNet.F_CSUM | VirtioNet.F_GUEST_CSUM);
        List<byte[]> sent = new ArrayList<>();
        VirtioNet net = new VirtioNet(VirtioNetTest.MAC, (f, n) -> sent.add(Arrays.copyOf(f, n)), () -> {});
        net.negotiated(features);
        Set<Event> events = EnumSet.noneOf(Event.class);
        try (GuestMemory mem = new GuestMemory(1 << 20)) {
            GuestDma dma = new GuestDma(mem, null);
            if (in.consumeBoolean()) transmit(in, net, dma, sent, (features & VirtioNet.F_CSUM) != 0, events);
            else receive(in, net, dma, (features & VirtioNet.F_GUEST_CSUM) != 0, events);
        }
        return events;
    }

    private static void transmit(FuzzedDataProvider in, VirtioNet net, GuestDma dma, List<byte[]> sent, boolean csum, Set<Event> events) {
        byte[] header = new byte[VirtioNet.HEADER];
        header[0] = (byte) (in.consumeInt(0, 3) == 0 ? in.consumeByte() : in.consumeBoolean() ? VirtioNet.HDR_F_NEEDS_CSUM : 0);
        header[1] = (byte) (in.consumeInt(0, 7) == 0 ? in.consumeByte() : 0); // gso_type
        int frameLength = in.consumeInt(0, 1600);
        for (int at : new int[] {6, 8}) { // csum_start, csum_offset (le16): mostly inside the frame
            int v = in.consumeInt(0, 7) == 0 ? in.consumeInt(0, 0xFFFF) : in.consumeInt(0, frameLength + 2);
            header[at] = (byte) v;
            header[at + 1] = (byte) (v >>> 8);
        }
        byte[] frame = in.consumeBytes(frameLength);
        byte[] written = new byte[VirtioNet.HEADER + frame.length];
        System.arraycopy(header, 0, written, 0, header.length);
        System.arraycopy(frame, 0, written, header.length, frame.length);
        // Sometimes cut short of the header, sometimes followed by a zero-filled buffer up to past MAX_FRAME.
        int length = in.consumeInt(0, 15) == 0 ? in.consumeInt(0, VirtioNet.HEADER) : written.length;
        int extra = in.consumeInt(0, 15) == 0 ? in.consumeInt(0, VirtioNet.MAX_FRAME + 64) : 0;
        DescriptorChain c = chain(in, dma, BUFFERS, Arrays.copyOf(written, length), extra, false);
        byte[] bytes = Arrays.copyOf(Arrays.copyOf(written, length), length + extra); // the readable stream as the device sees it
        if (bytes.length >= VirtioNet.HEADER) header = Arrays.copyOf(bytes, VirtioNet.HEADER);
        long before = net.txFrames() + net.txDropped();
        try {
            assertEquals(0, net.handle(VirtioNet.TX, c), "nothing written into a transmit buffer");
        } catch (VirtqueueException e) {
            assertTrue(c.readableBytes() < VirtioNet.HEADER, "broken by a chain of " + c.readableBytes() + " bytes: " + e.getMessage());
            assertTrue(sent.isEmpty());
            events.add(Event.TX_SHORTER_THAN_HEADER);
            return;
        }
        assertEquals(before + 1, net.txFrames() + net.txDropped(), "every frame sent or counted as dropped");
        if (sent.isEmpty()) {
            // Only for a reason: no frame, one too long, a GSO type never offered, or a checksum the device may
            // not (F_CSUM not negotiated) or cannot (field past the frame's end) complete (5.1.6.2).
            long n = c.readableBytes() - VirtioNet.HEADER;
            boolean needsCsum = (header[0] & VirtioNet.HDR_F_NEEDS_CSUM) != 0;
            assertTrue(n == 0 || n > VirtioNet.MAX_FRAME || header[1] != 0
                    || needsCsum && (!csum || le16(header, 6) + le16(header, 8) + 2 > n), "a well-formed frame dropped");
            events.add(Event.TX_DROPPED);
            return;
        }
        events.add(Event.TX_SENT);
        byte[] out = sent.getFirst();
        long n = c.readableBytes() - VirtioNet.HEADER;
        assertEquals(n, out.length);
        assertTrue(n > 0 && n <= VirtioNet.MAX_FRAME);
        assertEquals(0, header[1], "a GSO frame was not offered and is dropped");
        byte[] expected = Arrays.copyOfRange(bytes, VirtioNet.HEADER, bytes.length);
        if ((header[0] & VirtioNet.HDR_F_NEEDS_CSUM) != 0) {
            assertTrue(csum, "NEEDS_CSUM honoured only after VIRTIO_NET_F_CSUM");
            int start = le16(header, 6), field = start + le16(header, 8);
            assertTrue(field + 2 <= out.length, "checksum field inside the frame");
            // 5.1.6.2: the complement of the ones' complement sum (RFC 1071) from csum_start to the end, taken
            // with the pseudo-header sum the driver left in the field, goes into the field (big-endian).
            int sum = ~fold(onesSum(expected, start, expected.length)) & 0xFFFF;
            assertEquals(sum, (out[field] & 0xFF) << 8 | out[field + 1] & 0xFF, "completed checksum");
            // And the receiver's check passes: pseudo-header sum plus the bytes with the checksum in place fold
            // to 0xFFFF, where the field is 16-bit aligned from csum_start as in TCP and UDP (an odd offset
            // straddles two words; Linux's skb_checksum_help stores it there all the same).
            long pseudo = (expected[field] & 0xFF) << 8 | expected[field + 1] & 0xFF;
            if ((field - start) % 2 == 0) assertEquals(0xFFFF, fold(onesSum(out, start, out.length) + pseudo), "receiver's check");
            events.add(Event.TX_CHECKSUM_COMPLETED);
            expected[field] = out[field];
            expected[field + 1] = out[field + 1];
        }
        assertArrayEquals(expected, out, "the frame after the header, unchanged");
    }

    private static void receive(FuzzedDataProvider in, VirtioNet net, GuestDma dma, boolean guestCsum, Set<Event> events) throws InterruptedException {
        Deque<DescriptorChain> posted = new ArrayDeque<>();
        List<DescriptorChain> buffers = new ArrayList<>();
        int count = in.consumeInt(0, 6);
        for (int i = 0; i < count; i++) {
            DescriptorChain c = chain(in, dma, BUFFERS + 0x2000L * i, new byte[in.consumeInt(0, 2000)], 0, true);
            posted.add(c);
            buffers.add(c);
        }
        List<byte[]> frames = new ArrayList<>();
        Set<byte[]> valid = Collections.newSetFromMap(new IdentityHashMap<>());
        for (int i = in.consumeInt(0, 6); i > 0; i--) {
            byte[] f = in.consumeBytes(in.consumeInt(0, 1600));
            // Some frames made into TCP or UDP over IPv4 or IPv6 with the right checksum, which the device must mark.
            if (in.consumeInt(0, 3) == 0 && asValidTransportPacket(f, in.consumeBoolean(), in.consumeBoolean())) valid.add(f);
            frames.add(f);
        }
        List<long[]> completed = new ArrayList<>(); // {buffer index, bytes written}
        net.attach(new DeviceQueues() {
            DescriptorChain last;
            @Override public DescriptorChain next(int queue) { assertEquals(VirtioNet.RX, queue); return last = posted.poll(); }
            @Override public void putBack(int queue) { posted.addFirst(last); }
            @Override public void complete(int queue, DescriptorChain chain, long written) { completed.add(new long[] {buffers.indexOf(chain), written}); }
            @Override public boolean flush(int queue) { return false; }
            @Override public void broken(String why) { fail("receive broke the device: " + why); }
        });
        for (byte[] f : frames) assertTrue(net.receive(f));
        net.serviceHost();
        // Frames in order into the next buffer with room for header and frame; a buffer too small drops the frame and serves the next.
        int b = 0, done = 0, dropped = 0;
        for (byte[] f : frames) {
            if (b == buffers.size()) break;
            DescriptorChain c = buffers.get(b);
            if (c.writableBytes() < VirtioNet.HEADER + f.length) {
                dropped++;
                events.add(Event.RX_DROPPED);
                continue;
            }
            assertTrue(done < completed.size(), "frame " + done + " delivered");
            assertArrayEquals(new long[] {b, VirtioNet.HEADER + f.length}, completed.get(done), "frame " + done + " into buffer " + b);
            byte[] got = new byte[VirtioNet.HEADER + f.length];
            int[] at = {0};
            try {
                c.pieces(true, 0, got.length, (pa, len) -> { dma.read(pa, got, at[0], len); at[0] += len; });
            } catch (IOException e) {
                throw new AssertionError(e);
            }
            assertTrue(got[0] == 0 || guestCsum && got[0] == VirtioNet.HDR_F_DATA_VALID, "flags " + got[0]);
            if (guestCsum && valid.contains(f)) assertEquals(VirtioNet.HDR_F_DATA_VALID, got[0], "a right TCP/UDP checksum marked DATA_VALID");
            events.add(got[0] == VirtioNet.HDR_F_DATA_VALID ? Event.RX_DATA_VALID : Event.RX_DELIVERED);
            assertArrayEquals(new byte[] {0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 1, 0}, withoutFlags(got), "header: num_buffers 1, no GSO");
            assertArrayEquals(f, Arrays.copyOfRange(got, VirtioNet.HEADER, got.length));
            b++;
            done++;
        }
        assertEquals(done, completed.size());
        assertEquals(done, net.rxFrames());
        assertEquals(dropped, net.rxDropped());
    }

    /**
     * Rewrites {@code f} into an Ethernet frame carrying a TCP or UDP packet over IPv4 (RFC 791, no options, not
     * a fragment) or IPv6 (RFC 8200, no extension headers) whose transport checksum is right (RFC 1071 over the
     * pseudo-header and the segment); the other bytes stay as the fuzzer chose. False when {@code f} is too short.
     */
    private static boolean asValidTransportPacket(byte[] f, boolean v6, boolean tcp) {
        int ip = 14, ipHeader = v6 ? 40 : 20, l4 = ip + ipHeader, l4Length = f.length - l4;
        if (l4Length < (tcp ? 20 : 8)) return false;
        int protocol = tcp ? 6 : 17;
        f[12] = (byte) (v6 ? 0x86 : 0x08);
        f[13] = (byte) (v6 ? 0xDD : 0x00);
        long pseudo;
        if (v6) {
            f[ip] = 0x60;
            be16(f, ip + 4, l4Length);
            f[ip + 6] = (byte) protocol;
            pseudo = onesSum(f, ip + 8, ip + 40) + protocol + l4Length;
        } else {
            f[ip] = 0x45;
            be16(f, ip + 2, ipHeader + l4Length);
            be16(f, ip + 6, 0);
            f[ip + 9] = (byte) protocol;
            pseudo = onesSum(f, ip + 12, ip + 20) + protocol + l4Length;
        }
        int field = l4 + (tcp ? 16 : 6);
        be16(f, field, 0);
        int c = ~fold(onesSum(f, l4, f.length) + pseudo) & 0xFFFF;
        be16(f, field, c == 0 && !tcp ? 0xFFFF : c); // UDP sends a zero sum as all ones (RFC 768)
        return true;
    }

    private static void be16(byte[] b, int i, int v) {
        b[i] = (byte) (v >>> 8);
        b[i + 1] = (byte) v;
    }

    private static byte[] withoutFlags(byte[] got) {
        byte[] h = Arrays.copyOf(got, VirtioNet.HEADER);
        h[0] = 0;
        return h;
    }

    /**
     * A chain holding {@code content} split over up to four descriptors scattered in the 8 KiB from {@code base}, then
     * {@code extra} more bytes of zeros; device-writable buffers when {@code writable}.
     */
    private static DescriptorChain chain(FuzzedDataProvider in, GuestDma dma, long base, byte[] content, int extra, boolean writable) {
        DescriptorChain c = new DescriptorChain(dma, 0);
        long addr = base + in.consumeInt(0, 0x1000);
        int done = 0;
        for (int parts = in.consumeInt(1, 4); parts > 0 && done < content.length; parts--) {
            int len = parts == 1 ? content.length - done : in.consumeInt(0, content.length - done);
            dma.write(addr, content, done, len);
            c.add(addr, len, writable);
            done += len;
            addr += len + in.consumeInt(0, 64);
        }
        if (extra > 0 || c.segments() == 0) c.add(addr, extra, writable);
        return c;
    }

    private static int le16(byte[] b, int i) { return b[i] & 0xFF | (b[i + 1] & 0xFF) << 8; }

    /** The ones' complement sum (RFC 1071) of big-endian 16-bit words in [from, to), not folded. */
    private static long onesSum(byte[] b, int from, int to) {
        long s = 0;
        for (int i = from; i < to; i += 2) s += (b[i] & 0xFF) << 8 | (i + 1 < to ? b[i + 1] & 0xFF : 0);
        return s;
    }

    private static int fold(long s) {
        while (s > 0xFFFF) s = (s & 0xFFFF) + (s >>> 16);
        return (int) s;
    }
}

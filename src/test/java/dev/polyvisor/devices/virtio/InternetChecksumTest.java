package dev.polyvisor.devices.virtio;

import org.junit.jupiter.api.Test;

import java.nio.ByteBuffer;

import static org.junit.jupiter.api.Assertions.*;

/** RFC 1071 sums, partial-checksum completion and TCP/UDP checksum checks over IPv4 and IPv6 frames. */
class InternetChecksumTest {
    @Test
    void rfc1071ExampleSum() {
        // RFC 1071 1.2 (C): 0001 f203 f4f5 f6f7 sums to 2ddf0, folded ddf2.
        byte[] b = {0x00, 0x01, (byte) 0xf2, 0x03, (byte) 0xf4, (byte) 0xf5, (byte) 0xf6, (byte) 0xf7};
        assertEquals(0xddf2, InternetChecksum.fold(InternetChecksum.sum(b, 0, b.length, 0)));
        assertEquals(0x0100, InternetChecksum.fold(InternetChecksum.sum(new byte[] {1}, 0, 1, 0)), "an odd byte pads with zero");
    }

    /** An Ethernet/IPv4/UDP frame from 10.0.0.2:1234 to 10.0.0.1:5678 with {@code payload}, checksum field 0. */
    static byte[] udp4(byte[] payload) {
        ByteBuffer b = ByteBuffer.allocate(14 + 20 + 8 + payload.length);
        b.put(new byte[12]).putShort((short) 0x0800);
        b.put((byte) 0x45).put((byte) 0).putShort((short) (28 + payload.length)).putInt(0).put((byte) 64).put((byte) 17).putShort((short) 0);
        b.put(new byte[] {10, 0, 0, 2}).put(new byte[] {10, 0, 0, 1});
        b.putShort((short) 1234).putShort((short) 5678).putShort((short) (8 + payload.length)).putShort((short) 0).put(payload);
        return b.array();
    }

    /** Puts the pseudo-header sum in the UDP checksum field, as a driver does before asking for NEEDS_CSUM. */
    static void partial(byte[] f) {
        long s = InternetChecksum.sum(f, 26, 34, 0) + 17 + (f.length - 34);
        int p = InternetChecksum.fold(s);
        f[40] = (byte) (p >>> 8);
        f[41] = (byte) p;
    }

    @Test
    void completingAPartialChecksumGivesAValidPacket() {
        byte[] f = udp4("checksum me!".getBytes());
        partial(f);
        assertFalse(InternetChecksum.transportChecksumValid(f) && (f[40] | f[41]) != 0, "only the pseudo-header sum yet");
        assertTrue(InternetChecksum.complete(f, f.length, 34, 6));
        assertTrue(InternetChecksum.transportChecksumValid(f));
        f[45] ^= 1;
        assertFalse(InternetChecksum.transportChecksumValid(f), "a flipped payload bit breaks it");
        assertFalse(InternetChecksum.complete(f, f.length, 34, f.length), "offsets beyond the frame are refused");
    }

    @Test
    void udpOverIpv4WithoutAChecksumIsValidAndOtherProtocolsAreNotJudged() {
        assertTrue(InternetChecksum.transportChecksumValid(udp4(new byte[3])), "checksum 0: none sent (RFC 768)");
        byte[] f = udp4(new byte[3]);
        f[23] = 1; // ICMP
        assertFalse(InternetChecksum.transportChecksumValid(f));
        byte[] frag = udp4(new byte[3]);
        frag[20] = 0x20; // more fragments
        assertFalse(InternetChecksum.transportChecksumValid(frag));
        assertFalse(InternetChecksum.transportChecksumValid(new byte[20]), "too short for any IP packet");
    }

    @Test
    void tcpOverIpv6IsCheckedWithItsPseudoHeader() {
        ByteBuffer b = ByteBuffer.allocate(14 + 40 + 20);
        b.put(new byte[12]).putShort((short) 0x86DD);
        b.putInt(0x6000_0000).putShort((short) 20).put((byte) 6).put((byte) 64);
        for (int i = 0; i < 32; i++) b.put((byte) (i + 1)); // source and destination addresses
        b.putShort((short) 80).putShort((short) 4000).putInt(1).putInt(0).putShort((short) 0x5002).putShort((short) 1000).putInt(0);
        byte[] f = b.array();
        long s = InternetChecksum.sum(f, 22, 54, 0) + 6 + 20;
        int c = ~InternetChecksum.fold(InternetChecksum.sum(f, 54, 74, s)) & 0xFFFF;
        f[70] = (byte) (c >>> 8);
        f[71] = (byte) c;
        assertTrue(InternetChecksum.transportChecksumValid(f));
        f[30] ^= 0x40; // a source address bit: the pseudo-header no longer matches
        assertFalse(InternetChecksum.transportChecksumValid(f));
    }

    /** RFC 1071's definition, one big-endian 16-bit word at a time. */
    private static long wordSum(byte[] b, int from, int to) {
        long s = 0;
        for (int i = from; i < to; i += 2) s += (b[i] & 0xFF) << 8 | (i + 1 < to ? b[i + 1] & 0xFF : 0);
        return s;
    }

    @Test
    void theEightByteSumFoldsToTheWordByWordSumAtEveryAlignmentAndLength() {
        java.util.Random rnd = new java.util.Random(13);
        byte[] b = new byte[70_000];
        rnd.nextBytes(b);
        for (int from = 0; from < 9; from++)
            for (int to = from; to < from + 40; to++)
                assertEquals(InternetChecksum.fold(wordSum(b, from, to)), InternetChecksum.fold(InternetChecksum.sum(b, from, to, 0)),
                        "bytes " + from + ".." + to);
        assertEquals(InternetChecksum.fold(wordSum(b, 3, b.length) + 0x1234), InternetChecksum.fold(InternetChecksum.sum(b, 3, b.length, 0x1234)),
                "a 64 KiB frame with a pseudo-header sum");
        byte[] ones = new byte[65536];
        java.util.Arrays.fill(ones, (byte) 0xFF);
        assertEquals(0xFFFF, InternetChecksum.fold(InternetChecksum.sum(ones, 0, ones.length, 0)), "all ones stays 0xFFFF, never 0");
        assertEquals(0, InternetChecksum.fold(InternetChecksum.sum(new byte[64], 0, 64, 0)), "all zeros sums to 0");
    }
}

package dev.polyvisor.devices.virtio;

import java.lang.invoke.MethodHandles;
import java.lang.invoke.VarHandle;
import java.nio.ByteOrder;

/**
 * The Internet checksum (RFC 1071: the 16-bit ones' complement of the ones' complement sum of the data as
 * big-endian 16-bit words) over Ethernet frames: completing a partial checksum a driver left for the device
 * (virtio 1.2 5.1.6.2, VIRTIO_NET_HDR_F_NEEDS_CSUM) and checking the TCP or UDP checksum of a received
 * IPv4/IPv6 packet (RFC 793, RFC 768, RFC 8200 8.1 for the pseudo-headers).
 */
final class InternetChecksum {
    static final int ETH_HEADER = 14, IPV4 = 0x0800, IPV6 = 0x86DD, TCP = 6, UDP = 17;

    private InternetChecksum() {}

    private static final VarHandle BE64 = MethodHandles.byteArrayViewVarHandle(long[].class, ByteOrder.BIG_ENDIAN);

    /**
     * The ones' complement sum of bytes [from, to) of {@code b}, added to {@code sum}, not folded. Eight bytes
     * at a time: a big-endian 64-bit word holds four 16-bit words, and adding its two 32-bit halves gives
     * a sum congruent to theirs modulo 0xFFFF, which {@link #fold} then reduces (RFC 1071 2(C), "Parallel
     * Summation"); a long cannot overflow for any array (at most 2^28 words of at most 2^33 each).
     */
    static long sum(byte[] b, int from, int to, long sum) {
        int i = from;
        for (; i + 8 <= to; i += 8) {
            long v = (long) BE64.get(b, i);
            sum += (v >>> 32) + (v & 0xFFFF_FFFFL);
        }
        for (; i + 1 < to; i += 2) sum += (b[i] & 0xFF) << 8 | b[i + 1] & 0xFF;
        if (i < to) sum += (b[i] & 0xFF) << 8;
        return sum;
    }

    static int fold(long sum) {
        while ((sum >>> 16) != 0) sum = (sum & 0xFFFF) + (sum >>> 16);
        return (int) sum;
    }

    /**
     * Completes a partial checksum: the ones' complement sum from {@code start} to {@code length} (the field at
     * {@code start + offset} already holds the pseudo-header sum the driver put there), complemented, stored
     * big-endian at {@code start + offset}. False when the offsets do not fit the frame.
     */
    static boolean complete(byte[] frame, int length, int start, int offset) {
        int at = start + offset;
        if (start < 0 || offset < 0 || at + 2 > length) return false;
        int c = ~fold(sum(frame, start, length, 0)) & 0xFFFF;
        frame[at] = (byte) (c >>> 8);
        frame[at + 1] = (byte) c;
        return true;
    }

    private static int be16(byte[] b, int i) { return (b[i] & 0xFF) << 8 | b[i + 1] & 0xFF; }

    /**
     * Whether {@code frame} is an unfragmented IPv4 or IPv6 (no extension headers) TCP or UDP packet whose
     * transport checksum is right; false for anything else (which the guest then checks itself).
     */
    static boolean transportChecksumValid(byte[] frame) {
        if (frame.length < ETH_HEADER + 20) return false;
        int type = be16(frame, 12), ip = ETH_HEADER;
        long pseudo;
        int l4, l4Length, protocol;
        if (type == IPV4) {
            int ihl = (frame[ip] & 0x0F) * 4, total = be16(frame, ip + 2);
            if ((frame[ip] & 0xF0) != 0x40 || ihl < 20 || total < ihl || ip + total > frame.length) return false;
            if ((be16(frame, ip + 6) & 0x3FFF) != 0) return false; // a fragment: the checksum covers the whole datagram
            protocol = frame[ip + 9] & 0xFF;
            l4 = ip + ihl;
            l4Length = total - ihl;
            pseudo = sum(frame, ip + 12, ip + 20, 0) + protocol + l4Length;
        } else if (type == IPV6) {
            if (frame.length < ip + 40 || (frame[ip] & 0xF0) != 0x60) return false;
            protocol = frame[ip + 6] & 0xFF;
            l4 = ip + 40;
            l4Length = be16(frame, ip + 4);
            if (l4 + l4Length > frame.length) return false;
            pseudo = sum(frame, ip + 8, ip + 40, 0) + protocol + l4Length;
        } else {
            return false;
        }
        if (protocol == TCP) {
            if (l4Length < 20) return false;
        } else if (protocol == UDP) {
            if (l4Length < 8) return false;
            if (type == IPV4 && be16(frame, l4 + 6) == 0) return true; // no checksum sent (RFC 768)
        } else {
            return false;
        }
        return fold(sum(frame, l4, l4 + l4Length, pseudo)) == 0xFFFF;
    }
}

package dev.polyvisor.vmm.acpi;

import java.io.ByteArrayOutputStream;
import java.nio.charset.StandardCharsets;

/**
 * Builds one system description table: the 36-byte header of ACPI 6.5 5.2.6 (Signature, Length,
 * Revision, Checksum, OEMID, OEM Table ID, OEM Revision, Creator ID, Creator Revision) followed by the
 * body, with Length and Checksum (all bytes sum to zero) filled in by {@link #build()}.
 */
final class Sdt {
    static final String OEM_ID = "PLYVSR", OEM_TABLE_ID = "POLYVISR", CREATOR_ID = "PVSR";
    static final int HEADER_LEN = 36;
    private final ByteArrayOutputStream out = new ByteArrayOutputStream();

    Sdt(String signature, int revision) {
        ascii(signature, 4);
        u32(0);           // Length, patched
        u8(revision);
        u8(0);            // Checksum, patched
        ascii(OEM_ID, 6);
        ascii(OEM_TABLE_ID, 8);
        u32(1);           // OEM Revision
        ascii(CREATOR_ID, 4);
        u32(1);           // Creator Revision
    }

    Sdt u8(int v) { out.write(v); return this; }

    Sdt u16(int v) { u8(v); u8(v >> 8); return this; }

    Sdt u32(long v) { u16((int) v); u16((int) (v >> 16)); return this; }

    Sdt u64(long v) { u32(v); u32(v >>> 32); return this; }

    Sdt bytes(byte[] b) { out.writeBytes(b); return this; }

    Sdt zeros(int n) { for (int i = 0; i < n; i++) u8(0); return this; }

    Sdt ascii(String s, int len) {
        byte[] b = s.getBytes(StandardCharsets.US_ASCII);
        for (int i = 0; i < len; i++) u8(i < b.length ? b[i] : ' ');
        return this;
    }

    /** A Generic Address Structure (ACPI 6.5 5.2.3.2), 12 bytes. */
    Sdt gas(int spaceId, int bitWidth, int bitOffset, int accessSize, long address) {
        return u8(spaceId).u8(bitWidth).u8(bitOffset).u8(accessSize).u64(address);
    }

    int size() { return out.size(); }

    byte[] build() {
        byte[] t = out.toByteArray();
        int len = t.length;
        t[4] = (byte) len; t[5] = (byte) (len >> 8); t[6] = (byte) (len >> 16); t[7] = (byte) (len >> 24);
        t[9] = checksum(t, 0, len);
        return t;
    }

    /** The byte that makes {@code b[off..off+len)} sum to zero (with that byte currently zero). */
    static byte checksum(byte[] b, int off, int len) {
        int sum = 0;
        for (int i = off; i < off + len; i++) sum += b[i];
        return (byte) -sum;
    }

    static int sum(byte[] b, int off, int len) {
        int s = 0;
        for (int i = off; i < off + len; i++) s += b[i];
        return s & 0xFF;
    }
}

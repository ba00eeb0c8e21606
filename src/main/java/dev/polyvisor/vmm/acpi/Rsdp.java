package dev.polyvisor.vmm.acpi;

import java.nio.charset.StandardCharsets;

/**
 * Root System Description Pointer, revision 2 (ACPI 6.5 5.2.5.3), 36 bytes: "RSD PTR ", checksum over
 * the first 20 bytes, OEMID, revision 2, RsdtAddress, Length, XsdtAddress, extended checksum over all
 * 36 bytes. The OS finds it on a 16-byte boundary in 0xE0000-0xFFFFF (5.2.5.1), or through the boot
 * protocol's acpi_rsdp_addr.
 */
public final class Rsdp {
    public static final int LENGTH = 36;
    public static final long SEARCH_START = 0xE0000, SEARCH_END = 0x100000;

    private Rsdp() {}

    public static byte[] build(long rsdtAddress, long xsdtAddress) {
        byte[] b = new byte[LENGTH];
        byte[] sig = "RSD PTR ".getBytes(StandardCharsets.US_ASCII);
        System.arraycopy(sig, 0, b, 0, 8);
        byte[] oem = Sdt.OEM_ID.getBytes(StandardCharsets.US_ASCII);
        System.arraycopy(oem, 0, b, 9, 6);
        b[15] = 2;
        put32(b, 16, rsdtAddress);
        put32(b, 20, LENGTH);
        put32(b, 24, xsdtAddress);
        put32(b, 28, xsdtAddress >>> 32);
        b[8] = Sdt.checksum(b, 0, 20);
        b[32] = Sdt.checksum(b, 0, LENGTH);
        return b;
    }

    private static void put32(byte[] b, int off, long v) {
        for (int i = 0; i < 4; i++) b[off + i] = (byte) (v >>> (8 * i));
    }
}

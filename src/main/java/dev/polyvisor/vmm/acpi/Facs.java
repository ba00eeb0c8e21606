package dev.polyvisor.vmm.acpi;

import java.nio.charset.StandardCharsets;

/**
 * Firmware ACPI Control Structure (ACPI 6.5 5.2.10), 64 bytes, 64-byte aligned, no checksum: signature,
 * length, hardware signature, waking vectors, the global lock and version 2. A non-hardware-reduced
 * FADT needs one (ACPICA looks up the global lock in it).
 */
public final class Facs {
    public static final int LENGTH = 64;

    private Facs() {}

    public static byte[] build() {
        byte[] b = new byte[LENGTH];
        System.arraycopy("FACS".getBytes(StandardCharsets.US_ASCII), 0, b, 0, 4);
        b[4] = LENGTH;
        b[32] = 2; // Version
        return b;
    }
}

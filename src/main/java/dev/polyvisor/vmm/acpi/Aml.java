package dev.polyvisor.vmm.acpi;

import java.io.ByteArrayOutputStream;
import java.nio.charset.StandardCharsets;

/**
 * The few AML encodings the DSDT needs (ACPI 6.5 chapter 20, "ACPI Machine Language Specification")
 * and the resource descriptors of a _CRS buffer (ACPI 6.5 6.4, "Resource Data Types for ACPI").
 */
final class Aml {
    static final int NAME_OP = 0x08, PACKAGE_OP = 0x12, SCOPE_OP = 0x10, BUFFER_OP = 0x11, BYTE_PREFIX = 0x0A,
            WORD_PREFIX = 0x0B, DWORD_PREFIX = 0x0C, ZERO_OP = 0x00, ONE_OP = 0x01, EXT_OP_PREFIX = 0x5B, DEVICE_OP = 0x82;

    private Aml() {}

    /**
     * PkgLength (20.2.4): the length of the package including the PkgLength bytes themselves; one byte
     * for totals below 64, else a lead byte holding the byte count (bits 7:6) and the low nibble, then
     * the remaining bits in 1-3 following bytes.
     */
    static byte[] pkgLength(int contentLength) {
        for (int n = 1; n <= 4; n++) {
            int total = contentLength + n;
            if (n == 1 && total < 0x40) return new byte[] {(byte) total};
            if (n > 1 && total < 1 << (4 + 8 * (n - 1))) {
                byte[] b = new byte[n];
                b[0] = (byte) ((n - 1) << 6 | total & 0xF);
                for (int i = 1; i < n; i++) b[i] = (byte) (total >>> (4 + 8 * (i - 1)));
                return b;
            }
        }
        throw new IllegalArgumentException("AML package too long: " + contentLength);
    }

    static byte[] concat(byte[]... parts) {
        ByteArrayOutputStream o = new ByteArrayOutputStream();
        for (byte[] p : parts) o.writeBytes(p);
        return o.toByteArray();
    }

    /** A NameSeg: four characters, padded with '_' (20.2.2). */
    static byte[] nameSeg(String s) {
        if (s.length() > 4) throw new IllegalArgumentException("NameSeg too long: " + s);
        return (s + "____".substring(s.length())).getBytes(StandardCharsets.US_ASCII);
    }

    /** An operator followed by PkgLength and its body. */
    static byte[] pkg(byte[] opcode, byte[] body) { return concat(opcode, pkgLength(body.length), body); }

    /** Name(seg, object). */
    static byte[] name(String seg, byte[] object) { return concat(new byte[] {NAME_OP}, nameSeg(seg), object); }

    /** Scope(seg) { terms }. */
    static byte[] scope(String seg, byte[]... terms) { return pkg(new byte[] {SCOPE_OP}, concat(nameSeg(seg), concat(terms))); }

    /** Device(seg) { terms }. */
    static byte[] device(String seg, byte[]... terms) {
        return pkg(new byte[] {EXT_OP_PREFIX, (byte) DEVICE_OP}, concat(nameSeg(seg), concat(terms)));
    }

    /** The shortest integer encoding (ZeroOp, OneOp, BytePrefix, WordPrefix or DWordPrefix), as iasl emits it. */
    static byte[] integer(long v) {
        if (v == 0) return new byte[] {ZERO_OP};
        if (v == 1) return new byte[] {ONE_OP};
        if (v < 0x100) return new byte[] {BYTE_PREFIX, (byte) v};
        if (v < 0x10000) return new byte[] {WORD_PREFIX, (byte) v, (byte) (v >> 8)};
        return new byte[] {DWORD_PREFIX, (byte) v, (byte) (v >> 8), (byte) (v >> 16), (byte) (v >> 24)};
    }

    /** A DWord constant even for small values (how EisaId is emitted). */
    static byte[] dword(int v) { return new byte[] {DWORD_PREFIX, (byte) v, (byte) (v >> 8), (byte) (v >> 16), (byte) (v >> 24)}; }

    /** Buffer() { bytes } with the size as an integer. */
    static byte[] buffer(byte[] data) { return pkg(new byte[] {BUFFER_OP}, concat(integer(data.length), data)); }

    /** Package() { integers }. */
    static byte[] packageOf(long... values) {
        ByteArrayOutputStream o = new ByteArrayOutputStream();
        o.write(values.length);
        for (long v : values) o.writeBytes(integer(v));
        return pkg(new byte[] {PACKAGE_OP}, o.toByteArray());
    }

    /** Package() { terms }: each element already encoded (nested packages, names...). */
    static byte[] packageOfTerms(byte[]... elements) {
        if (elements.length > 255) throw new IllegalArgumentException("a Package holds at most 255 elements");
        return pkg(new byte[] {PACKAGE_OP}, concat(new byte[] {(byte) elements.length}, concat(elements)));
    }

    /** Resource-template builder (ACPI 6.5 6.4.2 small and 6.4.3 large descriptors). */
    static final class Resources {
        static final int TYPE_MEMORY = 0, TYPE_IO = 1, TYPE_BUS = 2;
        /** General flags: producer, MinFixed, MaxFixed, positive decode. */
        static final int MIN_MAX_FIXED = 0x0C;
        private final ByteArrayOutputStream o = new ByteArrayOutputStream();

        private void u16(int v) { o.write(v); o.write(v >> 8); }

        private void u32(long v) { u16((int) v); u16((int) (v >> 16)); }

        /** Word Address Space Descriptor (6.4.3.5.3), type 0x88: bus numbers or I/O. */
        Resources word(int resourceType, int typeFlags, int min, int max) {
            o.write(0x88);
            u16(0x0D);
            o.write(resourceType);
            o.write(MIN_MAX_FIXED);
            o.write(typeFlags);
            u16(0);           // granularity
            u16(min);
            u16(max);
            u16(0);           // translation offset
            u16(max - min + 1);
            return this;
        }

        /** I/O Port Descriptor (6.4.2.5), type 0x47, 16-bit decode. */
        Resources io(int min, int max, int align, int length) {
            o.write(0x47);
            o.write(0x01);
            u16(min);
            u16(max);
            o.write(align);
            o.write(length);
            return this;
        }

        /** DWord Address Space Descriptor (6.4.3.5.2), type 0x87, memory; cacheable sets the MEM bits to 01. */
        Resources dwordMemory(boolean cacheable, long min, long max) {
            o.write(0x87);
            u16(0x17);
            o.write(TYPE_MEMORY);
            o.write(MIN_MAX_FIXED);
            o.write((cacheable ? 0x02 : 0x00) | 0x01); // MEM attribute, read-write
            u32(0);           // granularity
            u32(min);
            u32(max);
            u32(0);           // translation offset
            u32(max - min + 1);
            return this;
        }

        /** The template ended by an End Tag (6.4.2.9) whose checksum byte 0 means "treat as valid". */
        byte[] build() {
            o.write(0x79);
            o.write(0x00);
            return o.toByteArray();
        }
    }
}

package dev.polyvisor.vmm.acpi;

/**
 * A minimal Differentiated System Description Table (ACPI 6.5 5.2.11.1): the header and an AML body
 * that declares, at the root scope,
 * <pre>  Name (_S5, Package () { 5, 5, 0, 0 })</pre>
 * so that Linux's acpi_sleep_init finds S5 and power-off writes SLP_TYP=5 with SLP_EN to PM1a_CNT.
 * Encoding (ACPI 6.5 20.2): NameOp 0x08, NameSeg "_S5_", PackageOp 0x12, PkgLength, NumElements 4,
 * then BytePrefix 0x0A 0x05 twice and ZeroOp 0x00 twice. Revision 2 (64-bit AML integers).
 */
public final class Dsdt {
    /** The AML of Name(_S5, Package(){5,5,0,0}). */
    static final byte[] S5 = {
            0x08, '_', 'S', '5', '_',     // NameOp, NameString "_S5_"
            0x12, 0x08, 0x04,             // PackageOp, PkgLength (8 bytes incl. itself), NumElements 4
            0x0A, 0x05, 0x0A, 0x05,       // BytePrefix 5 (SLP_TYPa), BytePrefix 5 (SLP_TYPb)
            0x00, 0x00};                  // ZeroOp, ZeroOp (reserved)

    private Dsdt() {}

    public static byte[] build() { return new Sdt("DSDT", 2).bytes(S5).build(); }
}

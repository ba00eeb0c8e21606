package dev.polyvisor.vmm.acpi;

/**
 * A minimal Differentiated System Description Table (ACPI 6.5 5.2.11.1): the header and an AML body
 * equivalent to
 * <pre>
 *   Name (_S5, Package () { 5, 5, 0, 0 })
 *   Scope (\_SB) { Device (PCI0) { Name (_HID, EisaId ("PNP0A03")) Name (_UID, Zero) } }
 * </pre>
 * \_S5 lets Linux's acpi_sleep_init find S5, so power-off writes SLP_TYP=5 with SLP_EN to PM1a_CNT.
 * The PCI0 root bridge is what makes an ACPI kernel scan PCI bus 0 through configuration mechanism 1
 * (x86 Linux enumerates PCI only below PNP0A03 devices when ACPI is on); without _CRS it uses the
 * default I/O and memory windows. Encoding (ACPI 6.5 chapter 20): NameOp 0x08, PackageOp 0x12,
 * ScopeOp 0x10, DeviceOp 0x5B 0x82, single-byte PkgLengths, BytePrefix 0x0A, DWordPrefix 0x0C, ZeroOp
 * 0x00; byte-identical to what iasl 20200925 emits for the source above. Revision 2 (64-bit integers).
 */
public final class Dsdt {
    /** The AML of Name(_S5, Package(){5,5,0,0}). */
    static final byte[] S5 = {
            0x08, '_', 'S', '5', '_',     // NameOp, NameString "_S5_"
            0x12, 0x08, 0x04,             // PackageOp, PkgLength (8 bytes incl. itself), NumElements 4
            0x0A, 0x05, 0x0A, 0x05,       // BytePrefix 5 (SLP_TYPa), BytePrefix 5 (SLP_TYPb)
            0x00, 0x00};                  // ZeroOp, ZeroOp (reserved)

    /** EisaId("PNP0A03"), the PCI host bridge, as a DWord: compressed vendor "PNP" then product 0x0A03. */
    static final int PNP0A03 = 0x030A_D041;

    /** The AML of Scope(\_SB) { Device(PCI0) { Name(_HID, EisaId("PNP0A03")) Name(_UID, Zero) } }. */
    static final byte[] PCI0 = {
            0x10, 0x1C, '_', 'S', 'B', '_',                    // ScopeOp, PkgLength 28, "_SB_"
            0x5B, (byte) 0x82, 0x15, 'P', 'C', 'I', '0',       // DeviceOp, PkgLength 21, "PCI0"
            0x08, '_', 'H', 'I', 'D', 0x0C, 0x41, (byte) 0xD0, 0x0A, 0x03, // Name(_HID, DWord 0x030AD041)
            0x08, '_', 'U', 'I', 'D', 0x00};                   // Name(_UID, Zero)

    private Dsdt() {}

    public static byte[] build() { return new Sdt("DSDT", 2).bytes(S5).bytes(PCI0).build(); }
}

package dev.polyvisor.vmm.acpi;

import dev.polyvisor.devices.PciIntxRouting;

/**
 * A minimal Differentiated System Description Table (ACPI 6.5 5.2.11.1): the header and an AML body
 * equivalent to
 * <pre>
 *   Name (_S5, Package () { 5, 5, 0, 0 })
 *   Scope (\_SB) { Device (PCI0) { Name (_HID, EisaId ("PNP0A03")) Name (_UID, Zero)
 *       Name (_CRS, ResourceTemplate () { WordBusNumber 0-0xFF, IO 0xCF8 len 8, WordIO 0-0xCF7,
 *           WordIO 0xD00-0xFFFF, DWordMemory 0xA0000-0xBFFFF, DWordMemory 0xC0000000-0xFEBFFFFF })
 *       Name (_PRT, Package () { Package () { 0xFFFF, Zero, Zero, 16 }, Package () { 0xFFFF, One, Zero, 17 },
 *           ... one per slot 0-31 and pin INTA#-INTD#: { (slot << 16) | 0xFFFF, pin, Zero, 16 + (slot + pin) % 8 } }) } }
 * </pre>
 * \_S5 lets Linux's acpi_sleep_init find S5, so power-off writes SLP_TYP=5 with SLP_EN to PM1a_CNT.
 * The PCI0 root bridge is what makes an ACPI kernel scan PCI bus 0 through configuration mechanism 1
 * (x86 Linux enumerates PCI only below PNP0A03 devices when ACPI is on); its _CRS gives the bus range
 * and the windows PCI BARs may be placed in (the memory window is the e820 PCI hole). Its _PRT (ACPI 6.5
 * 6.2.13) routes every slot's INTx pins straight to IOAPIC GSIs (source Zero: no link device), as
 * {@link dev.polyvisor.devices.PciIntxRouting} wires them, so a driver without MSI-X still gets its
 * interrupts (Linux with pci=nomsi). The encoding
 * ({@link Aml}) is byte-identical to what iasl 20200925 emits for the source above. Revision 2.
 */
public final class Dsdt {
    /** EisaId("PNP0A03"), the PCI host bridge, as a DWord: compressed vendor "PNP" then product 0x0A03. */
    static final int PNP0A03 = 0x030A_D041;
    /** The 32-bit PCI memory window: from the e820 PCI hole to the IOAPIC. */
    static final long PCI_MEM_BASE = E820Map.PCI_HOLE, PCI_MEM_LIMIT = 0xFEBF_FFFFL;

    private Dsdt() {}

    /** The root bridge's current resources: bus 0-255, ports 0xCF8-0xCFF, I/O and memory windows. */
    static byte[] pci0Resources() {
        return new Aml.Resources()
                .word(Aml.Resources.TYPE_BUS, 0x00, 0x00, 0xFF)
                .io(0xCF8, 0xCF8, 1, 8)
                .word(Aml.Resources.TYPE_IO, 0x03, 0x0000, 0x0CF7)   // ISA ranges: entire range
                .word(Aml.Resources.TYPE_IO, 0x03, 0x0D00, 0xFFFF)
                .dwordMemory(true, 0xA0000, 0xBFFFF)                 // legacy VGA window
                .dwordMemory(false, PCI_MEM_BASE, PCI_MEM_LIMIT)
                .build();
    }

    /** The DSDT's AML body. */
    static byte[] aml() {
        return Aml.concat(
                Aml.name("_S5", Aml.packageOf(5, 5, 0, 0)),
                Aml.scope("_SB", Aml.device("PCI0",
                        Aml.name("_HID", Aml.dword(PNP0A03)),
                        Aml.name("_UID", Aml.integer(0)),
                        Aml.name("_CRS", Aml.buffer(pci0Resources())),
                        Aml.name("_PRT", routingTable()))));
    }

    /** _PRT: {address (slot << 16 | 0xFFFF: every function), pin, source (Zero: a GSI), GSI} per slot and pin. */
    static byte[] routingTable() {
        byte[][] entries = new byte[32 * 4][];
        for (int slot = 0; slot < 32; slot++)
            for (int pin = 0; pin < 4; pin++)
                entries[slot * 4 + pin] = Aml.packageOf((long) slot << 16 | 0xFFFF, pin, 0, PciIntxRouting.gsi(slot, pin));
        return Aml.packageOfTerms(entries);
    }

    public static byte[] build() { return new Sdt("DSDT", 2).bytes(aml()).build(); }
}

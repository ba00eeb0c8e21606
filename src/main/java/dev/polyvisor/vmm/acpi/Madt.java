package dev.polyvisor.vmm.acpi;

/**
 * Multiple APIC Description Table (ACPI 6.5 5.2.12): Local Interrupt Controller Address 0xFEE00000,
 * flag PCAT_COMPAT (dual 8259s present), then the interrupt controller structures:
 * a Processor Local APIC (type 0, 5.2.12.2) per vCPU, the I/O APIC (type 1, 5.2.12.3), Interrupt Source
 * Overrides (type 2, 5.2.12.5) for IRQ0 → GSI 2 (conforming) and the SCI (level, active high), and a
 * Local APIC NMI (type 4, 5.2.12.7) on LINT1 for all processors.
 */
public final class Madt {
    public static final int REVISION = 5;
    public static final int TYPE_LOCAL_APIC = 0, TYPE_IO_APIC = 1, TYPE_ISO = 2, TYPE_LAPIC_NMI = 4;
    /** MPS INTI flags (Table 5.26): polarity bits 1:0, trigger mode bits 3:2. */
    public static final int ACTIVE_HIGH = 1, ACTIVE_LOW = 3, EDGE = 1 << 2, LEVEL = 3 << 2;

    private Madt() {}

    public static byte[] build(int vcpus, long lapicAddress, int ioapicId, long ioapicAddress, int sciIrq) {
        Sdt t = new Sdt("APIC", REVISION);
        t.u32(lapicAddress);
        t.u32(1); // PCAT_COMPAT
        for (int i = 0; i < vcpus; i++) t.u8(TYPE_LOCAL_APIC).u8(8).u8(i).u8(i).u32(1); // UID i, APIC ID i, Enabled
        t.u8(TYPE_IO_APIC).u8(12).u8(ioapicId).u8(0).u32(ioapicAddress).u32(0); // GSI base 0
        t.u8(TYPE_ISO).u8(10).u8(0).u8(0).u32(2).u16(0);                       // ISA IRQ0 -> GSI 2, conforming
        t.u8(TYPE_ISO).u8(10).u8(0).u8(sciIrq).u32(sciIrq).u16(LEVEL | ACTIVE_HIGH); // SCI: level, high
        t.u8(TYPE_LAPIC_NMI).u8(6).u8(0xFF).u16(EDGE | ACTIVE_HIGH).u8(1);    // all processors, LINT1
        return t.build();
    }
}

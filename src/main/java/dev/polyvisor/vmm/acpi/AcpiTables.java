package dev.polyvisor.vmm.acpi;

import dev.polyvisor.devices.ApicBus;
import dev.polyvisor.devices.IoApic;
import dev.polyvisor.devices.PcPlatformDevices;
import dev.polyvisor.memory.GuestMemory;

import java.util.ArrayList;
import java.util.List;

/**
 * Lays out the complete ACPI table set in guest physical memory: RSDP at {@code base} (16-byte
 * aligned, so inside 0xE0000-0xFFFFF the OS's RSDP scan finds it), FACS 64-byte aligned, then DSDT,
 * FADT, MADT, XSDT and RSDT, each 8-byte aligned. Linux reaches them by scanning for the RSDP or via
 * boot_params.acpi_rsdp_addr.
 */
public final class AcpiTables {
    public static final long DEFAULT_BASE = 0xE0000;

    /** One table placed at a guest physical address. */
    public record Blob(String name, long address, byte[] data) {}

    /** The inputs: vCPU count and the addresses of the interrupt controllers and ACPI hardware. */
    public record Platform(int vcpus, long lapicAddress, int ioapicId, long ioapicAddress, Fadt.Config fadt) {
        /** The tables that describe a {@link PcPlatformDevices} set: its APICs and its ACPI PM block. */
        public static Platform of(PcPlatformDevices d) {
            return new Platform(d.apics.vcpuCount(), ApicBus.LAPIC_BASE, d.ioapicId(), IoApic.BASE,
                    Fadt.Config.standard(d.pm.base(), d.pm.timer32()));
        }
    }

    private final List<Blob> blobs;
    private final long rsdpAddress, end;

    private AcpiTables(List<Blob> blobs, long rsdpAddress, long end) {
        this.blobs = List.copyOf(blobs);
        this.rsdpAddress = rsdpAddress;
        this.end = end;
    }

    public static AcpiTables build(Platform p, long base) {
        if ((base & 15) != 0) throw new IllegalArgumentException("RSDP address must be 16-byte aligned: 0x" + Long.toHexString(base));
        List<Blob> out = new ArrayList<>();
        long at = base + Rsdp.LENGTH;
        long facs = align(at, 64);
        at = facs + Facs.LENGTH;
        byte[] dsdtBytes = Dsdt.build();
        long dsdt = align(at, 8);
        at = dsdt + dsdtBytes.length;
        long fadt = align(at, 8);
        byte[] fadtBytes = Fadt.build(p.fadt(), facs, dsdt);
        at = fadt + fadtBytes.length;
        long madt = align(at, 8);
        byte[] madtBytes = Madt.build(p.vcpus(), p.lapicAddress(), p.ioapicId(), p.ioapicAddress(), p.fadt().sciIrq());
        at = madt + madtBytes.length;
        List<Long> entries = List.of(fadt, madt);
        byte[] xsdtBytes = Xsdt.build(entries);
        long xsdt = align(at, 8);
        at = xsdt + xsdtBytes.length;
        byte[] rsdtBytes = Xsdt.buildRsdt(entries);
        long rsdt = align(at, 8);
        at = rsdt + rsdtBytes.length;
        out.add(new Blob("RSDP", base, Rsdp.build(rsdt, xsdt)));
        out.add(new Blob("FACS", facs, Facs.build()));
        out.add(new Blob("DSDT", dsdt, dsdtBytes));
        out.add(new Blob("FACP", fadt, fadtBytes));
        out.add(new Blob("APIC", madt, madtBytes));
        out.add(new Blob("XSDT", xsdt, xsdtBytes));
        out.add(new Blob("RSDT", rsdt, rsdtBytes));
        return new AcpiTables(out, base, at);
    }

    private static long align(long v, long a) { return (v + a - 1) & -a; }

    public List<Blob> blobs() { return blobs; }

    public long rsdpAddress() { return rsdpAddress; }

    /** First byte after the last table. */
    public long end() { return end; }

    /** Copies every table into guest RAM. */
    public void loadInto(GuestMemory mem) {
        for (Blob b : blobs) mem.load(b.address(), b.data());
    }

    public Blob blob(String name) {
        for (Blob b : blobs) if (b.name().equals(name)) return b;
        throw new IllegalArgumentException("no ACPI table " + name);
    }
}

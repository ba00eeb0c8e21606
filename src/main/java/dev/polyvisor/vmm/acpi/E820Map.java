package dev.polyvisor.vmm.acpi;

import dev.polyvisor.vmm.boot.linux.E820Entry;

import java.util.ArrayList;
import java.util.Comparator;
import java.util.List;

/**
 * Builds the BIOS INT 15h E820 memory map (ACPI 6.5 chapter 15, "System Address Map Interfaces") of the
 * PC: a sorted list of {@link E820Entry}, which the Linux and PVH loaders write into boot_params or
 * hvm_start_info (at most 128 entries, E820_MAX_ENTRIES_ZEROPAGE, arch/x86/include/uapi/asm/bootparam.h).
 */
public final class E820Map {
    public static final int RAM = E820Entry.RAM, RESERVED = E820Entry.RESERVED, ACPI = E820Entry.ACPI, NVS = E820Entry.NVS;
    /** Conventional memory ends at the EBDA (0x9FC00); 0x9FC00-0xFFFFF is EBDA, VGA hole and BIOS ROM. */
    public static final long EBDA = 0x9FC00, HIGH_MEMORY = 0x100000;
    /** Default start of the 32-bit PCI hole: RAM above it is not mapped below 4 GiB. */
    public static final long PCI_HOLE = dev.polyvisor.memory.GuestMemory.PCI_HOLE_START;

    private final List<E820Entry> entries = new ArrayList<>();

    public E820Map add(long address, long size, int type) {
        if (size <= 0) return this;
        if (address < 0 || type < 1 || type > 5) throw new IllegalArgumentException("bad e820 entry");
        entries.add(new E820Entry(address, size, type));
        entries.sort(Comparator.comparingLong(E820Entry::addr));
        return this;
    }

    /**
     * A PC map for {@code ramBytes} of linear guest RAM: conventional memory below the EBDA, the legacy
     * region 0x9FC00-0xFFFFF reserved (the ACPI tables the VMM places at 0xE0000 sit inside it), high
     * memory up to the PCI hole at 3 GiB, the rest of the RAM from 4 GiB up (the layout of
     * {@link dev.polyvisor.memory.GuestMemory#pc}), and the IOAPIC and LAPIC pages reserved.
     */
    public static E820Map standardPc(long ramBytes) {
        E820Map m = new E820Map();
        m.add(0, Math.min(EBDA, ramBytes), RAM);
        m.add(EBDA, HIGH_MEMORY - EBDA, RESERVED);
        if (ramBytes > HIGH_MEMORY) m.add(HIGH_MEMORY, Math.min(ramBytes, PCI_HOLE) - HIGH_MEMORY, RAM);
        if (ramBytes > PCI_HOLE) m.add(1L << 32, ramBytes - PCI_HOLE, RAM);
        m.add(0xFEC0_0000L, 0x1000, RESERVED);
        m.add(0xFEE0_0000L, 0x1000, RESERVED);
        return m;
    }

    public List<E820Entry> entries() { return List.copyOf(entries); }

    public int size() { return entries.size(); }
}

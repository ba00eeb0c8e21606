package dev.polyvisor.vmm.boot.linux;

/**
 * One range of the physical memory map as the BIOS E820 call reports it (ACPI 6.5, 15.1,
 * "INT 15H, E820H"). The same types are used by PVH's hvm_memmap_table_entry.
 */
public record E820Entry(long addr, long size, int type) {
    public static final int RAM = 1, RESERVED = 2, ACPI = 3, NVS = 4, UNUSABLE = 5;

    public E820Entry {
        if (size < 0 || addr < 0 || addr + size < addr) throw new IllegalArgumentException(String.format("bad e820 range 0x%x+0x%x", addr, size));
    }

    public long end() { return addr + size; }
}

package dev.polyvisor.vmm.acpi;

import java.nio.ByteBuffer;
import java.nio.ByteOrder;
import java.util.ArrayList;
import java.util.Comparator;
import java.util.List;

/**
 * The BIOS INT 15h E820 memory map (ACPI 6.5 chapter 15, "System Address Map Interfaces") as the Linux
 * boot protocol takes it in boot_params.e820_table: entries of {u64 addr, u64 size, u32 type}, at most
 * 128 (E820_MAX_ENTRIES_ZEROPAGE, arch/x86/include/uapi/asm/bootparam.h).
 */
public final class E820Map {
    public static final int RAM = 1, RESERVED = 2, ACPI = 3, NVS = 4;
    public static final int ENTRY_SIZE = 20, MAX_ENTRIES = 128;
    /** Conventional memory ends at the EBDA (0x9FC00); 0x9FC00-0xFFFFF is EBDA, VGA hole and BIOS ROM. */
    public static final long EBDA = 0x9FC00, HIGH_MEMORY = 0x100000;
    /** Default start of the 32-bit PCI hole: RAM above it is not mapped below 4 GiB. */
    public static final long PCI_HOLE = 0xC000_0000L;

    public record Entry(long address, long size, int type) {
        public long end() { return address + size; }
    }

    private final List<Entry> entries = new ArrayList<>();

    public E820Map add(long address, long size, int type) {
        if (size <= 0) return this;
        if (address < 0 || type < 1 || type > 5) throw new IllegalArgumentException("bad e820 entry");
        entries.add(new Entry(address, size, type));
        entries.sort(Comparator.comparingLong(Entry::address));
        return this;
    }

    /**
     * A PC map for {@code ramBytes} of linear guest RAM: conventional memory below the EBDA, the legacy
     * region 0x9FC00-0xFFFFF reserved (the ACPI tables the VMM places at 0xE0000 sit inside it), high
     * memory up to the PCI hole at 3 GiB, and the IOAPIC and LAPIC pages reserved.
     */
    public static E820Map standardPc(long ramBytes) {
        E820Map m = new E820Map();
        m.add(0, Math.min(EBDA, ramBytes), RAM);
        m.add(EBDA, HIGH_MEMORY - EBDA, RESERVED);
        if (ramBytes > HIGH_MEMORY) m.add(HIGH_MEMORY, Math.min(ramBytes, PCI_HOLE) - HIGH_MEMORY, RAM);
        m.add(0xFEC0_0000L, 0x1000, RESERVED);
        m.add(0xFEE0_0000L, 0x1000, RESERVED);
        return m;
    }

    public List<Entry> entries() { return List.copyOf(entries); }

    /** Bytes as boot_params.e820_table expects (little-endian, 20 bytes per entry). */
    public byte[] toBootParams() {
        if (entries.size() > MAX_ENTRIES) throw new IllegalStateException("too many e820 entries: " + entries.size());
        ByteBuffer b = ByteBuffer.allocate(entries.size() * ENTRY_SIZE).order(ByteOrder.LITTLE_ENDIAN);
        for (Entry e : entries) b.putLong(e.address()).putLong(e.size()).putInt(e.type());
        return b.array();
    }

    public int size() { return entries.size(); }
}

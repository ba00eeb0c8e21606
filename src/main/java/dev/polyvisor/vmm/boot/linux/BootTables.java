package dev.polyvisor.vmm.boot.linux;

import dev.polyvisor.memory.GuestMemory;

/** The GDT and identity-mapped page tables that both entry paths build in low memory. */
final class BootTables {
    /** Selectors Linux expects at entry (arch/x86/include/asm/segment.h: GDT_ENTRY_BOOT_CS = 2, _DS = 3). */
    static final int BOOT_CS = 0x10, BOOT_DS = 0x18;
    static final long GDT = 0x500;
    static final int GDT_LIMIT = 4 * 8 - 1;

    // Flat descriptors: base 0, limit 0xFFFFF pages. Access 0x9B = present code exec/read accessed, 0x93 = data r/w accessed.
    static final long DESC_CODE64 = 0x00AF_9B00_0000_FFFFL, DESC_CODE32 = 0x00CF_9B00_0000_FFFFL, DESC_DATA = 0x00CF_9300_0000_FFFFL;

    /** Page-table pages: PML4, PDPT and four page directories of 2 MiB pages mapping 0-4 GiB one to one. */
    static final long PML4 = 0x9000, PDPT = 0xA000, PD0 = 0xB000;
    static final long TABLES_END = PD0 + 4 * 0x1000;

    private BootTables() {}

    static void writeGdt(GuestMemory mem, boolean longMode) {
        mem.checkRam(GDT, GDT_LIMIT + 1);
        mem.st64(GDT, 0);
        mem.st64(GDT + 8, 0);
        mem.st64(GDT + BOOT_CS, longMode ? DESC_CODE64 : DESC_CODE32);
        mem.st64(GDT + BOOT_DS, DESC_DATA);
    }

    /** Identity map of the first 4 GiB with 2 MiB pages (SDM Vol. 3A, 4.5, Figure 4-9); returns CR3. */
    static long writeIdentityMap(GuestMemory mem) {
        mem.checkRam(PML4, TABLES_END - PML4);
        for (long a = PML4; a < TABLES_END; a += 8) mem.st64(a, 0);
        final long P = 1, RW = 2, PS = 0x80;
        mem.st64(PML4, PDPT | P | RW);
        for (int i = 0; i < 4; i++) {
            long pd = PD0 + i * 0x1000L;
            mem.st64(PDPT + i * 8L, pd | P | RW);
            for (int j = 0; j < 512; j++) mem.st64(pd + j * 8L, ((long) i << 30 | (long) j << 21) | P | RW | PS);
        }
        return PML4;
    }

    static long alignUp(long v, long align) { return (v + align - 1) & -align; }

    static long alignDown(long v, long align) { return v & -align; }

    /**
     * The highest 4 KiB-aligned address at which {@code size} bytes fit in e820 RAM below
     * {@code ceiling}, at or above 1 MiB, clear of [{@code avoidStart}, {@code avoidEnd}); -1 if none.
     */
    static long placeHigh(java.util.List<E820Entry> e820, long ramSize, long size, long ceiling, long avoidStart, long avoidEnd) {
        long best = -1;
        for (E820Entry e : e820) {
            if (e.type() != E820Entry.RAM) continue;
            long lo = Math.max(e.addr(), 0x100000);
            long top = Math.min(Math.min(e.end(), ceiling), ramSize);
            long at = alignDown(top - size, 0x1000);
            if (at < avoidEnd && at + size > avoidStart) at = alignDown(avoidStart - size, 0x1000);
            if (top - size < lo || at < lo) continue;
            best = Math.max(best, at);
        }
        return best;
    }

    static boolean isRam(java.util.List<E820Entry> e820, long start, long end) {
        for (E820Entry e : e820) if (e.type() == E820Entry.RAM && e.addr() <= start && end <= e.end()) return true;
        return false;
    }
}

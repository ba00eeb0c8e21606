package dev.polyvisor.vmm.boot;

import dev.polyvisor.cpu.Cpu;
import dev.polyvisor.memory.GuestMemory;

/**
 * Puts the boot vCPU into the state a loader promises its kernel, writing the descriptor tables and
 * page tables that state implies into guest memory, so the kernel may reload segments from them.
 *
 * <p>The GDT (4 entries, 32 bytes): 0x00 null, 0x08 flat 32-bit code, 0x10 flat data, 0x18 flat
 * 64-bit code. Descriptors are written with the accessed bit set (SDM Vol. 3A, 3.4.5.1) and the
 * cached attributes in {@code Cpu.segAttr} are bits 8..23 of each descriptor's high dword.
 */
public final class BootCpu {
    public static final int CODE32 = 0x08, DATA = 0x10, CODE64 = 0x18;
    public static final int GDT_SIZE = 32;
    static final long[] GDT = {
            0,
            0x00CF_9B00_0000_FFFFL, // base 0, limit 4 GiB (G=1), D=1, present ring-0 code, execute/read
            0x00CF_9300_0000_FFFFL, // base 0, limit 4 GiB, B=1, present ring-0 data, read/write
            0x00AF_9B00_0000_FFFFL, // L=1 ring-0 code for long mode
    };
    /** Size of the identity map built for 64-bit entry: PML4, PDPT and four page directories. */
    public static final int PAGE_TABLES_SIZE = 6 * 4096;

    private BootCpu() {}

    static int attr(long descriptor) { return (int) (descriptor >>> 40) & 0xF0FF; }

    /** Writes the boot GDT at {@code addr} (8-byte aligned, in RAM). */
    public static void writeGdt(GuestMemory mem, long addr) {
        for (int i = 0; i < GDT.length; i++) mem.st64(addr + 8L * i, GDT[i]);
    }

    /** Real mode at CS:IP with all data segments equal to CS, interrupts off (SDM Vol. 3A, 10.1). */
    public static void enterReal(Cpu c, int cs, int ip) {
        c.reset();
        c.idtBase = 0;
        c.idtLimit = 0x3FF;
        for (int s = 0; s < 6; s++) c.setRealSegment(s, cs);
        c.rip = ip & 0xFFFF;
        c.updateMode();
        c.mmu.flushAll();
    }

    /**
     * 32-bit protected mode, paging off, flat 4 GiB CS (0x08) and data segments (0x10), IF=0 — the
     * Multiboot machine state (Multiboot 0.6.96, 3.2). The GDT must already be at {@code gdt}.
     */
    public static void enterProtected32(Cpu c, long gdt, long entry) {
        c.reset();
        c.cr0 = Cpu.CR0_PE | Cpu.CR0_ET;
        c.gdtBase = gdt;
        c.gdtLimit = GDT_SIZE - 1;
        c.idtBase = 0;
        c.idtLimit = 0;
        loadFlat(c, CODE32, GDT[1]);
        c.rip = entry & 0xFFFF_FFFFL;
        c.rflags = 2;
        c.updateMode();
        c.mmu.flushAll();
    }

    /**
     * 64-bit mode with the first 4 GiB identity-mapped by 2 MiB pages at {@code tables}
     * ({@link #PAGE_TABLES_SIZE} bytes, 4 KiB aligned): CR0.PG|PE, CR4.PAE, EFER.LME|LMA (SDM Vol. 3A, 10.8.5).
     */
    public static void enterLong64(Cpu c, GuestMemory mem, long gdt, long tables, long entry) {
        long pml4 = tables, pdpt = tables + 4096, pd = tables + 8192;
        ElfImage.zero(mem, tables, PAGE_TABLES_SIZE);
        mem.st64(pml4, pdpt | 0x3);
        for (int i = 0; i < 4; i++) {
            mem.st64(pdpt + 8L * i, (pd + 4096L * i) | 0x3);
            for (int j = 0; j < 512; j++)
                mem.st64(pd + 4096L * i + 8L * j, (((long) i << 30) + ((long) j << 21)) | 0x83); // P, RW, PS
        }
        c.reset();
        c.gdtBase = gdt;
        c.gdtLimit = GDT_SIZE - 1;
        c.idtBase = 0;
        c.idtLimit = 0;
        c.cr3 = pml4;
        c.cr4 = Cpu.CR4_PAE;
        c.efer = Cpu.EFER_LME | Cpu.EFER_LMA;
        c.cr0 = Cpu.CR0_PE | Cpu.CR0_ET | Cpu.CR0_PG;
        loadFlat(c, CODE64, GDT[3]);
        c.rip = entry;
        c.rflags = 2;
        c.updateMode();
        c.mmu.flushAll();
    }

    private static void loadFlat(Cpu c, int codeSel, long codeDesc) {
        for (int s = 0; s < 6; s++) {
            boolean code = s == Cpu.CS;
            c.segSel[s] = code ? codeSel : DATA;
            c.segBase[s] = 0;
            c.segLimit[s] = 0xFFFF_FFFFL;
            c.segAttr[s] = attr(code ? codeDesc : GDT[2]);
        }
    }
}

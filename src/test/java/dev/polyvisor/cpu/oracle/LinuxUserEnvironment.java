package dev.polyvisor.cpu.oracle;

import dev.polyvisor.cpu.Cpu;
import dev.polyvisor.cpu.Segments;
import dev.polyvisor.memory.GuestMemory;

/**
 * The system structures a 64-bit Linux user process runs under, rebuilt for the emulator side of the
 * oracle so that segment loads, LAR/LSL/VERR/VERW, INT n and port I/O at CPL 3 see what the host
 * process sees (values from arch/x86/kernel/cpu/common.c gdt_page, arch/x86/include/asm/segment.h and
 * arch/x86/kernel/idt.c):
 *
 * <ul>
 * <li>GDT of 16 entries (limit 0x7F): 0x08 32-bit kernel code, 0x10 64-bit kernel code, 0x18 kernel data
 * (all DPL 0), 0x23 32-bit user code (LAR 0x00cffb00), 0x2b user data (0x00cff300), 0x33 64-bit user
 * code (0x00affb00), the busy 64-bit TSS at 0x40 (two slots), an empty LDT slot at 0x50, the three
 * empty TLS slots 0x60-0x70 and the per-CPU entry 0x78 (DPL 3 read-only data whose limit is the CPU
 * number; CPU 0 here, the oracle never generates it). No LDT.</li>
 * <li>IDT of 256 interrupt gates to the 64-bit kernel code, DPL 0 except vectors 3 (#BP), 4 (#OF) and
 * 0x80 (the 32-bit syscall gate) at DPL 3 (idt.c "def_idts"/"ia32_idt": INTG vs SYSG), so INT n to any
 * other vector is #GP(n*8+2).</li>
 * <li>A TSS whose I/O map base lies beyond its limit (Linux's IO_BITMAP_OFFSET_INVALID for a task
 * that never called ioperm/iopl): every port access at CPL 3 is #GP(0).</li>
 * </ul>
 *
 * All of it is mapped supervisor-only in the upper half, as the kernel maps it (descriptor-table
 * accesses are implicit supervisor accesses, see {@link Segments#sysRead}). An interrupt delivered
 * through this IDT lands at CPL 0 on {@link #HANDLERS} + 16 * vector, which is never fetched: the
 * fixture reads the frame, as the kernel does before it builds the signal frame, and returns to
 * the user state (see {@link #reportDelivery}).
 */
final class LinuxUserEnvironment {
    private LinuxUserEnvironment() {}

    static final long KBASE = 0xFFFF_FE00_0000_0000L; // the cpu_entry_area region, PML4 slot 0x1FC
    static final long GDT = KBASE, IDT = KBASE + 0x1000, TSS = KBASE + 0x2000, KSTACK_TOP = KBASE + 0x5000,
            HANDLERS = KBASE + 0x10_0000;
    static final int KERNEL32_CS = 0x08, KERNEL_CS = 0x10, KERNEL_DS = 0x18, USER32_CS = 0x23, USER_DS = 0x2B,
            USER_CS = 0x33, TSS_SEL = 0x40, GDT_ENTRIES = 16;
    /** Physical frames (the fixture's memory is 1 MiB; EmulatedHost uses frames below 0x12000). */
    private static final long PDPT = 0x20000, PD = 0x21000, PT = 0x22000, F_GDT = 0x23000, F_IDT = 0x24000,
            F_TSS = 0x25000, F_STACK = 0x26000, F_STACK2 = 0x27000;
    private static final long P = 1, RW = 2, US = 4, A = 0x20, D = 0x40, NX = 1L << 63;

    /** The raw descriptors, as Linux's GDT_ENTRY_INIT builds them (flags, base 0, limit 0xfffff). */
    static final long[] GDT_ENTRIES_RAW = new long[GDT_ENTRIES];
    static {
        GDT_ENTRIES_RAW[KERNEL32_CS >> 3] = 0x00cf_9b00_0000_ffffL;
        GDT_ENTRIES_RAW[KERNEL_CS >> 3] = 0x00af_9b00_0000_ffffL;
        GDT_ENTRIES_RAW[KERNEL_DS >> 3] = 0x00cf_9300_0000_ffffL;
        GDT_ENTRIES_RAW[USER32_CS >> 3] = 0x00cf_fb00_0000_ffffL;
        GDT_ENTRIES_RAW[USER_DS >> 3] = 0x00cf_f300_0000_ffffL;
        GDT_ENTRIES_RAW[USER_CS >> 3] = 0x00af_fb00_0000_ffffL;
        // Busy 64-bit TSS (type 0xB, DPL 0), limit 0x67; the upper half holds base[63:32].
        long lo = 0x67 | (TSS & 0xFF_FFFFL) << 16 | 0x8BL << 40 | ((TSS >>> 24) & 0xFF) << 56;
        GDT_ENTRIES_RAW[TSS_SEL >> 3] = lo;
        GDT_ENTRIES_RAW[(TSS_SEL >> 3) + 1] = TSS >>> 32;
        // Per-CPU entry (setup_getcpu): type 5, S, DPL 3, P, D, limit = CPU number (0).
        GDT_ENTRIES_RAW[15] = 0x0040_f500_0000_0000L;
    }

    /** Builds and maps the GDT, IDT, TSS and kernel stack, and loads GDTR, IDTR, TR and LDTR. */
    static void install(Cpu c, GuestMemory mem) {
        long tbl = P | RW | US | A;
        mem.writePhys(c.cr3 + 8 * ((KBASE >>> 39) & 0x1FF), 8, PDPT | tbl);
        mem.writePhys(PDPT + 8 * ((KBASE >>> 30) & 0x1FF), 8, PD | tbl);
        mem.writePhys(PD + 8 * ((KBASE >>> 21) & 0x1FF), 8, PT | tbl);
        long[][] pages = {{GDT, F_GDT}, {IDT, F_IDT}, {TSS, F_TSS}, {KSTACK_TOP - 0x2000, F_STACK2}, {KSTACK_TOP - 0x1000, F_STACK}};
        for (long[] p : pages) mem.writePhys(PT + 8 * ((p[0] >>> 12) & 0x1FF), 8, p[1] | P | RW | A | D | NX); // no US
        for (int i = 0; i < GDT_ENTRIES; i++) mem.writePhys(F_GDT + 8L * i, 8, GDT_ENTRIES_RAW[i]);
        for (int v = 0; v < 256; v++) {
            long off = HANDLERS + 16L * v;
            int dpl = v == 3 || v == 4 || v == 0x80 ? 3 : 0;
            long gate = (off & 0xFFFF) | (long) KERNEL_CS << 16 | (long) (0x8E | dpl << 5) << 40 | ((off >>> 16) & 0xFFFF) << 48;
            mem.writePhys(F_IDT + 16L * v, 8, gate);
            mem.writePhys(F_IDT + 16L * v + 8, 8, off >>> 32);
        }
        mem.writePhys(F_TSS + 4, 8, KSTACK_TOP); // RSP0
        mem.writePhys(F_TSS + 0x66, 2, 0x68);    // I/O map base beyond the limit: no bitmap
        c.gdtBase = GDT;
        c.gdtLimit = GDT_ENTRIES * 8 - 1;
        c.idtBase = IDT;
        c.idtLimit = 256 * 16 - 1;
        c.segSel[Cpu.TR] = TSS_SEL;
        c.segBase[Cpu.TR] = TSS;
        c.segLimit[Cpu.TR] = 0x67;
        c.segAttr[Cpu.TR] = 0x8B;
        Segments.cacheNull(c, Cpu.LDTR, 0);
        enterUserMode(c);
        c.mmu.flushAll();
    }

    /**
     * The segment registers of a 64-bit Linux process: CS 0x33, SS 0x2b, DS/ES/FS/GS null (FS/GS
     * bases are not modelled: glibc's TLS base is a host address). Called before every case, since a
     * case may have loaded DS, ES or SS (the host harness restores them too).
     */
    static void enterUserMode(Cpu c) {
        Segments.cache(c, Cpu.CS, USER_CS, GDT_ENTRIES_RAW[USER_CS >> 3]);
        Segments.cache(c, Cpu.SS, USER_DS, GDT_ENTRIES_RAW[USER_DS >> 3]);
        for (int s : new int[] {Cpu.DS, Cpu.ES, Cpu.FS, Cpu.GS}) Segments.cacheNull(c, s, 0);
        c.updateMode();
    }

    /** True when the last instruction delivered an interrupt or exception through the IDT (now in the kernel). */
    static boolean delivered(Cpu c) {
        return c.cpl == 0 && c.rip >= HANDLERS && c.rip < HANDLERS + 16 * 256;
    }

    /**
     * Reports a delivery the way the host's signal frame does: the vector (trapno), the error code
     * pushed by the CPU (0 when it pushes none, as Linux reports), and the interrupted RIP, RSP and
     * RFLAGS from the interrupt frame; then returns to the user segments.
     */
    static void reportDelivery(Cpu c, MachineState out) {
        long rsp = c.r[Cpu.RSP];
        int frameBytes = (int) (KSTACK_TOP - rsp);
        long at = rsp;
        out.trap = (int) ((c.rip - HANDLERS) / 16);
        out.err = 0;
        if (frameBytes == 48) {
            out.err = (int) Segments.sysRead(c, at, 8);
            at += 8;
        } else if (frameBytes != 40) {
            throw new IllegalStateException("unexpected interrupt frame of " + frameBytes + " bytes");
        }
        c.rip = Segments.sysRead(c, at, 8);
        long flags = Segments.sysRead(c, at + 16, 8);
        c.r[Cpu.RSP] = Segments.sysRead(c, at + 24, 8);
        enterUserMode(c);
        c.setRflags(flags);
    }
}

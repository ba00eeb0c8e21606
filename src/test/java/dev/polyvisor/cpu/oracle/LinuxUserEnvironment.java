package dev.polyvisor.cpu.oracle;

import dev.polyvisor.cpu.Cpu;
import dev.polyvisor.cpu.Segments;
import dev.polyvisor.memory.GuestMemory;

/**
 * The interrupt side of the Linux environment the host process runs in, for the emulator side of the
 * oracle (the GDT is {@link LinuxGdt}, mapped by {@link EmulatedHost}):
 *
 * <ul>
 * <li>an IDT of 256 interrupt gates to the 64-bit kernel code segment, DPL 0 except vectors 3 (#BP),
 * 4 (#OF) and 0x80 (the 32-bit system-call gate) at DPL 3 (arch/x86/kernel/idt.c: INTG vs SYSG), so
 * INT n to any other vector is #GP(n*8+2);</li>
 * <li>the TSS {@link LinuxGdt} describes (busy, limit 0x4087) with RSP0 and an I/O map base beyond the
 * limit, Linux's IO_BITMAP_OFFSET_INVALID for a task that never called ioperm/iopl
 * (arch/x86/include/asm/processor.h): every port access at CPL 3 is #GP(0);</li>
 * <li>TR loaded with that TSS; a kernel stack.</li>
 * </ul>
 *
 * All of it is mapped supervisor-only next to the GDT, as the kernel maps its cpu_entry_area. An INT n,
 * INT1 or the #GP a DPL-0 gate raises is delivered by the emulator's own {@code Interrupts} code and
 * lands at CPL 0 on {@link #HANDLERS} + 16 * vector, which is never fetched: the fixture reads the
 * interrupt frame, as the kernel does before it builds the signal frame (trapno, error code, RIP,
 * RSP, RFLAGS), and returns to the user state ({@link #reportDelivery}).
 */
final class LinuxUserEnvironment {
    private LinuxUserEnvironment() {}

    static final long IDT = LinuxGdt.LA + 0x1000, TSS = 0xFFFF_FE00_0000_3000L, KSTACK_TOP = LinuxGdt.LA + 0x6000,
            HANDLERS = LinuxGdt.LA + 0x10_0000;
    static final int TSS_LIMIT = 0x4087, IO_BITMAP_OFFSET_INVALID = TSS_LIMIT + 1;
    /** Physical frames (the fixture's memory is 1 MiB; EmulatedHost uses frames below 0x13000). */
    private static final long F_IDT = 0x20000, F_TSS = 0x21000, F_STACK_LO = 0x22000, F_STACK_HI = 0x23000;
    private static final long P = 1, RW = 2, A = 0x20, D = 0x40, XD = 1L << 63, FRAME = 0x000F_FFFF_FFFF_F000L;

    /** Builds and maps the IDT, TSS and kernel stack (in the GDT's page table), and loads IDTR and TR. */
    static void install(Cpu c, GuestMemory mem) {
        long pt = pageTable(c, mem, LinuxGdt.LA);
        long[][] pages = {{IDT, F_IDT}, {TSS, F_TSS}, {KSTACK_TOP - 0x2000, F_STACK_LO}, {KSTACK_TOP - 0x1000, F_STACK_HI}};
        for (long[] p : pages) {
            if (pageTable(c, mem, p[0]) != pt) throw new IllegalStateException("not in the GDT's page table: " + Long.toHexString(p[0]));
            mem.writePhys(pt + 8 * ((p[0] >>> 12) & 0x1FF), 8, p[1] | P | RW | A | D | XD); // supervisor-only
        }
        for (int v = 0; v < 256; v++) {
            long off = HANDLERS + 16L * v;
            int dpl = v == 3 || v == 4 || v == 0x80 ? 3 : 0;
            long gate = (off & 0xFFFF) | (long) LinuxGdt.KERNEL_CS << 16 | (long) (0x8E | dpl << 5) << 40
                    | ((off >>> 16) & 0xFFFF) << 48;
            mem.writePhys(F_IDT + 16L * v, 8, gate);
            mem.writePhys(F_IDT + 16L * v + 8, 8, off >>> 32);
        }
        mem.writePhys(F_TSS + 4, 8, KSTACK_TOP);                     // RSP0
        mem.writePhys(F_TSS + 0x66, 2, IO_BITMAP_OFFSET_INVALID);   // no I/O bitmap
        c.idtBase = IDT;
        c.idtLimit = 256 * 16 - 1;
        long[] gdt = LinuxGdt.descriptors();
        Segments.cache(c, Cpu.TR, LinuxGdt.TSS, gdt[LinuxGdt.TSS >> 3]);
        c.segBase[Cpu.TR] |= (gdt[(LinuxGdt.TSS >> 3) + 1] & 0xFFFF_FFFFL) << 32;
        if (c.segBase[Cpu.TR] != TSS || c.segLimit[Cpu.TR] != TSS_LIMIT)
            throw new IllegalStateException("LinuxGdt's TSS descriptor moved");
        c.mmu.flushAll();
    }

    /** The physical address of the page table that maps {@code la}, walked from CR3. */
    private static long pageTable(Cpu c, GuestMemory mem, long la) {
        long t = c.cr3 & FRAME;
        for (int shift = 39; shift >= 21; shift -= 9) {
            long e = mem.readPhys(t + 8 * ((la >>> shift) & 0x1FF), 8);
            if ((e & P) == 0) throw new IllegalStateException("no page table for " + Long.toHexString(la));
            t = e & FRAME;
        }
        return t;
    }

    /** True when the last instruction delivered an interrupt or exception through the IDT (now in the kernel). */
    static boolean delivered(Cpu c) {
        return c.cpl == 0 && c.rip >= HANDLERS && c.rip < HANDLERS + 16 * 256;
    }

    /**
     * Reports a delivery the way the host's signal frame does: the vector (trapno), the error code the
     * CPU pushed (-1 when it pushed none), and the interrupted RIP, RSP and RFLAGS from the frame; then
     * returns to the user CS and SS.
     */
    static void reportDelivery(Cpu c, MachineState out) {
        long rsp = c.r[Cpu.RSP];
        int frameBytes = (int) (KSTACK_TOP - rsp);
        long at = rsp;
        out.trap = (int) ((c.rip - HANDLERS) / 16);
        out.err = -1;
        if (frameBytes == 48) {
            out.err = (int) Segments.sysRead(c, at, 8);
            at += 8;
        } else if (frameBytes != 40) {
            throw new IllegalStateException("unexpected interrupt frame of " + frameBytes + " bytes");
        }
        c.rip = Segments.sysRead(c, at, 8);
        int cs = (int) Segments.sysRead(c, at + 8, 8);
        long flags = Segments.sysRead(c, at + 16, 8);
        c.r[Cpu.RSP] = Segments.sysRead(c, at + 24, 8);
        int ss = (int) Segments.sysRead(c, at + 32, 8);
        long[] gdt = LinuxGdt.descriptors();
        Segments.cache(c, Cpu.CS, cs, gdt[cs >> 3]);
        Segments.cache(c, Cpu.SS, ss, gdt[ss >> 3]);
        c.updateMode();
        c.setRflags(flags);
    }
}

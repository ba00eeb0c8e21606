package dev.polyvisor.cpu;

/**
 * Segment descriptors: fetching them from the GDT/LDT, the protection checks of segment-register loads
 * (SDM Vol. 3A, 3.4-3.5 and 5.5-5.8; Vol. 2, MOV/POP "Operation"), and the hidden-part caches.
 *
 * <p>A descriptor is handled as its raw 8-byte value ({@code lo | hi << 32}). The cached attribute
 * word in {@link Cpu#segAttr} is bits 8..23 of the high dword with the limit nibble removed, as VMX
 * stores it: type 0-3, S 4, DPL 5-6, P 7, AVL 12, L 13, D/B 14, G 15; {@link #UNUSABLE} (bit 16) marks
 * a segment register loaded with a null selector.
 *
 * <p>All descriptor-table and TSS accesses are implicit supervisor accesses (SDM 4.6.1), so they
 * use the supervisor TLB set even at CPL 3.
 */
public final class Segments {
    public static final int UNUSABLE = 0x10000;

    // Attribute-word fields.
    public static final int A_ACCESSED = 1, A_RW = 2, A_CONFORMING = 4, A_CODE = 8, A_S = 0x10, A_P = 0x80,
            A_L = 0x2000, A_DB = 0x4000, A_G = 0x8000;

    /** System descriptor types (S = 0) of interest (SDM Table 3-2). */
    public static final int T_TSS16_AVAIL = 1, T_LDT = 2, T_TSS16_BUSY = 3, T_CALLGATE16 = 4, T_TASKGATE = 5,
            T_TSS_AVAIL = 9, T_TSS_BUSY = 0xB, T_CALLGATE = 0xC;

    private Segments() {}

    // ------------------------------------------------------------------ raw descriptor fields

    public static int attr(long d) { return (int) (d >>> 40) & 0xF0FF; }

    public static long base(long d) { return ((d >>> 16) & 0xFF_FFFFL) | ((d >>> 32) & 0xFF00_0000L); }

    public static long limit(long d) {
        long l = (d & 0xFFFF) | ((d >>> 32) & 0xF_0000L);
        return (d & (1L << 55)) != 0 ? (l << 12) | 0xFFF : l;
    }

    public static int dpl(int attr) { return (attr >>> 5) & 3; }

    public static boolean present(int attr) { return (attr & A_P) != 0; }

    public static boolean isCode(int attr) { return (attr & (A_S | A_CODE)) == (A_S | A_CODE); }

    public static boolean isWritableData(int attr) { return (attr & (A_S | A_CODE | A_RW)) == (A_S | A_RW); }

    public static boolean isSystem(int attr) { return (attr & A_S) == 0; }

    public static boolean canonical(long la) { return ((la << 16) >> 16) == la; }

    // ------------------------------------------------------------------ implicit supervisor accesses

    /** Linear address of a system structure: 32-bit outside IA-32e mode. */
    static long sysLinear(Cpu c, long la) { return (c.efer & Cpu.EFER_LMA) != 0 ? la : la & 0xFFFF_FFFFL; }

    /**
     * Reads a system structure: a supervisor-mode access whatever the CPL, and an implicit one, which SMAP
     * denies on a user-mode page even with EFLAGS.AC = 1 (SDM Vol. 3A 4.6.1).
     */
    public static long sysRead(Cpu c, long la, int size) {
        la = sysLinear(c, la);
        boolean user = c.cpl == 3;
        if (user) c.mmu.setPrivilege(false);
        c.mmu.implicitSupervisor = true;
        try {
            return c.mmu.read(la, size);
        } finally {
            c.mmu.implicitSupervisor = false;
            if (user) c.mmu.setPrivilege(true);
        }
    }

    /** Writes a system structure (descriptor accessed and busy bits), as {@link #sysRead} reads one. */
    public static void sysWrite(Cpu c, long la, int size, long v) {
        la = sysLinear(c, la);
        boolean user = c.cpl == 3;
        if (user) c.mmu.setPrivilege(false);
        c.mmu.implicitSupervisor = true;
        try {
            c.mmu.write(la, size, v);
        } finally {
            c.mmu.implicitSupervisor = false;
            if (user) c.mmu.setPrivilege(true);
        }
    }

    // ------------------------------------------------------------------ descriptor tables

    /**
     * The linear address of the descriptor for {@code sel}, or {@link #NO_DESCRIPTOR} when {@code bytes}
     * (8 or 16) of it do not lie inside the GDT or LDT limit (or the LDT is unusable). Kernel tables
     * live at negative (upper-half) addresses, so the sentinel is a non-canonical value, not -1.
     */
    public static final long NO_DESCRIPTOR = Long.MIN_VALUE;

    public static long descriptorAddress(Cpu c, int sel, int bytes) {
        long index = sel & 0xFFF8;
        long base, limit;
        if ((sel & 4) != 0) {
            if ((c.segAttr[Cpu.LDTR] & UNUSABLE) != 0 || (c.segSel[Cpu.LDTR] & 0xFFFC) == 0) return NO_DESCRIPTOR;
            base = c.segBase[Cpu.LDTR];
            limit = c.segLimit[Cpu.LDTR];
        } else {
            base = c.gdtBase;
            limit = c.gdtLimit;
        }
        if (index + bytes - 1 > limit) return NO_DESCRIPTOR;
        return base + index;
    }

    /** Reads the 8-byte descriptor for {@code sel}; outside the table raises {@code vector}(sel & ~3 | ext). */
    public static long fetch(Cpu c, int sel, int vector, int ext) {
        long a = descriptorAddress(c, sel, 8);
        if (a == NO_DESCRIPTOR) throw c.fault(vector, (sel & 0xFFFC) | ext);
        return sysRead(c, a, 8);
    }

    /** The upper 8 bytes of a 16-byte system descriptor (IA-32e mode TSS, LDT, call gate). */
    public static long fetchHigh(Cpu c, int sel, int vector, int ext) {
        long a = descriptorAddress(c, sel, 16);
        if (a == NO_DESCRIPTOR) throw c.fault(vector, (sel & 0xFFFC) | ext);
        return sysRead(c, a + 8, 8);
    }

    /** Sets the accessed bit in the descriptor in memory (SDM 3.4.5.1), if it is not set yet. */
    public static void setAccessed(Cpu c, int sel, long desc) {
        if ((desc & (1L << 40)) != 0) return;
        long a = descriptorAddress(c, sel, 8);
        if (a != NO_DESCRIPTOR) sysWrite(c, a + 5, 1, (desc >>> 40) | 1);
    }

    // ------------------------------------------------------------------ caches

    /** Loads the hidden part of {@code seg} from a descriptor. Does not recompute the mode. */
    public static void cache(Cpu c, int seg, int sel, long desc) {
        c.segSel[seg] = sel & 0xFFFF;
        c.segBase[seg] = base(desc);
        c.segLimit[seg] = limit(desc);
        int a = attr(desc);
        c.segAttr[seg] = isSystem(a) ? a : a | A_ACCESSED; // the load set the accessed bit
    }

    /** A null selector: the register becomes unusable (Intel: the FS/GS base is cleared, see Linux X86_BUG_NULL_SEG). */
    public static void cacheNull(Cpu c, int seg, int sel) {
        c.segSel[seg] = sel & 0xFFFF;
        c.segBase[seg] = 0;
        c.segLimit[seg] = 0;
        c.segAttr[seg] = UNUSABLE;
    }

    /** Loads CS from a checked code descriptor with RPL = the new CPL, and recomputes the mode. */
    public static void loadCs(Cpu c, int sel, long desc, int cpl) {
        cache(c, Cpu.CS, (sel & 0xFFFC) | cpl, desc);
        c.updateMode();
    }

    /** SS after a privilege change in IA-32e mode: a null selector whose RPL is the new CPL (SDM 6.14.4). */
    public static void loadNullSs64(Cpu c, int cpl) {
        c.segSel[Cpu.SS] = cpl;
        c.segBase[Cpu.SS] = 0;
        c.segLimit[Cpu.SS] = 0;
        c.segAttr[Cpu.SS] = UNUSABLE | (cpl << 5) | A_DB;
        c.updateMode();
    }

    /** Flat segments of SYSCALL/SYSRET/SYSENTER/SYSEXIT (SDM Vol. 2, SYSCALL "Operation"). */
    public static void loadFlat(Cpu c, int seg, int sel, boolean code, int dpl, boolean long64) {
        c.segSel[seg] = sel & 0xFFFF;
        c.segBase[seg] = 0;
        c.segLimit[seg] = 0xFFFF_FFFFL;
        int a = A_S | A_P | A_G | (dpl << 5) | A_ACCESSED;
        if (code) a |= A_CODE | A_RW | (long64 ? A_L : A_DB);
        else a |= A_RW | A_DB;
        c.segAttr[seg] = a;
    }

    // ------------------------------------------------------------------ segment-register loads

    /**
     * MOV/POP/LDS... to DS, ES, FS or GS, with the checks of SDM Vol. 2 "MOV" (protected mode): a null
     * selector is allowed; otherwise the descriptor must be data or readable code, and for data or
     * non-conforming code both RPL and CPL must be <= DPL; not present is #NP.
     */
    public static void loadData(Cpu c, int seg, int sel) {
        sel &= 0xFFFF;
        if (!protectedMode(c)) {
            loadReal(c, seg, sel);
            return;
        }
        if ((sel & 0xFFFC) == 0) {
            cacheNull(c, seg, sel);
            return;
        }
        long desc = fetch(c, sel, Exceptions.GP, 0);
        int a = attr(desc);
        if (isSystem(a) || (isCode(a) && (a & A_RW) == 0)) throw c.fault(Exceptions.GP, sel & 0xFFFC);
        if (!isCode(a) || (a & A_CONFORMING) == 0) {
            int dpl = dpl(a);
            if ((sel & 3) > dpl || c.cpl > dpl) throw c.fault(Exceptions.GP, sel & 0xFFFC);
        }
        if (!present(a)) throw c.fault(Exceptions.NP, sel & 0xFFFC);
        setAccessed(c, sel, desc);
        cache(c, seg, sel, desc);
    }

    /**
     * MOV/POP/LSS to SS (SDM Vol. 2 "MOV"): RPL and DPL must equal CPL and the segment must be writable
     * data; not present is #SS. A null selector is allowed only in 64-bit mode at CPL < 3 with RPL = CPL.
     */
    public static void loadSs(Cpu c, int sel) {
        sel &= 0xFFFF;
        if (!protectedMode(c)) {
            loadReal(c, Cpu.SS, sel);
            return;
        }
        int rpl = sel & 3;
        if ((sel & 0xFFFC) == 0) {
            if (c.long64 && c.cpl != 3 && rpl == c.cpl) {
                loadNullSs64(c, c.cpl);
                c.segSel[Cpu.SS] = sel;
                return;
            }
            throw c.gp0();
        }
        long desc = fetch(c, sel, Exceptions.GP, 0);
        int a = attr(desc);
        if (rpl != c.cpl || !isWritableData(a) || dpl(a) != c.cpl) throw c.fault(Exceptions.GP, sel & 0xFFFC);
        if (!present(a)) throw c.fault(Exceptions.SS, sel & 0xFFFC);
        setAccessed(c, sel, desc);
        cache(c, Cpu.SS, sel, desc);
        c.updateMode();
    }

    /** Protected mode proper (CR0.PE = 1 and not virtual-8086 mode). */
    public static boolean protectedMode(Cpu c) { return (c.cr0 & Cpu.CR0_PE) != 0 && (c.rflags & Flags.VM) == 0; }

    /**
     * Real mode changes only the selector and base, so limits and attributes loaded in protected mode
     * survive ("unreal mode"); virtual-8086 mode loads the fixed 64 KiB, DPL 3 segment (SDM 20.1.1).
     */
    static void loadReal(Cpu c, int seg, int sel) {
        if ((c.rflags & Flags.VM) != 0) {
            c.setRealSegment(seg, sel);
            c.segAttr[seg] = seg == Cpu.CS ? 0xFB : 0xF3;
            return;
        }
        c.segSel[seg] = sel;
        c.segBase[seg] = (long) sel << 4;
        if ((c.segAttr[seg] & UNUSABLE) != 0) { c.segAttr[seg] = 0x93; c.segLimit[seg] = 0xFFFF; }
        if (seg == Cpu.SS) c.updateMode();
    }

    /**
     * After a return to an outer privilege level (far RET, IRET): data-segment registers whose DPL is
     * below the new CPL are nulled, unless they hold conforming code (SDM Vol. 2 "RET", "IRET").
     */
    public static void nullInaccessible(Cpu c) {
        for (int seg : new int[] {Cpu.ES, Cpu.DS, Cpu.FS, Cpu.GS}) {
            int a = c.segAttr[seg];
            if ((a & UNUSABLE) != 0) continue;
            boolean conformingCode = isCode(a) && (a & A_CONFORMING) != 0;
            if (!conformingCode && dpl(a) < c.cpl) {
                c.segSel[seg] = 0;
                c.segAttr[seg] = UNUSABLE;
                if (!c.long64 || seg < Cpu.FS) c.segBase[seg] = 0;
            }
        }
    }

    // ------------------------------------------------------------------ TSS

    /** Reads the current TSS at {@code off}; beyond its limit is #TS(TR selector | ext) (SDM 7.2.1). */
    public static long tssRead(Cpu c, int off, int size, int ext) {
        if (off + size - 1 > c.segLimit[Cpu.TR] || (c.segAttr[Cpu.TR] & UNUSABLE) != 0)
            throw c.fault(Exceptions.TS, (c.segSel[Cpu.TR] & 0xFFFC) | ext);
        return sysRead(c, c.segBase[Cpu.TR] + off, size);
    }
}

package dev.polyvisor.cpu.exec;

import dev.polyvisor.cpu.Cpu;
import dev.polyvisor.cpu.Exceptions;
import dev.polyvisor.cpu.Flags;
import dev.polyvisor.cpu.Segments;
import dev.polyvisor.cpu.decode.Decoded;
import dev.polyvisor.cpu.decode.Ea;
import dev.polyvisor.cpu.decode.Insn;
import dev.polyvisor.cpu.decode.OpcodeTable;

import static dev.polyvisor.cpu.Segments.*;
import static dev.polyvisor.cpu.decode.OpcodeTable.*;

/**
 * Segment-register and descriptor-table-register instructions: MOV to/from Sreg, PUSH/POP Sreg,
 * LDS/LES/LFS/LGS/LSS, SLDT/STR/LLDT/LTR/VERR/VERW (0F 00) and LAR/LSL (SDM Vol. 2; checks in
 * {@link Segments}).
 */
public final class SegmentOps {
    private SegmentOps() {}

    public static void register(OpcodeTable t) {
        t.add("MOV r/m, Sreg", MAP_1BYTE, 0x8C, MODRM | ORACLE, Imm.NONE, SegmentOps::movFromSreg);
        t.add("MOV Sreg, r/m16", MAP_1BYTE, 0x8E, MODRM | OP16 | ORACLE, Imm.NONE, SegmentOps::movToSreg);
        int[][] push = {{0x06, Cpu.ES}, {0x0E, Cpu.CS}, {0x16, Cpu.SS}, {0x1E, Cpu.DS}};
        // ORACLE: run in compatibility mode with ESP in the compared window (oracle Compat32).
        for (int[] p : push) t.add("PUSH " + name(p[1]), MAP_1BYTE, p[0], NO64 | ORACLE, Imm.NONE, d -> new PushSreg(p[1], d.opSize));
        int[][] pop = {{0x07, Cpu.ES}, {0x17, Cpu.SS}, {0x1F, Cpu.DS}};
        for (int[] p : pop)
            t.add("POP " + name(p[1]), MAP_1BYTE, p[0], NO64 | ORACLE | (p[1] == Cpu.SS ? ENDS : 0), Imm.NONE, d -> new PopSreg(p[1], d.opSize));
        t.add("PUSH FS", MAP_0F, 0xA0, D64 | ORACLE, Imm.NONE, d -> new PushSreg(Cpu.FS, d.opSize));
        t.add("POP FS", MAP_0F, 0xA1, D64, Imm.NONE, d -> new PopSreg(Cpu.FS, d.opSize));
        t.add("PUSH GS", MAP_0F, 0xA8, D64 | ORACLE, Imm.NONE, d -> new PushSreg(Cpu.GS, d.opSize));
        t.add("POP GS", MAP_0F, 0xA9, D64, Imm.NONE, d -> new PopSreg(Cpu.GS, d.opSize));
        t.add("LES", MAP_1BYTE, 0xC4, MODRM | NO64 | MEM_ONLY | ORACLE, Imm.NONE, d -> new LoadFarPointer(Cpu.ES, d.ea, d.reg, d.opSize));
        t.add("LDS", MAP_1BYTE, 0xC5, MODRM | NO64 | MEM_ONLY | ORACLE, Imm.NONE, d -> new LoadFarPointer(Cpu.DS, d.ea, d.reg, d.opSize));
        t.add("LSS", MAP_0F, 0xB2, MODRM | MEM_ONLY | ENDS | ORACLE, Imm.NONE, d -> new LoadFarPointer(Cpu.SS, d.ea, d.reg, d.opSize));
        t.add("LFS", MAP_0F, 0xB4, MODRM | MEM_ONLY, Imm.NONE, d -> new LoadFarPointer(Cpu.FS, d.ea, d.reg, d.opSize));
        t.add("LGS", MAP_0F, 0xB5, MODRM | MEM_ONLY, Imm.NONE, d -> new LoadFarPointer(Cpu.GS, d.ea, d.reg, d.opSize));

        t.addGroup("SLDT", MAP_0F, 0x00, 0, 0, Imm.NONE, d -> new StoreSel(Cpu.LDTR, d));
        t.addGroup("STR", MAP_0F, 0x00, 1, 0, Imm.NONE, d -> new StoreSel(Cpu.TR, d));
        t.addGroup("LLDT", MAP_0F, 0x00, 2, PRIV | OP16, Imm.NONE, d -> new Lldt(src(d)));
        t.addGroup("LTR", MAP_0F, 0x00, 3, PRIV | OP16, Imm.NONE, d -> new Ltr(src(d)));
        t.addGroup("VERR", MAP_0F, 0x00, 4, OP16 | ORACLE, Imm.NONE, d -> new Verify(src(d), false));
        t.addGroup("VERW", MAP_0F, 0x00, 5, OP16 | ORACLE, Imm.NONE, d -> new Verify(src(d), true));
        t.add("LAR", MAP_0F, 0x02, MODRM | ORACLE, Imm.NONE, d -> new LarLsl(new Src16(d.isMem() ? d.ea : null, d.rm), d.reg, d.opSize, false));
        t.add("LSL", MAP_0F, 0x03, MODRM | ORACLE, Imm.NONE, d -> new LarLsl(new Src16(d.isMem() ? d.ea : null, d.rm), d.reg, d.opSize, true));
    }

    /**
     * The offset size of a far pointer in memory m16:16/32/64 (LSS/LFS/LGS, and FF /3, FF /5 far CALL/JMP) for
     * the operand size {@code opSize}, read when the instruction runs. REX.W (opSize 8) is where the vendors differ:
     * Intel honours it, m16:64 (SDM Vol. 2A "JMP", "CALL", "LDS/LES/LFS/LGS/LSS"); AMD ignores it, m16:32 with the
     * 32-bit offset zero-extended (AMD APM Vol. 3 "JMP (Far)", "CALL (Far)"; the AMD EPYC host, through the
     * differential oracle, reads the selector after 4 bytes).
     * <p>One more case gives m16:64 on an AMD model: a pointer in emulated MMIO under a hypervisor whose
     * instruction emulator reads it so. On such a hypervisor the instruction is not run by the CPU but by the
     * hypervisor's emulator, after the MMIO access exits to it ({@link dev.polyvisor.cpu.Platform#mmioFarPointersHonourRexW}).
     */
    static int farOffsetSize(Cpu c, int opSize, long pointerLinear) {
        if (opSize != 8 || c.intel) return opSize;
        return c.platform.mmioFarPointersHonourRexW() && inEmulatedMmio(c, pointerLinear) ? 8 : 4;
    }

    /** Whether linear address {@code la} maps to something other than RAM (a side-effect-free walk; unmapped: no). */
    private static boolean inEmulatedMmio(Cpu c, long la) {
        long pa = c.mmu.probe(la);
        return pa != -1 && !c.memory.isRamPage(pa);
    }

    static String name(int seg) { return switch (seg) { case 0 -> "ES"; case 1 -> "CS"; case 2 -> "SS"; case 3 -> "DS"; case 4 -> "FS"; default -> "GS"; }; }

    /** Loads any data or stack segment register with the checks its kind needs. */
    static void load(Cpu c, int seg, int sel) {
        if (seg == Cpu.SS) Segments.loadSs(c, sel);
        else Segments.loadData(c, seg, sel);
    }

    /** A 16-bit r/m source operand. */
    record Src16(Ea ea, int reg) {
        int get(Cpu c) { return ea != null ? c.mmu.read16(ea.lin(c)) : (int) c.r[reg] & 0xFFFF; }
    }

    static Src16 src(Decoded d) { return new Src16(d.isMem() ? d.ea : null, d.rm); }

    private static Insn movFromSreg(Decoded d) {
        int seg = d.reg & 7;
        if (seg > 5) return null;
        if (d.isMem()) return new MovSregToMem(seg, d.ea);
        return new MovSregToReg(seg, d.rm, d.opSize);
    }

    private static Insn movToSreg(Decoded d) {
        int seg = d.reg & 7;
        if (seg > 5 || seg == Cpu.CS) return null;
        Insn i = new MovToSreg(seg, src(d));
        if (seg == Cpu.SS) i.endsTrace = true; // interrupt shadow, stack size
        return i;
    }

    /** 8C with a register: a 32/64-bit destination gets the selector zero-extended. */
    static final class MovSregToReg extends Insn {
        final int seg, reg, size;
        MovSregToReg(int seg, int reg, int size) { this.seg = seg; this.reg = reg; this.size = size; }
        @Override public void exec(Cpu c) { Regs.set(c, reg, size, c.segSel[seg]); }
    }

    static final class MovSregToMem extends Insn {
        final int seg;
        final Ea ea;
        MovSregToMem(int seg, Ea ea) { this.seg = seg; this.ea = ea; }
        @Override public void exec(Cpu c) { c.mmu.write16(ea.lin(c), c.segSel[seg]); }
    }

    /** 8E: MOV Sreg, r/m16. MOV SS blocks interrupts for one instruction (SDM 6.8.3). */
    static final class MovToSreg extends Insn {
        final int seg;
        final Src16 src;
        MovToSreg(int seg, Src16 src) { this.seg = seg; this.src = src; }
        @Override public void exec(Cpu c) {
            load(c, seg, src.get(c));
            if (seg == Cpu.SS) c.interruptShadow = c.movSsShadow = true;
        }
    }

    /** PUSH Sreg: the selector, zero-extended to the operand size. */
    static final class PushSreg extends Insn {
        final int seg, size;
        PushSreg(int seg, int size) { this.seg = seg; this.size = size; }
        @Override public void exec(Cpu c) { Stack.push(c, size, c.segSel[seg]); }
    }

    /** POP Sreg: load first (it may fault), then release the stack slot with the old stack width. */
    static final class PopSreg extends Insn {
        final int seg, size;
        PopSreg(int seg, int size) { this.seg = seg; this.size = size; }
        @Override public void exec(Cpu c) {
            int sel = (int) Stack.peek(c, size, 0) & 0xFFFF;
            long old = c.r[Cpu.RSP];
            Stack.setSp(c, old + size);
            long after = c.r[Cpu.RSP];
            c.r[Cpu.RSP] = old;
            load(c, seg, sel);
            c.r[Cpu.RSP] = after;
            if (seg == Cpu.SS) c.interruptShadow = c.movSsShadow = true;
        }
    }

    /** LDS/LES/LFS/LGS/LSS r, m16:16/32/64: the offset first, then the selector. */
    static final class LoadFarPointer extends Insn {
        final int seg, reg, opSize;
        final Ea ea;
        LoadFarPointer(int seg, Ea ea, int reg, int opSize) { this.seg = seg; this.ea = ea; this.reg = reg; this.opSize = opSize; }
        @Override public void exec(Cpu c) {
            long lin = ea.lin(c);
            int size = farOffsetSize(c, opSize, lin);
            long off = c.mmu.read(lin, size);
            int sel = c.mmu.read16(ea.lin(c, size));
            load(c, seg, sel);
            Regs.set(c, reg, size, off);
        }
    }

    // ------------------------------------------------------------------ 0F 00 group, LAR, LSL

    /** The 0F 00 group and LAR/LSL are #UD in real and virtual-8086 mode. */
    static void requireProtected(Cpu c) {
        if (!Segments.protectedMode(c)) throw c.ud();
    }

    /** CR4.UMIP makes SGDT/SIDT/SLDT/SMSW/STR #GP(0) at CPL > 0 (SDM 2.5). */
    static void checkUmip(Cpu c) {
        if ((c.cr4 & SystemOps.CR4_UMIP) != 0 && c.cpl > 0) throw c.gp0();
    }

    /** SLDT/STR: a register destination takes the operand size (zero-extended); memory takes 16 bits. */
    static final class StoreSel extends Insn {
        final int which, reg, size;
        final Ea ea;
        StoreSel(int which, Decoded d) {
            this.which = which;
            this.ea = d.isMem() ? d.ea : null;
            this.reg = d.rm;
            this.size = d.opSize;
        }
        @Override public void exec(Cpu c) {
            requireProtected(c);
            checkUmip(c);
            if (ea != null) c.mmu.write16(ea.lin(c), c.segSel[which]);
            else Regs.set(c, reg, size, c.segSel[which]);
        }
    }

    private static boolean lma(Cpu c) { return (c.efer & Cpu.EFER_LMA) != 0; }

    /**
     * IA-32e mode 16-byte LDT/TSS descriptors (SDM Vol. 2 LLDT/LTR, 64-bit mode exceptions; Vol. 3A 3.5.2):
     * a non-canonical base, or a non-zero type field in the upper half (bits 12:8), is #GP(selector).
     */
    static void checkBase64(Cpu c, int sel, long lo, long hi) {
        if (!lma(c)) return;
        long base = ((lo >>> 16) & 0xFF_FFFFL) | ((lo >>> 32) & 0xFF00_0000L) | ((hi & 0xFFFF_FFFFL) << 32);
        if (!Segments.canonical(base) || ((hi >>> 40) & 0x1F) != 0) throw c.fault(Exceptions.GP, sel & 0xFFFC);
    }

    /** LLDT (SDM Vol. 2): a GDT descriptor of type LDT; a null selector makes LDTR unusable. */
    static final class Lldt extends Insn {
        final Src16 src;
        Lldt(Src16 src) { this.src = src; }
        @Override public void exec(Cpu c) {
            requireProtected(c);
            if (c.cpl != 0) throw c.gp0();
            int sel = src.get(c);
            if ((sel & 0xFFFC) == 0) {
                cacheNull(c, Cpu.LDTR, sel);
                return;
            }
            if ((sel & 4) != 0) throw c.fault(Exceptions.GP, sel & 0xFFFC);
            long d = fetch(c, sel, Exceptions.GP, 0);
            int a = attr(d);
            if (!isSystem(a) || (a & 0xF) != T_LDT) throw c.fault(Exceptions.GP, sel & 0xFFFC);
            long hi = lma(c) ? fetchHigh(c, sel, Exceptions.GP, 0) : 0;
            if (!present(a)) throw c.fault(Exceptions.NP, sel & 0xFFFC);
            checkBase64(c, sel, d, hi);
            cache(c, Cpu.LDTR, sel, d);
            c.segBase[Cpu.LDTR] |= (hi & 0xFFFF_FFFFL) << 32;
        }
    }

    /** LTR (SDM Vol. 2): an available TSS in the GDT (64-bit TSS in IA-32e mode); marks it busy. */
    static final class Ltr extends Insn {
        final Src16 src;
        Ltr(Src16 src) { this.src = src; }
        @Override public void exec(Cpu c) {
            requireProtected(c);
            if (c.cpl != 0) throw c.gp0();
            int sel = src.get(c);
            if ((sel & 0xFFFC) == 0) throw c.gp0();
            if ((sel & 4) != 0) throw c.fault(Exceptions.GP, sel & 0xFFFC);
            long d = fetch(c, sel, Exceptions.GP, 0);
            int a = attr(d), type = a & 0xF;
            boolean ok = isSystem(a) && (type == T_TSS_AVAIL || (!lma(c) && type == T_TSS16_AVAIL));
            if (!ok) throw c.fault(Exceptions.GP, sel & 0xFFFC);
            long hi = lma(c) ? fetchHigh(c, sel, Exceptions.GP, 0) : 0;
            if (!present(a)) throw c.fault(Exceptions.NP, sel & 0xFFFC);
            checkBase64(c, sel, d, hi);
            long busy = d | (2L << 40);
            long addr = descriptorAddress(c, sel, 8);
            sysWrite(c, addr + 5, 1, busy >>> 40);
            cache(c, Cpu.TR, sel, busy);
            c.segBase[Cpu.TR] |= (hi & 0xFFFF_FFFFL) << 32;
        }
    }

    /** Sets only ZF (LAR, LSL, VERR, VERW leave the other flags alone). */
    static void setZf(Cpu c, boolean z) {
        Flags.materialize(c);
        c.ccSrc = z ? c.ccSrc | Flags.ZF : c.ccSrc & ~Flags.ZF;
    }

    /**
     * The descriptor for a LAR/LSL/VERR/VERW selector if it is visible at the current CPL and RPL
     * (conforming code always is), else null; these instructions report failure in ZF, never fault
     * on the selector.
     */
    static Long visibleDescriptor(Cpu c, int sel) {
        if ((sel & 0xFFFC) == 0) return null;
        long addr = descriptorAddress(c, sel, 8);
        if (addr == NO_DESCRIPTOR) return null;
        long d = sysRead(c, addr, 8);
        int a = attr(d);
        boolean conformingCode = isCode(a) && (a & A_CONFORMING) != 0;
        if (!conformingCode && (dpl(a) < c.cpl || dpl(a) < (sel & 3))) return null;
        return d;
    }

    /** LAR / LSL (SDM Vol. 2): which system types are accepted differs between them and by mode. */
    static final class LarLsl extends Insn {
        final Src16 src;
        final int reg, size;
        final boolean lsl;
        LarLsl(Src16 src, int reg, int size, boolean lsl) { this.src = src; this.reg = reg; this.size = size; this.lsl = lsl; }
        @Override public void exec(Cpu c) {
            requireProtected(c);
            Long d = visibleDescriptor(c, src.get(c));
            if (d != null && isSystem(attr(d))) {
                int type = attr(d) & 0xF;
                boolean ok = lma(c)
                        ? type == T_LDT || type == T_TSS_AVAIL || type == T_TSS_BUSY || (!lsl && type == T_CALLGATE)
                        : type == T_TSS16_AVAIL || type == T_LDT || type == T_TSS16_BUSY || type == T_TSS_AVAIL || type == T_TSS_BUSY
                            || (!lsl && (type == T_CALLGATE16 || type == T_TASKGATE || type == T_CALLGATE));
                if (!ok) d = null;
            }
            if (d == null) {
                setZf(c, false);
                return;
            }
            // LAR: bits 23:8 of the descriptor's high dword. The SDM masks with 00FxFF00H (x, limit 19:16,
            // undefined); hardware returns the limit nibble (the AMD host: 0x00affb00 for the 64-bit user CS).
            long v = lsl ? limit(d) : (d >>> 32) & 0x00FF_FF00L;
            Regs.set(c, reg, size, size == 2 ? v & 0xFFFF : v & 0xFFFF_FFFFL);
            setZf(c, true);
        }
    }

    /** VERR / VERW: readable (code or data) / writable data segment visible at CPL and RPL. */
    static final class Verify extends Insn {
        final Src16 src;
        final boolean write;
        Verify(Src16 src, boolean write) { this.src = src; this.write = write; }
        @Override public void exec(Cpu c) {
            requireProtected(c);
            Long d = visibleDescriptor(c, src.get(c));
            boolean ok = false;
            if (d != null) {
                int a = attr(d);
                if (write) ok = isWritableData(a);
                else ok = !isSystem(a) && (!isCode(a) || (a & A_RW) != 0);
            }
            setZf(c, ok);
        }
    }
}

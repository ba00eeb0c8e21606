package dev.polyvisor.cpu.exec;

import dev.polyvisor.cpu.Cpu;
import dev.polyvisor.cpu.Exceptions;
import dev.polyvisor.cpu.Flags;
import dev.polyvisor.cpu.Interrupts;
import dev.polyvisor.cpu.decode.Ea;
import dev.polyvisor.cpu.decode.Insn;
import dev.polyvisor.cpu.decode.OpcodeTable;

import static dev.polyvisor.cpu.Segments.*;
import static dev.polyvisor.cpu.decode.OpcodeTable.*;

/**
 * Far control transfers (SDM Vol. 2 "JMP", "CALL", "RET", "IRET"; Vol. 3A 5.8): direct and indirect
 * far JMP/CALL, far RET and IRET, in real, protected, compatibility and 64-bit mode, with the
 * privilege checks of each.
 *
 * <p>Supported: code-segment targets (including 64-bit code, CS.L); call gates at the same privilege
 * (16/32-bit, and 64-bit in IA-32e mode); CALL through a 64-bit call gate to an inner privilege level
 * (stack from TSS.RSPn, null SS) and through a 16/32-bit call gate (stack from the TSS, parameters
 * copied); IRET to virtual-8086 mode. Not supported: task gates and TSS targets (#GP(selector): no
 * hardware task switching) and IRET with NT=1 outside IA-32e mode (task return; #GP(0)).
 */
public final class FarControlOps {
    private FarControlOps() {}

    public static void register(OpcodeTable t) {
        t.add("JMP ptr16:16/32", MAP_1BYTE, 0xEA, NO64 | ENDS | ORACLE, Imm.AP, d -> new FarPtr((int) d.imm2 & 0xFFFF, d.imm, d.opSize, false));
        t.add("CALL ptr16:16/32", MAP_1BYTE, 0x9A, NO64 | ENDS | ORACLE, Imm.AP, d -> new FarPtr((int) d.imm2 & 0xFFFF, d.imm, d.opSize, true));
        // With REX.W the pointer is m16:64 on Intel and m16:32 on AMD (SegmentOps.farOffsetSize); the return
        // address a far CALL pushes takes 8-byte slots with REX.W on both (d.opSize).
        t.addGroup("CALL m16:16/32/64", MAP_1BYTE, 0xFF, 3, MEM_ONLY | ENDS | ORACLE, Imm.NONE,
                d -> new FarMem(d.ea, d.opSize, true));
        t.addGroup("JMP m16:16/32/64", MAP_1BYTE, 0xFF, 5, MEM_ONLY | ENDS | ORACLE, Imm.NONE,
                d -> new FarMem(d.ea, d.opSize, false));
        t.add("RETF imm16", MAP_1BYTE, 0xCA, ENDS | ORACLE, Imm.IW, d -> new RetFar(d.opSize, (int) d.imm & 0xFFFF));
        t.add("RETF", MAP_1BYTE, 0xCB, ENDS | ORACLE, Imm.NONE, d -> new RetFar(d.opSize, 0));
        t.add("IRET", MAP_1BYTE, 0xCF, ENDS | ORACLE, Imm.NONE, d -> new Iret(d.opSize));
    }

    /** EA / 9A: JMP/CALL ptr16:16 or ptr16:32 (not in 64-bit mode). */
    static final class FarPtr extends Insn {
        final int sel, size;
        final long off;
        final boolean call;
        FarPtr(int sel, long off, int size, boolean call) { this.sel = sel; this.off = off; this.size = size; this.call = call; }
        @Override public void exec(Cpu c) { transfer(c, sel, off, size, call); }
    }

    /** FF /3, FF /5: JMP/CALL m16:16, m16:32, m16:64 (REX.W). The offset comes first, the selector after it. */
    static final class FarMem extends Insn {
        final Ea ea;
        final int size;
        final boolean call;
        FarMem(Ea ea, int size, boolean call) { this.ea = ea; this.size = size; this.call = call; }
        @Override public void exec(Cpu c) {
            long lin = ea.lin(c);
            int offSize = SegmentOps.farOffsetSize(c, size, lin);
            long off = c.mmu.read(lin, offSize);
            int sel = c.mmu.read16(ea.lin(c, offSize));
            transfer(c, sel, off, size, call);
        }
    }

    static final class RetFar extends Insn {
        final int size, imm;
        RetFar(int size, int imm) { this.size = size; this.imm = imm; }
        @Override public void exec(Cpu c) { farReturn(c, size, imm); }
    }

    static final class Iret extends Insn {
        final int size;
        Iret(int size) { this.size = size; }
        @Override public void exec(Cpu c) { iret(c, size); }
    }

    static long mask(int size) { return size == 2 ? 0xFFFF : size == 4 ? 0xFFFF_FFFFL : -1L; }

    private static boolean lma(Cpu c) { return (c.efer & Cpu.EFER_LMA) != 0; }

    /** RIP in the target segment: canonical for 64-bit code, within the limit otherwise; #GP(0). */
    static void checkTargetIp(Cpu c, long desc, long ip) {
        if (lma(c) && (attr(desc) & A_L) != 0) {
            if (!canonical(ip)) throw c.gp0();
        } else if (Long.compareUnsigned(ip, limit(desc)) > 0) {
            throw c.gp0();
        }
    }

    /** Pushes the return CS and IP on the current stack; registers change only after both writes. */
    static void pushReturn(Cpu c, int size, long cs, long ip) {
        long sp = c.r[Cpu.RSP];
        if (c.long64) c.stackCanonical(sp - 2L * size, 2 * size); // non-canonical: #SS(0) (SDM Vol. 3A 6.15)
        long base = c.long64 ? 0 : c.segBase[Cpu.SS];
        Interrupts.stackWrite(c, base, sp - size, c.stackSize, size, cs);
        Interrupts.stackWrite(c, base, sp - 2L * size, c.stackSize, size, ip);
        Stack.setSp(c, sp - 2L * size);
    }

    /** Real mode and virtual-8086 mode: CS is loaded as base = selector << 4 (SDM 20.1.1). */
    private static void loadRealCs(Cpu c, int sel) {
        c.setRealSegment(Cpu.CS, sel);
        if ((c.rflags & Flags.VM) != 0) c.segAttr[Cpu.CS] = 0xFB;
        c.updateMode();
    }

    /** Far JMP and far CALL to {@code sel:off}. */
    public static void transfer(Cpu c, int sel, long off, int size, boolean call) {
        if (!protectedMode(c)) {
            if (call) pushReturn(c, size, c.segSel[Cpu.CS], c.rip);
            loadRealCs(c, sel);
            c.rip = off & mask(size);
            return;
        }
        if ((sel & 0xFFFC) == 0) throw c.gp0();
        long d = fetch(c, sel, Exceptions.GP, 0);
        int a = attr(d);
        if (isSystem(a)) {
            int type = a & 0xF;
            if (type == T_CALLGATE || (!lma(c) && type == T_CALLGATE16)) {
                callGate(c, sel, d, call);
                return;
            }
            // Task gates and TSS descriptors would need hardware task switching (not implemented).
            throw c.fault(Exceptions.GP, sel & 0xFFFC);
        }
        if (!isCode(a)) throw c.fault(Exceptions.GP, sel & 0xFFFC);
        int dpl = dpl(a);
        if ((a & A_CONFORMING) != 0 ? dpl > c.cpl : ((sel & 3) > c.cpl || dpl != c.cpl))
            throw c.fault(Exceptions.GP, sel & 0xFFFC);
        if (!present(a)) throw c.fault(Exceptions.NP, sel & 0xFFFC);
        if (lma(c) && (a & A_L) != 0 && (a & A_DB) != 0) throw c.fault(Exceptions.GP, sel & 0xFFFC);
        long ip = off & mask(size);
        checkTargetIp(c, d, ip);
        if (call) pushReturnTo(c, size, c.segSel[Cpu.CS], c.rip, a);
        setAccessed(c, sel, d);
        loadCs(c, sel, d, c.cpl);
        c.rip = ip;
    }

    /**
     * The return address of a far CALL to a code segment at the same privilege. In IA-32e mode only a CALL from
     * 64-bit code to 64-bit code pushes through the whole RSP; whenever compatibility mode is on either side, the
     * AMD host pushes at SS.base + ESP - n (wrapping at 4 GiB with SS.B) and leaves RSP zero-extended from ESP
     * (its fault addresses are truncated to 32 bits, and a non-canonical RSP does not fault).
     */
    static void pushReturnTo(Cpu c, int size, long cs, long ip, int targetAttr) {
        if (!lma(c) || c.long64 && (targetAttr & A_L) != 0) {
            pushReturn(c, size, cs, ip);
            return;
        }
        long sp = c.r[Cpu.RSP];
        int width = (c.segAttr[Cpu.SS] & A_DB) != 0 ? 4 : 2;
        long base = c.segBase[Cpu.SS];
        Interrupts.stackWrite(c, base, sp - size, width, size, cs);
        Interrupts.stackWrite(c, base, sp - 2L * size, width, size, ip);
        Interrupts.setSp(c, sp - 2L * size, width);
    }

    /** Through a call gate (SDM 5.8.4-5.8.6): 16/32-bit gates in legacy mode, 16-byte 64-bit gates in IA-32e mode. */
    private static void callGate(Cpu c, int sel, long gate, boolean call) {
        int ga = attr(gate);
        int gdpl = dpl(ga);
        boolean lma = lma(c);
        if (gdpl < c.cpl || gdpl < (sel & 3)) throw c.fault(Exceptions.GP, sel & 0xFFFC);
        if (!present(ga)) throw c.fault(Exceptions.NP, sel & 0xFFFC);
        long off;
        int size;
        if (lma) {
            long hi = fetchHigh(c, sel, Exceptions.GP, 0);
            if (((hi >>> 40) & 0x1F) != 0) throw c.fault(Exceptions.GP, sel & 0xFFFC);
            off = (gate & 0xFFFF) | ((gate >>> 32) & 0xFFFF_0000L) | (hi << 32);
            size = 8;
        } else if ((ga & 0xF) == T_CALLGATE16) {
            off = gate & 0xFFFF;
            size = 2;
        } else {
            off = (gate & 0xFFFF) | ((gate >>> 32) & 0xFFFF_0000L);
            size = 4;
        }
        int tsel = (int) (gate >>> 16) & 0xFFFF;
        if ((tsel & 0xFFFC) == 0) throw c.gp0();
        long td = fetch(c, tsel, Exceptions.GP, 0);
        int ta = attr(td);
        int tdpl = dpl(ta);
        boolean conforming = (ta & A_CONFORMING) != 0;
        if (!isCode(ta) || tdpl > c.cpl) throw c.fault(Exceptions.GP, tsel & 0xFFFC);
        if (lma && ((ta & A_L) == 0 || (ta & A_DB) != 0)) throw c.fault(Exceptions.GP, tsel & 0xFFFC);
        if (!call && !conforming && tdpl != c.cpl) throw c.fault(Exceptions.GP, tsel & 0xFFFC);
        if (!present(ta)) throw c.fault(Exceptions.NP, tsel & 0xFFFC);
        checkTargetIp(c, td, off);
        if (call && !conforming && tdpl < c.cpl) {
            if (!lma) {
                callGateInnerLegacy(c, gate, tsel, td, tdpl, size, off);
                return;
            }
            long rsp = tssRead(c, 4 + 8 * tdpl, 8, 0);
            if (!canonical(rsp)) throw c.fault(Exceptions.SS, 0);
            long[] frame = {c.segSel[Cpu.SS], c.r[Cpu.RSP], c.segSel[Cpu.CS], c.rip};
            c.mmu.setPrivilege(tdpl == 3);
            try {
                for (int i = 0; i < frame.length; i++) c.mmu.write64(rsp - 8L * (i + 1), frame[i]);
            } finally {
                c.mmu.setPrivilege(c.cpl == 3);
            }
            setAccessed(c, tsel, td);
            loadCs(c, tsel, td, tdpl);
            loadNullSs64(c, tdpl);
            c.r[Cpu.RSP] = rsp - 32;
            c.rip = off;
            return;
        }
        if (call) pushReturn(c, size, c.segSel[Cpu.CS], c.rip);
        setAccessed(c, tsel, td);
        loadCs(c, tsel, td, c.cpl);
        c.rip = off;
    }

    /**
     * CALL through a 16/32-bit call gate to an inner privilege level (SDM 5.8.5): the new SS:ESP comes
     * from the TSS; the old SS, old ESP, the gate's parameter count of words/dwords copied from the old
     * stack (in the same order), CS and EIP are pushed on the new stack.
     */
    private static void callGateInnerLegacy(Cpu c, long gate, int tsel, long td, int newCpl, int size, long off) {
        boolean tss32 = (c.segAttr[Cpu.TR] & 8) != 0;
        long sp;
        int ss;
        if (tss32) {
            sp = tssRead(c, 4 + 8 * newCpl, 4, 0);
            ss = (int) tssRead(c, 8 + 8 * newCpl, 2, 0);
        } else {
            sp = tssRead(c, 2 + 4 * newCpl, 2, 0);
            ss = (int) tssRead(c, 4 + 4 * newCpl, 2, 0);
        }
        long ssd = Interrupts.checkStackFromTss(c, ss, newCpl, 0);
        int params = (int) (gate >>> 32) & 0x1F;
        long[] frame = new long[4 + params];
        frame[0] = c.segSel[Cpu.SS];
        frame[1] = c.r[Cpu.RSP] & mask(c.stackSize);
        for (int i = 0; i < params; i++) frame[2 + i] = Stack.peek(c, size, (long) size * (params - 1 - i));
        frame[2 + params] = c.segSel[Cpu.CS];
        frame[3 + params] = c.rip;
        long ssBase = base(ssd);
        int sw = (attr(ssd) & A_DB) != 0 ? 4 : 2;
        c.mmu.setPrivilege(newCpl == 3);
        try {
            for (int i = 0; i < frame.length; i++) Interrupts.stackWrite(c, ssBase, sp - (long) size * (i + 1), sw, size, frame[i]);
        } finally {
            c.mmu.setPrivilege(c.cpl == 3);
        }
        setAccessed(c, tsel, td);
        loadCs(c, tsel, td, newCpl);
        setAccessed(c, ss, ssd);
        cache(c, Cpu.SS, ss, ssd);
        c.updateMode();
        Interrupts.setSp(c, sp - (long) size * frame.length, sw);
        c.rip = off;
    }

    /** The code segment popped by far RET / IRET (SDM "RET" protected-mode checks). */
    private static long checkReturnCs(Cpu c, int sel) {
        if ((sel & 0xFFFC) == 0) throw c.gp0();
        int rpl = sel & 3;
        if (rpl < c.cpl) throw c.fault(Exceptions.GP, sel & 0xFFFC);
        long d = fetch(c, sel, Exceptions.GP, 0);
        int a = attr(d);
        if (!isCode(a)) throw c.fault(Exceptions.GP, sel & 0xFFFC);
        if ((a & A_CONFORMING) != 0 ? dpl(a) > rpl : dpl(a) != rpl) throw c.fault(Exceptions.GP, sel & 0xFFFC);
        if (!present(a)) throw c.fault(Exceptions.NP, sel & 0xFFFC);
        if (lma(c) && (a & A_L) != 0 && (a & A_DB) != 0) throw c.fault(Exceptions.GP, sel & 0xFFFC);
        return d;
    }

    /**
     * The stack segment popped on a return to {@code rpl}: RPL and DPL equal to it, writable data,
     * present (#SS). Null is allowed only for a return to 64-bit code at RPL < 3; returns 0 for it.
     */
    private static long checkReturnSs(Cpu c, int ss, int rpl, boolean to64) {
        if ((ss & 0xFFFC) == 0) {
            if (to64 && rpl != 3) return 0;
            throw c.gp0();
        }
        if ((ss & 3) != rpl) throw c.fault(Exceptions.GP, ss & 0xFFFC);
        long d = fetch(c, ss, Exceptions.GP, 0);
        int a = attr(d);
        if (!isWritableData(a) || dpl(a) != rpl) throw c.fault(Exceptions.GP, ss & 0xFFFC);
        if (!present(a)) throw c.fault(Exceptions.SS, ss & 0xFFFC);
        return d;
    }

    private static void loadReturnSs(Cpu c, int ss, long d, int rpl) {
        if (d == 0) {
            loadNullSs64(c, rpl);
            c.segSel[Cpu.SS] = ss;
            return;
        }
        setAccessed(c, ss, d);
        cache(c, Cpu.SS, ss, d);
        c.updateMode();
    }

    /** Far RET (CB/CA): to the same or an outer privilege level; {@code imm} bytes released on both stacks. */
    public static void farReturn(Cpu c, int size, int imm) {
        // The stack is read before any check, the CS slot first, and for a selector whose RPL is not the CPL the
        // outer SS and RSP slots too: a #PF there comes before the #GP(selector) of the CS checks (the AMD host's
        // fault addresses show this order).
        int sel = (int) Stack.peek(c, size, size) & 0xFFFF;
        long ip = Stack.peek(c, size, 0);
        if (!protectedMode(c)) {
            Stack.setSp(c, c.r[Cpu.RSP] + 2L * size + imm);
            loadRealCs(c, sel);
            c.rip = ip & mask(size);
            return;
        }
        int rpl = sel & 3;
        int ss = 0;
        long newSp = 0;
        if (rpl != c.cpl) {
            ss = (int) Stack.peek(c, size, 3L * size + imm) & 0xFFFF;
            newSp = Stack.peek(c, size, 2L * size + imm);
        }
        long d = checkReturnCs(c, sel);
        ip &= mask(size);
        checkTargetIp(c, d, ip);
        if (rpl == c.cpl) {
            Stack.setSp(c, c.r[Cpu.RSP] + 2L * size + imm);
            setAccessed(c, sel, d);
            loadCs(c, sel, d, rpl);
            c.rip = ip;
            return;
        }
        boolean to64 = lma(c) && (attr(d) & A_L) != 0;
        long ssd = checkReturnSs(c, ss, rpl, to64);
        setAccessed(c, sel, d);
        loadCs(c, sel, d, rpl);
        loadReturnSs(c, ss, ssd, rpl);
        setSpAfterReturn(c, newSp + imm, size);
        c.rip = ip;
        nullInaccessible(c);
    }

    /** RSP after a return that loaded SS: a 64-bit pop sets all of RSP, a 32-bit one zero-extends. */
    private static void setSpAfterReturn(Cpu c, long sp, int size) {
        if (c.long64) c.r[Cpu.RSP] = sp & mask(size == 8 ? 8 : 4);
        else Stack.setSp(c, sp);
    }

    /**
     * IRETD at CPL 0 with VM set in the popped EFLAGS (SDM Vol. 2 "IRET", RETURN-TO-VIRTUAL-8086-MODE):
     * pops ESP, SS, ES, DS, FS, GS as well and loads every segment the virtual-8086 way.
     */
    private static void iretToV86(Cpu c, long ip, int cs, long fl) {
        long esp = Stack.peek(c, 4, 12);
        int[] sels = new int[4];
        for (int i = 0; i < 4; i++) sels[i] = (int) Stack.peek(c, 4, 20 + 4L * i) & 0xFFFF;
        int ss = (int) Stack.peek(c, 4, 16) & 0xFFFF;
        c.setRflags(fl);
        loadRealCs(c, cs);
        int[] segs = {Cpu.ES, Cpu.DS, Cpu.FS, Cpu.GS};
        for (int i = 0; i < 4; i++) {
            c.setRealSegment(segs[i], sels[i]);
            c.segAttr[segs[i]] = 0xF3;
        }
        c.setRealSegment(Cpu.SS, ss);
        c.segAttr[Cpu.SS] = 0xF3;
        c.updateMode();
        c.r[Cpu.RSP] = esp & 0xFFFF_FFFFL;
        c.rip = ip & 0xFFFF;
    }

    /** RFLAGS bits IRET may change at any privilege: arithmetic, TF, DF, NT, RF, AC, ID (SDM "IRET"). */
    private static final long IRET_ALWAYS = Flags.ARITH | Flags.TF | Flags.DF | Flags.NT | Flags.RF | Flags.AC | Flags.ID;

    /** IRET / IRETD / IRETQ (CF). NMI blocking ends here (SDM 6.7.1). */
    public static void iret(Cpu c, int size) {
        c.nmiBlocked = false;
        long cur = c.getRflags();
        if ((c.cr0 & Cpu.CR0_PE) == 0 || (c.rflags & Flags.VM) != 0) {
            boolean v86 = (c.rflags & Flags.VM) != 0;
            if (v86 && ((c.rflags & Flags.IOPL) >>> 12) != 3) throw c.gp0(); // no VME
            long ip = Stack.peek(c, size, 0);
            int sel = (int) Stack.peek(c, size, size) & 0xFFFF;
            long fl = Stack.peek(c, size, 2L * size);
            long changeable = IRET_ALWAYS | Flags.IF | (v86 ? 0 : Flags.IOPL);
            if (size == 2) changeable &= 0xFFFF;
            Stack.setSp(c, c.r[Cpu.RSP] + 3L * size);
            c.setRflags((cur & ~changeable) | (fl & changeable));
            loadRealCs(c, sel);
            c.rip = ip & mask(size);
            return;
        }
        if ((c.rflags & Flags.NT) != 0) throw c.gp0(); // IA-32e: #GP(0); legacy: task return, not implemented
        // The RFLAGS slot is read first, then CS and RIP (the AMD host's #PF addresses show the order).
        long fl = Stack.peek(c, size, 2L * size);
        int sel = (int) Stack.peek(c, size, size) & 0xFFFF;
        long ip = Stack.peek(c, size, 0);
        if (!lma(c) && size == 4 && (fl & Flags.VM) != 0 && c.cpl == 0) {
            iretToV86(c, ip, sel, fl);
            return;
        }
        int rpl = sel & 3;
        // In 64-bit mode IRET always pops SS:RSP; elsewhere only on a return to an outer level. The whole frame is
        // read before the CS checks, SS before RSP (as the host's #PF addresses show).
        boolean popSs = rpl > c.cpl || c.long64;
        long newSp = 0, ssd = 0;
        int ss = 0;
        if (popSs) {
            ss = (int) Stack.peek(c, size, 4L * size) & 0xFFFF;
            newSp = Stack.peek(c, size, 3L * size);
        }
        long d = checkReturnCs(c, sel);
        ip &= mask(size);
        checkTargetIp(c, d, ip);
        if (popSs) ssd = checkReturnSs(c, ss, rpl, lma(c) && (attr(d) & A_L) != 0);
        int cpl = c.cpl;
        long changeable = IRET_ALWAYS;
        if (cpl <= (int) ((cur & Flags.IOPL) >>> 12)) changeable |= Flags.IF;
        if (cpl == 0) changeable |= Flags.IOPL | Flags.VIF | Flags.VIP;
        if (size == 2) changeable &= 0xFFFF;
        // Commit.
        c.setRflags((cur & ~changeable) | (fl & changeable));
        setAccessed(c, sel, d);
        if (!popSs) {
            Stack.setSp(c, c.r[Cpu.RSP] + 3L * size);
            loadCs(c, sel, d, rpl);
            c.rip = ip;
            return;
        }
        loadCs(c, sel, d, rpl);
        loadReturnSs(c, ss, ssd, rpl);
        setSpAfterReturn(c, newSp, size);
        c.rip = ip;
        if (rpl > cpl) nullInaccessible(c);
    }
}

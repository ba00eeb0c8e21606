package dev.polyvisor.cpu;

import static dev.polyvisor.cpu.Segments.*;

/**
 * Exception and interrupt delivery (SDM Vol. 3A, chapter 6): the real-mode IVT, protected-mode and
 * long-mode IDT gates, privilege and stack switches (TSS RSP0-2, IST1-7), error codes, and the
 * double-fault / triple-fault escalation (Table 6-5).
 *
 * <p>Delivery checks everything and writes the whole frame before it commits any register, so a
 * fault during delivery (#GP/#NP from the gate, #TS/#SS from the new stack, #PF on the frame) leaves
 * the interrupted state intact, and the second fault is delivered from it.
 *
 * <p>Not supported: task gates and task switching (a task gate in the IDT raises #GP(vector*8+2+EXT),
 * as if the gate type were invalid); virtual-8086 mode extensions (VME/PVI).
 */
public final class Interrupts {
    /**
     * Delivery kinds: a fault/trap raised by an instruction or the CPU, an external interrupt (or NMI),
     * INT n / INT3 / INTO (gate DPL checked, no error code), and INT1/ICEBP (no DPL check).
     */
    public static final int EXCEPTION = 0, EXTERNAL = 1, SOFTWARE = 2, ICEBP = 3;

    /** A fault while delivering #DF: the processor shuts down (SDM 6.15, interrupt 8). */
    public static final class TripleFault extends RuntimeException {
        public TripleFault(String msg) { super(msg, null, false, false); }
    }

    private Interrupts() {}

    /**
     * Delivers {@code vector}. For faults c.rip is the faulting instruction; for traps and software
     * interrupts it is the next one (which is what the frame must hold). Never throws CpuFault:
     * faults during delivery are escalated here; only {@link TripleFault} escapes.
     */
    public static void deliver(Cpu c, int vector, int errorCode, int kind) {
        for (int attempt = 0; ; attempt++) {
            try {
                deliverOnce(c, vector, errorCode, kind);
                c.halted = false;
                c.deliveries++;
                if (vector == Exceptions.DB && kind != SOFTWARE) c.debugDeliveries++;
                return;
            } catch (CpuFault f) {
                c.mmu.setPrivilege(c.cpl == 3);
                // A fault while delivering INT n is reported at the INT n instruction.
                if (kind == SOFTWARE || kind == ICEBP) c.rip = c.prevRip;
                int second = f.vector, ec = f.errorCode;
                if ((kind == EXCEPTION && vector == Exceptions.DF) || attempt > 4)
                    throw new TripleFault("triple fault: " + Exceptions.name(second) + (ec >= 0 ? "(0x" + Integer.toHexString(ec) + ")" : "")
                            + " while delivering " + Exceptions.name(vector) + " at " + where(c));
                if (causesDoubleFault(kind, vector, second)) {
                    vector = Exceptions.DF;
                    errorCode = 0;
                } else {
                    vector = second;
                    errorCode = ec;
                }
                kind = EXCEPTION;
            }
        }
    }

    /** SDM Table 6-5: contributory after contributory, or contributory/#PF after #PF, is a #DF. */
    static boolean causesDoubleFault(int kind, int first, int second) {
        if (kind != EXCEPTION) return false; // an interrupt is benign
        boolean secondBad = Exceptions.contributory(second) || second == Exceptions.PF;
        if (first == Exceptions.PF) return secondBad;
        return Exceptions.contributory(first) && Exceptions.contributory(second);
    }

    private static String where(Cpu c) {
        return String.format("CS:RIP %04x:%x (CR0 %x, CR3 %x, CR2 %x)", c.segSel[Cpu.CS], c.rip, c.cr0, c.cr3, c.cr2);
    }

    private static void deliverOnce(Cpu c, int vector, int errorCode, int kind) {
        if ((c.cr0 & Cpu.CR0_PE) == 0) {
            deliverReal(c, vector);
            return;
        }
        // EXT is clear only for faults while delivering INT n / INT3 / INTO (SDM 6.13); INT1 counts as external.
        int ext = kind == SOFTWARE ? 0 : 1;
        boolean pushEc = kind == EXCEPTION && Exceptions.hasErrorCode(vector);
        int ec = Math.max(errorCode, 0);
        if ((c.efer & Cpu.EFER_LMA) != 0) deliverLong(c, vector, pushEc, ec, kind, ext);
        else deliverProtected(c, vector, pushEc, ec, kind, ext);
        if (vector == Exceptions.NMI && kind == EXTERNAL) c.nmiBlocked = true;
    }

    /** Real mode: IVT entry at vector*4, push FLAGS, CS, IP; clear IF, TF, AC (SDM 20.1.4). */
    static void deliverReal(Cpu c, int vector) {
        long ent = vector * 4L;
        if (ent + 3 > c.idtLimit) throw c.fault(Exceptions.GP, vector * 8 + 2);
        int ip = c.mmu.read16(c.idtBase + ent);
        int cs = c.mmu.read16(c.idtBase + ent + 2);
        long sp = c.r[Cpu.RSP];
        int w = c.stackSize;
        long ssBase = c.segBase[Cpu.SS];
        stackWrite(c, ssBase, sp - 2, w, 2, c.getRflags());
        stackWrite(c, ssBase, sp - 4, w, 2, c.segSel[Cpu.CS]);
        stackWrite(c, ssBase, sp - 6, w, 2, c.rip);
        setSp(c, sp - 6, w);
        c.rflags &= ~(Flags.IF | Flags.TF | Flags.AC | Flags.RF);
        c.setRealSegment(Cpu.CS, cs);
        c.rip = ip;
    }

    /** The RFLAGS image of a frame: RF set for a fault-class exception (SDM Vol. 3A 18.3.1.1), as is otherwise. */
    private static long frameFlags(Cpu c, int vector, int kind) {
        long f = c.getRflags();
        return kind == EXCEPTION && Exceptions.faultClass(vector) ? f | Flags.RF : f;
    }

    /** The IDT error code for a fault about the gate itself: IDT bit set (SDM 6.13). */
    private static int idtError(int vector, int ext) { return vector * 8 + 2 + ext; }

    /** The code segment an interrupt gate names, checked per SDM 6.12.1.1; returns the descriptor. */
    private static long gateTarget(Cpu c, int sel, int ext, boolean long64) {
        if ((sel & 0xFFFC) == 0) throw c.fault(Exceptions.GP, ext);
        long cs = fetch(c, sel, Exceptions.GP, ext);
        int a = attr(cs);
        if (!isCode(a) || dpl(a) > c.cpl || (long64 && ((a & A_L) == 0 || (a & A_DB) != 0)))
            throw c.fault(Exceptions.GP, (sel & 0xFFFC) | ext);
        if (!present(a)) throw c.fault(Exceptions.NP, (sel & 0xFFFC) | ext);
        return cs;
    }

    /**
     * IA-32e mode (SDM 6.14): 16-byte gates, 64-bit target code only, IST, RSP aligned to 16, and a frame
     * that always holds SS:RSP. A privilege change loads a null SS whose RPL is the new CPL.
     */
    static void deliverLong(Cpu c, int vector, boolean pushEc, int ec, int kind, int ext) {
        int idtEc = idtError(vector, ext);
        if (vector * 16L + 15 > c.idtLimit) throw c.fault(Exceptions.GP, idtEc);
        long lo = sysRead(c, c.idtBase + vector * 16L, 8);
        long hi = sysRead(c, c.idtBase + vector * 16L + 8, 8);
        int type = (int) (lo >>> 40) & 0x1F; // S bit and type
        int gateDpl = (int) (lo >>> 45) & 3;
        if (type != 0xE && type != 0xF) throw c.fault(Exceptions.GP, idtEc);
        if (kind == SOFTWARE && gateDpl < c.cpl) throw c.fault(Exceptions.GP, idtEc);
        if ((lo & (1L << 47)) == 0) throw c.fault(Exceptions.NP, idtEc);
        int sel = (int) (lo >>> 16) & 0xFFFF;
        long target = (lo & 0xFFFF) | ((lo >>> 32) & 0xFFFF_0000L) | (hi << 32);
        int ist = (int) (lo >>> 32) & 7;
        long cs = gateTarget(c, sel, ext, true);
        int a = attr(cs);
        int newCpl = (a & A_CONFORMING) != 0 ? c.cpl : dpl(a);
        long rsp = c.r[Cpu.RSP];
        if (newCpl < c.cpl) rsp = tssRead(c, 4 + 8 * newCpl, 8, ext);
        if (ist != 0) rsp = tssRead(c, 0x24 + 8 * (ist - 1), 8, ext);
        if (!canonical(rsp)) throw c.fault(Exceptions.SS, ext);
        if (!canonical(target)) throw c.fault(Exceptions.GP, ext);
        rsp &= ~0xFL;
        long flags = frameFlags(c, vector, kind);
        long[] frame = pushEc
                ? new long[] {c.segSel[Cpu.SS], c.r[Cpu.RSP], flags, c.segSel[Cpu.CS], c.rip, ec & 0xFFFF_FFFFL}
                : new long[] {c.segSel[Cpu.SS], c.r[Cpu.RSP], flags, c.segSel[Cpu.CS], c.rip};
        c.mmu.setPrivilege(newCpl == 3);
        try {
            for (int i = 0; i < frame.length; i++) c.mmu.write64(rsp - 8L * (i + 1), frame[i]);
        } finally {
            c.mmu.setPrivilege(c.cpl == 3);
        }
        // Commit.
        setAccessed(c, sel, cs);
        boolean changed = newCpl != c.cpl;
        c.rflags &= ~(Flags.TF | Flags.NT | Flags.RF | Flags.VM);
        if (type == 0xE) c.rflags &= ~Flags.IF;
        loadCs(c, sel, cs, newCpl);
        if (changed) loadNullSs64(c, newCpl);
        c.r[Cpu.RSP] = rsp - 8L * frame.length;
        c.rip = target;
    }

    /**
     * Protected mode (SDM 6.12): 8-byte interrupt and trap gates (16- and 32-bit), a stack switch from
     * the TSS on a privilege change (SS and ESP checked per SDM 6.12.1 / #TS rules), and delivery from
     * virtual-8086 mode to a ring-0 handler (pushing GS, FS, DS, ES; SDM 20.3.1.1).
     */
    static void deliverProtected(Cpu c, int vector, boolean pushEc, int ec, int kind, int ext) {
        int idtEc = idtError(vector, ext);
        boolean v86 = (c.rflags & Flags.VM) != 0;
        if (kind == SOFTWARE && v86 && ((c.rflags & Flags.IOPL) >>> 12) < 3) throw c.gp0(); // no VME
        if (vector * 8L + 7 > c.idtLimit) throw c.fault(Exceptions.GP, idtEc);
        long g = sysRead(c, c.idtBase + vector * 8L, 8);
        int type = (int) (g >>> 40) & 0x1F;
        int gateDpl = (int) (g >>> 45) & 3;
        // Task gates (type 5) would need hardware task switching, which is not implemented.
        if (type != 6 && type != 7 && type != 0xE && type != 0xF) throw c.fault(Exceptions.GP, idtEc);
        if (kind == SOFTWARE && gateDpl < c.cpl) throw c.fault(Exceptions.GP, idtEc);
        if ((g & (1L << 47)) == 0) throw c.fault(Exceptions.NP, idtEc);
        boolean gate32 = (type & 8) != 0;
        int w = gate32 ? 4 : 2;
        int sel = (int) (g >>> 16) & 0xFFFF;
        long offset = gate32 ? (g & 0xFFFF) | ((g >>> 32) & 0xFFFF_0000L) : g & 0xFFFF;
        long cs = gateTarget(c, sel, ext, false);
        int a = attr(cs);
        if (offset > limit(cs)) throw c.fault(Exceptions.GP, ext);
        int newCpl = (a & A_CONFORMING) != 0 ? c.cpl : dpl(a);
        if (v86 && (newCpl != 0 || (a & A_CONFORMING) != 0)) throw c.fault(Exceptions.GP, sel & 0xFFFC);

        long flags = frameFlags(c, vector, kind);
        int newSs = c.segSel[Cpu.SS];
        long ssDesc = 0, ssBase = c.segBase[Cpu.SS], sp = c.r[Cpu.RSP];
        int sw = c.stackSize;
        boolean inner = newCpl < c.cpl;
        long[] frame;
        if (inner) {
            boolean tss32 = (c.segAttr[Cpu.TR] & 8) != 0;
            if (tss32) {
                sp = tssRead(c, 4 + 8 * newCpl, 4, ext);
                newSs = (int) tssRead(c, 8 + 8 * newCpl, 2, ext);
            } else {
                sp = tssRead(c, 2 + 4 * newCpl, 2, ext);
                newSs = (int) tssRead(c, 4 + 4 * newCpl, 2, ext);
            }
            ssDesc = checkStackFromTss(c, newSs, newCpl, ext);
            ssBase = base(ssDesc);
            sw = (attr(ssDesc) & A_DB) != 0 ? 4 : 2;
            long oldSp = c.r[Cpu.RSP] & 0xFFFF_FFFFL;
            long head = flags, csSel = c.segSel[Cpu.CS], ip = c.rip;
            frame = v86
                    ? new long[] {c.segSel[Cpu.GS], c.segSel[Cpu.FS], c.segSel[Cpu.DS], c.segSel[Cpu.ES],
                            c.segSel[Cpu.SS], oldSp, head, csSel, ip}
                    : new long[] {c.segSel[Cpu.SS], oldSp, head, csSel, ip};
        } else {
            frame = new long[] {flags, c.segSel[Cpu.CS], c.rip};
        }
        if (pushEc) {
            long[] f2 = java.util.Arrays.copyOf(frame, frame.length + 1);
            f2[frame.length] = ec;
            frame = f2;
        }
        c.mmu.setPrivilege(newCpl == 3);
        try {
            for (int i = 0; i < frame.length; i++) stackWrite(c, ssBase, sp - (long) w * (i + 1), sw, w, frame[i]);
        } finally {
            c.mmu.setPrivilege(c.cpl == 3);
        }
        // Commit.
        setAccessed(c, sel, cs);
        c.rflags &= ~(Flags.TF | Flags.NT | Flags.RF | Flags.VM);
        if ((type & 1) == 0) c.rflags &= ~Flags.IF;
        if (v86) for (int s : new int[] {Cpu.ES, Cpu.DS, Cpu.FS, Cpu.GS}) cacheNull(c, s, 0);
        loadCs(c, sel, cs, newCpl);
        if (inner) {
            setAccessed(c, newSs, ssDesc);
            cache(c, Cpu.SS, newSs, ssDesc);
            c.updateMode();
        }
        setSp(c, sp - (long) w * frame.length, sw);
        c.rip = offset;
    }

    /** The stack segment named by the TSS for an inner-privilege transfer (SDM 6.12.1.2, #TS conditions). */
    public static long checkStackFromTss(Cpu c, int ss, int newCpl, int ext) {
        if ((ss & 0xFFFC) == 0) throw c.fault(Exceptions.TS, ext);
        long d = fetch(c, ss, Exceptions.TS, ext);
        int a = attr(d);
        if ((ss & 3) != newCpl || dpl(a) != newCpl || !isWritableData(a)) throw c.fault(Exceptions.TS, (ss & 0xFFFC) | ext);
        if (!present(a)) throw c.fault(Exceptions.SS, (ss & 0xFFFC) | ext);
        return d;
    }

    /** Writes {@code size} bytes at SS offset {@code sp}, wrapped to the stack width (2 or 4). */
    public static void stackWrite(Cpu c, long ssBase, long sp, int stackWidth, int size, long v) {
        long off = stackWidth == 8 ? sp : stackWidth == 4 ? sp & 0xFFFF_FFFFL : sp & 0xFFFF;
        long la = ssBase + off;
        if ((c.efer & Cpu.EFER_LMA) == 0) la &= 0xFFFF_FFFFL;
        c.mmu.write(la, size, v);
    }

    public static void setSp(Cpu c, long sp, int stackWidth) {
        switch (stackWidth) {
            case 8 -> c.r[Cpu.RSP] = sp;
            case 4 -> c.r[Cpu.RSP] = sp & 0xFFFF_FFFFL;
            default -> c.r[Cpu.RSP] = (c.r[Cpu.RSP] & ~0xFFFFL) | (sp & 0xFFFF);
        }
    }
}

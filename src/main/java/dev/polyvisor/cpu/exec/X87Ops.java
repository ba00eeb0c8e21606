package dev.polyvisor.cpu.exec;

import dev.polyvisor.cpu.Cpu;
import dev.polyvisor.cpu.Exceptions;
import dev.polyvisor.cpu.Flags;
import dev.polyvisor.cpu.decode.Decoded;
import dev.polyvisor.cpu.decode.Ea;
import dev.polyvisor.cpu.decode.Insn;
import dev.polyvisor.cpu.decode.OpcodeTable;
import dev.polyvisor.cpu.exec.X87Math.Ext;
import dev.polyvisor.cpu.mmu.Mmu;

import static dev.polyvisor.cpu.decode.OpcodeTable.*;
import static dev.polyvisor.cpu.exec.SoftFloat.*;
import static dev.polyvisor.cpu.exec.X87.*;
import static dev.polyvisor.cpu.exec.X87Math.*;
import static dev.polyvisor.cpu.exec.SoftFloat.F32;
import static dev.polyvisor.cpu.exec.SoftFloat.F64;

/**
 * The x87 FPU subset that glibc and Linux execute (SDM Vol. 1, chapter 8; Vol. 2 per instruction):
 * loads and stores of every memory format (m32/m64/m80 real, m16/m32/m64 integer), register moves,
 * FXCH, the constants, the four basic operations in all forms, FSQRT, FRNDINT, FSCALE, FPREM/FPREM1,
 * compares (FCOM/FUCOM/FCOMI/FUCOMI/FTST/FXAM), FCMOVcc, control and environment instructions
 * (FNINIT, FLDCW, FNSTCW, FNSTSW, FNCLEX, FWAIT, FLDENV/FNSTENV, FNSAVE/FRSTOR).
 *
 * <p>Arithmetic is exact 80-bit (X87Math), honouring FCW precision and rounding control. Not
 * implemented, and #UD here: transcendentals (F2XM1, FYL2X, FPTAN, FPATAN, FSIN, FCOS, FSINCOS,
 * FYL2XP1), FBLD/FBSTP, and the real-mode/virtual-8086 environment layouts (the protected
 * mode 14/28-byte layouts are used in every mode). Unmasked exceptions set ES/B; a pending one raises
 * #MF at the next waiting instruction when CR0.NE=1; unmasked overflow/underflow store the masked
 * result rather than the exponent-biased one.
 */
public final class X87Ops {
    private X87Ops() {}

    /** One x87 instruction; the body gets the handler for its operands. */
    @FunctionalInterface
    interface Body { void run(Cpu c, X87Insn i); }

    static final class X87Insn extends Insn {
        final Ea ea;
        final int sti, fop, opSize;
        final boolean control, waits;
        final Body body;

        X87Insn(Decoded d, boolean control, Body body) { this(d, control, !control, body); }

        X87Insn(Decoded d, boolean control, boolean waits, Body body) {
            this.ea = d.isMem() ? d.ea : null;
            this.sti = d.modrm & 7;
            this.fop = ((d.opcode & 7) << 8) | d.modrm;
            this.opSize = d.opSize == 2 ? 2 : 4;
            this.control = control;
            this.waits = waits;
            this.body = body;
        }

        long la(Cpu c) { return ea.lin(c); }

        @Override public void exec(Cpu c) {
            // CR0.EM or CR0.TS: #NM (SDM Vol. 3A, 2.5, CR0.EM/TS); then a pending unmasked exception: #MF (CR0.NE=1).
            if ((c.cr0 & (Cpu.CR0_EM | Cpu.CR0_TS)) != 0) throw c.fault(Exceptions.NM);
            if (waits && (c.fsw & ES) != 0 && (c.cr0 & Cpu.CR0_NE) != 0) throw c.fault(Exceptions.MF);
            body.run(c, this);
            if (!control) {
                c.fip = c.prevRip;
                c.fop = fop & 0x7FF;
                if (ea != null) c.fdp = ea.ea(c);
            }
        }
    }

    // ------------------------------------------------------------------ stack helpers

    static boolean empty(Cpu c, int i) { return tag(c, phys(c, i)) == TAG_EMPTY; }

    static Ext get(Cpu c, int i) { int p = phys(c, i); return new Ext(c.stMant[p], c.stExp[p]); }

    static void put(Cpu c, int i, Ext v) {
        int p = phys(c, i);
        setPhys(c, p, v.m(), v.se());
        setTag(c, p, tagOf(v.m(), v.se()));
    }

    static void pop(Cpu c) {
        setTag(c, phys(c, 0), TAG_EMPTY);
        c.fpuTop = (c.fpuTop + 1) & 7;
    }

    /** Stack underflow (SDM Vol. 1, 8.5.1.1): IE and SF, C1 = 0; the masked response is the indefinite. */
    static Ext underflow(Cpu c) {
        c.fsw = (c.fsw | IE | SF) & ~C1;
        return INDEFINITE;
    }

    static Ext read(Cpu c, int i) { return empty(c, i) ? underflow(c) : get(c, i); }

    /** The value a push stores: a full stack (ST7 in use) is an overflow, IE, SF and C1 = 1. */
    static Ext pushValue(Cpu c, Ext v) {
        if (!empty(c, 7)) { c.fsw |= IE | SF | C1; return INDEFINITE; }
        return v;
    }

    static void push(Cpu c, Ext v) {
        c.fpuTop = (c.fpuTop - 1) & 7;
        put(c, 0, v);
    }

    /**
     * Starts an instruction that reports exceptions: clears this instruction's flag set and C1, which
     * every such instruction defines as 0 unless it signals a stack overflow, rounds up or stores a
     * quotient bit or sign there (SDM "FPU Flags Affected").
     */
    static int begin(Cpu c) {
        int old = c.fsw;
        c.fsw &= ~(0x3F | C1);
        return old;
    }

    /** Merges the sticky flags; returns false when an unmasked IE/DE/ZE forbids writing the result. */
    static boolean end(Cpu c, int old) {
        // A denormal operand is not reported when the operation is invalid or divides by zero (the
        // higher-priority exceptions, SDM Vol. 1, 8.7), as the host CPU does.
        if ((c.fsw & (IE | ZE)) != 0) c.fsw &= ~DE;
        // An unmasked IE/DE/ZE stops the operation before its result is rounded: no PE, UE, OE, nor a
        // round-up C1 from a result that is not delivered (observed on the AMD host). A stack fault keeps its C1.
        if ((c.fsw & ~c.fcw & (IE | DE | ZE)) != 0 && (c.fsw & SF) == 0) c.fsw &= ~(PE | UE | OE | C1);
        int raised = c.fsw & 0x3F;
        c.fsw |= old & 0x3F;
        int unmasked = raised & ~c.fcw & 0x3F;
        if (unmasked != 0) c.fsw |= ES | B;
        return (unmasked & (IE | DE | ZE)) == 0;
    }

    static void probe(Cpu c, long la, int size) {
        c.mmu.translate(la, Mmu.WRITE);
        if (((la & 0xFFF) + size) > 0x1000) c.mmu.translate(la + size - 1, Mmu.WRITE);
    }

    // ------------------------------------------------------------------ operations

    /** dst = dst op y (or y op dst when reversed); y null means ST(si). */
    static void binop(Cpu c, int op, boolean rev, int di, Ext y, int si, boolean popAfter) {
        binop(c, op, rev, di, y, si, popAfter, 0);
    }

    /** {@code extra}: flags the operand conversion raised (DE for a denormal m32/m64 operand). */
    static void binop(Cpu c, int op, boolean rev, int di, Ext y, int si, boolean popAfter, int extra) {
        int old = begin(c);
        if (!empty(c, di) && !isNaN(get(c, di)) && (y == null || !isNaN(y))) c.fsw |= extra; // NaN: no DE
        Ext r;
        if (empty(c, di) || (y == null && empty(c, si))) {
            r = underflow(c);
        } else {
            Ext x = get(c, di), yy = y != null ? y : get(c, si);
            r = rev ? X87Math.arith(c, op, yy, x) : X87Math.arith(c, op, x, yy);
        }
        if (end(c, old)) {
            put(c, di, r);
            if (popAfter) pop(c);
        }
    }

    /** FCOM-family: compares ST0 with y (or ST(si)), sets C3/C2/C0 or ZF/PF/CF, then pops. */
    static void compare(Cpu c, Ext y, int si, boolean signal, int pops, boolean eflags) {
        compare(c, y, si, signal, pops, eflags, 0);
    }

    static void compare(Cpu c, Ext y, int si, boolean signal, int pops, boolean eflags, int extra) {
        int old = begin(c);
        if (!empty(c, 0) && !isNaN(get(c, 0)) && (y == null || !isNaN(y))) c.fsw |= extra; // NaN: no DE
        int r;
        if (empty(c, 0) || (y == null && empty(c, si))) { underflow(c); r = 2; }
        else r = X87Math.compare(c, get(c, 0), y != null ? y : get(c, si), signal);
        // An unmasked exception (end() false) still sets the condition codes or EFLAGS, a comparison having no
        // other result, but pops nothing (observed on the AMD host through the oracle's unmasked cases).
        boolean delivered = end(c, old);
        c.fsw &= ~C1;
        int zf = r == 0 || r == 2 ? 1 : 0, pf = r == 2 ? 1 : 0, cf = r == -1 || r == 2 ? 1 : 0;
        if (eflags) {
            c.ccOp = Flags.EFLAGS;
            c.ccSrc = (zf != 0 ? Flags.ZF : 0) | (pf != 0 ? Flags.PF : 0) | (cf != 0 ? Flags.CF : 0);
        } else {
            c.fsw = (c.fsw & ~(C0 | C2 | C3)) | (zf != 0 ? C3 : 0) | (pf != 0 ? C2 : 0) | (cf != 0 ? C0 : 0);
        }
        if (!delivered) return;
        for (int k = 0; k < pops; k++) pop(c);
    }

    /** ST0 = f(ST0) for the one-operand arithmetic instructions. */
    @FunctionalInterface
    interface Unary { Ext f(Cpu c, Ext x); }

    static void unary(Cpu c, Unary f) {
        int old = begin(c);
        Ext r = empty(c, 0) ? underflow(c) : f.f(c, get(c, 0));
        if (end(c, old)) put(c, 0, r);
    }

    static void load(Cpu c, Ext v) {
        int old = begin(c);
        v = pushValue(c, v);
        if (end(c, old)) push(c, v);
    }

    /** FLD m32/m64 (flags come from the conversion). */
    static void loadReal(Cpu c, long bits, Format f) {
        int old = begin(c);
        Ext v = pushValue(c, X87Math.fromBits(c, bits, f));
        if (end(c, old)) push(c, v);
    }

    static void storeReal(Cpu c, X87Insn i, Format f, boolean popAfter) {
        long la = i.la(c);
        int size = f == F64 ? 8 : 4;
        probe(c, la, size);
        int old = begin(c);
        long bits = X87Math.toBits(c, read(c, 0), f);
        if (end(c, old)) {
            c.mmu.write(la, size, bits);
            if (popAfter) pop(c);
        }
    }

    static void storeInt(Cpu c, X87Insn i, int size, boolean truncate, boolean popAfter) {
        long la = i.la(c);
        probe(c, la, size);
        int old = begin(c);
        long v = X87Math.toInt(c, read(c, 0), size * 8, truncate);
        if (end(c, old)) {
            c.mmu.write(la, size, v);
            if (popAfter) pop(c);
        }
    }

    static Ext readM80(Cpu c, X87Insn i) {
        long m = c.mmu.read64(i.la(c));
        int se = c.mmu.read16(i.ea.lin(c, 8));
        return new Ext(m, se);
    }

    /**
     * An m32/m64 real operand for arithmetic and compares, widened exactly; SNaNs stay signalling so
     * the operation applies the x87 NaN rules (and raises IE) itself.
     */
    static Ext realOperand(Cpu c, X87Insn i, Format f, int size) {
        long bits = c.mmu.read(i.la(c), size);
        if (SseFloat.isNaN(bits, f)) {
            long m = Long.MIN_VALUE | (f == F64 ? (bits & 0xF_FFFF_FFFF_FFFFL) << 11 : (bits & 0x7F_FFFFL) << 40);
            boolean neg = f == F64 ? bits < 0 : (bits & 0x8000_0000L) != 0;
            return new Ext(m, (neg ? 0x8000 : 0) | 0x7FFF);
        }
        int saved = c.fsw;
        Ext v = X87Math.fromBits(c, bits, f);
        c.fsw = saved;
        return v;
    }

    /** DE when the m32/m64 operand was a denormal in its own format (it is normal once widened). */
    static int denormalFlag(Cpu c, Ext widened, Format f, X87Insn i) {
        int k = cls(widened);
        if (k != NORMAL) return 0;
        int minExp = f == F64 ? 16383 - 1022 : 16383 - 126;
        return widened.exp() < minExp ? DE : 0;
    }

    static Ext intOperand(Cpu c, X87Insn i, int size) { return X87Math.fromLong(Regs.sext(c.mmu.read(i.la(c), size), size)); }

    /** FLD constants: the 66-bit internal value rounded per FCW.RC (SDM FLD1/FLDL2T/...: "rounded"). */
    static Body constant(long trunc, int se, boolean nearestUp) {
        return (c, i) -> {
            int rc = X87Math.rc(c);
            boolean up = rc == RN ? nearestUp : rc == RU && trunc != Long.MIN_VALUE;
            load(c, new Ext(trunc + (up ? 1 : 0), se));
        };
    }

    static boolean fcmovCond(Cpu c, int op, int cc) {
        boolean r = switch (cc) {
            case 0 -> Flags.cf(c);
            case 1 -> Flags.zf(c);
            case 2 -> Flags.cf(c) || Flags.zf(c);
            default -> Flags.pf(c);
        };
        return op == 0xDB != r;
    }

    // ------------------------------------------------------------------ environment

    /** The tag word FNSTENV/FNSAVE store: non-empty tags recomputed from the contents. */
    static int fullTag(Cpu c) {
        int t = 0;
        for (int p = 0; p < 8; p++)
            t |= (tag(c, p) == TAG_EMPTY ? TAG_EMPTY : tagOf(c.stMant[p], c.stExp[p])) << (2 * p);
        return t;
    }

    static int envSize(int opSize) { return opSize == 2 ? 14 : 28; }

    static void storeEnv(Cpu c, long base, X87Insn i) {
        if (i.opSize == 2) {
            c.mmu.write16(base, c.fcw);
            c.mmu.write16(i.ea.lin(c, 2), status(c));
            c.mmu.write16(i.ea.lin(c, 4), fullTag(c));
            c.mmu.write16(i.ea.lin(c, 6), (int) c.fip);
            c.mmu.write16(i.ea.lin(c, 8), 0);
            c.mmu.write16(i.ea.lin(c, 10), (int) c.fdp);
            c.mmu.write16(i.ea.lin(c, 12), 0);
        } else {
            // Reserved upper halves read as 1s on hardware (as Bochs models it).
            c.mmu.write32(base, 0xFFFF_0000 | c.fcw);
            c.mmu.write32(i.ea.lin(c, 4), 0xFFFF_0000 | status(c));
            c.mmu.write32(i.ea.lin(c, 8), 0xFFFF_0000 | fullTag(c));
            c.mmu.write32(i.ea.lin(c, 12), (int) c.fip);
            c.mmu.write32(i.ea.lin(c, 16), (c.fop & 0x7FF) << 16);
            c.mmu.write32(i.ea.lin(c, 20), (int) c.fdp);
            c.mmu.write32(i.ea.lin(c, 24), 0xFFFF_0000);
        }
    }

    /** Reads an environment; returns {fcw, fsw, ftw, fip, fop, fdp}. */
    static long[] readEnv(Cpu c, X87Insn i) {
        if (i.opSize == 2) {
            return new long[] {c.mmu.read16(i.la(c)), c.mmu.read16(i.ea.lin(c, 2)), c.mmu.read16(i.ea.lin(c, 4)),
                    c.mmu.read16(i.ea.lin(c, 6)), c.fop, c.mmu.read16(i.ea.lin(c, 10))};
        }
        return new long[] {c.mmu.read16(i.la(c)), c.mmu.read16(i.ea.lin(c, 4)), c.mmu.read16(i.ea.lin(c, 8)),
                c.mmu.read32(i.ea.lin(c, 12)) & 0xFFFF_FFFFL, (c.mmu.read32(i.ea.lin(c, 16)) >>> 16) & 0x7FF,
                c.mmu.read32(i.ea.lin(c, 20)) & 0xFFFF_FFFFL};
    }

    static void loadEnv(Cpu c, long[] e) {
        setControl(c, (int) e[0]);
        setStatus(c, (int) e[1]);
        c.ftw = (int) e[2] & 0xFFFF;
        c.fip = e[3];
        c.fop = (int) e[4];
        c.fdp = e[5];
        // Tags other than "empty" are recomputed from the register contents.
        for (int p = 0; p < 8; p++) if (tag(c, p) != TAG_EMPTY) setTag(c, p, tagOf(c.stMant[p], c.stExp[p]));
        updateSummary(c);
    }

    /** FLDCW semantics: bit 6 reads as 1, bits 7 and 13-15 as 0 (SDM Vol. 1, 8.1.5). */
    static void setControl(Cpu c, int v) { c.fcw = (v & 0x1F3F) | 0x40; }

    /** ES and B follow whether any flagged exception is unmasked (SDM Vol. 1, 8.1.3.1). */
    static void updateSummary(Cpu c) {
        if ((c.fsw & 0x3F & ~c.fcw) != 0) c.fsw |= ES | B;
        else c.fsw &= ~(ES | B);
    }

    // ------------------------------------------------------------------ registration

    static final String[][] MEM = {
            {"FADD m32", "FMUL m32", "FCOM m32", "FCOMP m32", "FSUB m32", "FSUBR m32", "FDIV m32", "FDIVR m32"},
            {"FLD m32", null, "FST m32", "FSTP m32", "FLDENV", "FLDCW", "FNSTENV", "FNSTCW"},
            {"FIADD m32", "FIMUL m32", "FICOM m32", "FICOMP m32", "FISUB m32", "FISUBR m32", "FIDIV m32", "FIDIVR m32"},
            {"FILD m32", "FISTTP m32", "FIST m32", "FISTP m32", null, "FLD m80", null, "FSTP m80"},
            {"FADD m64", "FMUL m64", "FCOM m64", "FCOMP m64", "FSUB m64", "FSUBR m64", "FDIV m64", "FDIVR m64"},
            {"FLD m64", "FISTTP m64", "FST m64", "FSTP m64", "FRSTOR", null, "FNSAVE", "FNSTSW m16"},
            {"FIADD m16", "FIMUL m16", "FICOM m16", "FICOMP m16", "FISUB m16", "FISUBR m16", "FIDIV m16", "FIDIVR m16"},
            {"FILD m16", "FISTTP m16", "FIST m16", "FISTP m16", null, "FILD m64", null, "FISTP m64"}};

    static final String[][] REG = {
            {"FADD ST0,ST(i)", "FMUL ST0,ST(i)", "FCOM ST(i)", "FCOMP ST(i)", "FSUB ST0,ST(i)", "FSUBR ST0,ST(i)", "FDIV ST0,ST(i)", "FDIVR ST0,ST(i)"},
            {"FLD ST(i)", "FXCH ST(i)", "FNOP", null, "FCHS/FABS/FTST/FXAM", "FLD1/FLDL2T/FLDL2E/FLDPI/FLDLG2/FLDLN2/FLDZ", "FXTRACT/FPREM1/FDECSTP/FINCSTP", "FPREM/FSQRT/FRNDINT/FSCALE"},
            {"FCMOVB", "FCMOVE", "FCMOVBE", "FCMOVU", null, "FUCOMPP", null, null},
            {"FCMOVNB", "FCMOVNE", "FCMOVNBE", "FCMOVNU", "FNCLEX/FNINIT", "FUCOMI", "FCOMI", null},
            {"FADD ST(i),ST0", "FMUL ST(i),ST0", null, null, "FSUBR ST(i),ST0", "FSUB ST(i),ST0", "FDIVR ST(i),ST0", "FDIV ST(i),ST0"},
            {"FFREE ST(i)", null, "FST ST(i)", "FSTP ST(i)", "FUCOM ST(i)", "FUCOMP ST(i)", null, null},
            {"FADDP", "FMULP", null, "FCOMPP", "FSUBRP", "FSUBP", "FDIVRP", "FDIVP"},
            {null, null, null, null, "FNSTSW AX", "FUCOMIP", "FCOMIP", null}};

    public static void register(OpcodeTable t) {
        for (int op = 0xD8; op <= 0xDF; op++) {
            for (int reg = 0; reg < 8; reg++) {
                String m = MEM[op - 0xD8][reg], r = REG[op - 0xD8][reg];
                if (m == null && r == null) continue;
                String mn = (m == null ? "-" : m) + " | " + (r == null ? "-" : r);
                final int o = op, g = reg;
                t.addGroup(mn, MAP_1BYTE, op, reg, ORACLE, Imm.NONE, d -> d.isMem() ? memForm(d, o, g) : regForm(d, o, g));
            }
        }
        t.add("FWAIT", MAP_1BYTE, 0x9B, ORACLE, Imm.NONE, d -> new Fwait());
    }

    static final int[] ARITH_OF_REG = {ADD, MUL, -1, -1, SUB, SUB, DIV, DIV};

    static Insn x(Decoded d, Body b) { return new X87Insn(d, false, b); }

    static Insn ctl(Decoded d, Body b) { return new X87Insn(d, true, b); }

    /**
     * A control instruction that is not one of the no-wait (FN) forms: FLDCW, FLDENV, FRSTOR check for a
     * pending unmasked exception first (#MF) like arithmetic, but leave FIP/FDP/FOP alone (SDM Vol. 1, 8.3.11
     * and 8.6: only FNINIT, FNCLEX, FNSTSW, FNSTCW, FNSTENV and FNSAVE do not wait; observed on the AMD host).
     */
    static Insn ctlWaiting(Decoded d, Body b) { return new X87Insn(d, true, true, b); }

    static Insn memForm(Decoded d, int op, int reg) {
        if (MEM[op - 0xD8][reg] == null) return null;
        boolean rev = reg == 5 || reg == 7;
        int aop = ARITH_OF_REG[reg];
        switch (op) {
            case 0xD8, 0xDC -> {
                Format f = op == 0xD8 ? F32 : F64;
                int size = op == 0xD8 ? 4 : 8;
                if (reg == 2 || reg == 3) return x(d, (c, i) -> {
                    Ext y = realOperand(c, i, f, size);
                    compare(c, y, 0, true, reg - 2, false, denormalFlag(c, y, f, i));
                });
                return x(d, (c, i) -> {
                    Ext y = realOperand(c, i, f, size);
                    binop(c, aop, rev, 0, y, 0, false, denormalFlag(c, y, f, i));
                });
            }
            case 0xDA, 0xDE -> {
                int size = op == 0xDA ? 4 : 2;
                if (reg == 2 || reg == 3) return x(d, (c, i) -> compare(c, intOperand(c, i, size), 0, true, reg - 2, false));
                return x(d, (c, i) -> binop(c, aop, rev, 0, intOperand(c, i, size), 0, false));
            }
            case 0xD9 -> {
                return switch (reg) {
                    case 0 -> x(d, (c, i) -> loadReal(c, c.mmu.read32(i.la(c)) & 0xFFFF_FFFFL, F32));
                    case 2 -> x(d, (c, i) -> storeReal(c, i, F32, false));
                    case 3 -> x(d, (c, i) -> storeReal(c, i, F32, true));
                    case 4 -> ctlWaiting(d, (c, i) -> loadEnv(c, readEnv(c, i)));
                    case 5 -> ctlWaiting(d, (c, i) -> { setControl(c, c.mmu.read16(i.la(c))); updateSummary(c); });
                    case 6 -> ctl(d, (c, i) -> {
                        long la = i.la(c);
                        probe(c, la, envSize(i.opSize));
                        storeEnv(c, la, i);
                        c.fcw |= 0x3F; // FNSTENV masks all exceptions afterwards,
                        updateSummary(c); // so nothing is pending any more: ES and B clear (as on the AMD host)
                    });
                    default -> ctl(d, (c, i) -> c.mmu.write16(i.la(c), c.fcw));
                };
            }
            case 0xDB -> {
                return switch (reg) {
                    case 0 -> x(d, (c, i) -> load(c, intOperand(c, i, 4)));
                    case 1 -> x(d, (c, i) -> storeInt(c, i, 4, true, true));
                    case 2 -> x(d, (c, i) -> storeInt(c, i, 4, false, false));
                    case 3 -> x(d, (c, i) -> storeInt(c, i, 4, false, true));
                    case 5 -> x(d, (c, i) -> load(c, readM80(c, i)));
                    default -> x(d, (c, i) -> { // FSTP m80: the image as is
                        long la = i.la(c);
                        probe(c, la, 10);
                        int old = begin(c);
                        Ext v = read(c, 0);
                        if (end(c, old)) {
                            c.mmu.write64(la, v.m());
                            c.mmu.write16(i.ea.lin(c, 8), v.se());
                            pop(c);
                        }
                    });
                };
            }
            case 0xDD -> {
                return switch (reg) {
                    case 0 -> x(d, (c, i) -> loadReal(c, c.mmu.read64(i.la(c)), F64));
                    case 1 -> x(d, (c, i) -> storeInt(c, i, 8, true, true));
                    case 2 -> x(d, (c, i) -> storeReal(c, i, F64, false));
                    case 3 -> x(d, (c, i) -> storeReal(c, i, F64, true));
                    case 4 -> ctlWaiting(d, (c, i) -> { // FRSTOR
                        long[] env = readEnv(c, i);
                        int base = envSize(i.opSize);
                        long[] m = new long[8];
                        int[] se = new int[8];
                        for (int k = 0; k < 8; k++) {
                            m[k] = c.mmu.read64(i.ea.lin(c, base + 10L * k));
                            se[k] = c.mmu.read16(i.ea.lin(c, base + 10L * k + 8));
                        }
                        c.fpuTop = (int) (env[1] >>> 11) & 7;
                        for (int k = 0; k < 8; k++) setPhys(c, phys(c, k), m[k], se[k]);
                        loadEnv(c, env);
                    });
                    case 6 -> ctl(d, (c, i) -> { // FNSAVE
                        long la = i.la(c);
                        int base = envSize(i.opSize);
                        probe(c, la, base + 80);
                        storeEnv(c, la, i);
                        for (int k = 0; k < 8; k++) {
                            int p = phys(c, k);
                            c.mmu.write64(i.ea.lin(c, base + 10L * k), c.stMant[p]);
                            c.mmu.write16(i.ea.lin(c, base + 10L * k + 8), c.stExp[p]);
                        }
                        X87.init(c);
                    });
                    default -> ctl(d, (c, i) -> c.mmu.write16(i.la(c), status(c)));
                };
            }
            default -> { // 0xDF
                return switch (reg) {
                    case 0 -> x(d, (c, i) -> load(c, intOperand(c, i, 2)));
                    case 1 -> x(d, (c, i) -> storeInt(c, i, 2, true, true));
                    case 2 -> x(d, (c, i) -> storeInt(c, i, 2, false, false));
                    case 3 -> x(d, (c, i) -> storeInt(c, i, 2, false, true));
                    case 5 -> x(d, (c, i) -> load(c, intOperand(c, i, 8)));
                    default -> x(d, (c, i) -> storeInt(c, i, 8, false, true));
                };
            }
        }
    }

    static Insn regForm(Decoded d, int op, int reg) {
        int sti = d.modrm & 7, low = d.modrm & 7;
        switch (op) {
            case 0xD8 -> {
                if (reg == 2 || reg == 3) return x(d, (c, i) -> compare(c, null, sti, true, reg - 2, false));
                boolean rev = reg == 5 || reg == 7;
                return x(d, (c, i) -> binop(c, ARITH_OF_REG[reg], rev, 0, null, sti, false));
            }
            case 0xDC, 0xDE -> {
                if (op == 0xDE && reg == 3) return low == 1 ? x(d, (c, i) -> compare(c, null, 1, true, 2, false)) : null;
                if (reg == 2 || reg == 3) return null;
                // DC/DE E0+i: FSUBR ST(i),ST0; E8+i: FSUB; F0+i: FDIVR; F8+i: FDIV (SDM opcode tables).
                boolean rev = reg == 4 || reg == 6;
                int aop = ARITH_OF_REG[reg];
                boolean p = op == 0xDE;
                return x(d, (c, i) -> binop(c, aop, rev, sti, null, 0, p));
            }
            case 0xD9 -> {
                return switch (reg) {
                    case 0 -> x(d, (c, i) -> {
                        // An empty source is reported as underflow (C1 = 0) even when the push also overflows.
                        int old = begin(c);
                        Ext v = empty(c, sti) ? underflow(c) : pushValue(c, get(c, sti));
                        if (end(c, old)) push(c, v);
                    });
                    case 1 -> x(d, (c, i) -> {
                        int old = begin(c);
                        Ext a = read(c, 0), b = read(c, sti);
                        if (end(c, old)) { put(c, 0, b); put(c, sti, a); c.fsw &= ~C1; }
                    });
                    case 2 -> low == 0 ? x(d, (c, i) -> { }) : null;
                    case 4 -> switch (low) {
                        case 0 -> x(d, (c, i) -> unary(c, (cc, v) -> { c1(cc, false); return v.negate(); }));
                        case 1 -> x(d, (c, i) -> unary(c, (cc, v) -> { c1(cc, false); return v.abs(); }));
                        case 4 -> x(d, (c, i) -> compare(c, new Ext(0, 0), 0, true, 0, false));
                        case 5 -> x(d, (c, i) -> fxam(c));
                        default -> null;
                    };
                    case 5 -> switch (low) {
                        case 0 -> x(d, constant(Long.MIN_VALUE, 0x3FFF, false));
                        case 1 -> x(d, constant(0xD49A_784B_CD1B_8AFEL, 0x4000, false));
                        case 2 -> x(d, constant(0xB8AA_3B29_5C17_F0BBL, 0x3FFF, true));
                        case 3 -> x(d, constant(0xC90F_DAA2_2168_C234L, 0x4000, true));
                        case 4 -> x(d, constant(0x9A20_9A84_FBCF_F798L, 0x3FFD, true));
                        case 5 -> x(d, constant(0xB172_17F7_D1CF_79ABL, 0x3FFE, true));
                        case 6 -> x(d, (c, i) -> load(c, new Ext(0, 0)));
                        default -> null;
                    };
                    case 6 -> switch (low) {
                        case 4 -> x(d, (c, i) -> fxtract(c));
                        case 5 -> x(d, (c, i) -> prem(c, true));
                        case 6 -> x(d, (c, i) -> { c.fpuTop = (c.fpuTop - 1) & 7; c.fsw &= ~C1; });
                        case 7 -> x(d, (c, i) -> { c.fpuTop = (c.fpuTop + 1) & 7; c.fsw &= ~C1; });
                        default -> null;
                    };
                    case 7 -> switch (low) {
                        case 0 -> x(d, (c, i) -> prem(c, false));
                        case 2 -> x(d, (c, i) -> unary(c, (cc, v) -> X87Math.arith(cc, SQRT, v, v)));
                        case 4 -> x(d, (c, i) -> unary(c, X87Math::roundInt));
                        case 5 -> x(d, (c, i) -> {
                            int old = begin(c);
                            Ext r = empty(c, 0) || empty(c, 1) ? underflow(c) : X87Math.scale(c, get(c, 0), get(c, 1));
                            if (end(c, old)) put(c, 0, r);
                        });
                        default -> null;
                    };
                    default -> null;
                };
            }
            case 0xDA, 0xDB -> {
                if (reg < 4) {
                    int cc = reg;
                    return x(d, (c, i) -> {
                        // An empty operand is a stack underflow whether or not the condition holds:
                        // ST0 receives the indefinite (host CPU behaviour; SDM FCMOVcc #IS).
                        // Otherwise no flag changes, not even C1.
                        if (empty(c, sti) || empty(c, 0)) {
                            int old = begin(c);
                            Ext v = underflow(c);
                            if (end(c, old)) put(c, 0, v);
                        } else if (fcmovCond(c, op, cc)) {
                            put(c, 0, get(c, sti));
                        }
                    });
                }
                if (op == 0xDA) return reg == 5 && low == 1 ? x(d, (c, i) -> compare(c, null, 1, false, 2, false)) : null;
                if (reg == 4) return switch (low) {
                    case 2 -> ctl(d, (c, i) -> c.fsw &= ~(0x3F | SF | ES | B));
                    case 3 -> ctl(d, (c, i) -> X87.init(c));
                    case 0, 1, 4 -> ctl(d, (c, i) -> { }); // FENI/FDISI/FSETPM: no-ops on a 387 and later
                    default -> null;
                };
                boolean signal = reg == 6;
                return x(d, (c, i) -> compare(c, null, sti, signal, 0, true));
            }
            case 0xDD -> {
                return switch (reg) {
                    case 0 -> x(d, (c, i) -> setTag(c, phys(c, sti), TAG_EMPTY));
                    case 2, 3 -> x(d, (c, i) -> {
                        int old = begin(c);
                        Ext v = read(c, 0);
                        if (end(c, old)) {
                            put(c, sti, v);
                            if (reg == 3) pop(c);
                        }
                    });
                    case 4, 5 -> x(d, (c, i) -> compare(c, null, sti, false, reg - 4, false));
                    default -> null;
                };
            }
            default -> { // 0xDF
                if (reg == 4) return low == 0 ? ctl(d, (c, i) -> Regs.set(c, Cpu.RAX, 2, status(c))) : null;
                if (reg == 5 || reg == 6) {
                    boolean signal = reg == 6;
                    return x(d, (c, i) -> compare(c, null, sti, signal, 1, true));
                }
                return null;
            }
        }
    }

    static void fxam(Cpu c) {
        int p = phys(c, 0);
        Ext v = get(c, 0);
        int bits;
        if (tag(c, p) == TAG_EMPTY) bits = C3 | C0;
        else bits = switch (cls(v)) {
            case UNSUPPORTED -> 0;
            case QNAN, SNAN -> C0;
            case NORMAL -> C2;
            case INF -> C2 | C0;
            case ZERO -> C3;
            default -> C3 | C2; // denormal
        };
        c.fsw = (c.fsw & ~(C0 | C1 | C2 | C3)) | bits | (v.neg() ? C1 : 0);
    }

    /** FXTRACT: ST0 becomes its unbiased exponent, then its significand (exponent 0) is pushed. */
    static void fxtract(Cpu c) {
        int old = begin(c);
        if (empty(c, 0) || !empty(c, 7)) {
            // Stack underflow (reported first, C1 = 0) or overflow: both results are the indefinite.
            if (empty(c, 0)) underflow(c);
            else pushValue(c, INDEFINITE);
            if (end(c, old)) { put(c, 0, INDEFINITE); push(c, INDEFINITE); }
            return;
        }
        Ext x = read(c, 0), e, m;
        switch (cls(x)) {
            case ZERO -> { c.fsw |= ZE; e = new Ext(Long.MIN_VALUE, 0xFFFF); m = x; }
            case INF -> { e = new Ext(Long.MIN_VALUE, 0x7FFF); m = x; }
            case QNAN, SNAN -> {
                if (cls(x) == SNAN) c.fsw |= IE;
                e = m = new Ext(x.m() | 1L << 62, x.se());
            }
            case UNSUPPORTED -> { c.fsw |= IE; e = m = INDEFINITE; }
            default -> {
                if (cls(x) == DENORMAL) c.fsw |= DE;
                int lz = Long.numberOfLeadingZeros(x.m());
                long exp = (x.exp() == 0 ? 1 : x.exp()) - 16383L - lz;
                e = X87Math.fromLong(exp);
                m = new Ext(x.m() << lz, (x.se() & 0x8000) | 0x3FFF);
            }
        }
        if (end(c, old)) {
            put(c, 0, e);
            push(c, m);
        }
    }

    static void prem(Cpu c, boolean ieee) {
        int old = begin(c);
        c.fsw &= ~C2; // C0/C3 stay unless a quotient is produced (host CPU behaviour)
        Ext r = empty(c, 0) || empty(c, 1) ? underflow(c) : X87Math.prem(c, get(c, 0), get(c, 1), ieee);
        if (end(c, old)) put(c, 0, r);
    }

    /** 9B: WAIT/FWAIT. #NM only when CR0.MP and CR0.TS are both set; then a pending exception: #MF. */
    static final class Fwait extends Insn {
        @Override public void exec(Cpu c) {
            if ((c.cr0 & (Cpu.CR0_MP | Cpu.CR0_TS)) == (Cpu.CR0_MP | Cpu.CR0_TS)) throw c.fault(Exceptions.NM);
            if ((c.fsw & ES) != 0 && (c.cr0 & Cpu.CR0_NE) != 0) throw c.fault(Exceptions.MF);
        }
    }
}

package dev.polyvisor.cpu.jit;

import dev.polyvisor.cpu.Flags;
import dev.polyvisor.cpu.decode.Ea;
import dev.polyvisor.cpu.decode.Insn;
import dev.polyvisor.cpu.exec.Alu;
import dev.polyvisor.cpu.exec.JitForms;

import java.lang.classfile.CodeBuilder;
import java.lang.classfile.Label;
import java.lang.constant.ClassDesc;
import java.lang.constant.MethodTypeDesc;

import static dev.polyvisor.cpu.jit.TraceCompiler.CD_CPU;
import static dev.polyvisor.cpu.jit.TraceCompiler.CD_MMU;
import static dev.polyvisor.cpu.jit.TraceCompiler.CPU;
import static java.lang.constant.ConstantDescs.CD_boolean;
import static java.lang.constant.ConstantDescs.CD_int;
import static java.lang.constant.ConstantDescs.CD_long;
import static java.lang.constant.ConstantDescs.CD_void;

/**
 * Emits bytecode for the forms of {@link JitForms} instead of a handler call, for one trace (it tracks
 * what the previous instructions left in locals). The register-only forms read and write {@code Cpu.r}
 * and the lazy-flag fields exactly as their handlers do. A Jcc right after an inline ALU form (with only
 * MOVs between) tests the condition on that operation's operands held in locals, as {@link Flags#cond}
 * computes it from the lazy record (reference/cpu-design.md 1.4: "cmp; jl" becomes one compare); other
 * Jcc are handler calls.
 */
final class InlineEmitter {
    private static final ClassDesc CD_LONG_ARRAY = TraceCompiler.CD_LONG_ARRAY;
    private static final ClassDesc CD_FORMS = ClassDesc.of(JitForms.class.getName());
    private static final MethodTypeDesc MTD_JUMP = MethodTypeDesc.of(CD_void, CD_CPU, CD_long);
    private static final MethodTypeDesc MTD_CMPU = MethodTypeDesc.of(CD_int, CD_long, CD_long);
    private static final ClassDesc CD_FLAGS = ClassDesc.of(Flags.class.getName()), CD_MATH = ClassDesc.of(Math.class.getName());
    private static final MethodTypeDesc MTD_COND = MethodTypeDesc.of(CD_boolean, CD_CPU, CD_int);
    private static final MethodTypeDesc MTD_MULHI = MethodTypeDesc.of(CD_long, CD_long, CD_long);
    private static final MethodTypeDesc MTD_LINEAR = MethodTypeDesc.of(CD_long, CD_int, CD_long);
    private static final MethodTypeDesc MTD_CANONICAL = MethodTypeDesc.of(CD_long, CD_long);
    private static final MethodTypeDesc MTD_READ = MethodTypeDesc.of(CD_int, CD_long);
    private static final MethodTypeDesc MTD_READ64 = MethodTypeDesc.of(CD_long, CD_long);
    private static final MethodTypeDesc MTD_WRITE32 = MethodTypeDesc.of(CD_void, CD_long, CD_int);
    private static final MethodTypeDesc MTD_WRITE64 = MethodTypeDesc.of(CD_void, CD_long, CD_long);
    /** Locals after the compiler's: the last ALU operation's a, b and result (two slots each), a linear address. */
    private static final int A = 5, B = 7, RES = 9, LA = TraceCompiler.LA;

    enum Emitted {
        /** Nothing emitted: the compiler calls the handler. */
        NO,
        /** Emitted; it cannot leave the trace, fault or write memory. */
        PLAIN,
        /** Emitted; it may jump to the instruction's exit label (a taken branch) or fault. */
        MAY_EXIT,
        /** Emitted; it may fault and writes memory, which may invalidate the trace: the compiler checks after it. */
        WRITES
    }

    /** The operation whose operands are in A, B, RES and whose flags are the lazy flags now; -1: none known. */
    private int knownOp = -1;
    private long knownMask;

    Emitted emit(CodeBuilder code, Insn insn, Label exit) {
        switch (JitForms.of(insn)) {
            case JitForms.AluRR f -> {
                loadReg(code, f.src(), f.mask()).lstore(B);
                alu(code, f.op(), f.mask(), f.ccOp(), f.dst());
            }
            case JitForms.AluRI f -> {
                code.loadConstant(f.imm()).lstore(B);
                alu(code, f.op(), f.mask(), f.ccOp(), f.dst());
            }
            case JitForms.MovRR f -> { // flags and the locals stay as they are
                regs(code).loadConstant(f.dst());
                loadReg(code, f.src(), f.mask()).lastore();
            }
            case JitForms.MovRI f -> regs(code).loadConstant(f.dst()).loadConstant(f.value()).lastore();
            case JitForms.ShiftRI f -> { shift(code, f); knownOp = -1; } // flags of a shift: Jcc asks the handler
            case JitForms.MovzxRR f -> {
                regs(code).loadConstant(f.dst());
                regs(code).loadConstant(f.src()).laload();
                if (f.shift() != 0) code.loadConstant(f.shift()).lushr();
                code.loadConstant(f.srcMask()).land().lastore();
            }
            case JitForms.JmpRel f -> {
                code.aload(CPU).aload(CPU).getfield(CD_CPU, "rip", CD_long).loadConstant(f.rel()).ladd();
                if (f.mask() != -1L) code.loadConstant(f.mask()).land();
                code.invokestatic(CD_FORMS, "goTo", MTD_JUMP);
            }
            case JitForms.ImulRR f -> { imul(code, f); knownOp = -1; }
            case JitForms.CmovRR f -> {
                Label keep = code.newLabel(), set = code.newLabel();
                regs(code).loadConstant(f.dst());
                code.aload(CPU).loadConstant(f.cc()).invokestatic(CD_FLAGS, "cond", MTD_COND).ifeq(keep);
                regs(code).loadConstant(f.rm()).laload().goto_(set);
                code.labelBinding(keep);
                regs(code).loadConstant(f.dst()).laload();
                code.labelBinding(set);
                if (f.mask() != -1L) code.loadConstant(f.mask()).land();
                code.lastore();
            }
            case JitForms.Lea f -> {
                regs(code).loadConstant(f.dst());
                ea(code, f.ea());
                if (f.mask() != -1L) code.loadConstant(f.mask()).land();
                code.lastore();
            }
            case JitForms.LoadRM f -> { // read first: a fault leaves the register as it was
                lin(code, f.ea()).lstore(LA);
                regs(code).loadConstant(f.dst());
                read(code, f.size());
                code.lastore();
            }
            case JitForms.StoreMR f -> {
                lin(code, f.ea()).lstore(LA);
                mmu(code).lload(LA);
                regs(code).loadConstant(f.src()).laload();
                if (f.size() == 8) code.invokevirtual(CD_MMU, "write64", MTD_WRITE64);
                else code.l2i().invokevirtual(CD_MMU, "write32", MTD_WRITE32);
                return Emitted.WRITES;
            }
            case JitForms.AluRM f -> {
                lin(code, f.ea()).lstore(LA);
                read(code, f.mask() == -1L ? 8 : 4);
                code.lstore(B);
                alu(code, f.op(), f.mask(), f.ccOp(), f.dst());
            }
            case JitForms.Jcc f -> {
                if (knownOp < 0 || !supported(knownOp, f.cc())) { knownOp = -1; return Emitted.NO; }
                Label taken = code.newLabel(), notTaken = code.newLabel();
                condition(code, f.cc(), taken, notTaken);
                code.labelBinding(taken);
                code.aload(CPU).aload(CPU).getfield(CD_CPU, "rip", CD_long).loadConstant(f.rel()).ladd();
                if (f.mask() != -1L) code.loadConstant(f.mask()).land();
                code.invokestatic(CD_FORMS, "jump", MTD_JUMP).goto_(exit);
                code.labelBinding(notTaken);
                return Emitted.MAY_EXIT;
            }
            case null -> { knownOp = -1; return Emitted.NO; }
        }
        return Emitted.PLAIN;
    }

    /** a = r[dst] & mask; res = a op b; r[dst] = res & mask unless CMP/TEST; ccOp, ccDst = res, ccSrc = b. */
    private void alu(CodeBuilder code, int op, long mask, int ccOp, int dst) {
        loadReg(code, dst, mask).lstore(A);
        code.lload(A).lload(B);
        switch (op) {
            case Alu.ADD -> code.ladd();
            case Alu.SUB, Alu.CMP -> code.lsub();
            case Alu.AND, Alu.TEST -> code.land();
            case Alu.OR -> code.lor();
            case Alu.XOR -> code.lxor();
            default -> throw new IllegalArgumentException("no inline ALU op " + op);
        }
        code.lstore(RES);
        if (op != Alu.CMP && op != Alu.TEST) {
            regs(code).loadConstant(dst).lload(RES);
            if (mask != -1L) code.loadConstant(mask).land();
            code.lastore();
        }
        code.aload(CPU).loadConstant(ccOp).putfield(CD_CPU, "ccOp", CD_int);
        code.aload(CPU).lload(RES).putfield(CD_CPU, "ccDst", CD_long);
        code.aload(CPU).lload(B).putfield(CD_CPU, "ccSrc", CD_long);
        knownOp = op;
        knownMask = mask;
    }

    /**
     * SHL: v = r & mask, res = v << n, r = res & mask, ccSrc = v << (n-1); SHR: v = r & mask, res = v >>> n, r = res,
     * ccSrc = v >>> (n-1); SAR: v = r sign-extended from the operand size, res = v >> n, r = res & mask,
     * ccSrc = v >> (n-1); then ccOp and ccDst = res: the handlers' record (FastIntOps ShlRI, ShrRI, SarRI).
     */
    private static void shift(CodeBuilder code, JitForms.ShiftRI f) {
        if (f.op() == JitForms.SAR) loadReg(code, f.dst(), -1L).loadConstant(f.sh()).lshl().loadConstant(f.sh()).lshr();
        else loadReg(code, f.dst(), f.mask());
        code.lstore(A);
        code.lload(A).loadConstant(f.n());
        switch (f.op()) {
            case JitForms.SHL -> code.lshl();
            case JitForms.SHR -> code.lushr();
            default -> code.lshr();
        }
        code.lstore(RES);
        regs(code).loadConstant(f.dst()).lload(RES);
        if (f.op() != JitForms.SHR && f.mask() != -1L) code.loadConstant(f.mask()).land();
        code.lastore();
        code.aload(CPU).loadConstant(f.ccOp()).putfield(CD_CPU, "ccOp", CD_int);
        code.aload(CPU).lload(RES).putfield(CD_CPU, "ccDst", CD_long);
        code.aload(CPU).lload(A).loadConstant(f.n() - 1);
        switch (f.op()) {
            case JitForms.SHL -> code.lshl();
            case JitForms.SHR -> code.lushr();
            default -> code.lshr();
        }
        code.putfield(CD_CPU, "ccSrc", CD_long);
    }

    /** IMUL as IntegerOps' Imul computes it; overflow as Math.multiplyHigh (64 bits) or a sign-extension compare (32). */
    private static void imul(CodeBuilder code, JitForms.ImulRR f) {
        signed(loadReg(code, f.rm(), -1L), f.q()).lstore(A);
        if (f.hasImm()) code.loadConstant(f.imm());
        else signed(loadReg(code, f.dst(), -1L), f.q());
        code.lstore(B);
        code.lload(A).lload(B).lmul().lstore(RES);
        regs(code).loadConstant(f.dst()).lload(RES);
        if (!f.q()) code.loadConstant(0xFFFF_FFFFL).land();
        code.lastore();
        code.aload(CPU).loadConstant(f.ccOp()).putfield(CD_CPU, "ccOp", CD_int);
        code.aload(CPU).lload(RES).putfield(CD_CPU, "ccDst", CD_long);
        if (f.q()) code.lload(A).lload(B).invokestatic(CD_MATH, "multiplyHigh", MTD_MULHI).lload(RES).loadConstant(63).lshr();
        else code.lload(RES).l2i().i2l().lload(RES);
        Label fits = code.newLabel(), done = code.newLabel();
        code.lcmp().ifeq(fits);
        code.aload(CPU).lconst_1().putfield(CD_CPU, "ccSrc", CD_long).goto_(done);
        code.labelBinding(fits);
        code.aload(CPU).lconst_0().putfield(CD_CPU, "ccSrc", CD_long);
        code.labelBinding(done);
    }

    /** Sign-extends the long on the stack from 32 bits unless {@code q}. */
    private static CodeBuilder signed(CodeBuilder code, boolean q) { return q ? code : code.l2i().i2l(); }

    private static int kind(int op) {
        return switch (op) {
            case Alu.SUB, Alu.CMP -> Flags.K_SUB;
            case Alu.ADD -> Flags.K_ADD;
            default -> Flags.K_LOGIC;
        };
    }

    /** Conditions answered from the operands: parity and (after SUB/ADD) overflow are left to the handler. */
    private static boolean supported(int op, int cc) {
        return switch (kind(op)) {
            case Flags.K_LOGIC -> cc != 0xA && cc != 0xB;
            case Flags.K_SUB -> cc >= 2 && cc <= 7 || cc >= 0xC;
            default -> cc == 4 || cc == 5 || cc == 8 || cc == 9; // ADD: ZF and SF
        };
    }

    /** Jumps to {@code taken} when condition {@code cc} holds for the known operation, else to {@code notTaken}. */
    private void condition(CodeBuilder code, int cc, Label taken, Label notTaken) {
        boolean q = knownMask == -1L;
        int k = kind(knownOp);
        switch (cc) {
            case 0x4 -> zero(code).ifeq(taken);
            case 0x5 -> zero(code).ifne(taken);
            case 0x8 -> sign(code, q).iflt(taken);
            case 0x9 -> sign(code, q).ifge(taken);
            default -> {
                if (k == Flags.K_LOGIC) logic(code, cc, q, taken, notTaken);
                else sub(code, cc, q, taken);
            }
        }
        code.goto_(notTaken);
    }

    /** After AND/OR/XOR/TEST: CF = OF = 0, so B/BE/L/LE reduce to ZF and SF (as Flags.cond does). */
    private void logic(CodeBuilder code, int cc, boolean q, Label taken, Label notTaken) {
        switch (cc) {
            case 0x0, 0x2 -> code.goto_(notTaken);            // O, B: never
            case 0x1, 0x3 -> code.goto_(taken);               // NO, AE: always
            case 0x6 -> zero(code).ifeq(taken);               // BE: ZF
            case 0x7 -> zero(code).ifne(taken);               // A: !ZF
            case 0xC -> sign(code, q).iflt(taken);            // L: SF
            case 0xD -> sign(code, q).ifge(taken);            // GE: !SF
            case 0xE -> { zero(code).ifeq(taken); sign(code, q).iflt(taken); }        // LE: ZF or SF
            case 0xF -> { zero(code).ifeq(notTaken); sign(code, q).iflt(notTaken); code.goto_(taken); } // G
            default -> throw new IllegalArgumentException("cc " + cc);
        }
    }

    /** After SUB/CMP: unsigned and signed comparisons of a with b (both masked to the operand size). */
    private static void sub(CodeBuilder code, int cc, boolean q, Label taken) {
        if (cc <= 7) { // B, AE, BE, A: unsigned
            code.lload(A).lload(B);
            if (q) code.invokestatic(ClassDesc.of("java.lang.Long"), "compareUnsigned", MTD_CMPU);
            else code.lcmp(); // zero-extended 32-bit values compare unsigned as longs
            switch (cc) {
                case 0x2 -> code.iflt(taken);
                case 0x3 -> code.ifge(taken);
                case 0x6 -> code.ifle(taken);
                default -> code.ifgt(taken);
            }
            return;
        }
        if (q) {
            code.lload(A).lload(B).lcmp();
            switch (cc) {
                case 0xC -> code.iflt(taken);
                case 0xD -> code.ifge(taken);
                case 0xE -> code.ifle(taken);
                default -> code.ifgt(taken);
            }
        } else {
            code.lload(A).l2i().lload(B).l2i();
            switch (cc) {
                case 0xC -> code.if_icmplt(taken);
                case 0xD -> code.if_icmpge(taken);
                case 0xE -> code.if_icmple(taken);
                default -> code.if_icmpgt(taken);
            }
        }
    }

    /** Pushes an int that is 0 exactly when the result is zero at the operand size. */
    private CodeBuilder zero(CodeBuilder code) {
        code.lload(RES);
        if (knownMask != -1L) code.loadConstant(knownMask).land();
        return code.lconst_0().lcmp();
    }

    /** Pushes an int that is negative exactly when the result's sign bit (at the operand size) is set. */
    private static CodeBuilder sign(CodeBuilder code, boolean q) {
        return q ? code.lload(RES).lconst_0().lcmp() : code.lload(RES).l2i();
    }

    /**
     * Pushes the effective address as {@code Ea.ea} computes it, from the shape's constants. RIP-relative operands
     * read {@code c.rip}, which the compiler has already advanced past the instruction, as the run loop has.
     */
    private static CodeBuilder ea(CodeBuilder code, Ea.Shape e) {
        switch (e.kind()) {
            case Ea.KIND_BASE -> regs(code).loadConstant(e.base()).laload().loadConstant(e.disp()).ladd();
            case Ea.KIND_BASE_INDEX -> {
                regs(code).loadConstant(e.base()).laload();
                regs(code).loadConstant(e.index()).laload();
                if (e.scale() != 0) code.loadConstant(e.scale()).lshl();
                code.ladd().loadConstant(e.disp()).ladd();
            }
            case Ea.KIND_INDEX -> {
                regs(code).loadConstant(e.index()).laload();
                if (e.scale() != 0) code.loadConstant(e.scale()).lshl();
                code.loadConstant(e.disp()).ladd();
            }
            case Ea.KIND_RIP -> code.aload(CPU).getfield(CD_CPU, "rip", CD_long).loadConstant(e.disp()).ladd();
            default -> code.loadConstant(e.disp());
        }
        if (e.mask() != -1L) code.loadConstant(e.mask()).land();
        return code;
    }

    /**
     * Pushes the linear address as {@code Ea.lin} computes it: in 64-bit mode a flat operand is its effective address
     * (SS-relative ones checked canonical by {@code Cpu.stackCanonical}, #SS(0)); otherwise {@code Cpu.linear}.
     */
    private static CodeBuilder lin(CodeBuilder code, Ea.Shape e) {
        if (!e.flat() && !e.flatStack())
            return ea(code.aload(CPU).loadConstant(e.seg()), e).invokevirtual(CD_CPU, "linear", MTD_LINEAR);
        Label segmented = code.newLabel(), done = code.newLabel();
        code.aload(CPU).getfield(CD_CPU, "long64", CD_boolean).ifeq(segmented);
        if (e.flat()) ea(code, e);
        else ea(code.aload(CPU), e).invokevirtual(CD_CPU, "stackCanonical", MTD_CANONICAL);
        code.goto_(done);
        code.labelBinding(segmented);
        ea(code.aload(CPU).loadConstant(e.seg()), e).invokevirtual(CD_CPU, "linear", MTD_LINEAR);
        code.labelBinding(done);
        return code;
    }

    /** Pushes the {@code size}-byte value at the linear address in LA, zero-extended to a long, as the handlers read it. */
    private static void read(CodeBuilder code, int size) {
        mmu(code).lload(LA);
        switch (size) {
            case 1 -> code.invokevirtual(CD_MMU, "read8", MTD_READ).i2l();
            case 2 -> code.invokevirtual(CD_MMU, "read16", MTD_READ).i2l();
            case 4 -> code.invokevirtual(CD_MMU, "read32", MTD_READ).i2l().loadConstant(0xFFFF_FFFFL).land();
            default -> code.invokevirtual(CD_MMU, "read64", MTD_READ64);
        }
    }

    private static CodeBuilder mmu(CodeBuilder code) { return code.aload(CPU).getfield(CD_CPU, "mmu", CD_MMU); }

    private static CodeBuilder regs(CodeBuilder code) { return code.aload(CPU).getfield(CD_CPU, "r", CD_LONG_ARRAY); }

    /** Pushes {@code r[reg] & mask}. */
    private static CodeBuilder loadReg(CodeBuilder code, int reg, long mask) {
        regs(code).loadConstant(reg).laload();
        if (mask != -1L) code.loadConstant(mask).land();
        return code;
    }
}

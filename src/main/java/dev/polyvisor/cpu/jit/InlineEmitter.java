package dev.polyvisor.cpu.jit;

import dev.polyvisor.cpu.Cpu;
import dev.polyvisor.cpu.Flags;
import dev.polyvisor.cpu.decode.Ea;
import dev.polyvisor.cpu.decode.Insn;
import dev.polyvisor.cpu.exec.Alu;
import dev.polyvisor.cpu.exec.JitForms;
import dev.polyvisor.cpu.exec.Regs;

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
 * computes it from the lazy record (reference/cpu-design.md 1.4: "cmp; jl" becomes one compare); any other
 * Jcc tests {@code Flags.cond} as its handler does, inline too, so the guest state stays in locals.
 */
final class InlineEmitter {
    private static final ClassDesc CD_LONG_ARRAY = TraceCompiler.CD_LONG_ARRAY;
    private static final ClassDesc CD_FORMS = ClassDesc.of(JitForms.class.getName());
    private static final MethodTypeDesc MTD_JUMP = MethodTypeDesc.of(CD_void, CD_CPU, CD_long);
    private static final MethodTypeDesc MTD_CMPU = MethodTypeDesc.of(CD_int, CD_long, CD_long);
    private static final ClassDesc CD_FLAGS = ClassDesc.of(Flags.class.getName()), CD_MATH = ClassDesc.of(Math.class.getName());
    private static final MethodTypeDesc MTD_COND = MethodTypeDesc.of(CD_boolean, CD_CPU, CD_int);
    private static final MethodTypeDesc MTD_CF = MethodTypeDesc.of(CD_boolean, CD_CPU);
    private static final MethodTypeDesc MTD_ROTATE_FLAGS = MethodTypeDesc.of(CD_void, CD_CPU, CD_boolean, CD_int, CD_long);
    private static final MethodTypeDesc MTD_MULHI = MethodTypeDesc.of(CD_long, CD_long, CD_long);
    private static final MethodTypeDesc MTD_LINEAR = MethodTypeDesc.of(CD_long, CD_int, CD_long);
    private static final MethodTypeDesc MTD_CANONICAL = MethodTypeDesc.of(CD_long, CD_long);
    private static final MethodTypeDesc MTD_STACK_CANONICAL = MethodTypeDesc.of(CD_long, CD_long, CD_int);
    private static final MethodTypeDesc MTD_READ = MethodTypeDesc.of(CD_int, CD_long);
    private static final MethodTypeDesc MTD_READ64 = MethodTypeDesc.of(CD_long, CD_long);
    private static final MethodTypeDesc MTD_WRITE32 = MethodTypeDesc.of(CD_void, CD_long, CD_int);
    private static final MethodTypeDesc MTD_WRITE64 = MethodTypeDesc.of(CD_void, CD_long, CD_long);
    private static final ClassDesc CD_SEGMENT = TraceCompiler.CD_SEGMENT;
    private static final MethodTypeDesc MTD_READ_IN = MethodTypeDesc.of(CD_int, CD_SEGMENT, CD_long);
    private static final MethodTypeDesc MTD_READ64_IN = MethodTypeDesc.of(CD_long, CD_SEGMENT, CD_long);
    private static final MethodTypeDesc MTD_WRITE32_IN = MethodTypeDesc.of(CD_void, CD_SEGMENT, CD_long, CD_int);
    private static final MethodTypeDesc MTD_WRITE64_IN = MethodTypeDesc.of(CD_void, CD_SEGMENT, CD_long, CD_long);
    /** The compiler's locals for the last ALU operation's a, b and result, and for a linear address. */
    private static final int A = TraceCompiler.A, B = TraceCompiler.B, RES = TraceCompiler.RES, LA = TraceCompiler.LA;

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

    /** Where the trace's guest registers and lazy flags are (locals or the Cpu). */
    private final StateCache regs;

    /** The region's blocks, where a taken branch may continue in place. */
    private final TraceCompiler.Blocks blocks;

    InlineEmitter(StateCache regs, TraceCompiler.Blocks blocks) {
        this.regs = regs;
        this.blocks = blocks;
    }

    /** The operation whose operands are in A, B, RES and whose flags are the lazy flags now; -1: none known. */
    private int knownOp = -1;
    private long knownMask;

    /**
     * Emits {@code insn}, or nothing ({@link Emitted#NO}). {@code rip} says where the instruction is; the forms that
     * may fault store the Cpu's rip and prevRip first, the branch forms prevRip where they branch, the register-only
     * forms neither.
     */
    Emitted emit(CodeBuilder code, Insn insn, int index, Label exit, RipState rip) {
        switch (JitForms.of(insn)) {
            case JitForms.AluRR f -> {
                regs.get(code, f.src(), f.mask()).lstore(B);
                alu(code, f.op(), f.mask(), f.ccOp(), f.dst());
            }
            case JitForms.AluRI f -> {
                code.loadConstant(f.imm()).lstore(B);
                alu(code, f.op(), f.mask(), f.ccOp(), f.dst());
            }
            case JitForms.MovRR f -> regs.put(regs.get(code, f.src(), f.mask()), f.dst()); // flags and A, B, RES stay
            case JitForms.MovRI f -> regs.put(code.loadConstant(f.value()), f.dst());
            case JitForms.ShiftRI f -> { shift(code, f); knownOp = -1; } // flags of a shift: Jcc asks the handler
            case JitForms.MovzxRR f -> {
                regs.get(code, f.src(), -1L);
                if (f.shift() != 0) code.loadConstant(f.shift()).lushr();
                regs.put(code.loadConstant(f.srcMask()).land(), f.dst());
            }
            case JitForms.JmpRel f -> { // it may #GP (a non-canonical target): prevRip first
                rip.storePrev(code);
                code.aload(CPU);
                RipState.push(code, rip.next + f.rel());
                if (f.mask() != -1L) code.loadConstant(f.mask()).land();
                code.invokestatic(CD_FORMS, "goTo", MTD_JUMP);
                if (f.mask() == -1L) rip.jumped(rip.next + f.rel());
                else rip.rebase(code);
            }
            case JitForms.ImulRR f -> { imul(code, f); knownOp = -1; }
            case JitForms.Nop _ -> { } // flags and A, B, RES stay
            case JitForms.CmpNarrow f -> {
                long mask = Regs.mask(f.size());
                if (f.src() < 0) code.loadConstant(f.imm()).lstore(B);
                else regs.get(code, f.src(), mask).lstore(B);
                regs.get(code, f.dst(), mask).lstore(A);
                compare(code, f.op(), f.size(), f.ccOp());
                code.aload(CPU).lconst_0().putfield(CD_CPU, "ccSrc2", CD_long); // Alu.flags: no carry in
            }
            case JitForms.Movsx f -> {
                if (f.ea() != null) {
                    address(code, f.ea(), rip);
                    read(code, f.srcSize());
                } else {
                    regs.get(code, f.rm(), Regs.mask(f.srcSize()));
                }
                int sh = 64 - 8 * f.srcSize();
                code.loadConstant(sh).lshl().loadConstant(sh).lshr();
                if (f.size() == 4) code.loadConstant(0xFFFF_FFFFL).land();
                regs.put(code, f.dst());
            }
            case JitForms.SetccR f -> {
                Label set = code.newLabel(), done = code.newLabel();
                regs.get(code, f.rm(), ~0xFFL);
                cond(code, f.cc()).ifne(set).goto_(done);
                code.labelBinding(set);
                code.lconst_1().lor();
                code.labelBinding(done);
                regs.put(code, f.rm());
            }
            case JitForms.RotateRI f -> rotate(code, f);
            case JitForms.AluMI f -> {
                address(code, f.ea(), rip);
                code.loadConstant(f.imm()).lstore(B);
                compareMemory(code, f.op(), f.size(), f.ccOp());
            }
            case JitForms.AluMR f -> {
                address(code, f.ea(), rip);
                regs.get(code, f.src(), Regs.mask(f.size())).lstore(B);
                compareMemory(code, f.op(), f.size(), f.ccOp());
            }
            case JitForms.PushR f -> { // flags and A, B, RES stay
                rip.storePrev(code); // #SS, #PF
                code.aload(CPU);
                regs.get(code, Cpu.RSP, -1L).loadConstant(8L).lsub().loadConstant(8)
                        .invokevirtual(CD_CPU, "stackCanonical", MTD_STACK_CANONICAL).lstore(LA);
                mmu(code).lload(LA);
                write(regs.get(code, f.reg(), -1L), 8);
                regs.put(code.lload(LA), Cpu.RSP);
                return Emitted.WRITES;
            }
            case JitForms.PopR f -> {
                rip.storePrev(code);
                code.aload(CPU);
                regs.get(code, Cpu.RSP, -1L).loadConstant(8)
                        .invokevirtual(CD_CPU, "stackCanonical", MTD_STACK_CANONICAL).lstore(LA);
                read(code, 8); // the value stays on the stack
                regs.put(code.lload(LA).loadConstant(8L).ladd(), Cpu.RSP);
                regs.put(code, f.reg());
            }
            case JitForms.UnaryRR f -> unary(code, f);
            case JitForms.CmovRR f -> {
                Label keep = code.newLabel(), set = code.newLabel();
                cond(code, f.cc()).ifeq(keep);
                regs.get(code, f.rm(), -1L).goto_(set);
                code.labelBinding(keep);
                regs.get(code, f.dst(), -1L);
                code.labelBinding(set);
                if (f.mask() != -1L) code.loadConstant(f.mask()).land();
                regs.put(code, f.dst());
            }
            case JitForms.Lea f -> {
                ea(code, f.ea(), rip);
                if (f.mask() != -1L) code.loadConstant(f.mask()).land();
                regs.put(code, f.dst());
            }
            case JitForms.LoadRM f -> { // read first: a fault leaves the register as it was
                address(code, f.ea(), rip);
                read(code, f.size());
                regs.put(code, f.dst());
            }
            case JitForms.StoreMR f -> {
                address(code, f.ea(), rip);
                mmu(code).lload(LA);
                write(regs.get(code, f.src(), -1L), f.size());
                return Emitted.WRITES;
            }
            case JitForms.StoreMI f -> {
                address(code, f.ea(), rip);
                mmu(code).lload(LA);
                write(code.loadConstant(f.imm()), f.size());
                return Emitted.WRITES;
            }
            case JitForms.AluRM f -> {
                address(code, f.ea(), rip);
                read(code, f.mask() == -1L ? 8 : 4);
                code.lstore(B);
                alu(code, f.op(), f.mask(), f.ccOp(), f.dst());
            }
            case JitForms.Jcc f -> {
                Label taken = code.newLabel(), notTaken = code.newLabel();
                if (knownOp >= 0 && supported(knownOp, f.cc())) condition(code, f.cc(), taken, notTaken);
                else cond(code, f.cc()).ifne(taken).goto_(notTaken); // the handler's own test
                code.labelBinding(taken);
                Long target = rip.target(f.rel(), f.mask());
                int block = target == null ? -1 : blocks.at(target);
                if (block >= 0) {
                    inPlace(code, index, block, target);
                    code.labelBinding(notTaken);
                    return Emitted.PLAIN;
                }
                rip.storePrev(code); // the jump may #GP (a non-canonical target)
                code.aload(CPU);
                RipState.push(code, rip.next + f.rel());
                if (f.mask() != -1L) code.loadConstant(f.mask()).land();
                code.invokestatic(CD_FORMS, "jump", MTD_JUMP).goto_(exit);
                code.labelBinding(notTaken);
                return Emitted.MAY_EXIT;
            }
            case null -> { knownOp = -1; return Emitted.NO; }
        }
        return Emitted.PLAIN;
    }

    /**
     * A taken branch to the start of one of the region's blocks (the entry's, a loop), with only inline forms run
     * since this block was entered (RipState.target): the instructions are counted and, while the vCPU's loop would
     * only run that trace next ({@code Vcpu.loopsBack}), the code continues at the block with the guest state still
     * in locals. RIP, CS and the fetch epoch cannot have changed (no handler ran since the region was entered, by
     * induction over such branches), so that is all the vCPU needs to decide. Else the trace ends as a taken Jcc
     * ends it; the target was executed before, in this page, so no #GP is possible there.
     */
    private void inPlace(CodeBuilder code, int index, int block, long target) {
        Label leave = code.newLabel();
        TraceCompiler.retire(code, c -> c.loadConstant((long) index + 1));
        code.aload(TraceCompiler.LOOP).ifnull(leave);
        code.aload(TraceCompiler.LOOP).aload(CPU).aload(TraceCompiler.TRACE);
        blocks.pushTrace(code, block);
        code.invokevirtual(TraceCompiler.CD_VCPU, "loopsBack", TraceCompiler.MTD_LOOPS_BACK).ifne(blocks.top(block));
        code.labelBinding(leave);
        code.aload(CPU);
        RipState.push(code, target);
        code.putfield(CD_CPU, "rip", CD_long);
        code.aload(CPU).iconst_1().putfield(CD_CPU, "traceExit", CD_boolean);
        StateCache.flush(code, regs.dirty());
        code.return_();
    }

    /** a = r[dst] & mask; res = a op b; r[dst] = res & mask unless CMP/TEST; ccOp, ccDst = res, ccSrc = b. */
    private void alu(CodeBuilder code, int op, long mask, int ccOp, int dst) {
        regs.get(code, dst, mask).lstore(A);
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
            code.lload(RES);
            if (mask != -1L) code.loadConstant(mask).land();
            regs.put(code, dst);
        }
        code.lload(B);
        regs.flags(code, ccOp, RES);
        knownOp = op;
        knownMask = mask;
    }

    /**
     * SHL: v = r & mask, res = v << n, r = res & mask, ccSrc = v << (n-1); SHR: v = r & mask, res = v >>> n, r = res,
     * ccSrc = v >>> (n-1); SAR: v = r sign-extended from the operand size, res = v >> n, r = res & mask,
     * ccSrc = v >> (n-1); then ccOp and ccDst = res: the handlers' record (FastIntOps ShlRI, ShrRI, SarRI).
     */
    private void shift(CodeBuilder code, JitForms.ShiftRI f) {
        if (f.op() == JitForms.SAR) regs.get(code, f.dst(), -1L).loadConstant(f.sh()).lshl().loadConstant(f.sh()).lshr();
        else regs.get(code, f.dst(), f.mask());
        code.lstore(A);
        code.lload(A).loadConstant(f.n());
        switch (f.op()) {
            case JitForms.SHL -> code.lshl();
            case JitForms.SHR -> code.lushr();
            default -> code.lshr();
        }
        code.lstore(RES);
        code.lload(RES);
        if (f.op() != JitForms.SHR && f.mask() != -1L) code.loadConstant(f.mask()).land();
        regs.put(code, f.dst());
        code.lload(A).loadConstant(f.n() - 1);
        switch (f.op()) {
            case JitForms.SHL -> code.lshl();
            case JitForms.SHR -> code.lushr();
            default -> code.lshr();
        }
        regs.flags(code, f.ccOp(), RES);
    }

    /** IMUL as IntegerOps' Imul computes it; overflow as Math.multiplyHigh (64 bits) or a sign-extension compare (32). */
    private void imul(CodeBuilder code, JitForms.ImulRR f) {
        signed(regs.get(code, f.rm(), -1L), f.q()).lstore(A);
        if (f.hasImm()) code.loadConstant(f.imm());
        else signed(regs.get(code, f.dst(), -1L), f.q());
        code.lstore(B);
        code.lload(A).lload(B).lmul().lstore(RES);
        code.lload(RES);
        if (!f.q()) code.loadConstant(0xFFFF_FFFFL).land();
        regs.put(code, f.dst());
        if (f.q()) code.lload(A).lload(B).invokestatic(CD_MATH, "multiplyHigh", MTD_MULHI).lload(RES).loadConstant(63).lshr();
        else code.lload(RES).l2i().i2l().lload(RES);
        Label fits = code.newLabel(), done = code.newLabel();
        code.lcmp().ifeq(fits);
        code.lconst_1().goto_(done);
        code.labelBinding(fits);
        code.lconst_0();
        code.labelBinding(done);
        regs.flags(code, f.ccOp(), RES); // ccSrc: 1 when the product does not fit
    }

    /** CMP/TEST m, b (JitForms.AluMI, AluMR) with b in local B and the linear address in LA: a = the operand read zero-extended. */
    private void compareMemory(CodeBuilder code, int op, int size, int ccOp) {
        read(code, size);
        code.lstore(A);
        compare(code, op, size, ccOp);
    }

    /**
     * CMP/TEST of a (local A) with b (local B) of {@code size} bytes: res = a - b or a & b, the flag record; a Jcc
     * after a 4- or 8-byte one tests the locals, after a 1- or 2-byte one (whose sign bit {@link #sign} does not
     * know) Flags.cond.
     */
    private void compare(CodeBuilder code, int op, int size, int ccOp) {
        code.lload(A).lload(B);
        if (op == Alu.CMP) code.lsub(); else code.land();
        code.lstore(RES).lload(B);
        regs.flags(code, ccOp, RES);
        knownOp = size >= 4 ? op : -1;
        knownMask = Regs.mask(size);
    }

    /**
     * Pushes whether condition {@code cc} holds, as the handlers test it ({@code Flags.cond} on the lazy record,
     * which is stored to the Cpu first if its locals are newer).
     */
    private CodeBuilder cond(CodeBuilder code, int cc) {
        regs.flushFlags(code);
        return code.aload(CPU).loadConstant(cc).invokestatic(CD_FLAGS, "cond", MTD_COND);
    }

    /**
     * A memory operand's linear address into LA, prevRip stored first: the address or the access after it may fault
     * (the fault handler restores RIP from prevRip; nothing on the MMU's paths reads c.rip).
     */
    private void address(CodeBuilder code, Ea.Shape ea, RipState rip) {
        rip.storePrev(code);
        lin(code, ea, rip).lstore(LA);
    }

    /** ROL/ROR r, imm as BitOps' Shift computes them (JitForms.RotateRI); the flags through JitForms.rotateFlags. */
    private void rotate(CodeBuilder code, JitForms.RotateRI f) {
        long mask = Regs.mask(f.size());
        if (f.n() == 0) { // no flag changes; a 32-bit register is still written, zero-extended
            if (f.size() == 4) regs.put(regs.get(code, f.reg(), mask), f.reg());
            return;
        }
        int bits = f.size() * 8, k = f.n() & (bits - 1);
        regs.get(code, f.reg(), mask).lstore(A);
        code.lload(A).loadConstant(f.left() ? k : bits - k).lshl();
        code.lload(A).loadConstant(f.left() ? bits - k : k).lushr().lor();
        if (mask != -1L) code.loadConstant(mask).land();
        code.lstore(RES);
        regs.put(code.lload(RES), f.reg());
        regs.flushFlags(code);
        code.aload(CPU).loadConstant(f.left() ? 1 : 0).loadConstant(f.size()).lload(RES)
                .invokestatic(CD_FORMS, "rotateFlags", MTD_ROTATE_FLAGS);
        regs.reloadFlags(code); // the record is materialized (ccOp EFLAGS) with the new CF and OF
        knownOp = -1;
    }

    /** INC/DEC/NOT/NEG r as IntegerOps' UnaryR computes them (JitForms.UnaryRR). */
    private void unary(CodeBuilder code, JitForms.UnaryRR f) {
        if (f.op() == JitForms.NOT) { // no flags: A, B, RES and the known operation stay
            regs.get(code, f.reg(), f.mask()).loadConstant(-1L).lxor();
            if (f.mask() != -1L) code.loadConstant(f.mask()).land();
            regs.put(code, f.reg());
            return;
        }
        if (f.op() != JitForms.NEG) { // CF before, which INC and DEC keep: from the lazy record, in the Cpu
            regs.flushFlags(code);
            code.aload(CPU).invokestatic(CD_FLAGS, "cf", MTD_CF);
            code.i2l().lstore(B);
        }
        regs.get(code, f.reg(), f.mask()).lstore(A);
        switch (f.op()) {
            case JitForms.INC -> code.lload(A).lconst_1().ladd();
            case JitForms.DEC -> code.lload(A).lconst_1().lsub();
            default -> code.lconst_0().lload(A).lsub();
        }
        code.lstore(RES).lload(RES);
        if (f.mask() != -1L) code.loadConstant(f.mask()).land();
        regs.put(code, f.reg());
        code.lload(f.op() == JitForms.NEG ? A : B);
        regs.flags(code, f.ccOp(), RES);
        knownOp = -1;
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
     * are relative to the next instruction's address, as {@code c.rip} is during the handler's exec.
     */
    private CodeBuilder ea(CodeBuilder code, Ea.Shape e, RipState rip) {
        switch (e.kind()) {
            case Ea.KIND_BASE -> regs.get(code, e.base(), -1L).loadConstant(e.disp()).ladd();
            case Ea.KIND_BASE_INDEX -> {
                regs.get(code, e.base(), -1L);
                regs.get(code, e.index(), -1L);
                if (e.scale() != 0) code.loadConstant(e.scale()).lshl();
                code.ladd().loadConstant(e.disp()).ladd();
            }
            case Ea.KIND_INDEX -> {
                regs.get(code, e.index(), -1L);
                if (e.scale() != 0) code.loadConstant(e.scale()).lshl();
                code.loadConstant(e.disp()).ladd();
            }
            case Ea.KIND_RIP -> RipState.push(code, rip.next + e.disp());
            default -> code.loadConstant(e.disp());
        }
        if (e.mask() != -1L) code.loadConstant(e.mask()).land();
        return code;
    }

    /**
     * Pushes the linear address as {@code Ea.lin} computes it: in 64-bit mode a flat operand is its effective address
     * (SS-relative ones checked canonical by {@code Cpu.stackCanonical}, #SS(0)); otherwise {@code Cpu.linear}.
     */
    private CodeBuilder lin(CodeBuilder code, Ea.Shape e, RipState rip) {
        if (!e.flat() && !e.flatStack())
            return ea(code.aload(CPU).loadConstant(e.seg()), e, rip).invokevirtual(CD_CPU, "linear", MTD_LINEAR);
        Label segmented = code.newLabel(), done = code.newLabel();
        code.aload(CPU).getfield(CD_CPU, "long64", CD_boolean).ifeq(segmented);
        if (e.flat()) ea(code, e, rip);
        else ea(code.aload(CPU), e, rip).invokevirtual(CD_CPU, "stackCanonical", MTD_CANONICAL);
        code.goto_(done);
        code.labelBinding(segmented);
        ea(code.aload(CPU).loadConstant(e.seg()), e, rip).invokevirtual(CD_CPU, "linear", MTD_LINEAR);
        code.labelBinding(done);
        return code;
    }

    /** Pushes the {@code size}-byte value at the linear address in LA, zero-extended to a long, as the handlers read it. */
    private void read(CodeBuilder code, int size) {
        mmu(code).lload(LA);
        MethodTypeDesc narrow = blocks.constantRam() ? MTD_READ_IN : MTD_READ, wide = blocks.constantRam() ? MTD_READ64_IN : MTD_READ64;
        switch (size) {
            case 1 -> code.invokevirtual(CD_MMU, "read8", narrow).i2l();
            case 2 -> code.invokevirtual(CD_MMU, "read16", narrow).i2l();
            case 4 -> code.invokevirtual(CD_MMU, "read32", narrow).i2l().loadConstant(0xFFFF_FFFFL).land();
            default -> code.invokevirtual(CD_MMU, "read64", wide);
        }
    }

    /** Writes the long on the stack, {@code size} bytes of it, at the address under it (Mmu.write8 ... write64). */
    private void write(CodeBuilder code, int size) {
        MethodTypeDesc narrow = blocks.constantRam() ? MTD_WRITE32_IN : MTD_WRITE32, wide = blocks.constantRam() ? MTD_WRITE64_IN : MTD_WRITE64;
        switch (size) {
            case 1 -> code.l2i().invokevirtual(CD_MMU, "write8", narrow);
            case 2 -> code.l2i().invokevirtual(CD_MMU, "write16", narrow);
            case 4 -> code.l2i().invokevirtual(CD_MMU, "write32", narrow);
            default -> code.invokevirtual(CD_MMU, "write64", wide);
        }
    }

    /** Pushes the Mmu, then the region's constant RAM segment when it has one (the Mmu's access methods that take it). */
    private CodeBuilder mmu(CodeBuilder code) {
        code.aload(CPU).getfield(CD_CPU, "mmu", CD_MMU);
        blocks.pushRam(code);
        return code;
    }
}

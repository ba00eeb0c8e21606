package dev.polyvisor.cpu.jit;

import dev.polyvisor.cpu.decode.Insn;
import dev.polyvisor.cpu.exec.Alu;
import dev.polyvisor.cpu.exec.JitForms;

import java.lang.classfile.CodeBuilder;
import java.lang.constant.ClassDesc;

import static dev.polyvisor.cpu.jit.TraceCompiler.CD_CPU;
import static dev.polyvisor.cpu.jit.TraceCompiler.CPU;
import static java.lang.constant.ConstantDescs.CD_int;
import static java.lang.constant.ConstantDescs.CD_long;

/**
 * Emits bytecode for the register-only integer forms ({@link JitForms}) instead of a handler call. The
 * code reads and writes {@code Cpu.r} and the lazy-flag fields exactly as the handler does; because
 * these forms cannot fault, branch or write memory, the compiler also drops the exit check after them.
 */
final class InlineEmitter {
    private static final ClassDesc CD_LONG_ARRAY = CD_long.arrayType();
    /** Locals after the compiler's: a, b and the result (two slots each). */
    private static final int A = 5, B = 7, RES = 9;

    /** Emits the form of {@code insn} and returns true, or returns false (nothing emitted). */
    boolean emit(CodeBuilder code, Insn insn) {
        switch (JitForms.of(insn)) {
            case JitForms.AluRR f -> {
                loadReg(code, f.src(), f.mask()).lstore(B);
                alu(code, f.op(), f.mask(), f.ccOp(), f.dst());
            }
            case JitForms.AluRI f -> {
                code.loadConstant(f.imm()).lstore(B);
                alu(code, f.op(), f.mask(), f.ccOp(), f.dst());
            }
            case JitForms.MovRR f -> {
                regs(code).loadConstant(f.dst());
                loadReg(code, f.src(), f.mask()).lastore();
            }
            case JitForms.MovRI f -> regs(code).loadConstant(f.dst()).loadConstant(f.value()).lastore();
            case null -> { return false; }
        }
        return true;
    }

    /** a = r[dst] & mask; res = a op b; r[dst] = res & mask unless CMP/TEST; ccOp, ccDst = res, ccSrc = b. */
    private static void alu(CodeBuilder code, int op, long mask, int ccOp, int dst) {
        loadReg(code, dst, mask).lload(B);
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
    }

    private static CodeBuilder regs(CodeBuilder code) { return code.aload(CPU).getfield(CD_CPU, "r", CD_LONG_ARRAY); }

    /** Pushes {@code r[reg] & mask}. */
    private static CodeBuilder loadReg(CodeBuilder code, int reg, long mask) {
        regs(code).loadConstant(reg).laload();
        if (mask != -1L) code.loadConstant(mask).land();
        return code;
    }
}

package dev.polyvisor.cpu.exec;

import dev.polyvisor.cpu.decode.Insn;

/**
 * What the JIT ({@code cpu.jit}) needs to emit bytecode for a handler instead of calling it: the
 * handler's operation and operands, for the forms the JIT inlines. The values are the handler's own
 * fields, so the emitted code computes exactly what its {@code exec} does (same masks, same lazy-flag
 * record). Forms not listed here are called as handlers.
 */
public final class JitForms {
    private JitForms() {}

    /** A form the JIT emits itself. All but {@link Jcc} are register-only: they cannot fault, branch or write memory. */
    public sealed interface Form {}

    /**
     * {@code op r, r} with a 32/64-bit operand ({@code op} one of {@link Alu}'s ADD, OR, AND, SUB, XOR, CMP,
     * TEST): {@code b = r[src] & mask; a = r[dst] & mask; res = a op b}; unless CMP/TEST
     * {@code r[dst] = res & mask}; then {@code ccOp, ccDst = res, ccSrc = b}.
     */
    public record AluRR(int op, long mask, int ccOp, int dst, int src) implements Form {}

    /** {@code op r, imm}: as {@link AluRR} with {@code b = imm} (already masked). */
    public record AluRI(int op, long mask, int ccOp, int dst, long imm) implements Form {}

    /** {@code MOV r, r}: {@code r[dst] = r[src] & mask}. */
    public record MovRR(long mask, int dst, int src) implements Form {}

    /** {@code MOV r, imm}: {@code r[dst] = value}. */
    public record MovRI(int dst, long value) implements Form {}

    /**
     * {@code Jcc rel} (condition code {@code cc}, the low nibble of the opcode): when taken,
     * {@link #jump}{@code (c, (c.rip + rel) & mask)} and the trace ends. Not register-only: it may #GP.
     */
    public record Jcc(int cc, long rel, long mask) implements Form {}

    /** A taken near branch as the Jcc handlers do it: #GP(0) for a non-canonical target, else RIP and traceExit. */
    public static void jump(dev.polyvisor.cpu.Cpu c, long target) {
        ControlOps.branch(c, target);
        c.traceExit = true;
    }

    /**
     * Whether the handler only reads: registers, flags and (through the MMU's read path) memory. It may fault,
     * but it cannot write RAM (so it cannot invalidate the trace it runs in: invalidation comes from writes to
     * code pages, cpu.mmu.CodePages) and cannot set {@code traceExit} (only branches do), so the JIT leaves out
     * the exit check after it. A read of MMIO reaches a device model, which answers it without writing RAM.
     */
    public static boolean readsOnly(Insn i) {
        return switch (i) {
            case FastIntOps.MovRM64 _, FastIntOps.MovRM32 _, FastIntOps.MovzxM _, FastIntOps.MovzxR _, FastIntOps.Lea _,
                 FastIntOps.AddRM _, FastIntOps.OrRM _, FastIntOps.AndRM _, FastIntOps.SubRM _, FastIntOps.XorRM _,
                 FastIntOps.CmpRM _, FastIntOps.TestRM _, FastIntOps.CmpMI _, FastIntOps.CmpMR _, FastIntOps.TestMI _,
                 FastIntOps.TestMR _, FastIntOps.ShlRI _, FastIntOps.ShrRI _, FastIntOps.SarRI _ -> true;
            default -> false;
        };
    }

    /** The form of a handler, or null when the JIT should call it. */
    public static Form of(Insn i) {
        return switch (i) {
            case FastIntOps.AddRR x -> new AluRR(Alu.ADD, x.mask, x.ccOp, x.dst, x.src);
            case FastIntOps.OrRR x -> new AluRR(Alu.OR, x.mask, x.ccOp, x.dst, x.src);
            case FastIntOps.AndRR x -> new AluRR(Alu.AND, x.mask, x.ccOp, x.dst, x.src);
            case FastIntOps.SubRR x -> new AluRR(Alu.SUB, x.mask, x.ccOp, x.dst, x.src);
            case FastIntOps.XorRR x -> new AluRR(Alu.XOR, x.mask, x.ccOp, x.dst, x.src);
            case FastIntOps.CmpRR x -> new AluRR(Alu.CMP, x.mask, x.ccOp, x.dst, x.src);
            case FastIntOps.TestRR x -> new AluRR(Alu.TEST, x.mask, x.ccOp, x.dst, x.src);
            case FastIntOps.AddRI x -> new AluRI(Alu.ADD, x.mask, x.ccOp, x.dst, x.imm);
            case FastIntOps.OrRI x -> new AluRI(Alu.OR, x.mask, x.ccOp, x.dst, x.imm);
            case FastIntOps.AndRI x -> new AluRI(Alu.AND, x.mask, x.ccOp, x.dst, x.imm);
            case FastIntOps.SubRI x -> new AluRI(Alu.SUB, x.mask, x.ccOp, x.dst, x.imm);
            case FastIntOps.XorRI x -> new AluRI(Alu.XOR, x.mask, x.ccOp, x.dst, x.imm);
            case FastIntOps.CmpRI x -> new AluRI(Alu.CMP, x.mask, x.ccOp, x.dst, x.imm);
            case FastIntOps.TestRI x -> new AluRI(Alu.TEST, x.mask, x.ccOp, x.dst, x.imm);
            case FastIntOps.MovRR x -> new MovRR(x.mask, x.dst, x.src);
            case FastIntOps.MovRI x -> new MovRI(x.dst, x.value);
            case ControlOps.Jcc x -> new Jcc(x.cc, x.rel, x.mask);
            case ControlOps.JccZ x -> new Jcc(x.ifZero ? 4 : 5, x.rel, x.mask);
            default -> null;
        };
    }
}

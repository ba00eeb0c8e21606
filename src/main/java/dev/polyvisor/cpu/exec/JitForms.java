package dev.polyvisor.cpu.exec;

import dev.polyvisor.cpu.Flags;
import dev.polyvisor.cpu.decode.Ea;
import dev.polyvisor.cpu.decode.Insn;

/**
 * What the JIT ({@code cpu.jit}) needs to emit bytecode for a handler instead of calling it: the
 * handler's operation and operands, for the forms the JIT inlines. The values are the handler's own
 * fields, so the emitted code computes exactly what its {@code exec} does (same masks, same lazy-flag
 * record). Forms not listed here are called as handlers.
 */
public final class JitForms {
    private JitForms() {}

    /**
     * A form the JIT emits itself. {@link AluRR}, {@link AluRI}, {@link MovRR}, {@link MovRI}, {@link Lea},
     * {@link ShiftRI}, {@link MovzxRR}, {@link ImulRR}, {@link CmovRR}, {@link UnaryRR} and {@link Nop} are
     * register-only: they cannot fault,
     * branch or write memory; the memory forms may fault, {@link StoreMR} writes; {@link Jcc} and {@link JmpRel}
     * set RIP and may fault (#GP).
     */
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

    /**
     * A load into a register: {@code r[dst] = read(lin(ea))} of {@code size} bytes (1, 2, 4, 8), zero-extended to 64
     * bits (MOV r32/r64, m; MOVZX r, m8/m16). It may fault (before any register is written) but not write memory.
     */
    public record LoadRM(int size, int dst, Ea.Shape ea) implements Form {}

    /**
     * A store from a register: {@code write(lin(ea), r[src])} of {@code size} bytes (1, 2, 4, 8; MOV m, r; the low
     * byte or word, not AH-BH). It may fault.
     */
    public record StoreMR(int size, int src, Ea.Shape ea) implements Form {}

    /** {@code MOV m, imm}: {@code write(lin(ea), imm)} of {@code size} bytes (IntegerOps' MovMI). It may fault. */
    public record StoreMI(int size, Ea.Shape ea, long imm) implements Form {}

    /** {@code op r, m}: as {@link AluRR} with {@code b} read from memory ({@code mask} tells 4 from 8 bytes). It may fault. */
    public record AluRM(int op, long mask, int ccOp, int dst, Ea.Shape ea) implements Form {}

    /**
     * {@code CMP/TEST m, imm} of 1, 2, 4 or 8 bytes (FastIntOps' CmpMI, TestMI): {@code b = imm} (already masked),
     * {@code a = read(lin(ea))} zero-extended, {@code res = a - b} or {@code a & b}; {@code ccOp, ccDst = res,
     * ccSrc = b}. It may fault, it writes nothing.
     */
    public record AluMI(int op, int size, int ccOp, Ea.Shape ea, long imm) implements Form {}

    /** {@code CMP/TEST m, r} (CmpMR, TestMR): as {@link AluMI} with {@code b = r[src] & mask(size)} (no AH-BH). */
    public record AluMR(int op, int size, int ccOp, Ea.Shape ea, int src) implements Form {}

    /** {@code LEA r, m}: {@code r[dst] = ea & mask}; register-only. */
    public record Lea(long mask, int dst, Ea.Shape ea) implements Form {}

    /**
     * SHL/SHR/SAR r32/64 by an immediate count {@code n} (1..63; {@code op} one of {@link BitOps}' SHL, SHR,
     * SAR; {@code sh} = 64 - operand bits), register-only, with the lazy-flag record of the handlers.
     */
    public record ShiftRI(int op, long mask, int ccOp, int dst, int n, int sh) implements Form {}

    /** {@link ShiftRI}'s operations. */
    public static final int SHL = BitOps.SHL, SHR = BitOps.SHR, SAR = BitOps.SAR;

    /** {@code MOVZX r, r8/r16}: {@code r[dst] = (r[src] >>> shift) & srcMask}; register-only. */
    public record MovzxRR(int dst, int src, int shift, long srcMask) implements Form {}

    /** {@code JMP rel} inside a trace (the trace builder followed it): {@link #goTo}{@code (c, (c.rip + rel) & mask)}. */
    public record JmpRel(long rel, long mask) implements Form {}

    /** A near jump as JMP rel does it: #GP(0) for a non-canonical target (SDM Vol. 2A, JMP), else RIP. */
    public static void goTo(dev.polyvisor.cpu.Cpu c, long target) { ControlOps.branch(c, target); }

    /**
     * {@code IMUL r, r} / {@code IMUL r, r, imm} with a 32/64-bit operand, register-only (IntegerOps' Imul): a = rm and
     * b = imm or r[dst], both sign-extended from the operand size; lo = a * b; r[dst] = lo (zero-extended for 32
     * bits); ccOp, ccDst = lo, ccSrc = 1 when the signed product does not fit the operand size, else 0.
     */
    public record ImulRR(boolean q, int ccOp, int dst, int rm, boolean hasImm, long imm) implements Form {}

    /**
     * {@code CMOVcc r, r} with a 32/64-bit operand, register-only: r[dst] = cond ? r[rm] : r[dst], masked (a 32-bit
     * CMOV zero-extends its destination whether or not it moves, SDM Vol. 2A CMOVcc).
     */
    public record CmovRR(int cc, long mask, int dst, int rm) implements Form {}

    /** A taken near branch as the Jcc handlers do it: #GP(0) for a non-canonical target, else RIP and traceExit. */
    public static void jump(dev.polyvisor.cpu.Cpu c, long target) {
        ControlOps.branch(c, target);
        c.traceExit = true;
    }

    /**
     * Whether the handler only reads: registers, flags and (through the MMU's read path) memory. It may fault,
     * but it cannot write RAM and cannot branch, so it cannot set {@code traceExit} (taken branches and writes
     * to code pages do: cpu.mmu.Mmu.codeWritten), and the JIT leaves out
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

    /** NOP in any of its encodings: nothing at all. */
    public record Nop() implements Form {}

    /**
     * {@code INC/DEC/NOT/NEG r} with a 32/64-bit operand, register-only (IntegerOps' UnaryR): {@code a = r & mask},
     * {@code res = a + 1, a - 1, ~a, -a} (unmasked), {@code r = res & mask}; INC/DEC: {@code ccOp, ccDst = res,
     * ccSrc = CF before} ({@link Flags#cf}, since they keep CF); NEG: {@code ccOp (SUB), ccDst = res, ccSrc = a};
     * NOT leaves the flags.
     */
    public record UnaryRR(int op, long mask, int ccOp, int reg) implements Form {}

    /**
     * {@code PUSH r64} (ControlOps' PushReg with a 64-bit operand, so in 64-bit mode: Stack.push): {@code sp =
     * stackCanonical(rsp - 8, 8)} (#SS), {@code write64(sp, r)} (the old RSP for PUSH RSP), then {@code rsp = sp}.
     * It may fault (before RSP changes) and writes memory.
     */
    public record PushR(int reg) implements Form {}

    /**
     * {@code POP r64} (PopReg, 64-bit: Stack.pop): {@code sp = stackCanonical(rsp, 8)}, {@code v = read64(sp)},
     * {@code rsp = sp + 8}, then {@code r = v} (POP RSP: the popped value wins). It may fault before any change.
     */
    public record PopR(int reg) implements Form {}

    /**
     * {@code ROL/ROR r, imm} with a 32/64-bit register (BitOps' Shift): {@code n = imm & (bits - 1)}; when 0 nothing
     * changes but a 32-bit register is written (zero-extended); else {@code r = rotate(r & mask, n)} and CF, OF as
     * {@link #rotateFlags} sets them (the record materialized: rotates change only CF and OF).
     */
    public record RotateRI(boolean left, int size, int reg, int n) implements Form {}

    /** CF and OF after a ROL ({@code left}) or ROR of {@code size} bytes that gave {@code r} (BitOps.Shift). */
    public static void rotateFlags(dev.polyvisor.cpu.Cpu c, boolean left, int size, long r) {
        long sign = 1L << (size * 8 - 1);
        boolean msb = (r & sign) != 0;
        if (left) {
            boolean cf = (r & 1) != 0;
            BitOps.setCfOf(c, cf, cf ^ msb);
        } else {
            BitOps.setCfOf(c, msb, msb ^ ((r & (sign >>> 1)) != 0));
        }
    }

    /**
     * {@code CMP/TEST r8/r16, imm} and {@code r8/r16, r8/r16} (IntegerOps' AluRI, AluRR; low bytes only, not AH-BH):
     * {@code a = r[dst] & mask}, {@code b = imm} or {@code r[src] & mask}, {@code res = a - b} or {@code a & b};
     * {@code ccOp, ccDst = res, ccSrc = b, ccSrc2 = 0} (Alu.flags, no carry in). Register-only.
     */
    public record CmpNarrow(int op, int size, int ccOp, int dst, int src, long imm) implements Form {}

    /**
     * {@code MOVSX/MOVSXD r32/r64, r/m} of a 1-, 2- or 4-byte source (IntegerOps' MovX, signed; a register source
     * is a low byte or word, not AH-BH): {@code v = r[rm] & srcMask} or {@code read(lin(ea), srcSize)}, then
     * {@code r[dst] = sext(v) & mask}. The memory form may fault before writing.
     */
    public record Movsx(int size, int srcSize, int dst, int rm, Ea.Shape ea) implements Form {}

    /** {@code SETcc r8} (a low byte, not AH-BH): {@code r = r & ~0xFF | (Flags.cond(c, cc) ? 1 : 0)}. Register-only. */
    public record SetccR(int cc, int rm) implements Form {}

    /** {@link UnaryRR}'s operations. */
    public static final int INC = IntegerOps.INC, DEC = IntegerOps.DEC, NOT = IntegerOps.NOT, NEG = IntegerOps.NEG;

    /** The lazy-flag kind Alu.flags records for CMP (a subtraction) or TEST (a logic result) of {@code size} bytes. */
    private static int compareCcOp(int op, int size) {
        return Flags.op(op == Alu.CMP ? Flags.K_SUB : Flags.K_LOGIC, Regs.sizeIdx(size));
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
            case FastIntOps.AddRM x -> new AluRM(Alu.ADD, x.mask, x.ccOp, x.dst, x.ea.shape());
            case FastIntOps.OrRM x -> new AluRM(Alu.OR, x.mask, x.ccOp, x.dst, x.ea.shape());
            case FastIntOps.AndRM x -> new AluRM(Alu.AND, x.mask, x.ccOp, x.dst, x.ea.shape());
            case FastIntOps.SubRM x -> new AluRM(Alu.SUB, x.mask, x.ccOp, x.dst, x.ea.shape());
            case FastIntOps.XorRM x -> new AluRM(Alu.XOR, x.mask, x.ccOp, x.dst, x.ea.shape());
            case FastIntOps.CmpRM x -> new AluRM(Alu.CMP, x.mask, x.ccOp, x.dst, x.ea.shape());
            case FastIntOps.TestRM x -> new AluRM(Alu.TEST, x.mask, x.ccOp, x.dst, x.ea.shape());
            case FastIntOps.MovRM64 x -> new LoadRM(8, x.dst, x.ea.shape());
            case FastIntOps.MovRM32 x -> new LoadRM(4, x.dst, x.ea.shape());
            case FastIntOps.MovzxM x -> new LoadRM(x.word ? 2 : 1, x.dst, x.ea.shape());
            case FastIntOps.MovMR64 x -> new StoreMR(8, x.src, x.ea.shape());
            case FastIntOps.MovMR32 x -> new StoreMR(4, x.src, x.ea.shape());
            case FastIntOps.Lea x -> new Lea(x.mask, x.dst, x.ea.shape());
            case FastIntOps.ShlRI x -> new ShiftRI(BitOps.SHL, x.mask, x.ccOp, x.dst, x.n, 0);
            case FastIntOps.ShrRI x -> new ShiftRI(BitOps.SHR, x.mask, x.ccOp, x.dst, x.n, 0);
            case FastIntOps.SarRI x -> new ShiftRI(BitOps.SAR, x.mask, x.ccOp, x.dst, x.n, x.sh);
            case FastIntOps.MovzxR x -> new MovzxRR(x.dst, x.src, x.shift, x.srcMask);
            case ControlOps.JmpRel x -> new JmpRel(x.rel, x.mask);
            case IntegerOps.Nop _ -> new Nop();
            case IntegerOps.AluRI x when (x.op == Alu.CMP || x.op == Alu.TEST) && x.size <= 2 && x.dst < 16 ->
                    new CmpNarrow(x.op, x.size, compareCcOp(x.op, x.size), x.dst, -1, x.imm);
            case IntegerOps.AluRR x when (x.op == Alu.CMP || x.op == Alu.TEST) && x.size <= 2 && x.dst < 16 && x.src < 16 ->
                    new CmpNarrow(x.op, x.size, compareCcOp(x.op, x.size), x.dst, x.src, 0);
            case IntegerOps.MovX x when x.signed && (x.size == 4 || x.size == 8) && x.srcSize < x.size && (x.ea != null || x.rm < 16) ->
                    new Movsx(x.size, x.srcSize, x.dst, x.rm, x.ea == null ? null : x.ea.shape());
            case IntegerOps.Setcc x when x.ea == null && x.rm < 16 -> new SetccR(x.cc, x.rm);
            case BitOps.Shift x when x.ea == null && x.count >= 0 && (x.size == 4 || x.size == 8) && x.rm < 16
                    && (x.op == BitOps.ROL || x.op == BitOps.ROR) ->
                    new RotateRI(x.op == BitOps.ROL, x.size, x.rm, x.count & (x.size == 8 ? 63 : 31));
            case IntegerOps.MovMR x when x.src < 16 -> new StoreMR(x.size, x.src, x.ea.shape());
            case IntegerOps.MovMI x -> new StoreMI(x.size, x.ea.shape(), x.imm);
            case FastIntOps.CmpMI x -> new AluMI(Alu.CMP, x.size, x.ccOp, x.ea.shape(), x.imm);
            case FastIntOps.TestMI x -> new AluMI(Alu.TEST, x.size, x.ccOp, x.ea.shape(), x.imm);
            case FastIntOps.CmpMR x when x.src < 16 -> new AluMR(Alu.CMP, x.size, x.ccOp, x.ea.shape(), x.src);
            case FastIntOps.TestMR x when x.src < 16 -> new AluMR(Alu.TEST, x.size, x.ccOp, x.ea.shape(), x.src);
            case ControlOps.PushReg x when x.size == 8 -> new PushR(x.reg);
            case ControlOps.PopReg x when x.size == 8 -> new PopR(x.reg);
            case IntegerOps.UnaryR x when x.size == 4 || x.size == 8 -> new UnaryRR(x.op, FastIntOps.mask(x.size),
                    x.op == INC ? Flags.op(Flags.K_INC, Regs.sizeIdx(x.size)) : x.op == DEC
                            ? Flags.op(Flags.K_DEC, Regs.sizeIdx(x.size)) : Flags.op(Flags.K_SUB, Regs.sizeIdx(x.size)), x.reg);
            case IntegerOps.Imul x when x.ea == null && (x.size == 4 || x.size == 8) ->
                    new ImulRR(x.size == 8, Flags.op(Flags.K_MUL, x.size == 8 ? 3 : 2), x.dst, x.rm, x.hasImm,
                            Regs.sext(x.imm, x.size));
            case IntegerOps.Cmov x when x.ea == null && (x.size == 4 || x.size == 8) ->
                    new CmovRR(x.cc, FastIntOps.mask(x.size), x.dst, x.rm);
            case ControlOps.Jcc x -> new Jcc(x.cc, x.rel, x.mask);
            case ControlOps.JccZ x -> new Jcc(x.ifZero ? 4 : 5, x.rel, x.mask);
            default -> null;
        };
    }
}

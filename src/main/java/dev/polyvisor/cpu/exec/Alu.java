package dev.polyvisor.cpu.exec;

import dev.polyvisor.cpu.Cpu;
import dev.polyvisor.cpu.Flags;
import dev.polyvisor.cpu.decode.Ea;

/**
 * Shared integer ALU helpers: the eight classic binary operations (ADD OR ADC SBB AND SUB XOR CMP, in
 * opcode order, SDM Vol. 2 Table A-6 group 1) plus TEST, computed without side effects and then
 * recorded as lazy flags in the {@link Flags} conventions. Memory read-modify-write forms compute the
 * result, write it, and only then record flags, so a faulting write leaves the flags untouched (the
 * instruction restarts with the same carry-in).
 */
public final class Alu {
    public static final int ADD = 0, OR = 1, ADC = 2, SBB = 3, AND = 4, SUB = 5, XOR = 6, CMP = 7, TEST = 8;
    static final String[] NAMES = {"ADD", "OR", "ADC", "SBB", "AND", "SUB", "XOR", "CMP", "TEST"};
    private static final int[] KIND = {Flags.K_ADD, Flags.K_LOGIC, Flags.K_ADC, Flags.K_SBB, Flags.K_LOGIC,
            Flags.K_SUB, Flags.K_LOGIC, Flags.K_SUB, Flags.K_LOGIC};

    private Alu() {}

    /** True when the operation writes its destination (CMP and TEST only set flags). */
    static boolean writes(int op) { return op != CMP && op != TEST; }

    /** The carry/borrow input of ADC/SBB (0 or 1), 0 for the others. Read before any flag is recorded. */
    static long carryIn(Cpu c, int op) {
        return (op == ADC || op == SBB) && Flags.cf(c) ? 1 : 0;
    }

    /** The unmasked result of {@code a op b} (callers mask by size when storing). */
    static long result(int op, long a, long b, long carry) {
        return switch (op) {
            case ADD -> a + b;
            case OR -> a | b;
            case ADC -> a + b + carry;
            case SBB -> a - b - carry;
            case AND, TEST -> a & b;
            case SUB, CMP -> a - b;
            default -> a ^ b;
        };
    }

    /** Records the lazy flags of {@code op} with second operand b, carry-in and result r. */
    static void flags(Cpu c, int op, int size, long b, long carry, long r) {
        c.ccOp = Flags.op(KIND[op], Regs.sizeIdx(size));
        c.ccDst = r;
        c.ccSrc = b;
        c.ccSrc2 = carry;
    }

    /** Computes {@code a op b}, records flags and returns the (unmasked) result. */
    static long alu(Cpu c, int op, int size, long a, long b) {
        long carry = carryIn(c, op);
        long r = result(op, a, b, carry);
        flags(c, op, size, b, carry, r);
        return r;
    }

    /** Memory form of {@link #alu}: read, compute, write (unless CMP/TEST), then flags. */
    static void aluMem(Cpu c, int op, int size, long la, long b) {
        long a = c.mmu.read(la, size);
        long carry = carryIn(c, op);
        long r = result(op, a, b, carry);
        if (writes(op)) c.mmu.write(la, size, r);
        flags(c, op, size, b, carry, r);
    }

    static void setSub(Cpu c, int size, long a, long b) {
        c.ccOp = Flags.op(Flags.K_SUB, Regs.sizeIdx(size));
        c.ccDst = a - b;
        c.ccSrc = b;
    }

    static void setAdd(Cpu c, int size, long a, long b) {
        c.ccOp = Flags.op(Flags.K_ADD, Regs.sizeIdx(size));
        c.ccDst = a + b;
        c.ccSrc = b;
    }

    // ---- r/m operand access for the less hot forms (one class covers register and memory) ----

    /** Reads a ModRM r/m operand: register {@code rm} when {@code ea} is null, else memory. */
    static long readRm(Cpu c, int rm, Ea ea, int size) {
        return ea == null ? Regs.get(c, rm, size) : c.mmu.read(ea.lin(c), size);
    }

    static void writeRm(Cpu c, int rm, Ea ea, int size, long v) {
        if (ea == null) Regs.set(c, rm, size, v);
        else c.mmu.write(ea.lin(c), size, v);
    }

    /** Edits single bits of the materialised flags (rotates, BT, BSF, CMPXCHG8B). */
    static void setFlagBit(Cpu c, int bit, boolean v) {
        Flags.materialize(c);
        c.ccSrc = v ? c.ccSrc | bit : c.ccSrc & ~bit;
    }

    /** Java shifts use the count mod 64; x86 helpers here need "shift by >= 64 gives 0". */
    static long shl(long v, int n) { return n >= 64 ? 0 : v << n; }

    static long shr(long v, int n) { return n >= 64 ? 0 : v >>> n; }

    static boolean canonical(long a) { return ((a << 16) >> 16) == a; }
}

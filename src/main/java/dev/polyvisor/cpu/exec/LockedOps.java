package dev.polyvisor.cpu.exec;

import dev.polyvisor.cpu.Cpu;
import dev.polyvisor.cpu.Flags;
import dev.polyvisor.cpu.decode.Decoded;
import dev.polyvisor.cpu.decode.Ea;
import dev.polyvisor.cpu.decode.Insn;
import dev.polyvisor.memory.GuestMemory;

/**
 * The locked read-modify-write forms (SDM Vol. 2A "LOCK"; Vol. 3A 9.1.2): LOCK ADD/OR/ADC/SBB/AND/SUB/XOR,
 * INC/DEC/NOT/NEG, BTS/BTR/BTC, XADD, CMPXCHG and CMPXCHG8B with a memory destination, and XCHG with
 * memory, which is locked with or without the prefix. With one host thread per vCPU a plain
 * read-then-write would lose another vCPU's concurrent update, so each is one {@link
 * dev.polyvisor.cpu.mmu.Mmu#atomicRmw}: the new value is a pure function of the old one and the
 * operands (it may be recomputed when a compare-and-set loses a race); flags and registers are set
 * once, from the old value the update was finally applied to.
 */
final class LockedOps {
    private LockedOps() {}

    /** LOCK op r/m, reg (ADD OR ADC SBB AND SUB XOR). */
    static Insn alu(int op, Decoded d) { return new AluM(op, d.opSize, d.ea, d.regOp(), 0); }

    /** LOCK op r/m, imm. */
    static Insn aluImm(int op, Decoded d) { return new AluM(op, d.opSize, d.ea, -1, d.imm); }

    private static final GuestMemory.Update[] ALU = new GuestMemory.Update[8];
    static {
        for (int o = 0; o < 8; o++) {
            final int op = o;
            ALU[o] = (old, b, carry) -> Alu.result(op, old, b, carry);
        }
    }

    static final class AluM extends Insn {
        final int op, size, src;
        final long imm;
        final Ea ea;
        final GuestMemory.Update update;
        AluM(int op, int size, Ea ea, int src, long imm) {
            this.op = op; this.size = size; this.ea = ea; this.src = src; this.imm = imm & Regs.mask(size);
            this.update = ALU[op];
        }
        @Override public void exec(Cpu c) {
            long b = src >= 0 ? Regs.get(c, src, size) : imm;
            long carry = Alu.carryIn(c, op);
            long old = c.mmu.atomicRmw(ea.lin(c), size, update, b, carry);
            Alu.flags(c, op, size, b, carry, Alu.result(op, old, b, carry));
        }
    }

    private static final GuestMemory.Update[] UNARY = {
        (a, x, y) -> a + 1, (a, x, y) -> a - 1, (a, x, y) -> ~a, (a, x, y) -> -a,
    };

    /** LOCK INC/DEC/NOT/NEG m. */
    static final class UnaryM extends Insn {
        final int op, size;
        final Ea ea;
        UnaryM(int op, int size, Ea ea) { this.op = op; this.size = size; this.ea = ea; }
        @Override public void exec(Cpu c) {
            long cf = op <= IntegerOps.DEC && Flags.cf(c) ? 1 : 0;
            long a = c.mmu.atomicRmw(ea.lin(c), size, UNARY[op], 0, 0);
            IntegerOps.unaryFlags(c, op, size, a, IntegerOps.unaryResult(op, a), cf);
        }
    }

    private static final GuestMemory.Update SWAP = (old, v, unused) -> v;

    /** XCHG r/m, reg with memory: the bus lock is implicit (SDM Vol. 2B XCHG). */
    static final class XchgM extends Insn {
        final int size, reg;
        final Ea ea;
        XchgM(int size, Ea ea, int reg) { this.size = size; this.ea = ea; this.reg = reg; }
        @Override public void exec(Cpu c) {
            long la = ea.lin(c);
            long m = c.mmu.atomicRmw(la, size, SWAP, Regs.get(c, reg, size), 0);
            Regs.set(c, reg, size, m);
        }
    }

    private static final GuestMemory.Update ADD = (old, v, unused) -> old + v;

    /** LOCK XADD m, reg. */
    static final class Xadd extends Insn {
        final int size, reg;
        final Ea ea;
        Xadd(int size, Ea ea, int reg) { this.size = size; this.ea = ea; this.reg = reg; }
        @Override public void exec(Cpu c) {
            long src = Regs.get(c, reg, size);
            long dst = c.mmu.atomicRmw(ea.lin(c), size, ADD, src, 0);
            Regs.set(c, reg, size, dst);
            Alu.setAdd(c, size, dst, src);
        }
    }

    /** Equal to the accumulator: the source; else the old value again (the locked cycle writes it back). */
    private static final GuestMemory.Update CMPXCHG = (old, acc, src) -> old == acc ? src : old;

    /** LOCK CMPXCHG m, reg: the compare and the store are one atomic update. */
    static final class Cmpxchg extends Insn {
        final int size, reg;
        final Ea ea;
        Cmpxchg(int size, Ea ea, int reg) { this.size = size; this.ea = ea; this.reg = reg; }
        @Override public void exec(Cpu c) {
            long acc = Regs.get(c, Cpu.RAX, size);
            long dst = c.mmu.atomicRmw(ea.lin(c), size, CMPXCHG, acc, Regs.get(c, reg, size));
            if (dst != acc) Regs.set(c, Cpu.RAX, size, dst);
            Alu.setSub(c, size, acc, dst);
        }
    }

    /** LOCK CMPXCHG8B m64: EDX:EAX against m64, ECX:EBX stored when equal. */
    static final class Cmpxchg8b extends Insn {
        final Ea ea;
        Cmpxchg8b(Ea ea) { this.ea = ea; }
        @Override public void exec(Cpu c) {
            long cmp = (c.r[Cpu.RDX] & 0xFFFF_FFFFL) << 32 | (c.r[Cpu.RAX] & 0xFFFF_FFFFL);
            long set = (c.r[Cpu.RCX] & 0xFFFF_FFFFL) << 32 | (c.r[Cpu.RBX] & 0xFFFF_FFFFL);
            long m = c.mmu.atomicRmw(ea.lin(c), 8, CMPXCHG, cmp, set);
            boolean eq = m == cmp;
            if (!eq) {
                Regs.set(c, Cpu.RAX, 4, m);
                Regs.set(c, Cpu.RDX, 4, m >>> 32);
            }
            Alu.setFlagBit(c, Flags.ZF, eq);
        }
    }

    private static final GuestMemory.Update[] BIT = {
        null, (v, m, u) -> v | m, (v, m, u) -> v & ~m, (v, m, u) -> v ^ m,
    };

    /** LOCK BTS/BTR/BTC m, reg/imm8: a register bit offset addresses memory beyond the operand (SDM Vol. 2A BT). */
    static final class BitTestM extends Insn {
        final int op, size, reg, imm, bits, shift;
        final Ea ea;
        BitTestM(int op, int size, Ea ea, int reg, int imm) {
            this.op = op; this.size = size; this.ea = ea; this.reg = reg; this.imm = imm;
            this.bits = size * 8; this.shift = Integer.numberOfTrailingZeros(bits);
        }
        @Override public void exec(Cpu c) {
            long off = reg >= 0 ? Regs.sext(Regs.get(c, reg, size), size) : imm;
            int bit = (int) off & (bits - 1);
            long la = reg >= 0 ? ea.lin(c, (off >> shift) * size) : ea.lin(c);
            long v = c.mmu.atomicRmw(la, size, BIT[op], 1L << bit, 0);
            Alu.setFlagBit(c, Flags.CF, ((v >>> bit) & 1) != 0);
        }
    }
}

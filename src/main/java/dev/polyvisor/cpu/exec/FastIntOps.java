package dev.polyvisor.cpu.exec;

import dev.polyvisor.cpu.Cpu;
import dev.polyvisor.cpu.Flags;
import dev.polyvisor.cpu.decode.Ea;
import dev.polyvisor.cpu.decode.Insn;

/**
 * Specialised handlers for the hottest integer forms with a 32- or 64-bit operand (reference/cpu-design.md
 * 1.5): one final class per operation and operand shape, so that each handler is a few loads and stores
 * with no switch on the operation or the size. A 32-bit result written to a register zero-extends
 * (SDM Vol. 1, 3.4.1.1), which is exactly {@code & mask}; operands are masked as {@link Regs#get} does,
 * so the lazy-flag records are the same as the generic {@link IntegerOps} handlers produce. ADC/SBB
 * and 8/16-bit operands stay on the generic handlers.
 */
final class FastIntOps {
    private FastIntOps() {}

    static long mask(int size) { return size == 8 ? -1L : 0xFFFF_FFFFL; }

    static int ccOp(int kind, int size) { return Flags.op(kind, size == 8 ? 3 : 2); }

    static long read(Cpu c, long la, boolean q) { return q ? c.mmu.read64(la) : c.mmu.read32(la) & 0xFFFF_FFFFL; }

    /** op r, r / op r, imm / op r, m with a 32- or 64-bit operand; null when there is no fast form. */
    static Insn rr(int op, int size, int dst, int src) {
        return switch (op) {
            case Alu.ADD -> new AddRR(size, dst, src);
            case Alu.OR -> new OrRR(size, dst, src);
            case Alu.AND -> new AndRR(size, dst, src);
            case Alu.SUB -> new SubRR(size, dst, src);
            case Alu.XOR -> new XorRR(size, dst, src);
            case Alu.CMP -> new CmpRR(size, dst, src);
            case Alu.TEST -> new TestRR(size, dst, src);
            default -> null;
        };
    }

    static Insn ri(int op, int size, int dst, long imm) {
        return switch (op) {
            case Alu.ADD -> new AddRI(size, dst, imm);
            case Alu.OR -> new OrRI(size, dst, imm);
            case Alu.AND -> new AndRI(size, dst, imm);
            case Alu.SUB -> new SubRI(size, dst, imm);
            case Alu.XOR -> new XorRI(size, dst, imm);
            case Alu.CMP -> new CmpRI(size, dst, imm);
            case Alu.TEST -> new TestRI(size, dst, imm);
            default -> null;
        };
    }

    static Insn rm(int op, int size, int dst, Ea ea) {
        return switch (op) {
            case Alu.ADD -> new AddRM(size, dst, ea);
            case Alu.OR -> new OrRM(size, dst, ea);
            case Alu.AND -> new AndRM(size, dst, ea);
            case Alu.SUB -> new SubRM(size, dst, ea);
            case Alu.XOR -> new XorRM(size, dst, ea);
            case Alu.CMP -> new CmpRM(size, dst, ea);
            case Alu.TEST -> new TestRM(size, dst, ea);
            default -> null;
        };
    }

    static final class AddRR extends Insn {
        final int dst, src, ccOp;
        final long mask;
        AddRR(int size, int dst, int src) { this.dst = dst; this.src = src; this.mask = mask(size); this.ccOp = ccOp(Flags.K_ADD, size); }
        @Override public void exec(Cpu c) {
            long b = c.r[src] & mask, a = c.r[dst] & mask, r = a + b;
            c.r[dst] = r & mask;
            c.ccOp = ccOp;
            c.ccDst = r;
            c.ccSrc = b;
        }
    }

    static final class AddRI extends Insn {
        final int dst, ccOp;
        final long mask, imm;
        AddRI(int size, int dst, long imm) { this.dst = dst; this.mask = mask(size); this.imm = imm & mask; this.ccOp = ccOp(Flags.K_ADD, size); }
        @Override public void exec(Cpu c) {
            long b = imm, a = c.r[dst] & mask, r = a + b;
            c.r[dst] = r & mask;
            c.ccOp = ccOp;
            c.ccDst = r;
            c.ccSrc = b;
        }
    }

    static final class AddRM extends Insn {
        final int dst, ccOp;
        final long mask;
        final boolean q;
        final Ea ea;
        AddRM(int size, int dst, Ea ea) { this.dst = dst; this.ea = ea; this.q = size == 8; this.mask = mask(size); this.ccOp = ccOp(Flags.K_ADD, size); }
        @Override public void exec(Cpu c) {
            long b = read(c, ea.lin(c), q), a = c.r[dst] & mask, r = a + b;
            c.r[dst] = r & mask;
            c.ccOp = ccOp;
            c.ccDst = r;
            c.ccSrc = b;
        }
    }

    static final class OrRR extends Insn {
        final int dst, src, ccOp;
        final long mask;
        OrRR(int size, int dst, int src) { this.dst = dst; this.src = src; this.mask = mask(size); this.ccOp = ccOp(Flags.K_LOGIC, size); }
        @Override public void exec(Cpu c) {
            long b = c.r[src] & mask, a = c.r[dst] & mask, r = a | b;
            c.r[dst] = r & mask;
            c.ccOp = ccOp;
            c.ccDst = r;
            c.ccSrc = b;
        }
    }

    static final class OrRI extends Insn {
        final int dst, ccOp;
        final long mask, imm;
        OrRI(int size, int dst, long imm) { this.dst = dst; this.mask = mask(size); this.imm = imm & mask; this.ccOp = ccOp(Flags.K_LOGIC, size); }
        @Override public void exec(Cpu c) {
            long b = imm, a = c.r[dst] & mask, r = a | b;
            c.r[dst] = r & mask;
            c.ccOp = ccOp;
            c.ccDst = r;
            c.ccSrc = b;
        }
    }

    static final class OrRM extends Insn {
        final int dst, ccOp;
        final long mask;
        final boolean q;
        final Ea ea;
        OrRM(int size, int dst, Ea ea) { this.dst = dst; this.ea = ea; this.q = size == 8; this.mask = mask(size); this.ccOp = ccOp(Flags.K_LOGIC, size); }
        @Override public void exec(Cpu c) {
            long b = read(c, ea.lin(c), q), a = c.r[dst] & mask, r = a | b;
            c.r[dst] = r & mask;
            c.ccOp = ccOp;
            c.ccDst = r;
            c.ccSrc = b;
        }
    }

    static final class AndRR extends Insn {
        final int dst, src, ccOp;
        final long mask;
        AndRR(int size, int dst, int src) { this.dst = dst; this.src = src; this.mask = mask(size); this.ccOp = ccOp(Flags.K_LOGIC, size); }
        @Override public void exec(Cpu c) {
            long b = c.r[src] & mask, a = c.r[dst] & mask, r = a & b;
            c.r[dst] = r & mask;
            c.ccOp = ccOp;
            c.ccDst = r;
            c.ccSrc = b;
        }
    }

    static final class AndRI extends Insn {
        final int dst, ccOp;
        final long mask, imm;
        AndRI(int size, int dst, long imm) { this.dst = dst; this.mask = mask(size); this.imm = imm & mask; this.ccOp = ccOp(Flags.K_LOGIC, size); }
        @Override public void exec(Cpu c) {
            long b = imm, a = c.r[dst] & mask, r = a & b;
            c.r[dst] = r & mask;
            c.ccOp = ccOp;
            c.ccDst = r;
            c.ccSrc = b;
        }
    }

    static final class AndRM extends Insn {
        final int dst, ccOp;
        final long mask;
        final boolean q;
        final Ea ea;
        AndRM(int size, int dst, Ea ea) { this.dst = dst; this.ea = ea; this.q = size == 8; this.mask = mask(size); this.ccOp = ccOp(Flags.K_LOGIC, size); }
        @Override public void exec(Cpu c) {
            long b = read(c, ea.lin(c), q), a = c.r[dst] & mask, r = a & b;
            c.r[dst] = r & mask;
            c.ccOp = ccOp;
            c.ccDst = r;
            c.ccSrc = b;
        }
    }

    static final class SubRR extends Insn {
        final int dst, src, ccOp;
        final long mask;
        SubRR(int size, int dst, int src) { this.dst = dst; this.src = src; this.mask = mask(size); this.ccOp = ccOp(Flags.K_SUB, size); }
        @Override public void exec(Cpu c) {
            long b = c.r[src] & mask, a = c.r[dst] & mask, r = a - b;
            c.r[dst] = r & mask;
            c.ccOp = ccOp;
            c.ccDst = r;
            c.ccSrc = b;
        }
    }

    static final class SubRI extends Insn {
        final int dst, ccOp;
        final long mask, imm;
        SubRI(int size, int dst, long imm) { this.dst = dst; this.mask = mask(size); this.imm = imm & mask; this.ccOp = ccOp(Flags.K_SUB, size); }
        @Override public void exec(Cpu c) {
            long b = imm, a = c.r[dst] & mask, r = a - b;
            c.r[dst] = r & mask;
            c.ccOp = ccOp;
            c.ccDst = r;
            c.ccSrc = b;
        }
    }

    static final class SubRM extends Insn {
        final int dst, ccOp;
        final long mask;
        final boolean q;
        final Ea ea;
        SubRM(int size, int dst, Ea ea) { this.dst = dst; this.ea = ea; this.q = size == 8; this.mask = mask(size); this.ccOp = ccOp(Flags.K_SUB, size); }
        @Override public void exec(Cpu c) {
            long b = read(c, ea.lin(c), q), a = c.r[dst] & mask, r = a - b;
            c.r[dst] = r & mask;
            c.ccOp = ccOp;
            c.ccDst = r;
            c.ccSrc = b;
        }
    }

    static final class XorRR extends Insn {
        final int dst, src, ccOp;
        final long mask;
        XorRR(int size, int dst, int src) { this.dst = dst; this.src = src; this.mask = mask(size); this.ccOp = ccOp(Flags.K_LOGIC, size); }
        @Override public void exec(Cpu c) {
            long b = c.r[src] & mask, a = c.r[dst] & mask, r = a ^ b;
            c.r[dst] = r & mask;
            c.ccOp = ccOp;
            c.ccDst = r;
            c.ccSrc = b;
        }
    }

    static final class XorRI extends Insn {
        final int dst, ccOp;
        final long mask, imm;
        XorRI(int size, int dst, long imm) { this.dst = dst; this.mask = mask(size); this.imm = imm & mask; this.ccOp = ccOp(Flags.K_LOGIC, size); }
        @Override public void exec(Cpu c) {
            long b = imm, a = c.r[dst] & mask, r = a ^ b;
            c.r[dst] = r & mask;
            c.ccOp = ccOp;
            c.ccDst = r;
            c.ccSrc = b;
        }
    }

    static final class XorRM extends Insn {
        final int dst, ccOp;
        final long mask;
        final boolean q;
        final Ea ea;
        XorRM(int size, int dst, Ea ea) { this.dst = dst; this.ea = ea; this.q = size == 8; this.mask = mask(size); this.ccOp = ccOp(Flags.K_LOGIC, size); }
        @Override public void exec(Cpu c) {
            long b = read(c, ea.lin(c), q), a = c.r[dst] & mask, r = a ^ b;
            c.r[dst] = r & mask;
            c.ccOp = ccOp;
            c.ccDst = r;
            c.ccSrc = b;
        }
    }

    static final class CmpRR extends Insn {
        final int dst, src, ccOp;
        final long mask;
        CmpRR(int size, int dst, int src) { this.dst = dst; this.src = src; this.mask = mask(size); this.ccOp = ccOp(Flags.K_SUB, size); }
        @Override public void exec(Cpu c) {
            long b = c.r[src] & mask, a = c.r[dst] & mask, r = a - b;
            c.ccOp = ccOp;
            c.ccDst = r;
            c.ccSrc = b;
        }
    }

    static final class CmpRI extends Insn {
        final int dst, ccOp;
        final long mask, imm;
        CmpRI(int size, int dst, long imm) { this.dst = dst; this.mask = mask(size); this.imm = imm & mask; this.ccOp = ccOp(Flags.K_SUB, size); }
        @Override public void exec(Cpu c) {
            long b = imm, a = c.r[dst] & mask, r = a - b;
            c.ccOp = ccOp;
            c.ccDst = r;
            c.ccSrc = b;
        }
    }

    static final class CmpRM extends Insn {
        final int dst, ccOp;
        final long mask;
        final boolean q;
        final Ea ea;
        CmpRM(int size, int dst, Ea ea) { this.dst = dst; this.ea = ea; this.q = size == 8; this.mask = mask(size); this.ccOp = ccOp(Flags.K_SUB, size); }
        @Override public void exec(Cpu c) {
            long b = read(c, ea.lin(c), q), a = c.r[dst] & mask, r = a - b;
            c.ccOp = ccOp;
            c.ccDst = r;
            c.ccSrc = b;
        }
    }

    static final class TestRR extends Insn {
        final int dst, src, ccOp;
        final long mask;
        TestRR(int size, int dst, int src) { this.dst = dst; this.src = src; this.mask = mask(size); this.ccOp = ccOp(Flags.K_LOGIC, size); }
        @Override public void exec(Cpu c) {
            long b = c.r[src] & mask, a = c.r[dst] & mask, r = a & b;
            c.ccOp = ccOp;
            c.ccDst = r;
            c.ccSrc = b;
        }
    }

    static final class TestRI extends Insn {
        final int dst, ccOp;
        final long mask, imm;
        TestRI(int size, int dst, long imm) { this.dst = dst; this.mask = mask(size); this.imm = imm & mask; this.ccOp = ccOp(Flags.K_LOGIC, size); }
        @Override public void exec(Cpu c) {
            long b = imm, a = c.r[dst] & mask, r = a & b;
            c.ccOp = ccOp;
            c.ccDst = r;
            c.ccSrc = b;
        }
    }

    static final class TestRM extends Insn {
        final int dst, ccOp;
        final long mask;
        final boolean q;
        final Ea ea;
        TestRM(int size, int dst, Ea ea) { this.dst = dst; this.ea = ea; this.q = size == 8; this.mask = mask(size); this.ccOp = ccOp(Flags.K_LOGIC, size); }
        @Override public void exec(Cpu c) {
            long b = read(c, ea.lin(c), q), a = c.r[dst] & mask, r = a & b;
            c.ccOp = ccOp;
            c.ccDst = r;
            c.ccSrc = b;
        }
    }

    /** MOV r, r (32/64). */
    static final class MovRR extends Insn {
        final int dst, src;
        final long mask;
        MovRR(int size, int dst, int src) { this.dst = dst; this.src = src; this.mask = mask(size); }
        @Override public void exec(Cpu c) { c.r[dst] = c.r[src] & mask; }
    }

    static final class MovRM64 extends Insn {
        final int dst;
        final Ea ea;
        MovRM64(int dst, Ea ea) { this.dst = dst; this.ea = ea; }
        @Override public void exec(Cpu c) { c.r[dst] = c.mmu.read64(ea.lin(c)); }
    }

    static final class MovRM32 extends Insn {
        final int dst;
        final Ea ea;
        MovRM32(int dst, Ea ea) { this.dst = dst; this.ea = ea; }
        @Override public void exec(Cpu c) { c.r[dst] = c.mmu.read32(ea.lin(c)) & 0xFFFF_FFFFL; }
    }

    static final class MovMR64 extends Insn {
        final int src;
        final Ea ea;
        MovMR64(Ea ea, int src) { this.ea = ea; this.src = src; }
        @Override public void exec(Cpu c) { c.mmu.write64(ea.lin(c), c.r[src]); }
    }

    static final class MovMR32 extends Insn {
        final int src;
        final Ea ea;
        MovMR32(Ea ea, int src) { this.ea = ea; this.src = src; }
        @Override public void exec(Cpu c) { c.mmu.write32(ea.lin(c), (int) c.r[src]); }
    }

    /** MOV r, imm (32/64): the value is precomputed, zero-extended for 32 bits. */
    static final class MovRI extends Insn {
        final int dst;
        final long value;
        MovRI(int size, int dst, long imm) { this.dst = dst; this.value = imm & mask(size); }
        @Override public void exec(Cpu c) { c.r[dst] = value; }
    }

    /** LEA (32/64): the effective address truncated to the operand size. */
    static final class Lea extends Insn {
        final int dst;
        final long mask;
        final Ea ea;
        Lea(int size, int dst, Ea ea) { this.dst = dst; this.mask = mask(size); this.ea = ea; }
        @Override public void exec(Cpu c) { c.r[dst] = ea.ea(c) & mask; }
    }

    /** MOVZX r32/64, r/m8 or r/m16 (register source: low byte or word; byte registers 16-19 are AH..BH). */
    static final class MovzxR extends Insn {
        final int dst, src, shift;
        final long srcMask;
        MovzxR(int srcSize, int dst, int src) {
            this.dst = dst;
            this.src = src >= 16 ? src - 16 : src;
            this.shift = src >= 16 ? 8 : 0;
            this.srcMask = srcSize == 1 ? 0xFF : 0xFFFF;
        }
        @Override public void exec(Cpu c) { c.r[dst] = (c.r[src] >>> shift) & srcMask; }
    }

    static final class MovzxM extends Insn {
        final int dst;
        final boolean word;
        final Ea ea;
        MovzxM(int srcSize, int dst, Ea ea) { this.dst = dst; this.word = srcSize == 2; this.ea = ea; }
        @Override public void exec(Cpu c) {
            long la = ea.lin(c);
            c.r[dst] = word ? c.mmu.read16(la) : c.mmu.read8(la);
        }
    }

    /** SHL/SHR/SAR r32/64 by a non-zero immediate count; null for other forms (flags as {@link BitOps}' Shift). */
    static Insn shiftImm(int op, int size, int rm, int count) {
        int n = count & (size == 8 ? 63 : 31);
        if (n == 0) return null;
        return switch (op) {
            case BitOps.SHL -> new ShlRI(size, rm, n);
            case BitOps.SHR -> new ShrRI(size, rm, n);
            case BitOps.SAR -> new SarRI(size, rm, n);
            default -> null;
        };
    }

    static final class ShlRI extends Insn {
        final int dst, n, ccOp;
        final long mask;
        ShlRI(int size, int dst, int n) { this.dst = dst; this.n = n; this.mask = mask(size); this.ccOp = ccOp(Flags.K_SHL, size); }
        @Override public void exec(Cpu c) {
            long v = c.r[dst] & mask, r = v << n;
            c.r[dst] = r & mask;
            c.ccOp = ccOp;
            c.ccDst = r;
            c.ccSrc = v << (n - 1);
        }
    }

    static final class ShrRI extends Insn {
        final int dst, n, ccOp;
        final long mask;
        ShrRI(int size, int dst, int n) { this.dst = dst; this.n = n; this.mask = mask(size); this.ccOp = ccOp(Flags.K_SHR, size); }
        @Override public void exec(Cpu c) {
            long v = c.r[dst] & mask, r = v >>> n;
            c.r[dst] = r;
            c.ccOp = ccOp;
            c.ccDst = r;
            c.ccSrc = v >>> (n - 1);
        }
    }

    static final class SarRI extends Insn {
        final int dst, n, ccOp, sh;
        final long mask;
        SarRI(int size, int dst, int n) {
            this.dst = dst; this.n = n; this.mask = mask(size); this.ccOp = ccOp(Flags.K_SAR, size); this.sh = 64 - size * 8;
        }
        @Override public void exec(Cpu c) {
            long sv = (c.r[dst] << sh) >> sh, r = sv >> n;
            c.r[dst] = r & mask;
            c.ccOp = ccOp;
            c.ccDst = r;
            c.ccSrc = sv >> (n - 1);
        }
    }

    /** op m, imm and op m, r for every operand size (read, compute, write unless CMP/TEST, then flags, as {@link Alu#aluMem}). */
    static Insn mi(int op, int size, Ea ea, long imm) {
        return switch (op) {
            case Alu.ADD -> new AddMI(size, ea, imm);
            case Alu.OR -> new OrMI(size, ea, imm);
            case Alu.AND -> new AndMI(size, ea, imm);
            case Alu.SUB -> new SubMI(size, ea, imm);
            case Alu.XOR -> new XorMI(size, ea, imm);
            case Alu.CMP -> new CmpMI(size, ea, imm);
            case Alu.TEST -> new TestMI(size, ea, imm);
            default -> null;
        };
    }

    static Insn mr(int op, int size, Ea ea, int src) {
        return switch (op) {
            case Alu.ADD -> new AddMR(size, ea, src);
            case Alu.OR -> new OrMR(size, ea, src);
            case Alu.AND -> new AndMR(size, ea, src);
            case Alu.SUB -> new SubMR(size, ea, src);
            case Alu.XOR -> new XorMR(size, ea, src);
            case Alu.CMP -> new CmpMR(size, ea, src);
            case Alu.TEST -> new TestMR(size, ea, src);
            default -> null;
        };
    }

    static final class AddMI extends Insn {
        final int size, ccOp;
        final long imm;
        final Ea ea;
        AddMI(int size, Ea ea, long imm) { this.size = size; this.ea = ea; this.imm = imm & Regs.mask(size); this.ccOp = Flags.op(Flags.K_ADD, Regs.sizeIdx(size)); }
        @Override public void exec(Cpu c) {
            long la = ea.lin(c);
            long b = imm, a = c.mmu.read(la, size), r = a + b;
            c.mmu.write(la, size, r);
            c.ccOp = ccOp;
            c.ccDst = r;
            c.ccSrc = b;
        }
    }

    static final class AddMR extends Insn {
        final int size, src, ccOp;
        final Ea ea;
        AddMR(int size, Ea ea, int src) { this.size = size; this.ea = ea; this.src = src; this.ccOp = Flags.op(Flags.K_ADD, Regs.sizeIdx(size)); }
        @Override public void exec(Cpu c) {
            long la = ea.lin(c);
            long b = Regs.get(c, src, size), a = c.mmu.read(la, size), r = a + b;
            c.mmu.write(la, size, r);
            c.ccOp = ccOp;
            c.ccDst = r;
            c.ccSrc = b;
        }
    }

    static final class OrMI extends Insn {
        final int size, ccOp;
        final long imm;
        final Ea ea;
        OrMI(int size, Ea ea, long imm) { this.size = size; this.ea = ea; this.imm = imm & Regs.mask(size); this.ccOp = Flags.op(Flags.K_LOGIC, Regs.sizeIdx(size)); }
        @Override public void exec(Cpu c) {
            long la = ea.lin(c);
            long b = imm, a = c.mmu.read(la, size), r = a | b;
            c.mmu.write(la, size, r);
            c.ccOp = ccOp;
            c.ccDst = r;
            c.ccSrc = b;
        }
    }

    static final class OrMR extends Insn {
        final int size, src, ccOp;
        final Ea ea;
        OrMR(int size, Ea ea, int src) { this.size = size; this.ea = ea; this.src = src; this.ccOp = Flags.op(Flags.K_LOGIC, Regs.sizeIdx(size)); }
        @Override public void exec(Cpu c) {
            long la = ea.lin(c);
            long b = Regs.get(c, src, size), a = c.mmu.read(la, size), r = a | b;
            c.mmu.write(la, size, r);
            c.ccOp = ccOp;
            c.ccDst = r;
            c.ccSrc = b;
        }
    }

    static final class AndMI extends Insn {
        final int size, ccOp;
        final long imm;
        final Ea ea;
        AndMI(int size, Ea ea, long imm) { this.size = size; this.ea = ea; this.imm = imm & Regs.mask(size); this.ccOp = Flags.op(Flags.K_LOGIC, Regs.sizeIdx(size)); }
        @Override public void exec(Cpu c) {
            long la = ea.lin(c);
            long b = imm, a = c.mmu.read(la, size), r = a & b;
            c.mmu.write(la, size, r);
            c.ccOp = ccOp;
            c.ccDst = r;
            c.ccSrc = b;
        }
    }

    static final class AndMR extends Insn {
        final int size, src, ccOp;
        final Ea ea;
        AndMR(int size, Ea ea, int src) { this.size = size; this.ea = ea; this.src = src; this.ccOp = Flags.op(Flags.K_LOGIC, Regs.sizeIdx(size)); }
        @Override public void exec(Cpu c) {
            long la = ea.lin(c);
            long b = Regs.get(c, src, size), a = c.mmu.read(la, size), r = a & b;
            c.mmu.write(la, size, r);
            c.ccOp = ccOp;
            c.ccDst = r;
            c.ccSrc = b;
        }
    }

    static final class SubMI extends Insn {
        final int size, ccOp;
        final long imm;
        final Ea ea;
        SubMI(int size, Ea ea, long imm) { this.size = size; this.ea = ea; this.imm = imm & Regs.mask(size); this.ccOp = Flags.op(Flags.K_SUB, Regs.sizeIdx(size)); }
        @Override public void exec(Cpu c) {
            long la = ea.lin(c);
            long b = imm, a = c.mmu.read(la, size), r = a - b;
            c.mmu.write(la, size, r);
            c.ccOp = ccOp;
            c.ccDst = r;
            c.ccSrc = b;
        }
    }

    static final class SubMR extends Insn {
        final int size, src, ccOp;
        final Ea ea;
        SubMR(int size, Ea ea, int src) { this.size = size; this.ea = ea; this.src = src; this.ccOp = Flags.op(Flags.K_SUB, Regs.sizeIdx(size)); }
        @Override public void exec(Cpu c) {
            long la = ea.lin(c);
            long b = Regs.get(c, src, size), a = c.mmu.read(la, size), r = a - b;
            c.mmu.write(la, size, r);
            c.ccOp = ccOp;
            c.ccDst = r;
            c.ccSrc = b;
        }
    }

    static final class XorMI extends Insn {
        final int size, ccOp;
        final long imm;
        final Ea ea;
        XorMI(int size, Ea ea, long imm) { this.size = size; this.ea = ea; this.imm = imm & Regs.mask(size); this.ccOp = Flags.op(Flags.K_LOGIC, Regs.sizeIdx(size)); }
        @Override public void exec(Cpu c) {
            long la = ea.lin(c);
            long b = imm, a = c.mmu.read(la, size), r = a ^ b;
            c.mmu.write(la, size, r);
            c.ccOp = ccOp;
            c.ccDst = r;
            c.ccSrc = b;
        }
    }

    static final class XorMR extends Insn {
        final int size, src, ccOp;
        final Ea ea;
        XorMR(int size, Ea ea, int src) { this.size = size; this.ea = ea; this.src = src; this.ccOp = Flags.op(Flags.K_LOGIC, Regs.sizeIdx(size)); }
        @Override public void exec(Cpu c) {
            long la = ea.lin(c);
            long b = Regs.get(c, src, size), a = c.mmu.read(la, size), r = a ^ b;
            c.mmu.write(la, size, r);
            c.ccOp = ccOp;
            c.ccDst = r;
            c.ccSrc = b;
        }
    }

    static final class CmpMI extends Insn {
        final int size, ccOp;
        final long imm;
        final Ea ea;
        CmpMI(int size, Ea ea, long imm) { this.size = size; this.ea = ea; this.imm = imm & Regs.mask(size); this.ccOp = Flags.op(Flags.K_SUB, Regs.sizeIdx(size)); }
        @Override public void exec(Cpu c) {
            long la = ea.lin(c);
            long b = imm, a = c.mmu.read(la, size), r = a - b;
            c.ccOp = ccOp;
            c.ccDst = r;
            c.ccSrc = b;
        }
    }

    static final class CmpMR extends Insn {
        final int size, src, ccOp;
        final Ea ea;
        CmpMR(int size, Ea ea, int src) { this.size = size; this.ea = ea; this.src = src; this.ccOp = Flags.op(Flags.K_SUB, Regs.sizeIdx(size)); }
        @Override public void exec(Cpu c) {
            long la = ea.lin(c);
            long b = Regs.get(c, src, size), a = c.mmu.read(la, size), r = a - b;
            c.ccOp = ccOp;
            c.ccDst = r;
            c.ccSrc = b;
        }
    }

    static final class TestMI extends Insn {
        final int size, ccOp;
        final long imm;
        final Ea ea;
        TestMI(int size, Ea ea, long imm) { this.size = size; this.ea = ea; this.imm = imm & Regs.mask(size); this.ccOp = Flags.op(Flags.K_LOGIC, Regs.sizeIdx(size)); }
        @Override public void exec(Cpu c) {
            long la = ea.lin(c);
            long b = imm, a = c.mmu.read(la, size), r = a & b;
            c.ccOp = ccOp;
            c.ccDst = r;
            c.ccSrc = b;
        }
    }

    static final class TestMR extends Insn {
        final int size, src, ccOp;
        final Ea ea;
        TestMR(int size, Ea ea, int src) { this.size = size; this.ea = ea; this.src = src; this.ccOp = Flags.op(Flags.K_LOGIC, Regs.sizeIdx(size)); }
        @Override public void exec(Cpu c) {
            long la = ea.lin(c);
            long b = Regs.get(c, src, size), a = c.mmu.read(la, size), r = a & b;
            c.ccOp = ccOp;
            c.ccDst = r;
            c.ccSrc = b;
        }
    }
}

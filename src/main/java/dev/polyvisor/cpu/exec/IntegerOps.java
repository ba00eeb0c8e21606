package dev.polyvisor.cpu.exec;

import dev.polyvisor.cpu.Cpu;
import dev.polyvisor.cpu.Exceptions;
import dev.polyvisor.cpu.Flags;
import dev.polyvisor.cpu.decode.Decoded;
import dev.polyvisor.cpu.decode.Ea;
import dev.polyvisor.cpu.decode.Insn;
import dev.polyvisor.cpu.decode.OpcodeTable;

import static dev.polyvisor.cpu.decode.OpcodeTable.*;

/**
 * Integer data movement and arithmetic (SDM Vol. 1, 7.3.1-7.3.2; Vol. 2 instruction pages). The hot
 * binary ALU forms have separate register and memory handler classes; rarer forms read their r/m
 * operand through {@link Alu#readRm}. LOCK'd memory forms and XCHG with memory are {@link LockedOps}: one
 * atomic update of guest RAM, since vCPUs may run on separate host threads.
 */
public final class IntegerOps {
    private IntegerOps() {}

    public static void register(OpcodeTable t) {
        registerAlu(t);
        registerUnaryMulDiv(t);
        registerMov(t);
        registerExchange(t);
        registerFlagOps(t);
        registerBcd(t);
    }

    // =============================================================== ALU: 00-3D, 80-83, 84/85, A8/A9

    private static void registerAlu(OpcodeTable t) {
        for (int o = 0; o < 8; o++) {
            final int op = o;
            String n = Alu.NAMES[op];
            int lk = op == Alu.CMP ? 0 : LOCKABLE;
            int base = op << 3;
            t.add(n + " Eb,Gb", MAP_1BYTE, base, MODRM | BYTE | lk | ORACLE, Imm.NONE, d -> rmReg(op, d));
            t.add(n + " Ev,Gv", MAP_1BYTE, base + 1, MODRM | lk | ORACLE, Imm.NONE, d -> rmReg(op, d));
            t.add(n + " Gb,Eb", MAP_1BYTE, base + 2, MODRM | BYTE | ORACLE, Imm.NONE, d -> regRm(op, d));
            t.add(n + " Gv,Ev", MAP_1BYTE, base + 3, MODRM | ORACLE, Imm.NONE, d -> regRm(op, d));
            t.add(n + " AL,Ib", MAP_1BYTE, base + 4, BYTE | ORACLE, Imm.IB, d -> new AluRI(op, 1, Cpu.RAX, d.imm));
            t.add(n + " eAX,Iz", MAP_1BYTE, base + 5, ORACLE, Imm.IZ, d -> aluRaxImm(op, d));
            t.addGroup(n + " Eb,Ib", MAP_1BYTE, 0x80, op, BYTE | lk | ORACLE, Imm.IB, d -> rmImm(op, d));
            t.addGroup(n + " Ev,Iz", MAP_1BYTE, 0x81, op, lk | ORACLE, Imm.IZ, d -> rmImm(op, d));
            t.addGroup(n + " Eb,Ib (82)", MAP_1BYTE, 0x82, op, BYTE | lk | NO64 | ORACLE, Imm.IB, d -> rmImm(op, d));
            t.addGroup(n + " Ev,Ib", MAP_1BYTE, 0x83, op, lk | ORACLE, Imm.IB, d -> rmImm(op, d));
        }
        int test = Alu.TEST;
        t.add("TEST Eb,Gb", MAP_1BYTE, 0x84, MODRM | BYTE | ORACLE, Imm.NONE, d -> rmReg(test, d));
        t.add("TEST Ev,Gv", MAP_1BYTE, 0x85, MODRM | ORACLE, Imm.NONE, d -> rmReg(test, d));
        t.add("TEST AL,Ib", MAP_1BYTE, 0xA8, BYTE | ORACLE, Imm.IB, d -> new AluRI(test, 1, Cpu.RAX, d.imm));
        t.add("TEST eAX,Iz", MAP_1BYTE, 0xA9, ORACLE, Imm.IZ, d -> aluRaxImm(test, d));
        for (int r = 0; r < 2; r++) {
            t.addGroup("TEST Eb,Ib", MAP_1BYTE, 0xF6, r, BYTE | ORACLE, Imm.GRP3, d -> rmImm(test, d));
            t.addGroup("TEST Ev,Iz", MAP_1BYTE, 0xF7, r, ORACLE, Imm.GRP3, d -> rmImm(test, d));
        }
    }

    /** op eAX, imm (opcodes 05, 0D, ... A9). */
    private static Insn aluRaxImm(int op, Decoded d) {
        if (d.opSize >= 4) { Insn f = FastIntOps.ri(op, d.opSize, Cpu.RAX, d.imm); if (f != null) return f; }
        return new AluRI(op, d.opSize, Cpu.RAX, d.imm);
    }

    /** op r/m, reg (r/m is the destination). */
    private static Insn rmReg(int op, Decoded d) {
        if (d.lock) return LockedOps.alu(op, d);
        if (d.opSize >= 4 && !d.isMem()) { Insn f = FastIntOps.rr(op, d.opSize, d.rm, d.reg); if (f != null) return f; }
        if (d.isMem()) { Insn f = FastIntOps.mr(op, d.opSize, d.ea, d.regOp()); if (f != null) return f; }
        return d.isMem() ? new AluMR(op, d.opSize, d.ea, d.regOp()) : new AluRR(op, d.opSize, d.rmOp(), d.regOp());
    }

    /** op reg, r/m (reg is the destination). */
    private static Insn regRm(int op, Decoded d) {
        if (d.opSize >= 4) {
            Insn f = d.isMem() ? FastIntOps.rm(op, d.opSize, d.reg, d.ea) : FastIntOps.rr(op, d.opSize, d.reg, d.rm);
            if (f != null) return f;
        }
        return d.isMem() ? new AluRM(op, d.opSize, d.regOp(), d.ea) : new AluRR(op, d.opSize, d.regOp(), d.rmOp());
    }

    private static Insn rmImm(int op, Decoded d) {
        if (d.lock) return LockedOps.aluImm(op, d);
        if (d.opSize >= 4 && !d.isMem()) { Insn f = FastIntOps.ri(op, d.opSize, d.rm, d.imm); if (f != null) return f; }
        if (d.isMem()) { Insn f = FastIntOps.mi(op, d.opSize, d.ea, d.imm); if (f != null) return f; }
        return d.isMem() ? new AluMI(op, d.opSize, d.ea, d.imm) : new AluRI(op, d.opSize, d.rmOp(), d.imm);
    }

    static final class AluRR extends Insn {
        final int op, size, dst, src;
        AluRR(int op, int size, int dst, int src) { this.op = op; this.size = size; this.dst = dst; this.src = src; }
        @Override public void exec(Cpu c) {
            long r = Alu.alu(c, op, size, Regs.get(c, dst, size), Regs.get(c, src, size));
            if (Alu.writes(op)) Regs.set(c, dst, size, r);
        }
    }

    static final class AluRM extends Insn {
        final int op, size, dst;
        final Ea ea;
        AluRM(int op, int size, int dst, Ea ea) { this.op = op; this.size = size; this.dst = dst; this.ea = ea; }
        @Override public void exec(Cpu c) {
            long b = c.mmu.read(ea.lin(c), size);
            long r = Alu.alu(c, op, size, Regs.get(c, dst, size), b);
            if (Alu.writes(op)) Regs.set(c, dst, size, r);
        }
    }

    static final class AluMR extends Insn {
        final int op, size, src;
        final Ea ea;
        AluMR(int op, int size, Ea ea, int src) { this.op = op; this.size = size; this.ea = ea; this.src = src; }
        @Override public void exec(Cpu c) { Alu.aluMem(c, op, size, ea.lin(c), Regs.get(c, src, size)); }
    }

    static final class AluRI extends Insn {
        final int op, size, dst;
        final long imm;
        AluRI(int op, int size, int dst, long imm) { this.op = op; this.size = size; this.dst = dst; this.imm = imm & Regs.mask(size); }
        @Override public void exec(Cpu c) {
            long r = Alu.alu(c, op, size, Regs.get(c, dst, size), imm);
            if (Alu.writes(op)) Regs.set(c, dst, size, r);
        }
    }

    static final class AluMI extends Insn {
        final int op, size;
        final Ea ea;
        final long imm;
        AluMI(int op, int size, Ea ea, long imm) { this.op = op; this.size = size; this.ea = ea; this.imm = imm & Regs.mask(size); }
        @Override public void exec(Cpu c) { Alu.aluMem(c, op, size, ea.lin(c), imm); }
    }

    // =============================================================== INC DEC NOT NEG MUL IMUL DIV IDIV

    static final int INC = 0, DEC = 1, NOT = 2, NEG = 3;

    private static void registerUnaryMulDiv(OpcodeTable t) {
        t.addGroup("INC Eb", MAP_1BYTE, 0xFE, 0, BYTE | LOCKABLE | ORACLE, Imm.NONE, d -> unary(INC, d));
        t.addGroup("DEC Eb", MAP_1BYTE, 0xFE, 1, BYTE | LOCKABLE | ORACLE, Imm.NONE, d -> unary(DEC, d));
        t.addGroup("INC Ev", MAP_1BYTE, 0xFF, 0, LOCKABLE | ORACLE, Imm.NONE, d -> unary(INC, d));
        t.addGroup("DEC Ev", MAP_1BYTE, 0xFF, 1, LOCKABLE | ORACLE, Imm.NONE, d -> unary(DEC, d));
        for (int r = 0; r < 8; r++) {
            final int reg = r;
            t.add("INC r", MAP_1BYTE, 0x40 + r, NO64 | ORACLE, Imm.NONE, d -> new UnaryR(INC, d.opSize, reg));
            t.add("DEC r", MAP_1BYTE, 0x48 + r, NO64 | ORACLE, Imm.NONE, d -> new UnaryR(DEC, d.opSize, reg));
        }
        t.addGroup("NOT Eb", MAP_1BYTE, 0xF6, 2, BYTE | LOCKABLE | ORACLE, Imm.NONE, d -> unary(NOT, d));
        t.addGroup("NEG Eb", MAP_1BYTE, 0xF6, 3, BYTE | LOCKABLE | ORACLE, Imm.NONE, d -> unary(NEG, d));
        t.addGroup("NOT Ev", MAP_1BYTE, 0xF7, 2, LOCKABLE | ORACLE, Imm.NONE, d -> unary(NOT, d));
        t.addGroup("NEG Ev", MAP_1BYTE, 0xF7, 3, LOCKABLE | ORACLE, Imm.NONE, d -> unary(NEG, d));
        String[] md = {"MUL", "IMUL", "DIV", "IDIV"};
        for (int k = 0; k < 4; k++) {
            final int op = k;
            t.addGroup(md[k] + " Eb", MAP_1BYTE, 0xF6, 4 + k, BYTE | ORACLE, Imm.NONE, d -> new MulDiv(op, 1, d.rmOp(), d.ea));
            t.addGroup(md[k] + " Ev", MAP_1BYTE, 0xF7, 4 + k, ORACLE, Imm.NONE, d -> new MulDiv(op, d.opSize, d.rmOp(), d.ea));
        }
        t.add("IMUL Gv,Ev", MAP_0F, 0xAF, MODRM | ORACLE, Imm.NONE, d -> new Imul(d.opSize, d.reg, d.rmOp(), d.ea, 0, false));
        t.add("IMUL Gv,Ev,Iz", MAP_1BYTE, 0x69, MODRM | ORACLE, Imm.IZ, d -> new Imul(d.opSize, d.reg, d.rmOp(), d.ea, d.imm, true));
        t.add("IMUL Gv,Ev,Ib", MAP_1BYTE, 0x6B, MODRM | ORACLE, Imm.IB, d -> new Imul(d.opSize, d.reg, d.rmOp(), d.ea, d.imm, true));
    }

    private static Insn unary(int op, Decoded d) {
        if (d.lock) return new LockedOps.UnaryM(op, d.opSize, d.ea);
        return d.isMem() ? new UnaryM(op, d.opSize, d.ea) : new UnaryR(op, d.opSize, d.rmOp());
    }

    /** Computes INC/DEC/NOT/NEG of a; records flags unless NOT. */
    static long unaryResult(int op, long a) {
        return switch (op) { case INC -> a + 1; case DEC -> a - 1; case NOT -> ~a; default -> -a; };
    }

    static void unaryFlags(Cpu c, int op, int size, long a, long r, long cfBefore) {
        int si = Regs.sizeIdx(size);
        switch (op) {
            case INC -> { c.ccOp = Flags.op(Flags.K_INC, si); c.ccDst = r; c.ccSrc = cfBefore; }
            case DEC -> { c.ccOp = Flags.op(Flags.K_DEC, si); c.ccDst = r; c.ccSrc = cfBefore; }
            case NEG -> { c.ccOp = Flags.op(Flags.K_SUB, si); c.ccDst = r; c.ccSrc = a; } // 0 - a
            default -> { } // NOT changes no flags
        }
    }

    static final class UnaryR extends Insn {
        final int op, size, reg;
        UnaryR(int op, int size, int reg) { this.op = op; this.size = size; this.reg = reg; }
        @Override public void exec(Cpu c) {
            long cf = op <= DEC && Flags.cf(c) ? 1 : 0;
            long a = Regs.get(c, reg, size), r = unaryResult(op, a);
            Regs.set(c, reg, size, r);
            unaryFlags(c, op, size, a, r, cf);
        }
    }

    static final class UnaryM extends Insn {
        final int op, size;
        final Ea ea;
        UnaryM(int op, int size, Ea ea) { this.op = op; this.size = size; this.ea = ea; }
        @Override public void exec(Cpu c) {
            long la = ea.lin(c);
            long a = c.mmu.read(la, size);
            long cf = op <= DEC && Flags.cf(c) ? 1 : 0;
            long r = unaryResult(op, a);
            c.mmu.write(la, size, r);
            unaryFlags(c, op, size, a, r, cf);
        }
    }

    /** F6/F7 /4-/7: MUL, IMUL, DIV, IDIV with implicit rAX/rDX (SDM MUL, IMUL, DIV, IDIV). */
    static final class MulDiv extends Insn {
        static final int MUL = 0, IMUL = 1, DIV = 2, IDIV = 3;
        final int op, size, rm;
        final Ea ea;
        MulDiv(int op, int size, int rm, Ea ea) { this.op = op; this.size = size; this.rm = rm; this.ea = ea; }

        @Override public void exec(Cpu c) {
            long s = Alu.readRm(c, rm, ea, size);
            switch (op) {
                case MUL -> mul(c, s);
                case IMUL -> imul(c, s);
                case DIV -> div(c, s);
                default -> idiv(c, s);
            }
        }

        private void setMulFlags(Cpu c, long lo, boolean overflow) {
            c.ccOp = Flags.op(Flags.K_MUL, Regs.sizeIdx(size));
            c.ccDst = lo;
            c.ccSrc = overflow ? 1 : 0;
        }

        private void mul(Cpu c, long s) {
            long a = Regs.get(c, Cpu.RAX, size);
            switch (size) {
                case 1 -> { long p = a * s; Regs.set(c, Cpu.RAX, 2, p); setMulFlags(c, p, (p & 0xFF00) != 0); }
                case 2 -> { long p = a * s; Regs.set(c, Cpu.RAX, 2, p); Regs.set(c, Cpu.RDX, 2, p >>> 16); setMulFlags(c, p, (p >>> 16) != 0); }
                case 4 -> { long p = a * s; Regs.set(c, Cpu.RAX, 4, p); Regs.set(c, Cpu.RDX, 4, p >>> 32); setMulFlags(c, p, (p >>> 32) != 0); }
                default -> {
                    long hi = Math.unsignedMultiplyHigh(a, s), lo = a * s;
                    c.r[Cpu.RAX] = lo; c.r[Cpu.RDX] = hi; setMulFlags(c, lo, hi != 0);
                }
            }
        }

        private void imul(Cpu c, long s) {
            long a = Regs.sext(Regs.get(c, Cpu.RAX, size), size), b = Regs.sext(s, size);
            switch (size) {
                case 1 -> { long p = a * b; Regs.set(c, Cpu.RAX, 2, p); setMulFlags(c, p, p != (byte) p); }
                case 2 -> { long p = a * b; Regs.set(c, Cpu.RAX, 2, p); Regs.set(c, Cpu.RDX, 2, p >> 16); setMulFlags(c, p, p != (short) p); }
                case 4 -> { long p = a * b; Regs.set(c, Cpu.RAX, 4, p); Regs.set(c, Cpu.RDX, 4, p >> 32); setMulFlags(c, p, p != (int) p); }
                default -> {
                    long hi = Math.multiplyHigh(a, b), lo = a * b;
                    c.r[Cpu.RAX] = lo; c.r[Cpu.RDX] = hi; setMulFlags(c, lo, hi != (lo >> 63));
                }
            }
        }

        /** Unsigned divide; #DE on a zero divisor or a quotient that does not fit (SDM DIV). Flags are undefined: left alone. */
        private void div(Cpu c, long s) {
            if (s == 0) throw c.fault(Exceptions.DE);
            switch (size) {
                case 1 -> {
                    long n = Regs.get(c, Cpu.RAX, 2), q = n / s;
                    if (q > 0xFF) throw c.fault(Exceptions.DE);
                    Regs.set(c, Cpu.RAX, 2, (n % s) << 8 | q);
                }
                case 2, 4 -> {
                    int bits = size * 8;
                    long n = Regs.get(c, Cpu.RDX, size) << bits | Regs.get(c, Cpu.RAX, size);
                    long q = Long.divideUnsigned(n, s), r = Long.remainderUnsigned(n, s);
                    if (Long.compareUnsigned(q, Regs.mask(size)) > 0) throw c.fault(Exceptions.DE);
                    Regs.set(c, Cpu.RAX, size, q);
                    Regs.set(c, Cpu.RDX, size, r);
                }
                default -> {
                    long hi = c.r[Cpu.RDX], lo = c.r[Cpu.RAX];
                    if (Long.compareUnsigned(hi, s) >= 0) throw c.fault(Exceptions.DE);
                    if (hi == 0) {
                        c.r[Cpu.RAX] = Long.divideUnsigned(lo, s);
                        c.r[Cpu.RDX] = Long.remainderUnsigned(lo, s);
                    } else {
                        divide128(c, hi, lo, s);
                    }
                }
            }
        }

        /** 128/64 unsigned restoring division with hi < d (so the quotient fits): RAX = quotient, RDX = remainder. */
        static void divide128(Cpu c, long hi, long lo, long d) {
            long q = 0, rem = hi;
            for (int i = 63; i >= 0; i--) {
                boolean top = rem < 0;
                rem = rem << 1 | ((lo >>> i) & 1);
                if (top || Long.compareUnsigned(rem, d) >= 0) { rem -= d; q |= 1L << i; }
            }
            c.r[Cpu.RAX] = q;
            c.r[Cpu.RDX] = rem;
        }

        private void idiv(Cpu c, long s) {
            long b = Regs.sext(s, size);
            if (b == 0) throw c.fault(Exceptions.DE);
            if (size < 8) {
                int bits = size * 8;
                long n = size == 1 ? (short) Regs.get(c, Cpu.RAX, 2)
                        : Regs.sext(Regs.get(c, Cpu.RDX, size) << bits | Regs.get(c, Cpu.RAX, size), size * 2);
                if (n == Long.MIN_VALUE && b == -1) throw c.fault(Exceptions.DE);
                long q = n / b, r = n % b;
                if (q != Regs.sext(q, size)) throw c.fault(Exceptions.DE);
                if (size == 1) Regs.set(c, Cpu.RAX, 2, (r & 0xFF) << 8 | (q & 0xFF));
                else { Regs.set(c, Cpu.RAX, size, q); Regs.set(c, Cpu.RDX, size, r); }
                return;
            }
            long hi = c.r[Cpu.RDX], lo = c.r[Cpu.RAX];
            if (hi == (lo >> 63)) {
                if (lo == Long.MIN_VALUE && b == -1) throw c.fault(Exceptions.DE);
                c.r[Cpu.RAX] = lo / b;
                c.r[Cpu.RDX] = lo % b;
                return;
            }
            // Full 128-bit dividend: divide magnitudes, then apply signs and check the range.
            boolean negN = hi < 0, negD = b < 0;
            if (negN) { lo = -lo; hi = ~hi + (lo == 0 ? 1 : 0); }
            long ub = negD ? -b : b;
            if (Long.compareUnsigned(hi, ub) >= 0) throw c.fault(Exceptions.DE);
            long saveA = c.r[Cpu.RAX], saveD = c.r[Cpu.RDX];
            divide128(c, hi, lo, ub);
            long uq = c.r[Cpu.RAX], ur = c.r[Cpu.RDX];
            boolean negQ = negN != negD;
            if (negQ ? Long.compareUnsigned(uq, Long.MIN_VALUE) > 0 : uq < 0) {
                c.r[Cpu.RAX] = saveA; c.r[Cpu.RDX] = saveD;
                throw c.fault(Exceptions.DE);
            }
            c.r[Cpu.RAX] = negQ ? -uq : uq;
            c.r[Cpu.RDX] = negN ? -ur : ur;
        }
    }

    /** IMUL r, r/m and IMUL r, r/m, imm: truncated signed product, CF = OF = it did not fit. */
    static final class Imul extends Insn {
        final int size, dst, rm;
        final Ea ea;
        final long imm;
        final boolean hasImm;
        Imul(int size, int dst, int rm, Ea ea, long imm, boolean hasImm) {
            this.size = size; this.dst = dst; this.rm = rm; this.ea = ea; this.imm = imm; this.hasImm = hasImm;
        }
        @Override public void exec(Cpu c) {
            long a = Regs.sext(Alu.readRm(c, rm, ea, size), size);
            long b = hasImm ? Regs.sext(imm, size) : Regs.sext(Regs.get(c, dst, size), size);
            long lo = a * b;
            boolean ovf = size == 8 ? Math.multiplyHigh(a, b) != (lo >> 63) : lo != Regs.sext(lo, size);
            Regs.set(c, dst, size, lo);
            c.ccOp = Flags.op(Flags.K_MUL, Regs.sizeIdx(size));
            c.ccDst = lo;
            c.ccSrc = ovf ? 1 : 0;
        }
    }

    // =============================================================== MOV, MOVZX/MOVSX/MOVSXD, LEA

    private static void registerMov(OpcodeTable t) {
        t.add("MOV Eb,Gb", MAP_1BYTE, 0x88, MODRM | BYTE | ORACLE, Imm.NONE,
                d -> d.isMem() ? new MovMR(1, d.ea, d.regOp()) : new MovRR(1, d.rmOp(), d.regOp()));
        t.add("MOV Ev,Gv", MAP_1BYTE, 0x89, MODRM | ORACLE, Imm.NONE,
                d -> d.opSize == 8 ? (d.isMem() ? new FastIntOps.MovMR64(d.ea, d.reg) : new FastIntOps.MovRR(8, d.rm, d.reg))
                        : d.opSize == 4 ? (d.isMem() ? new FastIntOps.MovMR32(d.ea, d.reg) : new FastIntOps.MovRR(4, d.rm, d.reg))
                        : d.isMem() ? new MovMR(d.opSize, d.ea, d.regOp()) : new MovRR(d.opSize, d.rmOp(), d.regOp()));
        t.add("MOV Gb,Eb", MAP_1BYTE, 0x8A, MODRM | BYTE | ORACLE, Imm.NONE,
                d -> d.isMem() ? new MovRM(1, d.regOp(), d.ea) : new MovRR(1, d.regOp(), d.rmOp()));
        t.add("MOV Gv,Ev", MAP_1BYTE, 0x8B, MODRM | ORACLE, Imm.NONE,
                d -> d.opSize == 8 ? (d.isMem() ? new FastIntOps.MovRM64(d.reg, d.ea) : new FastIntOps.MovRR(8, d.reg, d.rm))
                        : d.opSize == 4 ? (d.isMem() ? new FastIntOps.MovRM32(d.reg, d.ea) : new FastIntOps.MovRR(4, d.reg, d.rm))
                        : d.isMem() ? new MovRM(d.opSize, d.regOp(), d.ea) : new MovRR(d.opSize, d.regOp(), d.rmOp()));
        t.addGroup("MOV Eb,Ib", MAP_1BYTE, 0xC6, 0, BYTE | ORACLE, Imm.IB,
                d -> d.isMem() ? new MovMI(1, d.ea, d.imm) : new MovRegImm(d.rmOp(), 1, d.imm));
        t.addGroup("MOV Ev,Iz", MAP_1BYTE, 0xC7, 0, ORACLE, Imm.IZ,
                d -> d.isMem() ? new MovMI(d.opSize, d.ea, d.imm)
                        : d.opSize >= 4 ? new FastIntOps.MovRI(d.opSize, d.rm, d.imm) : new MovRegImm(d.rmOp(), d.opSize, d.imm));
        t.add("MOV AL,Ob", MAP_1BYTE, 0xA0, BYTE | ORACLE, Imm.MOFFS, d -> new MovMoffs(1, dataSeg(d), d.imm, false));
        t.add("MOV eAX,Ov", MAP_1BYTE, 0xA1, ORACLE, Imm.MOFFS, d -> new MovMoffs(d.opSize, dataSeg(d), d.imm, false));
        t.add("MOV Ob,AL", MAP_1BYTE, 0xA2, BYTE | ORACLE, Imm.MOFFS, d -> new MovMoffs(1, dataSeg(d), d.imm, true));
        t.add("MOV Ov,eAX", MAP_1BYTE, 0xA3, ORACLE, Imm.MOFFS, d -> new MovMoffs(d.opSize, dataSeg(d), d.imm, true));
        for (int r = 0; r < 8; r++) {
            final int reg = r;
            t.add("MOV r8,Ib", MAP_1BYTE, 0xB0 + r, BYTE | ORACLE, Imm.IB, d -> new MovRegImm(d.byteReg(reg | rexB(d)), 1, d.imm));
            t.add("MOV r,Iv", MAP_1BYTE, 0xB8 + r, ORACLE, Imm.IV, d -> d.opSize >= 4
                    ? new FastIntOps.MovRI(d.opSize, reg | rexB(d), d.imm) : new MovRegImm(reg | rexB(d), d.opSize, d.imm));
        }
        t.add("MOVZX Gv,Eb", MAP_0F, 0xB6, MODRM | ORACLE, Imm.NONE, d -> movzx(d, 1));
        t.add("MOVZX Gv,Ew", MAP_0F, 0xB7, MODRM | ORACLE, Imm.NONE, d -> movzx(d, 2));
        t.add("MOVSX Gv,Eb", MAP_0F, 0xBE, MODRM | ORACLE, Imm.NONE, d -> new MovX(d.opSize, 1, true, d.reg, d.byteReg(d.rm), d.ea));
        t.add("MOVSX Gv,Ew", MAP_0F, 0xBF, MODRM | ORACLE, Imm.NONE, d -> new MovX(d.opSize, 2, true, d.reg, d.rm, d.ea));
        // 63 is MOVSXD in 64-bit mode and ARPL Ew,Gw outside it (one table slot for both; the oracle runs both).
        t.add("MOVSXD Gv,Ed", MAP_1BYTE, 0x63, MODRM | ORACLE, Imm.NONE,
                d -> d.mode64 ? new MovX(d.opSize, Math.min(4, d.opSize), true, d.reg, d.rm, d.ea) : new Arpl(d.rm, d.reg, d.ea));
        t.add("LEA Gv,M", MAP_1BYTE, 0x8D, MODRM | MEM_ONLY | ORACLE, Imm.NONE, d -> d.opSize >= 4 ? new FastIntOps.Lea(d.opSize, d.reg, d.ea) : new Lea(d.opSize, d.reg, d.ea));
        t.add("CBW/CWDE/CDQE", MAP_1BYTE, 0x98, ORACLE, Imm.NONE, d -> new Cbw(d.opSize));
        t.add("CWD/CDQ/CQO", MAP_1BYTE, 0x99, ORACLE, Imm.NONE, d -> new Cwd(d.opSize));
        t.add("XLAT", MAP_1BYTE, 0xD7, ORACLE, Imm.NONE, d -> new Xlat(dataSeg(d), d.addrSize));
        for (int cc = 0; cc < 16; cc++) {
            final int k = cc;
            t.add("CMOVcc Gv,Ev", MAP_0F, 0x40 + cc, MODRM | ORACLE, Imm.NONE, d -> new Cmov(k, d.opSize, d.reg, d.rm, d.ea));
            t.add("SETcc Eb", MAP_0F, 0x90 + cc, MODRM | BYTE | ORACLE, Imm.NONE, d -> new Setcc(k, d.rmOp(), d.ea));
        }
    }

    private static Insn movzx(Decoded d, int srcSize) {
        int rm = srcSize == 1 ? d.byteReg(d.rm) : d.rm;
        if (d.opSize < 4) return new MovX(d.opSize, srcSize, false, d.reg, rm, d.ea);
        return d.isMem() ? new FastIntOps.MovzxM(srcSize, d.reg, d.ea) : new FastIntOps.MovzxR(srcSize, d.reg, rm);
    }

    static int rexB(Decoded d) { return (d.rex & 1) << 3; }

    /**
     * The segment of an explicit data reference (moffs, XLAT, string sources): DS or the override;
     * in 64-bit mode only FS and GS overrides have a base (SDM Vol. 1, 3.3.7.1).
     */
    static int dataSeg(Decoded d) {
        if (d.mode64) return d.segOverride == Cpu.FS || d.segOverride == Cpu.GS ? d.segOverride : Cpu.SEG_NONE;
        return d.segOverride >= 0 ? d.segOverride : Cpu.DS;
    }

    /** B8+r / C7 /0 register form: MOV r, imm. */
    static final class MovRegImm extends Insn {
        final int reg, size;
        final long imm;
        MovRegImm(int reg, int size, long imm) { this.reg = reg; this.size = size; this.imm = imm; }
        @Override public void exec(Cpu c) { Regs.set(c, reg, size, imm); }
    }

    static final class MovRR extends Insn {
        final int size, dst, src;
        MovRR(int size, int dst, int src) { this.size = size; this.dst = dst; this.src = src; }
        @Override public void exec(Cpu c) { Regs.set(c, dst, size, Regs.get(c, src, size)); }
    }

    static final class MovRM extends Insn {
        final int size, dst;
        final Ea ea;
        MovRM(int size, int dst, Ea ea) { this.size = size; this.dst = dst; this.ea = ea; }
        @Override public void exec(Cpu c) { Regs.set(c, dst, size, c.mmu.read(ea.lin(c), size)); }
    }

    static final class MovMR extends Insn {
        final int size, src;
        final Ea ea;
        MovMR(int size, Ea ea, int src) { this.size = size; this.ea = ea; this.src = src; }
        @Override public void exec(Cpu c) { c.mmu.write(ea.lin(c), size, Regs.get(c, src, size)); }
    }

    static final class MovMI extends Insn {
        final int size;
        final Ea ea;
        final long imm;
        MovMI(int size, Ea ea, long imm) { this.size = size; this.ea = ea; this.imm = imm; }
        @Override public void exec(Cpu c) { c.mmu.write(ea.lin(c), size, imm); }
    }

    /** A0-A3: MOV between rAX and a direct offset (moffs, address-size wide). */
    static final class MovMoffs extends Insn {
        final int size, seg;
        final long off;
        final boolean store;
        MovMoffs(int size, int seg, long off, boolean store) { this.size = size; this.seg = seg; this.off = off; this.store = store; }
        @Override public void exec(Cpu c) {
            long la = c.linear(seg, off);
            if (store) c.mmu.write(la, size, Regs.get(c, Cpu.RAX, size));
            else Regs.set(c, Cpu.RAX, size, c.mmu.read(la, size));
        }
    }

    /** MOVZX/MOVSX/MOVSXD: widen a 1-, 2- or 4-byte source to the operand size. */
    static final class MovX extends Insn {
        final int size, srcSize, dst, rm;
        final boolean signed;
        final Ea ea;
        MovX(int size, int srcSize, boolean signed, int dst, int rm, Ea ea) {
            this.size = size; this.srcSize = srcSize; this.signed = signed; this.dst = dst; this.rm = rm; this.ea = ea;
        }
        @Override public void exec(Cpu c) {
            long v = Alu.readRm(c, rm, ea, srcSize);
            Regs.set(c, dst, size, signed ? Regs.sext(v, srcSize) : v);
        }
    }

    static final class Lea extends Insn {
        final int size, dst;
        final Ea ea;
        Lea(int size, int dst, Ea ea) { this.size = size; this.dst = dst; this.ea = ea; }
        @Override public void exec(Cpu c) { Regs.set(c, dst, size, ea.ea(c)); }
    }

    /** 98: CBW / CWDE / CDQE sign-extend the lower half of rAX into all of it. */
    static final class Cbw extends Insn {
        final int size;
        Cbw(int size) { this.size = size; }
        @Override public void exec(Cpu c) { Regs.set(c, Cpu.RAX, size, Regs.sext(c.r[Cpu.RAX], size / 2)); }
    }

    /** 99: CWD / CDQ / CQO fill rDX with the sign of rAX. */
    static final class Cwd extends Insn {
        final int size;
        Cwd(int size) { this.size = size; }
        @Override public void exec(Cpu c) { Regs.set(c, Cpu.RDX, size, Regs.sext(c.r[Cpu.RAX], size) >> 63); }
    }

    /** D7: AL = [seg: rBX + AL] with the address size. */
    static final class Xlat extends Insn {
        final int seg;
        final long mask;
        Xlat(int seg, int addrSize) { this.seg = seg; this.mask = Regs.mask(addrSize); }
        @Override public void exec(Cpu c) {
            long off = (c.r[Cpu.RBX] + (c.r[Cpu.RAX] & 0xFF)) & mask;
            Regs.set(c, Cpu.RAX, 1, c.mmu.read8(c.linear(seg, off)));
        }
    }

    /**
     * CMOVcc: the source is read (and may fault) whatever the condition; a 32-bit destination is
     * zero-extended even when the condition is false (SDM CMOVcc, 64-bit mode operation).
     */
    static final class Cmov extends Insn {
        final int cc, size, dst, rm;
        final Ea ea;
        Cmov(int cc, int size, int dst, int rm, Ea ea) { this.cc = cc; this.size = size; this.dst = dst; this.rm = rm; this.ea = ea; }
        @Override public void exec(Cpu c) {
            long v = Alu.readRm(c, rm, ea, size);
            Regs.set(c, dst, size, Flags.cond(c, cc) ? v : Regs.get(c, dst, size));
        }
    }

    static final class Setcc extends Insn {
        final int cc, rm;
        final Ea ea;
        Setcc(int cc, int rm, Ea ea) { this.cc = cc; this.rm = rm; this.ea = ea; }
        @Override public void exec(Cpu c) { Alu.writeRm(c, rm, ea, 1, Flags.cond(c, cc) ? 1 : 0); }
    }

    // =============================================================== XCHG CMPXCHG XADD BSWAP CMPXCHG8B

    private static void registerExchange(OpcodeTable t) {
        t.add("XCHG Eb,Gb", MAP_1BYTE, 0x86, MODRM | BYTE | LOCKABLE | ORACLE, Imm.NONE,
                d -> d.isMem() ? new LockedOps.XchgM(1, d.ea, d.regOp()) : new XchgRR(1, d.rmOp(), d.regOp()));
        t.add("XCHG Ev,Gv", MAP_1BYTE, 0x87, MODRM | LOCKABLE | ORACLE, Imm.NONE,
                d -> d.isMem() ? new LockedOps.XchgM(d.opSize, d.ea, d.regOp()) : new XchgRR(d.opSize, d.rmOp(), d.regOp()));
        // 90 without REX.B is NOP (not XCHG eAX,eAX: it must not zero-extend RAX); F3 90 is PAUSE, a NOP
        // that the VMM takes as a chance to run another vCPU (Platform.pause).
        t.add("NOP/PAUSE/XCHG r,rAX", MAP_1BYTE, 0x90, ORACLE, Imm.NONE,
                d -> (d.rex & 1) != 0 ? new XchgRR(d.opSize, 8, Cpu.RAX) : d.rep ? new Pause() : new Nop());
        for (int r = 1; r < 8; r++) {
            final int reg = r;
            t.add("XCHG r,rAX", MAP_1BYTE, 0x90 + r, ORACLE, Imm.NONE, d -> new XchgRR(d.opSize, reg | rexB(d), Cpu.RAX));
            t.add("BSWAP r", MAP_0F, 0xC8 + r, ORACLE, Imm.NONE, d -> new Bswap(d.opSize, reg | rexB(d)));
        }
        t.add("BSWAP r", MAP_0F, 0xC8, ORACLE, Imm.NONE, d -> new Bswap(d.opSize, rexB(d)));
        t.add("CMPXCHG Eb,Gb", MAP_0F, 0xB0, MODRM | BYTE | LOCKABLE | ORACLE, Imm.NONE, d -> d.lock ? new LockedOps.Cmpxchg(1, d.ea, d.regOp()) : new Cmpxchg(1, d.rmOp(), d.ea, d.regOp()));
        t.add("CMPXCHG Ev,Gv", MAP_0F, 0xB1, MODRM | LOCKABLE | ORACLE, Imm.NONE, d -> d.lock ? new LockedOps.Cmpxchg(d.opSize, d.ea, d.regOp()) : new Cmpxchg(d.opSize, d.rmOp(), d.ea, d.regOp()));
        t.add("XADD Eb,Gb", MAP_0F, 0xC0, MODRM | BYTE | LOCKABLE | ORACLE, Imm.NONE, d -> d.lock ? new LockedOps.Xadd(1, d.ea, d.regOp()) : new Xadd(1, d.rmOp(), d.ea, d.regOp()));
        t.add("XADD Ev,Gv", MAP_0F, 0xC1, MODRM | LOCKABLE | ORACLE, Imm.NONE, d -> d.lock ? new LockedOps.Xadd(d.opSize, d.ea, d.regOp()) : new Xadd(d.opSize, d.rmOp(), d.ea, d.regOp()));
        // CMPXCHG16B (REX.W) is #UD: CPUID.01H:ECX.CX16 is not advertised.
        t.addGroup("CMPXCHG8B Mq", MAP_0F, 0xC7, 1, MEM_ONLY | LOCKABLE | ORACLE, Imm.NONE, d -> d.rexW ? null : d.lock ? new LockedOps.Cmpxchg8b(d.ea) : new Cmpxchg8b(d.ea));
    }

    static final class Nop extends Insn {
        @Override public void exec(Cpu c) { }
    }

    /**
     * PAUSE: architecturally a NOP (SDM Vol. 2B); the platform hears of it, as a VMM's pause-loop exit does.
     * If the platform gives the host CPU away, the vCPU stops right after the PAUSE, as a pause-loop exit
     * happens at the PAUSE (SDM Vol. 3C 26.1.3): running the rest of the trace first could carry the guest
     * into the critical section it was about to enter and leave it preempted there, holding the lock that
     * the next vCPU then spins on for its whole quantum.
     */
    static final class Pause extends Insn {
        @Override public void exec(Cpu c) {
            c.platform.pause(c.id);
            if (c.stopRequested) c.traceExit = true;
        }
    }

    static final class XchgRR extends Insn {
        final int size, a, b;
        XchgRR(int size, int a, int b) { this.size = size; this.a = a; this.b = b; }
        @Override public void exec(Cpu c) {
            long va = Regs.get(c, a, size), vb = Regs.get(c, b, size);
            Regs.set(c, a, size, vb);
            Regs.set(c, b, size, va);
        }
    }

    /** BSWAP; with a 16-bit operand the result is undefined: the low word becomes 0, as on Intel and AMD parts. */
    static final class Bswap extends Insn {
        final int size, reg;
        Bswap(int size, int reg) { this.size = size; this.reg = reg; }
        @Override public void exec(Cpu c) {
            switch (size) {
                case 8 -> c.r[reg] = Long.reverseBytes(c.r[reg]);
                case 4 -> c.r[reg] = Integer.reverseBytes((int) c.r[reg]) & 0xFFFF_FFFFL;
                default -> Regs.set(c, reg, 2, 0);
            }
        }
    }

    /**
     * CMPXCHG: compare rAX with the destination (flags as CMP). Equal: destination = source. Not equal:
     * rAX = destination. A memory destination is written in both cases; a register destination only
     * on success and rAX only on failure (so 32-bit forms zero-extend only the register written).
     */
    static final class Cmpxchg extends Insn {
        final int size, rm, reg;
        final Ea ea;
        Cmpxchg(int size, int rm, Ea ea, int reg) { this.size = size; this.rm = rm; this.ea = ea; this.reg = reg; }
        @Override public void exec(Cpu c) {
            long acc = Regs.get(c, Cpu.RAX, size);
            long src = Regs.get(c, reg, size);
            boolean eq;
            long dst;
            if (ea == null) {
                dst = Regs.get(c, rm, size);
                eq = dst == acc;
                if (eq) Regs.set(c, rm, size, src);
            } else {
                long la = ea.lin(c);
                dst = c.mmu.read(la, size);
                eq = dst == acc;
                c.mmu.write(la, size, eq ? src : dst);
            }
            if (!eq) Regs.set(c, Cpu.RAX, size, dst);
            Alu.setSub(c, size, acc, dst);
        }
    }

    /** XADD: destination = destination + source, source = old destination; flags as ADD. */
    static final class Xadd extends Insn {
        final int size, rm, reg;
        final Ea ea;
        Xadd(int size, int rm, Ea ea, int reg) { this.size = size; this.rm = rm; this.ea = ea; this.reg = reg; }
        @Override public void exec(Cpu c) {
            long src = Regs.get(c, reg, size);
            long dst;
            if (ea == null) {
                dst = Regs.get(c, rm, size);
                Regs.set(c, reg, size, dst);
                Regs.set(c, rm, size, dst + src);
            } else {
                long la = ea.lin(c);
                dst = c.mmu.read(la, size);
                c.mmu.write(la, size, dst + src);
                Regs.set(c, reg, size, dst);
            }
            Alu.setAdd(c, size, dst, src);
        }
    }

    /** CMPXCHG8B m64: compare EDX:EAX with m64; equal: m64 = ECX:EBX, ZF = 1; else EDX:EAX = m64, ZF = 0. */
    static final class Cmpxchg8b extends Insn {
        final Ea ea;
        Cmpxchg8b(Ea ea) { this.ea = ea; }
        @Override public void exec(Cpu c) {
            long la = ea.lin(c);
            long m = c.mmu.read64(la);
            long cmp = (c.r[Cpu.RDX] & 0xFFFF_FFFFL) << 32 | (c.r[Cpu.RAX] & 0xFFFF_FFFFL);
            boolean eq = m == cmp;
            c.mmu.write64(la, eq ? (c.r[Cpu.RCX] & 0xFFFF_FFFFL) << 32 | (c.r[Cpu.RBX] & 0xFFFF_FFFFL) : m);
            if (!eq) {
                Regs.set(c, Cpu.RAX, 4, m);
                Regs.set(c, Cpu.RDX, 4, m >>> 32);
            }
            Alu.setFlagBit(c, Flags.ZF, eq);
        }
    }

    // =============================================================== flag instructions

    private static void registerFlagOps(OpcodeTable t) {
        t.add("CLC", MAP_1BYTE, 0xF8, ORACLE, Imm.NONE, d -> new FlagOp(FlagOp.CLC));
        t.add("STC", MAP_1BYTE, 0xF9, ORACLE, Imm.NONE, d -> new FlagOp(FlagOp.STC));
        t.add("CMC", MAP_1BYTE, 0xF5, ORACLE, Imm.NONE, d -> new FlagOp(FlagOp.CMC));
        t.add("CLD", MAP_1BYTE, 0xFC, ORACLE, Imm.NONE, d -> new FlagOp(FlagOp.CLD));
        t.add("STD", MAP_1BYTE, 0xFD, ORACLE, Imm.NONE, d -> new FlagOp(FlagOp.STD));
        t.add("LAHF", MAP_1BYTE, 0x9F, ORACLE, Imm.NONE, d -> new FlagOp(FlagOp.LAHF));
        t.add("SAHF", MAP_1BYTE, 0x9E, ORACLE, Imm.NONE, d -> new FlagOp(FlagOp.SAHF));
        t.add("SALC", MAP_1BYTE, 0xD6, NO64 | ORACLE, Imm.NONE, d -> new FlagOp(FlagOp.SALC));
    }

    /** CLC STC CMC CLD STD LAHF SAHF SALC. */
    static final class FlagOp extends Insn {
        static final int CLC = 0, STC = 1, CMC = 2, CLD = 3, STD = 4, LAHF = 5, SAHF = 6, SALC = 7;
        /** SF ZF AF PF CF: the flags LAHF/SAHF transfer (SDM LAHF). */
        static final int AH_FLAGS = Flags.SF | Flags.ZF | Flags.AF | Flags.PF | Flags.CF;
        final int op;
        FlagOp(int op) { this.op = op; }
        @Override public void exec(Cpu c) {
            switch (op) {
                case CLC -> Flags.setCf(c, false);
                case STC -> Flags.setCf(c, true);
                case CMC -> Flags.setCf(c, !Flags.cf(c));
                case CLD -> c.rflags &= ~Flags.DF;
                case STD -> c.rflags |= Flags.DF;
                case LAHF -> Regs.set(c, 16, 1, (Flags.arith(c) & AH_FLAGS) | 2);
                case SAHF -> {
                    Flags.materialize(c);
                    c.ccSrc = (c.ccSrc & Flags.OF) | (Regs.get(c, 16, 1) & AH_FLAGS);
                }
                default -> Regs.set(c, Cpu.RAX, 1, Flags.cf(c) ? 0xFF : 0);
            }
        }
    }

    // =============================================================== BCD adjust (legacy modes only)

    private static void registerBcd(OpcodeTable t) {
        t.add("DAA", MAP_1BYTE, 0x27, NO64 | ORACLE, Imm.NONE, d -> new Bcd(Bcd.DAA, 0));
        t.add("DAS", MAP_1BYTE, 0x2F, NO64 | ORACLE, Imm.NONE, d -> new Bcd(Bcd.DAS, 0));
        t.add("AAA", MAP_1BYTE, 0x37, NO64 | ORACLE, Imm.NONE, d -> new Bcd(Bcd.AAA, 0));
        t.add("AAS", MAP_1BYTE, 0x3F, NO64 | ORACLE, Imm.NONE, d -> new Bcd(Bcd.AAS, 0));
        t.add("AAM Ib", MAP_1BYTE, 0xD4, NO64 | ORACLE, Imm.IB, d -> new Bcd(Bcd.AAM, (int) d.imm & 0xFF));
        t.add("AAD Ib", MAP_1BYTE, 0xD5, NO64 | ORACLE, Imm.IB, d -> new Bcd(Bcd.AAD, (int) d.imm & 0xFF));
    }

    /** DAA DAS AAA AAS AAM AAD, following the SDM pseudocode of each; undefined flags are left clear. */
    static final class Bcd extends Insn {
        static final int DAA = 0, DAS = 1, AAA = 2, AAS = 3, AAM = 4, AAD = 5;
        final int op, base;
        Bcd(int op, int base) { this.op = op; this.base = base; }

        @Override public void exec(Cpu c) {
            int al = (int) c.r[Cpu.RAX] & 0xFF, ah = (int) (c.r[Cpu.RAX] >>> 8) & 0xFF;
            boolean cf = Flags.cf(c), af = Flags.af(c);
            switch (op) {
                case DAA, DAS -> {
                    boolean nf = false, naf = false;
                    int r = al;
                    if ((al & 0xF) > 9 || af) {
                        naf = true;
                        nf = cf || (op == DAA ? al > 0xF9 : al < 6);
                        r = op == DAA ? r + 6 : r - 6;
                    }
                    if (al > 0x99 || cf) {
                        nf = true;
                        r = op == DAA ? r + 0x60 : r - 0x60;
                    } else if (op == DAA) {
                        // DAA clears CF here; DAS keeps the borrow of AL - 6 (SDM Vol. 2, DAS "Operation"
                        // has no ELSE branch; e.g. AL=01h with AF=1 gives FBh with CF=1 on the host CPU).
                        nf = false;
                    }
                    r &= 0xFF;
                    Regs.set(c, Cpu.RAX, 1, r);
                    setSzp(c, r, (nf ? Flags.CF : 0) | (naf ? Flags.AF : 0));
                }
                case AAA, AAS -> {
                    boolean adj = (al & 0xF) > 9 || af;
                    int ax = ah << 8 | al;
                    // SDM Vol. 2 AAA/AAS: AX <- AX + 106H, or AX <- AX - 6 then AH <- AH - 1, so the carry or
                    // borrow of AL +/- 6 reaches AH (AX=00FFh: AAA gives 0105h, not 0005h; as the host CPU).
                    if (adj) ax = op == AAA ? ax + 0x106 : ((ax - 6) & 0xFFFF) - 0x100;
                    al = ax & 0xFF;
                    ah = (ax >> 8) & 0xFF;
                    Regs.set(c, Cpu.RAX, 2, ah << 8 | (al & 0xF));
                    setSzp(c, al & 0xF, adj ? Flags.CF | Flags.AF : 0);
                }
                case AAM -> {
                    if (base == 0) throw c.fault(Exceptions.DE);
                    int r = al % base;
                    Regs.set(c, Cpu.RAX, 2, (al / base) << 8 | r);
                    setSzp(c, r, 0);
                }
                default -> { // AAD
                    int r = (al + ah * base) & 0xFF;
                    Regs.set(c, Cpu.RAX, 2, r);
                    setSzp(c, r, 0);
                }
            }
        }

        private static void setSzp(Cpu c, int r, int extra) {
            c.ccOp = Flags.EFLAGS;
            c.ccSrc = extra | (r == 0 ? Flags.ZF : 0) | ((r & 0x80) != 0 ? Flags.SF : 0)
                    | ((Integer.bitCount(r) & 1) == 0 ? Flags.PF : 0);
        }
    }
}

package dev.polyvisor.cpu.exec;

import dev.polyvisor.cpu.Cpu;
import dev.polyvisor.cpu.Flags;
import dev.polyvisor.cpu.decode.Decoded;
import dev.polyvisor.cpu.decode.Ea;
import dev.polyvisor.cpu.decode.Insn;
import dev.polyvisor.cpu.decode.OpcodeTable;

import static dev.polyvisor.cpu.decode.OpcodeTable.*;

/**
 * Shifts and rotates (group 2: C0/C1/D0-D3), SHLD/SHRD, the bit tests BT/BTS/BTR/BTC and the bit scans
 * BSF/BSR (SDM Vol. 2 instruction pages; Vol. 1, 7.3.6-7.3.7). The count is masked to 5 bits (6 for
 * 64-bit operands) and a masked count of zero changes no flag. OF of multi-bit shifts and rotates is
 * architecturally undefined; it is computed with the count-1 formula, as the hardware does.
 */
public final class BitOps {
    static final int ROL = 0, ROR = 1, RCL = 2, RCR = 3, SHL = 4, SHR = 5, SAL = 6, SAR = 7;
    private static final String[] SHIFT_NAMES = {"ROL", "ROR", "RCL", "RCR", "SHL", "SHR", "SAL", "SAR"};
    static final int BT = 0, BTS = 1, BTR = 2, BTC = 3;

    private BitOps() {}

    public static void register(OpcodeTable t) {
        for (int o = 0; o < 8; o++) {
            final int op = o == SAL ? SHL : o;
            String n = SHIFT_NAMES[o];
            t.addGroup(n + " Eb,Ib", MAP_1BYTE, 0xC0, o, BYTE | ORACLE, Imm.IB, d -> shift(op, d, (int) d.imm & 0xFF));
            t.addGroup(n + " Ev,Ib", MAP_1BYTE, 0xC1, o, ORACLE, Imm.IB, d -> shift(op, d, (int) d.imm & 0xFF));
            t.addGroup(n + " Eb,1", MAP_1BYTE, 0xD0, o, BYTE | ORACLE, Imm.NONE, d -> shift(op, d, 1));
            t.addGroup(n + " Ev,1", MAP_1BYTE, 0xD1, o, ORACLE, Imm.NONE, d -> shift(op, d, 1));
            t.addGroup(n + " Eb,CL", MAP_1BYTE, 0xD2, o, BYTE | ORACLE, Imm.NONE, d -> shift(op, d, -1));
            t.addGroup(n + " Ev,CL", MAP_1BYTE, 0xD3, o, ORACLE, Imm.NONE, d -> shift(op, d, -1));
        }
        t.add("SHLD Ev,Gv,Ib", MAP_0F, 0xA4, MODRM | ORACLE, Imm.IB, d -> new DoubleShift(true, d.opSize, d.rm, d.ea, d.reg, (int) d.imm & 0xFF));
        t.add("SHLD Ev,Gv,CL", MAP_0F, 0xA5, MODRM | ORACLE, Imm.NONE, d -> new DoubleShift(true, d.opSize, d.rm, d.ea, d.reg, -1));
        t.add("SHRD Ev,Gv,Ib", MAP_0F, 0xAC, MODRM | ORACLE, Imm.IB, d -> new DoubleShift(false, d.opSize, d.rm, d.ea, d.reg, (int) d.imm & 0xFF));
        t.add("SHRD Ev,Gv,CL", MAP_0F, 0xAD, MODRM | ORACLE, Imm.NONE, d -> new DoubleShift(false, d.opSize, d.rm, d.ea, d.reg, -1));

        String[] bt = {"BT", "BTS", "BTR", "BTC"};
        int[] btReg = {0xA3, 0xAB, 0xB3, 0xBB};
        for (int o = 0; o < 4; o++) {
            final int op = o;
            int lk = op == BT ? 0 : LOCKABLE;
            t.add(bt[o] + " Ev,Gv", MAP_0F, btReg[o], MODRM | lk | ORACLE, Imm.NONE, d -> d.lock ? new LockedOps.BitTestM(op, d.opSize, d.ea, d.reg, -1)
                    : new BitTest(op, d.opSize, d.rm, d.ea, d.reg, -1));
            t.addGroup(bt[o] + " Ev,Ib", MAP_0F, 0xBA, 4 + o, lk | ORACLE, Imm.IB, d -> d.lock ? new LockedOps.BitTestM(op, d.opSize, d.ea, -1, (int) d.imm & 0xFF)
                    : new BitTest(op, d.opSize, d.rm, d.ea, -1, (int) d.imm & 0xFF));
        }
        // BSF/BSR for every prefix (ANY): F3 0F BC/BD would be TZCNT/LZCNT, but BMI1/ABM are not advertised,
        // so they execute as BSF/BSR, as on CPUs without those extensions (SDM TZCNT/LZCNT compatibility notes).
        t.add("BSF Gv,Ev", MAP_0F, 0xBC, MODRM | ORACLE, Imm.NONE, d -> new BitScan(false, d.opSize, d.reg, d.rm, d.ea));
        t.add("BSR Gv,Ev", MAP_0F, 0xBD, MODRM | ORACLE, Imm.NONE, d -> new BitScan(true, d.opSize, d.reg, d.rm, d.ea));
    }

    private static Insn shift(int op, Decoded d, int count) {
        if (count >= 0 && d.opSize >= 4 && !d.isMem()) {
            Insn f = FastIntOps.shiftImm(op, d.opSize, d.rm, count);
            if (f != null) return f;
        }
        return new Shift(op, d.opSize, d.rmOp(), d.ea, count);
    }

    /** Group 2 shift or rotate of r/m by 1, imm8 or CL ({@code count} -1). */
    static final class Shift extends Insn {
        final int op, size, rm, count, bits;
        final Ea ea;
        final long mask, sign;
        Shift(int op, int size, int rm, Ea ea, int count) {
            this.op = op; this.size = size; this.rm = rm; this.ea = ea; this.count = count;
            this.bits = size * 8; this.mask = Regs.mask(size); this.sign = 1L << (bits - 1);
        }

        @Override public void exec(Cpu c) {
            int n = (count < 0 ? (int) c.r[Cpu.RCX] : count) & (size == 8 ? 63 : 31);
            long la = 0, v;
            if (ea == null) v = Regs.get(c, rm, size);
            else { la = ea.lin(c); v = c.mmu.read(la, size); }
            if (n == 0) {
                // No flag changes; a 32-bit register destination is still written (zero-extended).
                if (ea == null) Regs.set(c, rm, size, v);
                return;
            }
            long r;
            switch (op) {
                case SHL -> {
                    r = v << n;
                    store(c, la, r);
                    c.ccOp = Flags.op(Flags.K_SHL, Regs.sizeIdx(size)); c.ccDst = r; c.ccSrc = v << (n - 1);
                }
                case SHR -> {
                    r = v >>> n;
                    store(c, la, r);
                    c.ccOp = Flags.op(Flags.K_SHR, Regs.sizeIdx(size)); c.ccDst = r; c.ccSrc = v >>> (n - 1);
                }
                case SAR -> {
                    long sv = Regs.sext(v, size);
                    r = sv >> n;
                    store(c, la, r);
                    c.ccOp = Flags.op(Flags.K_SAR, Regs.sizeIdx(size)); c.ccDst = r; c.ccSrc = sv >> (n - 1);
                }
                case ROL -> {
                    int k = n & (bits - 1);
                    r = ((v << k) | (v >>> (bits - k))) & mask;
                    store(c, la, r);
                    boolean cf = (r & 1) != 0;
                    setCfOf(c, cf, cf ^ ((r & sign) != 0));
                }
                case ROR -> {
                    int k = n & (bits - 1);
                    r = ((v >>> k) | (v << (bits - k))) & mask;
                    store(c, la, r);
                    boolean msb = (r & sign) != 0;
                    setCfOf(c, msb, msb ^ ((r & (sign >>> 1)) != 0));
                }
                case RCL -> {
                    int k = bits < 32 ? n % (bits + 1) : n;
                    boolean cf = Flags.cf(c);
                    r = v;
                    for (int i = 0; i < k; i++) {
                        boolean out = (r & sign) != 0;
                        r = ((r << 1) | (cf ? 1 : 0)) & mask;
                        cf = out;
                    }
                    store(c, la, r);
                    setCfOf(c, cf, cf ^ ((r & sign) != 0));
                }
                default -> { // RCR
                    int k = bits < 32 ? n % (bits + 1) : n;
                    boolean cf = Flags.cf(c);
                    boolean of = ((v & sign) != 0) ^ cf;
                    r = v;
                    for (int i = 0; i < k; i++) {
                        boolean out = (r & 1) != 0;
                        r = (r >>> 1) | (cf ? sign : 0);
                        cf = out;
                    }
                    store(c, la, r);
                    setCfOf(c, cf, of);
                }
            }
        }

        private void store(Cpu c, long la, long r) {
            if (ea == null) Regs.set(c, rm, size, r);
            else c.mmu.write(la, size, r);
        }
    }

    /** Rotates change only CF and OF (SDM RCL/RCR/ROL/ROR "Flags Affected"). */
    static void setCfOf(Cpu c, boolean cf, boolean of) {
        Flags.materialize(c);
        long f = c.ccSrc & ~(Flags.CF | Flags.OF);
        c.ccSrc = f | (cf ? Flags.CF : 0) | (of ? Flags.OF : 0);
    }

    /**
     * SHLD/SHRD: shift the destination, filling from the source register. Count masked to 5/6 bits; a
     * 16-bit count above 16 is undefined (here the bits come from the source, then the destination again).
     */
    static final class DoubleShift extends Insn {
        final boolean left;
        final int size, rm, reg, count, bits;
        final Ea ea;
        final long mask;
        DoubleShift(boolean left, int size, int rm, Ea ea, int reg, int count) {
            this.left = left; this.size = size; this.rm = rm; this.ea = ea; this.reg = reg; this.count = count;
            this.bits = size * 8; this.mask = Regs.mask(size);
        }
        @Override public void exec(Cpu c) {
            int n = (count < 0 ? (int) c.r[Cpu.RCX] : count) & (size == 8 ? 63 : 31);
            long la = 0, v;
            if (ea == null) v = Regs.get(c, rm, size);
            else { la = ea.lin(c); v = c.mmu.read(la, size); }
            if (n == 0) {
                if (ea == null) Regs.set(c, rm, size, v);
                return;
            }
            long s = Regs.get(c, reg, size);
            long r, prev;
            if (size == 2 && n > 16) {
                // Undefined: treat as a shift of the 48-bit value dst:src:dst (what Intel parts do).
                long x = v << 32 | s << 16 | v;
                r = left ? (x << n) >>> 32 : x >>> n;
                prev = left ? (x << (n - 1)) >>> 32 : x >>> (n - 1);
            } else if (left) {
                r = (v << n) | Alu.shr(s, bits - n);
                prev = (v << (n - 1)) | Alu.shr(s, bits - n + 1);
            } else {
                r = (v >>> n) | Alu.shl(s, bits - n);
                prev = (v >>> (n - 1)) | Alu.shl(s, bits - n + 1);
            }
            r &= mask;
            prev &= mask;
            if (ea == null) Regs.set(c, rm, size, r);
            else c.mmu.write(la, size, r);
            c.ccOp = Flags.op(left ? Flags.K_SHL : Flags.K_SHR, Regs.sizeIdx(size));
            c.ccDst = r;
            c.ccSrc = prev;
        }
    }

    /**
     * BT/BTS/BTR/BTC: CF = the selected bit, which BTS/BTR/BTC then set/clear/complement. With a register
     * bit offset and a memory operand the offset is signed and addresses the bit string beyond the
     * operand: the operand-sized word at ea + size * (offset >> log2(bits)) (SDM BT, "bit base").
     * An immediate offset is taken modulo the operand width.
     */
    static final class BitTest extends Insn {
        final int op, size, rm, reg, imm, bits, shift;
        final Ea ea;
        BitTest(int op, int size, int rm, Ea ea, int reg, int imm) {
            this.op = op; this.size = size; this.rm = rm; this.ea = ea; this.reg = reg; this.imm = imm;
            this.bits = size * 8; this.shift = Integer.numberOfTrailingZeros(bits);
        }
        @Override public void exec(Cpu c) {
            long off = reg >= 0 ? Regs.sext(Regs.get(c, reg, size), size) : imm;
            int bit = (int) off & (bits - 1);
            long la = 0, v;
            if (ea == null) v = Regs.get(c, rm, size);
            else {
                la = reg >= 0 ? ea.lin(c, (off >> shift) * size) : ea.lin(c);
                v = c.mmu.read(la, size);
            }
            boolean cf = ((v >>> bit) & 1) != 0;
            if (op != BT) {
                long m = 1L << bit;
                long r = switch (op) { case BTS -> v | m; case BTR -> v & ~m; default -> v ^ m; };
                if (ea == null) Regs.set(c, rm, size, r);
                else c.mmu.write(la, size, r);
            }
            Alu.setFlagBit(c, Flags.CF, cf);
        }
    }

    /**
     * BSF/BSR: index of the lowest/highest set bit; ZF = (source == 0). On a zero source the destination
     * is left unchanged (AMD documents it, Intel parts behave so, and Linux's fls() relies on it).
     */
    static final class BitScan extends Insn {
        final boolean reverse;
        final int size, dst, rm;
        final Ea ea;
        BitScan(boolean reverse, int size, int dst, int rm, Ea ea) { this.reverse = reverse; this.size = size; this.dst = dst; this.rm = rm; this.ea = ea; }
        @Override public void exec(Cpu c) {
            long s = Alu.readRm(c, rm, ea, size);
            if (s != 0) Regs.set(c, dst, size, reverse ? 63 - Long.numberOfLeadingZeros(s) : Long.numberOfTrailingZeros(s));
            Alu.setFlagBit(c, Flags.ZF, s == 0);
        }
    }
}

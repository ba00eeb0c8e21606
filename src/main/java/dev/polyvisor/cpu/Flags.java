package dev.polyvisor.cpu;

/**
 * Lazy arithmetic flags in QEMU's cc_op form (reference/cpu-design.md 1.4): an instruction records
 * {@code ccOp} (operation and size) and its operands in {@code ccDst}, {@code ccSrc}, {@code ccSrc2};
 * a flag is computed only when something reads it.
 *
 * <p>{@code ccOp = kind << 2 | sizeIndex} with sizeIndex 0..3 for 8/16/32/64 bits. Conventions
 * per kind (dst is always the result, unmasked; helpers mask by size):
 * <ul>
 * <li>ADD: src = second operand. ADC: src = second operand, src2 = carry in.</li>
 * <li>SUB (also CMP, NEG with first operand 0): src = second operand. SBB: src2 = borrow in.</li>
 * <li>LOGIC: CF = OF = AF = 0.</li>
 * <li>INC/DEC: src = CF before the instruction (they preserve CF).</li>
 * <li>SHL: src = operand shifted left by count-1. SHR/SAR: src = operand shifted right by count-1.
 *     AF is 0 (undefined architecturally).</li>
 * <li>MUL: src != 0 means CF = OF = 1.</li>
 * <li>EFLAGS: src holds the six arithmetic flags materialised (ROL/ROR, BT, POPF, SAHF, ...).</li>
 * </ul>
 */
public final class Flags {
    public static final int CF = 1, PF = 1 << 2, AF = 1 << 4, ZF = 1 << 6, SF = 1 << 7, TF = 1 << 8, IF = 1 << 9,
            DF = 1 << 10, OF = 1 << 11, IOPL = 3 << 12, NT = 1 << 14, RF = 1 << 16, VM = 1 << 17, AC = 1 << 18,
            VIF = 1 << 19, VIP = 1 << 20, ID = 1 << 21;
    public static final int ARITH = CF | PF | AF | ZF | SF | OF;

    public static final int K_EFLAGS = 0, K_ADD = 1, K_ADC = 2, K_SUB = 3, K_SBB = 4, K_LOGIC = 5, K_INC = 6,
            K_DEC = 7, K_SHL = 8, K_SHR = 9, K_SAR = 10, K_MUL = 11;

    /** The materialised form: ccSrc holds the arithmetic flags. */
    public static final int EFLAGS = K_EFLAGS << 2;

    private Flags() {}

    public static int op(int kind, int sizeIdx) { return kind << 2 | sizeIdx; }

    static long mask(int sz) { return sz == 3 ? -1L : (1L << (8 << sz)) - 1; }

    static long signBit(int sz) { return 1L << ((8 << sz) - 1); }

    private static boolean ltu(long a, long b) { return Long.compareUnsigned(a, b) < 0; }

    public static boolean cf(Cpu c) {
        int op = c.ccOp, sz = op & 3;
        long m = mask(sz), d = c.ccDst & m, s = c.ccSrc & m;
        return switch (op >>> 2) {
            case K_EFLAGS -> (c.ccSrc & CF) != 0;
            case K_ADD -> ltu(d, s);
            case K_ADC -> c.ccSrc2 != 0 ? !ltu(s, d) : ltu(d, s);
            case K_SUB -> ltu((d + s) & m, s);
            case K_SBB -> { long a = (d + s + c.ccSrc2) & m; yield c.ccSrc2 != 0 ? !ltu(s, a) : ltu(a, s); }
            case K_LOGIC -> false;
            case K_INC, K_DEC -> c.ccSrc != 0;
            case K_SHL -> (c.ccSrc & signBit(sz)) != 0;
            case K_SHR, K_SAR -> (c.ccSrc & 1) != 0;
            case K_MUL -> c.ccSrc != 0;
            default -> throw new IllegalStateException("ccOp " + op);
        };
    }

    public static boolean zf(Cpu c) {
        if (c.ccOp == EFLAGS) return (c.ccSrc & ZF) != 0;
        return (c.ccDst & mask(c.ccOp & 3)) == 0;
    }

    public static boolean sf(Cpu c) {
        if (c.ccOp == EFLAGS) return (c.ccSrc & SF) != 0;
        return (c.ccDst & signBit(c.ccOp & 3)) != 0;
    }

    public static boolean pf(Cpu c) {
        if (c.ccOp == EFLAGS) return (c.ccSrc & PF) != 0;
        return (Integer.bitCount((int) c.ccDst & 0xFF) & 1) == 0;
    }

    /** The first operand of a two-operand arithmetic op, reconstructed from result and second operand. */
    private static long src1(Cpu c, int kind) {
        return switch (kind) {
            case K_ADD -> c.ccDst - c.ccSrc;
            case K_ADC -> c.ccDst - c.ccSrc - c.ccSrc2;
            case K_SUB -> c.ccDst + c.ccSrc;
            case K_SBB -> c.ccDst + c.ccSrc + c.ccSrc2;
            default -> 0;
        };
    }

    public static boolean af(Cpu c) {
        int op = c.ccOp, k = op >>> 2;
        return switch (k) {
            case K_EFLAGS -> (c.ccSrc & AF) != 0;
            case K_ADD, K_ADC, K_SUB, K_SBB -> ((src1(c, k) ^ c.ccSrc ^ c.ccDst) & 0x10) != 0;
            case K_INC -> (((c.ccDst - 1) ^ 1 ^ c.ccDst) & 0x10) != 0;
            case K_DEC -> (((c.ccDst + 1) ^ 1 ^ c.ccDst) & 0x10) != 0;
            default -> false;
        };
    }

    public static boolean of(Cpu c) {
        int op = c.ccOp, sz = op & 3, k = op >>> 2;
        long sb = signBit(sz), d = c.ccDst;
        return switch (k) {
            case K_EFLAGS -> (c.ccSrc & OF) != 0;
            case K_ADD, K_ADC -> { long a = src1(c, k), b = c.ccSrc; yield ((~(a ^ b) & (a ^ d)) & sb) != 0; }
            case K_SUB, K_SBB -> { long a = src1(c, k), b = c.ccSrc; yield (((a ^ b) & (a ^ d)) & sb) != 0; }
            case K_LOGIC -> false;
            case K_INC -> (d & mask(sz)) == sb;
            case K_DEC -> (d & mask(sz)) == sb - 1;
            case K_SHL -> cfShlOf(c, sz);
            case K_SHR, K_SAR -> (((c.ccSrc ^ d) & sb) != 0);
            case K_MUL -> c.ccSrc != 0;
            default -> throw new IllegalStateException("ccOp " + op);
        };
    }

    /** SHL count 1: OF = MSB(result) XOR CF (SDM SAL/SAL/SHL/SHR "Flags Affected"). */
    private static boolean cfShlOf(Cpu c, int sz) {
        long sb = signBit(sz);
        return ((c.ccDst & sb) != 0) ^ ((c.ccSrc & sb) != 0);
    }

    /** The six arithmetic flags as RFLAGS bits. */
    public static int arith(Cpu c) {
        int op = c.ccOp;
        if (op == EFLAGS) return (int) c.ccSrc & ARITH;
        // ZF, SF and PF come from the result whatever the kind (as zf/sf/pf compute them); LOGIC has the
        // other three clear. Materialising after AND/XOR/OR is frequent (ROL/ROR, PUSHF, BT).
        int sz = op & 3;
        long d = c.ccDst;
        int szp = ((d & mask(sz)) == 0 ? ZF : 0) | ((d & signBit(sz)) != 0 ? SF : 0)
                | ((Integer.bitCount((int) d & 0xFF) & 1) == 0 ? PF : 0);
        if ((op >>> 2) == K_LOGIC) return szp;
        return szp | (cf(c) ? CF : 0) | (af(c) ? AF : 0) | (of(c) ? OF : 0);
    }

    /** Materialises the lazy flags so the caller may edit individual bits of {@code ccSrc}. */
    public static void materialize(Cpu c) {
        if (c.ccOp != EFLAGS) {
            c.ccSrc = arith(c);
            c.ccOp = EFLAGS;
        }
    }

    public static void setCf(Cpu c, boolean v) {
        materialize(c);
        c.ccSrc = v ? c.ccSrc | CF : c.ccSrc & ~CF;
    }

    /**
     * Condition code test for Jcc/SETcc/CMOVcc (SDM Vol. 1, Appendix B): cc is the low nibble of
     * the opcode. The SUB/CMP and LOGIC/TEST cases, which dominate, are answered without materialising.
     */
    public static boolean cond(Cpu c, int cc) {
        int op = c.ccOp;
        if ((op >>> 2) == K_LOGIC) {
            // CF = OF = 0: B/BE/L/LE reduce to ZF and SF of the result.
            int sz = op & 3;
            long d = c.ccDst;
            boolean z = (d & mask(sz)) == 0, s = (d & signBit(sz)) != 0;
            switch (cc) {
                case 0x0: case 0x2: return false;
                case 0x1: case 0x3: return true;
                case 0x4: case 0x6: return z;
                case 0x5: case 0x7: return !z;
                case 0x8: case 0xC: return s;
                case 0x9: case 0xD: return !s;
                case 0xE: return z || s;
                case 0xF: return !z && !s;
                default: break; // parity
            }
        } else if ((op >>> 2) == K_SUB) {
            int sz = op & 3;
            long m = mask(sz), b = c.ccSrc & m, d = c.ccDst & m, a = (d + b) & m;
            int sh = 64 - (8 << sz);
            long as = (a << sh) >> sh, bs = (b << sh) >> sh;
            switch (cc) {
                case 0x2: return ltu(a, b);
                case 0x3: return !ltu(a, b);
                case 0x4: return d == 0;
                case 0x5: return d != 0;
                case 0x6: return !ltu(b, a);
                case 0x7: return ltu(b, a);
                case 0xC: return as < bs;
                case 0xD: return as >= bs;
                case 0xE: return as <= bs;
                case 0xF: return as > bs;
                default: break;
            }
        }
        boolean r = switch (cc >>> 1) {
            case 0 -> of(c);
            case 1 -> cf(c);
            case 2 -> zf(c);
            case 3 -> cf(c) || zf(c);
            case 4 -> sf(c);
            case 5 -> pf(c);
            case 6 -> sf(c) != of(c);
            default -> zf(c) || sf(c) != of(c);
        };
        return r ^ ((cc & 1) != 0);
    }
}

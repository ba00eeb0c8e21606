package dev.polyvisor.cpu.exec;

import dev.polyvisor.cpu.Cpu;
import dev.polyvisor.cpu.Exceptions;
import dev.polyvisor.cpu.exec.SoftFloat.Exact;
import dev.polyvisor.cpu.exec.SoftFloat.Format;
import dev.polyvisor.cpu.exec.SoftFloat.Rounded;

import static dev.polyvisor.cpu.exec.SoftFloat.*;

/**
 * SSE scalar floating-point semantics on raw float/double bit patterns, honouring MXCSR (SDM Vol. 1,
 * 10.2.3 and 11.5): rounding control, DAZ, FTZ, the sticky exception flags, and the x86 NaN rules
 * (Vol. 1, 4.8.3.5 and Table 4-7: the first source operand's NaN wins, SNaNs are quieted, an invalid
 * operation returns the default QNaN 0xFFC00000 / 0xFFF8000000000000). Bit patterns are used
 * throughout so NaN payloads survive exactly; Java float arithmetic is only used on the fast path
 * (round to nearest, normal result), where IEEE 754 guarantees the same bits.
 *
 * <p>Flags: an instruction calls {@link #begin} (which clears the six flag bits and returns the old
 * MXCSR), its operations OR flags into c.mxcsr, and {@link #end} merges the old sticky flags back and
 * raises #XM (CR4.OSXMMEXCPT=1) or #UD when a raised flag is unmasked. A faulting instruction writes
 * no destination (callers write results after end).
 */
public final class SseFloat {
    private SseFloat() {}

    public static final int DAZ = 1 << 6, FTZ = 1 << 15;
    public static final int ADD = 0, SUB = 1, MUL = 2, DIV = 3, SQRT = 4;

    public static int begin(Cpu c) {
        int old = c.mxcsr;
        c.mxcsr &= ~0x3F;
        return old;
    }

    public static void end(Cpu c, int old) {
        int raised = c.mxcsr & 0x3F;
        // An unmasked pre-computation exception (IE, DE, ZE) in any lane stops the instruction before any
        // result is delivered, so no lane reports a post-computation exception (OE, UE, PE): SDM Vol. 1,
        // 11.5.1 and 11.5.2; observed on the AMD host.
        if ((raised & ~(c.mxcsr >>> 7) & (IE | DE | ZE)) != 0) {
            raised &= IE | DE | ZE;
            c.mxcsr = c.mxcsr & ~0x3F | raised;
        }
        c.mxcsr |= old & 0x3F;
        int unmasked = raised & ~(c.mxcsr >>> 7) & 0x3F;
        if (unmasked != 0) {
            if ((c.cr4 & Cpu.CR4_OSXMMEXCPT) != 0) throw c.fault(Exceptions.XM);
            throw c.ud();
        }
    }

    static int rc(Cpu c) { return (c.mxcsr >>> 13) & 3; }

    // ---- format helpers on raw bits ----

    static boolean d64(Format f) { return f == F64; }

    static long sign(Format f) { return f == F64 ? Long.MIN_VALUE : 0x8000_0000L; }

    static long expMask(Format f) { return f == F64 ? 0x7FF0_0000_0000_0000L : 0x7F80_0000L; }

    static long fracMask(Format f) { return f == F64 ? 0xF_FFFF_FFFF_FFFFL : 0x7F_FFFFL; }

    static long quietBit(Format f) { return f == F64 ? 1L << 51 : 1L << 22; }

    public static long defaultNaN(Format f) { return f == F64 ? 0xFFF8_0000_0000_0000L : 0xFFC0_0000L; }

    public static boolean isNaN(long a, Format f) { return (a & expMask(f)) == expMask(f) && (a & fracMask(f)) != 0; }

    static boolean isSNaN(long a, Format f) { return isNaN(a, f) && (a & quietBit(f)) == 0; }

    static boolean isInf(long a, Format f) { return (a & ~sign(f) & (f == F64 ? -1L : 0xFFFF_FFFFL)) == expMask(f); }

    static boolean isZero(long a, Format f) { return (a & ~sign(f) & (f == F64 ? -1L : 0xFFFF_FFFFL)) == 0; }

    static boolean isDenormal(long a, Format f) { return (a & expMask(f)) == 0 && (a & fracMask(f)) != 0; }

    static boolean neg(long a, Format f) { return (a & sign(f)) != 0; }

    static long inf(boolean neg, Format f) { return (neg ? sign(f) : 0) | expMask(f); }

    static long zero(boolean neg, Format f) { return neg ? sign(f) : 0; }

    static long quiet(long a, Format f) { return a | quietBit(f); }

    static Exact exact(long a, Format f) {
        return f == F64 ? ofDouble(Double.longBitsToDouble(a)) : ofFloat(Float.intBitsToFloat((int) a));
    }

    /** DAZ: denormal inputs read as signed zero; otherwise they raise DE. */
    static long in(Cpu c, long a, Format f) {
        if (isDenormal(a, f)) {
            if ((c.mxcsr & DAZ) != 0) return a & sign(f);
            c.mxcsr |= DE;
        }
        return a;
    }

    /** NaN operand handling for two-operand arithmetic (at least one operand is a NaN). */
    static long nanResult(Cpu c, long a, long b, Format f) {
        boolean na = isNaN(a, f);
        if (isSNaN(a, f) || isSNaN(b, f)) c.mxcsr |= IE;
        return quiet(na ? a : b, f);
    }

    static long invalid(Cpu c, Format f) {
        c.mxcsr |= IE;
        return defaultNaN(f);
    }

    /** Rounds an exact value under MXCSR, applying FTZ (SDM Vol. 1, 10.2.3.3). */
    static long round(Cpu c, Exact x, Format f) {
        Rounded r = SoftFloat.round(x, f, rc(c));
        int fl = r.flags();
        if ((c.mxcsr & FTZ) != 0 && (c.mxcsr & (UE << 7)) != 0 && r.bexp() == 0 && (r.sig() != 0 || (fl & PE) != 0)) {
            c.mxcsr |= UE | PE;
            return zero(x.neg(), f);
        }
        // With underflow unmasked, a tiny result signals UE even when it is exact (SDM Vol. 1, 4.9.1.5:
        // "if the underflow exception is not masked ... whether or not the result is inexact").
        if ((c.mxcsr & (UE << 7)) == 0 && r.bexp() == 0 && r.sig() != 0) fl |= UE;
        // An unmasked overflow or underflow reports PE for the result rounded to the destination's precision
        // with an unbounded exponent (the result the x87 would scale and deliver, SDM Vol. 1, 4.9.1.4-5), not
        // for the denormalised or overflowed one: observed on the AMD host (e.g. a product that only
        // underflows to zero is exact in 24 bits, so no PE).
        if ((fl & ~(c.mxcsr >>> 7) & (OE | UE)) != 0) fl = fl & ~PE | (fitsPrecision(x, f) ? 0 : PE);
        c.mxcsr |= fl;
        return r.bits(f);
    }

    /** Whether x's significand fits the format's precision (exact if the exponent range were unbounded). */
    static boolean fitsPrecision(Exact x, Format f) {
        java.math.BigInteger m = x.m();
        return m.signum() == 0 || m.shiftRight(m.getLowestSetBit()).bitLength() <= f.prec();
    }

    /** x + 0 returns x unrounded; a denormal x is still a tiny result for FTZ. */
    static long flushDenormal(Cpu c, long v, Format f) {
        if (isDenormal(v, f) && (c.mxcsr & (UE << 7)) == 0) c.mxcsr |= UE; // exact but tiny, UE unmasked (see round)
        if (isDenormal(v, f) && (c.mxcsr & FTZ) != 0 && (c.mxcsr & (UE << 7)) != 0) {
            c.mxcsr |= UE | PE;
            return v & sign(f);
        }
        return v;
    }

    /**
     * ADD, SUB, MUL, DIV on two operands, or SQRT of b (a ignored). A denormal operand of an operation
     * that is invalid or divides by zero reports only IE/ZE, the higher-priority exception (SDM Vol. 1,
     * 11.5.2.1), as the host CPU does.
     */
    public static long arith(Cpu c, int op, long a, long b, Format f) {
        int saved = c.mxcsr;
        c.mxcsr &= ~0x3F;
        long r = arith0(c, op, a, b, f);
        int lane = c.mxcsr & 0x3F;
        if ((lane & (IE | ZE)) != 0) lane &= ~DE;
        c.mxcsr = saved | lane;
        return r;
    }

    private static long arith0(Cpu c, int op, long a, long b, Format f) {
        if (op != SQRT) {
            if (isNaN(a, f) || isNaN(b, f)) return nanResult(c, a, b, f);
        } else if (isNaN(b, f)) {
            if (isSNaN(b, f)) c.mxcsr |= IE;
            return quiet(b, f);
        }
        if (op != SQRT) a = in(c, a, f);
        b = in(c, b, f);
        if (op == SUB) { b ^= sign(f); op = ADD; }
        boolean ia = isInf(a, f), ib = isInf(b, f), za = isZero(a, f), zb = isZero(b, f);
        boolean sa = neg(a, f), sb = neg(b, f);
        switch (op) {
            case ADD -> {
                if (ia && ib) return sa == sb ? a : invalid(c, f);
                if (ia) return a;
                if (ib) return b;
                if (za && zb) return zero(sa && sb || (sa != sb && rc(c) == RD), f);
                if (za) return flushDenormal(c, b, f);
                if (zb) return flushDenormal(c, a, f);
            }
            case MUL -> {
                if ((ia && zb) || (za && ib)) return invalid(c, f);
                if (ia || ib) return inf(sa ^ sb, f);
                if (za || zb) return zero(sa ^ sb, f);
            }
            case DIV -> {
                if ((ia && ib) || (za && zb)) return invalid(c, f);
                if (ia) return inf(sa ^ sb, f);
                if (ib) return zero(sa ^ sb, f);
                if (zb) { c.mxcsr |= ZE; return inf(sa ^ sb, f); }
                if (za) return zero(sa ^ sb, f);
            }
            default -> { // SQRT
                if (zb) return b;
                if (sb) return invalid(c, f);
                if (ib) return b;
            }
        }
        long fast = fastPath(c, op, a, b, f);
        if (fast != -1) return fast;
        Exact x = exact(a, f), y = exact(b, f);
        Exact r = switch (op) {
            case ADD -> SoftFloat.add(x, y);
            case MUL -> SoftFloat.mul(x, y);
            case DIV -> SoftFloat.div(x, y, f.prec());
            default -> SoftFloat.sqrt(y, f.prec());
        };
        if (r == null) return zero(rc(c) == RD, f); // exact cancellation: +0, or -0 rounding down
        return round(c, r, f);
    }

    /**
     * Round-to-nearest with a comfortably normal result: Java's IEEE arithmetic gives the right bits,
     * and an error-free transformation (TwoSum, FMA residual) tells whether it was inexact. Returns -1
     * when the slow path must decide.
     */
    private static long fastPath(Cpu c, int op, long a, long b, Format f) {
        if (rc(c) != RN) return -1;
        double x, y;
        if (f == F64) { x = Double.longBitsToDouble(a); y = Double.longBitsToDouble(b); }
        else { x = Float.intBitsToFloat((int) a); y = Float.intBitsToFloat((int) b); }
        double r;
        boolean exact;
        switch (op) {
            case ADD -> {
                r = x + y;
                double bb = r - x;
                exact = (x - (r - bb)) + (y - bb) == 0;
            }
            case MUL -> {
                r = x * y;
                if (Math.abs(r) < 0x1p-900 || Double.isInfinite(r)) return -1;
                exact = Math.fma(x, y, -r) == 0;
            }
            case DIV -> {
                if (Math.abs(x) < 0x1p-900) return -1;
                r = x / y;
                if (Math.abs(r) < 0x1p-900 || Double.isInfinite(r)) return -1;
                exact = Math.fma(-r, y, x) == 0;
            }
            default -> {
                if (y < 0x1p-900) return -1;
                r = Math.sqrt(y);
                exact = Math.fma(-r, r, y) == 0;
            }
        }
        if (Double.isInfinite(r) || Double.isNaN(r) || Math.abs(r) < 0x1p-900) return -1;
        long bits;
        if (f == F64) {
            bits = Double.doubleToRawLongBits(r);
        } else {
            float rf = (float) r;
            if (Float.isInfinite(rf) || Math.abs(rf) < 0x1p-100f) return -1;
            exact &= rf == r;
            bits = Float.floatToRawIntBits(rf) & 0xFFFF_FFFFL;
        }
        if (!exact) c.mxcsr |= PE;
        return bits;
    }

    /** MINSS/MINPS/MAXSS/... (SDM MINPS): a NaN or two zeros return the second operand unchanged. */
    public static long minMax(Cpu c, long a, long b, Format f, boolean max) {
        if (isNaN(a, f) || isNaN(b, f)) {
            c.mxcsr |= IE;
            // The second operand is returned as DAZ read it: a denormal becomes a signed zero.
            return isDenormal(b, f) && (c.mxcsr & DAZ) != 0 ? b & sign(f) : b;
        }
        a = in(c, a, f);
        b = in(c, b, f);
        int cmp = compareOrdered(a, b, f);
        if (cmp == 0) return b;
        return (max ? cmp > 0 : cmp < 0) ? a : b;
    }

    /** -1, 0, 1 for non-NaN operands (zeros compare equal). */
    static int compareOrdered(long a, long b, Format f) {
        if (isZero(a, f) && isZero(b, f)) return 0;
        boolean sa = neg(a, f), sb = neg(b, f);
        if (sa != sb) return sa ? -1 : 1;
        long ma = a & ~sign(f), mb = b & ~sign(f);
        int r = Long.compare(ma, mb);
        return sa ? -r : r;
    }

    /** Ordered compare with exceptions: returns -1, 0, 1, or 2 for unordered. */
    public static int compare(Cpu c, long a, long b, Format f, boolean signalQuiet) {
        boolean na = isNaN(a, f), nb = isNaN(b, f);
        if (na || nb) {
            if (signalQuiet || isSNaN(a, f) || isSNaN(b, f)) c.mxcsr |= IE;
            return 2;
        }
        a = in(c, a, f);
        b = in(c, b, f);
        return compareOrdered(a, b, f);
    }

    /** CMPPS predicates 0-7 (SDM Vol. 2A, CMPPS, the comparison-predicate table for imm8[2:0]): EQ, LT, LE, UNORD, NEQ, NLT, NLE, ORD. */
    public static boolean cmpPredicate(Cpu c, long a, long b, Format f, int pred) {
        boolean signalling = pred == 1 || pred == 2 || pred == 5 || pred == 6;
        int r = compare(c, a, b, f, signalling);
        return switch (pred & 7) {
            case 0 -> r == 0;
            case 1 -> r == -1;
            case 2 -> r == -1 || r == 0;
            case 3 -> r == 2;
            case 4 -> r != 0;
            case 5 -> r != -1;
            case 6 -> r == 1 || r == 2;
            default -> r != 2;
        };
    }

    // ---- conversions ----

    /** CVTSS2SD / CVTPS2PD: exact except for NaN quieting and DAZ. */
    public static long floatToDouble(Cpu c, long a) {
        if (isNaN(a, F32)) {
            if (isSNaN(a, F32)) c.mxcsr |= IE;
            return (a & 0x8000_0000L) << 32 | 0x7FF8_0000_0000_0000L | (a & 0x3F_FFFFL) << 29;
        }
        a = in(c, a, F32);
        return Double.doubleToRawLongBits(Float.intBitsToFloat((int) a));
    }

    /** CVTSD2SS / CVTPD2PS: rounded per MXCSR. */
    public static long doubleToFloat(Cpu c, long a) {
        if (isNaN(a, F64)) {
            if (isSNaN(a, F64)) c.mxcsr |= IE;
            return (a >>> 32 & 0x8000_0000L) | 0x7FC0_0000L | (a >>> 29 & 0x3F_FFFFL);
        }
        a = in(c, a, F64);
        if (isInf(a, F64)) return inf(a < 0, F32);
        if (isZero(a, F64)) return zero(a < 0, F32);
        return round(c, ofDouble(Double.longBitsToDouble(a)), F32);
    }

    /** CVTSI2SS/SD, CVTDQ2PS/PD: integer to float, rounded per MXCSR. */
    public static long fromInt(Cpu c, long v, Format f) {
        if (v == 0) return 0;
        long lim = f == F64 ? 1L << 53 : 1L << 24;
        if (v > -lim && v < lim) {
            return f == F64 ? Double.doubleToRawLongBits(v) : Float.floatToRawIntBits(v) & 0xFFFF_FFFFL;
        }
        return round(c, ofLong(v), f);
    }

    /**
     * CVT(T)SS2SI / CVT(T)SD2SI / CVT(T)PS2DQ / CVT(T)PD2DQ: rounds per MXCSR.RC (or truncates);
     * NaN and out-of-range values give the integer indefinite 0x80000000 / 0x8000000000000000 with IE.
     */
    public static long toInt(Cpu c, long a, Format f, int bits, boolean truncate) {
        long indefinite = 1L << (bits - 1);
        if (isNaN(a, f) || isInf(a, f)) { c.mxcsr |= IE; return indefinite; }
        if (isDenormal(a, f) && (c.mxcsr & DAZ) != 0) return 0;
        if (isZero(a, f)) return 0;
        SoftFloat.IntResult r = SoftFloat.toInteger(exact(a, f), truncate ? RZ : rc(c), bits);
        if (r.overflow()) { c.mxcsr |= IE; return indefinite; }
        if (r.inexact()) c.mxcsr |= PE;
        return bits == 32 ? r.value() & 0xFFFF_FFFFL : r.value();
    }

    // ---- approximations ----

    /**
     * RCPSS/RCPPS and RSQRTSS/RSQRTPS. Hardware returns a table-driven approximation (relative error at
     * most 1.5 * 2^-12) whose exact bits differ between Intel and AMD parts; this returns the correctly
     * rounded 1/x or 1/sqrt(x), which is within that bound but not bit-identical to any CPU. Denormal
     * inputs are treated as zero, as the hardware does; MXCSR flags are not affected.
     */
    public static long approx(long a, boolean rsqrt) {
        Format f = F32;
        if (isNaN(a, f)) return quiet(a, f);
        boolean n = neg(a, f);
        if (isZero(a, f) || isDenormal(a, f)) return inf(n, f);
        if (rsqrt && n) return defaultNaN(f);
        if (isInf(a, f)) return zero(n, f);
        double x = Float.intBitsToFloat((int) a);
        float r = (float) (rsqrt ? 1.0 / Math.sqrt(x) : 1.0 / x);
        if (Math.abs(r) < Float.MIN_NORMAL) return zero(n, f);
        return Float.floatToRawIntBits(r) & 0xFFFF_FFFFL;
    }
}

package dev.polyvisor.cpu.exec;

import dev.polyvisor.cpu.Cpu;
import dev.polyvisor.cpu.exec.SoftFloat.Exact;
import dev.polyvisor.cpu.exec.SoftFloat.Format;
import dev.polyvisor.cpu.exec.SoftFloat.Rounded;

import java.math.BigInteger;

import static dev.polyvisor.cpu.exec.SoftFloat.*;

/**
 * x87 arithmetic on 80-bit register images (SDM Vol. 1, chapter 8 and 4.8): every result is computed
 * exactly and rounded once to the precision control (FCW.PC: 24, 53 or 64 bits) under FCW.RC, so
 * results are bit-exact with the 64-bit-significand hardware (not the double-precision shortcut).
 * Flags are ORed into the low six bits of c.fsw; C1 is set when the last rounding went up.
 *
 * <p>NaN rules (SDM Vol. 1, Table 4-7, x87 column): SNaNs raise IE and are quieted; with two NaN
 * operands a QNaN beats an SNaN, otherwise the larger significand wins. Unsupported encodings
 * (pseudo-NaN, pseudo-infinity, unnormal) are invalid operands and give the real indefinite.
 */
public final class X87Math {
    private X87Math() {}

    /** An 80-bit value: 64-bit significand with explicit integer bit, and sign | biased exponent. */
    public record Ext(long m, int se) {
        public boolean neg() { return (se & 0x8000) != 0; }
        public int exp() { return se & 0x7FFF; }
        public Ext abs() { return new Ext(m, se & 0x7FFF); }
        public Ext negate() { return new Ext(m, se ^ 0x8000); }
    }

    public static final Ext INDEFINITE = new Ext(0xC000_0000_0000_0000L, 0xFFFF);
    public static final Ext ONE = new Ext(Long.MIN_VALUE, 0x3FFF);

    public static final int ZERO = 0, NORMAL = 1, DENORMAL = 2, INF = 3, QNAN = 4, SNAN = 5, UNSUPPORTED = 6;
    public static final int ADD = 0, SUB = 1, MUL = 2, DIV = 3, SQRT = 4;

    public static int cls(Ext x) {
        int e = x.exp();
        long m = x.m;
        if (e == 0x7FFF) {
            if (m >= 0) return UNSUPPORTED; // integer bit clear: pseudo-infinity / pseudo-NaN
            if ((m << 1) == 0) return INF;
            return (m & 1L << 62) != 0 ? QNAN : SNAN;
        }
        if (e == 0) return m == 0 ? ZERO : DENORMAL;
        return m < 0 ? NORMAL : UNSUPPORTED;
    }

    public static boolean isNaN(Ext x) { int k = cls(x); return k == QNAN || k == SNAN; }

    static Ext zero(boolean neg) { return new Ext(0, neg ? 0x8000 : 0); }

    static Ext inf(boolean neg) { return new Ext(Long.MIN_VALUE, neg ? 0xFFFF : 0x7FFF); }

    static Ext quiet(Ext x) { return new Ext(x.m | 1L << 62, x.se); }

    static int pc(Cpu c) {
        return switch ((c.fcw >>> 8) & 3) { case 0 -> 24; case 2 -> 53; default -> 64; };
    }

    static int rc(Cpu c) { return (c.fcw >>> 10) & 3; }

    static Exact exact(Ext x) { return ofExt(x.m, x.se); }

    static void c1(Cpu c, boolean v) { c.fsw = v ? c.fsw | X87.C1 : c.fsw & ~X87.C1; }

    /** Rounds an exact value to the register format under FCW.PC and FCW.RC. */
    static Ext round(Cpu c, Exact x, int prec) {
        Rounded r = SoftFloat.round(x, F80, prec, rc(c));
        c.fsw |= r.flags();
        c1(c, r.roundedUp());
        return new Ext(r.sig(), r.se());
    }

    static Ext invalid(Cpu c) {
        c.fsw |= IE;
        return INDEFINITE;
    }

    /** Two-operand NaN result (at least one operand is a NaN). */
    static Ext nan(Cpu c, Ext a, Ext b) {
        int ka = cls(a), kb = cls(b);
        if (ka == SNAN || kb == SNAN) c.fsw |= IE;
        boolean na = ka == QNAN || ka == SNAN, nb = kb == QNAN || kb == SNAN;
        if (na && !nb) return quiet(a);
        if (nb && !na) return quiet(b);
        if (ka != kb) return ka == QNAN ? a : b;
        long ma = a.m & Long.MAX_VALUE, mb = b.m & Long.MAX_VALUE;
        int cmp = Long.compareUnsigned(ma, mb);
        if (cmp == 0) return quiet(a.neg() ? b : a); // equal significands: the positive one (as Bochs/QEMU)
        return quiet(cmp > 0 ? a : b);
    }

    /** ST op operand. SUB computes a - b and DIV a / b; SQRT uses b only. */
    public static Ext arith(Cpu c, int op, Ext a, Ext b) {
        int kb = cls(b), ka = op == SQRT ? NORMAL : cls(a);
        if (ka == UNSUPPORTED || kb == UNSUPPORTED) return invalid(c);
        if (op == SQRT) {
            if (kb == QNAN || kb == SNAN) { if (kb == SNAN) c.fsw |= IE; return quiet(b); }
        } else if (ka == QNAN || ka == SNAN || kb == QNAN || kb == SNAN) {
            return nan(c, a, b);
        }
        if ((op != SQRT && ka == DENORMAL) || kb == DENORMAL) c.fsw |= DE;
        if (op == SUB) { b = b.negate(); op = ADD; }
        boolean sa = a.neg(), sb = b.neg();
        boolean ia = ka == INF, ib = kb == INF, za = ka == ZERO, zb = kb == ZERO;
        switch (op) {
            case ADD -> {
                if (ia && ib) return sa == sb ? a : invalid(c);
                if (ia) return a;
                if (ib) return b;
                if (za && zb) return zero(sa && sb || (sa != sb && rc(c) == RD));
                if (za) return normalize(c, b);
                if (zb) return normalize(c, a);
            }
            case MUL -> {
                if ((ia && zb) || (za && ib)) return invalid(c);
                if (ia || ib) return inf(sa ^ sb);
                if (za || zb) return zero(sa ^ sb);
            }
            case DIV -> {
                if ((ia && ib) || (za && zb)) return invalid(c);
                if (ia) return inf(sa ^ sb);
                if (ib) return zero(sa ^ sb);
                if (zb) { c.fsw |= ZE; return inf(sa ^ sb); }
                if (za) return zero(sa ^ sb);
            }
            default -> {
                if (zb) return b;
                if (sb) return invalid(c);
                if (ib) return b;
            }
        }
        int prec = pc(c);
        Exact x = op == SQRT ? null : exact(a), y = exact(b);
        Exact r = switch (op) {
            case ADD -> SoftFloat.add(x, y);
            case MUL -> SoftFloat.mul(x, y);
            case DIV -> SoftFloat.div(x, y, prec);
            default -> SoftFloat.sqrt(y, prec);
        };
        if (r == null) { c1(c, false); return zero(rc(c) == RD); }
        return round(c, r, prec);
    }

    /** x + 0: the value rounded to the current precision (denormals stay, as the hardware does). */
    private static Ext normalize(Cpu c, Ext x) { return round(c, exact(x), pc(c)); }

    /** Compare: -1, 0, 1 or 2 (unordered). signalQuiet: FCOM-style (any NaN raises IE). */
    public static int compare(Cpu c, Ext a, Ext b, boolean signalQuiet) {
        int ka = cls(a), kb = cls(b);
        if (ka == UNSUPPORTED || kb == UNSUPPORTED) { c.fsw |= IE; return 2; }
        boolean na = ka == QNAN || ka == SNAN, nb = kb == QNAN || kb == SNAN;
        if (na || nb) {
            if (signalQuiet || ka == SNAN || kb == SNAN) c.fsw |= IE;
            return 2;
        }
        if (ka == DENORMAL || kb == DENORMAL) c.fsw |= DE;
        if (ka == ZERO && kb == ZERO) return 0;
        if (a.neg() != b.neg()) return a.neg() ? -1 : 1;
        int r;
        if (ka == INF || kb == INF) r = ka == kb ? 0 : ka == INF ? 1 : -1;
        else if (ka == ZERO) r = -1;
        else if (kb == ZERO) r = 1;
        else r = exact(a).m().shiftLeft((int) Math.max(0, exact(a).e() - exact(b).e()))
                .compareTo(exact(b).m().shiftLeft((int) Math.max(0, exact(b).e() - exact(a).e())));
        return a.neg() ? -r : r;
    }

    // ---- conversions ----

    /** FLD m32/m64: exact widening; SNaN raises IE and is quieted, denormals raise DE. */
    public static Ext fromBits(Cpu c, long bits, Format f) {
        boolean d = f == F64;
        long expMask = d ? 0x7FF : 0xFF, frac = d ? bits & 0xF_FFFF_FFFF_FFFFL : bits & 0x7F_FFFF;
        int exp = (int) (d ? bits >>> 52 : bits >>> 23) & (int) expMask;
        boolean neg = d ? bits < 0 : (bits & 0x8000_0000L) != 0;
        int sign = neg ? 0x8000 : 0;
        if (exp == expMask) {
            if (frac == 0) return inf(neg);
            long m = Long.MIN_VALUE | frac << (d ? 11 : 40);
            if ((m & 1L << 62) == 0) { c.fsw |= IE; m |= 1L << 62; }
            return new Ext(m, sign | 0x7FFF);
        }
        if (exp == 0 && frac == 0) return zero(neg);
        if (exp == 0) c.fsw |= DE;
        long[] img = SoftFloat.doubleToExt(d ? Double.longBitsToDouble(bits) : Float.intBitsToFloat((int) bits));
        return new Ext(img[0], (int) img[1]);
    }

    /** FST m32/m64: rounded per FCW.RC (precision control does not apply to stores). */
    public static long toBits(Cpu c, Ext x, Format f) {
        boolean d = f == F64;
        int k = cls(x);
        long sign = x.neg() ? (d ? Long.MIN_VALUE : 0x8000_0000L) : 0;
        switch (k) {
            case UNSUPPORTED -> { c.fsw |= IE; return d ? 0xFFF8_0000_0000_0000L : 0xFFC0_0000L; }
            case QNAN, SNAN -> {
                if (k == SNAN) c.fsw |= IE;
                return d ? sign | 0x7FF8_0000_0000_0000L | (x.m << 2 >>> 13)
                        : sign | 0x7FC0_0000L | (x.m << 2 >>> 42);
            }
            case INF -> { return sign | (d ? 0x7FF0_0000_0000_0000L : 0x7F80_0000L); }
            case ZERO -> { return sign; }
            default -> {
                // No DE for a denormal source: stores do not report it (host CPU behaviour).
                Rounded r = SoftFloat.round(exact(x), f, rc(c));
                c.fsw |= r.flags();
                c1(c, r.roundedUp());
                return d ? r.f64() : r.f32();
            }
        }
    }

    /** FIST/FISTP/FISTTP: NaN, infinity and out-of-range values give the integer indefinite with IE. */
    public static long toInt(Cpu c, Ext x, int bits, boolean truncate) {
        long indefinite = 1L << (bits - 1);
        int k = cls(x);
        if (k == UNSUPPORTED || k == QNAN || k == SNAN || k == INF) { c.fsw |= IE; return indefinite; }
        if (k == ZERO) return 0;
        IntResult r = SoftFloat.toInteger(exact(x), truncate ? RZ : rc(c), bits);
        if (r.overflow()) { c.fsw |= IE; return indefinite; }
        if (r.inexact()) {
            c.fsw |= PE;
            c1(c, r.roundedUp());
        }
        return r.value();
    }

    public static Ext fromLong(long v) {
        if (v == 0) return zero(false);
        long mag = v < 0 ? -v : v; // Long.MIN_VALUE stays 0x8000..., which is its magnitude as unsigned
        int lz = Long.numberOfLeadingZeros(mag);
        return new Ext(mag << lz, (v < 0 ? 0x8000 : 0) | (16383 + 63 - lz));
    }

    /** FRNDINT: round to an integer per FCW.RC. */
    public static Ext roundInt(Cpu c, Ext x) {
        int k = cls(x);
        if (k == UNSUPPORTED) return invalid(c);
        if (k == QNAN || k == SNAN) { if (k == SNAN) c.fsw |= IE; return quiet(x); }
        if (k == INF || k == ZERO) return x;
        if (k == DENORMAL) c.fsw |= DE;
        Exact e = exact(x);
        if (e.e() >= 0) return x;
        BigInteger m = e.m();
        int sh = (int) Math.min(-e.e(), 70);
        BigInteger q = m.shiftRight(sh);
        boolean half = m.testBit(sh - 1), sticky = m.getLowestSetBit() < sh - 1, inexact = half || sticky;
        boolean up = switch (rc(c)) {
            case RN -> half && (sticky || q.testBit(0));
            case RD -> inexact && x.neg();
            case RU -> inexact && !x.neg();
            default -> false;
        };
        if (up) q = q.add(BigInteger.ONE);
        if (inexact) c.fsw |= PE;
        c1(c, up);
        if (q.signum() == 0) return zero(x.neg());
        long mag = q.longValue(); // |x| < 2^63 here, so the rounded magnitude fits 64 bits unsigned
        int lz = Long.numberOfLeadingZeros(mag);
        return new Ext(mag << lz, (x.neg() ? 0x8000 : 0) | (16383 + 63 - lz));
    }

    /** FSCALE: ST0 * 2^trunc(ST1). */
    public static Ext scale(Cpu c, Ext a, Ext b) {
        int ka = cls(a), kb = cls(b);
        if (ka == UNSUPPORTED || kb == UNSUPPORTED) return invalid(c);
        if (ka == QNAN || ka == SNAN || kb == QNAN || kb == SNAN) return nan(c, a, b);
        if (ka == DENORMAL || kb == DENORMAL) c.fsw |= DE;
        if (kb == INF) {
            if (b.neg()) return ka == INF ? invalid(c) : zero(a.neg());
            return ka == ZERO ? invalid(c) : ka == INF ? a : inf(a.neg());
        }
        if (ka == ZERO || ka == INF) return a;
        long n;
        if (kb == ZERO) n = 0;
        else {
            Exact e = exact(b);
            BigInteger t = e.e() >= 0 ? e.m().shiftLeft((int) Math.min(e.e(), 40)) : e.m().shiftRight((int) Math.min(-e.e(), 80));
            n = t.bitLength() > 40 ? (1L << 40) : t.longValue();
            if (b.neg()) n = -n;
        }
        Exact x = exact(a);
        return round(c, new Exact(x.neg(), x.m(), x.e() + n), 64);
    }

    /**
     * FPREM (truncating quotient) and FPREM1 (round-to-nearest quotient): exact partial remainder.
     * Sets C2 when the reduction is incomplete (exponent difference of 64 or more; this reduces by
     * 2^(D-32)), otherwise C0, C3, C1 receive quotient bits 2, 1, 0.
     */
    public static Ext prem(Cpu c, Ext a, Ext b, boolean ieee) {
        int ka = cls(a), kb = cls(b);
        c.fsw &= ~(X87.C1 | X87.C2);
        // Invalid operands leave C0 and C3 as they were (host CPU behaviour).
        if (ka == UNSUPPORTED || kb == UNSUPPORTED) return invalid(c);
        if (ka == QNAN || ka == SNAN || kb == QNAN || kb == SNAN) return nan(c, a, b);
        if (ka == INF || kb == ZERO) return invalid(c);
        c.fsw &= ~(X87.C0 | X87.C3);
        if (ka == DENORMAL || kb == DENORMAL) c.fsw |= DE;
        if (ka == ZERO) return a;
        if (kb == INF) return a.exp() == 0 && a.m() < 0 ? new Ext(a.m(), a.se() | 1) : a; // pseudo-denormal: exponent 1
        Exact x = exact(a), y = exact(b);
        long ex = x.e() + x.m().bitLength(), ey = y.e() + y.m().bitLength();
        long d = ex - ey;
        long e = Math.min(x.e(), y.e());
        BigInteger mx = x.m().shiftLeft((int) (x.e() - e)), my = y.m().shiftLeft((int) (y.e() - e));
        if (d >= 64) {
            // Partial remainder: reduce by 2^(D - N) with N = 32 + ((D - 64) mod 32) (AMD's
            // documented choice, which QEMU follows and the host CPU matches).
            long nn = 32 + ((d - 64) % 32);
            BigInteger div = my.shiftLeft((int) (d - nn));
            BigInteger q = mx.divide(div);
            BigInteger r = mx.subtract(q.multiply(div));
            c.fsw |= X87.C2;
            if (r.signum() == 0) return zero(a.neg());
            return round(c, new Exact(a.neg(), r, e), 64);
        }
        BigInteger[] qr = mx.divideAndRemainder(my);
        BigInteger q = qr[0], r = qr[1];
        boolean neg = a.neg();
        if (ieee) {
            int cmp = r.shiftLeft(1).compareTo(my);
            if (cmp > 0 || (cmp == 0 && q.testBit(0))) {
                q = q.add(BigInteger.ONE);
                r = my.subtract(r);
                neg = !neg;
            }
        }
        int qb = q.intValue() & 7;
        if ((qb & 4) != 0) c.fsw |= X87.C0;
        if ((qb & 2) != 0) c.fsw |= X87.C3;
        if ((qb & 1) != 0) c.fsw |= X87.C1;
        if (r.signum() == 0) return zero(a.neg());
        Ext res = round(c, new Exact(neg, r, e), 64);
        c1(c, (qb & 1) != 0);
        return res;
    }
}

package dev.polyvisor.cpu.exec;

import java.math.BigInteger;

/**
 * Exact IEEE 754 binary arithmetic on finite values with x86 rounding (SDM Vol. 1, 4.8 and 4.9): the
 * operands are held exactly as {@code (-1)^neg * m * 2^e} with a BigInteger significand, the
 * operation is computed exactly (division and square root with a sticky bit) and then rounded once to
 * the target format under a rounding control, raising the precision, underflow and overflow flags as
 * the masked responses do. Tininess is detected after rounding, as on x86 (Berkeley SoftFloat's 8086
 * specialisation, {@code softfloat_tininess_afterRounding}).
 *
 * <p>This is the slow, always-correct path. SseFloat uses Java double arithmetic for the common
 * round-to-nearest normal case and falls back here; the x87 uses it for everything, which gives
 * bit-exact 64-bit-significand results. NaNs, infinities and zeros are handled by the callers, whose
 * rules differ (SSE: first operand NaN wins; x87: larger significand wins).
 */
public final class SoftFloat {
    private SoftFloat() {}

    /** Exception flag bits, identical in MXCSR and the x87 status word. */
    public static final int IE = 1, DE = 2, ZE = 4, OE = 8, UE = 16, PE = 32;
    /** Rounding control values (MXCSR.RC, FCW.RC). */
    public static final int RN = 0, RD = 1, RU = 2, RZ = 3;

    /** A binary interchange format: significand bits (with the leading bit) and exponent bias. */
    public record Format(int prec, int bias, int maxBiased, boolean explicitInteger) {
        int emin() { return 1 - bias; }
        int emax() { return maxBiased - 1 - bias; }
    }

    public static final Format F32 = new Format(24, 127, 255, false);
    public static final Format F64 = new Format(53, 1023, 2047, false);
    public static final Format F80 = new Format(64, 16383, 32767, true);

    /** A finite non-zero value {@code (-1)^neg * m * 2^e}. */
    public record Exact(boolean neg, BigInteger m, long e) {}

    /**
     * A rounded result in storage form: {@code sig} is the full significand including the integer bit
     * for normal numbers (so 24/53/64 bits), {@code bexp} the biased exponent (0 for subnormals and
     * zero, maxBiased for infinity), {@code flags} the PE/UE/OE bits raised.
     */
    public record Rounded(boolean neg, long sig, int bexp, int flags, boolean roundedUp) {
        public long f32() { return (neg ? 1L << 31 : 0) | (long) bexp << 23 | (sig & 0x7F_FFFF); }
        public long f64() { return (neg ? 1L << 63 : 0) | (long) bexp << 52 | (sig & 0xF_FFFF_FFFF_FFFFL); }
        public int se() { return (neg ? 0x8000 : 0) | bexp; }
        public long bits(Format f) { return f == F32 ? f32() : f64(); }
    }

    // ------------------------------------------------------------------ unpacking

    public static Exact ofDouble(double d) {
        long bits = Double.doubleToRawLongBits(d);
        int exp = (int) (bits >>> 52) & 0x7FF;
        long frac = bits & 0xF_FFFF_FFFF_FFFFL;
        return exp == 0 ? new Exact(bits < 0, BigInteger.valueOf(frac), -1074)
                : new Exact(bits < 0, BigInteger.valueOf(frac | 1L << 52), exp - 1075L);
    }

    public static Exact ofFloat(float f) {
        int bits = Float.floatToRawIntBits(f);
        int exp = (bits >>> 23) & 0xFF, frac = bits & 0x7F_FFFF;
        return exp == 0 ? new Exact(bits < 0, BigInteger.valueOf(frac), -149)
                : new Exact(bits < 0, BigInteger.valueOf(frac | 1 << 23), exp - 150L);
    }

    /** An 80-bit register image (finite, non-zero significand); pseudo-denormals use exponent 1 - bias. */
    public static Exact ofExt(long mant, int se) {
        int exp = se & 0x7FFF;
        return new Exact((se & 0x8000) != 0, unsigned(mant), (exp == 0 ? 1 : exp) - 16383L - 63);
    }

    public static Exact ofLong(long v) {
        return new Exact(v < 0, v < 0 ? BigInteger.valueOf(v).negate() : BigInteger.valueOf(v), 0);
    }

    static BigInteger unsigned(long v) {
        BigInteger b = BigInteger.valueOf(v & Long.MAX_VALUE);
        return v < 0 ? b.setBit(63) : b;
    }

    // ------------------------------------------------------------------ exact operations

    /** a + b exactly, or null when the sum is exactly zero (the caller picks the zero's sign). */
    public static Exact add(Exact a, Exact b) {
        long e = Math.min(a.e, b.e);
        BigInteger x = a.m.shiftLeft((int) (a.e - e)), y = b.m.shiftLeft((int) (b.e - e));
        if (a.neg) x = x.negate();
        if (b.neg) y = y.negate();
        BigInteger s = x.add(y);
        if (s.signum() == 0) return null;
        return new Exact(s.signum() < 0, s.abs(), e);
    }

    public static Exact negate(Exact a) { return new Exact(!a.neg, a.m, a.e); }

    public static Exact mul(Exact a, Exact b) { return new Exact(a.neg ^ b.neg, a.m.multiply(b.m), a.e + b.e); }

    /** a / b to at least {@code bits} significant bits plus a sticky bit (so one rounding is exact). */
    public static Exact div(Exact a, Exact b, int bits) {
        int k = Math.max(0, bits + 2 + b.m.bitLength() - a.m.bitLength() + 1);
        BigInteger[] qr = a.m.shiftLeft(k).divideAndRemainder(b.m);
        BigInteger q = qr[0];
        long e = a.e - b.e - k;
        if (qr[1].signum() != 0) { q = q.shiftLeft(1).setBit(0); e--; }
        return new Exact(a.neg ^ b.neg, q, e);
    }

    /** sqrt(a) for positive a, with a sticky bit. */
    public static Exact sqrt(Exact a, int bits) {
        BigInteger m = a.m;
        long e = a.e;
        int want = 2 * (bits + 2);
        int s = Math.max(0, want - m.bitLength());
        if (((e - s) & 1) != 0) s++;
        m = m.shiftLeft(s);
        e -= s;
        BigInteger r = m.sqrt();
        long re = e / 2;
        if (!r.multiply(r).equals(m)) { r = r.shiftLeft(1).setBit(0); re--; }
        return new Exact(false, r, re);
    }

    // ------------------------------------------------------------------ rounding

    /** Rounds to the format's full precision. */
    public static Rounded round(Exact x, Format f, int rc) { return round(x, f, f.prec, rc); }

    /**
     * Rounds x to {@code prec} significant bits (x87 precision control may ask for fewer than the
     * format holds) within the format's exponent range, per rounding control {@code rc}.
     */
    public static Rounded round(Exact x, Format f, int prec, int rc) {
        BigInteger m = x.m;
        long e = x.e;
        long bigE = e + m.bitLength() - 1;
        int emin = f.emin(), emax = f.emax();
        // Reduced precision (x87 PC) keeps the exponent range, so its denormals are quantised at
        // 2^(emin - (prec - 1)) (as the hardware does), not at the storage format's finest step.
        long qMin = emin - (f.prec - 1), qRound = emin - (prec - 1);
        long q = Math.max(bigE - (prec - 1), qRound);
        int flags = 0;
        BigInteger t = shiftRound(m, q - e, x.neg, rc);
        BigInteger sig = t.shiftRight(2);
        boolean inexact = t.testBit(0), up = t.testBit(1);
        if (sig.bitLength() > prec) { sig = sig.shiftRight(1); q++; }
        if (inexact) flags |= PE;
        if (sig.signum() == 0) {
            // Rounded to zero from a non-zero value: always tiny and inexact.
            return new Rounded(x.neg, 0, 0, flags | UE, false);
        }
        long newE = q + sig.bitLength() - 1;
        if (newE > emax) {
            flags |= OE | PE;
            boolean toInf = rc == RN || (rc == RU && !x.neg) || (rc == RD && x.neg);
            if (toInf) return new Rounded(x.neg, f.explicitInteger ? Long.MIN_VALUE : 0, f.maxBiased, flags, true);
            long max = ((1L << prec) - 1) << (f.prec - prec);
            if (prec == 64) max = -1L;
            return new Rounded(x.neg, max, f.maxBiased - 1, flags, false);
        }
        if (inexact && bigE < emin) {
            boolean tiny = true;
            if (bigE == emin - 1) {
                // Tininess after rounding: would rounding with an unbounded exponent reach 2^emin?
                BigInteger u = shiftRound(m, bigE - (prec - 1) - e, x.neg, rc).shiftRight(2);
                tiny = u.bitLength() <= prec;
            }
            if (tiny) flags |= UE;
        }
        if (newE >= emin) {
            long s = sig.shiftLeft((int) (f.prec - sig.bitLength())).longValue();
            return new Rounded(x.neg, s, (int) (newE + f.bias), flags, up);
        }
        long s = sig.shiftLeft((int) (q - qMin)).longValue();
        return new Rounded(x.neg, s, 0, flags, up);
    }

    /**
     * m >> sh rounded per rc (sh may be negative: an exact left shift). Returns the rounded value
     * shifted left by two, with bit 0 set when rounding discarded non-zero bits and bit 1 when it
     * rounded the magnitude up.
     */
    private static BigInteger shiftRound(BigInteger m, long sh, boolean neg, int rc) {
        if (sh <= 0) return m.shiftLeft((int) -sh + 2);
        if (sh > m.bitLength() + 2) {
            // Everything shifts out: the result is 0 or one unit, decided by rc alone.
            boolean up = (rc == RU && !neg) || (rc == RD && neg);
            return BigInteger.valueOf(up ? 7 : 1);
        }
        int s = (int) sh;
        BigInteger r = m.shiftRight(s);
        boolean half = m.testBit(s - 1);
        boolean sticky = m.getLowestSetBit() < s - 1;
        boolean inexact = half || sticky;
        boolean up = switch (rc) {
            case RN -> half && (sticky || r.testBit(0));
            case RD -> inexact && neg;
            case RU -> inexact && !neg;
            default -> false;
        };
        if (up) r = r.add(BigInteger.ONE);
        r = r.shiftLeft(2);
        if (up) r = r.setBit(1);
        return inexact ? r.setBit(0) : r;
    }

    /** An integer conversion result: {@code overflow} when it does not fit the destination. */
    public record IntResult(long value, boolean overflow, boolean inexact, boolean roundedUp) {}

    /** Rounds to an integer per rc and checks it fits {@code bits}-bit two's complement. */
    public static IntResult toInteger(Exact x, int rc, int bits) {
        BigInteger t = shiftRound(x.m, -x.e, x.neg, rc);
        BigInteger r = t.shiftRight(2);
        if (x.neg) r = r.negate();
        boolean fits = r.bitLength() <= bits - 1;
        return new IntResult(fits ? r.longValue() : 0, !fits, t.testBit(0), t.testBit(1));
    }

    // ------------------------------------------------------------------ 80-bit helpers

    /** The exact 80-bit image of a double (every double is representable): {mantissa, sign|exponent}. */
    public static long[] doubleToExt(double d) {
        long bits = Double.doubleToRawLongBits(d);
        int sign = bits < 0 ? 0x8000 : 0;
        int exp = (int) (bits >>> 52) & 0x7FF;
        long frac = bits & 0xF_FFFF_FFFF_FFFFL;
        if (exp == 0x7FF) return new long[] {Long.MIN_VALUE | frac << 11, sign | 0x7FFF};
        if (exp == 0) {
            if (frac == 0) return new long[] {0, sign};
            int lz = Long.numberOfLeadingZeros(frac);
            // value = frac * 2^-1074; normalise so bit 63 is set.
            return new long[] {frac << lz, sign | (int) (-1074 + 63 - lz + 16383)};
        }
        return new long[] {Long.MIN_VALUE | frac << 11, sign | (exp - 1023 + 16383)};
    }

    /** The 80-bit image of a float (exact). */
    public static long[] floatToExt(float f) { return doubleToExt(f); }

    /** An 80-bit image rounded to a double (round to nearest), for the st[] view and debugging. */
    public static double extToDouble(long mant, int se) {
        int exp = se & 0x7FFF;
        boolean neg = (se & 0x8000) != 0;
        if (exp == 0x7FFF) {
            if ((mant << 1) == 0) return neg ? Double.NEGATIVE_INFINITY : Double.POSITIVE_INFINITY;
            return Double.longBitsToDouble((neg ? 1L << 63 : 0) | 0x7FF8_0000_0000_0000L | (mant << 2 >>> 13));
        }
        if (mant == 0) return neg ? -0.0 : 0.0;
        return Double.longBitsToDouble(round(ofExt(mant, se), F64, RN).f64());
    }
}

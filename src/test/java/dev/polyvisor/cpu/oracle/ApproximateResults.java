package dev.polyvisor.cpu.oracle;

import dev.polyvisor.cpu.decode.OpcodeTable.Entry;

import java.util.List;

/**
 * RCPPS, RCPSS, RSQRTPS, RSQRTSS (NP/F3 0F 53, NP/F3 0F 52): approximations whose exact bits are
 * implementation-specific (SDM Vol. 2B RCPPS: "|Relative Error| <= 1.5 * 2^-12"; AMD APM Vol. 4
 * RCPPS/RSQRTPS give no bits either), so their destination lanes are compared with a tolerance instead of
 * bit for bit. Everything else (the untouched upper lanes of the scalar forms, the other registers,
 * MXCSR, flags, memory) stays in the ordinary exact comparison.
 *
 * <p>Per lane, from the input value x:
 * <ul>
 * <li>NaN, zero, denormal, infinity, and negative inputs to RSQRT have one architectural result, compared
 *     exactly: the quieted NaN; ±infinity for ±0 and for denormals (treated as zero whatever MXCSR.DAZ,
 *     as the AMD host does); ±0 for ±infinity (RCP) and +0 for +infinity (RSQRT); the default NaN
 *     (QNaN indefinite, FFC00000) for negative non-zero RSQRT inputs.</li>
 * <li>Normal inputs: each side's result has the input's sign (RCP) or is positive (RSQRT) and lies within
 *     1.5 * 2^-12 relative of the exact 1/x or 1/sqrt(x), and host and emulator lie within 3 * 2^-12 of
 *     each other. RCP results at the bottom of the normal range may be flushed to a signed zero (SDM:
 *     "tiny results are always flushed to 0.0"; the AMD host's approximation of 1/2^126 falls just below
 *     the smallest normal and is flushed), so ±0 is accepted when the exact result is within the error
 *     bound of the smallest normal.</li>
 * </ul>
 */
final class ApproximateResults {
    private ApproximateResults() {}

    static final double BOUND = 1.5 / 4096, MUTUAL = 3.0 / 4096;

    /** Whether an entry's destination lanes are compared here (RCP, RSQRT). */
    static boolean covers(Entry e) {
        String k = Encoder.key(e);
        return k.equals("RCPPS") || k.equals("RCPSS") || k.equals("RSQRTPS") || k.equals("RSQRTSS");
    }

    /**
     * Compares the approximated lanes of the destination register, adding a line to {@code diffs} for each
     * violation. Returns the XMM registers (bit n = XMMn) this has compared in full, which the caller's exact
     * comparison skips; 0 when the case is not an approximation (other form, or the instruction faulted and
     * left the destination unchanged).
     */
    static int compare(OracleCase c, Entry ran, MachineState host, MachineState emu, List<String> diffs) {
        if (!covers(ran) || faulted(host) || faulted(emu)) return 0;
        boolean rsqrt = Encoder.key(ran).startsWith("RSQRT"), scalar = Encoder.key(ran).endsWith("SS");
        int dst = c.enc().regField();
        MachineState in = c.input();
        int lanes = scalar ? 1 : 4;
        for (int lane = 0; lane < 4; lane++) {
            int h = lane(host.xmm, dst, lane), e = lane(emu.xmm, dst, lane);
            if (lane >= lanes) { // RCPSS/RSQRTSS: lanes 1-3 keep the destination's value
                if (h != e) diffs.add(String.format("xmm%d lane %d host=%08x emu=%08x", dst, lane, h, e));
                continue;
            }
            int x = source(c, in, lane);
            String bad = check(x, h, e, rsqrt);
            if (bad != null)
                diffs.add(String.format("xmm%d lane %d (%s of %08x): host=%08x emu=%08x: %s",
                        dst, lane, rsqrt ? "rsqrt" : "rcp", x, h, e, bad));
        }
        return 1 << dst;
    }

    /** Null if both results are acceptable for input {@code x}, else why not. */
    static String check(int x, int host, int emu, boolean rsqrt) {
        Integer exact = exactResult(x, rsqrt);
        if (exact != null) {
            if (host != exact || emu != exact)
                return String.format("expected exactly %08x", exact);
            return null;
        }
        double want = rsqrt ? 1 / Math.sqrt(Float.intBitsToFloat(x)) : 1 / (double) Float.intBitsToFloat(x);
        String hw = within(host, want, x), ew = within(emu, want, x);
        if (ew != null) return "emulator " + ew;
        if (hw != null) return "host " + hw + " (checker's bound too tight?)";
        if (!isZero(host) && !isZero(emu)) {
            double d = Math.abs((double) Float.intBitsToFloat(host) - Float.intBitsToFloat(emu));
            if (d > MUTUAL * Math.abs(want))
                return String.format("host and emulator differ by %.3g relative (bound 3 * 2^-12)", d / Math.abs(want));
        }
        return null;
    }

    /** The one architectural result for inputs that are not normal numbers (and negative RSQRT inputs), else null. */
    static Integer exactResult(int x, boolean rsqrt) {
        int exp = x >>> 23 & 0xFF, frac = x & 0x7F_FFFF;
        int sign = x & 0x8000_0000;
        if (exp == 0xFF && frac != 0) return x | 0x40_0000;          // NaN: quieted, sign and payload kept
        if (exp == 0) return sign | 0x7F80_0000;                      // ±0, denormal: ±infinity
        if (rsqrt && sign != 0) return 0xFFC0_0000;                   // negative: QNaN indefinite
        if (exp == 0xFF) return sign;                                  // ±infinity: ±0 (RSQRT: +0 only, sign is 0 here)
        return null;
    }

    /** Null if {@code r} is an acceptable approximation of {@code want} for input {@code x}, else why not. */
    private static String within(int r, double want, int x) {
        if (isZero(r)) {
            if ((r & 0x8000_0000) != (x & 0x8000_0000)) return "flushed to a zero of the wrong sign";
            return Math.abs(want) <= Float.MIN_NORMAL * (1 + BOUND) ? null : "flushed to zero a normal result";
        }
        int exp = r >>> 23 & 0xFF;
        if (exp == 0 || exp == 0xFF) return String.format("%08x is not a normal number", r);
        double v = Float.intBitsToFloat(r);
        if (Math.signum(v) != Math.signum(want)) return "wrong sign";
        double rel = Math.abs(v - want) / Math.abs(want);
        return rel <= BOUND ? null : String.format("relative error %.3g > 1.5 * 2^-12", rel);
    }

    private static boolean isZero(int r) { return (r & 0x7FFF_FFFF) == 0; }

    private static boolean faulted(MachineState s) {
        return s.trap != MachineState.NO_TRAP && s.rip == HostHarness.CODE_ADDR + HostHarness.CODE_OFF;
    }

    private static int lane(long[] xmm, int reg, int lane) { return (int) (xmm[2 * reg + lane / 2] >>> (32 * (lane & 1))); }

    /** Input lane {@code lane} of the source operand: an XMM register or the memory operand. */
    private static int source(OracleCase c, MachineState in, int lane) {
        if (!c.enc().mem()) return lane(in.xmm, c.enc().rmReg(), lane);
        int at = c.enc().eaOffset() - HostHarness.WIN_OFF + 4 * lane, v = 0;
        for (int b = 0; b < 4; b++) v |= (in.mem[at + b] & 0xFF) << (8 * b);
        return v;
    }
}

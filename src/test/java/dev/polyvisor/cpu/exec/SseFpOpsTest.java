package dev.polyvisor.cpu.exec;

import dev.polyvisor.cpu.Cpu;
import dev.polyvisor.cpu.Exceptions;
import dev.polyvisor.cpu.Flags;
import org.junit.jupiter.api.AfterEach;
import org.junit.jupiter.api.Test;

import static org.junit.jupiter.api.Assertions.*;

class SseFpOpsTest {
    static final int IE = 1, DE = 2, ZE = 4, OE = 8, UE = 16, PE = 32;
    static final int RD = 0x2000, RU = 0x4000, RZ = 0x6000, FTZ = 0x8000, DAZ = 0x40;
    static final long DMAX = Double.doubleToRawLongBits(Double.MAX_VALUE);

    final FpuTestFixture f = new FpuTestFixture();

    @AfterEach void close() { f.close(); }

    private long sd(String insn, double a, double b, int mxcsr) {
        f.c.mxcsr = mxcsr;
        f.xmmD(0, a, 42.0);
        f.xmmD(1, b, 0);
        f.ok(insn);
        assertEquals(42.0, f.d(0, 1), "upper lane preserved");
        return f.lo(0);
    }

    private int flags() { return f.c.mxcsr & 0x3F; }

    @Test void addsdRoundsPerMxcsrAndSetsPrecision() {
        assertEquals(Double.doubleToRawLongBits(1.0), sd("f2 0f 58 c1", 1.0, 0x1p-60, 0x1F80));
        assertEquals(PE, flags());
        assertEquals(Double.doubleToRawLongBits(Math.nextUp(1.0)), sd("f2 0f 58 c1", 1.0, 0x1p-60, 0x1F80 | RU));
        assertEquals(Double.doubleToRawLongBits(1.0), sd("f2 0f 58 c1", 1.0, 0x1p-60, 0x1F80 | RZ));
        assertEquals(Double.doubleToRawLongBits(-Math.nextUp(1.0)), sd("f2 0f 58 c1", -1.0, -0x1p-60, 0x1F80 | RD));
        assertEquals(Double.doubleToRawLongBits(3.0), sd("f2 0f 58 c1", 1.0, 2.0, 0x1F80));
        assertEquals(0, flags());
    }

    @Test void exactCancellationGivesMinusZeroOnlyWhenRoundingDown() {
        assertEquals(0L, sd("f2 0f 58 c1", 1.5, -1.5, 0x1F80));
        assertEquals(Long.MIN_VALUE, sd("f2 0f 58 c1", 1.5, -1.5, 0x1F80 | RD));
        assertEquals(Long.MIN_VALUE, sd("f2 0f 5c c1", -0.0, 0.0, 0x1F80)); // -0 - +0 = -0
    }

    @Test void divisionByZeroAndInvalidOperations() {
        assertEquals(Double.doubleToRawLongBits(Double.NEGATIVE_INFINITY), sd("f2 0f 5e c1", -1.0, 0.0, 0x1F80));
        assertEquals(ZE, flags());
        assertEquals(0xFFF8_0000_0000_0000L, sd("f2 0f 5e c1", 0.0, 0.0, 0x1F80));
        assertEquals(IE, flags());
        assertEquals(0xFFF8_0000_0000_0000L, sd("f2 0f 59 c1", Double.POSITIVE_INFINITY, 0.0, 0x1F80));
        assertEquals(0xFFF8_0000_0000_0000L, sd("f2 0f 51 c1", 0, -1.0, 0x1F80));
        assertEquals(Long.MIN_VALUE, sd("f2 0f 51 c1", 0, -0.0, 0x1F80));
        assertEquals(0, flags());
    }

    @Test void nanPropagationFollowsTheFirstSourceAndQuietsSignallingNaNs() {
        f.c.mxcsr = 0x1F80;
        f.xmm(0, 0x7FC0_0001L | 0x3F80_0000L << 32, 0x7F80_0002L | 0xFF80_0005L << 32);
        f.xmm(1, 0x7F80_0002L | 0xFF80_0005L << 32, 0x7FC0_0003L | 0x3F80_0000L << 32);
        f.ok("0f 58 c1"); // ADDPS
        assertEquals(0x7FC0_0001, f.fbits(0, 0)); // QNaN dst beats SNaN src
        assertEquals(0xFFC0_0005, f.fbits(0, 1)); // 1.0 + SNaN -> quieted SNaN
        assertEquals(0x7FC0_0002, f.fbits(0, 2)); // SNaN dst beats QNaN src, quieted
        assertEquals(0xFFC0_0005, f.fbits(0, 3)); // SNaN dst + 1.0
        assertEquals(IE, flags());
        f.c.mxcsr = 0x1F80;
        f.xmm(2, 0x7FF8_0000_0000_0007L, 0);
        f.xmm(3, 0xFFF8_0000_0000_0009L, 0);
        f.ok("f2 0f 59 d3"); // MULSD QNaN * QNaN: no IE
        assertEquals(0x7FF8_0000_0000_0007L, f.lo(2));
        assertEquals(0, flags());
    }

    @Test void underflowDenormalsAndFlushToZero() {
        assertEquals(Double.doubleToRawLongBits(0x1p-1030), sd("f2 0f 59 c1", 0x1p-1000, 0x1p-30, 0x1F80));
        assertEquals(0, flags()); // exact denormal result: no UE without inexactness
        assertEquals(Double.doubleToRawLongBits(0x1p-1030), sd("f2 0f 59 c1", 0x1p-1000, (1 + 0x1p-52) * 0x1p-30, 0x1F80));
        assertEquals(UE | PE, flags());
        assertEquals(0L, sd("f2 0f 59 c1", 0x1p-1000, 0x1p-30, 0x1F80 | FTZ));
        assertEquals(UE | PE, flags());
        assertEquals(Double.doubleToRawLongBits(0x1p-1074), sd("f2 0f 59 c1", 0x1p-1000, 0x1p-200, 0x1F80 | RU));
        assertEquals(UE | PE, flags());
        // Denormal operand: DE, or treated as zero under DAZ.
        assertEquals(Double.doubleToRawLongBits(1.0 + 0x1p-1070), sd("f2 0f 58 c1", 1.0, 0x1p-1070, 0x1F80) | 0);
        assertEquals(DE | PE, flags());
        assertEquals(Double.doubleToRawLongBits(0.0), sd("f2 0f 58 c1", 0.0, 0x1p-1070, 0x1F80 | DAZ));
        assertEquals(0, flags());
    }

    @Test void overflowHonoursRoundingControl() {
        assertEquals(Double.doubleToRawLongBits(Double.POSITIVE_INFINITY), sd("f2 0f 59 c1", Double.MAX_VALUE, 2.0, 0x1F80));
        assertEquals(OE | PE, flags());
        assertEquals(DMAX, sd("f2 0f 59 c1", Double.MAX_VALUE, 2.0, 0x1F80 | RZ));
        assertEquals(DMAX | Long.MIN_VALUE, sd("f2 0f 59 c1", -Double.MAX_VALUE, 2.0, 0x1F80 | RU));
        assertEquals(Double.doubleToRawLongBits(Double.POSITIVE_INFINITY), sd("f2 0f 58 c1", Double.MAX_VALUE, Math.ulp(Double.MAX_VALUE) / 4, 0x1F80 | RU));
    }

    @Test void unmaskedExceptionRaisesXmOrUdAndLeavesTheDestination() {
        f.xmmD(0, 1.0, 0);
        f.xmmD(1, 0.0, 0);
        f.c.mxcsr = 0x1F80 & ~(ZE << 7);
        assertEquals(Exceptions.XM, f.exec("f2 0f 5e c1"));
        assertEquals(1.0, f.d(0, 0));
        assertEquals(ZE, flags());
        f.c.cr4 &= ~Cpu.CR4_OSXMMEXCPT;
        assertEquals(Exceptions.UD, f.exec("f2 0f 5e c1"));
    }

    @Test void conversionsToIntegerRoundPerMxcsrAndReturnIndefinite() {
        double[] in = {2.5, 3.5, -2.5, -2.7, 0x1p31, -0x1p31, Double.NaN};
        long[] rn = {2, 4, 0xFFFF_FFFEL, 0xFFFF_FFFDL, 0x8000_0000L, 0x8000_0000L, 0x8000_0000L};
        int[] fl = {PE, PE, PE, PE, IE, 0, IE};
        for (int i = 0; i < in.length; i++) {
            f.c.mxcsr = 0x1F80;
            f.xmmD(1, in[i], 0);
            f.c.r[Cpu.RAX] = -1;
            f.ok("f2 0f 2d c1"); // CVTSD2SI eax, xmm1
            assertEquals(rn[i], f.c.r[Cpu.RAX], "CVTSD2SI " + in[i]);
            assertEquals(fl[i], flags(), "flags for " + in[i]);
        }
        f.c.mxcsr = 0x1F80 | RU;
        f.xmmD(1, 2.1, 0);
        f.ok("f2 0f 2d c1");
        assertEquals(3, f.c.r[Cpu.RAX]);
        f.ok("f2 0f 2c c1"); // CVTTSD2SI truncates regardless of RC
        assertEquals(2, f.c.r[Cpu.RAX]);
        f.xmmD(1, 1e19, 0);
        f.ok("f2 48 0f 2d c1");
        assertEquals(Long.MIN_VALUE, f.c.r[Cpu.RAX]);
        f.xmmF(1, -7.75f, 0, 0, 0);
        f.c.mxcsr = 0x1F80;
        f.ok("f3 48 0f 2c c1"); // CVTTSS2SI rax, xmm1
        assertEquals(-7, f.c.r[Cpu.RAX]);
    }

    @Test void conversionsFromIntegerRoundPerMxcsr() {
        f.c.mxcsr = 0x1F80;
        f.c.r[Cpu.RAX] = 16777217;
        f.xmmF(0, 9, 9, 9, 9);
        f.ok("f3 0f 2a c0"); // CVTSI2SS xmm0, eax
        assertEquals(16777216f, f.f(0, 0));
        assertEquals(9f, f.f(0, 1));
        assertEquals(PE, flags());
        f.c.mxcsr = 0x1F80 | RU;
        f.ok("f3 0f 2a c0");
        assertEquals(16777218f, f.f(0, 0));
        f.c.r[Cpu.RAX] = -1L;
        f.ok("f2 48 0f 2a c0"); // CVTSI2SD xmm0, rax
        assertEquals(-1.0, f.d(0, 0));
        f.c.r[Cpu.RAX] = 0xFFFF_FFFFL;
        f.ok("f2 0f 2a c0"); // 32-bit source is signed
        assertEquals(-1.0, f.d(0, 0));
    }

    @Test void floatDoubleConversions() {
        f.c.mxcsr = 0x1F80;
        f.xmm(1, 0x7FF4_0000_2000_0000L, 0);
        f.ok("f2 0f 5a c1"); // CVTSD2SS of an SNaN keeps the top payload bits
        assertEquals(0x7FE0_0001, f.fbits(0, 0));
        assertEquals(IE, flags());
        f.c.mxcsr = 0x1F80;
        f.xmmD(1, 1e300, 0);
        f.ok("f2 0f 5a c1");
        assertEquals(Float.POSITIVE_INFINITY, f.f(0, 0));
        assertEquals(OE | PE, flags());
        f.xmmF(1, 1.5f, -0.0f, 0, 0);
        f.ok("0f 5a c1"); // CVTPS2PD
        assertEquals(1.5, f.d(0, 0));
        assertEquals(Long.MIN_VALUE, f.hi(0));
        f.c.mxcsr = 0x1F80;
        f.xmmF(1, 3e9f, -1.5f, 2.5f, Float.NaN);
        f.ok("f3 0f 5b c1"); // CVTTPS2DQ
        assertEquals(0x8000_0000, f.fbits(0, 0));
        assertEquals(-1, f.fbits(0, 1));
        assertEquals(2, f.fbits(0, 2));
        assertEquals(0x8000_0000, f.fbits(0, 3));
        assertEquals(IE | PE, flags());
        f.ok("66 0f 5b c1"); // CVTPS2DQ (nearest even)
        assertEquals(-2, f.fbits(0, 1));
        assertEquals(2, f.fbits(0, 2));
        f.xmmD(1, -3.5, 7.0);
        f.ok("f2 0f e6 c1"); // CVTPD2DQ
        assertEquals(-4, f.fbits(0, 0));
        assertEquals(7, f.fbits(0, 1));
        assertEquals(0, f.hi(0));
        f.xmm(1, 0xFFFF_FFFF_0000_0005L, 0);
        f.ok("f3 0f e6 c1"); // CVTDQ2PD
        assertEquals(5.0, f.d(0, 0));
        assertEquals(-1.0, f.d(0, 1));
    }

    @Test void comisAndUcomisSetZfPfCfAndClearTheRest() {
        f.c.setRflags(Flags.OF | Flags.SF | Flags.AF | 2);
        f.c.mxcsr = 0x1F80;
        f.xmmD(0, 1.0, 0);
        f.xmmD(1, 2.0, 0);
        f.ok("66 0f 2e c1");
        assertEquals(Flags.CF, f.rflags());
        f.xmmD(1, 1.0, 0);
        f.ok("66 0f 2e c1");
        assertEquals(Flags.ZF, f.rflags());
        f.xmmD(1, 0.5, 0);
        f.ok("66 0f 2e c1");
        assertEquals(0, f.rflags());
        f.xmmD(1, Double.NaN, 0);
        f.ok("66 0f 2e c1");
        assertEquals(Flags.ZF | Flags.PF | Flags.CF, f.rflags());
        assertEquals(0, flags());
        f.ok("66 0f 2f c1"); // COMISD signals on QNaN
        assertEquals(IE, flags());
        f.c.mxcsr = 0x1F80;
        f.xmmF(0, -0.0f, 0, 0, 0);
        f.xmmF(1, 0.0f, 0, 0, 0);
        f.ok("0f 2f c1"); // COMISS -0 vs +0: equal
        assertEquals(Flags.ZF, f.rflags());
    }

    @Test void cmppsPredicates() {
        f.c.mxcsr = 0x1F80;
        f.xmmF(0, 1f, 2f, Float.NaN, 3f);
        f.xmmF(1, 2f, 2f, 1f, Float.NaN);
        f.xmm(2, f.lo(0), f.hi(0));
        f.ok("0f c2 c1 01"); // CMPLTPS
        assertEquals(-1, f.fbits(0, 0));
        assertEquals(0, f.fbits(0, 1));
        assertEquals(0, f.fbits(0, 2));
        assertEquals(0, f.fbits(0, 3));
        assertEquals(IE, flags());
        f.c.mxcsr = 0x1F80;
        f.xmm(0, f.lo(2), f.hi(2));
        f.ok("0f c2 c1 04"); // CMPNEQPS: quiet predicate
        assertEquals(0x0000_0000_FFFF_FFFFL, f.lo(0));
        assertEquals(-1L, f.hi(0));
        assertEquals(0, flags());
        f.xmm(0, f.lo(2), f.hi(2));
        f.ok("0f c2 c1 07"); // CMPORDPS
        assertEquals(-1L, f.lo(0));
        assertEquals(0, f.hi(0));
        f.xmmD(3, 1.0, 5.0);
        f.xmmD(4, 1.0, 0.0);
        f.ok("f2 0f c2 dc 02"); // CMPLESD
        assertEquals(-1L, f.lo(3));
        assertEquals(5.0, f.d(3, 1));
    }

    @Test void minMaxReturnTheSecondOperandForNaNsAndZeros() {
        f.c.mxcsr = 0x1F80;
        f.xmmD(0, Double.NaN, 0);
        f.xmmD(1, 1.0, 0);
        f.ok("f2 0f 5d c1");
        assertEquals(1.0, f.d(0, 0));
        assertEquals(IE, flags());
        f.xmmD(0, -0.0, 0);
        f.xmmD(1, 0.0, 0);
        f.ok("f2 0f 5d c1");
        assertEquals(0L, f.lo(0));
        f.xmmF(0, 1f, -5f, 7f, 0f);
        f.xmmF(1, 2f, -6f, 7f, Float.intBitsToFloat(0x7F800001));
        f.ok("0f 5f c1"); // MAXPS
        assertEquals(2f, f.f(0, 0));
        assertEquals(-5f, f.f(0, 1));
        assertEquals(0x7F80_0001, f.fbits(0, 3)); // SNaN source returned unchanged
    }

    @Test void packedSingleArithmeticMatchesIeee() {
        f.c.mxcsr = 0x1F80;
        f.xmmF(0, 1f, 1e30f, 3f, 16f);
        f.xmmF(1, 3f, 1e30f, 0.1f, 0f);
        f.ok("0f 5e c1"); // DIVPS
        assertEquals(1f / 3f, f.f(0, 0));
        assertEquals(1f, f.f(0, 1));
        assertEquals(3f / 0.1f, f.f(0, 2));
        assertEquals(Float.POSITIVE_INFINITY, f.f(0, 3));
        assertEquals(ZE | PE, flags());
        f.xmmF(1, 16f, 2f, -4f, 0.25f);
        f.ok("0f 51 c1"); // SQRTPS
        assertEquals(4f, f.f(0, 0));
        assertEquals((float) Math.sqrt(2), f.f(0, 1));
        assertEquals(0xFFC0_0000, f.fbits(0, 2));
        assertEquals(0.5f, f.f(0, 3));
    }

    @Test void reciprocalApproximationsHandleSpecialValues() {
        f.xmmF(1, 2f, 0f, 0f, 0f);
        f.ok("f3 0f 53 c1"); // RCPSS
        assertEquals(0.5f, f.f(0, 0));
        f.xmmF(1, -0f, 4f, -1f, Float.POSITIVE_INFINITY);
        f.ok("0f 52 c1"); // RSQRTPS
        assertEquals(Float.NEGATIVE_INFINITY, f.f(0, 0));
        assertEquals(0.5f, f.f(0, 1));
        assertEquals(0xFFC0_0000, f.fbits(0, 2));
        assertEquals(0f, f.f(0, 3));
    }

    @Test void denormalOperandIsNotReportedWithInvalidOrDivideByZero() {
        sd("f2 0f 5e c1", 0x1p-1070, 0.0, 0x1F80); // denormal / 0
        assertEquals(ZE, flags());
        sd("f2 0f 51 c1", 0, -0x1p-1070, 0x1F80); // sqrt(-denormal)
        assertEquals(IE, flags());
    }

    @Test void flushToZeroAppliesToAnUnroundedDenormalSum() {
        assertEquals(Long.MIN_VALUE, sd("f2 0f 58 c1", -0x1p-1070, 0.0, 0x1F80 | FTZ));
        assertEquals(DE | UE | PE, flags());
    }

    @Test void minMaxReturnADazZeroedSecondOperandForNaN() {
        f.c.mxcsr = 0x1F80 | DAZ;
        f.xmmD(0, Double.NaN, 0);
        f.xmmD(1, -0x1p-1070, 0);
        f.ok("f2 0f 5d c1");
        assertEquals(Long.MIN_VALUE, f.lo(0));
        assertEquals(IE, flags());
    }

    // Unmasked responses, as observed on the AMD host through the oracle (-Doracle.unmasked=true).

    @Test void anUnmaskedPreComputationExceptionHidesTheOtherLanesPostComputationFlags() {
        f.c.mxcsr = 0x1F80 & ~(IE << 7); // IE unmasked
        f.xmm(0, 0x7F80_0001L | (long) Float.floatToRawIntBits(1f) << 32, 0); // lane 0 SNaN, lane 1 1.0
        f.xmm(1, Float.floatToRawIntBits(1f) | (long) Float.floatToRawIntBits(0x1p-30f) << 32, 0); // 1 + 2^-30: inexact
        assertEquals(Exceptions.XM, f.exec("0f 58 c1")); // ADDPS
        assertEquals(IE, flags());
        assertEquals(0x7F80_0001L, f.lo(0) & 0xFFFF_FFFFL); // destination unchanged
    }

    @Test void unmaskedUnderflowIsSignalledForAnExactTinyResult() {
        f.c.mxcsr = 0x1F80 & ~(UE << 7);
        f.xmmF(0, 0x1p-100f, 0, 0, 0);
        f.xmmF(1, 0x1p-30f, 0, 0, 0);
        assertEquals(Exceptions.XM, f.exec("f3 0f 59 c1")); // MULSS: 2^-130, a denormal, exactly
        assertEquals(UE, flags());
        f.c.mxcsr = 0x1F80;                                  // masked: exact tiny results are no underflow
        f.ok("f3 0f 59 c1");
        assertEquals(0, flags());
    }

    @Test void unmaskedUnderflowReportsInexactOnlyForTheUnboundedExponentResult() {
        f.c.mxcsr = 0x1F80 & ~(UE << 7);
        f.xmm(0, 1, 0);                                      // 2^-149, the smallest denormal
        f.xmmF(1, 0.5f, 0, 0, 0);
        assertEquals(Exceptions.XM, f.exec("f3 0f 59 c1")); // 2^-150 rounds to 0, but is exact in 24 bits
        assertEquals(DE | UE, flags());
        f.c.mxcsr = 0x1F80 & ~(UE << 7);
        f.xmmF(0, 0x1.000002p-100f, 0, 0, 0);
        f.xmmF(1, 0x1.000002p-30f, 0, 0, 0);
        assertEquals(Exceptions.XM, f.exec("f3 0f 59 c1")); // 2^-130 * (1 + 2^-22 + 2^-46): not exact in 24 bits
        assertEquals(UE | PE, flags());
    }

    @Test void unmaskedOverflowReportsInexactOnlyForTheUnboundedExponentResult() {
        f.c.mxcsr = 0x1F80 & ~(OE << 7);
        f.xmmF(0, 0x1p100f, 0, 0, 0);
        f.xmmF(1, 0x1p100f, 0, 0, 0);
        assertEquals(Exceptions.XM, f.exec("f3 0f 59 c1")); // 2^200: exact in 24 bits
        assertEquals(OE, flags());
        f.c.mxcsr = 0x1F80;
        f.ok("f3 0f 59 c1");                                 // masked: infinity, OE and PE
        assertEquals(OE | PE, flags());
    }
}

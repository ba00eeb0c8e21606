package dev.polyvisor.cpu.exec;

import org.junit.jupiter.api.Test;

import java.util.SplittableRandom;

import static dev.polyvisor.cpu.exec.SoftFloat.*;
import static org.junit.jupiter.api.Assertions.*;

class SoftFloatTest {
    private static double rnd(SplittableRandom r) {
        // Wide exponent spread including subnormals.
        return Double.longBitsToDouble(r.nextLong() & ~(1L << 62 | 1L << 61)) * Math.scalb(1.0, r.nextInt(-200, 200));
    }

    @Test void roundToNearestAgreesWithJavaDoubleArithmetic() {
        SplittableRandom r = new SplittableRandom(1);
        for (int i = 0; i < 20000; i++) {
            double a = rnd(r), b = rnd(r);
            if (a == 0 || b == 0 || Double.isNaN(a) || Double.isNaN(b) || Double.isInfinite(a) || Double.isInfinite(b)) continue;
            Exact x = ofDouble(a), y = ofDouble(b);
            Exact s = add(x, y);
            if (s != null) assertEquals(Double.doubleToRawLongBits(a + b), round(s, F64, RN).f64(), a + " + " + b);
            assertEquals(Double.doubleToRawLongBits(a * b), round(mul(x, y), F64, RN).f64(), a + " * " + b);
            assertEquals(Double.doubleToRawLongBits(a / b), round(div(x, y, 53), F64, RN).f64(), a + " / " + b);
            double aa = Math.abs(a);
            assertEquals(Double.doubleToRawLongBits(Math.sqrt(aa)), round(sqrt(ofDouble(aa), 53), F64, RN).f64(), "sqrt " + aa);
            float fa = (float) a, fb = (float) b;
            if (fa != 0 && fb != 0 && Float.isFinite(fa) && Float.isFinite(fb))
                assertEquals(Float.floatToRawIntBits(fa / fb), (int) round(div(ofFloat(fa), ofFloat(fb), 24), F32, RN).f32(), fa + " / " + fb);
        }
    }

    @Test void directedRoundingBracketsTheExactResult() {
        Exact third = div(ofDouble(1), ofDouble(3), 53);
        double down = Double.longBitsToDouble(round(third, F64, RD).f64());
        double up = Double.longBitsToDouble(round(third, F64, RU).f64());
        assertEquals(Math.nextUp(down), up);
        assertEquals(down, Double.longBitsToDouble(round(third, F64, RZ).f64()));
        assertEquals(PE, round(third, F64, RU).flags());
    }

    @Test void extendedImagesConvertExactlyAndRoundCorrectly() {
        long[] one = doubleToExt(1.0);
        assertEquals(0x8000_0000_0000_0000L, one[0]);
        assertEquals(0x3FFF, one[1]);
        long[] den = doubleToExt(Double.MIN_VALUE);
        assertEquals(0x8000_0000_0000_0000L, den[0]);
        assertEquals(16383 - 1074, den[1]);
        assertEquals(Double.MIN_VALUE, extToDouble(den[0], (int) den[1]));
        // pi as an 80-bit constant rounds to Math.PI.
        assertEquals(Math.PI, extToDouble(0xC90F_DAA2_2168_C235L, 0x4000));
        // 1 + 2^-63 is exact in 80 bits and rounds (ties-to-even) to 1.0 in double.
        assertEquals(1.0, extToDouble(0x8000_0000_0000_0001L, 0x3FFF));
        Rounded r = round(ofExt(0x8000_0000_0000_0001L, 0x3FFF), F64, RU);
        assertEquals(Math.nextUp(1.0), Double.longBitsToDouble(r.f64()));
    }

    @Test void integerConversionReportsOverflowAndInexactness() {
        IntResult r = toInteger(ofDouble(-2.5), RN, 32);
        assertEquals(-2, r.value());
        assertTrue(r.inexact());
        assertTrue(toInteger(ofDouble(0x1p31), RN, 32).overflow());
        assertFalse(toInteger(ofDouble(-0x1p31), RN, 32).overflow());
        assertEquals(Integer.MIN_VALUE, toInteger(ofDouble(-0x1p31), RN, 32).value());
    }
}

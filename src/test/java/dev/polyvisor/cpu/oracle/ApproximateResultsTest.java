package dev.polyvisor.cpu.oracle;

import org.junit.jupiter.api.Test;

import static org.junit.jupiter.api.Assertions.*;

/** The RCP/RSQRT tolerance check, on results recorded from the AMD EPYC host. */
class ApproximateResultsTest {
    static int f(float v) { return Float.floatToRawIntBits(v); }

    @Test void hostApproximationsOfNormalInputsAreAcceptedWithinTheBound() {
        // AMD: rcp(1.0) = 3F7FF000 (1 - 2^-12), rsqrt(2.0) = 3F350000; the emulator rounds correctly.
        assertNull(ApproximateResults.check(f(1f), 0x3F7F_F000, f(1f), false));
        assertNull(ApproximateResults.check(f(2f), 0x3F35_0000, f((float) (1 / Math.sqrt(2))), true));
    }

    @Test void resultsOutsideTheBoundAreRejected() {
        int far = f(1f + 2f / 4096);
        assertNotNull(ApproximateResults.check(f(1f), 0x3F7F_F000, far, false));
        assertNotNull(ApproximateResults.check(f(1f), 0x3F7F_F000, f(-1f), false));   // wrong sign
        assertNotNull(ApproximateResults.check(f(4f), f(0.5f), 0, true));              // zero for a normal result
    }

    @Test void specialInputsHaveExactlyOneResult() {
        assertEquals(0x7F80_0000, ApproximateResults.exactResult(0x0000_0001, false)); // denormal: +inf
        assertEquals(0xFF80_0000, ApproximateResults.exactResult(0x8000_0000, true));  // -0: -inf
        assertEquals(0xFFC0_0000, ApproximateResults.exactResult(f(-4f), true));       // negative: indefinite
        assertEquals(0xFFC0_0000, ApproximateResults.exactResult(0xFF80_0000, true));  // -inf: indefinite
        assertEquals(0x8000_0000, ApproximateResults.exactResult(0xFF80_0000, false)); // rcp(-inf) = -0
        assertEquals(0x7FE0_0000, ApproximateResults.exactResult(0x7FA0_0000, false)); // SNaN quieted
        assertNull(ApproximateResults.exactResult(f(3f), false));
        assertNotNull(ApproximateResults.check(0x7FA0_0000, 0x7FE0_0000, 0x7FA0_0000, false));
    }

    @Test void tinyReciprocalsMayBeFlushedToASignedZero() {
        // AMD: rcp(2^126) = 0 (its approximation falls below the smallest normal); 2^-126 exactly is fine too.
        assertNull(ApproximateResults.check(0x7E80_0000, 0, 0x0080_0000, false));
        assertNotNull(ApproximateResults.check(0xFE80_0000, 0, 0x8080_0000, false)); // zero of the wrong sign
        assertNotNull(ApproximateResults.check(0x7E00_0000, 0, 0x0100_0000, false)); // 2^-125 is not tiny
    }
}

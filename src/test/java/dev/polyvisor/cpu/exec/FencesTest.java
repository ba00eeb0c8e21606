package dev.polyvisor.cpu.exec;

import dev.polyvisor.cpu.Cpu;
import dev.polyvisor.cpu.Exceptions;
import org.junit.jupiter.api.AfterEach;
import org.junit.jupiter.api.Test;

import static org.junit.jupiter.api.Assertions.*;

/** LFENCE, MFENCE, SFENCE (NP 0F AE E8/F0/F8) and CLFLUSH (0F AE /7 memory). */
class FencesTest {
    final FpuTestFixture f = new FpuTestFixture();

    @AfterEach void close() { f.close(); }

    @Test void fencesRunWithoutAPrefixWhateverTheRmField() {
        f.ok("0f ae e8");    // LFENCE
        f.ok("0f ae f5");    // MFENCE, rm 5
        f.ok("48 0f ae ff"); // SFENCE, REX.W ignored
    }

    @Test void fencesWithA66F2OrF3PrefixAreUndefined() {
        // 66/F2/F3 0F AE /5-/7 registers are TPAUSE, UMWAIT, UMONITOR, INCSSP...: #UD on the AMD host.
        assertEquals(Exceptions.UD, f.exec("66 0f ae e8"));
        assertEquals(Exceptions.UD, f.exec("66 0f ae f0"));
        assertEquals(Exceptions.UD, f.exec("66 48 0f ae f8"));
        assertEquals(Exceptions.UD, f.exec("f2 0f ae f0"));
        assertEquals(Exceptions.UD, f.exec("f3 0f ae e8"));
    }

    @Test void xrstorAndXsaveoptMemoryFormsAreUndefinedAndClflushChecksTheAddress() {
        f.c.r[Cpu.RAX] = FpuTestFixture.DATA;
        assertEquals(Exceptions.UD, f.exec("0f ae 28")); // XRSTOR: no XSAVE in the model
        assertEquals(Exceptions.UD, f.exec("0f ae 30")); // XSAVEOPT
        f.ok("0f ae 38");                                // CLFLUSH
        f.ok("66 0f ae 38");                             // CLFLUSHOPT runs as CLFLUSH
        f.c.r[Cpu.RAX] = FpuTestFixture.UNMAPPED;
        assertEquals(Exceptions.PF, f.exec("0f ae 38"));
    }
}

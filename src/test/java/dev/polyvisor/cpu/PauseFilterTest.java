package dev.polyvisor.cpu;

import static org.junit.jupiter.api.Assertions.*;

import org.junit.jupiter.api.Test;

/** PAUSE and the VMM's pause filter (PauseFilter, APM Vol. 2 15.14.4): a tight PAUSE loop yields the quantum. */
class PauseFilterTest {
    private static final long BUDGET = 1_000_000;

    @Test
    void aSpinLoopLeavesItsQuantumAfterTheFilterCount() {
        try (SystemFixture f = new SystemFixture()) {
            f.long64();
            f.program(64, SystemFixture.KCODE, """
                    spin:
                    pause
                    cmp dword ptr [0x800], 0
                    je spin
                    hlt
                    """);
            VcpuExit e = f.vcpu.run(BUDGET);
            assertInstanceOf(VcpuExit.Interrupted.class, e);
            long n = f.cpu.instructionsRetired;
            assertTrue(n < 3 * PauseFilter.COUNT + 10 && n >= 3L * PauseFilter.COUNT - 3, "yielded after " + n + " instructions");
            assertEquals(SystemFixture.KCODE + 2, f.cpu.rip, "resumes after the PAUSE");
            // The next quantum spins again, then the lock is released: on to HLT.
            assertInstanceOf(VcpuExit.Interrupted.class, f.vcpu.run(BUDGET));
            f.mem.writePhys(0x800, 4, 1);
            assertInstanceOf(VcpuExit.Halt.class, f.vcpu.run(BUDGET));
        }
    }

    @Test
    void pausesFarApartAndPlainNopsDoNotYield() {
        try (SystemFixture f = new SystemFixture()) {
            f.long64();
            // PAUSE every ~200 instructions: beyond the filter threshold, so the count restarts each time.
            f.program(64, SystemFixture.KCODE, """
                    mov ecx, 20000
                    outer:
                    pause
                    mov eax, 100
                    inner:
                    dec eax
                    jnz inner
                    dec ecx
                    jnz outer
                    mov ecx, 20000
                    nops:
                    nop
                    dec ecx
                    jnz nops
                    hlt
                    """);
            assertInstanceOf(VcpuExit.Halt.class, f.vcpu.run(100_000_000));
        }
    }
}

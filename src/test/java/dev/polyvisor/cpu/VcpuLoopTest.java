package dev.polyvisor.cpu;

import dev.polyvisor.cpu.exec.Isa;
import dev.polyvisor.cpu.jit.JitMode;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.Timeout;

import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertInstanceOf;

/**
 * A compiled trace whose taken branch goes back to its own start runs again in place (Vcpu.loopsBack)
 * instead of going round the run loop; the budget, stop requests and interrupt polls must still
 * fall at the trace boundaries where the run loop puts them. The loop below is one trace of three
 * instructions (ADD, CMP, JNE taken back to its start; the HLT after it is never reached), run by a vCPU
 * whose JIT compiles every trace on first use ({@link JitMode#ALWAYS}); the expected counts are those of
 * the run loop's rules, which the interpreter follows.
 */
@Timeout(30)
class VcpuLoopTest {
    private static final String LOOP = "again:\nadd rax, 1\ncmp rax, -1\njne again\nhlt";

    /** The fixture's CPU and RAM with a vCPU of its own whose trace cache compiles every trace. */
    private static Vcpu compiling(LongModeFixture f) {
        return new Vcpu(f.cpu, new TraceCache(Isa.table(), f.cpu.mmu.codePages(), JitMode.ALWAYS));
    }

    private static VcpuExit start(LongModeFixture f, Vcpu v, long budget) {
        f.mem.load(LongModeFixture.CODE, Asm.assemble(64, LOOP));
        f.cpu.rip = LongModeFixture.CODE;
        return v.run(budget);
    }

    @Test
    void aSelfLoopStopsAtTheFirstTraceBoundaryAtOrPastTheBudget() {
        try (LongModeFixture f = new LongModeFixture()) {
            // The run loop starts a trace while fewer than 10 instructions have retired: at 0, 3, 6 and 9.
            Vcpu v = compiling(f);
            assertInstanceOf(VcpuExit.Interrupted.class, start(f, v, 10));
            assertEquals(12, f.cpu.instructionsRetired);
            assertEquals(4, f.cpu.r[Cpu.RAX]);
            assertEquals(LongModeFixture.CODE, f.cpu.rip);
            // And it goes on from there with the next quantum.
            assertInstanceOf(VcpuExit.Interrupted.class, v.run(1));
            assertEquals(5, f.cpu.r[Cpu.RAX]);
        }
    }

    @Test
    void aStopRequestedDuringTheLoopEndsTheRunAtTheNextTraceBoundary() {
        try (LongModeFixture f = new LongModeFixture()) {
            Vcpu v = compiling(f);
            f.cpu.interrupts = new InterruptSource() { // asks for the stop from inside the loop, as another thread may
                @Override public boolean hasPending() {
                    // By the retired count: inside the compiled loop RAX lives in a local, the Cpu's copy is stale.
                    if (f.cpu.instructionsRetired == 3 * 48) v.interrupt();
                    return false;
                }
                @Override public int acknowledge() { return -1; }
            };
            f.cpu.rflags |= Flags.IF;
            assertInstanceOf(VcpuExit.Interrupted.class, start(f, v, 1_000_000));
            assertEquals(f.cpu.instructionsRetired, 3 * f.cpu.r[Cpu.RAX], "whole iterations only");
            // Polls come before traces 1, 17, 33, 49: the one at RAX = 48 asks for the stop; the run loop polls
            // after its stop check, so trace 49 still runs and the stop is taken before trace 50.
            assertEquals(49, f.cpu.r[Cpu.RAX]);
        }
    }

    @Test
    void theInterruptControllerIsAcknowledgedEverySixteenTracesWhileIfIsSet() {
        try (LongModeFixture f = new LongModeFixture()) {
            int[] acks = {0};
            f.cpu.interrupts = new InterruptSource() { // always pending, always spurious: only the polls show
                @Override public boolean hasPending() { return true; }
                @Override public int acknowledge() { acks[0]++; return -1; }
            };
            f.cpu.rflags |= Flags.IF;
            // 40 traces (120 instructions): polled before traces 1, 17 and 33 (Vcpu.POLL_TRACES = 16).
            assertInstanceOf(VcpuExit.Interrupted.class, start(f, compiling(f), 120));
            assertEquals(40, f.cpu.r[Cpu.RAX]);
            assertEquals(3, acks[0]);
        }
    }
}

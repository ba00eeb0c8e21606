package dev.polyvisor.cpu.jit;

import dev.polyvisor.cpu.Asm;
import dev.polyvisor.cpu.Cpu;
import dev.polyvisor.cpu.LongModeFixture;
import dev.polyvisor.cpu.Trace;
import dev.polyvisor.cpu.VcpuExit;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.Timeout;

import java.util.ArrayList;
import java.util.List;

import static dev.polyvisor.cpu.LongModeFixture.CODE;
import static dev.polyvisor.cpu.LongModeFixture.DATA;
import static org.junit.jupiter.api.Assertions.*;

/**
 * A compiled region (a trace and the traces its branches reach in the same page, TraceCompiler.compile(t, more))
 * runs its loops in place with the guest registers in locals; seen from outside it must be the interpreter: the
 * same state after every quantum of any size (so icount runs stay identical), and after a fault inside the inner
 * loop the registers the loop had only in locals are in the Cpu.
 */
@Timeout(60)
class RegionTest {
    /** Nested loops: the inner loop's trace starts at "inner", the outer's at "outer"; each reaches the other. */
    private static final String NESTED = """
            mov ecx, 40
            outer:
            mov edx, 25
            inner:
            add rax, rdx
            mov [rbx+rsi*8], rax
            imul r8, rax, 3
            sub edx, 1
            jnz inner
            add rsi, 1
            xor r9, r8
            sub ecx, 1
            jnz outer
            hlt
            """;

    /** The same loops counted down with DEC, whose JNZ tests the lazy record through Flags.cond (no known operation). */
    private static final String NESTED_DEC = NESTED.replace("sub edx, 1", "dec edx").replace("sub ecx, 1", "dec ecx");

    private static long address(String program, String label) {
        String before = program.substring(0, program.indexOf(label + ":"));
        return CODE + Asm.assemble(64, before).length;
    }

    private static LongModeFixture machine(boolean compiled) throws Throwable { return machine(NESTED, compiled); }

    /** A machine with the program loaded; {@code compiled}: the two loops run as regions of each other. */
    private static LongModeFixture machine(String program, boolean compiled) throws Throwable {
        LongModeFixture m = new LongModeFixture();
        m.mem.load(CODE, Asm.assemble(64, program));
        m.cpu.rip = CODE;
        m.cpu.r[Cpu.RBX] = DATA;
        if (compiled) {
            long outer = address(program, "outer"), inner = address(program, "inner");
            Trace o = m.traces.lookup(m.cpu, outer, outer), i = m.traces.lookup(m.cpu, inner, inner);
            TraceCompiler compiler = new TraceCompiler(true);
            o.compiled = compiler.compile(o, List.of(i));
            i.compiled = compiler.compile(i, List.of(o));
        }
        return m;
    }

    /** The Vcpu's state after each run(budget) until HLT: retired count, RIP and the registers the loops use. */
    private static List<String> quanta(LongModeFixture m, long budget) {
        List<String> states = new ArrayList<>();
        for (int k = 0; k < 100_000; k++) {
            VcpuExit e = m.vcpu.run(budget);
            Cpu c = m.cpu;
            states.add(c.instructionsRetired + " " + Long.toHexString(c.rip) + " " + c.r[Cpu.RAX] + " " + c.r[Cpu.RCX] + " "
                    + c.r[Cpu.RDX] + " " + c.r[Cpu.RSI] + " " + c.r[8] + " " + c.r[9] + " " + c.getRflags());
            if (e instanceof VcpuExit.Halt) return states;
        }
        throw new AssertionError("never halted");
    }

    @Test
    void everyQuantumEndsWhereTheInterpretersDoesWithTheSameState() throws Throwable {
        for (long budget : new long[] {1, 7, 64, 1000, 1_000_000}) {
            try (LongModeFixture ref = machine(false); LongModeFixture jit = machine(true)) {
                List<String> want = quanta(ref, budget), got = quanta(jit, budget);
                assertEquals(want, got, "budget " + budget);
                assertEquals(-1, ref.mem.ram.mismatch(jit.mem.ram), "RAM, budget " + budget);
                assertEquals(40L * 25 * 26 / 2, jit.cpu.r[Cpu.RAX], "the sum the loops compute");
            }
        }
    }

    @Test
    void loopsCountedWithDecMatchTheInterpreterAtEveryQuantum() throws Throwable {
        for (long budget : new long[] {1, 13, 1_000_000}) {
            try (LongModeFixture ref = machine(NESTED_DEC, false); LongModeFixture jit = machine(NESTED_DEC, true)) {
                assertEquals(quanta(ref, budget), quanta(jit, budget), "budget " + budget);
                assertEquals(40L * 25 * 26 / 2, jit.cpu.r[Cpu.RAX]);
            }
        }
    }

    @Test
    void aFaultInsideTheInnerLoopLeavesTheLoopsRegistersInTheCpu() throws Throwable {
        // The store's page from 2 MiB + 0x200 * 8 on is not present: the inner loop faults in the outer's second round.
        long pdEntry = LongModeFixture.PML4 + 0x2000 + 8 * ((DATA >> 21) + 1);
        List<String> states = new ArrayList<>();
        for (boolean compiled : new boolean[] {false, true}) {
            try (LongModeFixture m = machine(compiled)) {
                m.mem.writePhys(pdEntry, 8, 0);
                m.cpu.r[Cpu.RBX] = DATA + (2L << 20) - 8 * 30; // rsi = 30 reaches the next 2 MiB page
                m.cpu.mmu.flushAll();
                VcpuExit e = m.vcpu.run(1_000_000); // #PF, no IDT: a triple fault ends the run
                assertInstanceOf(VcpuExit.Shutdown.class, e);
                Cpu c = m.cpu;
                assertEquals(DATA + (2L << 20), c.cr2, "the fault's address");
                states.add(c.instructionsRetired + " " + c.r[Cpu.RAX] + " " + c.r[Cpu.RCX] + " " + c.r[Cpu.RDX] + " "
                        + c.r[Cpu.RSI] + " " + c.r[8] + " " + c.r[9] + " " + c.ccOp + " " + c.ccDst);
            }
        }
        assertEquals(states.get(0), states.get(1), "interpreted vs compiled: retired count, registers, lazy flags");
    }

    /** The NESTED machine with both loops compiled as regions of each other, each wrapped for {@code --jit check}. */
    private static LongModeFixture checkedMachine(Jit jit) throws Throwable {
        LongModeFixture m = machine(true);
        long outer = address(NESTED, "outer"), inner = address(NESTED, "inner");
        for (long at : new long[] {outer, inner}) {
            Trace t = m.traces.lookup(m.cpu, at, at);
            t.compiled = new CheckedTrace(jit, t.compiled);
        }
        return m;
    }

    private static VcpuExit runToHalt(LongModeFixture m) {
        for (int k = 0; k < 1000; k++) {
            VcpuExit e = m.vcpu.run(1_000_000);
            if (e instanceof VcpuExit.Halt) return e;
        }
        throw new AssertionError("never halted");
    }

    @Test
    void checkModeReplaysARegionsInPlaceContinuationsInTheInterpreter() throws Throwable {
        Jit jit = new Jit(JitMode.CHECK, 0, 16, true);
        try (LongModeFixture ref = machine(false); LongModeFixture m = checkedMachine(jit)) {
            runToHalt(m);
            runToHalt(ref);
            assertEquals(40L * 25 * 26 / 2, m.cpu.r[Cpu.RAX]);
            assertEquals(ref.cpu.instructionsRetired, m.cpu.instructionsRetired);
            assertEquals(-1, ref.mem.ram.mismatch(m.mem.ram), "RAM");
            assertTrue(jit.checkedTraces >= 1, "verified, then installed");
            // The outer region runs the inner loop in place: its verified run stops at the bound, and the interpreter
            // replayed every continuation.
            assertEquals(dev.polyvisor.cpu.Vcpu.CHECKED_CONTINUATIONS, jit.checkedContinuations);
        }
    }

    /** A region that continues at {@code next} in place whenever the loop lets it, running it with {@code body}. */
    private static CompiledTrace continuing(Trace next, java.util.function.BiConsumer<Cpu, Trace> body) {
        return new CompiledTrace() {
            @Override public void run(Cpu c, Trace t) { InterpretedRun.INSTANCE.run(c, t); }

            @Override public void run(Cpu c, Trace t, dev.polyvisor.cpu.Vcpu loop) {
                InterpretedRun.INSTANCE.run(c, t);
                while (loop.loopsBack(c, t, next)) body.accept(c, next);
            }
        };
    }

    @Test
    void checkModeCatchesAWrongResultInAContinuationAndAWrongTurn() throws Throwable {
        long inner = address(NESTED, "inner"), outer = address(NESTED, "outer");
        try (LongModeFixture m = machine(false)) {
            Trace i = m.traces.lookup(m.cpu, inner, inner);
            // Right path, wrong arithmetic after the first continuation.
            i.compiled = new CheckedTrace(new Jit(JitMode.CHECK, 0, 16, true), continuing(i, (c, t) -> {
                InterpretedRun.INSTANCE.run(c, t);
                c.r[Cpu.RAX] += 1;
            }));
            JitCheckFailure e = assertThrows(JitCheckFailure.class, () -> runToHalt(m));
            assertTrue(e.getMessage().contains("continuing in place"), e.getMessage());
            assertTrue(e.getMessage().contains("r0: 0x"), e.getMessage());
        }
        try (LongModeFixture m = machine(false)) {
            Trace i = m.traces.lookup(m.cpu, inner, inner), o = m.traces.lookup(m.cpu, outer, outer);
            // Continues at the outer loop's block where the inner loop's branch goes back to "inner".
            i.compiled = new CheckedTrace(new Jit(JitMode.CHECK, 0, 16, true), continuing(o, InterpretedRun.INSTANCE::run));
            JitCheckFailure e = assertThrows(JitCheckFailure.class, () -> runToHalt(m));
            assertTrue(e.getMessage().contains(String.format("continuation 0 went to the block at 0x%x, the interpreter to RIP 0x%x", outer, inner)),
                    e.getMessage());
        }
    }
}

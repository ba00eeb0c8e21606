package dev.polyvisor.cpu.jit;

import dev.polyvisor.cpu.Asm;
import dev.polyvisor.cpu.Cpu;
import dev.polyvisor.cpu.LongModeFixture;
import dev.polyvisor.cpu.Trace;
import org.junit.jupiter.api.Test;

import static dev.polyvisor.cpu.LongModeFixture.CODE;
import static org.junit.jupiter.api.Assertions.*;

/** The JIT's policy: the threshold, the bounded code cache, and the self-check catching a wrong compilation. */
class JitPolicyTest {
    private static final String LOOP = "add rax, 1\ncmp rax, rbx\njne 1f\n1: ret\n";

    private static LongModeFixture machine() {
        LongModeFixture m = new LongModeFixture();
        m.mem.load(CODE, Asm.assemble(64, LOOP));
        m.mem.load(CODE + 0x100, Asm.assemble(64, "add rcx, 1\nret\n"));
        return m;
    }

    @Test
    void aTraceIsCompiledInTheBackgroundWhenTheInstructionsItRetiredExceedTheThresholdAndNotBefore() throws Exception {
        LongModeFixture m = machine();
        Trace t = m.traces.lookup(m.cpu, CODE, CODE);
        int len = t.insns().length;
        assertTrue(len > 1, "the loop trace holds several instructions");
        Jit jit = new Jit(JitMode.ON, 3 * len, 16, true);
        for (int i = 0; i < 3; i++) assertNull(jit.hot(m.cpu, t), "run " + (i + 1));
        jit.drain();
        assertNull(t.compiled, "not queued at the threshold");
        jit.hot(m.cpu, t);
        jit.drain();
        assertNotNull(t.compiled, "installed once the background compilation finished");
        assertEquals(1, jit.compiledTraces);
    }

    @Test
    void heatCountsInstructionsSoALongerTraceIsCompiledAfterFewerRuns() throws Exception {
        LongModeFixture m = machine();
        Trace longer = m.traces.lookup(m.cpu, CODE, CODE), shorter = m.traces.lookup(m.cpu, CODE + 0x100, CODE + 0x100);
        assertTrue(longer.insns().length > shorter.insns().length);
        int threshold = longer.insns().length * shorter.insns().length * 4;
        Jit jit = new Jit(JitMode.ON, threshold, 16, true);
        assertEquals(threshold / longer.insns().length + 1, runsUntilQueued(jit, m.cpu, longer, 0));
        assertEquals(threshold / shorter.insns().length + 1, runsUntilQueued(jit, m.cpu, shorter, 0));
        jit.drain();
        assertNotNull(longer.compiled);
        assertNotNull(shorter.compiled);
    }

    /**
     * With vCPUs on several host threads, {@code --jit on} counts about one run in {@link Jit#HEAT_SAMPLE}, each for
     * that many (their shared traces' heat is written that much less often); every other mode counts every run.
     */
    @Test
    void withVcpusOnSeveralThreadsEachCountedRunWeighsForTheRunsNotCounted() throws Exception {
        LongModeFixture m = machine();
        Trace t = m.traces.lookup(m.cpu, CODE, CODE);
        int len = t.insns().length, threshold = 64 * len;
        Jit sampled = new Jit(JitMode.ON, threshold, 16, true, true);
        assertEquals(Jit.HEAT_SAMPLE, sampled.heatSample);
        assertEquals(threshold / (len * Jit.HEAT_SAMPLE) + 1, runsUntilQueued(sampled, m.cpu, t, 0));
        sampled.drain();
        assertEquals(1, new Jit(JitMode.ON, threshold, 16, true, false).heatSample, "one host thread: every run");
        assertEquals(1, new Jit(JitMode.CHECK, threshold, 16, true, true).heatSample, "check mode: every run");
        assertEquals(1, new Jit(JitMode.ALWAYS, threshold, 16, true, true).heatSample, "always: every run");
    }

    @Test
    void aTraceThatLoopsToItsOwnStartIsCompiledAfterASixteenthOfTheThreshold() throws Exception {
        LongModeFixture m = new LongModeFixture();
        m.mem.load(CODE, Asm.assemble(64, "1: add rax, 1\ncmp rax, rbx\njne 1b\nret\n"));
        m.mem.load(CODE + 0x100, Asm.assemble(64, "add rax, 1\ncmp rax, rbx\njne 1f\n1: ret\n"));
        Trace loop = m.traces.lookup(m.cpu, CODE, CODE), straight = m.traces.lookup(m.cpu, CODE + 0x100, CODE + 0x100);
        assertEquals(loop.insns().length, straight.insns().length, "the same instructions but for the branch target");
        int len = loop.insns().length, threshold = 160 * len;
        Jit jit = new Jit(JitMode.ON, threshold, 16, true);
        assertEquals(threshold / Jit.LOOP_DIVISOR / len + 1, runsUntilQueued(jit, m.cpu, loop, 0));
        assertEquals(threshold / len + 1, runsUntilQueued(jit, m.cpu, straight, 0));
        jit.drain();
    }

    /**
     * Whether a trace loops is asked only once it has run {@link Jit#LOOP_CHECK} instructions (most traces never do),
     * and the head start is then added to what it had counted: the same total as a head start from its first run.
     */
    @Test
    void aLoopGetsItsHeadStartOnlyOnceItHasRunTheCheckMark() {
        LongModeFixture m = new LongModeFixture();
        m.mem.load(CODE, Asm.assemble(64, "1: add rax, 1\ncmp rax, rbx\njne 1b\nret\n"));
        Trace loop = m.traces.lookup(m.cpu, CODE, CODE);
        int len = loop.insns().length, threshold = Jit.DEFAULT_THRESHOLD;
        Jit jit = new Jit(JitMode.ON, threshold, 16, true);
        int runs = 0;
        while (loop.heat + len <= Jit.LOOP_CHECK) {
            assertNull(jit.hot(m.cpu, loop));
            runs++;
            assertEquals(runs * len, loop.heat, "run " + runs + ": counted, no head start yet");
        }
        assertNull(jit.hot(m.cpu, loop));
        runs++;
        int headStart = threshold - threshold / Jit.LOOP_DIVISOR;
        assertEquals(headStart + runs * len, loop.heat, "the head start, added when it passed the mark");
    }

    /** A loop that ran only now and then while it earned its head start loses it and counts to the whole threshold. */
    @Test
    void aLoopThatEarnsItsHeadStartSlowerThanTheWindowCountsToTheWholeThreshold() throws Exception {
        LongModeFixture m = new LongModeFixture();
        m.mem.load(CODE, Asm.assemble(64, "1: add rax, 1\ncmp rax, rbx\njne 1b\nret\n"));
        Trace loop = m.traces.lookup(m.cpu, CODE, CODE);
        int len = loop.insns().length, threshold = 160 * len;
        Jit jit = new Jit(JitMode.ON, threshold, 16, true);
        // Between two of its runs the vCPU retires enough else that the head start takes longer than the window.
        long others = Jit.LOOP_WINDOW / (threshold / Jit.LOOP_DIVISOR / len);
        assertEquals(threshold / len + 1, runsUntilQueued(jit, m.cpu, loop, others));
        jit.drain();
        assertNotNull(loop.compiled, "compiled all the same, at the ordinary threshold");
    }

    /**
     * Calls {@link Jit#hot} until the trace is queued for compilation (its heat turns negative), with the vCPU's count
     * advancing as the interpreter's would by the trace's length and {@code othersBetween} more; the number of calls.
     */
    private static int runsUntilQueued(Jit jit, dev.polyvisor.cpu.Cpu c, Trace t, long othersBetween) {
        int runs = 0;
        while (t.heat >= 0) {
            jit.hot(c, t);
            c.instructionsRetired += t.insns().length + othersBetween;
            runs++;
            assertTrue(runs < 1_000, "never queued");
        }
        return runs;
    }

    @Test
    void alwaysCompilesOnFirstUseAndTheCacheEvictsTheOldestBeyondItsCapacity() {
        LongModeFixture m = machine();
        Jit jit = new Jit(JitMode.ALWAYS, 100, 1, true);
        Trace a = m.traces.lookup(m.cpu, CODE, CODE), b = m.traces.lookup(m.cpu, CODE + 0x100, CODE + 0x100);
        assertNotNull(jit.hot(m.cpu, a));
        assertNotNull(jit.hot(m.cpu, b));
        assertNull(a.compiled, "evicted: the trace dropped its compiled class");
        assertNotNull(b.compiled);
        assertEquals(1, jit.cached());
        assertEquals(1, jit.evictedTraces);
    }

    @Test
    void theVcpuRunsCompiledTracesWithTheInterpretersResult() {
        LongModeFixture m = new LongModeFixture();
        // A counted loop (many runs of one trace), then HLT.
        m.mem.load(CODE, Asm.assemble(64, "mov ecx, 1000\n1: add rax, rcx\nsub ecx, 1\njnz 1b\nhlt\n"));
        LongModeFixture ref = new LongModeFixture();
        ref.mem.load(CODE, Asm.assemble(64, "mov ecx, 1000\n1: add rax, rcx\nsub ecx, 1\njnz 1b\nhlt\n"));
        Trace probe = m.traces.lookup(m.cpu, CODE, CODE);
        assertNotNull(probe);
        for (LongModeFixture f : new LongModeFixture[] {m, ref}) f.cpu.rip = CODE;
        // The fixture's cache runs with the mode of the polyvisor.jit property; use explicit caches instead.
        dev.polyvisor.cpu.TraceCache jitCache = new dev.polyvisor.cpu.TraceCache(dev.polyvisor.cpu.exec.Isa.table(),
                m.cpu.mmu.codePages(), JitMode.ALWAYS);
        dev.polyvisor.cpu.TraceCache offCache = new dev.polyvisor.cpu.TraceCache(dev.polyvisor.cpu.exec.Isa.table(),
                ref.cpu.mmu.codePages(), JitMode.OFF);
        new dev.polyvisor.cpu.Vcpu(m.cpu, jitCache).run(1_000_000);
        new dev.polyvisor.cpu.Vcpu(ref.cpu, offCache).run(1_000_000);
        assertEquals(500_500, m.cpu.r[Cpu.RAX]);
        assertEquals(ref.cpu.instructionsRetired, m.cpu.instructionsRetired);
        assertEquals(ref.cpu.rip, m.cpu.rip);
        assertTrue(jitCache.jit().compiledTraces >= 2, "the loop body and the entry were compiled");
    }

    @Test
    void checkModeStopsWithAClearMessageWhenACompiledTraceDiffersFromTheInterpreter() throws Throwable {
        LongModeFixture m = machine();
        Trace t = m.traces.lookup(m.cpu, CODE, CODE);
        m.cpu.rip = CODE;
        m.cpu.r[Cpu.RSP] = LongModeFixture.STACK_TOP;
        CompiledTrace good = new TraceCompiler(true).compile(t);
        CompiledTrace wrong = (c, tr) -> { good.run(c, tr); c.r[Cpu.RAX] += 1; };
        Jit jit = new Jit(JitMode.CHECK, 0, 16, true);
        CheckedTrace checked = new CheckedTrace(jit, wrong);
        t.compiled = checked;
        JitCheckFailure e = assertThrows(JitCheckFailure.class, () -> checked.run(m.cpu, t));
        assertTrue(e.getMessage().contains("r0: 0x1 vs 0x2"), e.getMessage());
        assertTrue(e.getMessage().contains("physical 0x10000"), e.getMessage());

        LongModeFixture m2 = machine();
        Trace t2 = m2.traces.lookup(m2.cpu, CODE, CODE);
        m2.cpu.rip = CODE;
        m2.cpu.r[Cpu.RSP] = LongModeFixture.STACK_TOP;
        CheckedTrace ok = new CheckedTrace(jit, new TraceCompiler(true).compile(t2));
        t2.compiled = ok;
        ok.run(m2.cpu, t2);
        assertEquals(1, m2.cpu.r[Cpu.RAX], "the checked run's effects happen once");
        assertEquals(1, jit.checkedTraces);
        assertNotSame(ok, t2.compiled, "verified: the trace runs the compiled class from now on");
    }
}

package dev.polyvisor.cpu.jit;

import dev.polyvisor.cpu.Cpu;
import dev.polyvisor.cpu.CpuFault;
import dev.polyvisor.cpu.Platform;
import dev.polyvisor.cpu.Trace;
import dev.polyvisor.cpu.Vcpu;
import dev.polyvisor.cpu.decode.Insn;
import dev.polyvisor.cpu.mmu.WriteJournal;

import java.util.ArrayList;
import java.util.Arrays;
import java.util.List;
import java.util.stream.Collectors;

/**
 * {@link JitMode#CHECK}: a newly compiled trace, verified on its first repeatable run (reference/cpu-design.md
 * 1.10, "self-check mode"). The interpreter runs the trace first, with the MMU journaling RAM writes and
 * the platform watched; if the run stayed inside the CPU and RAM (no platform call, no MMIO, no change
 * to system state, the trace still valid), the writes are undone, the CPU state put back, the compiled
 * code runs from the same state, and registers, flags, RIP, retired count, fault and the written bytes
 * must all be equal. Otherwise the interpreter's run stands and the check is tried on a later run (at
 * most {@link #MAX_TRIES} times). A difference stops the VM with {@link JitCheckFailure}.
 *
 * <p>REP string instructions write RAM in bulk behind the MMU, so traces holding them are not checked.
 */
final class CheckedTrace implements CompiledTrace {
    private static final int MAX_TRIES = 16;
    private final Jit jit;
    private final CompiledTrace compiled;
    private int tries;

    CheckedTrace(Jit jit, CompiledTrace compiled) {
        this.jit = jit;
        this.compiled = compiled;
    }

    /** The outcome of one journaled run. */
    private record Run(CpuSnapshot after, int vector, int errorCode, WriteJournal journal, boolean repeatable) {}

    @Override
    public void run(Cpu c, Trace t) { run(c, t, null); }

    /**
     * With a vCPU's loop the compiled region may continue in place at its blocks ({@code Vcpu.loopsBack},
     * {@code Vcpu.again}): the interpreter runs the entry trace first, as without one, to find out whether the run is
     * repeatable; then the compiled region runs with the blocks it continues at recorded (at most
     * {@code Vcpu.CHECKED_CONTINUATIONS}); if it continued, the interpreter runs again from the same state along that
     * path, trace by trace, and must find RIP at each recorded block's start; the two ends are compared as above. A
     * compiled run whose continuation reached the platform or MMIO cannot be replayed: its effects stand unchecked and
     * a later run is checked instead.
     */
    @Override
    public void run(Cpu c, Trace t, Vcpu loop) {
        if (++tries > MAX_TRIES || !checkable(t)) {
            install(t);
            compiled.run(c, t, loop);
            return;
        }
        CpuSnapshot before = CpuSnapshot.of(c);
        long entryRip = c.rip;
        Run ref = journaled(c, t, InterpretedRun.INSTANCE, before);
        if (!ref.repeatable) {
            if (ref.vector >= 0) throw c.fault(ref.vector, ref.errorCode);
            return;
        }
        ref.journal.captureCurrent(c.memory);
        ref.journal.undo(c.memory);
        before.restore(c);
        List<Trace> path = new ArrayList<>();
        Run got;
        if (loop != null) loop.recordContinuations(path);
        try {
            got = journaled(c, t, (cc, tt) -> compiled.run(cc, tt, loop), before);
        } finally {
            if (loop != null) loop.recordContinuations(null);
        }
        got.journal.captureCurrent(c.memory);
        List<String> wrongTurns = new ArrayList<>();
        if (!path.isEmpty()) {
            if (!got.repeatable) {
                if (got.vector >= 0) throw c.fault(got.vector, got.errorCode);
                return;
            }
            got.journal.undo(c.memory);
            before.restore(c);
            ref = journaled(c, t, along(path, entryRip, wrongTurns), before);
            ref.journal.captureCurrent(c.memory);
        }
        List<String> diffs = new ArrayList<>(wrongTurns);
        diffs.addAll(differences(ref, got));
        if (!diffs.isEmpty())
            throw new JitCheckFailure(describe(t) + (path.isEmpty() ? "" : " continuing in place " + path.size() + " times")
                    + " differs from the interpreter: " + String.join("; ", diffs));
        jit.checkedTraces++;
        jit.checkedContinuations += path.size();
        install(t);
        if (got.vector >= 0) throw c.fault(got.vector, got.errorCode);
    }

    /**
     * The interpreter's run of the region's entry trace and then of each block in {@code path}, as the compiled code
     * continued at them; a RIP that is not the next block's start (entry RIP plus its offset in the page) is a wrong
     * turn of the compiled code, reported in {@code wrongTurns}.
     */
    private static CompiledTrace along(List<Trace> path, long entryRip, List<String> wrongTurns) {
        return (c, t) -> {
            InterpretedRun.INSTANCE.run(c, t);
            for (int k = 0; k < path.size(); k++) {
                Trace b = path.get(k);
                long want = entryRip + (b.physAddr() - t.physAddr());
                if (c.rip != want) {
                    wrongTurns.add(String.format("continuation %d went to the block at 0x%x, the interpreter to RIP 0x%x", k, want, c.rip));
                    return;
                }
                InterpretedRun.INSTANCE.run(c, b);
            }
        };
    }

    private void install(Trace t) {
        if (t.compiled == this) t.compiled = compiled;
    }

    private static boolean checkable(Trace t) {
        for (Insn i : t.insns()) if (i.getClass().getNestHost().getSimpleName().equals("StringOps")) return false;
        return true;
    }

    private static Run journaled(Cpu c, Trace t, CompiledTrace how, CpuSnapshot before) {
        Platform p = c.platform;
        SpyPlatform spy = new SpyPlatform(p);
        long mmio = c.mmu.mmioAccesses;
        int vector = -1, errorCode = -1;
        c.platform = spy;
        WriteJournal j = c.mmu.startJournal();
        try {
            how.run(c, t);
        } catch (CpuFault f) {
            vector = f.vector;
            errorCode = f.errorCode;
        } finally {
            c.mmu.stopJournal();
            c.platform = p;
        }
        CpuSnapshot after = CpuSnapshot.of(c);
        boolean repeatable = !spy.used && c.mmu.mmioAccesses == mmio && t.isValid() && after.sameSystem(before);
        return new Run(after, vector, errorCode, j, repeatable);
    }

    private static List<String> differences(Run ref, Run got) {
        List<String> d = new ArrayList<>(ref.after.userDifferences(got.after));
        if (!got.repeatable) d.add("the compiled run reached the platform, MMIO or system state, the interpreter's did not");
        if (ref.vector != got.vector || ref.errorCode != got.errorCode)
            d.add(String.format("fault %d(%d) vs %d(%d)", ref.vector, ref.errorCode, got.vector, got.errorCode));
        WriteJournal a = ref.journal, b = got.journal;
        if (a.count() != b.count()) d.add("RAM writes: " + a.count() + " vs " + b.count());
        else for (int i = 0; i < a.count(); i++) {
            if (a.address(i) != b.address(i) || a.size(i) != b.size(i) || a.current(i) != b.current(i))
                d.add(String.format("RAM write %d: [0x%x]/%d = 0x%x vs [0x%x]/%d = 0x%x", i, a.address(i), a.size(i),
                        a.current(i), b.address(i), b.size(i), b.current(i)));
        }
        return d;
    }

    private static String describe(Trace t) {
        return String.format("jit check: the compiled trace at physical 0x%x (%s)", t.physAddr(),
                Arrays.stream(t.insns()).map(Insn::toString).collect(Collectors.joining("; ")));
    }
}

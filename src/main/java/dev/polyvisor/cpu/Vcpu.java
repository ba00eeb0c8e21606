package dev.polyvisor.cpu;

import dev.polyvisor.cpu.decode.Decoder;
import dev.polyvisor.cpu.decode.Insn;
import dev.polyvisor.cpu.jit.CompiledTrace;
import dev.polyvisor.cpu.jit.Jit;
import dev.polyvisor.cpu.mmu.Mmu;

/**
 * The run loop of one vCPU (reference/cpu-design.md 1.1): check events, look up the trace at CS:RIP,
 * run it, deliver faults. Returns a lifecycle {@link VcpuExit}; exits that need an answer are
 * completed synchronously through {@link Platform}.
 *
 * <p>Per-trace overhead is kept small: the next trace is usually found through the previous trace's
 * chain slots (no fetch translation, no hash), and the interrupt controller is polled every
 * {@link #POLL_TRACES} traces while IF stays set, immediately when IF has just become set, at the
 * start of every {@link #run} call and before halting; so a pending interrupt is taken within
 * POLL_TRACES * TraceCache.MAX_LEN instructions. A compiled trace whose branch goes back to its own start (a
 * loop) runs again without a lookup while nothing else is due ({@link #mayRerun}).
 */
public final class Vcpu {
    private static final VcpuExit HALT = new VcpuExit.Halt();
    private static final VcpuExit INTERRUPTED = new VcpuExit.Interrupted();
    /** Poll the interrupt controller at least every this many traces while IF=1. */
    static final int POLL_TRACES = 16;

    public final Cpu cpu;
    private final TraceCache traces;
    /** The JIT tier of the trace cache, or null when it is off. */
    private final Jit jit;
    /** The trace that ran last, whose chain slots may name the next one. */
    private Trace last;
    private int pollCountdown;
    /**
     * Jump cache (QEMU's tb_jmp_cache): traces by linear address for successors the chain slots miss
     * (returns, indirect jumps), valid for the fetch epoch recorded with each entry.
     */
    private static final int JC_BITS = 12;
    private final long[] jcLinear = new long[1 << JC_BITS], jcEpoch = new long[1 << JC_BITS];
    private final Trace[] jcTrace = new Trace[1 << JC_BITS];
    private boolean ifWasSet;

    public Vcpu(Cpu cpu, TraceCache traces) {
        this.cpu = cpu;
        this.traces = traces;
        this.jit = traces.jit();
        cpu.mmu.setCodePages(traces.codePages());
    }

    /** Asks a running vCPU to return {@link VcpuExit.Interrupted} soon; safe from any thread. */
    public void interrupt() { cpu.stopRequested = true; }

    /**
     * Runs until an exit or until about {@code budget} instructions have retired (then Interrupted,
     * so the VMM can run timers between quanta).
     */
    public VcpuExit run(long budget) {
        final Cpu c = cpu;
        long limit = c.instructionsRetired + budget;
        ifWasSet = false; // poll at once: timers ran between quanta
        if (jit != null) jit.installFinished();
        try {
            while (c.instructionsRetired < limit) {
                if (c.stopRequested) { c.stopRequested = false; return INTERRUPTED; }
                if (c.nmiPending && !c.nmiBlocked && !c.interruptShadow) {
                    // NMI: not masked by IF, held off while a previous NMI's handler runs (until IRET) and in the
                    // MOV SS/STI shadow (SDM Vol. 3A 6.7.1, Table 6-2); it wakes a halted core.
                    c.nmiPending = c.nmiSecondPending;
                    c.nmiSecondPending = false;
                    deliver(c, Exceptions.NMI, -1, Interrupts.EXTERNAL);
                }
                if (c.interruptShadow) {
                    c.interruptShadow = false;
                    // Intel blocks instruction breakpoints on the instruction after MOV SS/POP SS (SDM Vol. 3A 6.8.3:
                    // debug exceptions are inhibited while MOV SS blocking is in force); AMD takes them.
                    boolean afterMovSs = c.movSsShadow || movSsHeld;
                    movSsHeld = false;
                    singleStep(c, c.intel && afterMovSs);
                    if (c.pendingExit != null) { VcpuExit e = c.pendingExit; c.pendingExit = null; return e; }
                    continue;
                }
                if ((c.rflags & Flags.IF) != 0) {
                    if (!ifWasSet || --pollCountdown <= 0 || c.halted) {
                        ifWasSet = true;
                        pollCountdown = POLL_TRACES;
                        if (c.interrupts.hasPending()) {
                            int v = c.interrupts.acknowledge();
                            if (v >= 0) {
                                c.halted = false;
                                deliver(c, v, -1, Interrupts.EXTERNAL);
                            }
                        }
                    }
                } else {
                    ifWasSet = false;
                }
                if (c.halted) return HALT;
                if ((c.rflags & (Flags.TF | Flags.RF)) != 0 || c.breakpointsArmed || c.pendingDebugTraps != 0) {
                    singleStep(c, false);
                } else {
                    runTrace(c, limit);
                    if (c.stepTrapAtEnd) stepTrapAtEnd(c);
                }
                if (c.pendingExit != null) { VcpuExit e = c.pendingExit; c.pendingExit = null; return e; }
            }
            return INTERRUPTED;
        } catch (Interrupts.TripleFault tf) {
            c.halted = true;
            return new VcpuExit.Shutdown(tf.getMessage());
        }
    }

    /** The trace at CS:RIP: from the previous trace's chain slots when they match, else the cache. */
    private Trace next(Cpu c, long la) {
        long epoch = c.mmu.fetchEpoch, global = c.mmu.globalFetchEpoch;
        Trace p = last, t;
        if (p != null) {
            // Epoch, successor, epoch again, in order (Trace's chaining protocol): a slot another vCPU is
            // rewriting never pairs its successor with this vCPU's epoch. A slot holds the fetch epoch, or the
            // global one for a successor in one global page (keyedEpoch), which a CR3 load leaves valid.
            if (la == p.endLinear) {
                long slot = (long) Trace.FALL_EPOCH.getAcquire(p);
                if (slot == epoch || slot == global) {
                    t = (Trace) Trace.FALL_NEXT.getAcquire(p);
                    if (t != null && (long) Trace.FALL_EPOCH.getAcquire(p) == slot && t.valid) return t;
                }
                t = lookup(c, la);
                if (mayChain(slot, epoch)) p.chainFall(t, keyedEpoch(c, la, t));
            } else {
                long slot = (long) Trace.OTHER_EPOCH.getAcquire(p);
                if ((slot == epoch || slot == global) && (long) Trace.OTHER_LINEAR.getAcquire(p) == la) {
                    t = (Trace) Trace.OTHER_NEXT.getAcquire(p);
                    if (t != null && (long) Trace.OTHER_EPOCH.getAcquire(p) == slot && t.valid) return t;
                }
                t = lookup(c, la);
                // A slot of this epoch that names another target is left alone: the branch is indirect (a return,
                // a jump through a table) with several targets, which the jump cache serves; rewriting the slot at
                // every change cost a monitor and three releases per miss (JFR: chainOther ~1% of a boot).
                if (slot != epoch && slot != global && mayChain(slot, epoch)) p.chainOther(t, la, keyedEpoch(c, la, t));
            }
            return t;
        }
        return lookup(c, la);
    }

    /**
     * The epoch that a jump-cache entry or chain to trace {@code t} at {@code la} is keyed with: the global fetch epoch
     * when the trace's bytes lie in one page (a trace stays in the page it starts in unless an instruction crosses)
     * whose fetch translation is global ({@code Mmu.fetchesGlobal}), so that it outlives CR3 loads as that
     * translation does (SDM Vol. 3A 4.10.4.1), else the fetch epoch. Read right after {@code t}'s lookup: a TLB
     * without the entry any more answers "not global", which only keys it more narrowly.
     */
    private static long keyedEpoch(Cpu c, long la, Trace t) {
        if (t.page2 < 0 && c.mmu.fetchesGlobal(la)) return c.mmu.globalFetchEpoch; // no instruction crosses a page
        return c.mmu.fetchEpoch;
    }

    /**
     * Whether this vCPU may (re)write a chain slot that holds {@code slotEpoch}: when it is empty or this
     * vCPU's own. Another vCPU's link is left alone: vCPUs on their own threads running the same code would
     * otherwise rewrite each other's slots at every trace exit (their epochs never match), and the shared
     * cache lines and monitor cost more than the link saves (smp-scaling.sh: two vCPUs together ran no faster
     * than one). A vCPU that finds the slot taken goes through its own jump cache instead.
     */
    private static boolean mayChain(long slotEpoch, long epoch) {
        return slotEpoch == 0 || Mmu.epochOwner(slotEpoch) == Mmu.epochOwner(epoch);
    }

    private Trace lookup(Cpu c, long la) {
        int i = (int) (la ^ (la >>> JC_BITS)) & ((1 << JC_BITS) - 1);
        Trace t = jcTrace[i];
        if (t != null && jcLinear[i] == la && (jcEpoch[i] == c.mmu.fetchEpoch || jcEpoch[i] == c.mmu.globalFetchEpoch) && t.valid)
            return t;
        t = traces.lookup(c, la, c.mmu.fetchPhys(la));
        jcTrace[i] = t;
        jcLinear[i] = la;
        jcEpoch[i] = keyedEpoch(c, la, t);
        return t;
    }

    private void runTrace(Cpu c, long limit) {
        Trace t;
        try {
            t = next(c, c.linear(Cpu.CS, c.rip));
        } catch (CpuFault f) {
            last = null;
            deliver(c, f.vector, f.errorCode, Interrupts.EXCEPTION);
            return;
        }
        last = t;
        CompiledTrace ct = t.compiled;
        if (ct == null && jit != null && --heatCountdown <= 0) {
            heatCountdown = nextHeatSample(jit.heatSample);
            ct = jit.hot(c, t);
        }
        if (ct != null) {
            // While run()'s loop would only run this trace again, the compiled trace runs again itself (again()). Only
            // compiled traces: for interpreted ones an extra loop here made the interpreter slower (CPU guest, --jit
            // off: 2.83 s vs 2.70 s).
            loopLimit = limit;
            loopRip = c.rip;
            loopCsBase = c.segBase[Cpu.CS];
            loopEpoch = c.mmu.fetchEpoch;
            // Same contract as the loop below: retired count, and RIP of the faulting instruction on a fault.
            try {
                ct.run(c, t, this);
            } catch (CpuFault f) {
                deliver(c, f.vector, f.errorCode, Interrupts.EXCEPTION);
            }
            return;
        }
        Insn[] insns = t.insns;
        int n = 0;
        c.traceExit = false;
        try {
            for (Insn i : insns) {
                c.prevRip = c.rip;
                c.rip += i.len;
                i.exec(c);
                n++;
                if (c.traceExit) break; // a taken Jcc inside the trace, or a write to a code page (Mmu.codeWritten)
            }
        } catch (CpuFault f) {
            c.rip = c.prevRip;
            c.instructionsRetired += n;
            deliver(c, f.vector, f.errorCode, Interrupts.EXCEPTION);
            return;
        }
        c.instructionsRetired += n;
    }

    /** Interpreted trace runs until the next that the JIT counts ({@link Jit#heatSample}), and the sampler's state. */
    private int heatCountdown, heatRandom = 0x2545F491;

    /**
     * The gap to the next counted run: 1 when every run counts, else a pseudo-random 1 to 2 * {@code sample} - 1
     * (mean {@code sample}), so that no loop of a fixed number of traces always counts the same one. Deterministic
     * (xorshift from a fixed seed), as everything the run loop decides.
     */
    private int nextHeatSample(int sample) {
        if (sample == 1) return 1;
        int r = heatRandom;
        r ^= r << 13;
        r ^= r >>> 17;
        r ^= r << 5;
        heatRandom = r;
        return 1 + (r & 0x7FFF_FFFF) % (2 * sample - 1);
    }

    /** The entry state of the compiled trace running now, for {@link #again}. */
    private long loopLimit, loopRip, loopCsBase, loopEpoch;

    /**
     * Called by a compiled trace ({@link CompiledTrace#run(Cpu, Trace, Vcpu)}) when it has run: whether it runs
     * again at once, as {@link #mayRerun} decides for its entry state. The compiled code loops without returning,
     * so the call is inlined into it and a guest loop costs no dispatch per iteration.
     */
    public boolean again(Cpu c, Trace t) {
        return t.compiled != null && mayRerun(c, t, loopLimit, loopRip, loopCsBase, loopEpoch) && (continuations == null || record(t));
    }

    /**
     * Whether, after trace {@code t} entered at {@code rip} (CS base {@code csBase}, fetch epoch {@code epoch})
     * has run, {@link #run}'s loop would do nothing but run {@code t} again (a loop whose back edge jumps to its
     * own trace's start; QEMU chains such a block to itself): the next instruction is its first (same linear
     * address and epoch: the chain slot rule of {@link #next}), the trace is still valid, the budget is not
     * spent, no stop, exit, NMI, interrupt shadow, halt, single-step or debug trap is pending, and an interrupt
     * poll that is due finds nothing ({@link InterruptSource#hasPending} has no side effect). When it answers
     * true it has made the loop's bookkeeping for that iteration (the poll countdown), so events are taken at the
     * same instruction as without this shortcut ({@code --clock icount} runs stay identical); false costs
     * nothing, since run()'s loop then takes its own decisions.
     */
    private boolean mayRerun(Cpu c, Trace t, long limit, long rip, long csBase, long epoch) {
        if (c.rip != rip || c.segBase[Cpu.CS] != csBase || c.mmu.fetchEpoch != epoch) return false;
        return nothingDue(c, t, limit);
    }

    /**
     * Called by compiled region {@code region} at a taken branch to the start of trace {@code next}, one of its
     * blocks (itself: a loop), with only inline forms run since it was entered (which change neither CS nor the
     * fetch epoch, and RIP is that start): whether it continues there in place, as this loop would only run
     * {@code next} now ({@link #mayRerun}'s answer, its bookkeeping included).
     */
    public boolean loopsBack(Cpu c, Trace region, Trace next) {
        // Only inline forms ran since the last full check (run()'s loop before runTrace, or again()): they change
        // neither the interrupt shadow, HLT state, TF/RF, IF, the debug registers nor pending debug traps (their
        // instructions are handlers), so what can have changed is the count, the trace's validity (another vCPU's
        // write), a stop or NMI from another thread and an exit an MMIO store asked for; then the poll, as always.
        if (c.instructionsRetired >= loopLimit || region.compiled == null || !next.valid || c.stopRequested
                || c.nmiPending || c.pendingExit != null) return false;
        return pollFindsNothing(c) && (continuations == null || record(next));
    }

    /**
     * {@code --jit check}: where a compiled region being verified continued in place (the blocks, in order), so that the
     * interpreter can be run along the same path ({@code cpu.jit.CheckedTrace}); null when nothing is being verified.
     */
    private java.util.List<Trace> continuations;

    /** At most this many in-place continuations in a verified run (each is replayed by the interpreter). */
    public static final int CHECKED_CONTINUATIONS = 64;

    /** Records the in-place continuations of compiled regions into {@code into} (null: stop recording). */
    public void recordContinuations(java.util.List<Trace> into) { continuations = into; }

    /**
     * A continuation at {@code next} of a run being verified: recorded, or refused past the bound (the poll's
     * bookkeeping for it is then done twice, which only moves a check-mode interrupt poll by one trace). Kept out of
     * {@link #loopsBack} and {@link #again}, whose size decides whether C2 inlines them into compiled regions:
     * written inline, the recording cost the CPU guest's steady state 9% (600-640 against 670-710 MIPS).
     */
    private boolean record(Trace next) {
        if (continuations.size() >= CHECKED_CONTINUATIONS) return false;
        continuations.add(next);
        return true;
    }

    /** The part of {@link #mayRerun} that is not about where the trace was entered. */
    private boolean nothingDue(Cpu c, Trace t, long limit) {
        if (c.instructionsRetired >= limit || !t.valid) return false;
        if (c.stopRequested || c.pendingExit != null || c.nmiPending || c.interruptShadow || c.halted
                || c.stepTrapAtEnd || (c.rflags & (Flags.TF | Flags.RF)) != 0 || c.breakpointsArmed
                || c.pendingDebugTraps != 0) return false;
        return pollFindsNothing(c);
    }

    /**
     * The run loop's interrupt poll for one more trace, with its bookkeeping, when it would find nothing (the
     * last part of {@link #mayRerun}): with IF=1 the countdown goes on and a due poll asks
     * {@link InterruptSource#hasPending}, which has no side effect; false when the loop should take over.
     */
    private boolean pollFindsNothing(Cpu c) {
        if ((c.rflags & Flags.IF) != 0) {
            if (!ifWasSet) return false;
            if (pollCountdown > 1) pollCountdown--;
            else if (c.interrupts.hasPending()) return false; // the loop polls now and delivers: let it
            else pollCountdown = POLL_TRACES; // the loop's poll, which would find nothing
        } else {
            ifWasSet = false;
        }
        return true;
    }

    /** DR6.BS: the #DB was a single-step trap (SDM Vol. 3A 18.2.3). */
    static final long DR6_BS = Breakpoints.DR6_BS;

    /**
     * One instruction with the debug checks around it (SDM Vol. 3A 18.3): an execute breakpoint at CS:RIP is
     * a #DB fault before the instruction unless RFLAGS.RF is set; after it, the single-step trap (DR6.BS) if
     * TF was set when it began, so POPF/IRET that clear TF still trap and ones that set it do not, and the
     * data breakpoints its accesses hit (DR6.B0-B3), both as one #DB trap. No trap follows an instruction
     * that delivered an event (a fault, or INT n, whose delivery clears TF). A MOV SS / POP SS holds its traps
     * back until the next instruction has run (SDM 6.8.3), where a #DB that instruction delivers itself
     * (ICEBP, a fault) absorbs them and anything else (INT n, INT3) is followed by them.
     */
    /** singleStep ran a MOV SS / POP SS and cleared its flag: the next instruction is in its shadow. */
    private boolean movSsHeld;

    /** @param codeBreakpointsBlocked the instruction is in a MOV SS shadow on an Intel model: no instruction breakpoint */
    private void singleStep(Cpu c, boolean codeBreakpointsBlocked) {
        long rf = c.rflags & Flags.RF;
        // RF lasts for one instruction: the processor clears it when an instruction completes (SDM 18.3.1.1).
        c.rflags &= ~Flags.RF;
        if (c.execBreakpoints != 0 && rf == 0 && !codeBreakpointsBlocked) {
            int hits, prefix = forcedEmulationPrefixLength(c);
            try {
                hits = Breakpoints.instructionHits(c, c.linear(Cpu.CS, c.rip + prefix));
            } catch (CpuFault f) {
                hits = 0; // the fetch faults and reports it
            }
            if (hits != 0) {
                c.rip += prefix; // KVM had moved RIP past the prefix: the #DB names the instruction
                // A fault: RIP stays at the instruction; the handler sets RF in the frame to step over it.
                Breakpoints.reportInDr6(c, hits);
                c.pendingDebugTraps = 0;
                deliver(c, Exceptions.DB, -1, Interrupts.EXCEPTION);
                return;
            }
        }
        boolean trap = (c.rflags & Flags.TF) != 0;
        long events = c.deliveries, debugEvents = c.debugDeliveries;
        c.movSsShadow = c.stepTrapAtEnd = false;
        c.mmu.dataBreakpointHits = 0;
        stepOne(c);
        if (c.stepTrapAtEnd) { c.stepTrapAtEnd = false; trap = (c.rflags & Flags.TF) != 0; }
        long bits = 0;
        if (c.deliveries == events) bits = (trap ? DR6_BS : 0) | c.mmu.dataBreakpointHits;
        if (c.movSsShadow) {
            c.movSsShadow = false;
            movSsHeld = true;
            c.pendingDebugTraps |= bits;
            return;
        }
        if (c.pendingDebugTraps != 0) {
            if (c.debugDeliveries == debugEvents) bits |= c.pendingDebugTraps;
            c.pendingDebugTraps = 0;
        }
        if (bits != 0) {
            Breakpoints.reportInDr6(c, bits);
            deliver(c, Exceptions.DB, -1, Interrupts.EXCEPTION);
        }
    }

    /**
     * How far a code breakpoint check looks past KVM's forced-emulation prefix: KVM's #UD handler moves RIP past
     * it and checks code breakpoints at the instruction it then emulates (arch/x86/kvm/x86.c handle_ud,
     * kvm_vcpu_check_code_breakpoint), in the MOV SS shadow still in force. 0 without a prefix.
     */
    private int forcedEmulationPrefixLength(Cpu c) {
        if (!c.forceEmulationPrefix) return 0;
        try {
            long la = c.linear(Cpu.CS, c.rip);
            return Decoder.forcedEmulationPrefixLength(traces.lookup(c, la, c.mmu.fetchPhys(la)).insns[0]);
        } catch (CpuFault f) {
            return 0; // the fetch faults again in stepOne, which delivers it
        }
    }

    /** After a trace that ended with SYSCALL/SYSRET, which began with TF clear: the trap follows TF at its end. */
    private static void stepTrapAtEnd(Cpu c) {
        c.stepTrapAtEnd = false;
        if ((c.rflags & Flags.TF) == 0) return;
        Breakpoints.reportInDr6(c, DR6_BS);
        deliver(c, Exceptions.DB, -1, Interrupts.EXCEPTION);
    }

    /** Executes exactly one instruction (interrupt shadow, single-step). */
    private void stepOne(Cpu c) {
        c.prevRip = c.rip;
        try {
            long la = c.linear(Cpu.CS, c.rip);
            long pa = c.mmu.fetchPhys(la);
            Trace t = traces.lookup(c, la, pa);
            Insn i = t.insns[0];
            c.rip += i.len;
            i.exec(c);
            c.instructionsRetired++;
        } catch (CpuFault f) {
            c.rip = c.prevRip;
            deliver(c, f.vector, f.errorCode, Interrupts.EXCEPTION);
        }
    }

    private static void deliver(Cpu c, int vector, int errorCode, int kind) {
        Interrupts.deliver(c, vector, errorCode, kind);
    }
}

package dev.polyvisor.cpu.jit;

import dev.polyvisor.cpu.Cpu;
import dev.polyvisor.cpu.Trace;
import dev.polyvisor.cpu.TraceCache;

import java.lang.foreign.MemorySegment;
import java.util.ArrayDeque;
import java.util.ArrayList;
import java.util.List;
import java.util.concurrent.ConcurrentLinkedQueue;
import java.util.concurrent.ExecutorService;
import java.util.concurrent.Executors;

/**
 * The JIT policy of one trace cache (one VM): counts interpreted runs of each trace, compiles a trace
 * when it reaches the threshold, keeps at most {@link #capacity} compiled traces (the oldest is evicted:
 * its trace drops the compiled object, so the hidden class becomes unreachable and is unloaded by the
 * next class-unloading GC) and, in {@link JitMode#CHECK}, verifies each new compilation once against
 * the interpreter. A trace that fails to compile stays interpreted.
 *
 * <p>In {@link JitMode#ON} traces are compiled on one background thread (class
 * generation and definition cost about a millisecond each, which the vCPU thread should not wait for, as
 * v86 and HQEMU compile asynchronously too); the vCPU thread installs finished compilations the next time
 * it consults the JIT, so compiled traces only ever change on a vCPU thread. A compiled trace does
 * exactly what the interpreter does, so when it starts being used cannot change what the guest sees (icount
 * runs stay identical). {@link JitMode#ALWAYS} and {@link JitMode#CHECK} compile synchronously, so that
 * which traces run compiled (and are verified) is the same in every run.
 * Crossing the threshold and installing hold the Jit's monitor, so vCPUs on separate host threads can share it.
 */
public final class Jit {
    /**
     * Guest instructions a trace retires in the interpreter before it is compiled in {@link JitMode#ON}
     * (its heat grows by its length per run, so long and short traces are weighed by the work they do).
     * Measured on the Debian boot (session 5, STATUS.md): HotSpot spends 40-100 ms of C1 and C2 time on
     * each compiled trace (the handlers are inlined into one method), what the interpreter needs for
     * several million guest instructions, and compiled code saves at most about a third of a trace's
     * time; so only a trace that has already retired tens of millions of instructions (and so likely
     * will again) repays it. At 5000 runs the boot compiled 1,400 traces and spent 14 s of C2 time on
     * them; at 16 M instructions it compiles 9-11. The price: a long-running loop is interpreted for its
     * first 16 M instructions (the CPU-bound guest of bench/cpu-vs-qemu.sh keeps most, not all, of its gain).
     */
    public static final int DEFAULT_THRESHOLD = 16_000_000;
    /**
     * The threshold of {@link JitMode#CHECK}: low, since the check mode is for verifying compilations (the
     * test suite's short guests must reach it), not for speed.
     */
    public static final int DEFAULT_CHECK_THRESHOLD = 40_000;
    public static final int DEFAULT_CAPACITY = 8192;
    /** A trace whose compilation failed is never tried again. */
    private static final int NEVER = Integer.MIN_VALUE;

    private final JitMode mode;
    private final int threshold, capacity;
    /** The heat a loop starts with ({@link #LOOP_DIVISOR}): it is compiled after a sixteenth of the threshold. */
    private final int loopHeadStart;
    /**
     * The heat at which a trace is asked whether it loops to its own start ({@link #loopsToItself}, which classifies
     * its instructions), and a loop gets its head start after the fact: at most {@link #LOOP_CHECK}, and before a
     * loop could reach the threshold with the head start, so a loop is queued at the same run as if it had had the
     * head start from its first. Asked at every trace's first run, the question took 4% of a {@code --jit on}
     * boot's VM thread (async-profiler), as most traces run only a few times (a process's code, pages reused).
     */
    private final int loopCheck;
    static final int LOOP_CHECK = 1024;
    private final TraceCompiler compiler;
    private final boolean inlineForms;
    /**
     * Consult {@link #hot} for about one interpreted trace run in this many, each sample counting for as many runs
     * ({@code Vcpu.runTrace}): 1, but {@link #HEAT_SAMPLE} in {@link JitMode#ON} with vCPUs on several host threads.
     * There vCPUs running the same code share its traces, and a heat written at every run moved each trace's
     * cache line between the cores: two vCPUs under {@code --jit on} ran the smp-scaling workload no faster than
     * one (with nothing compiled, 9.0 / 8.5 s against 9.7 / 8.3 s; 7.9 / 5.9 s against 10.3 / 11.5 s with the
     * JIT off). The other modes count every run, so that which traces they compile stays exact.
     */
    public final int heatSample;
    static final int HEAT_SAMPLE = 16;
    /** Compiled traces in compilation order: the head is evicted first. */
    private final ArrayDeque<Trace> cache = new ArrayDeque<>();
    public long compiledTraces, evictedTraces, failedTraces, checkedTraces;
    /** {@link JitMode#CHECK}: in-place continuations of compiled regions the interpreter replayed (CheckedTrace). */
    public long checkedContinuations;
    /** Compilations finished on the background thread, waiting to be installed by the vCPU thread. */
    private final ConcurrentLinkedQueue<Finished> finished = new ConcurrentLinkedQueue<>();
    /**
     * Set after a compilation is queued in {@link #finished}, cleared before they are installed: what
     * {@link #installFinished} reads at the start of each quantum (once per trace, the queue's isEmpty had taken 1.5%
     * of a boot's VM thread).
     */
    private volatile boolean compilationsFinished;
    private record Finished(Trace trace, CompiledTrace compiled) {}
    /** The background compiler thread, shared by every VM of the process (a daemon: it never holds the JVM). */
    private static final ExecutorService BACKGROUND = Executors.newSingleThreadExecutor(r -> {
        Thread t = new Thread(r, "polyvisor-jit");
        t.setDaemon(true);
        return t;
    });

    public Jit(JitMode mode, int threshold, int capacity, boolean inlineForms) {
        this(mode, threshold, capacity, inlineForms, false);
    }

    /** @param orderLoads vCPUs run on several host threads: compiled code keeps loads in order ({@link TraceCompiler}) */
    public Jit(JitMode mode, int threshold, int capacity, boolean inlineForms, boolean orderLoads) {
        if (mode == JitMode.OFF) throw new IllegalArgumentException("no Jit object for --jit off");
        if (capacity < 1) throw new IllegalArgumentException("JIT code cache capacity must be at least 1");
        this.mode = mode;
        this.threshold = mode == JitMode.ALWAYS ? 0 : Math.clamp(threshold, 0, Integer.MAX_VALUE - TraceCache.MAX_LEN);
        this.capacity = capacity;
        this.loopHeadStart = this.threshold - this.threshold / LOOP_DIVISOR;
        this.loopCheck = Math.min(LOOP_CHECK, this.threshold - loopHeadStart);
        this.compiler = new TraceCompiler(inlineForms, orderLoads);
        this.heatSample = mode == JitMode.ON && orderLoads ? HEAT_SAMPLE : 1;
        this.inlineForms = inlineForms;
    }

    /**
     * The JIT for a mode, with threshold, capacity and inline forms from the system properties
     * {@code polyvisor.jit.threshold}, {@code polyvisor.jit.cache} and {@code polyvisor.jit.inline}
     * (tuning knobs); null for {@link JitMode#OFF}.
     */
    public static Jit create(JitMode mode) { return create(mode, false); }

    /** As {@link #create(JitMode)}, for vCPUs on several host threads when {@code orderLoads}. */
    public static Jit create(JitMode mode, boolean orderLoads) {
        if (mode == JitMode.OFF) return null;
        return new Jit(mode, Integer.getInteger("polyvisor.jit.threshold",
                mode == JitMode.CHECK ? DEFAULT_CHECK_THRESHOLD : DEFAULT_THRESHOLD),
                Integer.getInteger("polyvisor.jit.cache", DEFAULT_CAPACITY),
                !"false".equals(System.getProperty("polyvisor.jit.inline")), orderLoads);
    }

    public JitMode mode() { return mode; }

    /** One line for {@code --stats}. */
    public String summary() {
        return String.format("mode %s, threshold %d, compiled %d traces (%d held, %d evicted, %d failed%s)",
                mode.name().toLowerCase(java.util.Locale.ROOT), threshold, compiledTraces, cache.size(), evictedTraces,
                failedTraces, mode == JitMode.CHECK ? ", " + checkedTraces + " checked against the interpreter, with "
                        + checkedContinuations + " in-place continuations" : "");
    }

    /** Compiled traces held now. */
    public int cached() { return cache.size(); }

    /**
     * Called by the run loop for a trace about to be interpreted: counts the run and, at the threshold,
     * compiles the trace and returns what the loop should run instead (null: interpret it).
     */
    public CompiledTrace hot(Cpu c, Trace t) {
        int heat = t.heat;
        if (heat < 0) return null;
        if (heat == 0) t.loopSince = c.instructionsRetired + 1; // its first run, for the loop window
        int now = heat + t.insns().length * heatSample;
        if (heat <= loopCheck && now > loopCheck) { // asked once, when it has run a little: see loopCheck
            if (loopsToItself(t)) now += loopHeadStart;
            else t.loopSince = 0;
        }
        if ((t.heat = now) <= threshold) return null;
        if (t.loopSince != 0) {
            long took = c.instructionsRetired + 1 - t.loopSince;
            t.loopSince = 0;
            if (took > LOOP_WINDOW) { // a lukewarm loop: no head start, it counts on to the whole threshold
                t.heat -= loopHeadStart;
                return null;
            }
        }
        return compileHot(t, c.mmu.compiledRam());
    }

    /** Where a region's other traces come from: the trace cache's valid trace at (physical address, mode), or null. */
    public interface TraceSource { Trace at(long pa, int mode); }

    private TraceSource regions = (pa, mode) -> null;

    /** Lets a compilation take in the traces that {@code source} holds (TraceCache.peek). */
    public void regionsFrom(TraceSource source) { this.regions = source; }

    /**
     * Traces in a region at most (its entry included; tuning knob {@code polyvisor.jit.blocks}, 1: no regions);
     * TraceCompiler also bounds the method's size.
     */
    static final int MAX_BLOCKS = Math.max(1, Integer.getInteger("polyvisor.jit.blocks", 4));

    /**
     * The traces a compilation of {@code t} takes in besides it: those already decoded at the targets of the inline
     * branches of {@code t} and of the traces taken in (breadth first), in the same page as {@code t}'s start, so
     * that an inner and an outer loop, or the arms of a branch, run in one method with the guest state in locals.
     * Read on the vCPU thread (compilation may run on another): which traces exist is the vCPU's view.
     */
    List<Trace> region(Trace t) {
        if (!inlineForms) return List.of();
        List<Trace> more = new ArrayList<>();
        ArrayDeque<Trace> work = new ArrayDeque<>(List.of(t));
        long page = t.physAddr() & ~0xFFFL;
        while (!work.isEmpty() && more.size() < MAX_BLOCKS - 1) {
            Trace b = work.poll();
            for (long off : RipState.branchTargets(b.insns(), b.physAddr() - t.physAddr())) {
                long pa = t.physAddr() + off;
                if ((pa & ~0xFFFL) != page || off == 0) continue;
                Trace m = regions.at(pa, t.mode());
                if (m == null || more.contains(m) || more.size() >= MAX_BLOCKS - 1) continue;
                more.add(m);
                work.add(m);
            }
        }
        return more;
    }

    /**
     * A trace whose inline branch goes back to its own start is compiled after a sixteenth of the threshold (1 M
     * instructions by default): compiled, it runs its loop in place with the guest state in locals, which is
     * where the JIT gains most (the CPU-bound guest, 300 rounds: 1.41-1.58 s against 1.82-1.87 s of guest
     * wall time, 2 runs each). The Debian boot with {@code --jit on} then compiles 16-17 traces instead of
     * 10-11, and its guest wall time did not move (8.50/8.27/10.59 s against 8.89/8.61/10.63 s, 3 pairs).
     * Tuning knob {@code polyvisor.jit.loopDivisor} (1: no head start).
     */
    static final int LOOP_DIVISOR = Math.max(1, Integer.getInteger("polyvisor.jit.loopDivisor", 16));

    /**
     * A loop keeps its head start only if it earned it within this many instructions retired by the vCPU (16 M
     * by default: it ran at least a sixteenth of the time); a slower one counts on to the whole threshold. The
     * CPU-bound guest's loop earns it in about 1 M instructions; the Debian boot's lukewarm loops, which ran
     * a few thousand times each over seconds, did not, and compiled they had run slower than interpreted (a
     * class that is entered rarely stays in the JVM's own interpreter: 16-53 guest MIPS against about 90, in an
     * uncommitted timing of each region). Tuning knob {@code polyvisor.jit.loopWindow}.
     */
    static final long LOOP_WINDOW = Math.max(1, Long.getLong("polyvisor.jit.loopWindow", 16_000_000L));

    private static boolean loopsToItself(Trace t) { return RipState.branchTargets(t.insns(), 0).contains(0L); }

    /** The count reached the threshold; under the monitor, since vCPUs on other host threads share the policy. */
    private synchronized CompiledTrace compileHot(Trace t, MemorySegment ram) {
        if (t.heat < 0 || t.compiled != null) return t.compiled; // another vCPU queued it first
        t.heat = NEVER; // queued or compiled: not counted again until evicted
        List<Trace> more = region(t);
        if (mode == JitMode.ON) {
            BACKGROUND.execute(() -> {
                finished.add(new Finished(t, tryCompile(t, more, ram)));
                compilationsFinished = true;
            });
            return t.compiled; // the trace in hand may have been installed just now
        }
        install(t, tryCompile(t, more, ram));
        return t.compiled;
    }

    /** Waits for the background compilations queued so far and installs them (tests). */
    public void drain() throws InterruptedException {
        try {
            BACKGROUND.submit(() -> {}).get();
        } catch (java.util.concurrent.ExecutionException e) {
            throw new IllegalStateException(e.getCause());
        }
        installQueued();
    }

    /**
     * Installs the compilations the background thread finished (the vCPU's loop calls it at the start of each
     * quantum: a compiled trace waits for it at most a quantum, about half a millisecond).
     */
    public void installFinished() {
        if (compilationsFinished) installQueued();
    }

    private synchronized void installQueued() {
        compilationsFinished = false; // before the queue is read: a compilation queued after this sets it again
        for (Finished f; (f = finished.poll()) != null; ) install(f.trace, f.compiled);
    }

    /** The compiled trace, or null when it cannot be compiled (it then stays interpreted). */
    private CompiledTrace tryCompile(Trace t, List<Trace> more, MemorySegment ram) {
        try {
            return compiler.compile(t, more, ram);
        } catch (VirtualMachineError e) {
            if (!(e instanceof OutOfMemoryError)) throw e;
            return null;
        } catch (Throwable e) {
            return null;
        }
    }

    private void install(Trace t, CompiledTrace ct) {
        if (ct == null) { failedTraces++; return; }
        if (!t.isValid()) return; // invalidated while it was being compiled: nothing will run it again
        if (t.compiled != null) return; // installed already (two vCPUs raced it past the threshold)
        compiledTraces++;
        if (cache.size() >= capacity) evictOldest();
        cache.addLast(t);
        t.compiled = mode == JitMode.CHECK ? new CheckedTrace(this, ct) : ct;
    }

    private void evictOldest() {
        Trace old = cache.pollFirst();
        if (old == null) return;
        old.compiled = null;
        old.heat = 0;
        evictedTraces++;
    }
}

package dev.polyvisor.cpu;

import dev.polyvisor.cpu.decode.Decoder;
import dev.polyvisor.cpu.decode.Insn;
import dev.polyvisor.cpu.decode.OpcodeTable;
import dev.polyvisor.cpu.jit.Jit;
import dev.polyvisor.cpu.jit.JitMode;
import dev.polyvisor.cpu.mmu.CodePages;

import java.util.ArrayList;
import java.util.HashMap;
import java.util.List;
import java.util.Map;

/**
 * Decoded traces keyed by (physical address, decode mode), shared by the vCPUs of one VM. A write to
 * a page that holds decoded code (reported by {@link CodePages}) invalidates every trace built from it.
 *
 * <p>vCPUs may run on host threads of their own (vmm.VcpuThreads): a hit is a lock-free acquire read of
 * the table (a trace's identity fields are final and it is published with a release store, so a reader
 * never sees it half-built); a miss, the build and the invalidation of a written code page hold the
 * cache's monitor. Invalidation clears the volatile {@link Trace#valid}, which every vCPU checks before
 * it enters a trace and after each instruction, so none runs bytes it decoded before a write it can see
 * (x86 requires cross-modifying code to synchronize anyway, SDM Vol. 3A 9.1.3).
 */
public final class TraceCache implements CodePages.Listener {
    public static final int MAX_LEN = 32;
    /**
     * The table: 2^16 sets of two ways (a trace's set from a multiplicative hash of its physical address and
     * decode mode). Direct-mapped with 2^16 slots and an XOR-fold hash, a boot and a busybox loop evicted 217,000
     * of the 263,000 traces they decoded, hot ones again and again, each eviction a decode more.
     */
    private static final int SET_BITS = 16, SIZE = 2 << SET_BITS;

    private final Trace[] table = new Trace[SIZE];
    private static final java.lang.invoke.VarHandle SLOT = java.lang.invoke.MethodHandles.arrayElementVarHandle(Trace[].class);
    private final Map<Long, List<Trace>> byPage = new HashMap<>();
    private final Decoder decoder;
    private final CodePages codePages;
    private final List<Insn> scratch = new ArrayList<>(MAX_LEN);
    public long decodedInstructions;
    /** Traces dropped because another took their table slot. */
    public long evictedTraces;
    /** Traces decoded (every miss of the table). */
    public long builtTraces;

    /** For {@code --stats}: how many traces were decoded and how many lost their slot to another. */
    public synchronized String summary() { return "built " + builtTraces + ", evicted on a slot collision " + evictedTraces; }
    /** Compiles hot traces to bytecode; null when the JIT is off. */
    private final Jit jit;
    /** The physical address {@link #watchFirstBuild} waits for (-1: none), and what to do then. */
    private long watchedPa = -1;
    private Runnable watchAction;

    /** A trace cache with the JIT mode of the {@code polyvisor.jit} system property (off when unset). */
    public TraceCache(OpcodeTable table, CodePages codePages) { this(table, codePages, JitMode.fromSystemProperty()); }

    public TraceCache(OpcodeTable table, CodePages codePages, JitMode jitMode) { this(table, codePages, jitMode, false); }

    /** @param vcpuThreads the traces run on several host threads (an SMP VM), which the JIT's code must allow for */
    public TraceCache(OpcodeTable table, CodePages codePages, JitMode jitMode, boolean vcpuThreads) {
        this.decoder = new Decoder(table);
        this.codePages = codePages;
        this.jit = Jit.create(jitMode, vcpuThreads);
        if (jit != null) jit.regionsFrom(this::peek);
        codePages.setListener(this);
    }

    public Jit jit() { return jit; }

    public CodePages codePages() { return codePages; }

    /** The set (pa, mode) falls in (tests: to build colliding code). */
    static int setOf(long pa, int mode) { return index(pa, mode) >>> 1; }

    /** Way 0 of the set of (pa, mode); way 1 is the next slot. */
    private static int index(long pa, int mode) {
        return (int) (((pa ^ (long) mode << 56) * 0x9E37_79B9_7F4A_7C15L) >>> (64 - SET_BITS)) << 1;
    }

    /** The trace at the CPU's current RIP, decoding it on a miss. Fetch faults propagate as CpuFault. */
    public Trace lookup(Cpu c, long linear, long pa) {
        int mode = c.decodeMode();
        int i = index(pa, mode);
        Trace t = (Trace) SLOT.getAcquire(table, i);
        if (t != null && t.physAddr == pa && t.mode == mode) return t;
        t = (Trace) SLOT.getAcquire(table, i + 1);
        if (t != null && t.physAddr == pa && t.mode == mode) return t;
        return miss(c, linear, pa, mode, i);
    }

    /**
     * The valid trace decoded at (pa, mode) if the table holds one, else null; never decodes (the JIT, gathering a
     * region from the traces a vCPU has already run).
     */
    public Trace peek(long pa, int mode) {
        int i = index(pa, mode);
        for (int w = i; w <= i + 1; w++) {
            Trace t = (Trace) SLOT.getAcquire(table, w);
            if (t != null && t.physAddr == pa && t.mode == mode && t.valid) return t;
        }
        return null;
    }

    /** Decodes into way 0 of the set; the trace there moves to way 1, whose trace is dropped (a FIFO of two). */
    private synchronized Trace miss(Cpu c, long linear, long pa, int mode, int i) {
        for (int w = i; w <= i + 1; w++) {
            Trace t = table[w];
            if (t != null && t.physAddr == pa && t.mode == mode) return t; // another vCPU built it meanwhile
        }
        if (pa == watchedPa) fireWatch();
        Trace built = build(c, linear, pa, mode);
        builtTraces++;
        Trace older = table[i + 1];
        if (older != null) evict(older);
        SLOT.setRelease(table, i + 1, table[i]);
        SLOT.setRelease(table, i, built);
        return built;
    }

    /**
     * Runs {@code action} once, on the vCPU thread, just before the first trace starting at physical
     * address {@code pa} is decoded: before the guest first executes a function entered there
     * (a call always starts a trace at its target). The VMM uses it to look at guest memory at a
     * point of the guest's own choosing without guest cooperation, e.g. the kernel's __initdata
     * at free_initmem() (matrix.MatrixRunner). Costs one compare per trace build; one watch at a time.
     */
    public synchronized void watchFirstBuild(long pa, Runnable action) {
        watchedPa = pa;
        watchAction = action;
    }

    private void fireWatch() {
        Runnable a = watchAction;
        watchedPa = -1;
        watchAction = null;
        a.run();
    }

    private Trace build(Cpu c, long linear, long pa, int mode) {
        scratch.clear();
        long ip = linear;
        long page1 = pa & ~0xFFFL, page2 = -1;
        long ipPage = linear & ~0xFFFL;
        while (scratch.size() < MAX_LEN) {
            Insn insn;
            try {
                insn = decoder.decode(c, ip);
            } catch (CpuFault f) {
                if (scratch.isEmpty()) throw f; // the first instruction's fetch faults now
                break;                          // a later one faults when (if) execution gets there
            }
            scratch.add(insn);
            long end = ip + insn.len;
            ip = end;
            if (((end - 1) & ~0xFFFL) != ipPage) {
                // The instruction crosses into the next page: that page's frame holds code too.
                page2 = c.mmu.fetchPhys(end - 1) & ~0xFFFL;
                break;
            }
            if (insn.endsTrace) {
                // A direct JMP to the same page: decode on at its target (the page is already this
                // trace's, so invalidation still covers every byte decoded).
                long target = c.long64 ? insn.directTarget(end) : Insn.NO_TARGET;
                if (target == Insn.NO_TARGET || (target & ~0xFFFL) != ipPage) break;
                ip = target;
            } else if ((ip & ~0xFFFL) != ipPage) break;
        }
        decodedInstructions += scratch.size();
        Trace t = new Trace(pa, mode, scratch.toArray(Insn[]::new), page1, page2);
        t.endLinear = ip; // just past the last instruction (instructions need not be contiguous)
        register(t, page1);
        if (page2 >= 0) register(t, page2);
        return t;
    }

    private void register(Trace t, long page) {
        byPage.computeIfAbsent(page, k -> new ArrayList<>()).add(t);
        codePages.mark(page);
    }

    /**
     * A trace loses its table slot to another (a hash collision): it is dropped for good, so that the
     * decoded code held stays bounded by the table's size however long the guest runs (otherwise every
     * re-decode after a collision would add another copy to its page's list until the page is written).
     * It is marked invalid, since the vCPUs' jump caches and other traces' chain slots may still name
     * it and a later write to its page would no longer reach it; its own chain slots are cleared so an
     * invalid trace keeps no others alive.
     */
    private void evict(Trace t) {
        t.valid = false;
        t.unchain();
        unregister(t, t.page1);
        if (t.page2 >= 0) unregister(t, t.page2);
        evictedTraces++;
    }

    private void unregister(Trace t, long page) {
        List<Trace> l = byPage.get(page);
        if (l == null) return;
        for (int k = l.size() - 1; k >= 0; k--) {
            if (l.get(k) == t) {
                l.set(k, l.getLast());
                l.removeLast();
                break;
            }
        }
        if (l.isEmpty()) byPage.remove(page);
    }

    /** Traces held in the page lists now (tests: bounded by the table however long a guest runs). */
    int registeredTraces() {
        int n = 0;
        for (List<Trace> l : byPage.values()) n += l.size();
        return n;
    }

    @Override
    public synchronized void codePageWritten(long physPage) {
        List<Trace> l = byPage.remove(physPage);
        if (l == null) return;
        for (Trace t : l) {
            t.valid = false;
            t.unchain();
            int i = index(t.physAddr, t.mode);
            if (table[i] == t) table[i] = null;
            if (table[i + 1] == t) table[i + 1] = null;
            // A trace that crossed into a second page is still listed under the other one.
            long other = t.page1 == physPage ? t.page2 : t.page1;
            if (other >= 0) unregister(t, other);
        }
    }

    /** Drops everything (e.g. after a loader rewrote memory behind the CPU's back). */
    public synchronized void flush() {
        java.util.Arrays.fill(table, null);
        for (List<Trace> l : byPage.values()) for (Trace t : l) t.valid = false;
        byPage.clear();
    }
}

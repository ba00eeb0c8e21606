package dev.polyvisor.vmm;

import dev.polyvisor.cpu.Cpu;
import dev.polyvisor.cpu.InterruptSource;
import dev.polyvisor.cpu.Platform;
import dev.polyvisor.cpu.Vcpu;
import dev.polyvisor.cpu.VcpuExit;

import java.util.concurrent.atomic.AtomicIntegerArray;
import java.util.concurrent.locks.LockSupport;
import java.util.concurrent.locks.ReentrantLock;
import java.util.function.BooleanSupplier;

/**
 * One host thread per vCPU (issue #12 item 4), for realtime-clock runs with more than one vCPU; icount
 * runs keep {@link Vm#run()}'s single-thread round-robin, whose interleaving is reproducible.
 *
 * <p>Each vCPU thread loops on {@link Vcpu#run}: guest code and guest RAM need no lock (LOCK'd
 * instructions are atomic updates of RAM, cpu.exec.LockedOps), while every exit into the VMM holds the
 * big VMM lock ({@link LockedPlatform}, like QEMU's BQL). The VM thread, the caller of {@link Vm#run()},
 * keeps the rest: timers, console input, virtio host service, the timeout and the lifecycle (end, S3); it
 * parks until the next timer deadline, an earlier one being armed, or host data.
 *
 * <p>Events for a vCPU are posted, never done to it from another thread: an interrupt goes into its LAPIC
 * (under the lock) and then the vCPU is <em>kicked</em> - its quantum is stopped and its thread unparked
 * (KVM's kvm_vcpu_kick). NMIs, INIT, SIPI and TLB flushes are flags the vCPU's own thread takes at its
 * next quantum boundary. A halted vCPU parks its thread; it re-checks its wake condition after every
 * unpark, and a kick that comes between the check and the park leaves the thread's permit set, so the
 * park returns at once: no wake-up is lost. Parks are bounded ({@link #PARK_LIMIT_NS}) only as a guard.
 *
 * <p>Stopping the world ({@link #stopWorld}) parks every vCPU thread at its quantum boundary, for what the VM
 * thread must do to all vCPUs at once (ACPI S3 suspend and resume).
 */
final class VcpuThreads {
    /** Instructions per quantum: a vCPU checks posted flags, INIT/SIPI and the end of the run this often. */
    static final long QUANTUM = 200_000;
    /** The longest a parked thread sleeps without a wake-up (a guard, not a poll: wake-ups are kicks). */
    static final long PARK_LIMIT_NS = 50_000_000L;
    /** The longest a requester waits for a remote TLB flush before it goes on. */
    static final long FLUSH_WAIT_NS = 20_000_000L;

    private final Vm vm;
    private final ReentrantLock bql;
    private final VcpuThread[] threads;
    /** Per vCPU, bits of {@link #NMI}, {@link #INIT}, {@link #SIPI}, {@link #FLUSH}, {@link #WAKE}: events its own thread takes. */
    private final AtomicIntegerArray posted;
    private final int[] sipiVector;
    /**
     * NMIs posted to each vCPU and not yet latched: counted, not a bit, since two may be pending at once
     * (one latched behind one in service; KVM's process_nmi allows two, kvm-unit-tests apic "multiple nmi").
     */
    private final AtomicIntegerArray nmis;
    static final int NMI = 1, INIT = 2, SIPI = 4, FLUSH = 8, WAKE = 16;

    private volatile boolean stopWorld;
    private int stoppedThreads;
    private volatile Thread vmThread;

    /** A vCPU's host thread: also how the VMM tells which vCPU made an exit (port I/O has no vCPU argument). */
    static final class VcpuThread extends Thread {
        final Cpu cpu;
        VcpuThread(Runnable r, Cpu cpu) {
            super(r, "polyvisor-vcpu" + cpu.id);
            this.cpu = cpu;
            setDaemon(true);
        }
    }

    VcpuThreads(Vm vm, ReentrantLock bql) {
        this.vm = vm;
        this.bql = bql;
        int n = vm.vcpus.size();
        this.threads = new VcpuThread[n];
        this.posted = new AtomicIntegerArray(n);
        this.sipiVector = new int[n];
        this.nmis = new AtomicIntegerArray(n);
        this.threadCpuNanos = new long[n];
        for (int i = 0; i < n; i++) {
            final int id = i;
            threads[i] = new VcpuThread(() -> vcpuLoop(id), vm.vcpus.get(i).cpu);
        }
    }

    /** The threaded mode applies: realtime clock, more than one vCPU, and not turned off with {@code -Dpolyvisor.vcpuThreads=false}. */
    static boolean applies(VmConfig config) {
        return config.smp() > 1 && config.clock() != VmConfig.ClockMode.ICOUNT
                && !"false".equals(System.getProperty("polyvisor.vcpuThreads"));
    }

    /** The vCPU the calling thread runs, or null on any other thread. */
    static Cpu currentCpu() { return Thread.currentThread() instanceof VcpuThread t ? t.cpu : null; }

    // ---- posting and kicking (any thread) ----

    /** Ends vCPU {@code i}'s quantum soon and unparks its thread: it re-checks interrupts and posted events. */
    void kick(int i) {
        if (i < 0 || i >= threads.length) return;
        vm.vcpus.get(i).interrupt();
        LockSupport.unpark(threads[i]);
    }

    void kickAll() { for (int i = 0; i < threads.length; i++) kick(i); }

    /** Unparks the halted vCPUs so they re-check their wake condition (after the VM thread ran timers or devices). */
    void wakeHalted() {
        for (int i = 0; i < threads.length; i++) if (vm.vcpus.get(i).cpu.halted) LockSupport.unpark(threads[i]);
    }

    void postNmi(int i) {
        if (i < 0 || i >= threads.length) return;
        nmis.incrementAndGet(i);
        post(i, NMI);
    }

    /**
     * Latches the NMIs posted to vCPU i (its own thread; at most two stay pending, as on hardware). Called
     * between quanta and from the interrupt poll, so that an NMI posted before a fixed IPI is latched
     * before that IPI is taken (the vCPU's run loop checks NMIs ahead of maskable interrupts).
     */
    private boolean latchPostedNmis(int i) {
        int n = nmis.getAndSet(i, 0);
        if (n == 0) return false;
        bql.lock();
        try {
            for (int k = 0; k < Math.min(n, 2); k++) vm.latchNmi(i);
        } finally {
            bql.unlock();
        }
        return true;
    }

    /** A personality's wake-up of a halted vCPU (Xen without a callback vector): it leaves HLT on its own thread. */
    void postWake(int i) { post(i, WAKE); }

    /** INIT (SDM Vol. 3A 9.4.3): the vCPU resets itself on its own thread and waits for SIPI. */
    void postInit(int i) { post(i, INIT); }

    /** SIPI: taken only by a vCPU in wait-for-SIPI (after INIT), as {@link Vm}'s round-robin does. */
    void postSipi(int i, int vector) {
        if (i < 0 || i >= threads.length) return;
        synchronized (sipiVector) { sipiVector[i] = vector; }
        post(i, SIPI);
    }

    private void post(int i, int bit) {
        if (i < 0 || i >= threads.length) return;
        int old;
        do old = posted.get(i); while (!posted.compareAndSet(i, old, old | bit));
        kick(i);
    }

    /**
     * Flushes vCPU {@code target}'s TLB as seen from the caller: its own at once; another's is posted, and the
     * caller waits (without the big lock) until that vCPU took it or is halted (it takes it before it runs
     * again), so that a hypercall TLB shootdown (Hyper-V HvFlushVirtualAddressSpace) has happened when
     * it returns, as on hardware after the IPIs are acknowledged.
     */
    void flushTlb(int target) {
        if (target < 0 || target >= threads.length) return;
        Cpu me = currentCpu();
        Cpu c = vm.vcpus.get(target).cpu;
        if (me == c) { c.mmu.flushAll(); return; }
        post(target, FLUSH);
        if (me == null) return;
        int holds = releaseLock();
        try {
            long until = System.nanoTime() + FLUSH_WAIT_NS;
            while ((posted.get(target) & FLUSH) != 0 && !c.halted && vm.isStarted(target) && !vm.ended()
                    && System.nanoTime() < until)
                Thread.onSpinWait();
        } finally {
            reacquireLock(holds);
        }
    }

    /**
     * A personality's blocking wait (Xen SCHEDOP_poll/block, Hyper-V GUEST_IDLE) on vCPU {@code vcpu}'s own
     * thread: parks it, without the big lock, until {@code until} holds, an interrupt it would take is
     * pending, an event is posted to it, the run ends, or the deadline (virtual) or {@link Vm#BLOCK_LIMIT_NS}
     * (host time) passes; a spurious return is allowed. Kicks from interrupts and personalities unpark it.
     */
    void block(int vcpu, boolean ignoreIf, BooleanSupplier until, long deadlineNs) {
        Cpu c = vm.vcpus.get(vcpu).cpu;
        if (currentCpu() != c) return; // only a vCPU's own thread blocks it
        int holds = releaseLock();
        try {
            long wallLimit = System.nanoTime() + Vm.BLOCK_LIMIT_NS;
            while (!vm.ended() && !stopWorld && posted.get(vcpu) == 0) {
                long now = System.nanoTime();
                if (now >= wallLimit || vm.clock.nanos() >= deadlineNs) return;
                bql.lock();
                try {
                    if (until.getAsBoolean() || (c.interrupts.hasPending() && (ignoreIf || c.interruptsEnabled()))) return;
                } finally {
                    bql.unlock();
                }
                long virtLeft = deadlineNs - vm.clock.nanos();
                LockSupport.parkNanos(Math.max(1, Math.min(Math.min(wallLimit - now, virtLeft), PARK_LIMIT_NS)));
            }
        } finally {
            c.stopRequested = false; // the kick that woke this wait has been answered
            reacquireLock(holds);
        }
    }

    private int releaseLock() {
        int holds = bql.getHoldCount();
        for (int k = 0; k < holds; k++) bql.unlock();
        return holds;
    }

    private void reacquireLock(int holds) {
        for (int k = 0; k < holds; k++) bql.lock();
    }

    // ---- the vCPU threads ----

    /** Steal is handed to the personalities (under the lock) in batches of at least this much. */
    static final long STEAL_BATCH_NS = 1_000_000L;
    private static final java.lang.management.ThreadMXBean CPU_TIME = java.lang.management.ManagementFactory.getThreadMXBean();

    private void vcpuLoop(int i) {
        Vcpu v = vm.vcpus.get(i);
        Cpu c = v.cpu;
        long steal = 0;
        boolean measure = CPU_TIME.isCurrentThreadCpuTimeSupported();
        try {
            while (!vm.ended()) {
                if (stopWorld) { parkStopped(); continue; }
                if (posted.get(i) != 0) takePosted(i, c);
                if (!vm.isStarted(i) || (c.halted && !wakeable(i, c))) {
                    LockSupport.parkNanos(PARK_LIMIT_NS);
                    continue;
                }
                // Steal time, as a host accounts it (KVM: the task's run_delay, arch/x86/kvm/x86.c record_steal_time):
                // the part of a quantum the vCPU wanted to run but its thread was not on a host CPU.
                long v0 = measure ? vm.clock.nanos() : 0, c0 = measure ? CPU_TIME.getCurrentThreadCpuTime() : 0;
                VcpuExit e = v.run(QUANTUM);
                if (measure) {
                    long s = (vm.clock.nanos() - v0) - (CPU_TIME.getCurrentThreadCpuTime() - c0);
                    if (s > 0) steal += s;
                    if (steal >= STEAL_BATCH_NS) {
                        bql.lock();
                        try { vm.addSteal(i, steal); } finally { bql.unlock(); }
                        steal = 0;
                    }
                }
                switch (e) {
                    case VcpuExit.Shutdown s -> vm.requestEnd(Outcome.Kind.SHUTDOWN, Outcome.SHUTDOWN_STATUS,
                            "guest shut down (triple fault): " + s.reason());
                    case VcpuExit.Halt h -> {
                        bql.lock();
                        try { vm.haltExit(i); } finally { bql.unlock(); }
                    }
                    default -> { }
                }
            }
        } catch (RuntimeException | StackOverflowError e) {
            vm.requestEnd(Outcome.Kind.ERROR, Outcome.ERROR_STATUS, String.format(
                    "emulator error at RIP 0x%x (vCPU %d): %s", c.rip, i, e));
        } finally {
            if (measure) threadCpuNanos[i] = CPU_TIME.getCurrentThreadCpuTime();
            LockSupport.unpark(vmThread);
        }
    }

    /** Each vCPU thread's CPU time when it ended (0 while it runs), for {@code --stats}. */
    final long[] threadCpuNanos;

    /** NMI, INIT, SIPI and TLB flushes posted to vCPU i, taken on its own thread between quanta. */
    private void takePosted(int i, Cpu c) {
        int bits = posted.getAndSet(i, 0);
        if ((bits & FLUSH) != 0) c.mmu.flushAll();
        if ((bits & WAKE) != 0) c.halted = false;
        if ((bits & (NMI | INIT | SIPI)) == 0) return;
        bql.lock();
        try {
            if ((bits & INIT) != 0) vm.initVcpu(i);
            if ((bits & SIPI) != 0) {
                int vector;
                synchronized (sipiVector) { vector = sipiVector[i]; }
                vm.sipiVcpu(i, vector);
            }
        } finally {
            bql.unlock();
        }
        if ((bits & NMI) != 0) latchPostedNmis(i);
    }

    /** A halted vCPU can go on: a posted unhalt (NMI, KVM PV kick) or an interrupt it takes with IF=1. */
    private boolean wakeable(int i, Cpu c) {
        bql.lock();
        try {
            if (vm.unhalt(i)) return true;
        } finally {
            bql.unlock();
        }
        return c.interruptsEnabled() && c.interrupts.hasPending();
    }

    private void parkStopped() {
        synchronized (this) {
            stoppedThreads++;
            notifyAll();
            while (stopWorld && !vm.ended()) {
                try {
                    wait(PARK_LIMIT_NS / 1_000_000);
                } catch (InterruptedException e) {
                    Thread.currentThread().interrupt();
                    return;
                }
            }
            stoppedThreads--;
        }
    }

    /** Parks every vCPU thread at its next quantum boundary and returns when all are parked (VM thread). */
    void stopWorld() {
        stopWorld = true;
        kickAll();
        synchronized (this) {
            while (stoppedThreads < liveThreads() && !vm.ended()) {
                try {
                    wait(10);
                } catch (InterruptedException e) {
                    Thread.currentThread().interrupt();
                    return;
                }
                kickAll();
            }
        }
    }

    private int liveThreads() {
        int n = 0;
        for (Thread t : threads) if (t.isAlive()) n++;
        return n;
    }

    void resumeWorld() {
        synchronized (this) {
            stopWorld = false;
            notifyAll();
        }
        kickAll();
    }

    // ---- the VM thread ----

    /**
     * Runs the VM until it ends: starts the vCPU threads (each vCPU's platform and interrupt acknowledgement
     * under the big lock) and serves timers, input and host I/O on the calling thread; the vCPUs' own
     * {@link Platform} and {@link InterruptSource} are restored when it returns.
     */
    void run(long deadline) {
        vmThread = Thread.currentThread();
        Platform[] platforms = new Platform[threads.length];
        InterruptSource[] sources = new InterruptSource[threads.length];
        for (int i = 0; i < threads.length; i++) {
            Cpu c = threads[i].cpu;
            platforms[i] = c.platform;
            sources[i] = c.interrupts;
            c.platform = new LockedPlatform(c.platform, bql);
            c.interrupts = new LockedInterruptSource(i, c, c.interrupts);
        }
        vm.clock.timers().setOnEarlierDeadline(() -> LockSupport.unpark(vmThread));
        for (VcpuThread t : threads) t.start();
        try {
            boolean idleOnce = false;
            while (!vm.ended()) {
                if (vm.isSuspended()) {
                    stopWorld();
                    try {
                        bql.lock();
                        try {
                            while (vm.isSuspended() && !vm.ended()) if (!vm.sleepUntilWake(deadline)) break;
                        } finally {
                            bql.unlock();
                        }
                    } finally {
                        resumeWorld();
                    }
                    continue;
                }
                long next;
                boolean stop;
                bql.lock();
                try {
                    vm.serviceEvents();
                    next = vm.clock.timers().nextDeadline();
                    stop = vm.nothingCanWake();
                } finally {
                    bql.unlock();
                }
                wakeHalted();
                long now = System.nanoTime();
                if (now >= deadline) {
                    vm.requestEnd(Outcome.Kind.TIMEOUT, Outcome.TIMEOUT_STATUS,
                            "timeout: the guest ran for " + vm.config.timeout().toSeconds() + " s without exiting");
                    break;
                }
                // Every vCPU halted with nothing pending and nothing armed, seen on two passes a park apart
                // (a vCPU's halted flag is read without its thread's cooperation).
                if (stop && idleOnce) {
                    vm.requestEnd(Outcome.Kind.STOPPED, Outcome.STOPPED_STATUS, String.format(
                            "guest stopped: every vCPU halted waiting for an interrupt, and no timer is armed (RIP 0x%x)", vm.bsp().rip));
                    break;
                }
                idleOnce = stop;
                long wait = Math.min(vm.clock.maxParkNanos(), deadline - now);
                if (next != Long.MAX_VALUE) wait = Math.min(wait, next - vm.clock.nanos());
                if (wait > 0) LockSupport.parkNanos(wait);
            }
        } finally {
            kickAll();
            // Every vCPU thread has ended before this returns, interrupted or not: the VM closes guest RAM next, and
            // compiled code reads it through a segment that cannot close (GuestMemory.ramForCompiledCode).
            boolean interrupted = false;
            for (VcpuThread t : threads) {
                while (t.isAlive()) {
                    try {
                        t.join();
                    } catch (InterruptedException e) {
                        interrupted = true;
                    }
                }
            }
            if (interrupted) Thread.currentThread().interrupt();
            vm.clock.timers().setOnEarlierDeadline(null);
            for (int i = 0; i < threads.length; i++) {
                threads[i].cpu.platform = platforms[i];
                threads[i].cpu.interrupts = sources[i];
            }
            vmThread = null;
        }
    }

    /**
     * The vCPU's interrupt controller with the INTA cycle under the big lock (it changes LAPIC ISR and
     * the 8259's state); polling stays lock-free (the LAPIC guards its IRR itself, a stale answer is
     * corrected by the kick that follows every posting).
     */
    private final class LockedInterruptSource implements InterruptSource {
        private final int vcpu;
        private final Cpu cpu;
        private final InterruptSource inner;

        LockedInterruptSource(int vcpu, Cpu cpu, InterruptSource inner) {
            this.vcpu = vcpu;
            this.cpu = cpu;
            this.inner = inner;
        }

        /**
         * An NMI posted before the interrupt seen here (another vCPU's NMI then fixed IPI, apic.c
         * kick_me_nmi) is latched first and this poll reports nothing: the quantum ends and the run loop
         * delivers the NMI, then the interrupt. NMIs are read after the LAPIC, so one posted before an
         * IRR bit that is seen is seen too (the LAPIC's monitor orders them).
         */
        @Override public boolean hasPending() {
            boolean p = inner.hasPending();
            if (nmis.get(vcpu) != 0) {
                if (currentCpu() != cpu) return true; // the VM thread asks whether anything is pending: an NMI is
                if (latchPostedNmis(vcpu)) {
                    cpu.stopRequested = true;
                    return false;
                }
            }
            return p;
        }

        @Override public int acknowledge() {
            bql.lock();
            try { return inner.acknowledge(); } finally { bql.unlock(); }
        }
    }
}

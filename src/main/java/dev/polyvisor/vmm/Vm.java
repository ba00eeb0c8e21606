package dev.polyvisor.vmm;

import dev.polyvisor.clock.VirtualClock;
import dev.polyvisor.cpu.Cpu;
import dev.polyvisor.cpu.InterruptSource;
import dev.polyvisor.cpu.Platform;
import dev.polyvisor.cpu.TraceCache;
import dev.polyvisor.cpu.Vcpu;
import dev.polyvisor.cpu.VcpuExit;
import dev.polyvisor.cpu.exec.Isa;
import dev.polyvisor.devices.IoBus;
import dev.polyvisor.memory.GuestMemory;
import dev.polyvisor.devices.PcPlatformDevices;
import dev.polyvisor.vmm.boot.FlatBinary;
import dev.polyvisor.vmm.pc.PcBoard;
import dev.polyvisor.vmm.boot.ImageFile;
import dev.polyvisor.vmm.boot.linux.E820Entry;
import dev.polyvisor.vmm.boot.linux.LinuxBoot;
import dev.polyvisor.vmm.boot.linux.LoadedKernel;
import dev.polyvisor.vmm.boot.linux.Pvh;
import dev.polyvisor.vmm.boot.LoadException;
import dev.polyvisor.vmm.boot.Multiboot;

import dev.polyvisor.cpu.model.CpuModel;
import dev.polyvisor.personality.PersonalityStack;
import dev.polyvisor.personality.core.GuestPortIo;
import dev.polyvisor.personality.core.InterruptInjector;
import dev.polyvisor.personality.core.MsrAccess;
import dev.polyvisor.personality.core.PersonalityEnv;

import java.io.IOException;
import java.io.OutputStream;
import java.nio.file.Files;
import java.util.ArrayList;
import java.util.List;
import java.util.Optional;
import java.util.concurrent.locks.LockSupport;
import java.util.function.BooleanSupplier;
import java.util.function.Predicate;

/**
 * One virtual machine: guest RAM, the port-I/O bus with its devices, the vCPUs sharing one trace
 * cache, and the VM's clock. It is the vCPUs' {@link Platform}: port I/O goes to the {@link IoBus},
 * CPUID to a {@link CpuidSource}, MSRs to an {@link MsrSource}, hypercalls to a handler (none: #UD),
 * and the TSC derives from the {@link VirtualClock}.
 *
 * <p>{@link #run()} drives the vCPUs in quanta on the calling thread and handles the lifecycle exits:
 * HLT waits for an interrupt (or ends the run when none can ever come), a triple fault ends it with a
 * one-line message, and the debug-exit device, poweroff or the timeout end it with a status.
 * Application processors stay in wait-for-SIPI until an interrupt controller starts them.
 */
public final class Vm implements Platform, AutoCloseable {
    /** Instructions per quantum: long enough to amortise the loop, short enough to notice a timeout. */
    static final long QUANTUM = 50_000;

    public final VmConfig config;
    public final GuestMemory memory;
    public final IoBus io = new IoBus();
    public final VirtualClock clock;
    public final TraceCache traces;
    public final List<Vcpu> vcpus = new ArrayList<>();
    private final boolean[] started;
    private final OutputStream console;
    private final OutputStream consoleLog;

    private CpuidSource cpuid;
    private MsrSource msrs = MsrSource.NONE;
    private Predicate<VcpuExit.Hypercall> hypercalls = h -> false;
    private InterruptSource interrupts = InterruptSource.NONE;
    /** The hypervisor ABIs presented (bare by default): CPUID leaves, MSRs, hypercalls, ports. */
    public final PersonalityStack personalities;
    /** Per-vCPU vectors injected by personalities while no LAPIC is wired (null for bare). */
    private final PendingVectors[] injected;

    /** The PC board (devices, ACPI) for Linux boots; null for multiboot and flat test guests. */
    private final PcBoard board;
    /** RTC wall time at virtual time 0 in icount mode, so that runs are reproducible (2024-01-01T00:00:00Z). */
    static final long ICOUNT_RTC_EPOCH = 1_704_067_200L;

    private volatile Outcome.Kind endKind;
    private volatile int endStatus;
    private volatile String endMessage = "";
    private volatile Vcpu running;

    /** Builds the machine and loads the kernel per {@code config.boot()}. */
    public Vm(VmConfig config, OutputStream console) throws LoadException {
        this.config = config;
        this.memory = new GuestMemory(config.memoryBytes());
        try {
            this.consoleLog = openLog(config);
            this.console = consoleLog == null ? console : new Tee(console, consoleLog);
            Cpu c0 = new Cpu(0, memory, this);
            this.traces = new TraceCache(Isa.table(), c0.mmu.codePages());
            for (int i = 0; i < config.smp(); i++)
                vcpus.add(new Vcpu(i == 0 ? c0 : new Cpu(i, memory, this), traces));
            this.started = new boolean[config.smp()];
            started[0] = true;
            this.clock = config.clock() == VmConfig.ClockMode.ICOUNT ? new IcountClock(this::instructionsRetired) : new VirtualClock();
            this.personalities = buildPersonalities();
            this.cpuid = personalities.cpuidTable(CpuModel.qemu64(), config.smp())::cpuid;
            boolean bare = config.personalities().equals(List.of("bare"));
            this.injected = bare ? null : new PendingVectors[config.smp()];
            if (!bare) {
                for (int i = 0; i < injected.length; i++) {
                    injected[i] = new PendingVectors();
                    vcpus.get(i).cpu.interrupts = injected[i];
                }
                interrupts = injected[0];
            }
            if (config.boot() == VmConfig.BootKind.LINUX || config.boot() == VmConfig.BootKind.PVH) {
                // A PC for Linux: the full device set, ACPI tables and e820 (vmm.pc.PcBoard).
                long rtcEpoch = config.clock() == VmConfig.ClockMode.ICOUNT ? ICOUNT_RTC_EPOCH : System.currentTimeMillis() / 1000;
                board = new PcBoard(clock, config.smp(), io, memory, rtcEpoch, new PcPlatformDevices.Hooks(
                        this::serialOut, () -> requestEnd(Outcome.Kind.POWEROFF, Outcome.POWEROFF, "guest requested a reset"),
                        this::powerOff, new Signals()));
                for (Vcpu v : vcpus) board.attach(v.cpu);
                interrupts = board.devices.interruptSource(0);
            } else {
                board = null;
                io.register(ConsoleStub.COM1, 8, new ConsoleStub(this.console));
                io.register(PowerOffStub.PM1A_CNT, 2, new PowerOffStub(this::powerOff));
            }
            io.register(DebugExit.PORT, 4, new DebugExit(this::debugExit));
            boot();
        } catch (LoadException | RuntimeException e) {
            memory.close();
            throw e;
        }
    }

    private PersonalityStack buildPersonalities() throws LoadException {
        try {
            return PersonalityStack.of(config.personalitySpec(), config.abiDisable(),
                    PersonalityEnv.of(memory, clock, new Injector(), config.smp()));
        } catch (IllegalArgumentException e) {
            throw new LoadException("--personality " + config.personalitySpec() + ": " + e.getMessage());
        }
    }

    private static OutputStream openLog(VmConfig config) throws LoadException {
        if (config.consoleLog() == null) return null;
        try {
            return Files.newOutputStream(config.consoleLog());
        } catch (IOException e) {
            throw new LoadException("console log " + config.consoleLog() + ": cannot create: " + e.getMessage());
        }
    }

    private void boot() throws LoadException {
        Cpu bsp = vcpus.getFirst().cpu;
        switch (config.boot()) {
            case MULTIBOOT -> {
                List<Multiboot.Module> mods = config.initrd() == null ? List.of()
                        : List.of(new Multiboot.Module(config.initrd(), config.initrd().getFileName().toString()));
                Multiboot.load(memory, bsp, config.kernel(), config.append(), mods);
            }
            case FLAT -> {
                if (config.initrd() != null) throw new LoadException("--initrd is not supported with --boot flat");
                FlatBinary.load(memory, bsp, config.kernel(), config.flat().address(), config.flat().mode());
            }
            case LINUX, PVH -> bootLinux(bsp);
        }
        traces.flush();
    }

    /** The PC memory map below and above 1 MiB (the EBDA and BIOS areas reserved), as QEMU's BIOS reports it. */
    public static List<E820Entry> e820(long ramSize) {
        return List.of(new E820Entry(0, 0x9FC00, E820Entry.RAM),
                new E820Entry(0x9FC00, 0xA0000 - 0x9FC00, E820Entry.RESERVED),
                new E820Entry(0xF0000, 0x10000, E820Entry.RESERVED),
                new E820Entry(0x100000, ramSize - 0x100000, E820Entry.RAM));
    }

    private void bootLinux(Cpu bsp) throws LoadException {
        byte[] kernel = ImageFile.read(config.kernel(), "kernel");
        byte[] initrd = config.initrd() == null ? null : ImageFile.read(config.initrd(), "initrd");
        try {
            LoadedKernel k = board.loadLinux(memory, kernel, initrd, config.append(), config.boot() == VmConfig.BootKind.PVH);
            k.entry().apply(bsp);
            bsp.mmu.flushAll();
        } catch (dev.polyvisor.vmm.boot.linux.LoadException e) {
            throw new LoadException(config.kernel() + ": " + e.getMessage());
        }
    }

    /** Bytes the guest wrote to COM1. */
    private void serialOut(byte[] b) {
        try {
            console.write(b);
            console.flush();
        } catch (IOException ignored) {
            // the console went away (closed pipe): the guest keeps running, its output is dropped
        }
    }

    /** Host keyboard input for the guest's console (COM1); ignored for guests without the UART. */
    public void consoleInput(byte[] data) {
        if (board != null) board.devices.com1.feed(data);
    }

    /** Run-state signals from the LAPICs: INIT and SIPI start application processors (SDM 8.4.4.1). */
    private final class Signals implements dev.polyvisor.devices.ApicBus.CpuSignals {
        @Override public void kick(int vcpu) { if (vcpu >= 0 && vcpu < vcpus.size()) vcpus.get(vcpu).cpu.halted = false; }
        @Override public void nmi(int vcpu) { }
        @Override public void init(int vcpu) {
            if (vcpu <= 0 || vcpu >= vcpus.size()) return;
            Cpu c = vcpus.get(vcpu).cpu;
            c.reset();
            started[vcpu] = false; // wait-for-SIPI
        }
        @Override public void sipi(int vcpu, int vector) {
            if (vcpu <= 0 || vcpu >= vcpus.size() || started[vcpu]) return;
            Cpu c = vcpus.get(vcpu).cpu;
            c.setRealSegment(Cpu.CS, vector << 8);
            c.rip = 0;
            c.halted = false;
            started[vcpu] = true;
        }
    }

    // ---- wiring points for personalities and devices ----
    public void setCpuidSource(CpuidSource s) { this.cpuid = s; }
    public void setMsrSource(MsrSource s) { this.msrs = s; }
    public void setHypercallHandler(Predicate<VcpuExit.Hypercall> h) { this.hypercalls = h; }

    public void setInterruptSource(InterruptSource s) {
        this.interrupts = s;
        for (Vcpu v : vcpus) v.cpu.interrupts = s;
    }

    public Cpu bsp() { return vcpus.getFirst().cpu; }

    public long instructionsRetired() {
        long n = 0;
        for (Vcpu v : vcpus) n += v.cpu.instructionsRetired;
        return n;
    }

    // ---- lifecycle ----

    /** Ends the run at the next quantum boundary (any thread). */
    public void requestEnd(Outcome.Kind kind, int status, String message) {
        if (endKind == null) {
            endStatus = status;
            endMessage = message;
            endKind = kind;
        }
        Vcpu r = running;
        if (r != null) r.interrupt();
    }

    private void debugExit(int status) { requestEnd(Outcome.Kind.DEBUG_EXIT, status, ""); }

    /** Guest poweroff (ACPI S5 or a reset device told to power off). */
    public void powerOff() { requestEnd(Outcome.Kind.POWEROFF, Outcome.POWEROFF, ""); }

    /** Runs the VM until the guest exits, the machine shuts down, stops for good, or times out. */
    public Outcome run() {
        long t0 = System.nanoTime();
        long deadline = config.timeout() == null ? Long.MAX_VALUE : t0 + config.timeout().toNanos();
        try {
            while (endKind == null) {
                boolean anyRunnable = false, allHalted = true;
                for (int i = 0; i < vcpus.size() && endKind == null; i++) {
                    if (!started[i]) continue;
                    Vcpu v = vcpus.get(i);
                    running = v;
                    dev.polyvisor.devices.ApicBus.setCurrentVcpu(i);
                    VcpuExit e = v.run(QUANTUM);
                    running = null;
                    clock.timers().runExpired();
                    switch (e) {
                        case VcpuExit.Shutdown s -> requestEnd(Outcome.Kind.SHUTDOWN, Outcome.SHUTDOWN_STATUS,
                                "guest shut down (triple fault): " + s.reason());
                        case VcpuExit.Halt h -> {
                            if (!v.cpu.interruptsEnabled())
                                requestEnd(Outcome.Kind.STOPPED, Outcome.STOPPED_STATUS, String.format(
                                        "guest stopped: vCPU %d halted with interrupts disabled at RIP 0x%x", i, v.cpu.rip));
                            else if (interrupts == InterruptSource.NONE)
                                requestEnd(Outcome.Kind.STOPPED, Outcome.STOPPED_STATUS, String.format(
                                        "guest stopped: vCPU %d halted waiting for an interrupt, but no device can raise one (RIP 0x%x)", i, v.cpu.rip));
                        }
                        default -> { allHalted = false; }
                    }
                    anyRunnable = true;
                    if (!v.cpu.halted) allHalted = false;
                }
                personalities.onTick(clock.nanos());
                if (endKind != null) break;
                if (!anyRunnable) {
                    requestEnd(Outcome.Kind.STOPPED, Outcome.STOPPED_STATUS, "guest stopped: no vCPU is running");
                    break;
                }
                long now = System.nanoTime();
                if (now >= deadline) {
                    requestEnd(Outcome.Kind.TIMEOUT, Outcome.TIMEOUT_STATUS,
                            "timeout: the guest ran for " + config.timeout().toSeconds() + " s without exiting");
                    break;
                }
                if (allHalted) idle(deadline);
            }
        } catch (RuntimeException | StackOverflowError e) {
            Cpu c = running == null ? bsp() : running.cpu;
            requestEnd(Outcome.Kind.ERROR, Outcome.ERROR_STATUS, String.format(
                    "emulator error at RIP 0x%x: %s", c.rip, e));
        } finally {
            running = null;
            flushConsole();
        }
        return new Outcome(endKind, endStatus, endMessage, instructionsRetired(), System.nanoTime() - t0);
    }

    /** Every started vCPU is halted with IF=1: wait for an interrupt (realtime) or warp time (icount). */
    private void idle(long deadline) {
        long waitUntil = Math.min(deadline, System.nanoTime() + 1_000_000);
        while (!anyPending() && endKind == null && System.nanoTime() < waitUntil) {
            long now = clock.nanos();
            personalities.onTick(now);
            if (clock.timers().runExpired(now) > 0) continue;
            if (clock instanceof IcountClock ic) {
                // icount: nothing can happen before the next deadline, so jump there (DESIGN.md "Time").
                long next = Math.min(clock.timers().nextDeadline(), personalities.nextDeadlineNs());
                ic.warp(next == Long.MAX_VALUE ? 100_000 : Math.max(1, next - now));
                clock.timers().runExpired();
                return;
            }
            long next = clock.timers().nextDeadline();
            LockSupport.parkNanos(next == Long.MAX_VALUE ? 50_000 : Math.clamp(next - now, 1_000, 50_000));
        }
    }

    private boolean anyPending() {
        for (int i = 0; i < vcpus.size(); i++) if (started[i] && vcpus.get(i).cpu.interrupts.hasPending()) return true;
        return false;
    }

    private void flushConsole() {
        try {
            console.flush();
            if (consoleLog != null) consoleLog.flush();
        } catch (IOException ignored) {
            // the console went away (closed pipe); nothing useful to report
        }
    }

    @Override
    public void close() {
        try {
            if (consoleLog != null) consoleLog.close();
        } catch (IOException ignored) {
            // best effort on teardown
        }
        memory.close();
    }

    // ---- Platform ----
    @Override
    public long portIn(int port, int size) {
        Optional<GuestPortIo> p = personalities.portIo(port);
        return p.isPresent() ? p.get().in(current(), port, size) : io.in(port, size);
    }

    @Override
    public void portOut(int port, int size, long value) {
        Optional<GuestPortIo> p = personalities.portIo(port);
        if (p.isPresent()) p.get().out(current(), port, size, value);
        else io.out(port, size, value);
    }

    private Cpu current() { Vcpu r = running; return r == null ? bsp() : r.cpu; }
    @Override public int[] cpuid(int vcpuId, int leaf, int subleaf) { return cpuid.cpuid(vcpuId, leaf, subleaf); }
    @Override
    public MsrResult rdmsr(int vcpuId, int index) {
        return switch (personalities.rdmsr(vcpuId, index)) {
            case MsrAccess.Handled h -> MsrResult.of(h.value());
            case MsrAccess.Gp g -> MsrResult.gp();
            case MsrAccess.NotHandled n -> msrs.rdmsr(vcpuId, index);
        };
    }

    @Override
    public boolean wrmsr(int vcpuId, int index, long value) {
        return switch (personalities.wrmsr(vcpuId, index, value)) {
            case MsrAccess.Handled h -> true;
            case MsrAccess.Gp g -> false;
            case MsrAccess.NotHandled n -> msrs.wrmsr(vcpuId, index, value);
        };
    }

    @Override public boolean hypercall(VcpuExit.Hypercall call) { return personalities.hypercall(call) || hypercalls.test(call); }
    @Override public long tsc(int vcpuId) { return clock.tsc(); }

    /**
     * What personalities ask of the VMM. Without a LAPIC, injected vectors queue in {@link PendingVectors};
     * vCPUs share this thread, so blocking waits for time (and the personalities' timers) to move on.
     */
    private final class Injector implements InterruptInjector {
        @Override public void fixed(int vcpu, int vector) { post(vcpu, vector); }

        @Override public void nmi(int vcpu) { post(vcpu, 2); }

        @Override public void upcall(int vcpu, int vector) { post(vcpu, vector); }

        private void post(int vcpu, int vector) {
            if (board != null) {
                board.devices.apics.deliver(new dev.polyvisor.devices.ApicMessage(vector, vector == 2
                        ? dev.polyvisor.devices.ApicMessage.NMI : dev.polyvisor.devices.ApicMessage.FIXED,
                        false, vcpu, false, true, dev.polyvisor.devices.ApicMessage.NO_SHORTHAND, -1));
                vcpus.get(vcpu).cpu.halted = false;
                return;
            }
            if (injected == null || vcpu < 0 || vcpu >= injected.length) return;
            injected[vcpu].post(vector);
            vcpus.get(vcpu).cpu.halted = false;
        }

        @Override public void wake(int vcpu) { if (vcpu >= 0 && vcpu < vcpus.size()) vcpus.get(vcpu).cpu.halted = false; }

        @Override public void flushTlb(int vcpu) { if (vcpu >= 0 && vcpu < vcpus.size()) vcpus.get(vcpu).cpu.mmu.flushAll(); }

        @Override
        public void block(int vcpu, boolean ignoreIf, BooleanSupplier until, long deadlineNs) {
            Cpu c = vcpus.get(vcpu).cpu;
            long wallLimit = System.nanoTime() + 100_000_000L; // spurious returns are allowed: bound each wait
            while (endKind == null && !until.getAsBoolean() && clock.nanos() < deadlineNs && System.nanoTime() < wallLimit) {
                if (c.interrupts.hasPending() && (ignoreIf || c.interruptsEnabled())) return;
                personalities.onTick(clock.nanos());
                if (clock instanceof IcountClock ic) ic.warp(100_000);
                else LockSupport.parkNanos(50_000);
            }
        }

        @Override
        public void shutdown(String reason) {
            if (reason.toLowerCase(java.util.Locale.ROOT).contains("poweroff")) powerOff();
            else requestEnd(Outcome.Kind.SHUTDOWN, Outcome.SHUTDOWN_STATUS, "guest requested shutdown: " + reason);
        }
    }

    /** Writes to two streams (the console and its log). */
    private static final class Tee extends OutputStream {
        private final OutputStream a, b;
        Tee(OutputStream a, OutputStream b) { this.a = a; this.b = b; }
        @Override public void write(int x) throws IOException { a.write(x); b.write(x); }
        @Override public void write(byte[] buf, int off, int len) throws IOException { a.write(buf, off, len); b.write(buf, off, len); }
        @Override public void flush() throws IOException { a.flush(); b.flush(); }
    }
}

package dev.polyvisor.vmm;

import dev.polyvisor.clock.VirtualClock;
import dev.polyvisor.cpu.Cpu;
import dev.polyvisor.cpu.Platform;
import dev.polyvisor.cpu.TraceCache;
import dev.polyvisor.cpu.jit.JitMode;
import dev.polyvisor.cpu.Vcpu;
import dev.polyvisor.cpu.VcpuExit;
import dev.polyvisor.cpu.exec.Isa;
import dev.polyvisor.devices.IoBus;
import dev.polyvisor.memory.GuestMemory;
import dev.polyvisor.clock.TimerQueue;
import dev.polyvisor.devices.ApicBus;
import dev.polyvisor.devices.ApicMessage;
import dev.polyvisor.devices.PcPlatformDevices;
import dev.polyvisor.devices.Uart16550;
import dev.polyvisor.devices.PcTestdev;
import dev.polyvisor.vmm.boot.BootCpu;
import dev.polyvisor.vmm.boot.FlatBinary;
import dev.polyvisor.vmm.pc.PcBoard;
import dev.polyvisor.vmm.boot.ImageFile;
import dev.polyvisor.vmm.boot.linux.LoadedKernel;
import dev.polyvisor.vmm.boot.LoadException;
import dev.polyvisor.vmm.boot.linux.InitrdImage;
import dev.polyvisor.vmm.boot.Multiboot;

import dev.polyvisor.cpu.model.CpuModel;
import dev.polyvisor.devices.Lapic;
import dev.polyvisor.vmm.pc.VirtioSlots;
import dev.polyvisor.cpu.exec.SystemOps;
import dev.polyvisor.cpu.model.CpuFeature;
import dev.polyvisor.cpu.model.ModelMsrs;
import dev.polyvisor.devices.PortIoDevice;
import dev.polyvisor.personality.HypervPersonality;
import dev.polyvisor.personality.PersonalityStack;
import dev.polyvisor.personality.hyperv.HypervTestdev;
import dev.polyvisor.personality.core.GuestPortIo;
import dev.polyvisor.personality.core.InterruptInjector;
import dev.polyvisor.personality.core.MsrAccess;
import dev.polyvisor.personality.core.PersonalityEnv;

import java.io.IOException;
import java.io.OutputStream;
import java.lang.foreign.Arena;
import java.lang.foreign.MemorySegment;
import java.nio.file.Files;
import java.util.ArrayList;
import java.util.List;
import java.util.Optional;
import java.util.concurrent.locks.LockSupport;
import java.util.function.BooleanSupplier;
import java.util.function.Predicate;

/**
 * One virtual machine: guest RAM, the PC board ({@link PcBoard}: PIC, PIT, RTC, COM1 16550A, i8042,
 * ACPI PM, PCI host, IOAPIC, one LAPIC per vCPU, ACPI tables), QEMU's {@code isa-debug-exit} at 0xf4,
 * the vCPUs sharing one trace cache, and the VM's clock. It is the vCPUs' {@link Platform}: port I/O
 * goes to the personalities' ports or the {@link IoBus}, CPUID to a {@link CpuidSource} (the personality
 * stack's CpuidTable), MSRs to the personalities, the board (TSC deadline) and an {@link MsrSource},
 * hypercalls to the personalities, and the TSC derives from the {@link VirtualClock}.
 *
 * <p>{@link #run()} drives the vCPUs round-robin in quanta on the calling thread, runs expired timers
 * between quanta, and handles the lifecycle exits: when every vCPU halts it waits for the next timer
 * (parking in realtime mode, warping in icount mode) and ends the run when nothing can ever wake the
 * guest (HLT with IF=0, or no interrupt pending and no timer armed); a triple fault ends it with a
 * one-line message; the debug-exit device, poweroff or the timeout end it with a status. Application
 * processors wait for INIT/SIPI from the BSP's LAPIC.
 *
 * <p>With a realtime clock and more than one vCPU, {@link #run()} gives each vCPU a host thread of its
 * own instead ({@link VcpuThreads}; {@code -Dpolyvisor.vcpuThreads=false} keeps the round-robin), and
 * every exit into this platform runs under the big VMM lock {@link #bql} ({@link LockedPlatform}).
 */
public final class Vm implements Platform, AutoCloseable {
    /** Instructions per quantum: long enough to amortise the loop, short enough to notice a timeout. */
    static final long QUANTUM = 50_000;
    /**
     * With another vCPU runnable the quanta are shorter: the vCPUs share this thread, and one that waits
     * for another's store (a spin without PAUSE) waits up to a quantum for it.
     */
    static final long SMP_QUANTUM = 10_000;
    /** RTC wall time at virtual time 0 in icount mode, so that runs are reproducible (2024-01-01T00:00:00Z). */
    static final long ICOUNT_RTC_EPOCH = 1_704_067_200L;
    /** The longest one personality block (SCHEDOP_poll, Hyper-V GUEST_IDLE) waits before a spurious return. */
    static final long BLOCK_LIMIT_NS = 100_000_000L;

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
    /** The CPU model CPUID describes, and the MSRs that come with it (AMD's legacy performance counters). */
    public final CpuModel cpuModel;
    private final ModelMsrs modelMsrs;
    private Predicate<VcpuExit.Hypercall> hypercalls = h -> false;
    /** The hypervisor ABIs presented (bare by default): CPUID leaves, MSRs, hypercalls, ports. */
    public final PersonalityStack personalities;
    /** The PC's devices, ACPI tables and e820 map. */
    public final PcBoard board;
    /** The virtio devices on the board's PCI bus (entropy, disks). */
    private VirtioSlots virtio;
    private final TimerQueue.Timer personalityTick;

    /** Exits to the VMM so far (port I/O, CPUID, MSRs, hypercalls, HLT; MMIO is counted per vCPU); see {@link #exits()}. */
    private long platformExits;
    /** Marker lines on the serial ports, stamped with instructions and exits ({@link ConsoleMarkers}). */
    private final ConsoleMarkers markers = new ConsoleMarkers(this::instructionsRetired, this::exits);

    /**
     * The big VMM lock (QEMU's BQL): held by a vCPU thread for each exit into this platform and by the VM
     * thread while it runs timers and host I/O, when vCPUs have threads of their own ({@link VcpuThreads}).
     */
    final java.util.concurrent.locks.ReentrantLock bql = new java.util.concurrent.locks.ReentrantLock();
    /** The vCPU threads while a threaded run is under way, else null (the round-robin scheduler). */
    private volatile VcpuThreads threads;

    private volatile Outcome.Kind endKind;
    private volatile int endStatus;
    private volatile String endMessage = "";
    private volatile Vcpu running;
    /** ACPI S3: the guest is suspended to RAM; set by the PM's SLP_EN, cleared on resume. */
    private volatile boolean suspended;
    /** A wake event came while suspended: resume at the next turn of the run loop. */
    private volatile boolean wakePending;

    /** Builds the machine and loads the kernel per {@code config.boot()}; the JIT mode comes from the {@code polyvisor.jit} property. */
    public Vm(VmConfig config, OutputStream console) throws LoadException { this(config, console, JitMode.fromSystemProperty()); }

    /** The same with the CPU's JIT tier in mode {@code jit} ({@code --jit}). */
    public Vm(VmConfig config, OutputStream console, JitMode jit) throws LoadException {
        this.config = config;
        this.memory = GuestMemory.pc(config.memoryBytes());
        try {
            this.consoleLog = openLog(config);
            this.console = consoleLog == null ? console : new TeeOutputStream(console, consoleLog);
            Cpu c0 = new Cpu(0, memory, this);
            this.traces = new TraceCache(Isa.table(), c0.mmu.codePages(), jit, config.smp() > 1);
            for (int i = 0; i < config.smp(); i++)
                vcpus.add(new Vcpu(i == 0 ? c0 : new Cpu(i, memory, this), traces));
            this.started = new boolean[config.smp()];
            this.pauseCounts = new long[config.smp() * PAUSE_STRIDE];
            started[0] = true;
            boolean icount = config.clock() == VmConfig.ClockMode.ICOUNT;
            this.clock = icount ? VirtualClock.icount(VirtualClock.DEFAULT_TSC_HZ, 1, this::instructionsRetired) : new VirtualClock();
            long rtcEpoch = icount ? ICOUNT_RTC_EPOCH : System.currentTimeMillis() / 1000;
            this.board = new PcBoard(clock, config.smp(), io, memory, rtcEpoch,
                    new PcPlatformDevices.Hooks(this::serialOut, this::guestReset, this::powerOff, new Signals()));
            board.devices.apics.setCurrentVcpuSupplier(() -> current().id);
            board.devices.pm.setSleepHandlers(this::suspendToRam, () -> wakePending = true);
            this.virtio = VirtioSlots.attach(board.devices, memory, traces.codePages()::written,
                    config.disks(), config.links(), line -> System.err.println("polyvisor: " + line), icount, this::wakeForHostData,
                    this::consoleOut);
            for (Vcpu v : vcpus) board.attach(v.cpu);
            attachTestDevices();
            this.personalities = buildPersonalities();
            attachHypervTestdev();
            routePersonalityInterrupts();
            this.cpuModel = config.cpuModel();
            for (Vcpu v : vcpus) {
                v.cpu.cr4Reserved = cr4Reserved(cpuModel);
                v.cpu.invpcid = cpuModel.has(CpuFeature.INVPCID);
                v.cpu.msrs.hasTscAdjust = cpuModel.has(CpuFeature.TSC_ADJUST);
                v.cpu.msrs.hasX2apic = cpuModel.has(CpuFeature.X2APIC);
                v.cpu.msrs.hasPks = cpuModel.has(CpuFeature.PKS);
                v.cpu.smap = cpuModel.has(CpuFeature.SMAP);
                v.cpu.forceEmulationPrefix = cpuModel.forceEmulationPrefix();
                v.cpu.intel = cpuModel.vendor().equals("GenuineIntel");
                v.cpu.resetSignature = cpuModel.signature();
            }
            this.modelMsrs = new ModelMsrs(cpuModel, config.smp());
            this.cpuid = personalities.cpuidTable(cpuModel, config.smp())::cpuid;
            this.personalityTick = clock.timers().newTimer(this::tickPersonalities);
            tickPersonalities();
            setSecondSerialOutput(null); // COM2's bytes are watched for markers even when nobody reads them
            boot();
        } catch (LoadException | RuntimeException e) {
            if (virtio != null) virtio.close();
            memory.close();
            throw e;
        }
    }

    /**
     * Where the second serial port (COM2, ttyS1) sends its bytes: the default guest's /init writes an
     * --exec command's stdout there so the host can keep it apart from the console. Dropped until set.
     */
    public void setSecondSerialOutput(OutputStream out) {
        var sink = out == null ? null : Uart16550.sinkTo(out);
        board.devices.com2.setSink(b -> {
            markers.see(1, b);
            if (sink != null) sink.accept(b);
        });
    }

    /**
     * The test devices: isa-debug-exit at 0xf4 (4 bytes) unless {@code --device isa-debug-exit} places it,
     * and pc-testdev when asked for.
     */
    private void attachTestDevices() {
        boolean exitPlaced = false;
        for (DeviceSpec d : config.deviceSpecs()) {
            switch (d.name()) {
                case DeviceSpec.DEBUG_EXIT -> {
                    io.register(d.number("iobase", 0x501), d.number("iosize", 2), new DebugExit(this::debugExit));
                    exitPlaced = true;
                }
                case DeviceSpec.PC_TESTDEV -> new PcTestdev(board.devices::isaIrq).register(io, memory);
                case DeviceSpec.HYPERV_TESTDEV -> { } // after the personalities: it uses Hyper-V's SynIC
                default -> throw new IllegalStateException("unvalidated device " + d.name());
            }
        }
        if (!exitPlaced) io.register(DebugExit.PORT, 4, new DebugExit(this::debugExit));
    }

    /**
     * {@code --device hyperv-testdev}: QEMU's device talks to the SynIC of the Hyper-V personality (QEMU
     * needs hv-synic for it too); without one it is a one-line error.
     */
    private void attachHypervTestdev() throws LoadException {
        if (config.deviceSpecs().stream().noneMatch(d -> d.name().equals(DeviceSpec.HYPERV_TESTDEV))) return;
        HypervPersonality hv = personalities.find(HypervPersonality.class).orElseThrow(() -> new LoadException(
                "--device " + DeviceSpec.HYPERV_TESTDEV + " needs the hyperv personality (its SynIC): add --personality hyperv"));
        HypervTestdev testdev = new HypervTestdev(hv);
        io.register(HypervTestdev.PORT, 4, new PortIoDevice() {
            @Override public long in(int port, int size) { return testdev.read(size); }

            @Override public void out(int port, int size, long value) { if (port == HypervTestdev.PORT) testdev.write(size, value); }
        });
    }

    /**
     * CR4 bits whose feature the model does not advertise are reserved: setting them is #GP(0) (SDM Vol. 3A
     * 2.5, "reserved bits"; e.g. CR4.OSXSAVE needs CPUID.1:ECX.XSAVE, Vol. 3A 2.6). XSAVE and FSGSBASE are
     * never offered.
     */
    static long cr4Reserved(CpuModel m) {
        long r = SystemOps.CR4_OSXSAVE | SystemOps.CR4_FSGSBASE;
        if (!m.has(CpuFeature.UMIP)) r |= SystemOps.CR4_UMIP;
        if (!m.has(CpuFeature.PCID)) r |= Cpu.CR4_PCIDE;
        if (!m.has(CpuFeature.SMEP)) r |= Cpu.CR4_SMEP;
        if (!m.has(CpuFeature.SMAP)) r |= Cpu.CR4_SMAP;
        if (!m.has(CpuFeature.PKU)) r |= Cpu.CR4_PKE;
        if (!m.has(CpuFeature.PKS)) r |= Cpu.CR4_PKS;
        return r;
    }

    /** Bytes the guest wrote to COM1 (flushed soon: prompts have no newline; see {@link #consoleOut}). */
    private void serialOut(byte[] bytes) {
        markers.see(0, bytes);
        consoleOut(bytes);
    }

    /**
     * Whether console output waits for the end of the VM thread's round of quanta to be flushed (at most one quantum,
     * about half a millisecond of guest time, and always before the VM thread idles). Only when the vCPUs run on the
     * VM thread itself, which is then the only writer: the UART hands over each byte the guest writes to THR, and a
     * flush (a write(2)) per byte was 70 ms of a Debian boot's VM thread (async-profiler), as many as its log has bytes.
     */
    private boolean consoleBatched;
    private boolean consoleDirty;

    /** Bytes for the console: COM1's ({@link #serialOut}) and the virtio console's (hvc0), which share it. */
    private void consoleOut(byte[] bytes) {
        try {
            console.write(bytes);
            if (consoleBatched) consoleDirty = true;
            else console.flush();
        } catch (IOException ignored) {
            // the console went away (closed pipe): the guest keeps running, its output is dropped
        }
    }

    /**
     * Host input for the guest's console; any thread. It reaches COM1's receive FIFO on the VM thread, at
     * the pace the guest's UART accepts it (see {@link Uart16550}); {@link #consoleInputBacklog()} tells a
     * producer when to wait, so that a large file piped to the console is read as the guest consumes it.
     */
    public void consoleInput(byte[] data) {
        if (data.length == 0) return;
        inputBytes.addAndGet(data.length);
        input.add(data.clone());
        VcpuThreads th = threads;
        Thread t = vmThread;
        if (th != null && t != null) LockSupport.unpark(t); // the VM thread moves it to the UART; with vCPU threads it may be parked
    }

    /** Console input bytes not yet received by the guest (queued here or waiting in COM1's host queue). */
    public int consoleInputBacklog() {
        var hvc = virtio.console();
        return inputBytes.get() + board.devices.com1.pendingInput() + (hvc == null ? 0 : hvc.pendingInput());
    }

    /**
     * Takes the console input this VM has not delivered, for the machine that replaces it after a reboot
     * (a serial line keeps its bytes across the far end's reset). Call after {@link #run()} returned.
     */
    public byte[] takeUndeliveredInput() {
        java.io.ByteArrayOutputStream b = new java.io.ByteArrayOutputStream();
        b.writeBytes(board.devices.com1.takePendingInput());
        for (byte[] d; (d = input.poll()) != null; ) b.writeBytes(d);
        inputBytes.set(0);
        return b.toByteArray();
    }

    /** Below this many bytes waiting in COM1's host queue, the VM thread moves more input over. */
    static final int UART_BACKLOG = 4096;
    private final java.util.concurrent.ConcurrentLinkedQueue<byte[]> input = new java.util.concurrent.ConcurrentLinkedQueue<>();
    private final java.util.concurrent.atomic.AtomicInteger inputBytes = new java.util.concurrent.atomic.AtomicInteger();
    /** While the host console can still send input, a guest idling with no timer armed is waiting for it. */
    private volatile boolean inputOpen;

    /** Tells the VM whether console input may still arrive ({@link #consoleInput}); false at end of input. */
    public void setConsoleInputOpen(boolean open) { inputOpen = open; }

    /** Moves console input to the guest: to the virtio console when there is one ({@code --device virtconsole}), else COM1. */
    private void drainInput() {
        var hvc = virtio.console();
        if (hvc != null) {
            for (byte[] b; hvc.pendingInput() < UART_BACKLOG && (b = input.poll()) != null; ) {
                inputBytes.addAndGet(-b.length);
                hvc.feed(b);
            }
            return;
        }
        var com1 = board.devices.com1;
        for (byte[] b; com1.pendingInput() < UART_BACKLOG && (b = input.poll()) != null; ) {
            inputBytes.addAndGet(-b.length);
            com1.feed(b);
        }
    }

    /** The thread in {@link #run()}, which a device's host side unparks when data for the guest arrives. */
    private volatile Thread vmThread;

    /**
     * A virtio device's host side has data for the guest (any thread): end the running quantum so the VM
     * thread delivers it soon, and wake the VM thread if every vCPU idles (KVM's vcpu kick from an I/O
     * thread, virt/kvm/kvm_main.c kvm_vcpu_kick).
     */
    private void wakeForHostData() {
        VcpuThreads th = threads;
        if (th != null) th.wakeHalted();
        Vcpu r = running;
        if (r != null) r.interrupt();
        Thread t = vmThread;
        if (t != null) LockSupport.unpark(t);
    }

    /** The guest reset the machine: the run ends with {@link Outcome.Kind#RESET}; the caller may boot it again. */
    private void guestReset() {
        requestEnd(Outcome.Kind.RESET, Outcome.SHUTDOWN_STATUS, "guest reset the machine");
    }

    /** Runs the personalities' time-driven work and re-arms for their next deadline. */
    private void tickPersonalities() {
        personalities.onTick(clock.nanos());
        syncPersonalityTick();
    }

    // ---- personality routing (pv-e2e): interrupt sources, timer deadlines, PV unhalt ----

    /**
     * Arms the personality timer for the personalities' earliest deadline. Called after every MSR write
     * or hypercall a personality handled, since those start timers (Hyper-V stimers, Xen single-shot).
     */
    private void syncPersonalityTick() {
        long next = personalities.nextDeadlineNs();
        if (next == Long.MAX_VALUE) { if (personalityTick.isPending()) personalityTick.cancel(); }
        else if (personalityTick.deadline() != next) personalityTick.arm(next);
    }

    /**
     * Puts the personalities' interrupt lines in front of each LAPIC: Xen's callback vector is taken while
     * evtchn_upcall_pending is set and IF=1, without passing through IRR/ISR, so the guest sends no EOI
     * (pv-abi.md 6.4; KVM host arch/x86/kvm/irq.c kvm_cpu_has_extint checks it before the LAPIC).
     */
    private void routePersonalityInterrupts() {
        for (Vcpu v : vcpus) v.cpu.interrupts = personalities.interruptSource(v.cpu.id, v.cpu.interrupts);
    }

    /**
     * Wakes a halted vCPU for a deliverable NMI, or for KVM PV unhalt: a vCPU halted in kvm_wait (IF=0) resumes when kicked; the kick is sticky, so one that
     * came before the HLT resumes it at once (arch/x86/kvm/x86.c pv_unhalted).
     */
    boolean unhalt(int i) {
        Cpu c = vcpus.get(i).cpu;
        if (c.halted && c.nmiPending && !c.nmiBlocked) { c.halted = false; return true; }
        if (c.halted && personalities.consumeUnhalt(i)) { c.halted = false; return true; }
        return false;
    }

    /** Latches an NMI on a vCPU; its run loop delivers it (and a halted vCPU wakes for it). */
    private void postNmi(int vcpu) {
        if (vcpu < 0 || vcpu >= vcpus.size()) return;
        VcpuThreads th = threads;
        // Another vCPU's NMI is posted and latched by the target's own thread; a self-NMI (or the round-robin
        // thread's) is latched here, on the thread that owns the vCPU, as soon as the ICR write is done.
        if (th != null && VcpuThreads.currentCpu() != vcpus.get(vcpu).cpu) { th.postNmi(vcpu); return; }
        latchNmi(vcpu);
    }

    /** Latches an NMI on vCPU {@code vcpu}: on its own thread, or on the round-robin thread. */
    void latchNmi(int vcpu) {
        Cpu c = vcpus.get(vcpu).cpu;
        if (c.nmiPending && !c.nmiBlocked) c.nmiSecondPending = true;
        else c.nmiPending = true;
    }

    /** LAPIC signals to the vCPUs (SDM Vol. 3A, 10.4 and 11.6.1: INIT resets to wait-for-SIPI; SIPI starts at vector << 12). */
    private final class Signals implements ApicBus.CpuSignals {
        /**
         * The run loop polls each vCPU's LAPIC, so nothing sleeps on another thread; but an IPI from the
         * running vCPU to another one ends the sender's quantum, so the target takes it about as soon as it
         * would on its own host CPU (KVM kicks the target's thread, kvm_vcpu_kick), instead of a quantum
         * later: a guest that signals a vCPU and spins for the answer otherwise waits a quantum per round.
         */
        @Override public void kick(int vcpu) { yieldTo(vcpu); }

        @Override public void nmi(int vcpu) { postNmi(vcpu); yieldTo(vcpu); }

        /** Also for the running vCPU itself: its run loop then checks for the interrupt at once (a self-IPI, an expired TSC deadline). */
        private void yieldTo(int vcpu) {
            VcpuThreads th = threads;
            if (th != null) { th.kick(vcpu); return; }
            Vcpu r = running;
            if (r != null && (r.cpu.id == vcpu || vcpu >= 0 && vcpu < vcpus.size() && started[vcpu])) r.interrupt();
        }

        @Override
        public void init(int vcpu) {
            if (vcpu <= 0 || vcpu >= vcpus.size()) return; // INIT of the BSP would reset the machine: not modelled
            VcpuThreads th = threads;
            if (th != null) th.postInit(vcpu); // the target resets itself on its own thread
            else initVcpu(vcpu);
        }

        @Override
        public void sipi(int vcpu, int vector) {
            if (vcpu <= 0 || vcpu >= vcpus.size()) return;
            VcpuThreads th = threads;
            if (th != null) th.postSipi(vcpu, vector);
            else sipiVcpu(vcpu, vector);
        }
    }

    /** INIT: the vCPU resets and waits for SIPI (its own thread, or the round-robin thread). */
    void initVcpu(int vcpu) {
        vcpus.get(vcpu).cpu.reset();
        started[vcpu] = false;
    }

    /** SIPI: a vCPU waiting for it starts in real mode at vector << 12; a running one ignores it. */
    void sipiVcpu(int vcpu, int vector) {
        if (started[vcpu]) return;
        BootCpu.enterReal(vcpus.get(vcpu).cpu, (vector & 0xFF) << 8, 0);
        started[vcpu] = true;
    }

    boolean isStarted(int vcpu) { return started[vcpu]; }

    boolean ended() { return endKind != null; }

    boolean isSuspended() { return suspended; }

    /** The VM thread's service between waits (threaded mode, under the big lock): timers, console input, virtio host data. */
    void serviceEvents() {
        if (clock.hasExpiredTimers()) clock.timers().runExpired();
        drainInput();
        virtio.serviceHost();
    }

    /**
     * Every started vCPU is halted, none has an interrupt pending, no timer is armed and no host input can
     * come: nothing can ever wake the guest (threaded mode, under the big lock; see {@link #idle}).
     */
    boolean nothingCanWake() {
        for (int i = 0; i < vcpus.size(); i++) if (started[i] && !vcpus.get(i).cpu.halted) return false;
        return !anyPending() && clock.timers().nextDeadline() == Long.MAX_VALUE
                && !inputOpen && input.isEmpty() && !virtio.hasHostEnds();
    }

    /**
     * vCPU i exited on HLT (threaded mode, under the big lock). HLT with IF=0 on the BSP ends the run unless
     * something can still resume it (an NMI, a personality's PV unhalt), as in {@link #run()}'s round-robin.
     */
    void haltExit(int i) {
        platformExits++;
        Cpu c = vcpus.get(i).cpu;
        if (!unhalt(i) && i == 0 && !c.interruptsEnabled() && !personalities.canUnhalt(vcpus.size()))
            requestEnd(Outcome.Kind.STOPPED, Outcome.STOPPED_STATUS, String.format(
                    "guest stopped: vCPU %d halted with interrupts disabled at RIP 0x%x", i, c.rip));
    }

    /**
     * UTC as the guest's hypervisor reports it (KVM and Xen wall-clock structures): the host's clock in
     * realtime mode; in icount mode the RTC's fixed epoch plus virtual time, so that nothing the guest
     * reads depends on when the run happened (the kernel's boot-time arithmetic on the wall clock
     * changes how many instructions it retires, which would shift every later timestamp).
     */
    private long utcNanos() {
        return clock.mode() == VirtualClock.Mode.ICOUNT
                ? ICOUNT_RTC_EPOCH * 1_000_000_000L + clock.nanos()
                : System.currentTimeMillis() * 1_000_000L;
    }

    private PersonalityStack buildPersonalities() throws LoadException {
        try {
            return PersonalityStack.of(config.personalitySpec(), config.abiDisable(),
                    PersonalityEnv.of(memory, clock, new Injector(), config.smp(), this::utcNanos));
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
                // QEMU's -kernel runs SeaBIOS first: the image finds the BIOS's IVT, PIC and PIT set up.
                dev.polyvisor.vmm.boot.BiosHandover.apply(memory, io, Multiboot.LOW_RAM_END);
                Multiboot.load(memory, bsp, config.kernel(), config.append(), mods);
            }
            case FLAT -> {
                if (config.initrd() != null) throw new LoadException("--initrd is not supported with --boot flat");
                FlatBinary.load(memory, bsp, config.kernel(), config.flat().address(), config.flat().mode());
            }
            case LINUX, PVH, LINUX_VMLINUX -> bootLinux(bsp);
        }
        traces.flush();
    }

    private void bootLinux(Cpu bsp) throws LoadException {
        // The images are read into native memory, not onto the heap (ImageFile.readOffHeap says why), freed once in guest RAM.
        try (Arena images = Arena.ofConfined()) {
            MemorySegment kernel = ImageFile.readOffHeap(config.kernel(), "kernel", images);
            MemorySegment initrd = config.initrd() == null ? null : ImageFile.readOffHeap(config.initrd(), "initrd", images);
            if (initrd != null) {
                try {
                    InitrdImage.check(initrd);
                } catch (LoadException e) {
                    throw new LoadException(config.initrd() + ": " + e.getMessage());
                }
            }
            try {
                LoadedKernel k = board.loadLinux(memory, kernel, initrd, config.append(), config.boot() == VmConfig.BootKind.PVH,
                        config.boot() == VmConfig.BootKind.LINUX_VMLINUX,
                        // The KASLR slot and the boot loader's RNG seed: from the host, or fixed under icount so that
                        // runs repeat (the guest's own decompressor would draw from RDTSC and the PIT, which icount
                        // makes deterministic too).
                        VirtioSlots.entropy(config.clock() == VmConfig.ClockMode.ICOUNT));
                k.entry().apply(bsp);
                bsp.mmu.flushAll();
            } catch (LoadException e) {
                throw new LoadException(config.kernel() + ": " + e.getMessage());
            }
        }
    }

    // ---- wiring points for personalities and devices ----
    public void setCpuidSource(CpuidSource s) { this.cpuid = s; }
    public void setMsrSource(MsrSource s) { this.msrs = s; }
    public void setHypercallHandler(Predicate<VcpuExit.Hypercall> h) { this.hypercalls = h; }

    public VirtioSlots virtio() { return virtio; }

    /** Whether {@link #run()} gives each vCPU a host thread of its own ({@link VcpuThreads#applies}). */
    public boolean runsVcpuThreads() {
        // --jit check re-runs each new compiled trace in the interpreter from the same state and compares
        // memory: another vCPU's concurrent stores would read as mismatches, so it keeps the round-robin.
        return vcpuThreadsAllowed && VcpuThreads.applies(config) && (traces.jit() == null || traces.jit().mode() != JitMode.CHECK);
    }

    private boolean vcpuThreadsAllowed = true;

    /**
     * Keeps this VM on the round-robin scheduler even where {@link VcpuThreads} would apply (call before
     * {@link #run()}): for what is defined by one shared host thread, like steal time that is half the
     * elapsed time when two vCPUs spin.
     */
    public void useRoundRobin() { vcpuThreadsAllowed = false; }

    /** Steal time measured by a vCPU thread (threaded mode, under the big lock): to the personalities. */
    void addSteal(int vcpu, long ns) { personalities.addSteal(vcpu, ns); }

    public Cpu bsp() { return vcpus.getFirst().cpu; }

    /**
     * VM exits so far, counted as hardware virtualization would take them: port I/O, CPUID, MSR accesses
     * the CPU model does not own, hypercalls, device MMIO and HLT. The figure the coupling matrix
     * reports as what an ABI element costs besides instructions.
     */
    public long exits() {
        long n = platformExits;
        for (Vcpu v : vcpus) n += v.cpu.mmu.mmioAccesses;
        return n;
    }

    /** The marker lines seen on the serial ports so far. */
    public ConsoleMarkers markers() { return markers; }

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
        VcpuThreads th = threads;
        if (th != null) th.kickAll();
        Thread t = vmThread;
        if (t != null) LockSupport.unpark(t);
    }

    private void debugExit(int status) { requestEnd(Outcome.Kind.DEBUG_EXIT, status, ""); }

    /** Guest poweroff (ACPI S5 or a reset device told to power off). */
    public void powerOff() { requestEnd(Outcome.Kind.POWEROFF, Outcome.POWEROFF, ""); }

    /** Runs the VM until the guest exits, the machine shuts down, stops for good, or times out. */
    public Outcome run() {
        long t0 = System.nanoTime();
        long deadline = config.timeout() == null ? Long.MAX_VALUE : t0 + config.timeout().toNanos();
        StealAccounting steal = new StealAccounting(vcpus.size(), personalities::addSteal);
        vmThread = Thread.currentThread();
        if (runsVcpuThreads()) return runThreaded(t0, deadline);
        consoleBatched = true;
        try {
            while (endKind == null) {
                if (suspended) {
                    if (!sleepUntilWake(deadline)) break;
                    continue;
                }
                boolean anyRunnable = false, allHalted = true;
                for (int i = 0; i < vcpus.size() && endKind == null && !suspended; i++) {
                    if (!started[i]) continue;
                    Vcpu v = vcpus.get(i);
                    unhalt(i);
                    running = v;
                    long quantumStart = clock.nanos();
                    VcpuExit e = v.run(anotherVcpuRunnable(i) ? SMP_QUANTUM : QUANTUM);
                    steal.quantum(i, clock.nanos() - quantumStart, j -> started[j] && !vcpus.get(j).cpu.halted);
                    running = null;
                    switch (e) {
                        case VcpuExit.Shutdown s -> requestEnd(Outcome.Kind.SHUTDOWN, Outcome.SHUTDOWN_STATUS,
                                "guest shut down (triple fault): " + s.reason());
                        case VcpuExit.Halt h -> {
                            platformExits++;
                            // HLT with IF=0 on the BSP: only NMI/SMI/INIT could resume it, and none will come
                            // (unless a personality's PV unhalt can: KVM's kick from another vCPU).
                            if (!unhalt(i) && i == 0 && !v.cpu.interruptsEnabled() && !personalities.canUnhalt(vcpus.size()))
                                requestEnd(Outcome.Kind.STOPPED, Outcome.STOPPED_STATUS, String.format(
                                        "guest stopped: vCPU %d halted with interrupts disabled at RIP 0x%x", i, v.cpu.rip));
                        }
                        default -> { allHalted = false; }
                    }
                    anyRunnable = true;
                    if (!v.cpu.halted) allHalted = false;
                }
                if (clock.hasExpiredTimers()) clock.timers().runExpired();
                drainInput();
                virtio.serviceHost();
                if (consoleDirty) { // before the loop may idle, so that a prompt is out when the guest waits for input
                    consoleDirty = false;
                    flushConsole();
                }
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
                if (allHalted && !idle(deadline)) {
                    requestEnd(Outcome.Kind.STOPPED, Outcome.STOPPED_STATUS, String.format(
                            "guest stopped: every vCPU halted waiting for an interrupt, and no timer is armed (RIP 0x%x)", bsp().rip));
                    break;
                }
            }
        } catch (RuntimeException | StackOverflowError e) {
            Cpu c = running == null ? bsp() : running.cpu;
            requestEnd(Outcome.Kind.ERROR, Outcome.ERROR_STATUS, String.format(
                    "emulator error at RIP 0x%x: %s", c.rip, e));
        } finally {
            running = null;
            vmThread = null;
            consoleBatched = consoleDirty = false;
            flushConsole();
        }
        return new Outcome(endKind, endStatus, endMessage, instructionsRetired(), System.nanoTime() - t0);
    }

    /** After a threaded run: each vCPU thread's CPU time (ns), else null. */
    private volatile long[] vcpuThreadCpuNanos;

    /**
     * For {@code --stats}: each vCPU's retired instructions and, after a run on vCPU threads, its thread's CPU
     * time and MIPS per CPU-second (an uneven split shows one vCPU paying more per instruction than another).
     */
    public String vcpuSummary() {
        long[] cpu = vcpuThreadCpuNanos;
        StringBuilder b = new StringBuilder();
        for (int i = 0; i < vcpus.size(); i++) {
            long n = vcpus.get(i).cpu.instructionsRetired;
            if (i > 0) b.append("; ");
            b.append("vcpu").append(i).append(' ').append(n);
            if (cpu != null && cpu[i] > 0)
                b.append(String.format(java.util.Locale.ROOT, " in %.3f s cpu, %.1f MIPS per cpu-second", cpu[i] / 1e9, n * 1e3 / cpu[i]));
        }
        return b.toString();
    }

    /** {@link #run()} with one host thread per vCPU ({@link VcpuThreads}). */
    private Outcome runThreaded(long t0, long deadline) {
        VcpuThreads th = new VcpuThreads(this, bql);
        threads = th;
        try {
            th.run(deadline);
        } catch (RuntimeException | StackOverflowError e) {
            requestEnd(Outcome.Kind.ERROR, Outcome.ERROR_STATUS, "emulator error on the VM thread: " + e);
        } finally {
            vcpuThreadCpuNanos = th.threadCpuNanos.clone();
            threads = null;
            vmThread = null;
            flushConsole();
        }
        return new Outcome(endKind, endStatus, endMessage, instructionsRetired(), System.nanoTime() - t0);
    }

    // ---- ACPI S3 (suspend to RAM) ----

    /**
     * SLP_EN with SLP_TYP = S3: every vCPU stops where it is, RAM keeps its contents. The CMOS shutdown
     * status becomes 0xFE, as QEMU's RTC sets it on suspend (hw/rtc/mc146818rtc.c rtc_notify_suspend) for
     * the BIOS to recognise the S3 resume.
     */
    private void suspendToRam() {
        suspended = true;
        wakePending = false;
        board.devices.rtc.setCmosByte(CMOS_SHUTDOWN_STATUS, CMOS_SHUTDOWN_S3_RESUME);
        Vcpu r = running;
        if (r != null) r.interrupt();
        VcpuThreads th = threads;
        if (th != null) th.kickAll();
        Thread t = vmThread;
        if (t != null) LockSupport.unpark(t);
    }

    static final int CMOS_SHUTDOWN_STATUS = 0x0F, CMOS_SHUTDOWN_S3_RESUME = 0xFE;
    /** FACS field offsets (ACPI 6.5 5.2.10, Table 5.14): the 32-bit Firmware_Waking_Vector. */
    static final int FACS_WAKING_VECTOR = 12;

    /**
     * While suspended no vCPU runs; virtual time and the timers go on (the RTC alarm is a wake event).
     * Returns false when the run ends: the timeout passed, or nothing armed can ever wake the machine.
     */
    boolean sleepUntilWake(long wallDeadline) {
        if (wakePending) {
            wakePending = false;
            suspended = false;
            resumeFromS3();
            return true;
        }
        if (System.nanoTime() >= wallDeadline) {
            requestEnd(Outcome.Kind.TIMEOUT, Outcome.TIMEOUT_STATUS,
                    "timeout: the guest ran for " + config.timeout().toSeconds() + " s without exiting (suspended to RAM)");
            return false;
        }
        long next = clock.timers().nextDeadline();
        if (next == Long.MAX_VALUE) {
            requestEnd(Outcome.Kind.STOPPED, Outcome.STOPPED_STATUS, "guest stopped: suspended to RAM (S3) with no wake event armed");
            return false;
        }
        if (clock.mode() == VirtualClock.Mode.ICOUNT) clock.warpToNextDeadline();
        else {
            long wait = Math.min(Math.min(next - clock.nanos(), clock.maxParkNanos()), wallDeadline - System.nanoTime());
            if (wait > 0) LockSupport.parkNanos(wait);
        }
        if (clock.hasExpiredTimers()) clock.timers().runExpired();
        return true;
    }

    /**
     * Resume from S3 as the firmware does it (ACPI 6.5 16.3.2 / 5.2.10; SeaBIOS s3_resume): the processors
     * lost their context, so the BSP starts in real mode at the FACS Firmware_Waking_Vector, CS = vector >> 4,
     * IP = vector & 0xF, other segments 0 (SeaBIOS farcall16big with zeroed registers), IF = 0; the APs wait
     * for INIT/SIPI. With no waking vector the firmware boots afresh: the run ends with a reset. Devices keep
     * their state (Polyvisor has no in-place device reset).
     */
    private void resumeFromS3() {
        long facs = board.acpi.blob("FACS").address();
        long vector = memory.ld32(facs + FACS_WAKING_VECTOR) & 0xFFFF_FFFFL;
        if (vector == 0 || vector >= 0x10_0000) {
            requestEnd(Outcome.Kind.RESET, Outcome.SHUTDOWN_STATUS, "guest woke from S3 with no real-mode waking vector: reset");
            return;
        }
        Cpu bsp = bsp();
        BootCpu.enterReal(bsp, 0, 0);
        bsp.setRealSegment(Cpu.CS, (int) (vector >>> 4));
        bsp.rip = vector & 0xF;
        bsp.halted = false;
        for (int i = 1; i < vcpus.size(); i++) {
            vcpus.get(i).cpu.reset();
            started[i] = false;
        }
        traces.flush();
    }

    /**
     * Every started vCPU is halted: move time to the next timer deadline (icount warps; realtime parks,
     * at most {@link VirtualClock#maxParkNanos()} at a time) and run what expired. Returns false when
     * nothing can ever wake the guest: no interrupt pending and no timer armed.
     */
    private boolean idle(long wallDeadline) {
        drainInput();
        virtio.serviceHost();
        if (anyPending()) return true;
        long next = clock.timers().nextDeadline();
        if (next == Long.MAX_VALUE) {
            if (!inputOpen && input.isEmpty() && !virtio.hasHostEnds()) return false;
            LockSupport.parkNanos(Math.min(clock.maxParkNanos(), Math.max(0, wallDeadline - System.nanoTime())));
            return true;
        }
        if (clock.mode() == VirtualClock.Mode.ICOUNT) {
            clock.warpToNextDeadline();
        } else {
            long wait = Math.min(next - clock.nanos(), clock.maxParkNanos());
            wait = Math.min(wait, wallDeadline - System.nanoTime());
            if (wait > 0) LockSupport.parkNanos(wait);
        }
        if (clock.hasExpiredTimers()) clock.timers().runExpired();
        return true;
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

    /** Set by the first {@link #close}: a reboot closes the old machine before building the next, and the run's end closes whichever is current. */
    private boolean closed;

    @Override
    public void close() {
        if (closed) return;
        closed = true;
        try {
            if (consoleLog != null) consoleLog.close();
        } catch (IOException ignored) {
            // best effort on teardown
        }
        if (virtio != null) virtio.close();
        memory.close();
    }

    // ---- Platform ----
    @Override
    public long portIn(int port, int size) {
        platformExits++;
        Optional<GuestPortIo> p = personalities.portIo(port);
        return p.isPresent() ? p.get().in(current(), port, size) : io.in(port, size);
    }

    @Override
    public void portOut(int port, int size, long value) {
        platformExits++;
        Optional<GuestPortIo> p = personalities.portIo(port);
        if (p.isPresent()) p.get().out(current(), port, size, value);
        else io.out(port, size, value);
    }

    private Cpu current() {
        Cpu t = VcpuThreads.currentCpu();
        if (t != null) return t;
        Vcpu r = running;
        return r == null ? bsp() : r.cpu;
    }
    /**
     * CPUID from the composed table, with the bits that follow the vCPU's state: CPUID.1:EDX.APIC[bit 9]
     * reads 0 while IA32_APIC_BASE.EN is clear (SDM Vol. 3A 11.4.3, "the CPUID feature flag for the APIC
     * is ... cleared" when the APIC is globally disabled; KVM kvm_update_cpuid_runtime does the same).
     */
    @Override
    public int[] cpuid(int vcpuId, int leaf, int subleaf) {
        platformExits++;
        int[] r = cpuid.cpuid(vcpuId, leaf, subleaf);
        if (leaf == 1 && (vcpus.get(vcpuId).cpu.apicBase & Lapic.APIC_BASE_ENABLE) == 0) {
            r = r.clone();
            r[3] &= ~(1 << 9);
        }
        return r;
    }
    @Override
    public MsrResult rdmsr(int vcpuId, int index) {
        platformExits++;
        return switch (personalities.rdmsr(vcpuId, index)) {
            case MsrAccess.Handled h -> MsrResult.of(h.value());
            case MsrAccess.Gp g -> MsrResult.gp();
            case MsrAccess.NotHandled n -> {
                MsrResult r = board.rdmsr(vcpuId, index);
                if (r != null) yield r;
                yield modelMsrs.claims(index) ? MsrResult.of(modelMsrs.read(vcpuId, index)) : msrs.rdmsr(vcpuId, index);
            }
        };
    }

    @Override
    public boolean wrmsr(int vcpuId, int index, long value) {
        platformExits++;
        return switch (personalities.wrmsr(vcpuId, index, value)) {
            case MsrAccess.Handled h -> { syncPersonalityTick(); yield true; }
            case MsrAccess.Gp g -> false;
            case MsrAccess.NotHandled n -> PcBoard.isX2apicMsr(index) ? board.writeX2apic(vcpuId, index, value)
                    : board.wrmsr(vcpuId, index, value)
                    || (modelMsrs.claims(index) ? modelMsrs.write(vcpuId, index, value) : msrs.wrmsr(vcpuId, index, value));
        };
    }

    @Override
    public MsrResult rdpmc(int vcpuId, int index) {
        if (modelMsrs.hasCounter(index)) return MsrResult.of(modelMsrs.readCounter(vcpuId, index));
        java.util.OptionalLong pseudo = personalities.pseudoCounter(vcpuId, index);
        return pseudo.isPresent() ? MsrResult.of(pseudo.getAsLong()) : MsrResult.gp();
    }

    @Override
    public boolean pseudoCounter(int index) { return personalities.hasPseudoCounter(index); }

    @Override
    public boolean mmioFarPointersHonourRexW() { return personalities.mmioFarPointersHonourRexW(); }

    @Override
    public boolean portOpenToAllPrivilegeLevels(int port) {
        return personalities.portIo(port).map(io -> io.openToAllPrivilegeLevels(port)).orElse(false);
    }

    @Override public void apicBaseWritten(int vcpuId, long value) { board.apicBaseWritten(vcpuId, value); }

    /**
     * PAUSE: the vCPUs share this thread, so a vCPU spinning on a flag another vCPU will set only burns
     * its quantum; end the quantum when another vCPU can run (KVM yields likewise on a pause-loop exit,
     * kvm_vcpu_on_spin).
     */
    @Override
    public void pause(int vcpuId) {
        if (threads != null) { pauseOnOwnThread(vcpuId); return; }
        if (vcpus.size() > 1 && anotherVcpuRunnable(vcpuId)) vcpus.get(vcpuId).interrupt();
    }

    /**
     * PAUSEs between two host yields of one vCPU thread. KVM does not exit on every PAUSE either: pause-loop
     * exiting fires once a spin has lasted ple_window (4096) cycles (arch/x86/kvm/vmx/vmx.c), and only then does
     * kvm_vcpu_on_spin give the host CPU away. A yield per PAUSE made a guest's wait loop a sched_yield loop:
     * kvm-unit-tests' hyperv_connections spins 10 million PAUSEs per case and ran past its 90 s.
     */
    static final int PAUSES_PER_YIELD = 256;
    /** Per-vCPU PAUSE counts, {@link #PAUSE_STRIDE} longs apart so two spinning vCPUs do not share a cache line. */
    private final long[] pauseCounts;
    private static final int PAUSE_STRIDE = 8;

    /**
     * With a host thread per vCPU: a spin-wait hint to the host CPU, and every {@link #PAUSES_PER_YIELD}th
     * PAUSE the host CPU given away (sched_yield), for when vCPU threads outnumber the free host CPUs and
     * the vCPU this one spins for waits for it; otherwise the yield returns at once.
     */
    private void pauseOnOwnThread(int vcpuId) {
        int i = vcpuId * PAUSE_STRIDE;
        if (++pauseCounts[i] % PAUSES_PER_YIELD == 0) Thread.yield();
        else Thread.onSpinWait();
    }

    /** Some other started vCPU can run: it is not halted, or an interrupt it will take is pending. */
    private boolean anotherVcpuRunnable(int vcpu) {
        for (int j = 0; j < vcpus.size(); j++) {
            if (j == vcpu || !started[j]) continue;
            Cpu o = vcpus.get(j).cpu;
            if (!o.halted || (o.interruptsEnabled() && o.interrupts.hasPending())) return true;
        }
        return false;
    }
    @Override public int taskPriorityClass(int vcpuId) { return board.taskPriorityClass(vcpuId); }
    @Override public void setTaskPriorityClass(int vcpuId, int cls) { board.setTaskPriorityClass(vcpuId, cls); }

    @Override
    public boolean hypercall(VcpuExit.Hypercall call) {
        platformExits++;
        boolean handled = personalities.hypercall(call);
        if (handled) syncPersonalityTick();
        return handled || hypercalls.test(call);
    }
    @Override public long tsc(int vcpuId) { return clock.tsc(); }

    /**
     * What personalities ask of the VMM: fixed vectors go into the vCPU's LAPIC IRR. vCPUs share this
     * thread, so blocking waits for time (and the timers) to move on.
     */
    private final class Injector implements InterruptInjector {
        @Override
        public void fixed(int vcpu, int vector) {
            if (vcpu < 0 || vcpu >= vcpus.size()) return;
            int apicId = board.devices.lapic(vcpu).id();
            board.devices.apics.deliver(new ApicMessage(vector & 0xFF, ApicMessage.FIXED, false, apicId, false, true,
                    ApicMessage.NO_SHORTHAND, -1));
        }

        @Override public void nmi(int vcpu) { postNmi(vcpu); }

        @Override
        public void setAutoEoiVectors(int vcpu, long[] vectors) {
            if (vcpu >= 0 && vcpu < vcpus.size()) board.devices.lapic(vcpu).setAutoEoiVectors(vectors);
        }

        /**
         * Xen's callback vector bypasses the LAPIC's IRR/ISR: the vCPU's interrupt source polls the
         * personality's upcall state (routePersonalityInterrupts), and a halted vCPU with IF=1 wakes when it
         * sees it pending; nothing to post here.
         */
        @Override public void upcall(int vcpu, int vector) {
            VcpuThreads th = threads;
            if (th != null) th.kick(vcpu); // a halted or blocked vCPU re-checks its interrupt source
        }

        /**
         * A PV wake-up (KVM_HC_KICK_CPU, Xen's vcpu wake) leaves HLT; with vCPU threads it is posted to the
         * target's own thread, which clears halted there (KVM's kick also stays as its sticky unhalt flag).
         */
        @Override public void wake(int vcpu) {
            if (vcpu < 0 || vcpu >= vcpus.size()) return;
            VcpuThreads th = threads;
            if (th != null) th.postWake(vcpu);
            else vcpus.get(vcpu).cpu.halted = false;
        }

        @Override public void flushTlb(int vcpu) {
            if (vcpu < 0 || vcpu >= vcpus.size()) return;
            VcpuThreads th = threads;
            if (th != null) th.flushTlb(vcpu);
            else vcpus.get(vcpu).cpu.mmu.flushAll();
        }

        @Override
        public void block(int vcpu, boolean ignoreIf, BooleanSupplier until, long deadlineNs) {
            VcpuThreads th = threads;
            if (th != null) { th.block(vcpu, ignoreIf, until, deadlineNs); return; }
            Cpu c = vcpus.get(vcpu).cpu;
            // The vCPUs share this thread: while another one can run, waiting here would only stall the one
            // that will release what we wait for (Xen SCHEDOP_poll, Hyper-V GUEST_IDLE in PV spinlocks). End
            // this vCPU's quantum instead and return at once; the guest treats it as a spurious wakeup.
            if (anotherVcpuRunnable(vcpu)) { vcpus.get(vcpu).interrupt(); return; }
            // Spurious returns are allowed: bound each wait, by host time in realtime mode and by virtual
            // time in icount mode (a host-time bound would make an icount run depend on host speed).
            boolean icount = clock.mode() == VirtualClock.Mode.ICOUNT;
            long wallLimit = System.nanoTime() + BLOCK_LIMIT_NS;
            long virtLimit = clock.nanos() + BLOCK_LIMIT_NS;
            while (endKind == null && !until.getAsBoolean() && clock.nanos() < deadlineNs
                    && (icount ? clock.nanos() < virtLimit : System.nanoTime() < wallLimit)) {
                if (c.interrupts.hasPending() && (ignoreIf || c.interruptsEnabled())) return;
                if (icount) {
                    if (clock.warpToNextDeadline() == 0) return; // nothing scheduled: let the guest go on
                } else {
                    LockSupport.parkNanos(50_000);
                }
                if (clock.hasExpiredTimers()) clock.timers().runExpired();
            }
        }

        @Override
        public void shutdown(String reason) {
            if (reason.toLowerCase(java.util.Locale.ROOT).contains("poweroff")) powerOff();
            else requestEnd(Outcome.Kind.SHUTDOWN, Outcome.SHUTDOWN_STATUS, "guest requested shutdown: " + reason);
        }
    }
}

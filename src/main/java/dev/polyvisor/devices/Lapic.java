package dev.polyvisor.devices;

import dev.polyvisor.clock.TimerQueue;
import dev.polyvisor.clock.VirtualClock;
import dev.polyvisor.cpu.InterruptSource;
import dev.polyvisor.cpu.Platform;

/**
 * One vCPU's local APIC in xAPIC mode (Intel SDM Vol. 3A chapter 11, "Advanced Programmable Interrupt
 * Controller"), a 4 KiB register page at 0xFEE00000 reached through {@link ApicBus}.
 *
 * <p>Registers (SDM Table 11-1): ID 0x20, version 0x30 (0x50014: version 0x14, six LVT entries), TPR
 * 0x80, APR 0x90, PPR 0xA0, EOI 0xB0, LDR 0xD0, DFR 0xE0, SVR 0xF0, ISR 0x100-0x170, TMR 0x180-0x1F0,
 * IRR 0x200-0x270, ESR 0x280, ICR 0x300/0x310, LVT timer 0x320, thermal 0x330, performance 0x340,
 * LINT0 0x350, LINT1 0x360, error 0x370, timer initial count 0x380, current count 0x390, divide
 * configuration 0x3E0.
 *
 * <p>Interrupt acceptance follows SDM 11.8.3: a vector in IRR is delivered when its priority class
 * (vector[7:4]) exceeds PPR[7:4], PPR being the higher of TPR and the highest in-service class (11.8.3.1).
 * EOI retires the highest ISR bit and, for a level-triggered vector (TMR set), broadcasts the EOI to
 * the IOAPIC (11.8.5). Vectors the hypervisor marks AutoEOI (Hyper-V SINTs, {@link #setAutoEoiVectors})
 * skip ISR when acknowledged. LINT0 programmed as ExtINT passes the 8259's INTR through (virtual wire mode,
 * SDM 11.5.1), and a hardware-disabled APIC (IA32_APIC_BASE bit 11 clear) connects the 8259 straight
 * to the core, so this one object is the vCPU's {@link InterruptSource} in every mode.
 *
 * <p>The timer (SDM 11.5.4) counts the APIC bus clock divided per the divide configuration; one-shot,
 * periodic and TSC-deadline modes (11.5.4.1; IA32_TSC_DEADLINE, MSR 0x6E0, through
 * {@link #writeTscDeadline}/{@link #readTscDeadline}) are derived from the {@link VirtualClock}.
 *
 * <p>x2APIC mode (SDM 11.12), entered by setting IA32_APIC_BASE.EXTD (bit 10; the CPU checks the
 * transitions of 11.12.5): the registers become MSRs 0x800 + offset/16 ({@link #readX2apic}/
 * {@link #writeX2apic}, Table 11-6), the ID is the 32-bit x2APIC ID (the initial APIC ID, read-only),
 * LDR is derived from it (11.12.10.2: cluster ID[19:4] in bits 31:16, 1 << ID[3:0] in bits 15:0), ICR
 * is one 64-bit register with a 32-bit destination (11.12.9) and SELF IPI (0x83F) sends a fixed
 * self-IPI (11.12.11). The MMIO page is then, as while the APIC is globally disabled, not the APIC
 * (11.12.2; 11.4.3): reads return all ones and writes are dropped, as under KVM (arch/x86/kvm/lapic.c
 * apic_mmio_read/apic_mmio_write, the LAPIC_MMIO_HOLE quirk).
 */
public final class Lapic implements InterruptSource {
    public static final int VERSION = 0x0005_0014;
    public static final long MSR_TSC_DEADLINE = 0x6E0;
    /** IA32_APIC_BASE flags (SDM 11.4.4). */
    public static final long APIC_BASE_BSP = 0x100, APIC_BASE_EXTD = 0x400, APIC_BASE_ENABLE = 0x800,
            APIC_BASE_ADDRESS = 0xFF_FFFF_F000L;
    /** The x2APIC register MSRs (SDM Vol. 3A 11.12.1.2, Table 11-6). */
    public static final int X2APIC_MSR_FIRST = 0x800, X2APIC_MSR_LAST = 0x8FF;
    /** A periodic timer never fires more often than this (KVM has a similar floor). */
    static final long MIN_PERIOD_NS = 50_000;

    static final int LVT_TIMER = 0, LVT_THERMAL = 1, LVT_PERF = 2, LVT_LINT0 = 3, LVT_LINT1 = 4, LVT_ERROR = 5;
    static final int LVT_MASKED = 0x10000;
    static final int TIMER_ONESHOT = 0, TIMER_PERIODIC = 1, TIMER_TSC_DEADLINE = 2;
    static final int SVR_ENABLE = 0x100;
    /** ESR bits (SDM 11.5.3). */
    static final int ESR_SEND_ILLEGAL_VECTOR = 0x20, ESR_RECEIVE_ILLEGAL_VECTOR = 0x40;

    private final int index;
    private final ApicBus bus;
    private final VirtualClock clock;
    private final long busHz;
    private final TimerQueue.Timer timer;
    private final InterruptSource extInt;

    private int id;
    private long apicBase;
    private boolean x2apicMode;
    private int tpr, ldr, dfr, svr, esr, esrPending, icrLow, icrHigh;
    private final int[] lvt = new int[6];
    private final long[] irr = new long[4], isr = new long[4], tmr = new long[4];
    /**
     * Vectors acknowledged without entering ISR, so the guest sends no EOI for them: the hypervisor's
     * Hyper-V SynIC AutoEOI (TLFS "SINTx Registers", AutoEOI bit 17; KVM kvm_get_apic_interrupt skips
     * apic_set_isr for synic->auto_eoi_bitmap). Empty unless a personality sets it; INIT keeps it (it is
     * hypervisor state, not APIC state).
     */
    private final long[] autoEoi = new long[4];
    private int divideConfig;
    private long initialCount;
    private long timerStartNs;
    /** The count reached zero and a mode change left it there: TMCCT reads 0 until TMICT is written. */
    private boolean countStopped;
    private long tscDeadline;
    /**
     * Periodic mode: periods that ended while the VMM was late or while the previous timer interrupt
     * still sat in IRR, delivered one by one once the vector is taken, so a guest counting ticks
     * (jiffies before high-resolution mode) keeps pace with the TSC.
     */
    private long timerBacklog, accountedPeriods;
    static final long MAX_TIMER_BACKLOG = 1000, CATCH_UP_POLL_NS = 100_000;
    /** Lock-free hints for the CPU's per-block poll: IRR non-empty, and the 8259 routed in through LINT0. */
    private volatile boolean irrAny, extIntRoute;

    Lapic(int index, ApicBus bus, VirtualClock clock, long busHz, InterruptSource extInt) {
        this.index = index;
        this.bus = bus;
        this.clock = clock;
        this.busHz = busHz;
        this.extInt = extInt == null ? InterruptSource.NONE : extInt;
        this.timer = clock.timers().newTimer(this::timerExpired);
        this.id = index;
        this.apicBase = ApicBus.LAPIC_BASE | APIC_BASE_ENABLE | (index == 0 ? APIC_BASE_BSP : 0);
        reset();
    }

    /** Power-up / INIT state (SDM 11.4.7.1): everything cleared, LVTs masked, DFR all ones, SVR 0xFF. */
    synchronized void reset() {
        tpr = ldr = esr = esrPending = icrLow = icrHigh = 0;
        dfr = 0xFFFF_FFFF;
        svr = 0xFF;
        java.util.Arrays.fill(lvt, LVT_MASKED);
        java.util.Arrays.fill(irr, 0);
        java.util.Arrays.fill(isr, 0);
        java.util.Arrays.fill(tmr, 0);
        divideConfig = 0;
        countStopped = false;
        initialCount = 0;
        tscDeadline = 0;
        timer.cancel();
        if (x2apicMode) ldr = x2apicLdr(id); // INIT keeps x2APIC mode and its derived LDR (SDM 11.12.5.1)
        refreshHints();
    }

    /**
     * The state a PC BIOS hands over on the bootstrap processor: APIC software-enabled, LINT0 as
     * ExtINT (the 8259 in virtual wire mode, SDM 11.5.1 / MP spec 3.6.2.2) and LINT1 as NMI.
     */
    public synchronized void virtualWireMode() {
        svr = 0x1FF;
        lvt[LVT_LINT0] = ApicMessage.EXTINT << 8;
        lvt[LVT_LINT1] = ApicMessage.NMI << 8;
        refreshHints();
    }

    /** Recomputes the polling hints; called at the end of every change under the lock. */
    private void refreshHints() {
        irrAny = (irr[0] | irr[1] | irr[2] | irr[3]) != 0;
        extIntRoute = extIntRouted();
    }

    public int index() { return index; }

    public synchronized int id() { return id; }

    // ---- IA32_APIC_BASE (MSR 0x1B) ----

    public synchronized long apicBaseMsr() { return apicBase; }

    /**
     * WRMSR IA32_APIC_BASE as the CPU accepted it (the mode-transition #GPs of SDM 11.12.5 are the CPU's):
     * the enable and x2APIC-enable bits, and the base: the page moves (SDM 11.4.5).
     * Disabling resets the APIC to its power-up state (SDM 11.4.3); enabling loads the initial APIC ID
     * (KVM kvm_lapic_set_base does the same: the xAPIC ID is vcpu_id again after a disable/enable);
     * entering x2APIC mode loads the x2APIC ID and the derived LDR (SDM 11.12.5.1).
     */
    public void writeApicBaseMsr(long v) {
        long base = v & APIC_BASE_ADDRESS;
        bus.relocated(base);
        synchronized (this) { writeApicBase(v, base); }
    }

    private void writeApicBase(long v, long base) {
        boolean wasEnabled = hwEnabled(), wasX2 = x2apicMode;
        apicBase = base | (v & (APIC_BASE_ENABLE | APIC_BASE_EXTD)) | (apicBase & APIC_BASE_BSP);
        x2apicMode = hwEnabled() && (apicBase & APIC_BASE_EXTD) != 0;
        if (wasEnabled && !hwEnabled()) reset();
        if (!wasEnabled && hwEnabled()) id = index;
        if (!wasX2 && x2apicMode) {
            id = index;
            ldr = x2apicLdr(id);
        }
        refreshHints();
    }

    /** Whether the APIC is in x2APIC mode (IA32_APIC_BASE.EN and EXTD set). */
    public synchronized boolean x2apicMode() { return x2apicMode; }

    /** The logical x2APIC ID (SDM 11.12.10.2): cluster = ID[19:4] in bits 31:16, 1 << ID[3:0] in bits 15:0. */
    static int x2apicLdr(int x2apicId) { return (x2apicId >>> 4) << 16 | 1 << (x2apicId & 0xF); }

    private boolean hwEnabled() { return (apicBase & APIC_BASE_ENABLE) != 0; }

    private boolean swEnabled() { return (svr & SVR_ENABLE) != 0; }

    // ---- 256-bit registers ----

    private static boolean test(long[] r, int v) { return (r[v >> 6] >>> (v & 63) & 1) != 0; }

    private static void set(long[] r, int v) { r[v >> 6] |= 1L << (v & 63); }

    private static void clear(long[] r, int v) { r[v >> 6] &= ~(1L << (v & 63)); }

    private static int highest(long[] r) {
        for (int i = 3; i >= 0; i--) if (r[i] != 0) return i * 64 + 63 - Long.numberOfLeadingZeros(r[i]);
        return -1;
    }

    /** PPR (SDM 11.8.3.1). */
    private int ppr() {
        int isrv = Math.max(highest(isr), 0);
        return (tpr & 0xF0) >= (isrv & 0xF0) ? tpr & 0xFF : isrv & 0xF0;
    }

    // ---- receiving ----

    /** Accepts a fixed or lowest-priority interrupt into IRR (SDM 11.8.4); vectors 0-15 are illegal. */
    void accept(int vector, boolean level) {
        synchronized (this) {
            if (!hwEnabled()) return;
            if (vector < 16) raiseError(ESR_RECEIVE_ILLEGAL_VECTOR);
            else {
                set(irr, vector);
                if (level) set(tmr, vector); else clear(tmr, vector);
            }
            refreshHints();
        }
        bus.kick(index);
    }

    private void raiseError(int bit) {
        esrPending |= bit;
        int e = lvt[LVT_ERROR];
        if ((e & LVT_MASKED) == 0 && swEnabled() && (e & 0xFF) >= 16) {
            set(irr, e & 0xFF);
            clear(tmr, e & 0xFF);
        }
    }

    private boolean extIntRouted() {
        if (!hwEnabled()) return true; // SDM 11.4.3: a disabled APIC passes INTR straight through
        int l = lvt[LVT_LINT0];
        return (l & LVT_MASKED) == 0 && (l >> 8 & 7) == ApicMessage.EXTINT;
    }

    /** The highest IRR vector deliverable now, or -1. */
    private int deliverable() {
        if (!hwEnabled() || !swEnabled()) return -1;
        int v = highest(irr);
        return v >= 0 && (v & 0xF0) > (ppr() & 0xF0) ? v : -1;
    }

    @Override
    public boolean hasPending() {
        if (irrAny) synchronized (this) { if (deliverable() >= 0) return true; }
        return extIntRoute && extInt.hasPending();
    }

    /** INTA: ExtINT from the 8259 takes precedence (it bypasses the APIC's priority logic); otherwise IRR→ISR. */
    @Override
    public int acknowledge() {
        boolean tryExt;
        synchronized (this) {
            int v = deliverable();
            if (v >= 0) {
                clear(irr, v);
                if (!test(autoEoi, v)) set(isr, v);
                refreshHints();
                return v;
            }
            tryExt = extIntRouted();
            if (!tryExt) return highest(irr) >= 0 && hwEnabled() && swEnabled() ? svr & 0xFF : -1;
        }
        return extInt.hasPending() ? extInt.acknowledge() : -1;
    }

    /** Replaces the AutoEOI vector set (256 bits, vector v at bit v % 64 of word v / 64); see {@link #autoEoi}. */
    public synchronized void setAutoEoiVectors(long[] vectors) {
        System.arraycopy(vectors, 0, autoEoi, 0, 4);
    }

    /** The highest pending vector in IRR, for inspection (-1 if none). */
    public synchronized int highestIrr() { return highest(irr); }

    public synchronized int highestIsr() { return highest(isr); }

    public synchronized boolean inService(int vector) { return test(isr, vector & 0xFF); }

    public synchronized boolean requested(int vector) { return test(irr, vector & 0xFF); }

    public synchronized boolean levelTriggered(int vector) { return test(tmr, vector & 0xFF); }

    /**
     * Whether a message addresses this APIC (SDM 11.6.2; in x2APIC mode 11.12.9/11.12.10): the broadcast
     * destination (0xFF in xAPIC format, 0xFFFFFFFF from an x2APIC ICR) reaches everyone; physical mode
     * compares the APIC ID; logical mode matches LDR. An xAPIC-format message (IOAPIC) to an x2APIC-mode
     * APIC uses its 8-bit destination as is (KVM kvm_apic_mda / kvm_apic_match_dest).
     */
    synchronized boolean matches(ApicMessage m) {
        int d = m.destination();
        if (m.x2apic() ? d == ApicMessage.X2APIC_BROADCAST : d == 0xFF) return true;
        if (!m.logical()) return id == d;
        if (x2apicMode) return (d >>> 16) == (ldr >>> 16) && (d & ldr & 0xFFFF) != 0;
        return matchesLogical(d);
    }

    /** Logical destination match (SDM 11.6.2.2): flat model ANDs the 8-bit mask; cluster model compares the cluster. */
    synchronized boolean matchesLogical(int dest) {
        int logicalId = ldr >>> 24;
        if ((dfr >>> 28) == 0xF) return (logicalId & dest) != 0;
        return (dest >> 4) == (logicalId >> 4) && (dest & logicalId & 0xF) != 0;
    }

    synchronized int taskPriority() { return tpr; }

    /** CR8 as the processor sees it: TPR[7:4] (SDM 11.8.6.1). */
    public synchronized int taskPriorityClass() { return tpr >>> 4 & 0xF; }

    /** MOV to CR8: TPR[7:4] = cls, TPR[3:0] = 0 (SDM 11.8.6.1). */
    public synchronized void setTaskPriorityClass(int cls) {
        tpr = (cls & 0xF) << 4;
        refreshHints();
    }

    // ---- MMIO ----

    /** The MMIO page is not the APIC while it is globally disabled or in x2APIC mode (see the class comment). */
    private synchronized boolean mmioHole() { return !hwEnabled() || x2apicMode; }

    /** An access through the APIC window at {@code window}: this APIC answers only at its own base. */
    long readAt(long window, long offset, int size) {
        synchronized (this) { if ((apicBase & APIC_BASE_ADDRESS) != window) return size >= 8 ? -1L : (1L << (8 * size)) - 1; }
        return read(offset, size);
    }

    void writeAt(long window, long offset, int size, long value) {
        synchronized (this) { if ((apicBase & APIC_BASE_ADDRESS) != window) return; }
        write(offset, size, value);
    }

    long read(long offset, int size) {
        if (mmioHole()) return size >= 8 ? -1L : (1L << (8 * size)) - 1;
        int reg = (int) (offset & 0xFF0);
        long v;
        synchronized (this) { v = readRegister(reg) & 0xFFFF_FFFFL; }
        // The registers are 32 bits at 16-byte strides (SDM 11.4.1); narrower reads take a slice.
        int sh = (int) (offset & 0xF) * 8;
        if (sh >= 32) return 0;
        v >>>= sh;
        return size >= 4 ? v : v & ((1L << (8 * size)) - 1);
    }

    private int readRegister(int reg) {
        return switch (reg) {
            case 0x020 -> x2apicMode ? id : id << 24;
            case 0x030 -> VERSION;
            case 0x080 -> tpr;
            case 0x090 -> 0;                 // APR: arbitration priority, not modelled
            case 0x0A0 -> ppr();
            case 0x0D0 -> ldr;
            case 0x0E0 -> dfr;
            case 0x0F0 -> svr;
            case 0x280 -> esr;
            case 0x300 -> icrLow;            // delivery status always idle: IPIs are delivered at once
            case 0x310 -> icrHigh;
            case 0x320, 0x330, 0x340, 0x350, 0x360, 0x370 -> lvt[(reg - 0x320) >> 4];
            case 0x380 -> (int) initialCount;
            case 0x390 -> (int) currentCount(clock.nanos());
            case 0x3E0 -> divideConfig;
            default -> {
                if (reg >= 0x100 && reg < 0x280) {
                    long[] r = reg < 0x180 ? isr : reg < 0x200 ? tmr : irr;
                    int word = (reg & 0x70) >> 4; // 8 words of 32 bits
                    yield (int) (r[word >> 1] >>> (32 * (word & 1)));
                }
                yield 0;
            }
        };
    }

    void write(long offset, int size, long value) {
        if (mmioHole()) return;
        if ((offset & 0xF) != 0) return; // only aligned 32-bit writes reach a register (SDM 11.4.1)
        writeRegister(offset, value);
    }

    private void writeRegister(long offset, long value) {
        int reg = (int) (offset & 0xFF0);
        int v = (int) value;
        ApicMessage ipi = null;
        int eoiVector = -1;
        synchronized (this) {
            switch (reg) {
                case 0x020 -> id = v >>> 24;
                case 0x080 -> tpr = v & 0xFF;
                case 0x0B0 -> eoiVector = eoi();
                case 0x0D0 -> ldr = v & 0xFF00_0000;
                case 0x0E0 -> dfr = v | 0x0FFF_FFFF;
                case 0x0F0 -> {
                    svr = v & 0x13FF;
                    // Software disable masks every LVT entry (SDM 11.4.7.2).
                    if (!swEnabled()) for (int i = 0; i < lvt.length; i++) lvt[i] |= LVT_MASKED;
                }
                case 0x280 -> { esr = esrPending; esrPending = 0; } // a write latches the errors (SDM 11.5.3)
                case 0x300 -> {
                    icrLow = v & 0x000C_CFFF;
                    ipi = ApicMessage.fromIcr(icrLow, icrHigh, index);
                    if (ipi.deliveryMode() == ApicMessage.FIXED && ipi.vector() < 16) {
                        raiseError(ESR_SEND_ILLEGAL_VECTOR);
                        ipi = null;
                    }
                }
                case 0x310 -> icrHigh = v & 0xFF00_0000;
                case 0x320 -> writeTimerLvt(v);
                case 0x330, 0x340, 0x350, 0x360, 0x370 -> {
                    int i = (reg - 0x320) >> 4;
                    int mask = switch (i) {
                        case LVT_LINT0, LVT_LINT1 -> 0x1A7FF; // vector, mode, polarity, trigger, mask
                        case LVT_ERROR -> 0x100FF;
                        default -> 0x107FF;
                    };
                    lvt[i] = v & mask | (swEnabled() ? 0 : LVT_MASKED);
                }
                case 0x380 -> writeInitialCount(v & 0xFFFF_FFFFL);
                case 0x3E0 -> {
                    long now = clock.nanos();
                    long remaining = currentCount(now);
                    divideConfig = v & 0xB;
                    // Keep counting from the current count at the new rate.
                    if (initialCount != 0 && timerMode() != TIMER_TSC_DEADLINE && remaining > 0) {
                        timerStartNs = now - countsToNanos(initialCount - remaining);
                        accountedPeriods = periodsElapsed(now);
                        armCountdown(now);
                    }
                }
                default -> {} // read-only or reserved: ignored
            }
            refreshHints();
        }
        if (eoiVector >= 0) bus.broadcastEoi(eoiVector);
        if (ipi != null) bus.deliver(ipi);
    }

    // ---- x2APIC MSRs (SDM 11.12.1.2, Table 11-6) ----

    /**
     * RDMSR of an x2APIC register MSR: #GP(0) unless the APIC is in x2APIC mode, and for the MSRs Table
     * 11-6 does not list as readable (APR 0x809, EOI 0x80B, RRD 0x80C, DFR 0x80E, ICR high 0x831, SELF IPI
     * 0x83F, CMCI 0x82F, which this APIC lacks, and every unassigned index). ICR reads as 64 bits.
     */
    public Platform.MsrResult readX2apic(int msr) {
        synchronized (this) {
            if (!x2apicMode || msr < X2APIC_MSR_FIRST || msr > X2APIC_MSR_LAST) return Platform.MsrResult.gp();
            int reg = (msr - X2APIC_MSR_FIRST) << 4;
            boolean readable = switch (reg) {
                case 0x020, 0x030, 0x080, 0x0A0, 0x0D0, 0x0F0, 0x280, 0x300,
                     0x320, 0x330, 0x340, 0x350, 0x360, 0x370, 0x380, 0x390, 0x3E0 -> true;
                default -> reg >= 0x100 && reg < 0x280; // ISR, TMR, IRR
            };
            if (!readable) return Platform.MsrResult.gp();
            if (reg == 0x300) return Platform.MsrResult.of((long) icrHigh << 32 | (icrLow & 0xFFFF_FFFFL));
            return Platform.MsrResult.of(readRegister(reg) & 0xFFFF_FFFFL);
        }
    }

    /**
     * WRMSR of an x2APIC register MSR; false means #GP(0): not in x2APIC mode, a read-only or unassigned
     * register (ID, version, PPR, LDR, ISR/TMR/IRR, current count are read-only in x2APIC mode), bits 63:32
     * set in any register but ICR, a non-zero write to EOI or ESR, or SELF IPI bits 31:8 (SDM 11.12.1.2,
     * 11.12.1.3, 11.12.11). ICR (0x830) takes the 64-bit value: destination in bits 63:32.
     */
    public boolean writeX2apic(int msr, long v) {
        ApicMessage ipi = null;
        synchronized (this) {
            if (!x2apicMode || msr < X2APIC_MSR_FIRST || msr > X2APIC_MSR_LAST) return false;
            int reg = (msr - X2APIC_MSR_FIRST) << 4;
            if (reg != 0x300 && (v >>> 32) != 0) return false;
            switch (reg) {
                case 0x080, 0x0F0, 0x320, 0x330, 0x340, 0x350, 0x360, 0x370, 0x380, 0x3E0 -> { }
                case 0x0B0, 0x280 -> { if (v != 0) return false; }
                case 0x300 -> {
                    icrLow = (int) v & 0x000C_CFFF; // no delivery-status bit in x2APIC mode (11.12.9)
                    icrHigh = (int) (v >>> 32);
                    ipi = ApicMessage.fromX2apicIcr((long) icrHigh << 32 | (icrLow & 0xFFFF_FFFFL), index);
                    if (ipi.deliveryMode() == ApicMessage.FIXED && ipi.vector() < 16) {
                        raiseError(ESR_SEND_ILLEGAL_VECTOR);
                        ipi = null;
                    }
                    refreshHints();
                }
                case 0x3F0 -> {
                    if ((v & ~0xFFL) != 0) return false;
                    ipi = new ApicMessage((int) v, ApicMessage.FIXED, false, 0, false, true, ApicMessage.SELF, index, true);
                    if (ipi.vector() < 16) {
                        raiseError(ESR_SEND_ILLEGAL_VECTOR);
                        ipi = null;
                    }
                    refreshHints();
                }
                default -> { return false; }
            }
        }
        int reg = (msr - X2APIC_MSR_FIRST) << 4;
        if (reg != 0x300 && reg != 0x3F0) writeRegister(reg, v); // the xAPIC register's effects

        if (ipi != null) bus.deliver(ipi);
        return true;
    }

    /** EOI (SDM 11.8.5): retires the highest in-service vector; returns it if level-triggered (TMR set, for the IOAPIC), else -1. */
    private int eoi() {
        int v = highest(isr);
        if (v < 0) return -1;
        clear(isr, v);
        // TMR keeps the trigger mode of the last acceptance: it is set or cleared when a vector enters IRR
        // (SDM 11.8.4), not by EOI.
        return test(tmr, v) ? v : -1;
    }

    // ---- timer ----

    private int timerMode() { return lvt[LVT_TIMER] >> 17 & 3; }

    /** Divide configuration (SDM Figure 11-10): bits 3,1:0; 0b111 divides by 1. */
    private int divisor() {
        int d = (divideConfig & 3) | (divideConfig >> 1 & 4);
        return d == 7 ? 1 : 2 << d;
    }

    private long countsToNanos(long counts) {
        return VirtualClock.ceilScale(counts * divisor(), 1_000_000_000L, busHz);
    }

    private long countsElapsed(long now) {
        long ns = Math.max(0, now - timerStartNs);
        return VirtualClock.scale(ns, busHz, 1_000_000_000L) / divisor();
    }

    private long currentCount(long now) {
        if (initialCount == 0 || countStopped || timerMode() == TIMER_TSC_DEADLINE) return 0;
        long e = countsElapsed(now);
        if (timerMode() == TIMER_PERIODIC) return initialCount - e % initialCount;
        return Math.max(0, initialCount - e);
    }

    private void writeTimerLvt(int v) {
        int oldMode = timerMode();
        long now = clock.nanos();
        long remaining = currentCount(now);
        lvt[LVT_TIMER] = v & 0x700FF | (swEnabled() ? 0 : LVT_MASKED);
        if (oldMode != timerMode() && oldMode != TIMER_TSC_DEADLINE && timerMode() != TIMER_TSC_DEADLINE
                && initialCount != 0) {
            // One-shot <-> periodic: the counter is not reloaded; it goes on from its current value, and a
            // count that already reached zero stays there (SDM 11.5.4; KVM apic_update_lvtt keeps the
            // running hrtimer, and an expired one-shot is not restarted).
            if (remaining == 0) {
                countStopped = true;
                timer.cancel();
            } else {
                timerStartNs = now - countsToNanos(initialCount - remaining);
                accountedPeriods = periodsElapsed(now);
                armCountdown(now);
            }
        }
        // Mode 3 is reserved; it counts down like one-shot here.
        if (oldMode != timerMode()) timerBacklog = 0;
        if (oldMode != timerMode() && (oldMode == TIMER_TSC_DEADLINE || timerMode() == TIMER_TSC_DEADLINE)) {
            // Switching to or from TSC-deadline mode disarms the timer (SDM 11.5.4.1).
            initialCount = 0;
            tscDeadline = 0;
            timer.cancel();
        }
    }

    private void writeInitialCount(long count) {
        if (timerMode() == TIMER_TSC_DEADLINE) return; // ignored in TSC-deadline mode (SDM 11.5.4.1)
        initialCount = count;
        countStopped = false;
        long now = clock.nanos();
        timerStartNs = now;
        timerBacklog = accountedPeriods = 0;
        if (count == 0) timer.cancel();
        else armCountdown(now);
    }

    private long periodNs() { return Math.max(countsToNanos(initialCount), MIN_PERIOD_NS); }

    /** Whole periods completed since the count was loaded. */
    private long periodsElapsed(long now) { return Math.max(0, now - timerStartNs) / periodNs(); }

    /** Arms the timer queue for the next expiry of the count-down (one-shot or periodic). */
    private void armCountdown(long now) {
        long period = countsToNanos(initialCount);
        if (timerMode() == TIMER_PERIODIC) {
            period = periodNs();
            long next = timerStartNs + (Math.max(0, now - timerStartNs) / period + 1) * period;
            if (timerBacklog > 0) next = Math.min(next, now + CATCH_UP_POLL_NS);
            timer.arm(next);
        } else {
            long end = timerStartNs + period;
            if (now >= end) timer.cancel();
            else timer.arm(end);
        }
    }

    private void timerExpired() {
        boolean deliver = false;
        int vector;
        synchronized (this) {
            int l = lvt[LVT_TIMER];
            vector = l & 0xFF;
            switch (timerMode()) {
                case TIMER_TSC_DEADLINE -> {
                    if (tscDeadline == 0) return;
                    tscDeadline = 0; // the MSR reads 0 once the deadline has fired
                    deliver = true;
                }
                case TIMER_PERIODIC -> {
                    if (initialCount == 0) return;
                    long now = clock.nanos();
                    long periods = periodsElapsed(now);
                    timerBacklog = Math.min(timerBacklog + periods - accountedPeriods, MAX_TIMER_BACKLOG);
                    accountedPeriods = periods;
                    if ((l & LVT_MASKED) != 0) timerBacklog = 0; // a masked expiry is lost (SDM 11.5.1)
                    deliver = timerBacklog > 0 && !test(irr, vector);
                    if (deliver) timerBacklog--;
                    armCountdown(now);
                }
                default -> deliver = initialCount != 0;
            }
            if ((l & LVT_MASKED) != 0) deliver = false;
        }
        if (deliver) acceptTimer(vector);
    }

    private void acceptTimer(int vector) {
        synchronized (this) {
            if (vector < 16) raiseError(ESR_RECEIVE_ILLEGAL_VECTOR);
            else {
                set(irr, vector);
                clear(tmr, vector);
            }
            refreshHints();
        }
        bus.kick(index);
    }

    /** WRMSR IA32_TSC_DEADLINE (SDM 11.5.4.1): arms (non-zero) or disarms (zero); ignored outside TSC-deadline mode. */
    public void writeTscDeadline(long tsc) {
        synchronized (this) {
            if (timerMode() != TIMER_TSC_DEADLINE) return;
            tscDeadline = tsc;
            if (tsc == 0) { timer.cancel(); return; }
            long at = clock.nanosAtTsc(tsc);
            if (at > clock.nanos()) { timer.arm(at); return; }
            timer.cancel();
        }
        // A deadline already passed fires at once (KVM start_sw_tscdeadline: expired -> apic_timer_expired).
        timerExpired();
    }

    /** RDMSR IA32_TSC_DEADLINE: the armed deadline, or 0. */
    public synchronized long readTscDeadline() {
        return timerMode() == TIMER_TSC_DEADLINE ? tscDeadline : 0;
    }
}

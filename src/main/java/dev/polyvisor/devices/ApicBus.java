package dev.polyvisor.devices;

import dev.polyvisor.clock.VirtualClock;
import dev.polyvisor.cpu.InterruptSource;
import dev.polyvisor.memory.GuestMemory;
import dev.polyvisor.memory.MmioHandler;
import dev.polyvisor.memory.MmioRegion;

import java.util.ArrayList;
import java.util.List;
import java.util.function.IntConsumer;

/**
 * The APIC bus of one VM: the per-vCPU {@link Lapic}s, message routing from ICR writes and the IOAPIC
 * (SDM Vol. 3A 11.6 "Issuing Interchip Messages", 11.6.2 destination modes, 11.6.2.4 lowest priority),
 * and the single 4 KiB MMIO window at 0xFEE00000 that every vCPU sees as its own LAPIC: an access is
 * routed to the LAPIC of the vCPU the calling thread runs ({@link #setCurrentVcpu}).
 *
 * <p>NMI, INIT and SIPI are not interrupts the LAPIC queues but changes of the core's run state; they
 * go to the VMM through {@link CpuSignals}, as does a wake-up ("kick") whenever a LAPIC gains a
 * pending interrupt, so a halted vCPU can resume.
 */
public final class ApicBus implements MmioHandler {
    public static final long LAPIC_BASE = 0xFEE0_0000L;
    public static final long DEFAULT_BUS_HZ = 1_000_000_000L;

    /** What the VMM does with run-state changes of a vCPU. Called with no device lock held; must not block. */
    public interface CpuSignals {
        /** The vCPU's LAPIC has a new pending interrupt: wake it if halted. */
        void kick(int vcpu);

        void nmi(int vcpu);

        /** INIT IPI: the LAPIC has been reset; the VMM resets the core to its wait-for-SIPI state. */
        void init(int vcpu);

        /** Start-up IPI: begin executing in real mode at {@code vector << 12} (SDM 8.4.4.1). */
        void sipi(int vcpu, int vector);

        CpuSignals NONE = new CpuSignals() {
            @Override public void kick(int vcpu) {}
            @Override public void nmi(int vcpu) {}
            @Override public void init(int vcpu) {}
            @Override public void sipi(int vcpu, int vector) {}
        };
    }

    private static final ThreadLocal<int[]> CURRENT = ThreadLocal.withInitial(() -> new int[] {0});
    /** Which vCPU is executing: by default the calling thread's binding; a single-threaded VMM can supply its own. */
    private volatile java.util.function.IntSupplier currentVcpu = ApicBus::currentVcpu;

    private final Lapic[] lapics;
    private volatile CpuSignals signals;
    private volatile IntConsumer eoiListener = v -> {};

    /**
     * @param extInt the 8259 pair, wired to every LAPIC's LINT0 (only the BSP's is in virtual-wire mode)
     * @param busHz  the APIC timer's input clock
     */
    public ApicBus(VirtualClock clock, int vcpus, InterruptSource extInt, CpuSignals signals, long busHz) {
        if (vcpus < 1 || vcpus > 255) throw new IllegalArgumentException("vCPU count must be 1..255: " + vcpus);
        this.signals = signals == null ? CpuSignals.NONE : signals;
        lapics = new Lapic[vcpus];
        for (int i = 0; i < vcpus; i++) lapics[i] = new Lapic(i, this, clock, busHz, extInt);
        lapics[0].virtualWireMode();
    }

    private GuestMemory memory;
    private final java.util.Set<Long> windows = new java.util.HashSet<>(List.of(LAPIC_BASE));

    public synchronized void register(GuestMemory mem) {
        memory = mem;
        mem.addMmio(new MmioRegion("lapic", LAPIC_BASE, 0x1000, this));
    }

    /**
     * IA32_APIC_BASE moved a LAPIC's page (SDM Vol. 3A 11.4.5 "Relocating the Local APIC Registers"):
     * a window at the new base is added (once); each window serves only the vCPUs whose APIC base it is,
     * any other vCPU sees no APIC there (reads all ones, writes dropped).
     */
    synchronized void relocated(long base) {
        if (memory == null || !windows.add(base)) return;
        try {
            memory.addMmio(new MmioRegion(String.format("lapic@%x", base), base, 0x1000, new MmioHandler() {
                @Override public long read(long offset, int size) { return current().readAt(base, offset, size); }
                @Override public void write(long offset, int size, long value) { current().writeAt(base, offset, size, value); }
            }));
        } catch (IllegalArgumentException overlapsAnotherDevice) {
            windows.remove(base); // the other device keeps the addresses
        }
    }

    public void setSignals(CpuSignals s) { signals = s == null ? CpuSignals.NONE : s; }

    /** The IOAPIC's EOI input (SDM 11.8.5 EOI broadcast for level-triggered vectors). */
    public void setEoiListener(IntConsumer l) { eoiListener = l == null ? v -> {} : l; }

    public int vcpuCount() { return lapics.length; }

    public Lapic lapic(int vcpu) { return lapics[vcpu]; }

    /** Binds the calling thread to a vCPU: its LAPIC MMIO accesses go to that vCPU's LAPIC. */
    public static void setCurrentVcpu(int vcpu) { CURRENT.get()[0] = vcpu; }

    public static int currentVcpu() { return CURRENT.get()[0]; }

    /** A round-robin VMM running every vCPU on one thread says which one runs now (e.g. {@code () -> running.id}). */
    public void setCurrentVcpuSupplier(java.util.function.IntSupplier s) {
        currentVcpu = s == null ? ApicBus::currentVcpu : s;
    }

    private Lapic current() {
        int i = currentVcpu.getAsInt();
        return lapics[i >= 0 && i < lapics.length ? i : 0];
    }

    @Override public long read(long offset, int size) { return current().readAt(LAPIC_BASE, offset, size); }

    @Override public void write(long offset, int size, long value) { current().writeAt(LAPIC_BASE, offset, size, value); }

    void kick(int vcpu) { signals.kick(vcpu); }

    void broadcastEoi(int vector) { eoiListener.accept(vector); }

    /** The LAPICs a message addresses (SDM 11.6.2, shorthands in 11.6.1). */
    List<Lapic> targets(ApicMessage m) {
        List<Lapic> out = new ArrayList<>();
        for (Lapic l : lapics) {
            boolean hit = switch (m.shorthand()) {
                case ApicMessage.SELF -> l.index() == m.source();
                case ApicMessage.ALL_INCLUDING_SELF -> true;
                case ApicMessage.ALL_EXCLUDING_SELF -> l.index() != m.source();
                default -> l.matches(m);
            };
            if (hit) out.add(l);
        }
        return out;
    }

    /** A PCI function's MSI/MSI-X write ({@link MsiSink}): writes outside 0xFEExxxxx are dropped. */
    public void deliverMsi(long address, int data) {
        ApicMessage m = ApicMessage.fromMsi(address, data);
        if (m != null) deliver(m);
    }

    /** Delivers a message from an ICR write or an IOAPIC redirection entry. */
    public void deliver(ApicMessage m) {
        List<Lapic> t = targets(m);
        switch (m.deliveryMode()) {
            case ApicMessage.FIXED -> { for (Lapic l : t) l.accept(m.vector(), m.levelTriggered()); }
            case ApicMessage.LOWEST_PRIORITY -> {
                // Lowest priority: the target with the lowest TPR; ties go to the lowest APIC index.
                Lapic best = null;
                for (Lapic l : t) if (best == null || l.taskPriority() < best.taskPriority()) best = l;
                if (best != null) best.accept(m.vector(), m.levelTriggered());
            }
            case ApicMessage.NMI -> { for (Lapic l : t) signals.nmi(l.index()); }
            case ApicMessage.INIT -> {
                // INIT level de-assert (level=0, trigger=level) only synchronises arbitration IDs (SDM 11.6.1).
                if (m.levelTriggered() && !m.assert_()) return;
                for (Lapic l : t) { l.reset(); signals.init(l.index()); }
            }
            case ApicMessage.STARTUP -> { for (Lapic l : t) signals.sipi(l.index(), m.vector()); }
            default -> {} // SMI, ExtINT and reserved modes: not modelled
        }
    }
}

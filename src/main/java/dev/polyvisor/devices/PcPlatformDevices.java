package dev.polyvisor.devices;

import dev.polyvisor.clock.VirtualClock;
import dev.polyvisor.cpu.InterruptSource;
import dev.polyvisor.memory.GuestMemory;

import java.util.function.Consumer;

/**
 * The standard PC/AT device set of one VM, built and attached in one call:
 * <pre>
 *   0x20-0x21, 0xA0-0xA1, 0x4D0-0x4D1  8259A pair + ELCR      {@link DualPic}
 *   0x40-0x43                          8254 PIT (IRQ0)        {@link Pit8254}
 *   0x60, 0x64                         8042 (IRQ1, IRQ12)     {@link I8042}
 *   0x61                               system control port B  {@link SystemControlPort}
 *   0x70-0x71                          MC146818 RTC (IRQ8)    {@link CmosRtc}
 *   0x80                               POST                   {@link PostPort}
 *   0x2F8-0x2FF                        COM2 16550A (IRQ3)     {@link Uart16550}
 *   0x3F8-0x3FF                        COM1 16550A (IRQ4)     {@link Uart16550}
 *   0x600-0x60B                        ACPI PM1a/PM timer (SCI = IRQ9) {@link AcpiPm}
 *   0xCF8-0xCFF                        PCI config mechanism 1 {@link PciHostBridge}
 *   0xC0000000-0xFEBFFFFF              PCI memory window (BARs) {@link PciMmioWindow}
 *   0xFEC00000                         IOAPIC                 {@link IoApic}
 *   0xFEE00000                         LAPIC per vCPU         {@link ApicBus}
 * </pre>
 * ISA IRQ n drives PIC input n and IOAPIC pin n, except IRQ0 which reaches IOAPIC pin 2 (the MADT
 * interrupt source override Linux expects, as on every PC since the MP specification).
 *
 * <p>What the VMM does with it:
 * <ul>
 * <li>Give each vCPU {@link #interruptSource(int)} (its LAPIC; the PIC reaches vCPU 0 through LINT0 in
 *     virtual-wire mode, or directly when the guest hardware-disables the APIC).</li>
 * <li>Route MSR 0x1B (IA32_APIC_BASE) to {@link Lapic#apicBaseMsr()}/{@link Lapic#writeApicBaseMsr} and
 *     MSR 0x6E0 (IA32_TSC_DEADLINE) to {@link Lapic#readTscDeadline()}/{@link Lapic#writeTscDeadline}.</li>
 * <li>Tell {@link ApicBus} which vCPU runs: {@link ApicBus#setCurrentVcpu} per vCPU thread, or
 *     {@link ApicBus#setCurrentVcpuSupplier} for a single round-robin thread.</li>
 * <li>Handle {@link ApicBus.CpuSignals}: kick (wake from HLT), NMI, INIT, SIPI (Linux sends two SIPIs;
 *     the second must be ignored by a vCPU already running).</li>
 * <li>Call {@code clock.timers().runExpired()} from the run loop when {@code clock.hasExpiredTimers()};
 *     when every vCPU halts, {@code clock.warpToNextDeadline()} (icount) or park up to the next
 *     deadline, at most {@code clock.maxParkNanos()} at a time (realtime).</li>
 * <li>Build the firmware tables with {@code vmm.acpi.AcpiTables.build(AcpiTables.Platform.of(devices), ...)}.</li>
 * </ul>
 * The ports above must be free on the {@link IoBus}: {@link IoBus#register} refuses a second owner.
 * The APIC timer runs at {@link ApicBus#DEFAULT_BUS_HZ} (1 GHz); a CPUID leaf 0x15/0x16 or a
 * personality that reports the bus frequency must report that value.
 */
public final class PcPlatformDevices {
    public static final int COM1 = 0x3F8, COM1_IRQ = 4, COM2 = 0x2F8, COM2_IRQ = 3, SCI_IRQ = 9;

    /** Host-side hooks. */
    public record Hooks(Consumer<byte[]> serialOut, Runnable reset, Runnable powerOff, ApicBus.CpuSignals cpuSignals) {
        public static Hooks none() { return new Hooks(b -> {}, () -> {}, () -> {}, ApicBus.CpuSignals.NONE); }
    }

    public final VirtualClock clock;
    public final DualPic pic;
    public final IoApic ioapic;
    /** Bus 0's INTx pins onto IOAPIC pins 16-23. */
    public final PciIntxRouting pciIntx;
    public final ApicBus apics;
    public final Pit8254 pit;
    public final SystemControlPort portB;
    public final CmosRtc rtc;
    public final Uart16550 com1;
    /** The second serial port; its output is dropped unless the VMM gives it a sink. */
    public final Uart16550 com2;
    public final I8042 i8042;
    public final PostPort post;
    public final PciHostBridge pci;
    public final AcpiPm pm;

    private PcPlatformDevices(VirtualClock clock, int vcpus, long ramBytes, long rtcStartEpochSeconds, Hooks hooks) {
        this.clock = clock;
        pic = new DualPic();
        apics = new ApicBus(clock, vcpus, pic, hooks.cpuSignals(), ApicBus.DEFAULT_BUS_HZ);
        ioapic = new IoApic(apics, vcpus); // the IOAPIC takes the first APIC ID after the CPUs
        pciIntx = new PciIntxRouting(ioapic::setIrq);
        // The PIC's INTR reaches vCPU 0 (LINT0 in virtual wire mode): wake it when INTR rises.
        ApicBus.CpuSignals sig = hooks.cpuSignals() == null ? ApicBus.CpuSignals.NONE : hooks.cpuSignals();
        pic.setIntrListener(() -> sig.kick(0));
        pit = new Pit8254(clock, isaIrq(0));
        pit.setIrq0PendingProbe(() -> pic.requestPending(0) || ioapic.deliveryPending(2));
        portB = new SystemControlPort(clock, pit);
        rtc = new CmosRtc(clock, rtcStartEpochSeconds, isaIrq(8));
        rtc.setMemorySize(ramBytes);
        com1 = new Uart16550(COM1, isaIrq(COM1_IRQ), hooks.serialOut());
        com2 = new Uart16550(COM2, isaIrq(COM2_IRQ), null);
        i8042 = new I8042(isaIrq(1), isaIrq(12), hooks.reset());
        post = new PostPort();
        pci = new PciHostBridge();
        pm = new AcpiPm(clock, AcpiPm.DEFAULT_BASE, false, isaIrq(SCI_IRQ), hooks.powerOff());
        rtc.setAlarmListener(pm::rtcAlarm); // the PIIX4's RTC alarm wake (ACPI RTC_STS)
    }

    /**
     * Builds the device set and attaches it to the port bus and the physical address space.
     *
     * @param rtcStartEpochSeconds the RTC's wall time (UTC seconds) at virtual time 0; pass a fixed
     *                             value in icount mode for deterministic runs
     */
    public static PcPlatformDevices create(VirtualClock clock, int vcpus, IoBus io, GuestMemory mem,
                                           long rtcStartEpochSeconds, Hooks hooks) {
        PcPlatformDevices d = new PcPlatformDevices(clock, vcpus, mem.ramBytes, rtcStartEpochSeconds, hooks);
        d.pic.register(io);
        d.pit.register(io);
        d.portB.register(io);
        d.rtc.register(io);
        d.com1.register(io);
        d.com2.register(io);
        d.i8042.register(io);
        d.post.register(io);
        d.pci.register(io);
        d.pci.register(mem);
        d.pm.register(io);
        d.ioapic.register(mem);
        d.apics.register(mem);
        return d;
    }

    /** An ISA interrupt line: PIC input {@code irq} and the matching IOAPIC pin. */
    public IrqLine isaIrq(int irq) {
        int gsi = irq == 0 ? 2 : irq;
        return level -> {
            pic.setIrq(irq, level);
            ioapic.setIrq(gsi, level);
        };
    }

    /** The vCPU's interrupt controller as the CPU sees it: its LAPIC (which passes the PIC through in virtual-wire or APIC-disabled mode). */
    public InterruptSource interruptSource(int vcpu) { return apics.lapic(vcpu); }

    /** The vCPU's LAPIC, for IA32_APIC_BASE and IA32_TSC_DEADLINE MSRs. */
    public Lapic lapic(int vcpu) { return apics.lapic(vcpu); }

    /** Number of I/O APIC ID the firmware tables must describe. */
    public int ioapicId() { return ioapic.id(); }
}

package dev.polyvisor.vmm.pc;

import dev.polyvisor.clock.VirtualClock;
import dev.polyvisor.cpu.Cpu;
import dev.polyvisor.cpu.Platform;
import dev.polyvisor.devices.ApicBus;
import dev.polyvisor.devices.FwCfg;
import dev.polyvisor.devices.IoBus;
import dev.polyvisor.devices.Lapic;
import dev.polyvisor.devices.PcPlatformDevices;
import dev.polyvisor.memory.GuestMemory;
import dev.polyvisor.vmm.acpi.AcpiTables;
import dev.polyvisor.vmm.acpi.E820Map;
import dev.polyvisor.vmm.acpi.Fadt;
import dev.polyvisor.vmm.boot.linux.E820Entry;
import dev.polyvisor.vmm.boot.linux.LinuxBoot;
import dev.polyvisor.vmm.boot.LoadException;
import dev.polyvisor.vmm.boot.linux.LoadedKernel;
import dev.polyvisor.vmm.boot.linux.Pvh;

import java.lang.foreign.MemorySegment;
import java.util.List;

/**
 * The PC a Linux guest boots on: the standard device set ({@link PcPlatformDevices}), QEMU's fw_cfg
 * ({@link FwCfg}: CPU count, RAM size, the e820 map as etc/e820), ACPI tables
 * (RSDP, XSDT, FADT, MADT with one LAPIC per vCPU, DSDT with \_S5) in the BIOS area, the e820 map,
 * and the kernel loaded by the 64-bit Linux boot protocol or the PVH entry. Debian's cloud kernel
 * has no MP-table parser (CONFIG_X86_MPPARSE is off), so the MADT is how it finds the CPUs.
 */
public final class PcBoard {
    public final PcPlatformDevices devices;
    public final AcpiTables acpi;
    public final E820Map e820;
    /** QEMU's fw_cfg at 0x510/0x511, present on every QEMU pc machine: what firmware and test kernels read. */
    public final FwCfg fwCfg;

    public PcBoard(VirtualClock clock, int vcpus, IoBus io, GuestMemory mem, long rtcEpoch, PcPlatformDevices.Hooks hooks) {
        this.devices = PcPlatformDevices.create(clock, vcpus, io, mem, rtcEpoch, hooks);
        this.e820 = E820Map.standardPc(mem.ramBytes);
        this.acpi = AcpiTables.build(new AcpiTables.Platform(vcpus, ApicBus.LAPIC_BASE, devices.ioapicId(), 0xFEC0_0000L,
                Fadt.Config.standard(devices.pm.base(), false)), AcpiTables.DEFAULT_BASE);
        acpi.loadInto(mem);
        // QEMU pc: NB_CPUS = the CPUs present at boot, MAX_CPUS = the APIC ID limit (hw/i386/fw_cfg.c).
        this.fwCfg = FwCfg.pc(mem.ramBytes, vcpus, vcpus);
        fwCfg.addFile("etc/e820", FwCfg.e820File(e820.entries().stream()
                .map(e -> new long[] {e.addr(), e.size(), e.type()}).toList()));
        fwCfg.register(io);
    }

    /** Loads the kernel; {@code pvh} selects the PVH entry (vmlinux from the bzImage, 32-bit entry). */
    public LoadedKernel loadLinux(GuestMemory mem, byte[] kernel, byte[] initrd, String cmdline, boolean pvh) throws LoadException {
        return loadLinux(mem, kernel, initrd, cmdline, pvh, false);
    }

    /**
     * Loads the kernel: the bzImage through the 64-bit boot protocol, its vmlinux at the 32-bit PVH
     * entry ({@code pvh}), or with {@code skipDecompressor} its vmlinux at startup_64 with the
     * bzImage's boot_params (LinuxBoot, for a kernel at its link address).
     */
    public LoadedKernel loadLinux(GuestMemory mem, byte[] kernel, byte[] initrd, String cmdline, boolean pvh,
                                  boolean skipDecompressor) throws LoadException {
        return loadLinux(mem, MemorySegment.ofArray(kernel), initrd == null ? null : MemorySegment.ofArray(initrd), cmdline, pvh, skipDecompressor);
    }

    /** As {@link #loadLinux(GuestMemory, byte[], byte[], String, boolean, boolean)}, for images in segments (image files read off the heap). */
    public LoadedKernel loadLinux(GuestMemory mem, MemorySegment kernel, MemorySegment initrd, String cmdline, boolean pvh,
                                  boolean skipDecompressor) throws LoadException {
        return loadLinux(mem, kernel, initrd, cmdline, pvh, skipDecompressor, null);
    }

    /**
     * As above, with the VM's {@code entropy} (null: none): the boot loader's RNG seed for the Linux boot protocol and,
     * with {@code skipDecompressor}, the kernel's random virtual base as the decompressor would choose it unless the
     * command line says nokaslr (LinuxBoot; without a source, the link address and no seed).
     */
    public LoadedKernel loadLinux(GuestMemory mem, MemorySegment kernel, MemorySegment initrd, String cmdline, boolean pvh,
                                  boolean skipDecompressor, java.util.random.RandomGenerator entropy) throws LoadException {
        List<E820Entry> map = e820.entries();
        if (pvh) return Pvh.load(mem, kernel, initrd, cmdline, map, acpi.rsdpAddress());
        return LinuxBoot.load(mem, kernel, skipDecompressor, entropy, initrd, cmdline, map, acpi.rsdpAddress());
    }

    /** Connects a vCPU to its LAPIC (interrupts and the LAPIC's MSRs). */
    public void attach(Cpu cpu) {
        cpu.interrupts = devices.interruptSource(cpu.id);
    }

    /** MSRs the board answers: IA32_TSC_DEADLINE goes to the vCPU's LAPIC. */
    public Platform.MsrResult rdmsr(int vcpu, int index) {
        Lapic l = devices.lapic(vcpu);
        if (index == Lapic.MSR_TSC_DEADLINE) return Platform.MsrResult.of(l.readTscDeadline());
        if (isX2apicMsr(index)) return l.readX2apic(index);
        return null;
    }

    /** MSRs 0x800-0x8FF: the x2APIC registers, #GP(0) unless the vCPU's APIC is in x2APIC mode (SDM 11.12.1.2). */
    public static boolean isX2apicMsr(int index) { return index >= Lapic.X2APIC_MSR_FIRST && index <= Lapic.X2APIC_MSR_LAST; }

    /** WRMSR to an x2APIC register MSR; false is #GP(0). */
    public boolean writeX2apic(int vcpu, int index, long value) { return devices.lapic(vcpu).writeX2apic(index, value); }

    /** IA32_APIC_BASE as the CPU accepted it: the LAPIC follows the enable bit. */
    public void apicBaseWritten(int vcpu, long value) { devices.lapic(vcpu).writeApicBaseMsr(value); }

    public int taskPriorityClass(int vcpu) { return devices.lapic(vcpu).taskPriorityClass(); }

    public void setTaskPriorityClass(int vcpu, int cls) { devices.lapic(vcpu).setTaskPriorityClass(cls); }

    public boolean wrmsr(int vcpu, int index, long value) {
        Lapic l = devices.lapic(vcpu);
        if (index == Lapic.MSR_TSC_DEADLINE) { l.writeTscDeadline(value); return true; }
        return false;
    }
}

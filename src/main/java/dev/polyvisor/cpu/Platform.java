package dev.polyvisor.cpu;

/**
 * What the vCPU needs from outside itself, answered synchronously by the VMM. Each method corresponds
 * to one {@link VcpuExit} kind; the VMM routes it to the I/O bus, the CPUID table or the personality.
 */
public interface Platform {
    /** IN: returns the value read (only the low {@code size} bytes are used). Unclaimed ports read all-ones. */
    long portIn(int port, int size);

    void portOut(int port, int size, long value);

    /** CPUID: returns {eax, ebx, ecx, edx}. */
    int[] cpuid(int vcpuId, int leaf, int subleaf);

    /** RDMSR of an MSR the CPU does not own; {@link MsrResult#gp()} makes the CPU raise #GP(0). */
    MsrResult rdmsr(int vcpuId, int index);

    /** WRMSR of an MSR the CPU does not own; false makes the CPU raise #GP(0). */
    boolean wrmsr(int vcpuId, int index, long value);

    /**
     * RDPMC of performance counter {@code index} (ECX), after the CPU's privilege check;
     * {@link MsrResult#gp()} makes the CPU raise #GP(0) for a counter the model does not have.
     */
    default MsrResult rdpmc(int vcpuId, int index) { return MsrResult.gp(); }

    /** Whether RDPMC counter {@code index} is a hypervisor's pseudo-counter, readable at any CPL whatever CR4.PCE says. */
    default boolean pseudoCounter(int index) { return false; }

    /** Whether I/O port {@code port} answers at any CPL whatever IOPL and the TSS I/O bitmap say (a hypervisor backdoor). */
    default boolean portOpenToAllPrivilegeLevels(int port) { return false; }

    /**
     * Whether a far pointer with REX.W that lies in emulated MMIO is read as m16:64 whatever the vendor. Under
     * a hypervisor with hardware virtualization an instruction whose memory operand is emulated MMIO faults
     * out to the hypervisor, whose instruction emulator completes it; KVM's reads the selector after
     * op_bytes offset bytes, 8 with REX.W, on AMD hosts too (arch/x86/kvm/emulate.c: SrcMemFAddr,
     * em_jmp_far, em_call_far, em_lseg). Real AMD processors read m16:32 (AMD APM Vol. 3 "JMP (Far)").
     */
    default boolean mmioFarPointersHonourRexW() { return false; }

    /** VMCALL/VMMCALL. Return false to make the CPU raise #UD (no hypervisor claims the call). */
    boolean hypercall(VcpuExit.Hypercall call);

    /** The time-stamp counter of this vCPU (RDTSC/RDTSCP), derived from the VM's virtual clock. */
    long tsc(int vcpuId);

    /**
     * IA32_APIC_BASE was written with a value the CPU accepted: the local APIC follows its global enable
     * bit (SDM Vol. 3A 11.4.3). The CPU keeps the architectural copy it returns on RDMSR.
     */
    default void apicBaseWritten(int vcpuId, long value) {}

    /** CR8 reads TPR[7:4] of the local APIC (SDM Vol. 3A 11.8.6.1); -1: no local APIC, the CPU keeps CR8 itself. */
    default int taskPriorityClass(int vcpuId) { return -1; }

    /** MOV to CR8: TPR[7:4] = the value, TPR[3:0] = 0 (SDM Vol. 3A 11.8.6.1). */
    default void setTaskPriorityClass(int vcpuId, int priorityClass) {}

    /**
     * A vCPU's read of device MMIO at {@code offset} in {@code region}. The VMM runs it under its device
     * lock when vCPUs have host threads of their own (vmm.LockedPlatform); the default calls the handler.
     */
    default long mmioRead(dev.polyvisor.memory.MmioRegion region, long offset, int size) {
        return region.handler().read(offset, size);
    }

    /** A vCPU's write of device MMIO; see {@link #mmioRead}. */
    default void mmioWrite(dev.polyvisor.memory.MmioRegion region, long offset, int size, long value) {
        region.handler().write(offset, size, value);
    }

    /** Access to a physical address nothing claims: reads return the value given, writes are dropped. */
    default long unassignedMmio(VcpuExit.Mmio access) { return -1L; }

    /**
     * The vCPU executed PAUSE, the spin-wait hint (SDM Vol. 2B PAUSE). A VMM that shares host CPUs among
     * vCPUs may give the host CPU to another vCPU, as KVM does on a pause-loop exit (Intel SDM Vol. 3C
     * 26.1.3 "PAUSE-loop exiting", AMD APM Vol. 2 15.14.4 "Pause Intercept Filtering"; Linux
     * arch/x86/kvm/vmx/vmx.c handle_pause -> kvm_vcpu_on_spin).
     */
    default void pause(int vcpuId) {}

    record MsrResult(boolean ok, long value) {
        private static final MsrResult GP = new MsrResult(false, 0);
        public static MsrResult of(long v) { return new MsrResult(true, v); }
        public static MsrResult gp() { return GP; }
    }
}

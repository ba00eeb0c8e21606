package dev.polyvisor.personality.vmware;

import dev.polyvisor.cpu.model.CpuidReg;
import dev.polyvisor.personality.core.AbiContract;
import dev.polyvisor.personality.core.AbiElement;
import dev.polyvisor.personality.core.AbiElement.Kind;

import java.util.List;

/** VMware backdoor numbers (arch/x86/kernel/cpu/vmware.c) and contract. */
public final class VmwareAbi {
    private VmwareAbi() {}

    /** "VMwareVMware" in EBX, ECX, EDX. */
    public static final int SIG_EBX = 0x61774d56, SIG_ECX = 0x4d566572, SIG_EDX = 0x65726177;
    /** Offset of the timing leaf 0x40000010 from the base. */
    public static final int TIMING_LEAF = 0x10;
    /** 0x40000010.ECX: bit0 use VMMCALL, bit1 use VMCALL (CPUID_VMWARE_FEATURES_ECX_VMMCALL/_VMCALL). */
    public static final int ECX_VMMCALL = 1, ECX_VMCALL = 2;

    public static final int PORT = 0x5658;
    /** RDPMC indexes of VMware's pseudo-performance counters (KVM: VMWARE_BACKDOOR_PMC_*). */
    public static final int PMC_HOST_TSC = 0x10000, PMC_REAL_TIME = 0x10001, PMC_APPARENT_TIME = 0x10002;
    public static final int MAGIC = 0x564D5868; // 'VMXh'
    public static final int CMD_GETVERSION = 10, CMD_GETHZ = 45, CMD_GETVCPU_INFO = 68, CMD_STEALCLOCK = 91;
    /** Command numbers packed as pseudo hypercall numbers for the contract (the backdoor has one entry point). */
    public static final int STEALCLOCK_NOT_AVAILABLE = -1, STEALCLOCK_DISABLED = 0, STEALCLOCK_ENABLED = 1;
    /** GETVERSION EAX: backdoor protocol version; ECX: product type (VMX_TYPE_SCALABLE_SERVER = 2). */
    public static final int VERSION = 6, PRODUCT_TYPE = 2;

    public static final AbiContract CONTRACT = new AbiContract("vmware", List.of(
            AbiElement.of("vmware.backdoor", Kind.PORT)
                    .numbers("port 0x5658 IN with EAX=0x564D5868; command 10 GETVERSION")
                    .enables("the backdoor itself (DMI detection path confirms with GETVERSION; every command below needs it)")
                    .source("arch/x86/kernel/cpu/vmware.c: vmware_platform, VMWARE_CMD")
                    .hypercall(CMD_GETVERSION).build(),
            AbiElement.of("vmware.gethz", Kind.PORT)
                    .numbers("backdoor command 45 GETHZ: TSC Hz in EBX:EAX, LAPIC bus Hz in ECX")
                    .enables("TSC frequency without calibration ('vmware: TSC freq read from hypervisor'), lapic_timer_period, vmware_sched_clock, steal clock")
                    .source("arch/x86/kernel/cpu/vmware.c: __vmware_platform_setup, vmware_paravirt_ops_setup")
                    .hypercall(CMD_GETHZ).build(),
            AbiElement.of("vmware.vcpu-info", Kind.PORT)
                    .numbers("backdoor command 68 GETVCPU_INFO")
                    .enables("x2APIC decision (bit 3 legacy x2APIC); answered with 0: xAPIC only")
                    .source("arch/x86/kernel/cpu/vmware.c: vmware_legacy_x2apic_available")
                    .hypercall(CMD_GETVCPU_INFO).build(),
            AbiElement.of("vmware.steal-clock", Kind.SHARED_STRUCTURE)
                    .numbers("backdoor command 91 STEALCLOCK; struct vmware_steal_time (64 bytes, TSC cycles)")
                    .enables("pv_steal_clock ('vmware: vmware-stealtime: cpu %d, pa %llx'), steal in /proc/stat")
                    .source("arch/x86/kernel/cpu/vmware.c: vmware_cmd_stealclock, vmware_steal_clock")
                    .hypercall(CMD_STEALCLOCK).build(),
            AbiElement.of("vmware.timing-leaf", Kind.CPUID_BIT)
                    .numbers("CPUID 0x40000010: EAX TSC kHz, EBX bus kHz, ECX hypercall mode (max leaf 0x40000010)")
                    .enables("VMCALL/VMMCALL backdoor mode when ECX selects it ('vmware: hypercall mode: 0x%02x'); 6.1 ignores EAX/EBX")
                    .source("arch/x86/kernel/cpu/vmware.c: vmware_set_capabilities/vmware_platform")
                    .cpuid(TIMING_LEAF, CpuidReg.ECX, 0).cpuid(TIMING_LEAF, CpuidReg.ECX, 1).build()));
}

package dev.polyvisor.personality.kvm;

import dev.polyvisor.cpu.model.CpuidReg;
import dev.polyvisor.personality.core.AbiContract;
import dev.polyvisor.personality.core.AbiElement;
import dev.polyvisor.personality.core.AbiElement.Kind;

import java.util.List;

/** KVM ABI numbers (arch/x86/include/uapi/asm/kvm_para.h, include/uapi/linux/kvm_para.h) and contract. */
public final class KvmAbi {
    private KvmAbi() {}

    /** "KVMKVMKVM\0\0\0" in EBX, ECX, EDX. */
    public static final int SIG_EBX = 0x4b4d564b, SIG_ECX = 0x564b4d56, SIG_EDX = 0x0000004d;

    // CPUID base+1 EAX feature bits
    public static final int FEATURE_CLOCKSOURCE = 0, FEATURE_NOP_IO_DELAY = 1, FEATURE_CLOCKSOURCE2 = 3,
            FEATURE_STEAL_TIME = 5, FEATURE_PV_EOI = 6, FEATURE_PV_UNHALT = 7, FEATURE_PV_TLB_FLUSH = 9,
            FEATURE_PV_SEND_IPI = 11, FEATURE_POLL_CONTROL = 12, FEATURE_PV_SCHED_YIELD = 13,
            FEATURE_CLOCKSOURCE_STABLE_BIT = 24;

    // MSRs
    public static final int MSR_WALL_CLOCK = 0x11, MSR_SYSTEM_TIME = 0x12;
    public static final int MSR_WALL_CLOCK_NEW = 0x4b564d00, MSR_SYSTEM_TIME_NEW = 0x4b564d01,
            MSR_ASYNC_PF_EN = 0x4b564d02, MSR_STEAL_TIME = 0x4b564d03, MSR_PV_EOI_EN = 0x4b564d04,
            MSR_POLL_CONTROL = 0x4b564d05;

    // Hypercalls and errors
    public static final int HC_KICK_CPU = 5, HC_SEND_IPI = 10, HC_SCHED_YIELD = 11;
    public static final long ENOSYS = -1000, EPERM = -1, EINVAL = -22;

    /** struct kvm_steal_time (64 bytes): steal u64 @0, version u32 @8, flags u32 @12, preempted u8 @16. */
    public static final int STEAL_OFF_STEAL = 0, STEAL_OFF_VERSION = 8, STEAL_OFF_FLAGS = 12, STEAL_OFF_PREEMPTED = 16;

    public static final AbiContract CONTRACT = new AbiContract("kvm", List.of(
            AbiElement.of("kvm.clocksource", Kind.CPUID_BIT)
                    .numbers("0x40000001.EAX bits 0,3; MSRs 0x11/0x12, 0x4b564d00/01; pvclock_vcpu_time_info, pvclock_wall_clock")
                    .enables("kvm-clock clocksource (rating 400), sched_clock, TSC kHz from pvclock, wall clock at boot")
                    .source("arch/x86/kernel/kvmclock.c")
                    .cpuid(1, CpuidReg.EAX, FEATURE_CLOCKSOURCE).cpuid(1, CpuidReg.EAX, FEATURE_CLOCKSOURCE2)
                    .msr(MSR_WALL_CLOCK, MSR_SYSTEM_TIME, MSR_WALL_CLOCK_NEW, MSR_SYSTEM_TIME_NEW).build(),
            AbiElement.of("kvm.clocksource-stable", Kind.CPUID_BIT)
                    .numbers("0x40000001.EAX bit 24; pvti flags bit 0")
                    .enables("guest honours PVCLOCK_TSC_STABLE_BIT: stable sched_clock, vDSO kvm-clock, no global monotonic clamp")
                    .source("arch/x86/kernel/kvmclock.c, arch/x86/kernel/pvclock.c")
                    .cpuid(1, CpuidReg.EAX, FEATURE_CLOCKSOURCE_STABLE_BIT).build(),
            AbiElement.of("kvm.nop-io-delay", Kind.CPUID_BIT)
                    .numbers("0x40000001.EAX bit 1")
                    .enables("pv_ops.cpu.io_delay becomes a no-op (no OUT to port 0x80)")
                    .source("arch/x86/kernel/kvm.c: paravirt_ops_setup")
                    .cpuid(1, CpuidReg.EAX, FEATURE_NOP_IO_DELAY).build(),
            AbiElement.of("kvm.steal-time", Kind.SHARED_STRUCTURE)
                    .numbers("0x40000001.EAX bit 5; MSR 0x4b564d03; struct kvm_steal_time (64 bytes)")
                    .enables("pv_steal_clock (steal column in /proc/stat), vcpu_is_preempted")
                    .source("arch/x86/kernel/kvm.c: kvm_register_steal_time, kvm_steal_clock")
                    .cpuid(1, CpuidReg.EAX, FEATURE_STEAL_TIME).msr(MSR_STEAL_TIME).build(),
            AbiElement.of("kvm.pv-eoi", Kind.MSR)
                    .numbers("0x40000001.EAX bit 6; MSR 0x4b564d04; 4-byte EOI word")
                    .enables("apic->eoi_write = kvm_guest_apic_eoi_write (skip the APIC EOI when the host set bit 0)")
                    .source("arch/x86/kernel/kvm.c: kvm_guest_cpu_init")
                    .cpuid(1, CpuidReg.EAX, FEATURE_PV_EOI).msr(MSR_PV_EOI_EN).build(),
            AbiElement.of("kvm.pv-unhalt", Kind.HYPERCALL)
                    .numbers("0x40000001.EAX bit 7; hypercall 5 KVM_HC_KICK_CPU")
                    .enables("PV qspinlocks: wait = HLT (even with IF=0), kick = KVM_HC_KICK_CPU ('kvm-guest: PV spinlocks enabled')")
                    .source("arch/x86/kernel/kvm.c: kvm_spinlock_init, kvm_kick_cpu, kvm_wait")
                    .cpuid(1, CpuidReg.EAX, FEATURE_PV_UNHALT).hypercall(HC_KICK_CPU).build(),
            AbiElement.of("kvm.pv-tlb-flush", Kind.CPUID_BIT)
                    .numbers("0x40000001.EAX bit 9 (uses steal_time.preempted bit 1)")
                    .enables("pv_ops.mmu.flush_tlb_multi = kvm_flush_tlb_multi ('kvm-guest: KVM setup pv remote TLB flush')")
                    .source("arch/x86/kernel/kvm.c: kvm_flush_tlb_multi")
                    .cpuid(1, CpuidReg.EAX, FEATURE_PV_TLB_FLUSH).build(),
            AbiElement.of("kvm.pv-send-ipi", Kind.HYPERCALL)
                    .numbers("0x40000001.EAX bit 11; hypercall 10 KVM_HC_SEND_IPI")
                    .enables("apic->send_IPI_mask{,_allbutself} via one hypercall per 128 APIC IDs ('kvm-guest: setup PV IPIs')")
                    .source("arch/x86/kernel/kvm.c: __send_ipi_mask, kvm_setup_pv_ipi")
                    .cpuid(1, CpuidReg.EAX, FEATURE_PV_SEND_IPI).hypercall(HC_SEND_IPI).build(),
            AbiElement.of("kvm.poll-control", Kind.MSR)
                    .numbers("0x40000001.EAX bit 12; MSR 0x4b564d05")
                    .enables("cpuidle-haltpoll tells the host whether to poll on HLT; read at suspend")
                    .source("arch/x86/kernel/kvm.c: kvm_disable_host_haltpoll, drivers/cpuidle/cpuidle-haltpoll.c")
                    .cpuid(1, CpuidReg.EAX, FEATURE_POLL_CONTROL).msr(MSR_POLL_CONTROL).build(),
            AbiElement.of("kvm.pv-sched-yield", Kind.HYPERCALL)
                    .numbers("0x40000001.EAX bit 13; hypercall 11 KVM_HC_SCHED_YIELD")
                    .enables("call-function IPIs yield to a preempted target ('kvm-guest: setup PV sched yield')")
                    .source("arch/x86/kernel/kvm.c: kvm_smp_send_call_func_ipi")
                    .cpuid(1, CpuidReg.EAX, FEATURE_PV_SCHED_YIELD).hypercall(HC_SCHED_YIELD).build(),
            AbiElement.of("kvm.async-pf-msr", Kind.MSR)
                    .numbers("MSR 0x4b564d02 (feature bits 4/14 never advertised)")
                    .enables("accepts the guest's disable write (0) at shutdown/kexec; enabling raises #GP since async PF is not offered")
                    .source("arch/x86/kernel/kvm.c: kvm_pv_disable_apf")
                    .msr(MSR_ASYNC_PF_EN).build()));
}

package dev.polyvisor.personality.hyperv;

import dev.polyvisor.cpu.model.CpuidReg;
import dev.polyvisor.personality.core.AbiContract;
import dev.polyvisor.personality.core.AbiElement;
import dev.polyvisor.personality.core.AbiElement.Kind;

import java.util.List;

/** Hyper-V TLFS numbers as Linux 6.1 defines them (hyperv-tlfs.h) and the personality's contract. */
public final class HvAbi {
    private HvAbi() {}

    /** "Microsoft Hv" in EBX, ECX, EDX; "Hv#1" in 0x40000001.EAX. */
    public static final int SIG_EBX = 0x7263694d, SIG_ECX = 0x666f736f, SIG_EDX = 0x76482074, INTERFACE_HV1 = 0x31237648;
    public static final int LEAF_VENDOR = 0, LEAF_INTERFACE = 1, LEAF_VERSION = 2, LEAF_FEATURES = 3,
            LEAF_ENLIGHTENMENTS = 4, LEAF_LIMITS = 5, LEAF_HW_FEATURES = 6, LEAF_NESTED = 0xA;

    // 0x40000003.EAX ("group A", HV_MSR_*_AVAILABLE)
    public static final int A_TIME_REF_COUNT = 1, A_SYNIC = 2, A_SYNTIMER = 3, A_HYPERCALL = 5, A_VP_INDEX = 6,
            A_REFERENCE_TSC = 9, A_GUEST_IDLE = 10, A_ACCESS_FREQUENCY = 11;
    // 0x40000003.EBX ("group B", partition privileges HV_POST_MESSAGES, HV_SIGNAL_EVENTS)
    public static final int B_POST_MESSAGES = 4, B_SIGNAL_EVENTS = 5;
    // 0x40000003.EDX ("group D")
    public static final int D_FREQUENCY_MSRS = 8, D_STIMER_DIRECT = 19;
    // 0x40000004.EAX recommendations
    public static final int HINT_REMOTE_TLB_FLUSH = 2, HINT_CLUSTER_IPI = 10, HINT_EX_PROCESSOR_MASKS = 11;

    // Synthetic MSRs
    public static final int MSR_GUEST_OS_ID = 0x40000000, MSR_HYPERCALL = 0x40000001, MSR_VP_INDEX = 0x40000002,
            MSR_TIME_REF_COUNT = 0x40000020, MSR_REFERENCE_TSC = 0x40000021, MSR_TSC_FREQUENCY = 0x40000022,
            MSR_APIC_FREQUENCY = 0x40000023, MSR_VP_ASSIST_PAGE = 0x40000073,
            MSR_SCONTROL = 0x40000080, MSR_SVERSION = 0x40000081, MSR_SIEFP = 0x40000082, MSR_SIMP = 0x40000083,
            MSR_EOM = 0x40000084, MSR_SINT0 = 0x40000090, MSR_SINT15 = 0x4000009F,
            MSR_STIMER0_CONFIG = 0x400000B0, MSR_STIMER3_COUNT = 0x400000B7, MSR_GUEST_IDLE = 0x400000F0;
    public static final int STIMERS = 4, SINTS = 16;

    // SINT register bits
    public static final long SINT_MASKED = 1L << 16, SINT_AUTO_EOI = 1L << 17;
    /** SynIC message type for a synthetic timer expiry, and the message slot size in the SIMP page. */
    public static final int HVMSG_NONE = 0, HVMSG_TIMER_EXPIRED = 0x80000010, MESSAGE_SIZE = 256, TIMER_PAYLOAD_SIZE = 24;
    /** struct hv_message: payload at byte 16, at most 240 bytes; message_flags bit 0 msg_pending at byte 5. */
    public static final int MESSAGE_PAYLOAD_OFFSET = 16, MESSAGE_PAYLOAD_MAX = 240, MESSAGE_FLAGS_OFFSET = 5,
            MESSAGE_FLAG_PENDING = 1;
    /** struct hv_event_flags: one 2048-bit (256-byte) slot per SINT in the SIEFP page. */
    public static final int EVENT_FLAGS_SLOT_SIZE = 256, EVENT_FLAGS_COUNT = 2048;
    /** struct hv_input_post_message: connection_id u32 @0, message_type u32 @8, payload_size u32 @12, payload @16. */
    public static final int POST_MESSAGE_INPUT_SIZE = 256;
    /** Connection ids are 24 bits (HV_CONNECTION_ID_MASK in QEMU's hw/hyperv/hyperv.c). */
    public static final int CONNECTION_ID_MASK = 0xFF_FFFF;

    // Hypercall codes
    public static final int CALL_FLUSH_VA_SPACE = 0x0002, CALL_FLUSH_VA_LIST = 0x0003, CALL_NOTIFY_LONG_SPIN_WAIT = 0x0008,
            CALL_SEND_IPI = 0x000B, CALL_FLUSH_VA_SPACE_EX = 0x0013, CALL_FLUSH_VA_LIST_EX = 0x0014,
            CALL_SEND_IPI_EX = 0x0015, CALL_POST_MESSAGE = 0x005C, CALL_SIGNAL_EVENT = 0x005D;
    // HV_STATUS values
    public static final int STATUS_SUCCESS = 0, STATUS_INVALID_HYPERCALL_CODE = 2, STATUS_INVALID_HYPERCALL_INPUT = 3,
            STATUS_INVALID_ALIGNMENT = 4, STATUS_INVALID_PARAMETER = 5, STATUS_ACCESS_DENIED = 6,
            STATUS_INSUFFICIENT_MEMORY = 0xB, STATUS_INVALID_PORT_ID = 0x11, STATUS_INVALID_CONNECTION_ID = 0x12,
            STATUS_INSUFFICIENT_BUFFERS = 0x13;
    /** HV_FLUSH_* flags of the flush hypercalls' input. */
    public static final long FLUSH_ALL_PROCESSORS = 1, FLUSH_ALL_VIRTUAL_ADDRESS_SPACES = 2, FLUSH_NON_GLOBAL_MAPPINGS_ONLY = 4;
    /** hv_vpset.format */
    public static final long VPSET_SPARSE_4K = 0, VPSET_ALL = 1;

    public static final AbiContract CONTRACT = new AbiContract("hyperv", List.of(
            AbiElement.of("hyperv.hypercall", Kind.MSR)
                    .numbers("0x40000003.EAX bit 5; MSRs 0x40000000 GUEST_OS_ID, 0x40000001 HYPERCALL; hypercall page (VMMCALL; RET)")
                    .enables("detection (required by ms_hyperv_platform), hyperv_init's hypercall page, every hypercall below")
                    .source("arch/x86/kernel/cpu/mshyperv.c, arch/x86/hyperv/hv_init.c")
                    .cpuid(LEAF_FEATURES, CpuidReg.EAX, A_HYPERCALL).msr(MSR_GUEST_OS_ID, MSR_HYPERCALL).build(),
            AbiElement.of("hyperv.vp-index", Kind.MSR)
                    .numbers("0x40000003.EAX bit 6; MSR 0x40000002")
                    .enables("detection (required), hv_vp_index[] used as bit positions in IPI/flush masks")
                    .source("arch/x86/kernel/cpu/mshyperv.c, drivers/hv/hv_common.c: hv_common_cpu_init")
                    .cpuid(LEAF_FEATURES, CpuidReg.EAX, A_VP_INDEX).msr(MSR_VP_INDEX).build(),
            AbiElement.of("hyperv.time-ref-count", Kind.MSR)
                    .numbers("0x40000003.EAX bit 1; MSR 0x40000020 (100 ns units)")
                    .enables("hyperv_clocksource_msr, fallback while the TSC page sequence is 0")
                    .source("drivers/clocksource/hyperv_timer.c: read_hv_clock_msr")
                    .cpuid(LEAF_FEATURES, CpuidReg.EAX, A_TIME_REF_COUNT).msr(MSR_TIME_REF_COUNT).build(),
            AbiElement.of("hyperv.reference-tsc", Kind.SHARED_STRUCTURE)
                    .numbers("0x40000003.EAX bit 9; MSR 0x40000021; ms_hyperv_tsc_page {sequence, scale, offset}")
                    .enables("hyperv_clocksource_tsc_page (rating 500), sched_clock, vDSO HVCLOCK")
                    .source("drivers/clocksource/hyperv_timer.c: hv_init_tsc_clocksource, include/clocksource/hyperv_timer.h")
                    .cpuid(LEAF_FEATURES, CpuidReg.EAX, A_REFERENCE_TSC).msr(MSR_REFERENCE_TSC).build(),
            AbiElement.of("hyperv.frequency-msrs", Kind.MSR)
                    .numbers("0x40000003.EAX bit 11 + EDX bit 8; MSRs 0x40000022 TSC Hz, 0x40000023 APIC Hz")
                    .enables("TSC kHz and lapic_timer_period without calibration, TSC_KNOWN_FREQ ('Hyper-V: LAPIC Timer Frequency')")
                    .source("arch/x86/kernel/cpu/mshyperv.c: hv_get_tsc_khz, ms_hyperv_init_platform")
                    .cpuid(LEAF_FEATURES, CpuidReg.EAX, A_ACCESS_FREQUENCY).cpuid(LEAF_FEATURES, CpuidReg.EDX, D_FREQUENCY_MSRS)
                    .msr(MSR_TSC_FREQUENCY, MSR_APIC_FREQUENCY).build(),
            AbiElement.of("hyperv.vp-assist", Kind.SHARED_STRUCTURE)
                    .numbers("MSR 0x40000073 VP_ASSIST_PAGE (apic_assist never set)")
                    .enables("accepts hv_cpu_init's per-CPU VP assist page write (no 'unchecked MSR access' warning)")
                    .source("arch/x86/hyperv/hv_init.c: hv_cpu_init")
                    .msr(MSR_VP_ASSIST_PAGE).build(),
            AbiElement.of("hyperv.synic", Kind.MSR)
                    .numbers("0x40000003.EAX bit 2; MSRs 0x40000080-0x40000084 SCONTROL/SVERSION/SIEFP/SIMP/EOM, 0x40000090-0x4000009F SINT0-15")
                    .enables("SynIC message delivery for non-direct stimers and VMBus (hv_synic_enable_regs)")
                    .source("drivers/hv/hv.c, include/asm-generic/hyperv-tlfs.h")
                    .cpuid(LEAF_FEATURES, CpuidReg.EAX, A_SYNIC).msrRange(MSR_SCONTROL, MSR_EOM).msrRange(MSR_SINT0, MSR_SINT15).build(),
            AbiElement.of("hyperv.synic-connections", Kind.HYPERCALL)
                    .numbers("0x40000003.EBX bits 4 PostMessages + 5 SignalEvents; hypercalls 0x005C HvPostMessage, 0x005D HvSignalEvent")
                    .enables("messages and event flags to host-side connections (VMBus channels; QEMU's hyperv-testdev)")
                    .source("include/asm-generic/hyperv-tlfs.h HVCALL_POST_MESSAGE/HVCALL_SIGNAL_EVENT, drivers/hv/connection.c vmbus_set_event")
                    .cpuid(LEAF_FEATURES, CpuidReg.EBX, B_POST_MESSAGES).cpuid(LEAF_FEATURES, CpuidReg.EBX, B_SIGNAL_EVENTS)
                    .hypercall(CALL_POST_MESSAGE).hypercall(CALL_SIGNAL_EVENT).build(),
            AbiElement.of("hyperv.stimer", Kind.MSR)
                    .numbers("0x40000003.EAX bit 3 + EDX bit 19; MSRs 0x400000B0-0x400000B7 STIMER0-3 CONFIG/COUNT")
                    .enables("'Hyper-V clockevent' (stimer0 direct mode, vector 0xED, rating 1000)")
                    .source("drivers/clocksource/hyperv_timer.c: hv_stimer_init, hv_ce_set_next_event")
                    .cpuid(LEAF_FEATURES, CpuidReg.EAX, A_SYNTIMER).cpuid(LEAF_FEATURES, CpuidReg.EDX, D_STIMER_DIRECT)
                    .msrRange(MSR_STIMER0_CONFIG, MSR_STIMER3_COUNT).build(),
            AbiElement.of("hyperv.guest-idle", Kind.MSR)
                    .numbers("0x40000003.EAX bit 10; MSR 0x400000F0 HV_X64_MSR_GUEST_IDLE")
                    .enables("PV spinlock wait = RDMSR GUEST_IDLE, idle until an interrupt even with IF=0 ('Hyper-V: PV spinlocks enabled', with hint 10)")
                    .source("arch/x86/hyperv/hv_spinlock.c: hv_qlock_wait")
                    .cpuid(LEAF_FEATURES, CpuidReg.EAX, A_GUEST_IDLE).msr(MSR_GUEST_IDLE).build(),
            AbiElement.of("hyperv.remote-tlb-flush", Kind.HYPERCALL)
                    .numbers("0x40000004.EAX bit 2; hypercalls 0x0002/0x0003 HvCallFlushVirtualAddressSpace/List, 0x0013/0x0014 (Ex)")
                    .enables("pv_ops.mmu.flush_tlb_multi = hyperv_flush_tlb_multi ('Hyper-V: Using hypercall for remote TLB flush')")
                    .source("arch/x86/hyperv/mmu.c")
                    .cpuid(LEAF_ENLIGHTENMENTS, CpuidReg.EAX, HINT_REMOTE_TLB_FLUSH)
                    .hypercall(CALL_FLUSH_VA_SPACE).hypercall(CALL_FLUSH_VA_LIST).hypercall(CALL_FLUSH_VA_SPACE_EX).hypercall(CALL_FLUSH_VA_LIST_EX).build(),
            AbiElement.of("hyperv.cluster-ipi", Kind.HYPERCALL)
                    .numbers("0x40000004.EAX bit 10; hypercalls 0x000B HvCallSendSyntheticClusterIpi, 0x0015 (Ex)")
                    .enables("IPIs by hypercall ('Hyper-V: Using IPI hypercalls'); prerequisite for Hyper-V PV spinlocks")
                    .source("arch/x86/hyperv/hv_apic.c: __send_ipi_mask, __send_ipi_mask_ex")
                    .cpuid(LEAF_ENLIGHTENMENTS, CpuidReg.EAX, HINT_CLUSTER_IPI).hypercall(CALL_SEND_IPI).hypercall(CALL_SEND_IPI_EX).build(),
            AbiElement.of("hyperv.ex-processor-masks", Kind.CPUID_BIT)
                    .numbers("0x40000004.EAX bit 11")
                    .enables("sparse VP-set (_Ex) variants for IPIs to all-but-self and VP indices >= 64")
                    .source("arch/x86/hyperv/hv_apic.c, arch/x86/hyperv/mmu.c")
                    .cpuid(LEAF_ENLIGHTENMENTS, CpuidReg.EAX, HINT_EX_PROCESSOR_MASKS).build(),
            AbiElement.of("hyperv.long-spin-wait", Kind.HYPERCALL)
                    .numbers("hypercall 0x0008 HvCallNotifyLongSpinWait; 0x40000004.EBX spin retries = 0xFFFFFFFF (never)")
                    .enables("nothing in 6.1 Linux (Windows notifies after EBX spins); answered with success")
                    .source("include/asm-generic/hyperv-tlfs.h HVCALL_NOTIFY_LONG_SPIN_WAIT")
                    .hypercall(CALL_NOTIFY_LONG_SPIN_WAIT).build()));
}

package dev.polyvisor.personality.xen;

import dev.polyvisor.cpu.model.CpuidReg;
import dev.polyvisor.personality.core.AbiContract;
import dev.polyvisor.personality.core.AbiElement;
import dev.polyvisor.personality.core.AbiElement.Kind;

import java.util.List;

/** Xen interface numbers (include/xen/interface/{xen,vcpu,event_channel,memory,sched,version,features,hvm/*}.h). */
public final class XenAbi {
    private XenAbi() {}

    /** "XenVMMXenVMM" in EBX, ECX, EDX. */
    public static final int SIG_EBX = 0x566e6558, SIG_ECX = 0x65584d4d, SIG_EDX = 0x4d4d566e;
    /** Xen 4.16, reported by base+1 and XENVER_version. */
    public static final int VERSION = 0x0004_0010;
    /** base+4 EAX: XEN_HVM_CPUID_VCPU_ID_PRESENT (arch/x86/include/asm/xen/cpuid.h). */
    public static final int HVM_CPUID_VCPU_ID_PRESENT = 3;
    /** Hypercall-page MSR: 0x40000000, or 0x40000200 when Viridian owns 0x40000000 (Xen's cpuid.h comment). */
    public static final int MSR_HYPERCALL_PAGE = 0x40000000, MSR_HYPERCALL_PAGE_VIRIDIAN = 0x40000200;

    // hypercall numbers (xen.h)
    public static final int HC_SET_TIMER_OP = 15, HC_MEMORY_OP = 12, HC_XEN_VERSION = 17, HC_CONSOLE_IO = 18,
            HC_GRANT_TABLE_OP = 20, HC_VM_ASSIST = 21, HC_IRET = 23, HC_VCPU_OP = 24, HC_SCHED_OP = 29,
            HC_EVENT_CHANNEL_OP = 32, HC_HVM_OP = 34;
    // xen_version sub-commands (version.h)
    public static final int XENVER_VERSION = 0, XENVER_EXTRAVERSION = 1, XENVER_COMPILE_INFO = 2, XENVER_CAPABILITIES = 3,
            XENVER_CHANGESET = 4, XENVER_PLATFORM_PARAMETERS = 5, XENVER_GET_FEATURES = 6, XENVER_PAGESIZE = 7,
            XENVER_GUEST_HANDLE = 8;
    // XENFEAT bits (features.h)
    public static final int XENFEAT_AUTO_TRANSLATED_PHYSMAP = 2, XENFEAT_HVM_CALLBACK_VECTOR = 8, XENFEAT_HVM_SAFE_PVCLOCK = 9;
    // memory_op
    public static final int XENMEM_ADD_TO_PHYSMAP = 7, XENMAPSPACE_SHARED_INFO = 0;
    public static final int DOMID_SELF = 0x7FF0;
    // vcpu_op (vcpu.h)
    public static final int VCPUOP_REGISTER_RUNSTATE = 5, VCPUOP_SET_PERIODIC_TIMER = 6, VCPUOP_STOP_PERIODIC_TIMER = 7,
            VCPUOP_SET_SINGLESHOT_TIMER = 8, VCPUOP_STOP_SINGLESHOT_TIMER = 9, VCPUOP_REGISTER_VCPU_INFO = 10,
            VCPUOP_REGISTER_VCPU_TIME_AREA = 13;
    public static final int VCPU_SSHOTTMR_FUTURE = 1;
    // event_channel_op (event_channel.h)
    public static final int EVTCHNOP_BIND_VIRQ = 1, EVTCHNOP_CLOSE = 3, EVTCHNOP_SEND = 4, EVTCHNOP_STATUS = 5,
            EVTCHNOP_BIND_IPI = 7, EVTCHNOP_BIND_VCPU = 8, EVTCHNOP_UNMASK = 9, EVTCHNOP_INIT_CONTROL = 11;
    public static final int EVTCHNSTAT_CLOSED = 0, EVTCHNSTAT_VIRQ = 4, EVTCHNSTAT_IPI = 5;
    public static final int NR_VIRQS = 24, VIRQ_TIMER = 0, VIRQ_DEBUG = 1;
    /** 2-level ABI on 64-bit: 64 words of 64 bits. */
    public static final int NR_EVENT_CHANNELS = 4096;
    // sched_op (sched.h)
    public static final int SCHEDOP_YIELD = 0, SCHEDOP_BLOCK = 1, SCHEDOP_SHUTDOWN = 2, SCHEDOP_POLL = 3;
    // vm_assist
    public static final int VMASST_CMD_ENABLE = 0, VMASST_CMD_DISABLE = 1, VMASST_TYPE_RUNSTATE_UPDATE_FLAG = 5;
    // hvm_op (hvm/hvm_op.h, hvm/params.h)
    public static final int HVMOP_SET_PARAM = 0, HVMOP_GET_PARAM = 1, HVM_PARAM_CALLBACK_IRQ = 0, HVM_NR_PARAMS = 40;
    public static final int CALLBACK_VIA_TYPE_VECTOR = 2;
    /** The vector Linux asks for (HYPERVISOR_CALLBACK_VECTOR, arch/x86/include/asm/irq_vectors.h). */
    public static final int CALLBACK_VECTOR = 0xF3;

    // errno values Xen returns (negated)
    public static final long EPERM = -1, ENOENT = -2, ESRCH = -3, EFAULT = -14, EEXIST = -17, EINVAL = -22,
            ENOSYS = -38, ETIME = -62;

    // struct shared_info (x86-64)
    public static final int SHINFO_VCPU_INFO = 0, SHINFO_EVTCHN_PENDING = 0x800, SHINFO_EVTCHN_MASK = 0xA00,
            SHINFO_WC = 0xC00, SHINFO_WC_SEC_HI = 0xC0C, MAX_VIRT_CPUS = 32;
    // struct vcpu_info (64 bytes)
    public static final int VCPU_INFO_SIZE = 64, VI_UPCALL_PENDING = 0, VI_UPCALL_MASK = 1, VI_PENDING_SEL = 8, VI_TIME = 32;
    // struct vcpu_runstate_info (48 bytes)
    public static final int RUNSTATE_RUNNING = 0, RUNSTATE_RUNNABLE = 1, RUNSTATE_SIZE = 48;
    public static final long XEN_RUNSTATE_UPDATE = 1L << 63;

    public static final AbiContract CONTRACT = new AbiContract("xen", List.of(
            AbiElement.of("xen.version", Kind.HYPERCALL)
                    .numbers("CPUID base+1 EAX = 4.16; hypercall 17 xen_version (version, extraversion, get_features, ...)")
                    .enables("'Xen version 4.16.' at boot, XENVER_get_features, /sys/hypervisor/version/*")
                    .source("arch/x86/xen/enlighten_hvm.c: init_hvm_pv_info, drivers/xen/features.c, drivers/xen/sys-hypervisor.c")
                    .hypercall(HC_XEN_VERSION).build(),
            AbiElement.of("xen.shared-info", Kind.SHARED_STRUCTURE)
                    .numbers("memory_op(XENMEM_add_to_physmap, XENMAPSPACE_shared_info) (12:7); struct shared_info")
                    .enables("the shared_info page (BUG() if the mapping fails): event bitmaps, wall clock, boot vcpu_info")
                    .source("arch/x86/xen/enlighten_hvm.c: xen_hvm_init_shared_info")
                    .hypercall(HC_MEMORY_OP, XENMEM_ADD_TO_PHYSMAP).build(),
            AbiElement.of("xen.hypercall-page", Kind.MSR)
                    .numbers("CPUID base+2 (EAX pages = 1, EBX MSR); MSR 0x40000000 (0x40000200 behind Viridian)")
                    .enables("6.1.0-era kernels' hypercall_page (32-byte stubs: mov $nr,%eax; vmmcall; ret); 6.1.158+ call VMCALL/VMMCALL directly")
                    .source("arch/x86/xen/enlighten_hvm.c (6.1.0), arch/x86/xen/xen-head.S")
                    .msr(MSR_HYPERCALL_PAGE, MSR_HYPERCALL_PAGE_VIRIDIAN).build(),
            AbiElement.of("xen.vcpu-id", Kind.CPUID_BIT)
                    .numbers("CPUID base+4 EAX bit 3 XEN_HVM_CPUID_VCPU_ID_PRESENT, EBX = vCPU id")
                    .enables("xen_vcpu_id of the BSP from CPUID instead of assuming 0")
                    .source("arch/x86/xen/enlighten_hvm.c: xen_hvm_guest_init, arch/x86/xen/smp_hvm.c")
                    .cpuid(4, CpuidReg.EAX, HVM_CPUID_VCPU_ID_PRESENT).build(),
            AbiElement.of("xen.auto-translated-physmap", Kind.FEATURE_BIT)
                    .numbers("XENVER_get_features submap 0 bit 2")
                    .enables("pfn == gfn helpers (HVM guests are auto-translated)")
                    .source("include/xen/interface/features.h, include/xen/xen-ops.h")
                    .build(),
            AbiElement.of("xen.callback-vector", Kind.FEATURE_BIT)
                    .numbers("XENVER_get_features bit 8; hvm_op(HVMOP_set_param, HVM_PARAM_CALLBACK_IRQ = 2<<56 | 0xF3) (34:0)")
                    .enables("'xen:events: Xen HVM callback vector for event delivery is enabled'; event-channel IPIs, spinlock kicks (bit 9 is withdrawn with it)")
                    .source("drivers/xen/events/events_base.c: xen_setup_callback_vector, arch/x86/xen/enlighten_hvm.c")
                    .hypercall(HC_HVM_OP, HVMOP_SET_PARAM).build(),
            AbiElement.of("xen.pvclock", Kind.FEATURE_BIT)
                    .numbers("XENVER_get_features bit 9; vcpu_info.time pvclock; vcpu_op stop_periodic/set_singleshot/stop_singleshot/time area (24:7,8,9,13); set_timer_op (15)")
                    .enables("'xen' clocksource (rating 400) and clockevent (VIRQ_TIMER, rating 500), xen_tsc_khz, sched_clock, wall clock")
                    .source("arch/x86/xen/time.c")
                    .hypercall(HC_VCPU_OP, VCPUOP_STOP_PERIODIC_TIMER).hypercall(HC_VCPU_OP, VCPUOP_SET_SINGLESHOT_TIMER)
                    .hypercall(HC_VCPU_OP, VCPUOP_STOP_SINGLESHOT_TIMER).hypercall(HC_VCPU_OP, VCPUOP_REGISTER_VCPU_TIME_AREA)
                    .hypercall(HC_SET_TIMER_OP).build(),
            AbiElement.of("xen.vcpu-info", Kind.SHARED_STRUCTURE)
                    .numbers("vcpu_op(VCPUOP_register_vcpu_info) (24:10); struct vcpu_info (64 bytes)")
                    .enables("per-CPU vcpu_info placement (panic if it fails; needed beyond 32 vCPUs)")
                    .source("arch/x86/xen/enlighten.c: xen_vcpu_setup")
                    .hypercall(HC_VCPU_OP, VCPUOP_REGISTER_VCPU_INFO).build(),
            AbiElement.of("xen.runstate", Kind.SHARED_STRUCTURE)
                    .numbers("vcpu_op(VCPUOP_register_runstate_memory_area) (24:5), vm_assist(runstate_update_flag) (21); struct vcpu_runstate_info")
                    .enables("steal time (xen_steal_clock), vcpu_is_preempted (BUG if registration fails with PV time)")
                    .source("drivers/xen/time.c: xen_setup_runstate_info, xen_get_runstate_snapshot_cpu")
                    .hypercall(HC_VCPU_OP, VCPUOP_REGISTER_RUNSTATE).hypercall(HC_VM_ASSIST).build(),
            AbiElement.of("xen.event-channels", Kind.HYPERCALL)
                    .numbers("hypercall 32 event_channel_op: bind_virq/bind_ipi/send/close/unmask/bind_vcpu/status; 2-level bitmaps in shared_info")
                    .enables("VIRQ_TIMER, IPIs (resched, callfunc, spinlock), 'xen:events: Using 2-level ABI'")
                    .source("drivers/xen/events/events_base.c, drivers/xen/events/events_2l.c")
                    .hypercall(HC_EVENT_CHANNEL_OP).build(),
            AbiElement.of("xen.sched-op", Kind.HYPERCALL)
                    .numbers("hypercall 29 sched_op: yield, block, poll, shutdown")
                    .enables("PV spinlock wait (SCHEDOP_poll on the masked IPI port), shutdown/reboot requests")
                    .source("arch/x86/xen/spinlock.c: xen_qlock_wait, drivers/xen/manage.c")
                    .hypercall(HC_SCHED_OP).build(),
            AbiElement.of("xen.hvm-params", Kind.HYPERCALL)
                    .numbers("hvm_op(HVMOP_get_param) (34:1): STORE_PFN/EVTCHN, CONSOLE_PFN/EVTCHN read as 0")
                    .enables("xenbus and hvc_xen probe quietly (no xenstore/console: value 0)")
                    .source("drivers/xen/xenbus/xenbus_probe.c, drivers/tty/hvc/hvc_xen.c")
                    .hypercall(HC_HVM_OP, HVMOP_GET_PARAM).build(),
            AbiElement.of("xen.platform-unplug", Kind.PORT)
                    .numbers("I/O port 0x10 (16-bit read: magic 0x49d2; writes: unplug mask, build number) and 0x12 (8-bit read: protocol 1; 16-bit write: product)")
                    .enables("the emulated-device unplug handshake: without it Linux logs 'Xen Platform PCI: unrecognised magic value' (KERN_ERR)")
                    .source("arch/x86/xen/platform-pci-unplug.c: check_platform_magic, include/xen/platform_pci.h")
                    .build()));
}

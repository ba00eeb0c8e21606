package dev.polyvisor.personality;

import dev.polyvisor.cpu.GuestContext;
import dev.polyvisor.cpu.VcpuExit;
import dev.polyvisor.memory.GuestMemory;
import dev.polyvisor.personality.core.AbiGate;
import dev.polyvisor.personality.core.AbiUsage;
import dev.polyvisor.personality.core.GuestPortIo;
import dev.polyvisor.personality.core.GuestVirtual;
import dev.polyvisor.personality.core.MsrAccess;
import dev.polyvisor.personality.core.PersonalityEnv;
import dev.polyvisor.personality.core.Pvclock;
import dev.polyvisor.personality.xen.XenPlatformPorts;

import java.nio.charset.StandardCharsets;
import java.util.Arrays;
import java.util.Optional;

import static dev.polyvisor.personality.xen.XenAbi.*;

/**
 * Xen HVM (pv-abi.md 6): signature XenVMMXenVMM at the configured base, the hypercalls a 6.1 HVM guest
 * issues (direct VMCALL/VMMCALL as 6.1.158+ do, or through the hypercall page older kernels install),
 * shared_info/vcpu_info with pvclock time, runstate steal time, 2-level event channels delivered on the
 * callback vector, and single-shot timers raising VIRQ_TIMER.
 *
 * <p>Pointer arguments are guest-virtual and translated through the caller's page tables; an
 * untranslatable pointer gives -EFAULT. Xen vCPU id = vCPU index (the MADT's processor UIDs must match).
 * Xen system time is the VM's virtual clock in ns.
 */
public final class XenPersonality implements Personality {
    private enum PortType { FREE, VIRQ, IPI }

    private static final class Port {
        PortType type = PortType.FREE;
        int vcpu, virq;
    }

    private final PersonalityConfig config;
    private final AbiGate gate;
    private final PersonalityEnv env;
    private final GuestMemory mem;
    private final int msrIndex;

    private long sharedInfo = -1;            // guest PA of shared_info, -1 until XENMEM_add_to_physmap
    private long callbackVia;                // HVM_PARAM_CALLBACK_IRQ value
    private final long[] params = new long[HVM_NR_PARAMS];
    private boolean runstateUpdateFlag;
    private long hypercallPageMsr;
    private final Port[] ports = new Port[NR_EVENT_CHANNELS];
    // per vCPU
    private final long[] vcpuInfo;           // registered vcpu_info PA, -1 = the shared_info slot
    private final long[] timeArea;           // secondary pvti (VCPUOP_register_vcpu_time_memory_area), -1 none
    private final long[][] runstate;         // PA of each 8-byte word of vcpu_runstate_info, null = none
    private final long[] singleshot;         // deadline ns, -1 none
    private final long[] stealNs;
    private final int[][] virqPort;

    public XenPersonality(PersonalityConfig config, PersonalityEnv env) {
        this.config = config;
        this.gate = new AbiGate(CONTRACT, config.disabled());
        this.env = env;
        this.mem = env.memory();
        this.msrIndex = config.base() == 0x4000_0000 ? MSR_HYPERCALL_PAGE : MSR_HYPERCALL_PAGE_VIRIDIAN;
        int n = env.vcpus();
        vcpuInfo = new long[n];
        timeArea = new long[n];
        runstate = new long[n][];
        singleshot = new long[n];
        stealNs = new long[n];
        virqPort = new int[n][NR_VIRQS];
        Arrays.fill(vcpuInfo, -1);
        Arrays.fill(timeArea, -1);
        Arrays.fill(singleshot, -1);
        for (int i = 0; i < ports.length; i++) ports[i] = new Port();
    }

    @Override public PersonalityConfig config() { return config; }

    @Override public AbiGate gate() { return gate; }

    private final XenPlatformPorts platformPorts = new XenPlatformPorts();

    /** The unplug-protocol ports, unless {@code xen.platform-unplug} is disabled (then they stay unclaimed). */
    @Override
    public Optional<GuestPortIo> portIo() {
        return gate.enabled("xen.platform-unplug") ? Optional.of(platformPorts) : Optional.empty();
    }

    // ---- CPUID (arch/x86/include/asm/xen/cpuid.h) ----

    @Override
    public int[] cpuid(int leaf, int subleaf, int vcpu) {
        int off = leaf - base();
        int[] r = new int[4];
        switch (off) {
            case 0 -> { r[0] = base() + 4; r[1] = SIG_EBX; r[2] = SIG_ECX; r[3] = SIG_EDX; }
            case 1 -> r[0] = VERSION;
            case 2 -> { if (gate.enabled("xen.hypercall-page")) { r[0] = 1; r[1] = msrIndex; } }
            case 4 -> {
                r[0] = 1 << HVM_CPUID_VCPU_ID_PRESENT;
                if (gate.enabled("xen.vcpu-id")) r[1] = vcpu;
            }
            default -> { }
        }
        return gate.mask(off, r);
    }

    /** XENVER_get_features submap 0. hvm_safe_pvclock is withdrawn with the callback vector (pv-abi.md 6.5). */
    int features() {
        int f = 0;
        if (gate.enabled("xen.auto-translated-physmap")) f |= 1 << XENFEAT_AUTO_TRANSLATED_PHYSMAP;
        if (gate.enabled("xen.callback-vector")) {
            f |= 1 << XENFEAT_HVM_CALLBACK_VECTOR;
            if (gate.enabled("xen.pvclock")) f |= 1 << XENFEAT_HVM_SAFE_PVCLOCK;
        }
        return f;
    }

    // ---- hypercall page MSR (6.1.0-era kernels) ----

    @Override
    public MsrAccess rdmsr(int vcpu, int index) {
        if (index != MSR_HYPERCALL_PAGE && index != MSR_HYPERCALL_PAGE_VIRIDIAN) return MsrAccess.NOT_HANDLED;
        if (index != msrIndex) return MsrAccess.NOT_HANDLED;
        if (!gate.msrEnabled(index)) return MsrAccess.GP;
        return MsrAccess.value(hypercallPageMsr);
    }

    /**
     * The MSR takes the GPA of the page with the page index in bits 11:0 (only page 0 exists). Xen fills
     * the page with int3 and writes one 32-byte stub per hypercall number: {@code mov $nr,%eax; vmmcall
     * (vmcall on Intel); ret}; the iret slot stays int3 (Xen's hypercall page writer; pv-abi.md 6.2 marks
     * this unverified).
     */
    @Override
    public MsrAccess wrmsr(int vcpu, int index, long value) {
        if (index != msrIndex) return MsrAccess.NOT_HANDLED;
        if (!gate.msrEnabled(index)) return MsrAccess.GP;
        long pa = value & ~0xFFFL;
        if ((value & 0xFFF) != 0 || !env.isRam(pa, 4096)) return MsrAccess.GP;
        hypercallPageMsr = value;
        byte[] page = new byte[4096];
        Arrays.fill(page, (byte) 0xCC);
        byte[] insn = env.hypercallInsn();
        for (int nr = 0; nr < 128; nr++) {
            if (nr == HC_IRET) continue;
            int o = nr * 32;
            page[o] = (byte) 0xB8;
            page[o + 1] = (byte) nr; // imm32 = nr
            page[o + 2] = page[o + 3] = page[o + 4] = 0;
            System.arraycopy(insn, 0, page, o + 5, 3);
            page[o + 8] = (byte) 0xC3;
        }
        mem.load(pa, page);
        return MsrAccess.OK;
    }

    // ---- hypercalls ----

    @Override public int hypercallClaim(int vcpu) { return CLAIM_DEFAULT; }

    /**
     * Xen's HVM hypercall entry (pv-abi.md 6.2): nr in RAX, args RDI, RSI, RDX, R10, R8 (EBX, ECX, EDX,
     * ESI, EDI outside long mode), result in RAX; CPL > 0 gets -EPERM. Never throws.
     */
    @Override
    public boolean hypercall(VcpuExit.Hypercall call) {
        GuestContext c = call.context();
        boolean lm = c.longMode();
        long nr = c.reg(0);
        long[] a = lm ? new long[] {c.reg(7), c.reg(6), c.reg(2), c.reg(10), c.reg(8)}
                : new long[] {c.reg(3), c.reg(1), c.reg(2), c.reg(6), c.reg(7)};
        if (!lm) {
            nr &= 0xFFFF_FFFFL;
            for (int i = 0; i < a.length; i++) a[i] &= 0xFFFF_FFFFL;
        }
        long ret;
        if (c.cpl() != 0) ret = EPERM;
        else {
            try {
                ret = dispatch(c, nr, a);
            } catch (GuestVirtual.Fault f) {
                ret = EFAULT;
            }
        }
        c.setReg(0, lm ? ret : ret & 0xFFFF_FFFFL);
        return true;
    }

    /**
     * The hypercall number (RAX) and, for the multiplexed calls whose first argument is a command
     * (xen_version, memory_op, vm_assist, vcpu_op, sched_op, event_channel_op, hvm_op), that command.
     */
    @Override
    public AbiUsage.Call abiCall(GuestContext c) {
        boolean lm = c.longMode();
        long nr = lm ? c.reg(0) : c.reg(0) & 0xFFFF_FFFFL;
        long a0 = lm ? c.reg(7) : c.reg(3) & 0xFFFF_FFFFL;
        boolean command = nr == HC_XEN_VERSION || nr == HC_MEMORY_OP || nr == HC_VM_ASSIST || nr == HC_VCPU_OP
                || nr == HC_SCHED_OP || nr == HC_EVENT_CHANNEL_OP || nr == HC_HVM_OP;
        return new AbiUsage.Call(nr, command && a0 >= 0 && a0 < 256 ? (int) a0 : AbiUsage.ANY);
    }

    private long dispatch(GuestContext c, long nr, long[] a) throws GuestVirtual.Fault {
        if (nr < 0 || nr > 63) return ENOSYS;
        int op = (int) a[0];
        if (!gate.hypercallEnabled((int) nr, op)) return ENOSYS;
        GuestVirtual gv = new GuestVirtual(c, mem);
        return switch ((int) nr) {
            case HC_XEN_VERSION -> xenVersion(gv, op, a[1]);
            case HC_MEMORY_OP -> memoryOp(gv, op, a[1]);
            case HC_HVM_OP -> hvmOp(gv, op, a[1]);
            case HC_VCPU_OP -> vcpuOp(c, gv, op, (int) a[1], a[2], a[1]);
            case HC_EVENT_CHANNEL_OP -> eventChannelOp(gv, op, a[1]);
            case HC_SCHED_OP -> schedOp(c.vcpuId(), gv, op, a[1]);
            case HC_SET_TIMER_OP -> setTimerOp(c.vcpuId(), a[0]);
            case HC_VM_ASSIST -> vmAssist(op, a[1]);
            default -> ENOSYS; // console_io, grant_table_op, platform_op, ...: not offered
        };
    }

    private long xenVersion(GuestVirtual gv, int cmd, long arg) throws GuestVirtual.Fault {
        return switch (cmd) {
            case XENVER_VERSION -> VERSION;
            case XENVER_EXTRAVERSION -> { gv.writeBytes(arg, cstr(".0-polyvisor", 16)); yield 0; }
            case XENVER_COMPILE_INFO -> {
                byte[] b = new byte[144]; // compiler[64], compile_by[16], compile_domain[32], compile_date[32]
                System.arraycopy(cstr("polyvisor", 64), 0, b, 0, 64);
                System.arraycopy(cstr("polyvisor", 16), 0, b, 64, 16);
                yield write(gv, arg, b);
            }
            case XENVER_CAPABILITIES -> write(gv, arg, cstr("hvm-3.0-x86_64 hvm-3.0-x86_32 hvm-3.0-x86_32p", 1024));
            case XENVER_CHANGESET -> write(gv, arg, cstr("polyvisor", 64));
            case XENVER_PLATFORM_PARAMETERS -> { gv.write(arg, 8, 0xFFFF_8000_0000_0000L); yield 0; } // HYPERVISOR_VIRT_START
            case XENVER_GET_FEATURES -> {
                // struct xen_feature_info { uint32 submap_idx (IN); uint32 submap (OUT); }
                int idx = (int) gv.read(arg, 4);
                gv.write(arg + 4, 4, idx == 0 ? features() : 0);
                yield 0;
            }
            case XENVER_PAGESIZE -> 4096;
            case XENVER_GUEST_HANDLE -> write(gv, arg, new byte[16]);
            default -> ENOSYS;
        };
    }

    private static long write(GuestVirtual gv, long arg, byte[] b) throws GuestVirtual.Fault {
        gv.writeBytes(arg, b);
        return 0;
    }

    private static byte[] cstr(String s, int len) {
        byte[] b = new byte[len];
        byte[] v = s.getBytes(StandardCharsets.US_ASCII);
        System.arraycopy(v, 0, b, 0, Math.min(v.length, len - 1));
        return b;
    }

    /** XENMEM_add_to_physmap {domid u16 @0, size u16 @2, space u32 @4, idx u64 @8, gpfn u64 @16}. */
    private long memoryOp(GuestVirtual gv, int cmd, long arg) throws GuestVirtual.Fault {
        if (cmd != XENMEM_ADD_TO_PHYSMAP) return ENOSYS;
        int domid = (int) gv.read(arg, 2);
        int space = (int) gv.read(arg + 4, 4);
        long idx = gv.read(arg + 8, 8), gpfn = gv.read(arg + 16, 8);
        if (domid != DOMID_SELF) return ESRCH;
        if (space != XENMAPSPACE_SHARED_INFO) return ENOSYS; // grant table frames etc. are not offered
        if (idx != 0 || gpfn < 0 || gpfn > (Long.MAX_VALUE >> 12) || !env.isRam(gpfn << 12, 4096)) return EINVAL;
        mapSharedInfo(gpfn << 12);
        return 0;
    }

    /**
     * Places shared_info at {@code pa}: contents move with it (a fresh page starts zeroed), then the wall
     * clock and every vCPU's time are written so the pvclock is valid the moment the call returns
     * (xen_hvm_init_time_ops and xen_tsc_khz read vcpu_info[0].time right away).
     */
    private synchronized void mapSharedInfo(long pa) {
        byte[] old = sharedInfo >= 0 ? mem.readBytes(sharedInfo, 4096) : new byte[4096];
        mem.load(pa, old);
        sharedInfo = pa;
        Pvclock.writeWallClock(mem, pa + SHINFO_WC, env.utcNanos().getAsLong() - env.clock().nanos());
        mem.st32(pa + SHINFO_WC_SEC_HI, 0);
        env.injector().sharedUpdate("xen.shared-info", AbiUsage.Structure.SHARED_INFO);
        for (int v = 0; v < env.vcpus(); v++) writeTime(v);
    }

    /** The vcpu_info in use for {@code vcpu}: the registered one, else its shared_info slot, else -1. */
    private long vcpuInfo(int vcpu) {
        if (vcpuInfo[vcpu] >= 0) return vcpuInfo[vcpu];
        if (sharedInfo >= 0 && vcpu < MAX_VIRT_CPUS) return sharedInfo + SHINFO_VCPU_INFO + (long) vcpu * VCPU_INFO_SIZE;
        return -1;
    }

    private void writeTime(int vcpu) {
        if (!gate.enabled("xen.pvclock")) return;
        long now = env.clock().nanos();
        long vi = vcpuInfo(vcpu);
        if (vi >= 0) {
            Pvclock.writeTimeInfo(mem, vi + VI_TIME, env.clock(), now, true);
            env.injector().sharedUpdate("xen.pvclock", AbiUsage.Structure.PVCLOCK);
        }
        if (timeArea[vcpu] >= 0) {
            Pvclock.writeTimeInfo(mem, timeArea[vcpu], env.clock(), now, true);
            env.injector().sharedUpdate("xen.pvclock", AbiUsage.Structure.PVCLOCK);
        }
    }

    /** hvm_op: struct xen_hvm_param {domid u16 @0, index u32 @4, value u64 @8}. */
    private long hvmOp(GuestVirtual gv, int op, long arg) throws GuestVirtual.Fault {
        if (op != HVMOP_SET_PARAM && op != HVMOP_GET_PARAM) return ENOSYS; // pagetable_dying etc.: hints, declined
        int domid = (int) gv.read(arg, 2);
        int index = (int) gv.read(arg + 4, 4);
        if (domid != DOMID_SELF) return ESRCH;
        if (index < 0 || index >= HVM_NR_PARAMS) return EINVAL;
        if (op == HVMOP_GET_PARAM) {
            // No xenstore or console: STORE_PFN/EVTCHN (1/2) and CONSOLE_PFN/EVTCHN (17/18) read as 0.
            gv.write(arg + 8, 8, index == HVM_PARAM_CALLBACK_IRQ ? callbackVia : params[index]);
            return 0;
        }
        long value = gv.read(arg + 8, 8);
        if (index == HVM_PARAM_CALLBACK_IRQ) {
            int type = (int) (value >>> 56);
            if (value != 0 && type != CALLBACK_VIA_TYPE_VECTOR) return ENOSYS; // GSI/PCI INTx routing not offered
            if (value != 0 && ((value & 0xFF) < 0x10 || (value & 0x00FF_FFFF_FFFF_FF00L) != 0)) return EINVAL;
            synchronized (this) { callbackVia = value; }
            for (int v = 0; v < env.vcpus(); v++) if (upcallPending(v)) env.injector().upcall(v, callbackVector());
            return 0;
        }
        params[index] = value;
        return 0;
    }

    private int callbackVector() { return callbackVia == 0 ? 0 : (int) (callbackVia & 0xFF); }

    private long vcpuOp(GuestContext c, GuestVirtual gv, int cmd, int target, long arg, long rawTarget) throws GuestVirtual.Fault {
        if (rawTarget < 0 || rawTarget >= env.vcpus()) return ENOENT;
        int self = c.vcpuId();
        return switch (cmd) {
            case VCPUOP_REGISTER_VCPU_INFO -> {
                // struct vcpu_register_vcpu_info {mfn u64 @0, offset u32 @8, rsvd u32 @12}
                long mfn = gv.read(arg, 8);
                long offset = gv.read(arg + 8, 4);
                if (offset > 4096 - VCPU_INFO_SIZE || mfn < 0 || mfn > (Long.MAX_VALUE >> 12)) yield EINVAL;
                long pa = (mfn << 12) + offset;
                if (!env.isRam(pa, VCPU_INFO_SIZE) || vcpuInfo[target] >= 0) yield EINVAL; // only once per vCPU
                registerVcpuInfo(target, pa);
                yield 0;
            }
            case VCPUOP_REGISTER_RUNSTATE -> {
                long gva = gv.read(arg, 8); // struct vcpu_register_runstate_memory_area { u64 addr (GVA) }
                long[] words = new long[RUNSTATE_SIZE / 8];
                for (int i = 0; i < words.length; i++) words[i] = gv.phys(gva + 8L * i, 8);
                synchronized (this) { runstate[target] = words; writeRunstate(target); }
                yield 0;
            }
            case VCPUOP_REGISTER_VCPU_TIME_AREA -> {
                long gva = gv.read(arg, 8);
                long pa = gv.phys(gva, Pvclock.SIZE);
                if (gv.phys(gva + Pvclock.SIZE - 1, 1) != pa + Pvclock.SIZE - 1) yield EINVAL; // must not straddle pages
                timeArea[target] = pa;
                writeTime(target);
                yield 0;
            }
            case VCPUOP_STOP_PERIODIC_TIMER -> 0; // no periodic timer is ever running
            case VCPUOP_SET_SINGLESHOT_TIMER -> {
                if (target != self) yield EINVAL; // Xen: only for the calling vCPU
                long timeout = gv.read(arg, 8);
                int flags = (int) gv.read(arg + 8, 4);
                yield setTimer(self, timeout, flags);
            }
            case VCPUOP_STOP_SINGLESHOT_TIMER -> {
                if (target != self) yield EINVAL;
                synchronized (this) { singleshot[self] = -1; }
                yield 0;
            }
            default -> ENOSYS; // up/down/is_up/set_periodic_timer: not offered
        };
    }

    /**
     * Moves a vCPU's vcpu_info: the old contents are copied and everything is marked pending so no event
     * is lost (Xen map_vcpu_info; pv-abi.md 6.4 marks this Xen behaviour unverified), then its time is written.
     */
    private synchronized void registerVcpuInfo(int vcpu, long pa) {
        long old = vcpuInfo(vcpu);
        byte[] content = old >= 0 ? mem.readBytes(old, VCPU_INFO_SIZE) : new byte[VCPU_INFO_SIZE];
        mem.load(pa, content);
        vcpuInfo[vcpu] = pa;
        mem.st64(pa + VI_PENDING_SEL, -1L);
        mem.st8(pa + VI_UPCALL_PENDING, 1);
        env.injector().sharedUpdate("xen.vcpu-info", AbiUsage.Structure.VCPU_INFO);
        writeTime(vcpu);
        notifyVcpu(vcpu);
    }

    /**
     * VCPUOP_set_singleshot_timer: absolute Xen system time (u64); with VCPU_SSHOTTMR_future a time already
     * past gives -ETIME, otherwise a past time fires at the next tick (xen/common/domain.c).
     */
    private synchronized long setTimer(int vcpu, long timeoutNs, int flags) {
        long now = env.clock().nanos();
        if ((flags & VCPU_SSHOTTMR_FUTURE) != 0 && Long.compareUnsigned(timeoutNs, now) < 0) return ETIME;
        singleshot[vcpu] = timeoutNs < 0 ? Long.MAX_VALUE - 1 : timeoutNs; // beyond 2^63 ns: never in practice
        return 0;
    }

    /** set_timer_op(timeout): like a single-shot timer, but 0 cancels (xen/common/schedule.c do_set_timer_op). */
    private synchronized long setTimerOp(int vcpu, long timeoutNs) {
        if (timeoutNs == 0) {
            singleshot[vcpu] = -1;
            return 0;
        }
        return setTimer(vcpu, timeoutNs, 0);
    }

    private long vmAssist(int cmd, long type) {
        if ((cmd != VMASST_CMD_ENABLE && cmd != VMASST_CMD_DISABLE) || type != VMASST_TYPE_RUNSTATE_UPDATE_FLAG) return EINVAL;
        runstateUpdateFlag = cmd == VMASST_CMD_ENABLE;
        return 0;
    }

    // ---- event channels (2-level ABI, drivers/xen/events/events_2l.c) ----

    private long eventChannelOp(GuestVirtual gv, int cmd, long arg) throws GuestVirtual.Fault {
        synchronized (this) {
            switch (cmd) {
                case EVTCHNOP_BIND_VIRQ -> {
                    int virq = (int) gv.read(arg, 4), vcpu = (int) gv.read(arg + 4, 4);
                    if (virq < 0 || virq >= NR_VIRQS) return EINVAL;
                    if (vcpu < 0 || vcpu >= env.vcpus()) return ENOENT;
                    if (virqPort[vcpu][virq] != 0) return EEXIST;
                    int port = allocPort(PortType.VIRQ, vcpu);
                    if (port < 0) return -28; // -ENOSPC
                    ports[port].virq = virq;
                    gv.write(arg + 8, 4, port);
                    virqPort[vcpu][virq] = port;
                    return 0;
                }
                case EVTCHNOP_BIND_IPI -> {
                    int vcpu = (int) gv.read(arg, 4);
                    if (vcpu < 0 || vcpu >= env.vcpus()) return ENOENT;
                    int port = allocPort(PortType.IPI, vcpu);
                    if (port < 0) return -28;
                    gv.write(arg + 4, 4, port);
                    return 0;
                }
                case EVTCHNOP_CLOSE -> {
                    int n = (int) gv.read(arg, 4);
                    Port p = port(n);
                    if (p == null) return EINVAL;
                    if (p.type == PortType.VIRQ) virqPort[p.vcpu][p.virq] = 0;
                    p.type = PortType.FREE;
                    // Xen free_evtchn clears the pending bit "to avoid unexpected behavior on re-bind"
                    // (xen/common/event_channel.c): a reused port must not start out pending.
                    if (sharedInfo >= 0) mem.atomicRmw(sharedInfo + SHINFO_EVTCHN_PENDING + (n / 64) * 8L, 8, v -> v & ~(1L << (n % 64)));
                    return 0;
                }
                case EVTCHNOP_SEND -> {
                    int n = (int) gv.read(arg, 4);
                    Port p = port(n);
                    if (p == null || p.type != PortType.IPI) return EINVAL;
                    setPending(n);
                    return 0;
                }
                case EVTCHNOP_UNMASK -> {
                    int n = (int) gv.read(arg, 4);
                    if (port(n) == null) return EINVAL;
                    unmask(n);
                    return 0;
                }
                case EVTCHNOP_BIND_VCPU -> {
                    int n = (int) gv.read(arg, 4), vcpu = (int) gv.read(arg + 4, 4);
                    if (vcpu < 0 || vcpu >= env.vcpus()) return ENOENT;
                    Port p = port(n);
                    // Per-vCPU VIRQs (timer, debug) and IPIs cannot move (Xen evtchn_bind_vcpu); global VIRQs can.
                    if (p == null || p.type == PortType.IPI || (p.virq == VIRQ_TIMER || p.virq == VIRQ_DEBUG)) return EINVAL;
                    virqPort[p.vcpu][p.virq] = 0;
                    virqPort[vcpu][p.virq] = n;
                    p.vcpu = vcpu;
                    return 0;
                }
                case EVTCHNOP_STATUS -> {
                    // struct evtchn_status {dom u16 @0, port u32 @4, OUT status u32 @8, vcpu u32 @12, union @16}
                    int dom = (int) gv.read(arg, 2), n = (int) gv.read(arg + 4, 4);
                    if (dom != DOMID_SELF) return ESRCH;
                    if (n <= 0 || n >= NR_EVENT_CHANNELS) return EINVAL;
                    Port p = ports[n];
                    int st = switch (p.type) { case FREE -> EVTCHNSTAT_CLOSED; case VIRQ -> EVTCHNSTAT_VIRQ; case IPI -> EVTCHNSTAT_IPI; };
                    gv.write(arg + 8, 4, st);
                    gv.write(arg + 12, 4, p.vcpu);
                    gv.write(arg + 16, 4, p.type == PortType.VIRQ ? p.virq : 0);
                    return 0;
                }
                default -> { return ENOSYS; } // init_control (FIFO) declined → the guest uses the 2-level ABI
            }
        }
    }

    private Port port(int n) {
        if (n <= 0 || n >= NR_EVENT_CHANNELS || ports[n].type == PortType.FREE) return null;
        return ports[n];
    }

    private int allocPort(PortType type, int vcpu) {
        for (int n = 1; n < NR_EVENT_CHANNELS; n++)
            if (ports[n].type == PortType.FREE) {
                ports[n].type = type;
                ports[n].vcpu = vcpu;
                ports[n].virq = -1;
                return n;
            }
        return -1;
    }

    /**
     * The hypervisor side of 2-level "set pending" (evtchn_2l_set_pending): set the pending bit; if it was
     * clear and the port is unmasked, set the word's bit in the bound vCPU's evtchn_pending_sel and, if that
     * was newly set, evtchn_upcall_pending, and raise the callback.
     */
    synchronized void setPending(int port) {
        if (sharedInfo < 0) return;
        long word = (port / 64) * 8L;
        long bit = 1L << (port % 64);
        long old = mem.atomicRmw(sharedInfo + SHINFO_EVTCHN_PENDING + word, 8, v -> v | bit);
        if ((old & bit) != 0) return;
        env.injector().sharedUpdate("xen.event-channels", AbiUsage.Structure.EVENT_CHANNEL);
        if ((mem.ld64(sharedInfo + SHINFO_EVTCHN_MASK + word) & bit) != 0) return;
        markPending(ports[port].vcpu, port / 64);
    }

    private void unmask(int port) {
        if (sharedInfo < 0) return;
        long word = (port / 64) * 8L;
        long bit = 1L << (port % 64);
        long old = mem.atomicRmw(sharedInfo + SHINFO_EVTCHN_MASK + word, 8, v -> v & ~bit);
        if ((old & bit) != 0 && (mem.ld64(sharedInfo + SHINFO_EVTCHN_PENDING + word) & bit) != 0)
            markPending(ports[port].vcpu, port / 64);
    }

    private void markPending(int vcpu, int selBit) {
        long vi = vcpuInfo(vcpu);
        if (vi < 0) return;
        long sel = 1L << selBit;
        long old = mem.atomicRmw(vi + VI_PENDING_SEL, 8, v -> v | sel);
        if ((old & sel) != 0) return;
        if (mem.ld8(vi + VI_UPCALL_PENDING) != 0) return;
        mem.st8(vi + VI_UPCALL_PENDING, 1);
        notifyVcpu(vcpu);
    }

    private void notifyVcpu(int vcpu) {
        int vector = callbackVector();
        if (vector != 0) env.injector().upcall(vcpu, vector);
        else env.injector().wake(vcpu);
    }

    @Override
    public boolean upcallPending(int vcpu) {
        if (callbackVector() == 0) return false;
        long vi = vcpuInfo(vcpu);
        return vi >= 0 && mem.ld8(vi + VI_UPCALL_PENDING) != 0;
    }

    @Override public int upcallVector() { return callbackVector(); }

    /** The callback vector set through HVM_PARAM_CALLBACK_IRQ (0 when none). */
    public int callbackVectorInUse() { return callbackVector(); }

    private boolean portPending(int port) {
        return sharedInfo >= 0 && (mem.ld64(sharedInfo + SHINFO_EVTCHN_PENDING + (port / 64) * 8L) >>> (port % 64) & 1) != 0;
    }

    // ---- sched_op ----

    private long schedOp(int vcpu, GuestVirtual gv, int cmd, long arg) throws GuestVirtual.Fault {
        switch (cmd) {
            case SCHEDOP_YIELD -> { return 0; }
            case SCHEDOP_BLOCK -> {
                // Xen enables event delivery, then blocks until an event is pending for this vCPU.
                long vi = vcpuInfo(vcpu);
                if (vi >= 0) mem.st8(vi + VI_UPCALL_MASK, 0);
                env.injector().block(vcpu, false, () -> {
                    long v = vcpuInfo(vcpu);
                    return v >= 0 && mem.ld8(v + VI_UPCALL_PENDING) != 0;
                }, deadline(vcpu));
                return 0;
            }
            case SCHEDOP_POLL -> {
                // struct sched_poll { GVA ports @0; u32 nr_ports @8; u64 timeout @16 } - ports are u32 each
                long portsGva = gv.read(arg, 8);
                long nr = gv.read(arg + 8, 4);
                long timeout = gv.read(arg + 16, 8);
                if (nr > 128) return EINVAL;
                int[] list = new int[(int) nr];
                for (int i = 0; i < nr; i++) {
                    list[i] = (int) gv.read(portsGva + 4L * i, 4);
                    if (list[i] < 0 || list[i] >= NR_EVENT_CHANNELS) return EINVAL;
                }
                for (int p : list) if (portPending(p)) return 0;
                env.injector().block(vcpu, true, () -> {
                    for (int p : list) if (portPending(p)) return true;
                    return false;
                }, timeout == 0 ? Long.MAX_VALUE : timeout);
                return 0;
            }
            case SCHEDOP_SHUTDOWN -> {
                int reason = (int) gv.read(arg, 4);
                String why = switch (reason) {
                    case 0 -> "poweroff"; case 1 -> "reboot"; case 2 -> "suspend"; case 3 -> "crash";
                    case 4 -> "watchdog"; case 5 -> "soft_reset";
                    default -> null;
                };
                if (why == null) return EINVAL;
                env.injector().shutdown("xen: guest requested " + why + " (SCHEDOP_shutdown)");
                return 0;
            }
            default -> { return ENOSYS; }
        }
    }

    private synchronized long deadline(int vcpu) { return singleshot[vcpu] < 0 ? Long.MAX_VALUE : singleshot[vcpu]; }

    // ---- timers, steal time ----

    @Override
    public void onTick(long nowNs) {
        for (int v = 0; v < singleshot.length; v++) {
            int port;
            synchronized (this) {
                if (singleshot[v] < 0 || singleshot[v] > nowNs) continue;
                singleshot[v] = -1;
                port = virqPort[v][VIRQ_TIMER];
            }
            if (port != 0) setPending(port);
        }
    }

    @Override
    public synchronized long nextDeadlineNs() {
        long d = Long.MAX_VALUE;
        for (long s : singleshot) if (s >= 0) d = Math.min(d, s);
        return d;
    }

    /** Pending single-shot deadline of a vCPU in ns, or -1. */
    public synchronized long singleshotDeadline(int vcpu) { return singleshot[vcpu]; }

    /**
     * vcpu_runstate_info {state s32 @0, state_entry_time u64 @8, time[4] u64 @16}: the vCPU is running;
     * time[RUNNABLE] carries the reported steal, time[RUNNING] the rest. With the runstate_update_flag
     * assist, bit 63 of state_entry_time is set while the record is written (drivers/xen/time.c reader).
     */
    private void writeRunstate(int vcpu) {
        long[] w = runstate[vcpu];
        if (w == null) return;
        long now = env.clock().nanos();
        long steal = stealNs[vcpu];
        if (runstateUpdateFlag) mem.st64(w[1], now | XEN_RUNSTATE_UPDATE);
        mem.st64(w[0], RUNSTATE_RUNNING); // state (s32) + padding
        mem.st64(w[2], Math.max(0, now - steal));
        mem.st64(w[3], steal);
        mem.st64(w[4], 0);
        mem.st64(w[5], 0);
        mem.st64(w[1], now);
        env.injector().sharedUpdate("xen.runstate", AbiUsage.Structure.RUNSTATE);
    }

    @Override
    public synchronized void addSteal(int vcpu, long ns) {
        if (ns <= 0 || vcpu < 0 || vcpu >= stealNs.length) return;
        stealNs[vcpu] += ns;
        if (gate.enabled("xen.runstate")) writeRunstate(vcpu);
    }
}

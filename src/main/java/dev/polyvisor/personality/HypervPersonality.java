package dev.polyvisor.personality;

import dev.polyvisor.cpu.GuestContext;
import dev.polyvisor.cpu.VcpuExit;
import dev.polyvisor.memory.GuestMemory;
import dev.polyvisor.personality.core.AbiElement;
import dev.polyvisor.personality.core.AbiGate;
import dev.polyvisor.personality.core.AbiUsage;
import dev.polyvisor.personality.core.MsrAccess;
import dev.polyvisor.personality.core.PersonalityEnv;
import dev.polyvisor.personality.hyperv.ReferenceTscPage;
import dev.polyvisor.personality.hyperv.SynicHost;
import dev.polyvisor.personality.hyperv.SyntheticTimer;

import java.util.BitSet;
import java.util.HashMap;
import java.util.List;
import java.util.Map;
import java.util.concurrent.CopyOnWriteArrayList;

import static dev.polyvisor.personality.hyperv.HvAbi.*;

/**
 * Microsoft Hyper-V enlightenments (pv-abi.md 5): the 0x40000000-0x4000000A leaves, the synthetic MSRs
 * the 6.1 guest touches, the reference TSC page, SynIC and synthetic timers, and the hypercalls
 * Linux issues, with HV_STATUS results. Host-side behaviour follows KVM's emulation
 * (arch/x86/kvm/hyperv.c) where the TLFS copy in Linux is silent.
 *
 * <p>The VP index equals the vCPU index. The SynIC's host side ({@link SynicHost}: SINT routes,
 * message posting, event flags, the connections HvPostMessage/HvSignalEvent reach) is what the VMM's
 * Hyper-V devices use; without any, those hypercalls answer HV_STATUS_INVALID_CONNECTION_ID.
 */
public final class HypervPersonality implements Personality, SynicHost {
    private static final long CONTROL_RESERVED = 0xF000_0000_0000_0000L | 0x0000_F000_0000_0000L | 0xF800_0000L;

    private final PersonalityConfig config;
    private final AbiGate gate;
    private final PersonalityEnv env;
    private final GuestMemory mem;

    // partition-wide
    private volatile long guestOsId, hypercallMsr, referenceTscMsr;
    private int tscSequence;
    // per vCPU
    private final long[] vpAssist, scontrol, siefp, simp;
    private final long[][] sint;
    private final SyntheticTimer[][] timers;
    // host-side connections (SynicHost)
    private final Map<Integer, MessageHandler> messageHandlers = new HashMap<>();
    private final Map<Integer, Runnable> eventHandlers = new HashMap<>();
    private final List<SintAckListener> ackListeners = new CopyOnWriteArrayList<>();

    public HypervPersonality(PersonalityConfig config, PersonalityEnv env) {
        this.config = config;
        this.gate = new AbiGate(CONTRACT, config.disabled());
        this.env = env;
        this.mem = env.memory();
        int n = env.vcpus();
        vpAssist = new long[n];
        scontrol = new long[n];
        siefp = new long[n];
        simp = new long[n];
        sint = new long[n][SINTS];
        timers = new SyntheticTimer[n][STIMERS];
        for (int v = 0; v < n; v++) {
            java.util.Arrays.fill(sint[v], SINT_MASKED); // KVM synic_init: every SINT starts masked
            for (int t = 0; t < STIMERS; t++) timers[v][t] = new SyntheticTimer();
        }
    }

    @Override public PersonalityConfig config() { return config; }

    @Override public AbiGate gate() { return gate; }

    private int bitsAt(int leaf, dev.polyvisor.cpu.model.CpuidReg reg) {
        int r = 0;
        for (AbiElement e : CONTRACT.elements())
            for (AbiElement.CpuidBit b : e.cpuidBits()) if (b.leafOffset() == leaf && b.reg() == reg) r |= 1 << b.bit();
        return r;
    }

    @Override
    public int[] cpuid(int leaf, int subleaf, int vcpu) {
        int off = leaf - base();
        int[] r = new int[4];
        switch (off) {
            case LEAF_VENDOR -> { r[0] = base() + LEAF_NESTED; r[1] = SIG_EBX; r[2] = SIG_ECX; r[3] = SIG_EDX; }
            case LEAF_INTERFACE -> r[0] = INTERFACE_HV1;
            // Build 14393, version 10.0, as KVM reports (printed as 'Hyper-V: Host Build').
            case LEAF_VERSION -> { r[0] = 14393; r[1] = 10 << 16; }
            // Privileges: group A in EAX; group B (EBX) only PostMessages/SignalEvents - B.0 CreatePartitions
            // would make a 6.1 guest believe it is the root partition.
            case LEAF_FEATURES -> {
                r[0] = bitsAt(LEAF_FEATURES, dev.polyvisor.cpu.model.CpuidReg.EAX);
                r[1] = bitsAt(LEAF_FEATURES, dev.polyvisor.cpu.model.CpuidReg.EBX);
                r[3] = bitsAt(LEAF_FEATURES, dev.polyvisor.cpu.model.CpuidReg.EDX);
            }
            case LEAF_ENLIGHTENMENTS -> {
                r[0] = bitsAt(LEAF_ENLIGHTENMENTS, dev.polyvisor.cpu.model.CpuidReg.EAX);
                r[1] = -1; // spinlock retries before HvCallNotifyLongSpinWait: never
            }
            case LEAF_LIMITS -> { r[0] = env.vcpus(); r[1] = env.vcpus(); }
            default -> { } // 6 (hardware features used), 7-0xA: nothing implemented
        }
        return gate.mask(off, r);
    }

    private static boolean owns(int index) { return index >= 0x4000_0000 && index <= 0x4000_01FF; }

    @Override
    public MsrAccess rdmsr(int vcpu, int index) {
        if (!owns(index)) return MsrAccess.NOT_HANDLED;
        if (!gate.msrEnabled(index)) return MsrAccess.GP;
        if (index >= MSR_SINT0 && index <= MSR_SINT15) return MsrAccess.value(sint[vcpu][index - MSR_SINT0]);
        if (index >= MSR_STIMER0_CONFIG && index <= MSR_STIMER3_COUNT) {
            SyntheticTimer t = timers[vcpu][(index - MSR_STIMER0_CONFIG) / 2];
            synchronized (this) { return MsrAccess.value((index & 1) == 0 ? t.config : t.count); }
        }
        return switch (index) {
            case MSR_GUEST_OS_ID -> MsrAccess.value(guestOsId);
            case MSR_HYPERCALL -> MsrAccess.value(hypercallMsr);
            case MSR_VP_INDEX -> MsrAccess.value(vcpu);
            case MSR_TIME_REF_COUNT -> MsrAccess.value(referenceTime());
            case MSR_REFERENCE_TSC -> MsrAccess.value(referenceTscMsr);
            case MSR_TSC_FREQUENCY -> MsrAccess.value(env.clock().tscHz());
            case MSR_APIC_FREQUENCY -> MsrAccess.value(env.apicBusHz());
            case MSR_VP_ASSIST_PAGE -> MsrAccess.value(vpAssist[vcpu]);
            case MSR_SCONTROL -> MsrAccess.value(scontrol[vcpu]);
            case MSR_SVERSION -> MsrAccess.value(1);
            case MSR_SIEFP -> MsrAccess.value(siefp[vcpu]);
            case MSR_SIMP -> MsrAccess.value(simp[vcpu]);
            case MSR_EOM -> MsrAccess.value(0);
            case MSR_GUEST_IDLE -> {
                // hv_qlock_wait: "idle until an interrupt is pending, even with IF=0"; the value is ignored.
                env.injector().block(vcpu, true, () -> false, Long.MAX_VALUE);
                yield MsrAccess.value(0);
            }
            default -> MsrAccess.GP;
        };
    }

    @Override
    public MsrAccess wrmsr(int vcpu, int index, long value) {
        if (!owns(index)) return MsrAccess.NOT_HANDLED;
        if (!gate.msrEnabled(index)) return MsrAccess.GP;
        if (index >= MSR_SINT0 && index <= MSR_SINT15) {
            // KVM synic_set_sint: an unmasked SINT needs a vector >= 16.
            if ((value & SINT_MASKED) == 0 && (value & 0xFF) < 16) return MsrAccess.GP;
            synchronized (this) {
                sint[vcpu][index - MSR_SINT0] = value & (0xFF | SINT_MASKED | SINT_AUTO_EOI | 1L << 18);
                updateAutoEoi(vcpu);
            }
            return MsrAccess.OK;
        }
        if (index >= MSR_STIMER0_CONFIG && index <= MSR_STIMER3_COUNT) {
            writeTimer(vcpu, (index - MSR_STIMER0_CONFIG) / 2, (index & 1) == 0, value);
            return MsrAccess.OK;
        }
        switch (index) {
            case MSR_GUEST_OS_ID -> {
                guestOsId = value;
                // KVM: clearing the guest OS id disables the hypercall page.
                if (value == 0) hypercallMsr &= ~1L;
            }
            case MSR_HYPERCALL -> writeHypercallPage(value);
            case MSR_REFERENCE_TSC -> {
                referenceTscMsr = value;
                if ((value & 1) != 0) writeTscPage();
            }
            case MSR_VP_ASSIST_PAGE -> vpAssist[vcpu] = value; // apic_assist is never set: the guest always EOIs
            case MSR_SCONTROL -> scontrol[vcpu] = value & 1;
            case MSR_SIEFP, MSR_SIMP -> {
                long pa = value & ~0xFFFL;
                if ((value & 1) != 0) {
                    if (!env.isRam(pa, 4096)) return MsrAccess.GP;
                    zeroPage(pa); // KVM clears the page when the guest enables it
                }
                if (index == MSR_SIEFP) siefp[vcpu] = value; else simp[vcpu] = value;
            }
            case MSR_EOM -> {
                retryMessages(vcpu);
                // KVM kvm_hv_notify_acked_sint for every SINT: host senders retry what a busy slot held back.
                for (SintAckListener l : ackListeners) for (int i = 0; i < SINTS; i++) l.acked(vcpu, i);
            }
            // Read-only: VP_INDEX (host-set only), SVERSION, frequencies, reference counter, GUEST_IDLE.
            default -> { return MsrAccess.GP; }
        }
        return MsrAccess.OK;
    }

    /** Reference time: 100 ns units of virtual time, the same on every vCPU. */
    public long referenceTime() { return env.clock().nanos() / 100; }

    /**
     * HV_X64_MSR_HYPERCALL (hv_init.c hyperv_init): bit0 enable, bits 11:1 preserved, 63:12 GPA page. On
     * enable the hypercall code is written into the page: VMMCALL (or VMCALL) then RET, as KVM's
     * kvm_hv_set_msr_pw does. Enabling is refused while the guest OS id is 0.
     */
    private void writeHypercallPage(long value) {
        if (guestOsId == 0) value &= ~1L;
        hypercallMsr = value;
        if ((value & 1) == 0) return;
        long pa = value & ~0xFFFL;
        if (!env.isRam(pa, 4096)) return;
        byte[] insn = env.hypercallInsn();
        for (int i = 0; i < insn.length; i++) mem.st8(pa + i, insn[i]);
        mem.st8(pa + insn.length, 0xC3);
    }

    /** Fills the reference TSC page: sequence 0 while updating, then scale, offset and a new non-zero sequence. */
    private synchronized void writeTscPage() {
        long pa = referenceTscMsr & ~0xFFFL;
        if (!env.isRam(pa, 4096)) return;
        long scale = ReferenceTscPage.scale(env.clock().tscHz());
        long ns = env.clock().nanos();
        long offset = ReferenceTscPage.offset(env.clock().tscAt(ns), ns / 100, scale);
        mem.st32(pa + ReferenceTscPage.OFF_SEQUENCE, 0);
        mem.st64(pa + ReferenceTscPage.OFF_SCALE, scale);
        mem.st64(pa + ReferenceTscPage.OFF_OFFSET, offset);
        tscSequence = tscSequence == 0xFFFF_FFFE || tscSequence == 0 ? 1 : tscSequence + 1; // 0 means invalid
        mem.st32(pa + ReferenceTscPage.OFF_SEQUENCE, tscSequence);
        env.injector().sharedUpdate("hyperv.reference-tsc", AbiUsage.Structure.REFERENCE_TSC);
    }

    private void zeroPage(long pa) { for (int i = 0; i < 4096; i += 8) mem.st64(pa + i, 0); }

    // ---- synthetic timers (TLFS; KVM stimer_set_config / stimer_set_count / stimer_expiration) ----

    private synchronized void writeTimer(int vcpu, int n, boolean isConfig, long value) {
        SyntheticTimer t = timers[vcpu][n];
        t.expiry = -1;
        t.messagePending = false;
        if (isConfig) {
            // A message-mode timer needs a SINT: KVM clears enable when sintx is 0 and direct mode is off.
            if ((value & 1) != 0 && (value & (1L << 12)) == 0 && ((value >>> 16) & 0xF) == 0) value &= ~1L;
            t.config = value & 0xF_1FFFL;
        } else {
            t.count = value;
            if (value == 0) t.config &= ~1L;
            else if (t.autoEnable()) t.config |= 1;
        }
        if (t.enabled()) start(t);
    }

    private void start(SyntheticTimer t) {
        if (t.count == 0) return;
        long now = referenceTime();
        t.expiry = t.periodic() ? now + t.count : t.count; // one-shot counts are absolute; past ones fire at once
    }

    @Override
    public synchronized void onTick(long nowNs) {
        long now = nowNs / 100;
        for (int v = 0; v < timers.length; v++)
            for (int n = 0; n < STIMERS; n++) {
                SyntheticTimer t = timers[v][n];
                if (t.messagePending) { deliver(v, n, t, now); continue; }
                if (t.enabled() && t.expiry >= 0 && t.expiry <= now) deliver(v, n, t, now);
            }
    }

    private void deliver(int vcpu, int n, SyntheticTimer t, long now) {
        long expiredAt = t.expiry;
        boolean ok;
        if (t.direct()) {
            env.injector().fixed(vcpu, t.vector());
            ok = true;
        } else {
            ok = postTimerMessage(vcpu, n, t.sint(), expiredAt, now);
        }
        t.messagePending = !ok;
        if (!ok) return;
        if (t.periodic()) {
            long next = expiredAt + t.count;
            t.expiry = next <= now ? now + t.count : next; // skip missed periods instead of bursting
        } else {
            t.disable(); // one-shot timers clear their enable bit after firing
        }
    }

    /**
     * An HVMSG_TIMER_EXPIRED message (struct hv_timer_message_payload: timer_index u32, reserved u32,
     * expiration_time u64, delivery_time u64) into the SINT's slot; a busy slot keeps the timer pending
     * until EOM, as KVM's stimer_send_msg / synic_deliver_msg do.
     */
    private boolean postTimerMessage(int vcpu, int n, int sintx, long expiration, long now) {
        if ((scontrol[vcpu] & 1) == 0) return false;
        byte[] p = new byte[TIMER_PAYLOAD_SIZE];
        java.nio.ByteBuffer b = java.nio.ByteBuffer.wrap(p).order(java.nio.ByteOrder.LITTLE_ENDIAN);
        b.putInt(0, n).putLong(8, expiration).putLong(16, now);
        return postMessage(vcpu, sintx, HVMSG_TIMER_EXPIRED, p) == PostResult.POSTED;
    }

    // ---- SynIC host side (SynicHost; QEMU hw/hyperv/hyperv.c, KVM arch/x86/kvm/hyperv.c) ----

    /**
     * The vCPU's AutoEOI vectors: those of unmasked SINTs with AutoEOI set (KVM synic_update_vector /
     * synic_has_vector_auto_eoi), so their interrupts leave no ISR bit and the guest skips the EOI.
     */
    private void updateAutoEoi(int vcpu) {
        long[] set = new long[4];
        for (long s : sint[vcpu])
            if ((s & SINT_MASKED) == 0 && (s & SINT_AUTO_EOI) != 0) set[(int) (s & 0xFF) >> 6] |= 1L << (s & 63);
        env.injector().setAutoEoiVectors(vcpu, set);
    }

    @Override
    public boolean routable(int vp, int sintx) { return vp >= 0 && vp < env.vcpus() && sintx >= 0 && sintx < SINTS; }

    @Override
    public synchronized boolean raiseSint(int vp, int sintx) {
        if (!routable(vp, sintx)) return false;
        long s = sint[vp][sintx];
        if ((s & SINT_MASKED) != 0) return false;
        env.injector().fixed(vp, (int) (s & 0xFF));
        return true;
    }

    /**
     * struct hv_message into SIMP slot {@code sintx}: type u32 @0, payload_size u8 @4, message_flags u8 @5,
     * reserved u16, sender u64 @8, payload @16. A slot whose type is not HVMSG_NONE is busy: its
     * msg_pending flag is set so the guest writes EOM when it frees it (TLFS "SIM Page"; QEMU cpu_post_msg).
     * The type is written last: the guest polls it.
     */
    @Override
    public synchronized PostResult postMessage(int vp, int sintx, int type, byte[] payload) {
        if (!routable(vp, sintx) || payload.length > MESSAGE_PAYLOAD_MAX) return PostResult.NO_MESSAGE_PAGE;
        if ((simp[vp] & 1) == 0) return PostResult.NO_MESSAGE_PAGE;
        long slot = (simp[vp] & ~0xFFFL) + (long) sintx * MESSAGE_SIZE;
        if (!env.isRam(slot, MESSAGE_SIZE)) return PostResult.NO_MESSAGE_PAGE;
        if (mem.ld32(slot) != HVMSG_NONE) {
            mem.st8(slot + MESSAGE_FLAGS_OFFSET, mem.ld8(slot + MESSAGE_FLAGS_OFFSET) | MESSAGE_FLAG_PENDING);
            return PostResult.SLOT_BUSY;
        }
        mem.st8(slot + 4, payload.length);
        mem.st8(slot + MESSAGE_FLAGS_OFFSET, 0);
        mem.st16(slot + 6, 0);
        mem.st64(slot + 8, 0);
        for (int i = 0; i < MESSAGE_PAYLOAD_MAX; i++) mem.st8(slot + MESSAGE_PAYLOAD_OFFSET + i, i < payload.length ? payload[i] : 0);
        mem.st32(slot, type);
        env.injector().sharedUpdate(type == HVMSG_TIMER_EXPIRED ? "hyperv.stimer" : "hyperv.synic-connections",
                AbiUsage.Structure.SYNIC_MESSAGE);
        raiseSint(vp, sintx);
        return PostResult.POSTED;
    }

    @Override
    public synchronized boolean setEventFlag(int vp, int sintx, int flag) {
        if (!routable(vp, sintx) || flag < 0 || flag >= EVENT_FLAGS_COUNT) return false;
        if ((scontrol[vp] & 1) == 0 || (siefp[vp] & 1) == 0) return false;
        long word = (siefp[vp] & ~0xFFFL) + (long) sintx * EVENT_FLAGS_SLOT_SIZE + (flag >>> 6) * 8L;
        if (!env.isRam(word, 8)) return false;
        long old = mem.ld64(word), bit = 1L << (flag & 63);
        if ((old & bit) != 0) return true; // already signalled: no second interrupt
        mem.st64(word, old | bit);
        env.injector().sharedUpdate("hyperv.synic-connections", AbiUsage.Structure.SYNIC_EVENT_FLAGS);
        raiseSint(vp, sintx);
        return true;
    }

    @Override
    public synchronized boolean setMessageHandler(int connId, MessageHandler handler) {
        return setHandler(messageHandlers, connId, handler);
    }

    @Override
    public synchronized boolean setEventHandler(int connId, Runnable handler) {
        return setHandler(eventHandlers, connId, handler);
    }

    private static <H> boolean setHandler(Map<Integer, H> map, int connId, H handler) {
        if ((connId & ~CONNECTION_ID_MASK) != 0) return false;
        if (handler == null) return map.remove(connId) != null;
        return map.putIfAbsent(connId, handler) == null;
    }

    @Override
    public void addSintAckListener(SintAckListener listener) { ackListeners.add(listener); }

    /**
     * HvPostMessage (QEMU hyperv_hcall_post_message; KVM forwards it to the VMM): input is struct
     * hv_input_post_message at an 8-byte-aligned GPA; no fast form.
     */
    private long postMessageCall(boolean fast, long in) {
        if (fast) return status(STATUS_INVALID_HYPERCALL_CODE);
        if (!env.isRam(in, POST_MESSAGE_INPUT_SIZE)) return status(STATUS_INSUFFICIENT_MEMORY);
        int connId = mem.ld32(in) & CONNECTION_ID_MASK;
        int type = mem.ld32(in + 8);
        long size = mem.ld32(in + 12) & 0xFFFF_FFFFL;
        if (size > MESSAGE_PAYLOAD_MAX) return status(STATUS_INVALID_HYPERCALL_INPUT);
        MessageHandler h;
        synchronized (this) { h = messageHandlers.get(connId); }
        if (h == null) return status(STATUS_INVALID_CONNECTION_ID);
        return status(h.onMessage(type, mem.readBytes(in + 16, (int) size)));
    }

    /**
     * HvSignalEvent (QEMU hyperv_hcall_signal_event): the connection id in the fast input or the u64 at the
     * GPA; bits 47:32 (flag number) must be 0 (HV_STATUS_INVALID_PORT_ID), the rest above bit 23 reserved.
     */
    private long signalEventCall(boolean fast, long in) {
        long param = in;
        if (!fast) {
            if (!env.isRam(in, 8)) return status(STATUS_INSUFFICIENT_MEMORY);
            param = mem.ld64(in);
        }
        if ((param & 0xFFFF_0000_0000L) != 0) return status(STATUS_INVALID_PORT_ID);
        if ((param & ~(long) CONNECTION_ID_MASK) != 0) return status(STATUS_INVALID_HYPERCALL_INPUT);
        Runnable h;
        synchronized (this) { h = eventHandlers.get((int) param); }
        if (h == null) return status(STATUS_INVALID_CONNECTION_ID);
        h.run();
        return status(STATUS_SUCCESS);
    }

    private synchronized void retryMessages(int vcpu) {
        long now = referenceTime();
        for (int n = 0; n < STIMERS; n++) {
            SyntheticTimer t = timers[vcpu][n];
            if (t.messagePending) deliver(vcpu, n, t, now);
        }
    }

    @Override
    public synchronized long nextDeadlineNs() {
        long d = Long.MAX_VALUE;
        for (SyntheticTimer[] vt : timers)
            for (SyntheticTimer t : vt)
                // A timer whose message waits for a free slot is retried on EOM, not by time (KVM: the pending
                // stimer is re-sent from kvm_hv_notify_acked_sint, arch/x86/kvm/hyperv.c): its expiry is in the
                // past, and answering it would re-arm the VMM's tick for "now" forever (a livelock that held the
                // VMM lock and starved both vCPUs in kvm-unit-tests' hyperv_stimer).
                if (t.enabled() && t.expiry >= 0 && !t.messagePending) d = Math.min(d, t.expiry * 100);
        return d;
    }

    /** Snapshot of a timer's registers (for tests and the VMM's debug output). */
    public synchronized long[] timer(int vcpu, int n) {
        SyntheticTimer t = timers[vcpu][n];
        return new long[] {t.config, t.count, t.expiry};
    }

    /** Hyper-V has no steal-time ABI for Linux guests (pv-abi.md 2.4): steal is not reported. */
    @Override public void addSteal(int vcpu, long ns) { }

    // ---- hypercalls ----

    /** Hypercalls belong to Hyper-V once the guest has identified itself (KVM kvm_hv_hypercall_enabled). */
    @Override
    public int hypercallClaim(int vcpu) {
        return guestOsId != 0 && gate.enabled("hyperv.hypercall") ? CLAIM_ENABLED : CLAIM_NONE;
    }

    /** The call code: bits 15:0 of the control word (RCX, or EAX in 32-bit mode). */
    @Override
    public AbiUsage.Call abiCall(GuestContext c) {
        return AbiUsage.Call.of((c.longMode() ? c.reg(1) : c.reg(0)) & 0xFFFF);
    }

    /**
     * The TLFS hypercall interface (pv-abi.md 5.4): control in RCX (EDX:EAX in 32-bit mode), input GPA or
     * fast input in RDX/R8 (EBX:ECX and EDI:ESI), status in RAX (EDX:EAX) with reps completed in bits 43:32.
     * CPL > 0 raises #UD like KVM. Never throws: malformed input gets an HV_STATUS code.
     */
    @Override
    public boolean hypercall(VcpuExit.Hypercall call) {
        GuestContext c = call.context();
        if (c.cpl() != 0) return false;
        long control, in, out;
        if (c.longMode()) {
            control = c.reg(1); in = c.reg(2); out = c.reg(8);
        } else {
            control = hi32(c.reg(2), c.reg(0)); in = hi32(c.reg(3), c.reg(1)); out = hi32(c.reg(7), c.reg(6));
        }
        long result = dispatch(c.vcpuId(), control, in, out);
        if (c.longMode()) c.setReg(0, result);
        else { c.setReg(2, result >>> 32); c.setReg(0, result & 0xFFFF_FFFFL); }
        return true;
    }

    private static long hi32(long hi, long lo) { return (hi & 0xFFFF_FFFFL) << 32 | (lo & 0xFFFF_FFFFL); }

    private static long status(int s) { return s; }

    long dispatch(int vcpu, long control, long in, long out) {
        int code = (int) (control & 0xFFFF);
        boolean fast = (control & (1L << 16)) != 0;
        int varHead = (int) ((control >>> 17) & 0x3FF);
        int repCount = (int) ((control >>> 32) & 0xFFF);
        int repStart = (int) ((control >>> 48) & 0xFFF);
        if ((control & CONTROL_RESERVED) != 0) return status(STATUS_INVALID_HYPERCALL_INPUT);
        boolean rep = code == CALL_FLUSH_VA_LIST || code == CALL_FLUSH_VA_LIST_EX;
        boolean ex = code == CALL_FLUSH_VA_SPACE_EX || code == CALL_FLUSH_VA_LIST_EX || code == CALL_SEND_IPI_EX;
        boolean known = code == CALL_FLUSH_VA_SPACE || code == CALL_NOTIFY_LONG_SPIN_WAIT || code == CALL_SEND_IPI || rep || ex
                || code == CALL_POST_MESSAGE || code == CALL_SIGNAL_EVENT;
        if (!known || !gate.hypercallEnabled(code, AbiElement.HypercallRef.ANY)) return status(STATUS_INVALID_HYPERCALL_CODE);
        if (rep ? (repCount == 0 || repStart > repCount) : (repCount != 0 || repStart != 0))
            return status(STATUS_INVALID_HYPERCALL_INPUT);
        if (varHead != 0 && !ex) return status(STATUS_INVALID_HYPERCALL_INPUT);
        if (!fast && (in & 7) != 0) return status(STATUS_INVALID_ALIGNMENT);
        long ok = rep ? (long) repCount << 32 : 0;
        return switch (code) {
            case CALL_NOTIFY_LONG_SPIN_WAIT -> fast ? ok : status(STATUS_INVALID_HYPERCALL_INPUT);
            case CALL_POST_MESSAGE -> postMessageCall(fast, in);
            case CALL_SIGNAL_EVENT -> signalEventCall(fast, in);
            case CALL_SEND_IPI -> {
                long vector, mask;
                if (fast) { vector = in & 0xFFFF_FFFFL; mask = out; }
                else {
                    if (!env.isRam(in, 16)) yield status(STATUS_INVALID_HYPERCALL_INPUT);
                    vector = mem.ld32(in) & 0xFFFF_FFFFL;
                    mask = mem.ld64(in + 8);
                }
                BitSet targets = BitSet.valueOf(new long[] {mask});
                yield sendIpi(vector, targets);
            }
            case CALL_SEND_IPI_EX -> {
                if (fast) yield status(STATUS_INVALID_HYPERCALL_INPUT); // XMM fast input is not offered
                if (!env.isRam(in, 8 + 16 + 8L * varHead)) yield status(STATUS_INVALID_HYPERCALL_INPUT);
                long vector = mem.ld32(in) & 0xFFFF_FFFFL;
                BitSet targets = vpSet(in + 8, varHead);
                yield targets == null ? status(STATUS_INVALID_HYPERCALL_INPUT) : sendIpi(vector, targets);
            }
            default -> { // the four flush calls
                if (fast) yield status(STATUS_INVALID_HYPERCALL_INPUT);
                long header = ex ? 16 + 16 + 8L * varHead : 24;
                long entries = rep ? 8L * repCount : 0;
                if (!env.isRam(in, header + entries)) yield status(STATUS_INVALID_HYPERCALL_INPUT);
                long flags = mem.ld64(in + 8);
                BitSet targets;
                if ((flags & FLUSH_ALL_PROCESSORS) != 0) { targets = new BitSet(); targets.set(0, env.vcpus()); }
                else targets = ex ? vpSet(in + 16, varHead) : BitSet.valueOf(new long[] {mem.ld64(in + 16)});
                if (targets == null) yield status(STATUS_INVALID_HYPERCALL_INPUT);
                // A full flush of each target over-approximates any address-space/VA list (pv-abi.md 5.4).
                for (int v = targets.nextSetBit(0); v >= 0 && v < env.vcpus(); v = targets.nextSetBit(v + 1))
                    env.injector().flushTlb(v);
                yield ok;
            }
        };
    }

    /** TLFS: a synthetic IPI vector must be 0x10..0xFF, else HV_STATUS_INVALID_PARAMETER. */
    private long sendIpi(long vector, BitSet targets) {
        if (vector < 0x10 || vector > 0xFF) return status(STATUS_INVALID_PARAMETER);
        for (int v = targets.nextSetBit(0); v >= 0 && v < env.vcpus(); v = targets.nextSetBit(v + 1))
            env.injector().fixed(v, (int) vector);
        return status(STATUS_SUCCESS);
    }

    /**
     * struct hv_vpset at {@code pa}: format u64, valid_bank_mask u64, bank_contents[]. Sparse format: bank i
     * (for each set bit i of valid_bank_mask, in order) covers VPs 64i..64i+63; the number of banks must match
     * the variable header size. Returns null when malformed.
     */
    private BitSet vpSet(long pa, int varHead) {
        long format = mem.ld64(pa), valid = mem.ld64(pa + 8);
        BitSet set = new BitSet();
        if (format == VPSET_ALL) { set.set(0, env.vcpus()); return set; }
        if (format != VPSET_SPARSE_4K || Long.bitCount(valid) > varHead) return null;
        int k = 0;
        for (int bank = 0; bank < 64; bank++) {
            if ((valid >>> bank & 1) == 0) continue;
            long bits = mem.ld64(pa + 16 + 8L * k++);
            for (int i = 0; i < 64; i++) if ((bits >>> i & 1) != 0) set.set(bank * 64 + i);
        }
        return set;
    }
}

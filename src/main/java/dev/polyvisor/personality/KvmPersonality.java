package dev.polyvisor.personality;

import dev.polyvisor.cpu.GuestContext;
import dev.polyvisor.cpu.VcpuExit;
import dev.polyvisor.cpu.model.CpuFeature;
import dev.polyvisor.cpu.model.CpuModel;
import dev.polyvisor.memory.GuestMemory;
import dev.polyvisor.personality.core.AbiElement;
import dev.polyvisor.personality.core.AbiGate;
import dev.polyvisor.personality.core.AbiUsage;
import dev.polyvisor.personality.core.MsrAccess;
import dev.polyvisor.personality.core.PersonalityEnv;
import dev.polyvisor.personality.core.Pvclock;

import java.util.concurrent.atomic.AtomicBoolean;

import static dev.polyvisor.personality.kvm.KvmAbi.*;

/**
 * KVM's paravirtual interface (pv-abi.md 4): signature KVMKVMKVM, feature leaf, the MSRs in
 * 0x4b564d00-0x4b564dff plus the legacy 0x11/0x12, kvmclock/wall-clock/steal-time structures, and the
 * KICK_CPU, SEND_IPI and SCHED_YIELD hypercalls, following the host side in arch/x86/kvm/x86.c and
 * lapic.c and what the guest expects in arch/x86/kernel/kvm.c and kvmclock.c.
 */
public final class KvmPersonality implements Personality {
    private final PersonalityConfig config;
    private final AbiGate gate;
    private final PersonalityEnv env;
    private final GuestMemory mem;

    // per-vCPU MSR state
    private final long[] systemTime, steal, pvEoi, pollControl, asyncPf;
    private final long[] stealNs;
    private final AtomicBoolean[] unhalted;
    private volatile long wallClock;

    public KvmPersonality(PersonalityConfig config, PersonalityEnv env) {
        this.config = config;
        this.gate = new AbiGate(CONTRACT, config.disabled());
        this.env = env;
        this.mem = env.memory();
        int n = env.vcpus();
        systemTime = new long[n];
        steal = new long[n];
        pvEoi = new long[n];
        pollControl = new long[n];
        asyncPf = new long[n];
        stealNs = new long[n];
        unhalted = new AtomicBoolean[n];
        for (int i = 0; i < n; i++) {
            unhalted[i] = new AtomicBoolean();
            pollControl[i] = 1; // KVM host resets msr_kvm_poll_control to 1 (arch/x86/kvm/x86.c kvm_vcpu_reset)
        }
    }

    @Override public PersonalityConfig config() { return config; }

    @Override public AbiGate gate() { return gate; }

    /**
     * KVM completes an instruction whose operand is emulated MMIO in its own emulator, which takes a REX.W far
     * pointer as m16:64 on AMD hosts as well (arch/x86/kvm/emulate.c: SrcMemFAddr is op_bytes + 2 bytes).
     */
    @Override public boolean mmioFarPointersHonourRexW() { return true; }

    /** Feature bits this personality implements (pv-abi.md Appendix A "fuller set", 0x01003AEB with poll control). */
    static int implementedFeatures() {
        int f = 0;
        for (AbiElement e : CONTRACT.elements())
            for (AbiElement.CpuidBit b : e.cpuidBits()) if (b.leafOffset() == 1) f |= 1 << b.bit();
        return f;
    }

    @Override
    public int[] cpuid(int leaf, int subleaf, int vcpu) {
        int off = leaf - base();
        int[] r = new int[4];
        switch (off) {
            // Documentation/virt/kvm/x86/cpuid.rst: EAX = KVM_CPUID_FEATURES (base + 1).
            case 0 -> { r[0] = base() + 1; r[1] = SIG_EBX; r[2] = SIG_ECX; r[3] = SIG_EDX; }
            // EDX hints: KVM_HINTS_REALTIME (bit 0) stays clear, vCPUs are not pinned.
            case 1 -> r[0] = implementedFeatures();
            default -> { }
        }
        return gate.mask(off, r);
    }

    /**
     * With kvm-clock offered, hide CPUID.80000007H:EDX[8]: a guest that sees an invariant TSC lowers
     * kvm-clock's rating to 299 and switches to tsc (arch/x86/kernel/kvmclock.c kvmclock_init, pv-abi.md 4.7).
     */
    @Override
    public CpuModel adjustModel(CpuModel model) {
        return gate.enabled("kvm.clocksource") ? model.without(CpuFeature.INVARIANT_TSC) : model;
    }

    private static boolean ownsMsr(int index) {
        return index == MSR_WALL_CLOCK || index == MSR_SYSTEM_TIME || (index & 0xFFFF_FF00) == 0x4b564d00;
    }

    @Override
    public MsrAccess rdmsr(int vcpu, int index) {
        if (!ownsMsr(index)) return MsrAccess.NOT_HANDLED;
        if (!gate.msrEnabled(index)) return MsrAccess.GP;
        return switch (index) {
            case MSR_SYSTEM_TIME, MSR_SYSTEM_TIME_NEW -> MsrAccess.value(systemTime[vcpu]);
            case MSR_WALL_CLOCK, MSR_WALL_CLOCK_NEW -> MsrAccess.value(wallClock);
            case MSR_STEAL_TIME -> MsrAccess.value(steal[vcpu]);
            case MSR_PV_EOI_EN -> MsrAccess.value(pvEoi[vcpu]);
            case MSR_POLL_CONTROL -> MsrAccess.value(pollControl[vcpu]);
            case MSR_ASYNC_PF_EN -> MsrAccess.value(asyncPf[vcpu]);
            default -> MsrAccess.GP; // rest of the KVM range: not implemented → #GP, as on a host without it
        };
    }

    @Override
    public MsrAccess wrmsr(int vcpu, int index, long value) {
        if (!ownsMsr(index)) return MsrAccess.NOT_HANDLED;
        if (!gate.msrEnabled(index)) return MsrAccess.GP;
        switch (index) {
            case MSR_SYSTEM_TIME, MSR_SYSTEM_TIME_NEW -> {
                // arch/x86/kvm/x86.c kvm_write_system_time: GPA | bit0 enable; the guest reads the pvti right
                // after the write (kvmclock_init → pvclock_tsc_khz), so fill it synchronously.
                systemTime[vcpu] = value;
                if ((value & 1) != 0) writePvti(vcpu);
            }
            case MSR_WALL_CLOCK, MSR_WALL_CLOCK_NEW -> {
                // kvm_write_wall_clock: UTC at pvclock time 0; the structure is written at MSR-write time.
                wallClock = value;
                Pvclock.writeWallClock(mem, value, env.utcNanos().getAsLong() - env.clock().nanos());
                env.injector().sharedUpdate("kvm.clocksource", AbiUsage.Structure.WALL_CLOCK);
            }
            case MSR_STEAL_TIME -> {
                // KVM_STEAL_RESERVED_MASK: bits 5:1 must be zero (Documentation/virt/kvm/x86/msr.rst).
                if ((value & 0x3E) != 0) return MsrAccess.GP;
                steal[vcpu] = value;
                if ((value & 1) != 0) writeSteal(vcpu);
            }
            case MSR_PV_EOI_EN -> {
                // lapic.c kvm_lapic_set_pv_eoi: the EOI word must be 4-byte aligned. We never set its bit,
                // which msr.rst allows: the guest then always performs the APIC EOI itself.
                if ((value & 0x2) != 0) return MsrAccess.GP;
                pvEoi[vcpu] = value;
            }
            case MSR_POLL_CONTROL -> {
                if ((value & ~1L) != 0) return MsrAccess.GP;
                pollControl[vcpu] = value;
            }
            case MSR_ASYNC_PF_EN -> {
                // Async PF is not offered (feature bits 4/14 clear): accept only the disable the guest
                // writes in kvm_pv_disable_apf.
                if ((value & 1) != 0) return MsrAccess.GP;
                asyncPf[vcpu] = value;
            }
            default -> { return MsrAccess.GP; }
        }
        return MsrAccess.OK;
    }

    private void writePvti(int vcpu) {
        long pa = systemTime[vcpu] & ~1L;
        Pvclock.writeTimeInfo(mem, pa, env.clock(), env.clock().nanos(), gate.enabled("kvm.clocksource-stable"));
        env.injector().sharedUpdate("kvm.clocksource", AbiUsage.Structure.PVCLOCK);
    }

    /** Writes struct kvm_steal_time with the version seqlock (host record_steal_time). preempted stays 0. */
    private synchronized void writeSteal(int vcpu) {
        if ((steal[vcpu] & 1) == 0) return;
        long pa = steal[vcpu] & ~0x3FL;
        if (!env.isRam(pa, 64)) return;
        int v = mem.ld32(pa + STEAL_OFF_VERSION);
        int odd = (v + 1) | 1;
        mem.st32(pa + STEAL_OFF_VERSION, odd);
        mem.st64(pa + STEAL_OFF_STEAL, stealNs[vcpu]);
        mem.st32(pa + STEAL_OFF_FLAGS, 0);
        mem.st32(pa + STEAL_OFF_VERSION, odd + 1);
        env.injector().sharedUpdate("kvm.steal-time", AbiUsage.Structure.STEAL_TIME);
    }

    @Override
    public synchronized void addSteal(int vcpu, long ns) {
        if (ns <= 0 || vcpu < 0 || vcpu >= stealNs.length) return;
        stealNs[vcpu] += ns;
        if (gate.enabled("kvm.steal-time")) writeSteal(vcpu);
    }

    public long stealNs(int vcpu) { return stealNs[vcpu]; }

    @Override public int hypercallClaim(int vcpu) { return CLAIM_DEFAULT; }

    /**
     * kvm_emulate_hypercall (arch/x86/kvm/x86.c): nr in RAX, args RBX, RCX, RDX, RSI; CPL≠0 → -KVM_EPERM;
     * outside 64-bit mode everything is truncated to 32 bits; unknown or unadvertised → -KVM_ENOSYS.
     */
    @Override
    public boolean hypercall(VcpuExit.Hypercall call) {
        GuestContext c = call.context();
        boolean op64 = c.longMode();
        long nr = c.reg(0), a0 = c.reg(3), a1 = c.reg(1), a2 = c.reg(2), a3 = c.reg(6);
        if (!op64) {
            nr &= 0xFFFF_FFFFL; a0 &= 0xFFFF_FFFFL; a1 &= 0xFFFF_FFFFL; a2 &= 0xFFFF_FFFFL; a3 &= 0xFFFF_FFFFL;
        }
        long ret;
        if (c.cpl() != 0) ret = EPERM;
        else if (nr < 0 || nr > Integer.MAX_VALUE || !gate.hypercallEnabled((int) nr, AbiElement.HypercallRef.ANY)) ret = ENOSYS;
        else ret = switch ((int) nr) {
            case HC_KICK_CPU -> kick(a1);
            case HC_SEND_IPI -> sendIpi(a0, a1, a2, a3, op64);
            case HC_SCHED_YIELD -> 0; // a scheduling hint; the target's preempted flag is never set here
            default -> ENOSYS;
        };
        c.setReg(0, op64 ? ret : ret & 0xFFFF_FFFFL);
        return true;
    }

    /**
     * KVM_HC_KICK_CPU (kvm_pv_kick_cpu_op): make the vCPU with APIC ID {@code apicId} runnable. The flag is
     * sticky: a vCPU kicked before it halts returns from its next HLT at once, whatever IF says
     * (kvm.c kvm_wait halts with IRQs off and relies on this). Unknown APIC IDs are ignored; returns 0.
     */
    private long kick(long apicId) {
        if (apicId >= 0 && apicId < unhalted.length) {
            unhalted[(int) apicId].set(true);
            env.injector().wake((int) apicId);
        }
        return 0;
    }

    @Override public boolean consumeUnhalt(int vcpu) { return unhalted[vcpu].getAndSet(false); }

    @Override public boolean offersUnhalt() { return gate.enabled("kvm.pv-unhalt"); }

    /** True while a kick is latched and not yet consumed by an HLT. */
    public boolean kicked(int vcpu) { return unhalted[vcpu].get(); }

    /**
     * KVM_HC_SEND_IPI (kvm_pv_send_ipi, arch/x86/kvm/lapic.c): bit i of the 2×64-bit (2×32 outside long
     * mode) bitmap names APIC ID min+i; the ICR must use physical destination and no shorthand, else
     * -KVM_EINVAL. Returns the number of vCPUs the interrupt was delivered to.
     */
    private long sendIpi(long low, long high, long min, long icr, boolean op64) {
        final long APIC_DEST_LOGICAL = 0x800, APIC_SHORT_MASK = 0xC0000;
        if ((icr & (APIC_DEST_LOGICAL | APIC_SHORT_MASK)) != 0) return EINVAL;
        int vector = (int) (icr & 0xFF);
        int mode = (int) ((icr >> 8) & 7);
        int cluster = op64 ? 64 : 32;
        long count = 0;
        count += deliver(low, min, cluster, mode, vector);
        if (min + cluster >= 0) count += deliver(high, min + cluster, cluster, mode, vector);
        return count;
    }

    private long deliver(long bitmap, long min, int cluster, int mode, int vector) {
        long count = 0;
        for (int i = 0; i < cluster; i++) {
            if ((bitmap >>> i & 1) == 0) continue;
            long apic = min + i;
            if (apic < 0 || apic >= env.vcpus()) continue;
            switch (mode) {
                case 0, 1 -> env.injector().fixed((int) apic, vector); // fixed, lowest priority
                case 4 -> env.injector().nmi((int) apic);
                default -> { continue; } // SMI/INIT/SIPI are not sent through this hypercall by Linux
            }
            count++;
        }
        return count;
    }
}

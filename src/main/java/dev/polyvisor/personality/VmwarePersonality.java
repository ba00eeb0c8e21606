package dev.polyvisor.personality;

import dev.polyvisor.cpu.GuestContext;
import dev.polyvisor.cpu.VcpuExit;
import dev.polyvisor.personality.core.AbiElement;
import dev.polyvisor.personality.core.AbiGate;
import dev.polyvisor.personality.core.AbiUsage;
import dev.polyvisor.personality.core.GuestPortIo;
import dev.polyvisor.personality.core.MsrAccess;
import dev.polyvisor.personality.core.PersonalityEnv;

import java.util.Optional;

import static dev.polyvisor.personality.vmware.VmwareAbi.*;

/**
 * VMware (pv-abi.md 7): signature VMwareVMware, the timing leaf 0x40000010, and the backdoor on port
 * 0x5658 (and, when option {@code backdoor=vmcall|vmmcall} advertises it, through VMCALL/VMMCALL with
 * the same registers). Register conventions from arch/x86/include/asm/vmware.h and vmware.c.
 */
public final class VmwarePersonality implements Personality {
    private final PersonalityConfig config;
    private final AbiGate gate;
    private final PersonalityEnv env;
    private final int modeBits;
    private final long[] stealArea;     // guest PA of struct vmware_steal_time, -1 when disabled
    private final long[] stealNs;
    private final Backdoor backdoor = new Backdoor();

    public VmwarePersonality(PersonalityConfig config, PersonalityEnv env) {
        this.config = config;
        this.gate = new AbiGate(CONTRACT, config.disabled());
        this.env = env;
        this.modeBits = switch (config.option("backdoor", "port")) {
            case "port" -> 0;
            case "vmcall" -> ECX_VMCALL;
            case "vmmcall" -> ECX_VMMCALL;
            default -> throw new IllegalArgumentException("vmware backdoor must be port, vmcall or vmmcall: " + config.option("backdoor", ""));
        };
        stealArea = new long[env.vcpus()];
        stealNs = new long[env.vcpus()];
        java.util.Arrays.fill(stealArea, -1);
    }

    @Override public PersonalityConfig config() { return config; }

    @Override public AbiGate gate() { return gate; }

    @Override
    public int[] cpuid(int leaf, int subleaf, int vcpu) {
        int off = leaf - base();
        int[] r = new int[4];
        boolean timing = gate.enabled("vmware.timing-leaf");
        switch (off) {
            case 0 -> { r[0] = base() + (timing ? TIMING_LEAF : 0); r[1] = SIG_EBX; r[2] = SIG_ECX; r[3] = SIG_EDX; }
            case TIMING_LEAF -> {
                if (timing) {
                    r[0] = (int) (env.clock().tscHz() / 1000);
                    r[1] = (int) (env.apicBusHz() / 1000);
                    r[2] = modeBits;
                }
            }
            default -> { }
        }
        return gate.mask(off, r);
    }

    @Override public MsrAccess rdmsr(int vcpu, int index) { return MsrAccess.NOT_HANDLED; }

    @Override public MsrAccess wrmsr(int vcpu, int index, long value) { return MsrAccess.NOT_HANDLED; }

    @Override
    public int hypercallClaim(int vcpu) {
        return modeBits != 0 && gate.enabled("vmware.timing-leaf") ? CLAIM_DEFAULT : CLAIM_NONE;
    }

    /** VMCALL/VMMCALL form: same registers as the port form, EDX = flags (0). Only when advertised. */
    @Override
    public boolean hypercall(VcpuExit.Hypercall call) {
        GuestContext c = call.context();
        if (hypercallClaim(c.vcpuId()) == CLAIM_NONE) return false;
        long eax = command(c);
        c.setReg(0, eax & 0xFFFF_FFFFL);
        return true;
    }

    /** The backdoor command: the low 16 bits of ECX, for the port and the VMCALL/VMMCALL form alike. */
    @Override
    public AbiUsage.Call abiCall(GuestContext c) { return AbiUsage.Call.of(c.reg(1) & 0xFFFF); }

    @Override public Optional<GuestPortIo> portIo() { return Optional.of(backdoor); }

    /**
     * VMware's pseudo-performance counters, read with RDPMC at any CPL regardless of CR4.PCE (VMware's
     * "pseudo_perfctr"; KVM's kvm_pmu_rdpmc_vmware under enable_vmware_backdoor): 0x10000 the host TSC (the
     * machine's TSC before any per-vCPU offset), 0x10001 real time and 0x10002 apparent time in nanoseconds
     * (the same clock here: the guest's time does not run apart from the machine's).
     */
    @Override
    public java.util.OptionalLong pseudoCounter(int vcpu, int index) {
        if (!hasPseudoCounter(index)) return java.util.OptionalLong.empty();
        return java.util.OptionalLong.of(index == PMC_HOST_TSC ? env.clock().tsc() : env.clock().nanos());
    }

    @Override
    public boolean hasPseudoCounter(int index) {
        return index >= PMC_HOST_TSC && index <= PMC_APPARENT_TIME && gate.enabled("vmware.backdoor");
    }

    /**
     * Port 0x5658: a 32-bit IN with EAX = 'VMXh' runs the command in ECX. Anything else behaves like an
     * unclaimed port (all-ones, registers untouched), which the guest treats as "no backdoor".
     */
    private final class Backdoor implements GuestPortIo {
        @Override public boolean claims(int port) { return port == PORT; }

        /** The backdoor answers user mode too (VMware Tools call it from user space; KVM's enable_vmware_backdoor). */
        @Override public boolean openToAllPrivilegeLevels(int port) { return port == PORT && gate.enabled("vmware.backdoor"); }

        @Override
        public long in(GuestContext ctx, int port, int size) {
            if (size != 4 || (int) ctx.reg(0) != MAGIC) return GuestMemoryMask.ones(size);
            return command(ctx) & 0xFFFF_FFFFL;
        }

        @Override public void out(GuestContext ctx, int port, int size, long value) { /* OUT carries no command in 6.1 */ }
    }

    /** Runs backdoor command ECX; sets EBX/ECX/EDX as the command defines and returns the EAX value. */
    long command(GuestContext c) {
        int cmd = (int) c.reg(1) & 0xFFFF; // low 16 bits of ECX select the command (high bits: sub-command)
        if (!gate.hypercallEnabled(cmd, AbiElement.HypercallRef.ANY) || !gate.enabled("vmware.backdoor"))
            return 0xFFFF_FFFFL;
        return switch (cmd) {
            case CMD_GETVERSION -> {
                set(c, 3, MAGIC);
                set(c, 1, PRODUCT_TYPE);
                yield VERSION;
            }
            case CMD_GETHZ -> {
                // vmware_platform_setup: EAX:EBX = TSC Hz (EBX = 0xFFFFFFFF means unsupported), ECX = bus Hz.
                long hz = env.clock().tscHz();
                set(c, 3, hz >>> 32);
                set(c, 1, env.apicBusHz());
                yield hz & 0xFFFF_FFFFL;
            }
            case CMD_GETVCPU_INFO -> 0; // bit 31 (reserved) clear, bit 3 (legacy x2APIC) clear: no x2APIC
            case CMD_STEALCLOCK -> stealClock(c);
            default -> 0xFFFF_FFFFL;
        };
    }

    /**
     * STEALCLOCK (vmware_cmd_stealclock): ESI:EDI = (high, low) of the area's PA to enable, (0, 1) to
     * disable. Returns 1 enabled, 0 disabled, -1 not available (a misaligned or non-RAM area is refused
     * with 0, so the guest clears has_steal_clock).
     */
    private long stealClock(GuestContext c) {
        int vcpu = c.vcpuId();
        long hi = c.reg(6) & 0xFFFF_FFFFL, lo = c.reg(7) & 0xFFFF_FFFFL;
        if (hi == 0 && lo == 1) {
            stealArea[vcpu] = -1;
            return STEALCLOCK_DISABLED;
        }
        long pa = hi << 32 | lo;
        if ((pa & 63) != 0 || !env.isRam(pa, 64)) return STEALCLOCK_DISABLED;
        stealArea[vcpu] = pa;
        writeSteal(vcpu);
        return STEALCLOCK_ENABLED;
    }

    private static void set(GuestContext c, int reg, long v) { c.setReg(reg, v & 0xFFFF_FFFFL); }

    /** struct vmware_steal_time: clock (stolen TSC cycles) at offset 0, written by the hypervisor only. */
    private void writeSteal(int vcpu) {
        long pa = stealArea[vcpu];
        if (pa < 0) return;
        env.memory().st64(pa, env.clock().tscAt(stealNs[vcpu]));
        env.injector().sharedUpdate("vmware.steal-clock", AbiUsage.Structure.STEAL_CLOCK);
    }

    @Override
    public synchronized void addSteal(int vcpu, long ns) {
        if (ns <= 0 || vcpu < 0 || vcpu >= stealNs.length) return;
        stealNs[vcpu] += ns;
        if (gate.enabled("vmware.steal-clock")) writeSteal(vcpu);
    }

    /** All-ones of an access size, what an unclaimed port reads. */
    private static final class GuestMemoryMask {
        static long ones(int size) { return size >= 8 ? -1L : (1L << (size * 8)) - 1; }
    }
}

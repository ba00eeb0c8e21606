package dev.polyvisor.personality.core;

import dev.polyvisor.clock.VirtualClock;
import dev.polyvisor.memory.GuestMemory;

import java.util.function.LongSupplier;

/**
 * The VM a personality serves: its RAM, its one clock, the VMM callbacks, the number of vCPUs, whether
 * the CPU vendor is AMD (hypercall pages then contain VMMCALL), the LAPIC timer frequency (Hyper-V
 * APIC_FREQUENCY MSR, VMware GETHZ bus frequency) and the host's UTC clock for wall-clock structures.
 */
public record PersonalityEnv(GuestMemory memory, VirtualClock clock, InterruptInjector injector, int vcpus,
                             boolean amdVendor, long apicBusHz, LongSupplier utcNanos) {
    /** KVM's LAPIC bus runs at 1 GHz (APIC_BUS_CYCLE_NS = 1, arch/x86/kvm/lapic.h). */
    public static final long DEFAULT_APIC_BUS_HZ = 1_000_000_000L;

    public PersonalityEnv {
        if (vcpus < 1 || vcpus > 255) throw new IllegalArgumentException("vCPU count must be 1..255: " + vcpus);
        if (apicBusHz <= 0) throw new IllegalArgumentException("APIC bus frequency must be positive");
    }

    public static PersonalityEnv of(GuestMemory memory, VirtualClock clock, InterruptInjector injector, int vcpus) {
        return of(memory, clock, injector, vcpus, () -> System.currentTimeMillis() * 1_000_000L);
    }

    /**
     * As {@link #of(GuestMemory, VirtualClock, InterruptInjector, int)} with the VM's own UTC source: in
     * icount mode the VMM passes a clock derived from virtual time (a fixed epoch plus
     * {@link VirtualClock#nanos()}), so wall-clock structures (KVM's MSR_KVM_WALL_CLOCK, Xen's
     * shared_info wc_sec) never carry host time into a deterministic run.
     */
    public static PersonalityEnv of(GuestMemory memory, VirtualClock clock, InterruptInjector injector, int vcpus,
                                    LongSupplier utcNanos) {
        return new PersonalityEnv(memory, clock, injector, vcpus, true, DEFAULT_APIC_BUS_HZ, utcNanos);
    }

    /** VMCALL (0F 01 C1) on Intel, VMMCALL (0F 01 D9) on AMD: what a hypercall page must contain. */
    public byte[] hypercallInsn() {
        return amdVendor ? new byte[] {0x0F, 0x01, (byte) 0xD9} : new byte[] {0x0F, 0x01, (byte) 0xC1};
    }

    /**
     * True when the whole range [pa, pa+len) is plain guest RAM - inside RAM and not shadowed by an MMIO
     * window - so a guest-chosen structure address can never make the hypervisor write device registers.
     */
    public boolean isRam(long pa, long len) {
        if (pa < 0 || len <= 0 || pa + len < pa || Long.compareUnsigned(pa + len, memory.ramSize) > 0) return false;
        for (long page = pa & ~0xFFFL; page < pa + len; page += 4096)
            if (!memory.isRamPage(page)) return false;
        return true;
    }
}

package dev.polyvisor.personality.core;

import dev.polyvisor.clock.VirtualClock;
import dev.polyvisor.memory.GuestMemory;

/**
 * The pvclock ABI shared by KVM and Xen (pv-abi.md 2.5; arch/x86/include/asm/pvclock-abi.h,
 * arch/x86/kernel/pvclock.c): {@code struct pvclock_vcpu_time_info} (32 bytes) and
 * {@code struct pvclock_wall_clock} (12 bytes), written with the version seqlock the guest reader
 * relies on: version made odd, fields written, version made even (KVM host kvm_setup_guest_pvclock).
 *
 * <p>The VM's TSC is a linear function of the virtual clock, so one (tsc_timestamp, system_time) pair
 * stays valid forever and the same pair on every vCPU justifies the STABLE flag.
 */
public final class Pvclock {
    public static final int SIZE = 32;
    public static final int OFF_VERSION = 0, OFF_TSC_TIMESTAMP = 8, OFF_SYSTEM_TIME = 16, OFF_MUL = 24,
            OFF_SHIFT = 28, OFF_FLAGS = 29;
    public static final int FLAG_TSC_STABLE = 1, FLAG_GUEST_STOPPED = 2;
    public static final int WALL_CLOCK_SIZE = 12;

    /** 32.32 multiplier and pre-shift converting TSC cycles to nanoseconds. */
    public record Scale(int mul, int shift) {
        /** Applies the guest's conversion ({@code pvclock_scale_delta}): ((delta << shift) * mul) >> 32, 96-bit product. */
        public long scaleDelta(long delta) {
            long d = shift >= 0 ? delta << shift : delta >>> -shift;
            long m = Integer.toUnsignedLong(mul);
            return (d >>> 32) * m + (((d & 0xFFFF_FFFFL) * m) >>> 32);
        }
    }

    /**
     * KVM host {@code kvm_get_time_scale(NSEC_PER_SEC, tscHz)} (arch/x86/kvm/x86.c): the shift making
     * 1e9 / (hz * 2^shift) fall in [0.5, 1), and mul = that ratio as a 0.32 fixed-point fraction.
     */
    public static Scale scaleFor(long tscHz) {
        long scaled = 1_000_000_000L;
        long tps64 = tscHz;
        int shift = 0;
        while (tps64 > scaled * 2 || (tps64 & 0xFFFF_FFFF_0000_0000L) != 0) {
            tps64 >>>= 1;
            shift--;
        }
        long tps32 = tps64 & 0xFFFF_FFFFL;
        while (tps32 <= scaled || (scaled & 0xFFFF_FFFF_0000_0000L) != 0) {
            if ((scaled & 0xFFFF_FFFF_0000_0000L) != 0 || (tps32 & 0x8000_0000L) != 0) scaled >>>= 1;
            else tps32 <<= 1;
            shift++;
        }
        long mul = (scaled << 32) / tps32;
        return new Scale((int) mul, shift);
    }

    /** TSC kHz the guest derives from a scale ({@code pvclock_tsc_khz}); used by tests to check the pair. */
    public static long tscKhz(Scale s) {
        long khz = (1_000_000L << 32) / Integer.toUnsignedLong(s.mul());
        return s.shift() < 0 ? khz << -s.shift() : khz >>> s.shift();
    }

    private Pvclock() {}

    /**
     * Writes a valid pvti at {@code pa} for virtual time {@code ns}: tsc_timestamp = TSC at ns,
     * system_time = ns. Keeps a GUEST_STOPPED bit the guest has not cleared yet (as KVM does).
     * Addresses that are not plain RAM (outside RAM, or MMIO) are ignored, so a bad guest address can
     * neither fault the VMM nor poke a device.
     */
    public static void writeTimeInfo(GuestMemory mem, long pa, VirtualClock clock, long ns, boolean stable) {
        if (!isRam(mem, pa, SIZE)) return;
        Scale s = scaleFor(clock.tscHz());
        int version = (int) mem.readPhys(pa + OFF_VERSION, 4);
        int oldFlags = (int) mem.readPhys(pa + OFF_FLAGS, 1);
        int odd = (version + 1) | 1;
        mem.writePhys(pa + OFF_VERSION, 4, odd);
        mem.writePhys(pa + 4, 4, 0);
        mem.writePhys(pa + OFF_TSC_TIMESTAMP, 8, clock.tscAt(ns));
        mem.writePhys(pa + OFF_SYSTEM_TIME, 8, ns);
        mem.writePhys(pa + OFF_MUL, 4, s.mul());
        mem.writePhys(pa + OFF_SHIFT, 1, s.shift());
        int flags = (stable ? FLAG_TSC_STABLE : 0) | (oldFlags != 0xFF ? oldFlags & FLAG_GUEST_STOPPED : 0);
        mem.writePhys(pa + OFF_FLAGS, 1, flags);
        mem.writePhys(pa + 30, 2, 0);
        mem.writePhys(pa + OFF_VERSION, 4, odd + 1);
    }

    /**
     * Writes a {@code pvclock_wall_clock} at {@code pa}: the UTC time at which pvclock system_time was
     * zero (wall_ns = utc_now - vm_clock_now, KVM host kvm_write_wall_clock).
     */
    public static void writeWallClock(GuestMemory mem, long pa, long utcNanosAtClockZero) {
        if (!isRam(mem, pa, WALL_CLOCK_SIZE)) return;
        int version = (int) mem.readPhys(pa, 4);
        int odd = (version + 1) | 1;
        mem.writePhys(pa, 4, odd);
        mem.writePhys(pa + 4, 4, Math.floorDiv(utcNanosAtClockZero, 1_000_000_000L));
        mem.writePhys(pa + 8, 4, Math.floorMod(utcNanosAtClockZero, 1_000_000_000L));
        mem.writePhys(pa, 4, odd + 1);
    }

    private static boolean isRam(GuestMemory mem, long pa, int len) {
        return pa >= 0 && pa + len > pa && Long.compareUnsigned(pa + len, mem.ramSize) <= 0
                && mem.isRamPage(pa) && mem.isRamPage(pa + len - 1);
    }
}

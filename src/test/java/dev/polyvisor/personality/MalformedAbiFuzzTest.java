package dev.polyvisor.personality;

import dev.polyvisor.memory.MmioHandler;
import dev.polyvisor.memory.MmioRegion;
import dev.polyvisor.personality.core.GuestPortIo;
import dev.polyvisor.personality.core.MsrAccess;
import org.junit.jupiter.api.AfterEach;
import org.junit.jupiter.api.Test;

import java.util.Random;
import java.util.Set;
import java.util.function.Supplier;

import static dev.polyvisor.personality.FakeContext.*;
import static org.junit.jupiter.api.Assertions.*;

/**
 * Randomized property tests (fixed seeds, so failures reproduce): garbage thrown at every personality's
 * hypercall, RDMSR/WRMSR and the VMware backdoor port gets the ABI's documented error - #GP for MSRs,
 * -KVM_ENOSYS/-KVM_EINVAL/-KVM_EPERM, HV_STATUS_*, Xen -errno, the unclaimed-port all-ones - and never
 * throws, never takes long, and never writes guest memory behind an MMIO window. The Hyper-V and Xen
 * hypercall tables have their own random sweeps in HypervPersonalityTest and XenPersonalityTest; this
 * class adds KVM, VMware, every MSR path, 32-bit callers, user-mode callers and MMIO/out-of-RAM pointers.
 */
class MalformedAbiFuzzTest {
    /** A device window inside RAM: structures the guest points into it must never be written. */
    static final long MMIO_BASE = 0x80000, MMIO_LEN = 0x2000;
    /**
     * Time bounds. The ABI calls are O(1) with bounded loops, so 99% of calls must finish within 1 ms; the
     * single slowest may include class loading, JIT or a GC pause on a loaded host, so it only has to stay
     * clear of anything resembling a hang.
     */
    static final long P99_NS = 1_000_000L, MAX_CALL_NS = 250_000_000L;

    final TestVm vm = new TestVm(2);
    int mmioAccesses;
    long slowestNs;
    final java.util.List<Long> durations = new java.util.ArrayList<>();
    final byte[] underMmio;

    MalformedAbiFuzzTest() {
        vm.mem.addMmio(new MmioRegion("trap", MMIO_BASE, MMIO_LEN, new MmioHandler() {
            @Override public long read(long offset, int size) { mmioAccesses++; return 0; }
            @Override public void write(long offset, int size, long value) { mmioAccesses++; }
        }));
        underMmio = vm.mem.readBytes(MMIO_BASE, (int) MMIO_LEN);
    }

    @AfterEach
    void noDeviceWasTouched() {
        assertEquals(0, mmioAccesses, "a personality accessed an MMIO window");
        assertArrayEquals(underMmio, vm.mem.readBytes(MMIO_BASE, (int) MMIO_LEN), "RAM behind the MMIO window changed");
        assertTrue(slowestNs < MAX_CALL_NS, "slowest call took " + slowestNs / 1000 + " us");
        long[] d = durations.stream().mapToLong(Long::longValue).sorted().toArray();
        assertTrue(d.length > 0, "no call was made");
        long p99 = d[(int) (d.length * 0.99)];
        assertTrue(p99 < P99_NS, "99th percentile call time " + p99 / 1000 + " us");
        vm.close();
    }

    /** Runs one ABI call, timing it; any exception fails the test with the call's description. */
    <T> T timed(String what, Supplier<T> call) {
        long t0 = System.nanoTime();
        T r;
        try {
            r = call.get();
        } catch (RuntimeException e) {
            throw new AssertionError(what + " threw " + e, e);
        }
        long dt = System.nanoTime() - t0;
        durations.add(dt);
        slowestNs = Math.max(slowestNs, dt);
        return r;
    }

    /** Pointers a malicious guest would pick: RAM, MMIO, just past RAM, huge, negative, odd alignments. */
    static long nastyPointer(Random rnd) {
        return switch (rnd.nextInt(8)) {
            case 0 -> rnd.nextInt(1 << 20);                                  // somewhere in RAM, any alignment
            case 1 -> MMIO_BASE + rnd.nextInt((int) MMIO_LEN);               // device window
            case 2 -> (1 << 20) - rnd.nextInt(64);                           // straddling the end of RAM
            case 3 -> (1L << 20) + rnd.nextInt(1 << 20);                     // just outside RAM
            case 4 -> rnd.nextLong();                                        // anything
            case 5 -> -1L - rnd.nextInt(4096);                               // top of the address space
            case 6 -> (rnd.nextInt(1 << 20) & ~0xFFFL) | 1;                  // page address with the enable bit
            default -> Long.MAX_VALUE - rnd.nextInt(4096);                   // overflow bait
        };
    }

    static FakeContext randomContext(Random rnd, int vcpus) {
        FakeContext c = new FakeContext(rnd.nextInt(vcpus)).identity(1 << 20);
        for (int r = 0; r < 16; r++) c.regs[r] = rnd.nextInt(4) == 0 ? nastyPointer(rnd) : rnd.nextLong();
        c.longMode = rnd.nextInt(4) != 0;
        c.cpl = rnd.nextInt(8) == 0 ? 3 : 0;
        return c;
    }

    /** RAX as the guest reads it: in 32-bit mode only EAX exists, sign-extended here for comparison. */
    static long result(FakeContext c) { return c.longMode ? c.rax() : (int) c.rax(); }

    // ---- KVM ----

    @Test
    void kvmHypercallGarbageGetsKvmErrnosOrAnIpiCount() {
        KvmPersonality kvm = vm.stack("kvm").find(KvmPersonality.class).orElseThrow();
        Random rnd = new Random(4_0001);
        for (int i = 0; i < 20_000; i++) {
            FakeContext c = randomContext(rnd, 2);
            // Half the calls use a real hypercall number so the argument checks get exercised too.
            if (rnd.nextBoolean()) c.regs[RAX] = new long[] {5, 10, 11, 0, 1, 9, 12, 1000}[rnd.nextInt(8)];
            long nr = c.longMode ? c.regs[RAX] : c.regs[RAX] & 0xFFFF_FFFFL;
            String what = "KVM hypercall " + nr + " cpl " + c.cpl;
            assertTrue(timed(what, () -> kvm.hypercall(c.vmcall())), what + " must not #UD");
            long r = result(c);
            if (c.cpl != 0) assertEquals(-1, r, what + ": -KVM_EPERM from user mode");
            else if (nr == 5 || nr == 11) assertEquals(0, r, what);
            else if (nr == 10) assertTrue(r == -22 || (r >= 0 && r <= 2), what + " returned " + r);
            else assertEquals(-1000, r, what + ": -KVM_ENOSYS");
        }
    }

    @Test
    void kvmMsrGarbageIsHandledOrGp() {
        KvmPersonality kvm = vm.stack("kvm").find(KvmPersonality.class).orElseThrow();
        Random rnd = new Random(4_0002);
        int[] known = {0x11, 0x12, 0x4b564d00, 0x4b564d01, 0x4b564d02, 0x4b564d03, 0x4b564d04, 0x4b564d05};
        for (int i = 0; i < 20_000; i++) {
            int index = switch (rnd.nextInt(3)) {
                case 0 -> known[rnd.nextInt(known.length)];
                case 1 -> 0x4b564d00 | rnd.nextInt(256);
                default -> rnd.nextInt();
            };
            long value = rnd.nextBoolean() ? nastyPointer(rnd) : rnd.nextLong();
            int vcpu = rnd.nextInt(2);
            boolean owned = index == 0x11 || index == 0x12 || (index & 0xFFFF_FF00) == 0x4b564d00;
            String what = String.format("KVM wrmsr 0x%x <- 0x%x", index, value);
            MsrAccess w = timed(what, () -> kvm.wrmsr(vcpu, index, value));
            MsrAccess r = timed("KVM rdmsr", () -> kvm.rdmsr(vcpu, index));
            if (!owned) {
                assertInstanceOf(MsrAccess.NotHandled.class, w, what);
                assertInstanceOf(MsrAccess.NotHandled.class, r, what);
                continue;
            }
            assertFalse(w instanceof MsrAccess.NotHandled, what + ": an owned MSR is never passed on");
            boolean expectGp = switch (index) {
                case 0x4b564d03 -> (value & 0x3E) != 0;            // steal time: reserved bits 5:1
                case 0x4b564d04 -> (value & 0x2) != 0;             // PV EOI: word must be 4-byte aligned
                case 0x4b564d05 -> (value & ~1L) != 0;             // poll control: bit 0 only
                case 0x4b564d02 -> (value & 1) != 0;               // async PF is not offered
                case 0x11, 0x12, 0x4b564d00, 0x4b564d01 -> false;  // any GPA; bad ones are simply not written
                default -> true;                                   // the rest of the KVM range is unimplemented
            };
            assertEquals(expectGp, w instanceof MsrAccess.Gp, what + " gave " + w);
            if (index > 0x4b564d05) assertInstanceOf(MsrAccess.Gp.class, r, what);
            else if (!expectGp && index != 0x11 && index != 0x4b564d00)
                assertEquals(new MsrAccess.Handled(value), r, what + ": per-vCPU MSRs read back what was written");
        }
        // The accumulated steal keeps flowing to wherever the last valid write pointed, never into MMIO.
        for (int v = 0; v < 2; v++) kvm.addSteal(v, 1234);
    }

    // ---- VMware ----

    @Test
    void vmwareBackdoorGarbageLooksUnclaimedOrAnswersTheCommand() {
        PersonalityStack s = vm.stack("vmware");
        GuestPortIo io = s.portIo(0x5658).orElseThrow();
        Random rnd = new Random(4_0003);
        Set<Integer> known = Set.of(10, 45, 68, 91);
        for (int i = 0; i < 20_000; i++) {
            FakeContext c = randomContext(rnd, 2);
            boolean magic = rnd.nextInt(4) != 0;
            if (magic) c.regs[RAX] = (rnd.nextBoolean() ? 0 : rnd.nextLong() << 32) | 0x564D5868L;
            if (rnd.nextBoolean()) c.regs[RCX] = (rnd.nextLong() & 0xFFFF_0000L) | new int[] {10, 45, 68, 91, 0, 11, 0xFFFF}[rnd.nextInt(7)];
            int size = new int[] {1, 2, 4, 4, 4}[rnd.nextInt(5)];
            long[] before = c.regs.clone();
            int cmd = (int) before[RCX] & 0xFFFF;
            String what = String.format("VMware IN%d eax 0x%x cmd %d", size * 8, before[RAX], cmd);
            long eax = timed(what, () -> io.in(c, 0x5658, size));
            timed("VMware OUT", () -> { io.out(c, 0x5658, size, before[RAX]); return null; });
            if (size != 4 || (int) before[RAX] != 0x564D5868) {
                assertEquals(size == 4 ? 0xFFFF_FFFFL : (1L << (size * 8)) - 1, eax, what + ": no backdoor without the magic");
                assertArrayEquals(before, c.regs, what + ": registers untouched");
            } else if (!known.contains(cmd)) {
                assertEquals(0xFFFF_FFFFL, eax, what + ": unknown command");
                assertArrayEquals(before, c.regs, what + ": registers untouched");
            } else if (cmd == 91) {
                assertTrue(eax == 0 || eax == 1, what + " returned " + eax);
                long pa = (c.regs[RSI] & 0xFFFF_FFFFL) << 32 | (c.regs[RDI] & 0xFFFF_FFFFL);
                if (eax == 1) assertTrue((pa & 63) == 0 && pa + 64 <= (1 << 20) && vm.env.isRam(pa, 64), what + " accepted 0x" + Long.toHexString(pa));
            } else {
                assertEquals(0, eax >>> 32, what + ": a 32-bit result");
            }
            s.addSteal(c.vcpu, 1 + rnd.nextInt(1000)); // steal updates go only to accepted areas
        }
        assertTrue(s.portIo(0x5659).isEmpty() && s.portIo(0x5657).isEmpty(), "only port 0x5658 is the backdoor");
    }

    @Test
    void vmwareVmcallBackdoorGarbage() {
        PersonalityStack s = vm.stack("vmware:backdoor=vmcall");
        Random rnd = new Random(4_0004);
        for (int i = 0; i < 10_000; i++) {
            FakeContext c = randomContext(rnd, 2);
            int cmd = (int) c.regs[RCX] & 0xFFFF;
            assertTrue(timed("VMware VMCALL " + cmd, () -> s.hypercall(c.vmcall())), "advertised VMCALL backdoor claims the call");
            if (cmd != 10 && cmd != 45 && cmd != 68 && cmd != 91) assertEquals(0xFFFF_FFFFL, c.rax(), "unknown command " + cmd);
            assertEquals(0, c.rax() >>> 32);
        }
        assertFalse(vm.stack("vmware").hypercall(new FakeContext(0).vmcall()), "port-only VMware: VMCALL is #UD");
    }

    // ---- Hyper-V and Xen MSRs ----

    @Test
    void hypervSyntheticMsrGarbageIsHandledOrGp() {
        HypervPersonality hv = vm.stack("hyperv").find(HypervPersonality.class).orElseThrow();
        Random rnd = new Random(4_0005);
        for (int i = 0; i < 20_000; i++) {
            int index = rnd.nextInt(3) == 0 ? rnd.nextInt() : 0x4000_0000 + rnd.nextInt(0x200);
            long value = rnd.nextBoolean() ? nastyPointer(rnd) : rnd.nextLong();
            int vcpu = rnd.nextInt(2);
            String what = String.format("Hyper-V wrmsr 0x%x <- 0x%x", index, value);
            MsrAccess w = timed(what, () -> hv.wrmsr(vcpu, index, value));
            MsrAccess r = timed("Hyper-V rdmsr", () -> hv.rdmsr(vcpu, index));
            boolean owned = index >= 0x4000_0000 && index <= 0x4000_01FF;
            assertEquals(!owned, w instanceof MsrAccess.NotHandled, what);
            assertEquals(!owned, r instanceof MsrAccess.NotHandled, what);
            if (index == 0x40000002 || index == 0x40000020 || index == 0x40000022 || index == 0x40000023)
                assertInstanceOf(MsrAccess.Gp.class, w, what + ": read-only MSR");
            if (index >= 0x40000090 && index <= 0x4000009F && (value & (1L << 16)) == 0 && (value & 0xFF) < 16)
                assertInstanceOf(MsrAccess.Gp.class, w, what + ": unmasked SINT with vector < 16");
            if ((index == 0x40000082 || index == 0x40000083) && (value & 1) != 0 && !vm.env.isRam(value & ~0xFFFL, 4096))
                assertInstanceOf(MsrAccess.Gp.class, w, what + ": SynIC page outside RAM");
            if (index == 0x40000002) assertEquals(new MsrAccess.Handled(vcpu), r, "VP index is the vCPU index");
            if (owned && index > 0x400000F0) assertInstanceOf(MsrAccess.Gp.class, r, what + ": unimplemented");
        }
        // Timers armed by garbage must neither throw nor run away when they fire.
        for (int t = 0; t < 50; t++) {
            long now = vm.clock.nanos() + t * 1_000_000L;
            timed("Hyper-V onTick", () -> { hv.onTick(now); return hv.nextDeadlineNs(); });
        }
    }

    @Test
    void xenHypercallPageMsrGarbage() {
        XenPersonality x = vm.stack("xen").find(XenPersonality.class).orElseThrow();
        Random rnd = new Random(4_0006);
        for (int i = 0; i < 5_000; i++) {
            int index = rnd.nextBoolean() ? 0x40000000 : rnd.nextInt(4) == 0 ? 0x40000200 : rnd.nextInt();
            long value = nastyPointer(rnd);
            String what = String.format("Xen wrmsr 0x%x <- 0x%x", index, value);
            MsrAccess w = timed(what, () -> x.wrmsr(0, index, value));
            if (index != 0x40000000) { assertInstanceOf(MsrAccess.NotHandled.class, w, what); continue; }
            boolean valid = (value & 0xFFF) == 0 && vm.env.isRam(value, 4096);
            assertEquals(valid ? MsrAccess.OK : MsrAccess.GP, w, what);
            if (valid) assertEquals(new MsrAccess.Handled(value), x.rdmsr(0, index));
        }
    }

    // ---- 32-bit, user-mode and MMIO-pointing callers of the Hyper-V and Xen hypercalls ----

    @Test
    void hypervAndXenHypercallsFromOddCallersNeverThrow() {
        HypervPersonality hv = vm.stack("hyperv").find(HypervPersonality.class).orElseThrow();
        hv.wrmsr(0, 0x40000000, 0x8100_0000_0000_0000L);
        XenPersonality x = vm.stack("xen").find(XenPersonality.class).orElseThrow();
        Random rnd = new Random(4_0007);
        Set<Long> hvStatus = Set.of(0L, 2L, 3L, 4L, 5L);
        for (int i = 0; i < 20_000; i++) {
            FakeContext c = randomContext(rnd, 2);
            if (rnd.nextBoolean()) { // a real call code with reps/fast bits scrambled, in the calling convention's register
                long control = new long[] {2, 3, 8, 0x13, 0x14, 0x0B, 0x15}[rnd.nextInt(7)] | (rnd.nextLong() & 0x0FFF_0FFF_0001_0000L);
                if (c.longMode) c.regs[RCX] = control; else { c.regs[RDX] = control >>> 32; c.regs[RAX] = control & 0xFFFF_FFFFL; }
            }
            boolean handled = timed("Hyper-V hypercall", () -> hv.hypercall(c.vmcall()));
            assertEquals(c.cpl == 0, handled, "CPL 3 Hyper-V hypercalls raise #UD, CPL 0 ones return a status");
            if (handled) {
                long st = c.longMode ? c.rax() & 0xFFFF : c.rax() & 0xFFFF;
                assertTrue(hvStatus.contains(st), "HV_STATUS " + st);
            }
            FakeContext xc = randomContext(rnd, 2);
            if (rnd.nextBoolean()) xc.regs[RAX] = rnd.nextInt(40);
            assertTrue(timed("Xen hypercall", () -> x.hypercall(xc.vmcall())));
            long r = result(xc);
            long nr = xc.regs[RAX];
            if (xc.cpl != 0) assertEquals(-1, r, "Xen -EPERM from user mode");
            else assertTrue(r <= 0 || (nr & 0xFFFF_FFFFL) == 17, "Xen hypercall " + nr + " returned " + r);
        }
    }

    @Test
    void everyStackRoutesRandomMsrsWithoutThrowing() {
        Random rnd = new Random(4_0008);
        for (String spec : new String[] {"bare", "kvm", "hyperv", "xen", "vmware", "hyperv+kvm", "xen:base=0x40000100"}) {
            PersonalityStack s = vm.stack(spec);
            for (int i = 0; i < 3_000; i++) {
                int index = rnd.nextBoolean() ? rnd.nextInt() : 0x4000_0000 + rnd.nextInt(0x300);
                long value = nastyPointer(rnd);
                int vcpu = i & 1;
                MsrAccess w = timed(spec + " wrmsr", () -> s.wrmsr(vcpu, index, value));
                MsrAccess r = timed(spec + " rdmsr", () -> s.rdmsr(vcpu, index));
                assertNotNull(w);
                assertNotNull(r);
                if (spec.equals("bare") || spec.equals("vmware")) {
                    assertInstanceOf(MsrAccess.NotHandled.class, w, spec + " owns no MSRs");
                    assertInstanceOf(MsrAccess.NotHandled.class, r, spec + " owns no MSRs");
                }
            }
            for (int t = 0; t < 20; t++) {
                long now = vm.clock.nanos() + t * 10_000_000L;
                timed(spec + " tick", () -> { s.onTick(now); s.addSteal(0, 1000); return s.nextDeadlineNs(); });
            }
        }
    }
}

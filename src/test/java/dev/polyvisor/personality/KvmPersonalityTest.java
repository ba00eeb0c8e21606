package dev.polyvisor.personality;

import dev.polyvisor.personality.core.MsrAccess;
import dev.polyvisor.personality.core.Pvclock;
import org.junit.jupiter.api.AfterEach;
import org.junit.jupiter.api.Test;

import static dev.polyvisor.personality.FakeContext.*;
import static dev.polyvisor.personality.kvm.KvmAbi.*;
import static org.junit.jupiter.api.Assertions.*;

/** KVM ABI per pv-abi.md 4; guest side arch/x86/kernel/kvm.c, kvmclock.c; host side arch/x86/kvm/x86.c, lapic.c. */
class KvmPersonalityTest {
    final TestVm vm = new TestVm(4);

    @AfterEach void close() { vm.close(); }

    KvmPersonality kvm(String... disabled) { return vm.stack("kvm", disabled).find(KvmPersonality.class).orElseThrow(); }

    /** The guest's pvclock_clocksource_read (arch/x86/kernel/pvclock.c) over guest memory. */
    long guestPvclockRead(long pa, long tsc) {
        int version = vm.mem.ld32(pa);
        assertEquals(0, version & 1, "version must be even when the guest reads");
        long delta = tsc - vm.mem.ld64(pa + 8);
        int shift = (byte) vm.mem.ld8(pa + 28);
        int mul = vm.mem.ld32(pa + 24);
        return vm.mem.ld64(pa + 16) + new Pvclock.Scale(mul, shift).scaleDelta(delta);
    }

    @Test
    void systemTimeMsrFillsAValidPvtiSynchronously() {
        KvmPersonality k = kvm();
        assertEquals(MsrAccess.OK, k.wrmsr(1, MSR_SYSTEM_TIME_NEW, 0x2040 | 1));
        long pa = 0x2040;
        assertEquals(2, vm.mem.ld32(pa), "version: odd during the update, even after (0 → 1 → 2)");
        assertEquals(vm.clock.tscAt(vm.clock.now), vm.mem.ld64(pa + 8), "tsc_timestamp");
        assertEquals(vm.clock.now, vm.mem.ld64(pa + 16), "system_time");
        assertEquals(3435973836L, Integer.toUnsignedLong(vm.mem.ld32(pa + 24)), "mul for 2.5 GHz (pv-abi.md 2.5)");
        assertEquals(-1, (byte) vm.mem.ld8(pa + 28), "shift for 2.5 GHz");
        assertEquals(Pvclock.FLAG_TSC_STABLE, vm.mem.ld8(pa + 29), "flags: stable bit");
        assertEquals(0x2041, ((MsrAccess.Handled) k.rdmsr(1, MSR_SYSTEM_TIME_NEW)).value());
        // A second registration bumps the version by two again.
        k.wrmsr(1, MSR_SYSTEM_TIME_NEW, 0x2040 | 1);
        assertEquals(4, vm.mem.ld32(pa));
    }

    @Test
    void guestClockReadFromPvtiTracksTheVirtualClock() {
        KvmPersonality k = kvm();
        k.wrmsr(0, MSR_SYSTEM_TIME, 0x3000 | 1); // legacy MSR 0x12 works the same way
        for (long step : new long[] {0, 1, 999, 1_000_000_007L, 3_600_000_000_000L}) {
            vm.clock.advance(step);
            long guest = guestPvclockRead(0x3000, vm.clock.tsc());
            assertTrue(Math.abs(guest - vm.clock.now) <= 2 + vm.clock.now / 1_000_000_000L,
                    "pvclock " + guest + " vs clock " + vm.clock.now);
        }
        assertEquals(TestVm.TSC_HZ / 1000, Pvclock.tscKhz(Pvclock.scaleFor(TestVm.TSC_HZ)));
    }

    @Test
    void wallClockIsUtcAtPvclockZero() {
        KvmPersonality k = kvm();
        k.wrmsr(0, MSR_WALL_CLOCK_NEW, 0x4000);
        long atZero = TestVm.UTC_AT_START; // utc(now) - clock(now)
        assertEquals(2, vm.mem.ld32(0x4000));
        assertEquals(atZero / 1_000_000_000L, Integer.toUnsignedLong(vm.mem.ld32(0x4004)));
        assertEquals(atZero % 1_000_000_000L, vm.mem.ld32(0x4008));
    }

    @Test
    void stealRecordCountsReportedStealWithEvenVersion() {
        KvmPersonality k = kvm();
        assertEquals(MsrAccess.GP, k.wrmsr(2, MSR_STEAL_TIME, 0x5000 | 0x2 | 1), "bits 5:1 reserved");
        assertEquals(MsrAccess.OK, k.wrmsr(2, MSR_STEAL_TIME, 0x5000 | 1));
        int v0 = vm.mem.ld32(0x5000 + STEAL_OFF_VERSION);
        assertEquals(0, v0 & 1);
        k.addSteal(2, 1500);
        k.addSteal(2, 500);
        assertEquals(2000, vm.mem.ld64(0x5000));
        assertEquals(v0 + 4, vm.mem.ld32(0x5000 + STEAL_OFF_VERSION));
        assertEquals(0, vm.mem.ld8(0x5000 + STEAL_OFF_PREEMPTED), "preempted is never set");
        k.addSteal(1, 700); // another vCPU without a record: counted, nothing written here
        assertEquals(2000, vm.mem.ld64(0x5000));
        assertEquals(700, k.stealNs(1));
    }

    @Test
    void pvEoiPollControlAndAsyncPfValidateTheirValues() {
        KvmPersonality k = kvm();
        assertEquals(MsrAccess.GP, k.wrmsr(0, MSR_PV_EOI_EN, 0x6002 | 1), "EOI word must be 4-byte aligned");
        assertEquals(MsrAccess.OK, k.wrmsr(0, MSR_PV_EOI_EN, 0x6004 | 1));
        assertEquals(0x6005, ((MsrAccess.Handled) k.rdmsr(0, MSR_PV_EOI_EN)).value());
        assertEquals(1, ((MsrAccess.Handled) k.rdmsr(0, MSR_POLL_CONTROL)).value(), "reset value 1");
        assertEquals(MsrAccess.OK, k.wrmsr(0, MSR_POLL_CONTROL, 0));
        assertEquals(MsrAccess.GP, k.wrmsr(0, MSR_POLL_CONTROL, 2));
        assertEquals(MsrAccess.OK, k.wrmsr(0, MSR_ASYNC_PF_EN, 0), "disable accepted");
        assertEquals(MsrAccess.GP, k.wrmsr(0, MSR_ASYNC_PF_EN, 0x7000 | 1), "enable refused: async PF is not offered");
        assertEquals(MsrAccess.GP, k.rdmsr(0, 0x4b564d42), "unimplemented MSR in the KVM range");
        assertInstanceOf(MsrAccess.NotHandled.class, k.rdmsr(0, 0x1B), "APIC base is not KVM's");
    }

    @Test
    void disablingClocksourceClearsBothBitsAndMakesTheMsrsGp() {
        PersonalityStack s = vm.stack("kvm", "kvm.clocksource");
        KvmPersonality k = s.find(KvmPersonality.class).orElseThrow();
        int features = s.cpuidTable(dev.polyvisor.cpu.model.CpuModel.qemu64(), 4).cpuid(0, 0x40000001, 0)[0];
        assertEquals(0, features & (1 << FEATURE_CLOCKSOURCE | 1 << FEATURE_CLOCKSOURCE2));
        assertEquals(KvmPersonality.implementedFeatures() & ~(1 << FEATURE_CLOCKSOURCE | 1 << FEATURE_CLOCKSOURCE2), features,
                "only those two bits go");
        for (int msr : new int[] {MSR_WALL_CLOCK, MSR_SYSTEM_TIME, MSR_WALL_CLOCK_NEW, MSR_SYSTEM_TIME_NEW}) {
            assertEquals(MsrAccess.GP, k.wrmsr(0, msr, 0x2001));
            assertEquals(MsrAccess.GP, k.rdmsr(0, msr));
        }
        assertEquals(0, vm.mem.ld32(0x2000), "nothing written");
        assertEquals(MsrAccess.OK, k.wrmsr(0, MSR_STEAL_TIME, 0x5001), "other elements stay");
    }

    @Test
    void kickIsStickyUntilTheNextHlt() {
        KvmPersonality k = kvm();
        FakeContext c = new FakeContext(0).set(RAX, HC_KICK_CPU).set(RBX, 0).set(RCX, 3);
        assertTrue(k.hypercall(c.vmcall()));
        assertEquals(0, c.rax());
        assertTrue(vm.injector.events.contains("wake 3"));
        assertTrue(k.kicked(3));
        assertFalse(k.consumeUnhalt(2));
        assertTrue(k.consumeUnhalt(3), "the next HLT returns at once, whatever IF says");
        assertFalse(k.consumeUnhalt(3), "consumed");
        c.set(RAX, HC_KICK_CPU).set(RCX, 99);
        k.hypercall(c.vmcall());
        assertEquals(0, c.rax(), "unknown APIC ID ignored");
    }

    @Test
    void sendIpiDeliversToEachBitAndCounts() {
        KvmPersonality k = kvm();
        FakeContext c = new FakeContext(0).set(RAX, HC_SEND_IPI).set(RBX, 0b1011).set(RCX, 0).set(RDX, 0).set(RSI, 0xF2);
        k.hypercall(c.vmcall());
        assertEquals(3, c.rax());
        assertEquals(java.util.List.of("fixed 0 0xf2", "fixed 1 0xf2", "fixed 3 0xf2"), vm.injector.events);
        vm.injector.events.clear();
        c.set(RAX, HC_SEND_IPI).set(RBX, 0b11).set(RDX, 2).set(RSI, 0x400); // NMI, APIC IDs 2 and 3
        k.hypercall(c.vmcall());
        assertEquals(2, c.rax());
        assertEquals(java.util.List.of("nmi 2", "nmi 3"), vm.injector.events);
        c.set(RAX, HC_SEND_IPI).set(RBX, 1).set(RDX, 0).set(RSI, 0x800 | 0xF2); // logical destination
        k.hypercall(c.vmcall());
        assertEquals(EINVAL, c.rax());
        c.set(RAX, HC_SEND_IPI).set(RBX, 1).set(RSI, 0xC0000 | 0xF2); // all-excluding-self shorthand
        k.hypercall(c.vmcall());
        assertEquals(EINVAL, c.rax());
    }

    @Test
    void unknownDisabledAndUserHypercallsGetKvmErrors() {
        KvmPersonality k = kvm("kvm.pv-sched-yield");
        FakeContext c = new FakeContext(0).set(RAX, 0xDEAD_BEEF_1234L);
        assertTrue(k.hypercall(c.vmcall()), "never #UD for the KVM personality");
        assertEquals(ENOSYS, c.rax());
        c.set(RAX, -1);
        k.hypercall(c.vmcall());
        assertEquals(ENOSYS, c.rax());
        c.set(RAX, HC_SCHED_YIELD).set(RBX, 1);
        k.hypercall(c.vmcall());
        assertEquals(ENOSYS, c.rax(), "disabled element → -KVM_ENOSYS");
        c.cpl = 3;
        c.set(RAX, HC_KICK_CPU);
        k.hypercall(c.vmcall());
        assertEquals(EPERM, c.rax(), "CPL 3 → -KVM_EPERM");
        c.cpl = 0;
        c.longMode = false;
        c.set(RAX, 0x1_0000_0000L | HC_SCHED_YIELD); // upper half ignored outside 64-bit mode
        kvm().hypercall(c.vmcall());
        assertEquals(0, c.rax());
        c.set(RAX, 77);
        k.hypercall(c.vmcall());
        assertEquals(ENOSYS & 0xFFFF_FFFFL, c.rax(), "32-bit result");
    }

    @Test
    void structuresAimedAtMmioOrOutsideRamAreNotWritten() {
        java.util.List<String> writes = new java.util.ArrayList<>();
        vm.mem.addMmio(new dev.polyvisor.memory.MmioRegion("probe", 0x70000, 0x1000, new dev.polyvisor.memory.MmioHandler() {
            @Override public long read(long offset, int size) { return 0; }
            @Override public void write(long offset, int size, long value) { writes.add(offset + "=" + value); }
        }));
        KvmPersonality k = kvm();
        assertEquals(MsrAccess.OK, k.wrmsr(0, MSR_SYSTEM_TIME_NEW, 0x70000 | 1), "accepted, like KVM, but nothing written");
        assertEquals(MsrAccess.OK, k.wrmsr(0, MSR_WALL_CLOCK_NEW, 0x70100));
        assertEquals(MsrAccess.OK, k.wrmsr(0, MSR_STEAL_TIME, 0x70040 | 1));
        k.addSteal(0, 10);
        assertEquals(MsrAccess.OK, k.wrmsr(0, MSR_SYSTEM_TIME_NEW, 0x7FFF_FFFF_FFFF_FFC1L));
        assertEquals(MsrAccess.OK, k.wrmsr(0, MSR_SYSTEM_TIME_NEW, (1 << 20) - 16 + 1), "straddles the end of RAM");
        assertEquals(java.util.List.of(), writes);
    }

    @Test
    void pvUnhaltLetsAHaltWithInterruptsOffEndOnlyWhenThereIsAnotherVcpuToKick() {
        try (TestVm two = new TestVm(2); TestVm one = new TestVm(1)) {
            assertTrue(two.stack("kvm").canUnhalt(2));
            assertFalse(two.stack("kvm", "kvm.pv-unhalt").canUnhalt(2));
            assertFalse(one.stack("kvm").canUnhalt(1));
            assertFalse(two.stack("hyperv").canUnhalt(2));
        }
    }
}

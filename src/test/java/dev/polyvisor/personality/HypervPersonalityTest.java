package dev.polyvisor.personality;

import dev.polyvisor.cpu.model.CpuModel;
import dev.polyvisor.personality.core.MsrAccess;
import dev.polyvisor.personality.hyperv.ReferenceTscPage;
import dev.polyvisor.personality.hyperv.SynicHost;
import org.junit.jupiter.api.AfterEach;
import org.junit.jupiter.api.Test;

import java.util.List;

import static dev.polyvisor.personality.FakeContext.*;
import static dev.polyvisor.personality.hyperv.HvAbi.*;
import static org.junit.jupiter.api.Assertions.*;

/**
 * Hyper-V per pv-abi.md 5: guest side arch/x86/kernel/cpu/mshyperv.c, arch/x86/hyperv/*,
 * drivers/clocksource/hyperv_timer.c; host semantics from arch/x86/kvm/hyperv.c and the TLFS headers.
 */
class HypervPersonalityTest {
    final TestVm vm = new TestVm(3);

    @AfterEach void close() { vm.close(); }

    HypervPersonality hv(String... disabled) { return vm.stack("hyperv", disabled).find(HypervPersonality.class).orElseThrow(); }

    static long value(MsrAccess a) { return ((MsrAccess.Handled) a).value(); }

    @Test
    void leavesSatisfyMsHypervPlatformDetection() {
        CpuidTable t = vm.stack("hyperv").cpuidTable(CpuModel.qemu64(), 3);
        int[] r = t.cpuid(0, 0x40000000, 0);
        assertEquals("Microsoft Hv", CpuidTableTest.signature(r));
        assertTrue(r[0] >= 0x40000005 && r[0] <= 0x4000FFFF);
        assertEquals(0x4000000A, r[0]);
        assertEquals(INTERFACE_HV1, t.cpuid(0, 0x40000001, 0)[0]);
        int[] f = t.cpuid(0, 0x40000003, 0);
        assertEquals(0x60, f[0] & 0x60, "HYPERCALL (5) and VP_INDEX (6) available: required");
        assertEquals(1 << 1 | 1 << 2 | 1 << 3 | 1 << 5 | 1 << 6 | 1 << 9 | 1 << 10 | 1 << 11, f[0]);
        assertEquals(1 << B_POST_MESSAGES | 1 << B_SIGNAL_EVENTS, f[1], "group B: PostMessages, SignalEvents; never CREATE_PARTITIONS");
        assertEquals(0, f[0] & 1 << 15, "no ACCESS_TSC_INVARIANT: keep the TSC page clocksource");
        assertEquals(1 << 8 | 1 << 19, f[3]);
        assertEquals(1 << 2 | 1 << 10 | 1 << 11, t.cpuid(0, 0x40000004, 0)[0]);
        assertEquals(-1, t.cpuid(0, 0x40000004, 0)[1]);
        assertEquals(3, t.cpuid(0, 0x40000005, 0)[0]);
        assertArrayEquals(new int[4], t.cpuid(0, 0x4000000A, 0));
    }

    @Test
    void hyperVPlusKvmPutsKvmAtTheSecondBaseWhereLinuxPicksIt() {
        CpuidTable t = vm.stack("hyperv+kvm").cpuidTable(CpuModel.qemu64(), 3);
        assertEquals("Microsoft Hv", CpuidTableTest.signature(t.cpuid(0, 0x40000000, 0)));
        assertEquals("KVMKVMKVM\0\0\0", CpuidTableTest.signature(t.cpuid(0, 0x40000100, 0)));
        assertEquals(0x40000101, t.cpuid(0, 0x40000100, 0)[0]);
        assertEquals(0x40000100, CpuidTableTest.linuxCpuidBase(t, "KVMKVMKVM\0\0\0", 0));
        assertEquals(0x01003AEB, t.cpuid(0, 0x40000101, 0)[0]);
        assertEquals(0, t.cpuid(0, 0x80000007, 0)[3] & 1 << 8, "KVM wins (highest base) and hides invariant TSC");
        assertArrayEquals(new int[4], t.cpuid(0, 0x40000200, 0));
    }

    @Test
    void hypercallPageNeedsAGuestOsIdAndContainsVmmcallRet() {
        PersonalityStack s = vm.stack("hyperv+kvm");
        HypervPersonality h = s.find(HypervPersonality.class).orElseThrow();
        h.wrmsr(0, MSR_HYPERCALL, 0x9000 | 1);
        assertEquals(0, value(h.rdmsr(0, MSR_HYPERCALL)) & 1, "refused while GUEST_OS_ID is 0");
        assertEquals(0, vm.mem.ld32(0x9000));
        FakeContext kvmCall = new FakeContext(0).set(RAX, 11).set(RBX, 0);
        assertTrue(s.hypercall(kvmCall.vmcall()));
        assertEquals(0, kvmCall.rax(), "before Hyper-V is initialised, VMCALL goes to KVM (SCHED_YIELD → 0)");

        h.wrmsr(0, MSR_GUEST_OS_ID, 0x8100_0006_01C0_0000L);
        h.wrmsr(0, MSR_HYPERCALL, 0x9000 | 0x7E | 1); // reserved bits 11:1 preserved
        assertEquals(0x907F, value(h.rdmsr(0, MSR_HYPERCALL)));
        assertArrayEquals(new byte[] {0x0F, 0x01, (byte) 0xD9, (byte) 0xC3}, vm.mem.readBytes(0x9000, 4));
        FakeContext hvCall = new FakeContext(0).set(RCX, 0x9999);
        assertTrue(s.hypercall(hvCall.vmcall()));
        assertEquals(STATUS_INVALID_HYPERCALL_CODE, hvCall.rax(), "now Hyper-V owns VMCALL");
    }

    @Test
    void referenceTscPageGivesTheClockIn100nsUnits() {
        HypervPersonality h = hv();
        assertEquals(vm.clock.now / 100, value(h.rdmsr(0, MSR_TIME_REF_COUNT)));
        h.wrmsr(0, MSR_REFERENCE_TSC, 0xA000 | 1);
        int seq = vm.mem.ld32(0xA000);
        assertNotEquals(0, seq, "sequence 0 would mean 'invalid, use the MSR'");
        long scale = vm.mem.ld64(0xA008), offset = vm.mem.ld64(0xA010);
        assertEquals(ReferenceTscPage.scale(TestVm.TSC_HZ), scale);
        assertEquals(Long.parseUnsignedLong("73786976294838206"), scale, "floor(2^64 * 1e7 / 2.5e9)");
        for (long step : new long[] {0, 100, 12_345_678, 86_400_000_000_000L}) {
            vm.clock.advance(step);
            long guest = ReferenceTscPage.referenceTime(vm.clock.tsc(), scale, offset);
            assertEquals(vm.clock.now / 100, guest, 1, "ref time after " + step);
            assertEquals(value(h.rdmsr(1, MSR_TIME_REF_COUNT)), guest, 1, "agrees with MSR 0x40000020");
        }
        h.wrmsr(0, MSR_REFERENCE_TSC, 0xA000 | 1);
        assertEquals(seq + 1, vm.mem.ld32(0xA000), "re-enabling publishes a new sequence");
    }

    @Test
    void readOnlyAndFrequencyMsrs() {
        HypervPersonality h = hv();
        assertEquals(TestVm.TSC_HZ, value(h.rdmsr(0, MSR_TSC_FREQUENCY)));
        assertEquals(1_000_000_000L, value(h.rdmsr(0, MSR_APIC_FREQUENCY)));
        assertEquals(2, value(h.rdmsr(2, MSR_VP_INDEX)));
        assertEquals(MsrAccess.GP, h.wrmsr(0, MSR_VP_INDEX, 5));
        assertEquals(MsrAccess.GP, h.wrmsr(0, MSR_TSC_FREQUENCY, 5));
        assertEquals(MsrAccess.GP, h.wrmsr(0, MSR_SVERSION, 5));
        assertEquals(1, value(h.rdmsr(0, MSR_SVERSION)));
        assertEquals(MsrAccess.GP, h.rdmsr(0, 0x40000118), "TSC_INVARIANT_CONTROL is not offered");
        assertEquals(MsrAccess.OK, h.wrmsr(1, MSR_VP_ASSIST_PAGE, 0xB001));
        assertInstanceOf(MsrAccess.NotHandled.class, h.rdmsr(0, 0x4b564d01));
    }

    @Test
    void guestIdleBlocksIgnoringIf() {
        HypervPersonality h = hv();
        assertEquals(0, value(h.rdmsr(1, MSR_GUEST_IDLE)));
        assertEquals(List.of("block 1 ignoreIf"), vm.injector.events);
        assertEquals(MsrAccess.GP, hv("hyperv.guest-idle").rdmsr(1, MSR_GUEST_IDLE));
    }

    @Test
    void directModeStimerFiresTheVectorOnceAndClearsEnable() {
        HypervPersonality h = hv();
        long config = 1 | 8 | (0xED << 4) | (1L << 12); // enable | auto_enable | vector 0xED | direct, as hv_stimer_init
        h.wrmsr(1, MSR_STIMER0_CONFIG, config);
        long now = vm.clock.now / 100;
        h.wrmsr(1, MSR_STIMER0_CONFIG + 1, now + 500); // hv_ce_set_next_event: absolute ref time
        assertEquals((now + 500) * 100, h.nextDeadlineNs());
        h.onTick(vm.clock.now + 499 * 100);
        assertTrue(vm.injector.events.isEmpty());
        h.onTick(vm.clock.now + 500 * 100);
        assertEquals(List.of("fixed 1 0xed"), vm.injector.events);
        assertEquals(0, value(h.rdmsr(1, MSR_STIMER0_CONFIG)) & 1, "one-shot clears enable");
        h.onTick(vm.clock.now + 10_000 * 100);
        assertEquals(1, vm.injector.events.size());
        // Writing a new count re-arms it (auto_enable); writing 0 disables.
        h.wrmsr(1, MSR_STIMER0_CONFIG + 1, now + 600);
        assertEquals(1, value(h.rdmsr(1, MSR_STIMER0_CONFIG)) & 1);
        h.wrmsr(1, MSR_STIMER0_CONFIG + 1, 0);
        assertEquals(0, value(h.rdmsr(1, MSR_STIMER0_CONFIG)) & 1);
        assertEquals(Long.MAX_VALUE, h.nextDeadlineNs());
    }

    @Test
    void periodicStimerRearms() {
        HypervPersonality h = hv();
        h.wrmsr(0, MSR_STIMER0_CONFIG + 2, 1 | 2 | (0x40 << 4) | (1L << 12)); // stimer1: enable periodic direct
        h.wrmsr(0, MSR_STIMER0_CONFIG + 3, 1000);                             // period 100 µs
        long t0 = vm.clock.now;
        h.onTick(t0 + 100_000);
        h.onTick(t0 + 200_000);
        assertEquals(List.of("fixed 0 0x40", "fixed 0 0x40"), vm.injector.events);
        assertEquals(1, value(h.rdmsr(0, MSR_STIMER0_CONFIG + 2)) & 1);
    }

    @Test
    void messageModeStimerPostsToTheSimpSlotAndRetriesOnEom() {
        HypervPersonality h = hv();
        assertEquals(MsrAccess.GP, h.wrmsr(0, MSR_SINT0 + 2, 5), "unmasked SINT with vector < 16");
        h.wrmsr(0, MSR_SCONTROL, 1);
        h.wrmsr(0, MSR_SIMP, 0xC000 | 1);
        h.wrmsr(0, MSR_SINT0 + 2, 0x50);
        h.wrmsr(0, MSR_STIMER0_CONFIG, 1 | (2L << 16)); // enable, message mode via SINT2
        long now = vm.clock.now / 100;
        h.wrmsr(0, MSR_STIMER0_CONFIG + 1, now + 10);
        h.onTick(vm.clock.now + 1000);
        long slot = 0xC000 + 2 * MESSAGE_SIZE;
        assertEquals(HVMSG_TIMER_EXPIRED, vm.mem.ld32(slot));
        assertEquals(TIMER_PAYLOAD_SIZE, vm.mem.ld8(slot + 4));
        assertEquals(0, vm.mem.ld32(slot + 16), "timer index");
        assertEquals(now + 10, vm.mem.ld64(slot + 24), "expiration time");
        assertEquals(List.of("fixed 0 0x50"), vm.injector.events);
        // The slot is still busy: the next expiry sets msg_pending and waits for EOM.
        h.wrmsr(0, MSR_STIMER0_CONFIG, 1 | (2L << 16));
        h.wrmsr(0, MSR_STIMER0_CONFIG + 1, now + 20);
        h.onTick(vm.clock.now + 2000);
        assertEquals(1, vm.mem.ld8(slot + 5) & 1, "msg_pending");
        assertEquals(1, vm.injector.events.size());
        assertEquals(Long.MAX_VALUE, h.nextDeadlineNs(),
                "a timer held back by a busy slot waits for EOM: no deadline in the past for the VMM to re-arm at");
        vm.mem.st32(slot, HVMSG_NONE); // guest consumed the message
        h.wrmsr(0, MSR_EOM, 0);
        assertEquals(2, vm.injector.events.size());
        assertEquals(now + 20, vm.mem.ld64(slot + 24));
        // Message mode without a SINT is refused (KVM clears enable).
        h.wrmsr(0, MSR_STIMER0_CONFIG + 4, 1);
        assertEquals(0, value(h.rdmsr(0, MSR_STIMER0_CONFIG + 4)) & 1);
    }

    @Test
    void disablingStimerClearsItsBitsAndMsrs() {
        CpuidTable t = vm.stack("hyperv", "hyperv.stimer").cpuidTable(CpuModel.qemu64(), 3);
        int[] f = t.cpuid(0, 0x40000003, 0);
        assertEquals(0, f[0] & 1 << A_SYNTIMER);
        assertEquals(0, f[3] & 1 << D_STIMER_DIRECT);
        assertNotEquals(0, f[0] & 1 << A_SYNIC, "SynIC stays");
        HypervPersonality h = hv("hyperv.stimer");
        for (int m = MSR_STIMER0_CONFIG; m <= MSR_STIMER3_COUNT; m++) assertEquals(MsrAccess.GP, h.wrmsr(0, m, 0));
    }

    // ---- hypercalls ----

    long call(HypervPersonality h, long control, long in, long out) {
        FakeContext c = new FakeContext(0).set(RCX, control).set(RDX, in).set(R8, out);
        assertTrue(h.hypercall(c.vmcall()));
        return c.rax();
    }

    HypervPersonality initialised() {
        HypervPersonality h = hv();
        h.wrmsr(0, MSR_GUEST_OS_ID, 0x8100_0006_01C0_0000L);
        h.wrmsr(0, MSR_HYPERCALL, 0x9000 | 1);
        return h;
    }

    @Test
    void clusterIpiFastAndSlowAndEx() {
        HypervPersonality h = initialised();
        assertEquals(STATUS_SUCCESS, call(h, CALL_SEND_IPI | 1 << 16, 0xF7, 0b110));
        assertEquals(List.of("fixed 1 0xf7", "fixed 2 0xf7"), vm.injector.events);
        vm.injector.events.clear();
        vm.mem.st32(0xD000, 0xF3);
        vm.mem.st64(0xD008, 0b1);
        assertEquals(STATUS_SUCCESS, call(h, CALL_SEND_IPI, 0xD000, 0));
        assertEquals(List.of("fixed 0 0xf3"), vm.injector.events);
        vm.injector.events.clear();
        vm.mem.st32(0xD100, 0xF2);
        vm.mem.st64(0xD108, VPSET_SPARSE_4K);
        vm.mem.st64(0xD110, 1);        // bank 0 valid
        vm.mem.st64(0xD118, 0b101);    // VPs 0 and 2
        assertEquals(STATUS_SUCCESS, call(h, CALL_SEND_IPI_EX | 1L << 17, 0xD100, 0));
        assertEquals(List.of("fixed 0 0xf2", "fixed 2 0xf2"), vm.injector.events);
        assertEquals(STATUS_INVALID_PARAMETER, call(h, CALL_SEND_IPI | 1 << 16, 0x0F, 1), "vector below 0x10");
        assertEquals(STATUS_INVALID_HYPERCALL_INPUT, call(h, CALL_SEND_IPI_EX, 0xD100, 0), "bank count exceeds the variable header");
    }

    @Test
    void flushListIsARepCallReportingAllRepsCompleted() {
        HypervPersonality h = initialised();
        vm.mem.st64(0xE000, 0);      // address space
        vm.mem.st64(0xE008, 0);      // flags
        vm.mem.st64(0xE010, 0b011);  // VPs 0, 1
        long control = CALL_FLUSH_VA_LIST | 5L << 32;
        long r = call(h, control, 0xE000, 0);
        assertEquals(STATUS_SUCCESS, r & 0xFFFF);
        assertEquals(5, (r >>> 32) & 0xFFF, "reps completed = rep count, else the guest loops");
        assertEquals(List.of("flush 0", "flush 1"), vm.injector.events);
        vm.injector.events.clear();
        vm.mem.st64(0xE008, FLUSH_ALL_PROCESSORS);
        assertEquals(STATUS_SUCCESS, call(h, CALL_FLUSH_VA_SPACE, 0xE000, 0));
        assertEquals(List.of("flush 0", "flush 1", "flush 2"), vm.injector.events);
        assertEquals(STATUS_INVALID_HYPERCALL_INPUT, call(h, CALL_FLUSH_VA_LIST, 0xE000, 0), "rep call with rep count 0");
        assertEquals(STATUS_INVALID_HYPERCALL_INPUT, call(h, CALL_FLUSH_VA_SPACE | 2L << 32, 0xE000, 0), "rep count on a simple call");
    }

    @Test
    void malformedHypercallsGetStatusCodesAndNeverThrow() {
        HypervPersonality h = initialised();
        assertEquals(STATUS_INVALID_HYPERCALL_CODE, call(h, 0x7777, 0, 0));
        assertEquals(STATUS_INVALID_HYPERCALL_CODE, call(h, 0x0046, 0xD000, 0xD800), "GetPartitionId is not offered");
        assertEquals(STATUS_INVALID_HYPERCALL_INPUT, call(h, CALL_SEND_IPI | 1L << 30, 0xD000, 0), "reserved control bits");
        assertEquals(STATUS_INVALID_ALIGNMENT, call(h, CALL_SEND_IPI, 0xD004, 0));
        assertEquals(STATUS_INVALID_HYPERCALL_INPUT, call(h, CALL_SEND_IPI, 0x7FFF_FFF8L, 0), "input page outside RAM");
        assertEquals(STATUS_INVALID_HYPERCALL_INPUT, call(h, CALL_FLUSH_VA_SPACE | 3 << 17, 0xE000, 0), "variable header on a non-Ex call");
        assertEquals(STATUS_SUCCESS, call(h, CALL_NOTIFY_LONG_SPIN_WAIT | 1 << 16, 100, 0));
        java.util.Random rnd = new java.util.Random(42);
        for (int i = 0; i < 2000; i++) {
            long s = call(h, rnd.nextLong(), rnd.nextLong(), rnd.nextLong()) & 0xFFFF;
            assertTrue(s == 0 || s == 2 || s == 3 || s == 4 || s == 5, "status " + s);
        }
        FakeContext user = new FakeContext(0).set(RCX, CALL_SEND_IPI);
        user.cpl = 3;
        assertFalse(h.hypercall(user.vmcall()), "CPL 3 → #UD");
        HypervPersonality noIpi = hv("hyperv.cluster-ipi");
        noIpi.wrmsr(0, MSR_GUEST_OS_ID, 1);
        assertEquals(STATUS_INVALID_HYPERCALL_CODE, call(noIpi, CALL_SEND_IPI | 1 << 16, 0xF7, 1), "disabled element");
    }

    @Test
    void thirtyTwoBitCallingConvention() {
        HypervPersonality h = initialised();
        FakeContext c = new FakeContext(0).set(RDX, 5).set(RAX, CALL_FLUSH_VA_LIST).set(RBX, 0).set(RCX, 0xE000);
        vm.mem.st64(0xE008, FLUSH_ALL_PROCESSORS);
        c.longMode = false;
        assertTrue(h.hypercall(c.vmcall()));
        assertEquals(0, c.rax());
        assertEquals(5, c.reg(RDX), "reps completed in EDX bits 11:0");
    }

    // ---- SynIC host side: AutoEOI, messages, event flags, HvPostMessage / HvSignalEvent ----

    @Test
    void autoEoiVectorsFollowTheUnmaskedSintsWithAutoEoi() {
        HypervPersonality h = hv();
        h.wrmsr(1, MSR_SINT0 + 3, 0xB3 | SINT_AUTO_EOI);
        assertEquals(List.of(0xB3), vm.injector.autoEoi.get(1));
        h.wrmsr(1, MSR_SINT0 + 4, 0xB4);
        h.wrmsr(1, MSR_SINT0 + 5, 0xB5 | SINT_AUTO_EOI | SINT_MASKED);
        assertEquals(List.of(0xB3), vm.injector.autoEoi.get(1), "plain and masked SINTs add nothing");
        h.wrmsr(1, MSR_SINT0 + 3, 0xB3 | SINT_MASKED);
        assertEquals(List.of(), vm.injector.autoEoi.get(1), "masking removes it (KVM synic_update_vector)");
        assertNull(vm.injector.autoEoi.get(0), "per vCPU");
    }

    @Test
    void raisedSintDeliversItsVectorUnlessMasked() {
        HypervPersonality h = hv();
        assertFalse(h.raiseSint(0, 2), "SINTs start masked");
        h.wrmsr(0, MSR_SINT0 + 2, 0x60);
        assertTrue(h.raiseSint(0, 2));
        assertEquals(List.of("fixed 0 0x60"), vm.injector.events);
        assertFalse(h.raiseSint(3, 0), "no VP 3");
        assertFalse(h.raiseSint(0, 16), "no SINT 16");
        assertFalse(h.routable(-1, 0));
    }

    @Test
    void postedMessageFillsTheSlotAndABusySlotGetsMsgPending() {
        HypervPersonality h = hv();
        byte[] payload = {1, 2, 3, 4, 5, 6, 7, 8};
        assertEquals(SynicHost.PostResult.NO_MESSAGE_PAGE, h.postMessage(1, 8, 0x1234, payload));
        h.wrmsr(1, MSR_SIMP, 0xC000 | 1);
        h.wrmsr(1, MSR_SINT0 + 8, 0xB0 | SINT_AUTO_EOI);
        long slot = 0xC000 + 8 * MESSAGE_SIZE;
        vm.mem.st64(slot + 16 + 8, -1); // stale payload beyond the new one is cleared
        assertEquals(SynicHost.PostResult.POSTED, h.postMessage(1, 8, 0x1234, payload));
        assertEquals(0x1234, vm.mem.ld32(slot));
        assertEquals(8, vm.mem.ld8(slot + 4), "payload_size");
        assertEquals(0x0807060504030201L, vm.mem.ld64(slot + 16));
        assertEquals(0, vm.mem.ld64(slot + 24));
        assertEquals(List.of("fixed 1 0xb0"), vm.injector.events);
        assertEquals(SynicHost.PostResult.SLOT_BUSY, h.postMessage(1, 8, 0x9999, new byte[8]));
        assertEquals(0x1234, vm.mem.ld32(slot), "the busy slot keeps its message");
        assertEquals(MESSAGE_FLAG_PENDING, vm.mem.ld8(slot + 5));
        assertEquals(1, vm.injector.events.size(), "no interrupt for a message not posted");
        assertEquals(SynicHost.PostResult.NO_MESSAGE_PAGE, h.postMessage(1, 8, 1, new byte[241]), "payload over 240 bytes");
    }

    @Test
    void eomTellsAckListenersOfEverySintOfThatVp() {
        HypervPersonality h = hv();
        List<String> acks = new java.util.ArrayList<>();
        h.addSintAckListener((vp, sint) -> acks.add(vp + ":" + sint));
        h.wrmsr(2, MSR_EOM, 0);
        assertEquals(SINTS, acks.size());
        assertEquals("2:0", acks.getFirst());
        assertEquals("2:15", acks.getLast());
    }

    @Test
    void eventFlagIsSetOnceAndRaisesTheSintOnlyWhenNew() {
        HypervPersonality h = hv();
        assertFalse(h.setEventFlag(0, 9, 0x20), "no SIEFP page yet");
        h.wrmsr(0, MSR_SIEFP, 0xD000 | 1);
        assertFalse(h.setEventFlag(0, 9, 0x20), "SCONTROL disabled");
        h.wrmsr(0, MSR_SCONTROL, 1);
        h.wrmsr(0, MSR_SINT0 + 9, 0xB1 | SINT_AUTO_EOI);
        assertTrue(h.setEventFlag(0, 9, 0x41));
        assertEquals(1L << 1, vm.mem.ld64(0xD000 + 9 * EVENT_FLAGS_SLOT_SIZE + 8), "flag 0x41: word 1, bit 1");
        assertTrue(h.setEventFlag(0, 9, 0x41));
        assertEquals(List.of("fixed 0 0xb1"), vm.injector.events, "an already-set flag raises nothing");
        assertFalse(h.setEventFlag(0, 9, EVENT_FLAGS_COUNT));
    }

    @Test
    void postMessageHypercallReachesTheConnectionHandler() {
        HypervPersonality h = initialised();
        List<String> got = new java.util.ArrayList<>();
        assertTrue(h.setMessageHandler(0x10, (type, payload) -> {
            got.add(Integer.toHexString(type) + " " + payload.length + " " + payload[0]);
            return STATUS_SUCCESS;
        }));
        assertFalse(h.setMessageHandler(0x10, (t, p) -> 0), "connection id taken");
        vm.mem.st32(0xE000, 0x7F00_0010); // bits above 23 are not part of the connection id
        vm.mem.st32(0xE008, 0x12345678);
        vm.mem.st32(0xE00C, 8);
        vm.mem.st8(0xE010, 42);
        assertEquals(STATUS_SUCCESS, call(h, CALL_POST_MESSAGE, 0xE000, 0));
        assertEquals(List.of("12345678 8 42"), got);
        vm.mem.st32(0xE00C, 241);
        assertEquals(STATUS_INVALID_HYPERCALL_INPUT, call(h, CALL_POST_MESSAGE, 0xE000, 0), "payload over 240 bytes");
        vm.mem.st32(0xE00C, 8);
        vm.mem.st32(0xE000, 0x11);
        assertEquals(STATUS_INVALID_CONNECTION_ID, call(h, CALL_POST_MESSAGE, 0xE000, 0));
        assertEquals(STATUS_INVALID_HYPERCALL_CODE, call(h, CALL_POST_MESSAGE | 1 << 16, 0xE000, 0), "no fast form");
        assertEquals(STATUS_INVALID_ALIGNMENT, call(h, CALL_POST_MESSAGE, 0xE004, 0));
        assertEquals(STATUS_INSUFFICIENT_MEMORY, call(h, CALL_POST_MESSAGE, 0x7FFF_FF00L, 0), "input outside RAM");
        assertTrue(h.setMessageHandler(0x10, null));
        vm.mem.st32(0xE000, 0x10);
        assertEquals(STATUS_INVALID_CONNECTION_ID, call(h, CALL_POST_MESSAGE, 0xE000, 0), "handler removed");
    }

    @Test
    void signalEventHypercallFastAndSlow() {
        HypervPersonality h = initialised();
        int[] runs = {0};
        assertTrue(h.setEventHandler(0x21, () -> runs[0]++));
        assertEquals(STATUS_SUCCESS, call(h, CALL_SIGNAL_EVENT | 1 << 16, 0x21, 0));
        vm.mem.st64(0xE000, 0x21);
        assertEquals(STATUS_SUCCESS, call(h, CALL_SIGNAL_EVENT, 0xE000, 0));
        assertEquals(2, runs[0]);
        assertEquals(STATUS_INVALID_CONNECTION_ID, call(h, CALL_SIGNAL_EVENT | 1 << 16, 0x1234, 0),
                "what kvm-unit-tests probes: anything but INVALID_HYPERCALL_CODE means the call exists");
        assertEquals(STATUS_INVALID_PORT_ID, call(h, CALL_SIGNAL_EVENT | 1 << 16, 0x1_0000_0021L, 0), "flag number bits 47:32");
        assertEquals(STATUS_INVALID_HYPERCALL_INPUT, call(h, CALL_SIGNAL_EVENT | 1 << 16, 0x100_0021L, 0), "reserved bits 31:24");
        assertEquals(STATUS_INVALID_HYPERCALL_INPUT, call(h, CALL_SIGNAL_EVENT | 1 << 16 | 1L << 32, 0x21, 0), "rep count");
        assertEquals(2, runs[0]);
        HypervPersonality off = hv("hyperv.synic-connections");
        off.wrmsr(0, MSR_GUEST_OS_ID, 1);
        assertEquals(STATUS_INVALID_HYPERCALL_CODE, call(off, CALL_SIGNAL_EVENT | 1 << 16, 0x21, 0), "disabled element");
        assertEquals(0, vm.stack("hyperv", "hyperv.synic-connections").cpuidTable(CpuModel.qemu64(), 3).cpuid(0, 0x40000003, 0)[1]);
    }

    @Test
    void hypervTestdevMessageToABusySlotArrivesAfterEom() {
        HypervPersonality h = initialised();
        var dev = new dev.polyvisor.personality.hyperv.HypervTestdev(h);
        h.wrmsr(1, MSR_SIMP, 0xC000 | 1);
        h.wrmsr(1, MSR_SCONTROL, 1);
        dev.write(4, 0x10L << 24 | 4 << 16 | 1 << 8 | 8);   // MSG_CONN_CREATE vp 1, SINT 8, connection 0x10
        h.wrmsr(1, MSR_SINT0 + 8, 0xB0 | SINT_AUTO_EOI);
        vm.mem.st32(0xE000, 0x10);
        vm.mem.st32(0xE008, 0x12345678);
        vm.mem.st32(0xE00C, 8);
        vm.mem.st64(0xE010, 1);
        assertEquals(STATUS_SUCCESS, call(h, CALL_POST_MESSAGE, 0xE000, 0)); // from vCPU 0 to VP 1
        long slot = 0xC000 + 8 * MESSAGE_SIZE;
        assertEquals(1, vm.mem.ld64(slot + 16));
        vm.mem.st64(0xE010, 2);
        assertEquals(STATUS_SUCCESS, call(h, CALL_POST_MESSAGE, 0xE000, 0));
        assertEquals(1, vm.mem.ld64(slot + 16), "slot busy: the old message stays");
        assertEquals(MESSAGE_FLAG_PENDING, vm.mem.ld8(slot + 5));
        assertEquals(STATUS_INSUFFICIENT_BUFFERS, call(h, CALL_POST_MESSAGE, 0xE000, 0));
        vm.mem.st32(slot, HVMSG_NONE);
        h.wrmsr(1, MSR_EOM, 0);
        assertEquals(0x12345678, vm.mem.ld32(slot));
        assertEquals(2, vm.mem.ld64(slot + 16), "the staged message is delivered on EOM");
        assertEquals(0, vm.mem.ld8(slot + 5), "msg_pending cleared");
        assertEquals(List.of("fixed 1 0xb0", "fixed 1 0xb0"), vm.injector.events);
    }
}

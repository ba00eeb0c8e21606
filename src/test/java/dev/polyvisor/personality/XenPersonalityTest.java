package dev.polyvisor.personality;

import dev.polyvisor.cpu.model.CpuModel;
import dev.polyvisor.personality.core.MsrAccess;
import dev.polyvisor.personality.core.Pvclock;
import org.junit.jupiter.api.AfterEach;
import org.junit.jupiter.api.Test;

import java.util.List;

import static dev.polyvisor.personality.FakeContext.*;
import static dev.polyvisor.personality.xen.XenAbi.*;
import static org.junit.jupiter.api.Assertions.*;

/**
 * Xen HVM per pv-abi.md 6; guest side arch/x86/xen/{enlighten_hvm,time,spinlock}.c,
 * drivers/xen/events/events_2l.c; interface headers include/xen/interface/*.h.
 */
class XenPersonalityTest {
    /** Kernel-style virtual addresses: linear 0xffff888000000000 + pa maps to pa (Linux's direct map). */
    static final long DIRECT = 0xffff_8880_0000_0000L;
    static final long SHINFO = 0x10000, ARG = 0x20000;

    final TestVm vm = new TestVm(3);

    @AfterEach void close() { vm.close(); }

    XenPersonality xen(String... disabled) { return vm.stack("xen", disabled).find(XenPersonality.class).orElseThrow(); }

    FakeContext ctx(int vcpu) {
        FakeContext c = new FakeContext(vcpu);
        for (long p = 0; p < (1 << 20); p += 4096) c.map(DIRECT + p, p);
        return c;
    }

    /** Issues hypercall {@code nr} with args in RDI, RSI, RDX, R10, R8 from {@code vcpu}; returns RAX. */
    long call(XenPersonality x, int vcpu, long nr, long... args) {
        FakeContext c = ctx(vcpu).set(RAX, nr);
        int[] regs = {RDI, RSI, RDX, R10, R8};
        for (int i = 0; i < args.length; i++) c.set(regs[i], args[i]);
        assertTrue(x.hypercall(c.vmcall()));
        return c.rax();
    }

    long mapSharedInfo(XenPersonality x) {
        vm.mem.st16(ARG, DOMID_SELF);
        vm.mem.st32(ARG + 4, XENMAPSPACE_SHARED_INFO);
        vm.mem.st64(ARG + 8, 0);
        vm.mem.st64(ARG + 16, SHINFO >> 12);
        return call(x, 0, HC_MEMORY_OP, XENMEM_ADD_TO_PHYSMAP, DIRECT + ARG);
    }

    long hvmParam(XenPersonality x, int op, int index, long value) {
        vm.mem.st16(ARG, DOMID_SELF);
        vm.mem.st32(ARG + 4, index);
        vm.mem.st64(ARG + 8, value);
        return call(x, 0, HC_HVM_OP, op, DIRECT + ARG);
    }

    int bindVirq(XenPersonality x, int virq, int vcpu) {
        vm.mem.st32(ARG, virq);
        vm.mem.st32(ARG + 4, vcpu);
        long r = call(x, vcpu, HC_EVENT_CHANNEL_OP, EVTCHNOP_BIND_VIRQ, DIRECT + ARG);
        return r == 0 ? vm.mem.ld32(ARG + 8) : (int) r;
    }

    int bindIpi(XenPersonality x, int vcpu) {
        vm.mem.st32(ARG, vcpu);
        long r = call(x, vcpu, HC_EVENT_CHANNEL_OP, EVTCHNOP_BIND_IPI, DIRECT + ARG);
        return r == 0 ? vm.mem.ld32(ARG + 4) : (int) r;
    }

    long evtchn(XenPersonality x, int cmd, int port) {
        vm.mem.st32(ARG + 0x100, port);
        return call(x, 0, HC_EVENT_CHANNEL_OP, cmd, DIRECT + ARG + 0x100);
    }

    XenPersonality ready() { return ready(vm.stack("xen")); }

    XenPersonality ready(PersonalityStack stack) {
        XenPersonality x = stack.find(XenPersonality.class).orElseThrow();
        assertEquals(0, mapSharedInfo(x));
        assertEquals(0, hvmParam(x, HVMOP_SET_PARAM, HVM_PARAM_CALLBACK_IRQ, (2L << 56) | CALLBACK_VECTOR));
        return x;
    }

    @Test
    void signatureVersionAndVcpuIdLeaves() {
        CpuidTable t = vm.stack("xen").cpuidTable(CpuModel.qemu64(), 3);
        int[] r = t.cpuid(0, 0x40000000, 0);
        assertEquals("XenVMMXenVMM", CpuidTableTest.signature(r));
        assertEquals(0x40000004, r[0], "EAX - base >= 2 (xen_cpuid_base) and base+4 exists");
        assertEquals(0x40000000, CpuidTableTest.linuxCpuidBase(t, "XenVMMXenVMM", 2));
        assertEquals(VERSION, t.cpuid(0, 0x40000001, 0)[0]);
        assertArrayEquals(new int[] {1, MSR_HYPERCALL_PAGE, 0, 0}, t.cpuid(0, 0x40000002, 0));
        assertArrayEquals(new int[] {8, 2, 0, 0}, t.cpuid(2, 0x40000004, 0), "VCPU_ID_PRESENT, EBX = vCPU id");
        assertArrayEquals(new int[4], vm.stack("xen", "xen.vcpu-id").cpuidTable(CpuModel.qemu64(), 3).cpuid(2, 0x40000004, 0));
    }

    @Test
    void behindViridianXenSitsAtTheSecondBaseWithTheMovedMsr() {
        PersonalityStack s = vm.stack("hyperv+xen");
        CpuidTable t = s.cpuidTable(CpuModel.qemu64(), 3);
        assertEquals(0x40000100, CpuidTableTest.linuxCpuidBase(t, "XenVMMXenVMM", 2));
        assertEquals(0x40000104, t.cpuid(0, 0x40000100, 0)[0]);
        assertEquals(MSR_HYPERCALL_PAGE_VIRIDIAN, t.cpuid(0, 0x40000102, 0)[1]);
        assertEquals(MsrAccess.OK, s.wrmsr(0, MSR_HYPERCALL_PAGE_VIRIDIAN, 0x30000));
        assertInstanceOf(MsrAccess.Handled.class, s.rdmsr(0, 0x40000000), "0x40000000 is Hyper-V's GUEST_OS_ID");
        assertEquals(0x40000200, CpuidTableTest.linuxCpuidBase(vm.stack("xen:base=0x40000200").cpuidTable(CpuModel.qemu64(), 3), "XenVMMXenVMM", 2));
    }

    @Test
    void xenVersionAndFeatures() {
        XenPersonality x = xen();
        assertEquals(VERSION, call(x, 0, HC_XEN_VERSION, XENVER_VERSION, 0));
        vm.mem.st32(ARG, 0);
        assertEquals(0, call(x, 0, HC_XEN_VERSION, XENVER_GET_FEATURES, DIRECT + ARG));
        assertEquals(1 << 2 | 1 << 8 | 1 << 9, vm.mem.ld32(ARG + 4));
        vm.mem.st32(ARG, 1);
        call(x, 0, HC_XEN_VERSION, XENVER_GET_FEATURES, DIRECT + ARG);
        assertEquals(0, vm.mem.ld32(ARG + 4), "submap 1 is empty");
        assertEquals(0, call(x, 0, HC_XEN_VERSION, XENVER_EXTRAVERSION, DIRECT + ARG));
        assertEquals(".0-polyvisor", new String(vm.mem.readBytes(ARG, 12)));
        assertEquals(4096, call(x, 0, HC_XEN_VERSION, XENVER_PAGESIZE, 0));
        XenPersonality noCallback = xen("xen.callback-vector");
        vm.mem.st32(ARG, 0);
        call(noCallback, 0, HC_XEN_VERSION, XENVER_GET_FEATURES, DIRECT + ARG);
        assertEquals(1 << 2, vm.mem.ld32(ARG + 4), "bit 9 is withdrawn with bit 8");
        assertEquals(ENOSYS, hvmParam(noCallback, HVMOP_SET_PARAM, HVM_PARAM_CALLBACK_IRQ, (2L << 56) | 0xF3));
    }

    @Test
    void sharedInfoMappingWritesValidTimeAndWallClock() {
        XenPersonality x = xen();
        assertEquals(0, mapSharedInfo(x));
        for (int v = 0; v < 3; v++) {
            long pvti = SHINFO + v * VCPU_INFO_SIZE + VI_TIME;
            assertEquals(0, vm.mem.ld32(pvti) & 1, "even version");
            assertNotEquals(0, vm.mem.ld32(pvti + Pvclock.OFF_MUL), "mul != 0 (pvclock_tsc_khz divides by it)");
            assertEquals(vm.clock.now, vm.mem.ld64(pvti + Pvclock.OFF_SYSTEM_TIME));
            assertEquals(Pvclock.FLAG_TSC_STABLE, vm.mem.ld8(pvti + Pvclock.OFF_FLAGS));
        }
        assertEquals(TestVm.UTC_AT_START / 1_000_000_000L, Integer.toUnsignedLong(vm.mem.ld32(SHINFO + SHINFO_WC + 4)));
        assertEquals(0, vm.mem.ld32(SHINFO + SHINFO_WC) & 1);
    }

    @Test
    void sharedInfoMappingRejectsBadArguments() {
        XenPersonality x = xen();
        vm.mem.st16(ARG, 5);
        vm.mem.st64(ARG + 16, SHINFO >> 12);
        assertEquals(ESRCH, call(x, 0, HC_MEMORY_OP, XENMEM_ADD_TO_PHYSMAP, DIRECT + ARG), "foreign domain");
        vm.mem.st16(ARG, DOMID_SELF);
        vm.mem.st64(ARG + 16, 0x7_0000_0000L);
        assertEquals(EINVAL, call(x, 0, HC_MEMORY_OP, XENMEM_ADD_TO_PHYSMAP, DIRECT + ARG), "gpfn outside RAM");
        vm.mem.st64(ARG + 16, -1L);
        assertEquals(EINVAL, call(x, 0, HC_MEMORY_OP, XENMEM_ADD_TO_PHYSMAP, DIRECT + ARG));
        assertEquals(EFAULT, call(x, 0, HC_MEMORY_OP, XENMEM_ADD_TO_PHYSMAP, 0xDEAD_0000L), "unmapped argument pointer");
        assertEquals(EFAULT, call(x, 0, HC_MEMORY_OP, XENMEM_ADD_TO_PHYSMAP, DIRECT + (1 << 20) - 8), "argument runs off the mapping");
        assertEquals(ENOSYS, call(x, 0, HC_MEMORY_OP, 99, DIRECT + ARG));
    }

    @Test
    void ipiEventReachesTheBoundVcpuThroughSelectorAndUpcall() {
        XenPersonality x = ready();
        int port = bindIpi(x, 1);
        assertTrue(port > 0);
        assertEquals(0, evtchn(x, EVTCHNOP_SEND, port));
        assertNotEquals(0, vm.mem.ld64(SHINFO + SHINFO_EVTCHN_PENDING) & 1L << port, "pending bit");
        long vi1 = SHINFO + VCPU_INFO_SIZE;
        assertEquals(1, vm.mem.ld64(vi1 + VI_PENDING_SEL), "selector bit for word 0");
        assertEquals(1, vm.mem.ld8(vi1 + VI_UPCALL_PENDING));
        assertEquals(List.of("upcall 1 0xf3"), vm.injector.events);
        assertTrue(x.upcallPending(1));
        assertFalse(x.upcallPending(0));
        // Sending again while pending changes nothing (edge semantics).
        evtchn(x, EVTCHNOP_SEND, port);
        assertEquals(1, vm.injector.events.size());
    }

    /** A LAPIC stand-in with one pending vector. */
    static final class OneVector implements dev.polyvisor.cpu.InterruptSource {
        int vector = -1;
        @Override public boolean hasPending() { return vector >= 0; }
        @Override public int acknowledge() { int v = vector; vector = -1; return v; }
    }

    @Test
    void callbackVectorIsTakenAheadOfTheLapicWhileUpcallPendingAndNeedsNoEoi() {
        PersonalityStack stack = vm.stack("xen");
        XenPersonality x = ready(stack);
        OneVector lapic = new OneVector();
        dev.polyvisor.cpu.InterruptSource line = stack.interruptSource(1, lapic);
        assertFalse(line.hasPending());
        lapic.vector = 0x30;
        int port = bindIpi(x, 1);
        evtchn(x, EVTCHNOP_SEND, port);
        assertTrue(line.hasPending());
        assertEquals(CALLBACK_VECTOR, line.acknowledge(), "the upcall comes first (KVM kvm_cpu_has_extint)");
        // Level-like: taken again until the guest clears evtchn_upcall_pending; the LAPIC vector stays queued.
        assertEquals(CALLBACK_VECTOR, line.acknowledge());
        vm.mem.st8(SHINFO + VCPU_INFO_SIZE + VI_UPCALL_PENDING, 0);
        assertEquals(0x30, line.acknowledge());
        assertFalse(line.hasPending());
        // Another vCPU's line does not see vCPU 1's upcall.
        vm.mem.st8(SHINFO + VCPU_INFO_SIZE + VI_UPCALL_PENDING, 1);
        assertFalse(stack.interruptSource(0, new OneVector()).hasPending());
    }

    @Test
    void withoutXenTheLapicIsTheInterruptSource() {
        OneVector lapic = new OneVector();
        assertSame(lapic, vm.stack("kvm").interruptSource(0, lapic));
    }

    @Test
    void maskedPortStaysQuietUntilUnmasked() {
        XenPersonality x = ready();
        int port = bindIpi(x, 2);
        vm.mem.st64(SHINFO + SHINFO_EVTCHN_MASK, 1L << port);
        evtchn(x, EVTCHNOP_SEND, port);
        assertTrue(vm.injector.events.isEmpty());
        assertEquals(0, vm.mem.ld64(SHINFO + 2 * VCPU_INFO_SIZE + VI_PENDING_SEL));
        assertEquals(0, evtchn(x, EVTCHNOP_UNMASK, port));
        assertEquals(0, vm.mem.ld64(SHINFO + SHINFO_EVTCHN_MASK) & 1L << port);
        assertEquals(List.of("upcall 2 0xf3"), vm.injector.events);
    }

    @Test
    void closingAPortClearsItsPendingBitSoAReboundPortStartsIdle() {
        XenPersonality x = ready();
        int ipi = bindIpi(x, 0);
        assertEquals(0, evtchn(x, EVTCHNOP_SEND, ipi));
        assertEquals(1, vm.mem.ld64(SHINFO + SHINFO_EVTCHN_PENDING) >>> ipi & 1, "sent: pending");
        assertEquals(0, evtchn(x, EVTCHNOP_CLOSE, ipi));
        assertEquals(0, vm.mem.ld64(SHINFO + SHINFO_EVTCHN_PENDING) >>> ipi & 1, "Xen free_evtchn clears pending on close");
        assertEquals(ipi, bindVirq(x, VIRQ_TIMER, 0), "the port is reused");
    }

    @Test
    void eventChannelErrors() {
        XenPersonality x = ready();
        int timer = bindVirq(x, VIRQ_TIMER, 0);
        assertTrue(timer > 0);
        assertEquals(EEXIST, bindVirq(x, VIRQ_TIMER, 0));
        assertEquals(EINVAL, bindVirq(x, 99, 0));
        vm.mem.st32(ARG, 0);
        vm.mem.st32(ARG + 4, 7);
        assertEquals(ENOENT, call(x, 0, HC_EVENT_CHANNEL_OP, EVTCHNOP_BIND_VIRQ, DIRECT + ARG), "no vCPU 7");
        assertEquals(EINVAL, evtchn(x, EVTCHNOP_SEND, timer), "VIRQ ports cannot be sent to");
        assertEquals(EINVAL, evtchn(x, EVTCHNOP_SEND, 4095), "unbound port");
        assertEquals(EINVAL, evtchn(x, EVTCHNOP_SEND, -5));
        assertEquals(EINVAL, evtchn(x, EVTCHNOP_CLOSE, 0));
        assertEquals(0, evtchn(x, EVTCHNOP_CLOSE, timer));
        assertEquals(timer, bindVirq(x, VIRQ_TIMER, 0), "closed ports are reused");
        vm.mem.st32(ARG, timer);
        vm.mem.st32(ARG + 4, 1);
        assertEquals(EINVAL, call(x, 0, HC_EVENT_CHANNEL_OP, EVTCHNOP_BIND_VCPU, DIRECT + ARG), "per-vCPU VIRQ cannot move");
        assertEquals(ENOSYS, call(x, 0, HC_EVENT_CHANNEL_OP, EVTCHNOP_INIT_CONTROL, DIRECT + ARG), "FIFO declined: 2-level ABI");
        vm.mem.st16(ARG, DOMID_SELF);
        vm.mem.st32(ARG + 4, timer);
        assertEquals(0, call(x, 0, HC_EVENT_CHANNEL_OP, EVTCHNOP_STATUS, DIRECT + ARG));
        assertEquals(EVTCHNSTAT_VIRQ, vm.mem.ld32(ARG + 8));
        assertEquals(ENOSYS, call(xen("xen.event-channels"), 0, HC_EVENT_CHANNEL_OP, EVTCHNOP_BIND_IPI, DIRECT + ARG));
    }

    @Test
    void singleShotTimerRaisesVirqTimer() {
        XenPersonality x = ready();
        int port = bindVirq(x, VIRQ_TIMER, 1);
        long deadline = vm.clock.now + 1_000_000;
        vm.mem.st64(ARG + 0x200, deadline);
        vm.mem.st32(ARG + 0x208, 0);
        assertEquals(0, call(x, 1, HC_VCPU_OP, VCPUOP_SET_SINGLESHOT_TIMER, 1, DIRECT + ARG + 0x200));
        assertEquals(deadline, x.nextDeadlineNs());
        x.onTick(deadline - 1);
        assertTrue(vm.injector.events.isEmpty());
        x.onTick(deadline);
        assertNotEquals(0, vm.mem.ld64(SHINFO + SHINFO_EVTCHN_PENDING) & 1L << port);
        assertEquals(List.of("upcall 1 0xf3"), vm.injector.events);
        assertEquals(Long.MAX_VALUE, x.nextDeadlineNs(), "single shot");
        assertEquals(EINVAL, call(x, 0, HC_VCPU_OP, VCPUOP_SET_SINGLESHOT_TIMER, 1, DIRECT + ARG + 0x200), "only for the calling vCPU");
        vm.mem.st64(ARG + 0x200, vm.clock.now - 1);
        vm.mem.st32(ARG + 0x208, VCPU_SSHOTTMR_FUTURE);
        assertEquals(ETIME, call(x, 1, HC_VCPU_OP, VCPUOP_SET_SINGLESHOT_TIMER, 1, DIRECT + ARG + 0x200));
        vm.mem.st32(ARG + 0x208, 0);
        assertEquals(0, call(x, 1, HC_VCPU_OP, VCPUOP_SET_SINGLESHOT_TIMER, 1, DIRECT + ARG + 0x200));
        assertEquals(0, call(x, 1, HC_VCPU_OP, VCPUOP_STOP_SINGLESHOT_TIMER, 1, 0));
        assertEquals(Long.MAX_VALUE, x.nextDeadlineNs());
        assertEquals(0, call(x, 1, HC_VCPU_OP, VCPUOP_STOP_PERIODIC_TIMER, 1, 0));
        assertEquals(ENOENT, call(x, 1, HC_VCPU_OP, VCPUOP_STOP_PERIODIC_TIMER, 3, 0));
        assertEquals(0, call(x, 2, HC_SET_TIMER_OP, vm.clock.now + 5));
        assertEquals(vm.clock.now + 5, x.singleshotDeadline(2));
        assertEquals(0, call(x, 2, HC_SET_TIMER_OP, 0));
        assertEquals(-1, x.singleshotDeadline(2));
    }

    @Test
    void registeredVcpuInfoTakesOverTimeAndEvents() {
        XenPersonality x = ready();
        vm.injector.events.clear();
        long pa = 0x30040;
        vm.mem.st64(ARG, pa >> 12);
        vm.mem.st32(ARG + 8, (int) (pa & 0xFFF));
        assertEquals(0, call(x, 0, HC_VCPU_OP, VCPUOP_REGISTER_VCPU_INFO, 1, DIRECT + ARG));
        assertEquals(0, vm.mem.ld32(pa + VI_TIME) & 1);
        assertNotEquals(0, vm.mem.ld32(pa + VI_TIME + Pvclock.OFF_MUL));
        assertEquals(1, vm.mem.ld8(pa + VI_UPCALL_PENDING), "everything marked pending after the move");
        assertEquals(EINVAL, call(x, 0, HC_VCPU_OP, VCPUOP_REGISTER_VCPU_INFO, 1, DIRECT + ARG), "only once");
        vm.mem.st32(ARG + 8, 4040);
        assertEquals(EINVAL, call(x, 0, HC_VCPU_OP, VCPUOP_REGISTER_VCPU_INFO, 2, DIRECT + ARG), "crosses the page");
        vm.mem.st8(pa + VI_UPCALL_PENDING, 0);
        vm.mem.st64(pa + VI_PENDING_SEL, 0);
        int port = bindIpi(x, 1);
        evtchn(x, EVTCHNOP_SEND, port);
        assertEquals(1, vm.mem.ld8(pa + VI_UPCALL_PENDING), "events now go to the registered copy");
        assertEquals(0, vm.mem.ld8(SHINFO + VCPU_INFO_SIZE + VI_UPCALL_PENDING));
    }

    @Test
    void runstateReportsStealAsRunnableTime() {
        XenPersonality x = ready();
        long area = 0x31000;
        vm.mem.st64(ARG, DIRECT + area);
        assertEquals(0, call(x, 0, HC_VM_ASSIST, VMASST_CMD_ENABLE, VMASST_TYPE_RUNSTATE_UPDATE_FLAG));
        assertEquals(0, call(x, 0, HC_VCPU_OP, VCPUOP_REGISTER_RUNSTATE, 0, DIRECT + ARG));
        assertEquals(RUNSTATE_RUNNING, vm.mem.ld32(area));
        x.addSteal(0, 12_345);
        assertEquals(12_345, vm.mem.ld64(area + 16 + 8 * RUNSTATE_RUNNABLE));
        assertEquals(vm.clock.now - 12_345, vm.mem.ld64(area + 16));
        assertEquals(vm.clock.now, vm.mem.ld64(area + 8), "entry time without the update bit once written");
        vm.mem.st64(ARG, 0xDEAD_0000L);
        assertEquals(EFAULT, call(x, 0, HC_VCPU_OP, VCPUOP_REGISTER_RUNSTATE, 1, DIRECT + ARG), "untranslatable area");
        assertEquals(EINVAL, call(x, 0, HC_VM_ASSIST, VMASST_CMD_ENABLE, 2));
    }

    @Test
    void hypercallPageMsrWritesOneStubPerHypercall() {
        XenPersonality x = xen();
        assertEquals(MsrAccess.OK, x.wrmsr(0, MSR_HYPERCALL_PAGE, 0x40000));
        for (int nr : new int[] {0, 17, 24, 32, 127}) {
            byte[] stub = vm.mem.readBytes(0x40000 + 32L * nr, 9);
            assertArrayEquals(new byte[] {(byte) 0xB8, (byte) nr, 0, 0, 0, 0x0F, 0x01, (byte) 0xD9, (byte) 0xC3}, stub, "stub " + nr);
        }
        assertEquals((byte) 0xCC, vm.mem.readBytes(0x40000 + 32L * HC_IRET, 1)[0], "iret slot left as int3");
        assertEquals(MsrAccess.GP, x.wrmsr(0, MSR_HYPERCALL_PAGE, 0x40001), "page index 1 does not exist");
        assertEquals(MsrAccess.GP, x.wrmsr(0, MSR_HYPERCALL_PAGE, 0x7_0000_0000L));
        assertEquals(MsrAccess.GP, xen("xen.hypercall-page").wrmsr(0, MSR_HYPERCALL_PAGE, 0x40000));
    }

    @Test
    void schedOpPollBlockAndShutdown() {
        XenPersonality x = ready();
        int port = bindIpi(x, 0);
        vm.mem.st32(ARG + 0x300, port);
        vm.mem.st64(ARG, DIRECT + ARG + 0x300);
        vm.mem.st32(ARG + 8, 1);
        vm.mem.st64(ARG + 16, 0);
        assertEquals(0, call(x, 0, HC_SCHED_OP, SCHEDOP_POLL, DIRECT + ARG));
        assertEquals(List.of("block 0 ignoreIf"), vm.injector.events, "not pending: the vCPU blocks");
        vm.injector.events.clear();
        vm.mem.st64(SHINFO + SHINFO_EVTCHN_MASK, 1L << port); // the spinlock port is masked
        evtchn(x, EVTCHNOP_SEND, port);
        assertEquals(0, call(x, 0, HC_SCHED_OP, SCHEDOP_POLL, DIRECT + ARG));
        assertTrue(vm.injector.events.isEmpty(), "pending (even masked): returns at once");
        vm.mem.st32(ARG + 8, 129);
        assertEquals(EINVAL, call(x, 0, HC_SCHED_OP, SCHEDOP_POLL, DIRECT + ARG));
        vm.mem.st32(ARG, 0);
        assertEquals(0, call(x, 1, HC_SCHED_OP, SCHEDOP_BLOCK, 0));
        assertEquals(List.of("block 1"), vm.injector.events);
        vm.mem.st32(ARG, 1);
        assertEquals(0, call(x, 0, HC_SCHED_OP, SCHEDOP_SHUTDOWN, DIRECT + ARG));
        assertEquals("shutdown xen: guest requested reboot (SCHEDOP_shutdown)", vm.injector.events.getLast());
        vm.mem.st32(ARG, 77);
        assertEquals(EINVAL, call(x, 0, HC_SCHED_OP, SCHEDOP_SHUTDOWN, DIRECT + ARG));
        assertEquals(0, call(x, 0, HC_SCHED_OP, SCHEDOP_YIELD, 0));
    }

    @Test
    void hvmParams() {
        XenPersonality x = xen();
        for (int index : new int[] {1, 2, 17, 18}) {
            assertEquals(0, hvmParam(x, HVMOP_GET_PARAM, index, 0x55));
            assertEquals(0, vm.mem.ld64(ARG + 8), "param " + index);
        }
        assertEquals(EINVAL, hvmParam(x, HVMOP_GET_PARAM, 999, 0));
        assertEquals(EINVAL, hvmParam(x, HVMOP_SET_PARAM, HVM_PARAM_CALLBACK_IRQ, (2L << 56) | 0x05), "vector below 16");
        assertEquals(ENOSYS, hvmParam(x, HVMOP_SET_PARAM, HVM_PARAM_CALLBACK_IRQ, 9), "GSI routing not offered");
        assertEquals(0, hvmParam(x, HVMOP_SET_PARAM, HVM_PARAM_CALLBACK_IRQ, (2L << 56) | 0xF3));
        assertEquals(0xF3, x.callbackVectorInUse());
        assertEquals(0, hvmParam(x, HVMOP_GET_PARAM, HVM_PARAM_CALLBACK_IRQ, 0));
        assertEquals((2L << 56) | 0xF3, vm.mem.ld64(ARG + 8));
        assertEquals(ENOSYS, call(x, 0, HC_HVM_OP, 9, DIRECT + ARG), "pagetable_dying declined");
    }

    @Test
    void malformedHypercallsGetErrnosAndNeverThrow() {
        XenPersonality x = ready();
        assertEquals(ENOSYS, call(x, 0, 1234));
        assertEquals(ENOSYS, call(x, 0, -1));
        assertEquals(ENOSYS, call(x, 0, HC_GRANT_TABLE_OP, 0, 0, 0));
        FakeContext user = ctx(0).set(RAX, HC_XEN_VERSION);
        user.cpl = 3;
        x.hypercall(user.vmcall());
        assertEquals(EPERM, user.rax());
        java.util.Random rnd = new java.util.Random(7);
        int[] calls = {HC_MEMORY_OP, HC_XEN_VERSION, HC_VCPU_OP, HC_SCHED_OP, HC_EVENT_CHANNEL_OP, HC_HVM_OP, HC_VM_ASSIST, HC_SET_TIMER_OP};
        for (int i = 0; i < 3000; i++) {
            int nr = calls[rnd.nextInt(calls.length)];
            int sub = rnd.nextInt(16);
            if (nr == HC_SCHED_OP && sub == SCHEDOP_SHUTDOWN) continue;
            long ptr = rnd.nextBoolean() ? DIRECT + rnd.nextInt(1 << 20) : rnd.nextLong();
            long r = call(x, rnd.nextInt(3), nr, sub, rnd.nextBoolean() ? rnd.nextInt(4) : ptr, ptr);
            assertTrue(r <= 0 || nr == HC_XEN_VERSION, "hypercall " + nr + "/" + sub + " returned " + r);
        }
    }

    @Test
    void thirtyTwoBitCallerUsesEbxEcx() {
        XenPersonality x = xen();
        FakeContext c = ctx(0).set(RAX, HC_XEN_VERSION).set(RBX, XENVER_VERSION);
        c.longMode = false;
        x.hypercall(c.vmcall());
        assertEquals(VERSION, c.rax());
        c.set(RAX, 999);
        x.hypercall(c.vmcall());
        assertEquals(ENOSYS & 0xFFFF_FFFFL, c.rax());
    }

    @Test
    void platformUnplugPortsAnswerLinuxsHandshake() {
        // arch/x86/xen/platform-pci-unplug.c check_platform_magic: inw(0x10) == 0x49d2, inb(0x12) == 1, then
        // outw(product, 0x12), outl(build, 0x10), inw(0x10) again (0xd249 would blacklist), outw(mask, 0x10).
        var io = xen().portIo().orElseThrow();
        FakeContext c = ctx(0);
        assertTrue(io.claims(0x10) && io.claims(0x12) && !io.claims(0x14));
        assertEquals(0x49D2, io.in(c, 0x10, 2));
        assertEquals(1, io.in(c, 0x12, 1));
        io.out(c, 0x12, 2, 3);
        io.out(c, 0x10, 4, 1);
        assertEquals(0x49D2, io.in(c, 0x10, 2), "never blacklisted");
        io.out(c, 0x10, 2, 3);
        assertEquals("product 3, build 1, unplug mask 0x3",
                ((dev.polyvisor.personality.xen.XenPlatformPorts) io).driverReport());
        assertEquals(0xFFFF_FFFFL, io.in(c, 0x10, 4), "other sizes read like an unclaimed port");
        assertTrue(xen("xen.platform-unplug").portIo().isEmpty(), "disabled: the ports stay unclaimed");
    }
}

package dev.polyvisor.personality;

import dev.polyvisor.cpu.model.CpuModel;
import dev.polyvisor.personality.core.GuestPortIo;
import org.junit.jupiter.api.AfterEach;
import org.junit.jupiter.api.Test;

import static dev.polyvisor.personality.FakeContext.*;
import static dev.polyvisor.personality.vmware.VmwareAbi.*;
import static org.junit.jupiter.api.Assertions.*;

/** VMware backdoor per pv-abi.md 7; guest side arch/x86/kernel/cpu/vmware.c. */
class VmwarePersonalityTest {
    final TestVm vm = new TestVm(2);

    @AfterEach void close() { vm.close(); }

    FakeContext backdoor(int vcpu, int cmd) { return new FakeContext(vcpu).set(RAX, MAGIC).set(RCX, cmd).set(RBX, 0xFFFF_FFFFL).set(RDX, PORT); }

    @Test
    void signatureAndTimingLeaf() {
        CpuidTable t = vm.stack("vmware").cpuidTable(CpuModel.qemu64(), 2);
        int[] r = t.cpuid(0, 0x40000000, 0);
        assertEquals("VMwareVMware", CpuidTableTest.signature(r));
        assertEquals(0x40000010, r[0]);
        int[] timing = t.cpuid(0, 0x40000010, 0);
        assertEquals(TestVm.TSC_HZ / 1000, Integer.toUnsignedLong(timing[0]));
        assertEquals(1_000_000, timing[1], "bus kHz");
        assertEquals(0, timing[2], "port backdoor by default");
        assertEquals(ECX_VMMCALL, vm.stack("vmware:backdoor=vmmcall").cpuidTable(CpuModel.qemu64(), 2).cpuid(0, 0x40000010, 0)[2]);
    }

    @Test
    void getHzReturnsTscInEbxEaxAndBusInEcx() {
        GuestPortIo io = vm.stack("vmware").portIo(PORT).orElseThrow();
        FakeContext c = backdoor(0, CMD_GETHZ);
        long eax = io.in(c, PORT, 4);
        assertEquals(TestVm.TSC_HZ, (c.reg(RBX) << 32) | eax);
        assertEquals(PersonalityEnvDefaults.BUS_HZ, c.reg(RCX));
    }

    @Test
    void getVersionAnswersTheMagicAndWrongMagicLooksUnclaimed() {
        GuestPortIo io = vm.stack("vmware").portIo(PORT).orElseThrow();
        FakeContext c = backdoor(0, CMD_GETVERSION);
        assertEquals(VERSION, io.in(c, PORT, 4));
        assertEquals(MAGIC, c.reg(RBX));
        FakeContext bad = backdoor(0, CMD_GETVERSION).set(RAX, 0x1234);
        assertEquals(0xFFFF_FFFFL, io.in(bad, PORT, 4));
        assertEquals(0xFFFF_FFFFL, bad.reg(RBX), "EBX untouched: the guest sees no backdoor");
        assertEquals(0xFF, io.in(backdoor(0, CMD_GETVERSION), PORT, 1), "8-bit IN is not a backdoor call");
        assertEquals(0xFFFF_FFFFL, io.in(backdoor(0, 9999), PORT, 4), "unknown command");
        assertTrue(vm.stack("kvm").portIo(PORT).isEmpty(), "only the VMware personality claims the port");
    }

    @Test
    void stealClockCountsTscCyclesAfterEnable() {
        PersonalityStack s = vm.stack("vmware");
        GuestPortIo io = s.portIo(PORT).orElseThrow();
        FakeContext probe = backdoor(1, CMD_STEALCLOCK).set(RBX, 0).set(RSI, 0).set(RDI, 1);
        assertEquals(STEALCLOCK_DISABLED, io.in(probe, PORT, 4), "the probe (disable) says available");
        FakeContext enable = backdoor(1, CMD_STEALCLOCK).set(RBX, 0).set(RSI, 0).set(RDI, 0x8040);
        assertEquals(STEALCLOCK_ENABLED, io.in(enable, PORT, 4));
        s.addSteal(1, 1_000_000); // 1 ms at 2.5 GHz = 2.5M cycles
        assertEquals(2_500_000, vm.mem.ld64(0x8040));
        FakeContext misaligned = backdoor(0, CMD_STEALCLOCK).set(RBX, 0).set(RSI, 0).set(RDI, 0x8044);
        assertEquals(STEALCLOCK_DISABLED, io.in(misaligned, PORT, 4));
        FakeContext outside = backdoor(0, CMD_STEALCLOCK).set(RBX, 0).set(RSI, 7).set(RDI, 0);
        assertEquals(STEALCLOCK_DISABLED, io.in(outside, PORT, 4));
        GuestPortIo off = vm.stack("vmware", "vmware.steal-clock").portIo(PORT).orElseThrow();
        assertEquals(0xFFFF_FFFFL, off.in(backdoor(0, CMD_STEALCLOCK).set(RSI, 0).set(RDI, 1), PORT, 4), "-1: not available");
    }

    @Test
    void pseudoPerformanceCountersGiveTheMachineTscAndTimeWhileTheBackdoorIsOn() {
        PersonalityStack s = vm.stack("vmware");
        assertEquals(TestVm.TSC_HZ * 5, s.pseudoCounter(0, PMC_HOST_TSC).orElseThrow(), "TSC at t = 5 s");
        assertEquals(5_000_000_000L, s.pseudoCounter(1, PMC_REAL_TIME).orElseThrow());
        assertEquals(5_000_000_000L, s.pseudoCounter(1, PMC_APPARENT_TIME).orElseThrow());
        assertTrue(s.hasPseudoCounter(PMC_APPARENT_TIME));
        assertTrue(s.pseudoCounter(0, 0x10003).isEmpty(), "no fourth pseudo-counter");
        assertTrue(s.pseudoCounter(0, 0).isEmpty(), "a real counter index is not the personality's");
        assertTrue(vm.stack("kvm").pseudoCounter(0, PMC_HOST_TSC).isEmpty(), "only VMware defines them");
        assertFalse(vm.stack("vmware", "vmware.backdoor").hasPseudoCounter(PMC_HOST_TSC), "off with the backdoor");
    }

    @Test
    void onlyTheBackdoorPortIsOpenToUserMode() {
        GuestPortIo io = vm.stack("vmware").portIo(PORT).orElseThrow();
        assertTrue(io.openToAllPrivilegeLevels(PORT));
        assertFalse(vm.stack("vmware", "vmware.backdoor").portIo(PORT).orElseThrow().openToAllPrivilegeLevels(PORT),
                "with the backdoor switched off the port follows IOPL and the I/O bitmap");
    }

    @Test
    void vmcallModeOnlyWhenAdvertised() {
        PersonalityStack port = vm.stack("vmware");
        assertFalse(port.hypercall(backdoor(0, CMD_GETHZ).vmcall()), "#UD when the leaf selects the port");
        PersonalityStack vmcall = vm.stack("vmware:backdoor=vmcall");
        FakeContext c = backdoor(0, CMD_GETHZ).set(RDX, 0);
        assertTrue(vmcall.hypercall(c.vmcall()));
        assertEquals(TestVm.TSC_HZ, (c.reg(RBX) << 32) | c.rax());
        assertFalse(vm.stack("vmware:backdoor=vmcall", "vmware.timing-leaf").hypercall(backdoor(0, CMD_GETHZ).vmcall()));
    }

    /** The default LAPIC bus frequency the test VM uses. */
    static final class PersonalityEnvDefaults { static final long BUS_HZ = 1_000_000_000L; }
}

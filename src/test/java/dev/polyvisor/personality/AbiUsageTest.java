package dev.polyvisor.personality;

import dev.polyvisor.cpu.model.CpuModel;
import dev.polyvisor.personality.core.AbiUsage;
import dev.polyvisor.personality.core.AbiUsage.Kind;
import dev.polyvisor.personality.unknown.UnknownAbi;
import org.junit.jupiter.api.AfterEach;
import org.junit.jupiter.api.Test;

import java.util.List;

import static dev.polyvisor.personality.FakeContext.*;
import static org.junit.jupiter.api.Assertions.*;

/** The personality stack counts what the guest used, per personality, kind and number, attributed to elements. */
class AbiUsageTest {
    final TestVm vm = new TestVm(2);

    @AfterEach void close() { vm.close(); }

    private static long count(AbiUsage u, String p, Kind k, long n, int subop, String element) {
        return u.count(new AbiUsage.Key(p, k, n, subop, element));
    }

    @Test
    void kvmHypercallsMsrsAndTheInterruptsTheyCauseAreCountedAndAttributed() {
        PersonalityStack s = vm.stack("kvm");
        AbiUsage u = s.usage();
        // KVM_HC_SEND_IPI: bitmap 0b10 from APIC ID 0, vector 0xfb -> one fixed interrupt into vCPU 1.
        FakeContext c = new FakeContext(0).set(RAX, 10).set(RBX, 0b10).set(RCX, 0).set(RDX, 0).set(RSI, 0xfb);
        assertTrue(s.hypercall(c.vmcall()));
        assertEquals(1, count(u, "kvm", Kind.HYPERCALL, 10, AbiUsage.ANY, "kvm.pv-send-ipi"));
        assertEquals(1, count(u, "kvm", Kind.INJECT_FIXED, 0xfb, AbiUsage.ANY, "kvm.pv-send-ipi"), u.snapshot().toString());
        s.wrmsr(0, 0x4b564d01, 0x1001);
        s.rdmsr(0, 0x4b564d01);
        assertEquals(1, count(u, "kvm", Kind.WRMSR, 0x4b564d01L, AbiUsage.ANY, "kvm.clocksource"));
        assertEquals(1, count(u, "kvm", Kind.RDMSR, 0x4b564d01L, AbiUsage.ANY, "kvm.clocksource"));
        s.rdmsr(0, 0x10); // TSC: not the personality's
        assertEquals(0, u.total("kvm", Kind.RDMSR, 0x10));
        CpuidTable t = s.cpuidTable(CpuModel.qemu64(), 2);
        t.cpuid(0, 0x40000001, 0);
        t.cpuid(0, 0x40000200, 0);
        assertEquals(1, count(u, "kvm", Kind.CPUID, 0x40000001L, AbiUsage.ANY, null), "leaf 1 holds many elements' bits");
        assertEquals(1, count(u, AbiUsage.NONE, Kind.CPUID, 0, AbiUsage.ANY, null), "unclaimed bases counted by offset");
    }

    @Test
    void sharedStructureWritesAreCountedPerElementAndStructure() {
        PersonalityStack s = vm.stack("kvm");
        AbiUsage u = s.usage();
        long pvclock = AbiUsage.Structure.PVCLOCK.ordinal();
        s.wrmsr(0, 0x4b564d01, 0x1001);       // MSR_KVM_SYSTEM_TIME_NEW, enabled: the VMM fills pvclock_vcpu_time_info
        s.wrmsr(1, 0x4b564d01, 0x2001);
        s.wrmsr(0, 0x4b564d00, 0x3000);       // MSR_KVM_WALL_CLOCK_NEW: pvclock_wall_clock
        s.wrmsr(0, 0x4b564d03, 0x4001);       // MSR_KVM_STEAL_TIME, enabled
        s.addSteal(0, 1000);                  // the VMM records steal: a second kvm_steal_time update
        assertEquals(2, count(u, "kvm", Kind.SHARED_UPDATE, pvclock, AbiUsage.ANY, "kvm.clocksource"), u.snapshot().toString());
        assertEquals(1, count(u, "kvm", Kind.SHARED_UPDATE, AbiUsage.Structure.WALL_CLOCK.ordinal(), AbiUsage.ANY, "kvm.clocksource"));
        assertEquals(2, count(u, "kvm", Kind.SHARED_UPDATE, AbiUsage.Structure.STEAL_TIME.ordinal(), AbiUsage.ANY, "kvm.steal-time"));
        assertEquals("steal-time", AbiUsage.Structure.label(AbiUsage.Structure.STEAL_TIME.ordinal()));
        assertEquals("99", AbiUsage.Structure.label(99));

        PersonalityStack h = vm.stack("hyperv");
        h.wrmsr(0, 0x40000000, 0x8100_0000_0000_0000L); // guest OS id first (TLFS 3.13)
        h.wrmsr(0, 0x40000021, 0x5000 | 1);             // HV_X64_MSR_REFERENCE_TSC, enabled
        assertEquals(1, count(h.usage(), "hyperv", Kind.SHARED_UPDATE, AbiUsage.Structure.REFERENCE_TSC.ordinal(), AbiUsage.ANY,
                "hyperv.reference-tsc"), h.usage().snapshot().toString());

        PersonalityStack off = vm.stack("kvm", "kvm.steal-time");
        off.wrmsr(0, 0x4b564d03, 0x4001);
        off.addSteal(0, 1000);
        assertEquals(0, off.usage().snapshot().stream().filter(c -> c.key().kind() == Kind.SHARED_UPDATE).count(),
                "a disabled element's structure is never written");
    }

    @Test
    void aDisabledElementsMsrCountsAsRefused() {
        PersonalityStack s = vm.stack("kvm", "kvm.steal-time");
        s.wrmsr(0, 0x4b564d03, 0x2001);
        assertEquals(1, count(s.usage(), "kvm", Kind.WRMSR_GP, 0x4b564d03L, AbiUsage.ANY, "kvm.steal-time"));
    }

    @Test
    void xenSubOperationsAndUnclaimedHypercalls() {
        PersonalityStack x = vm.stack("xen");
        x.hypercall(new FakeContext(0).set(RAX, 17).set(RDI, 0).vmcall()); // xen_version(XENVER_version)
        assertEquals(1, x.usage().total("xen", Kind.HYPERCALL, 17));
        assertEquals(1, x.usage().snapshot().stream().filter(c -> c.key().kind() == Kind.HYPERCALL && c.key().subop() == 0).count());
        PersonalityStack b = vm.stack("bare");
        assertFalse(b.hypercall(new FakeContext(0).set(RAX, 5).vmcall()));
        assertEquals(1, b.usage().total(AbiUsage.NONE, Kind.HYPERCALL, 5));
    }

    @Test
    void theVmwareBackdoorIsCountedByCommand() {
        PersonalityStack s = vm.stack("vmware");
        FakeContext c = new FakeContext(0).set(RAX, 0x564D5868).set(RCX, 10).set(RDX, 0x5658);
        s.portIo(0x5658).orElseThrow().in(c, 0x5658, 4);
        assertEquals(1, count(s.usage(), "vmware", Kind.BACKDOOR, 10, AbiUsage.ANY, "vmware.backdoor"));
    }

    @Test
    void theUnknownHypervisorShowsOnlyItsSignatureAndTheHypervisorBit() {
        PersonalityStack s = vm.stack("unknown");
        CpuidTable t = s.cpuidTable(CpuModel.qemu64(), 1);
        assertTrue(t.hypervisorBit());
        int[] r = t.cpuid(0, 0x40000000, 0);
        assertEquals(0x40000000, r[0]);
        byte[] sig = new byte[12];
        for (int i = 0; i < 3; i++) for (int j = 0; j < 4; j++) sig[i * 4 + j] = (byte) (r[1 + i] >>> (8 * j));
        assertEquals(UnknownAbi.SIGNATURE, new String(sig, java.nio.charset.StandardCharsets.US_ASCII));
        assertArrayEquals(new int[4], t.cpuid(0, 0x40000001, 0));
        assertFalse(s.hypercall(new FakeContext(0).set(RAX, 1).vmcall()), "VMCALL raises #UD");
        assertInstanceOf(dev.polyvisor.personality.core.MsrAccess.NotHandled.class, s.rdmsr(0, 0x40000000));
        assertTrue(AbiCatalog.names().contains("unknown"));
        assertTrue(AbiCatalog.render("unknown").contains("FoobieVisor!"));
        assertEquals(List.of(), AbiCatalog.contract("unknown").elements());
    }
}

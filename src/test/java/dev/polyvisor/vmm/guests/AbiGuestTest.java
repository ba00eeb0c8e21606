package dev.polyvisor.vmm.guests;

import dev.polyvisor.vmm.Outcome;
import dev.polyvisor.vmm.VmConfig;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.params.ParameterizedTest;
import org.junit.jupiter.params.provider.ValueSource;

import java.time.Duration;
import java.util.List;

import static org.junit.jupiter.api.Assertions.*;

/**
 * The freestanding ABI guests (src/test/guests/abi.c, steal.c): each personality's paravirtual
 * interface exercised without Linux - CPUID leaves, MSRs, shared-structure layouts and seqlocks, clock
 * monotonicity, hypercalls through every path and their error codes - plus garbage hypercalls/MSRs the
 * VMM must survive, and steal time accrued by round-robin vCPUs.
 */
class AbiGuestTest {
    static final int PASS = (0 << 1) | 1;

    static TestGuests.Run run(String image, String personality, String append, int smp) throws Exception {
        return TestGuests.boot(VmConfig.of(TestGuests.guest(image), VmConfig.BootKind.MULTIBOOT)
                .withMemory(64).withSmp(smp).withAppend(append).withTimeout(Duration.ofSeconds(60))
                .withPersonalities(List.of(personality.split("\\+")), List.of()));
    }

    /**
     * The steal guest on the round-robin scheduler: its 20-80 % check is what one host thread shared by two
     * spinning vCPUs gives (with a host thread each, steal is only what the host takes away).
     */
    static TestGuests.Run runRoundRobin(String image, String personality, String append, int smp) throws Exception {
        VmConfig cfg = VmConfig.of(TestGuests.guest(image), VmConfig.BootKind.MULTIBOOT)
                .withMemory(64).withSmp(smp).withAppend(append).withTimeout(Duration.ofSeconds(60))
                .withPersonalities(List.of(personality.split("\\+")), List.of());
        var out = new java.io.ByteArrayOutputStream();
        try (var vm = new dev.polyvisor.vmm.Vm(cfg, out)) {
            vm.useRoundRobin();
            Outcome o = vm.run();
            return new TestGuests.Run(out.toString(java.nio.charset.StandardCharsets.ISO_8859_1).replace("\r", ""), o);
        }
    }

    static long okLines(TestGuests.Run r) { return r.console().lines().filter(l -> l.startsWith("ok ")).count(); }

    /** No FAIL line, a clean debug exit with status 0, the expected number of ok lines and the named ones. */
    static void assertAllPassed(TestGuests.Run r, int expectedOk, String... mustHave) {
        assertFalse(r.console().contains("FAIL"), r.describe());
        assertEquals(Outcome.Kind.DEBUG_EXIT, r.outcome().kind(), r.describe());
        assertEquals(PASS, r.status(), r.describe());
        assertTrue(r.console().contains("PASSED: 0 failure(s)"), r.describe());
        assertEquals(expectedOk, okLines(r), "number of ok lines\n" + r.describe());
        for (String s : mustHave) assertTrue(r.console().contains("ok " + s + "\n"), "missing 'ok " + s + "'\n" + r.describe());
    }

    @Test
    void kvmClockStealEoiMsrsAndHypercalls() throws Exception {
        assertAllPassed(run("abi", "kvm", "kvm", 1), 64,
                "kvm: signature KVMKVMKVM found by the CPUID base scan",
                "kvm: kvmclock version settles even and non-zero",
                "kvm: kvmclock is monotonic over 200 reads",
                "kvm: kvmclock elapsed time matches rdtsc scaled by mul/shift",
                "kvm: wall clock version even, seconds after 2020, nsec < 1e9",
                "kvm: steal record version even and non-zero, flags 0",
                "kvm: PV EOI word left clear (guest always EOIs)",
                "kvm: unknown hypercall -> -KVM_ENOSYS (-1000)",
                "kvm: KICK_CPU self -> 0",
                "kvm: HLT with IF=0 after a KICK_CPU resumes at once (sticky kick)",
                "kvm: SEND_IPI logical destination -> -KVM_EINVAL");
    }

    @Test
    void kvmStackedBehindHypervPassesTheSameChecksAtItsOwnBase() throws Exception {
        TestGuests.Run r = run("abi", "hyperv+kvm", "kvm", 1);
        assertTrue(r.console().contains("  KVM base 0x40000100\n"), r.describe());
        assertAllPassed(r, 64, "kvm: kvmclock is monotonic over 200 reads", "kvm: unknown hypercall -> -KVM_ENOSYS (-1000)");
    }

    @Test
    void hypervLeavesHypercallPageReferenceCounterAndTscPage() throws Exception {
        assertAllPassed(run("abi", "hyperv", "hyperv", 1), 71,
                "hyperv: max leaf 0x4000000A",
                "hyperv: HvSignalEvent (fast) to no connection -> HV_STATUS_INVALID_CONNECTION_ID (0x12)",
                "hyperv: HvPostMessage with a payload over 240 bytes -> HV_STATUS_INVALID_HYPERCALL_INPUT (3)",
                "hyperv: hypercall page stays disabled without a guest OS id",
                "hyperv: HvCallNotifyLongSpinWait (fast) through the page -> HV_STATUS_SUCCESS",
                "hyperv: unknown call code -> HV_STATUS_INVALID_HYPERCALL_CODE (2)",
                "hyperv: misaligned input GPA -> HV_STATUS_INVALID_ALIGNMENT (4)",
                "hyperv: rep hypercall reports 3 reps completed (RAX bits 43:32)",
                "hyperv: HV_X64_MSR_TIME_REF_COUNT is monotonic",
                "hyperv: reference TSC page matches HV_X64_MSR_TIME_REF_COUNT",
                "hyperv: VP index 0 on the BSP",
                "hyperv: stimer posts HVMSG_TIMER_EXPIRED (0x80000010) in SIMP slot 2",
                "hyperv: timer message: index 0, expiration = count, delivery >= expiration",
                "hyperv: HvCallSendSyntheticClusterIpiEx sparse set -> HV_STATUS_SUCCESS");
    }

    @Test
    void xenBothHypercallPathsSharedInfoCallbackAndEventChannels() throws Exception {
        assertAllPassed(run("abi", "xen", "xen", 1), 72,
                "xen: version leaf 4.16",
                "xen: direct xen_version(XENVER_version) matches CPUID",
                "xen: xen_version through the hypercall page",
                "xen: XENMEM_add_to_physmap(shared_info) -> 0",
                "xen: shared_info vcpu_info[0].time is monotonic over 200 reads",
                "xen: HVMOP_set_param callback vector 0xF3 -> 0",
                "xen: send sets the port's evtchn_pending bit",
                "xen: send on a closed port -> -EINVAL",
                "xen: xen_version to an unmapped pointer -> -EFAULT",
                "xen: unknown hypercall 50 -> -ENOSYS",
                "xen: the timer sets VIRQ_TIMER's port pending, not before its deadline",
                "xen: moved vcpu_info has upcall pending and every selector bit",
                "xen: registered vcpu_info time is monotonic over 200 reads");
    }

    @Test
    void vmwareBackdoorVersionHzStealClockAndWrongMagic() throws Exception {
        assertAllPassed(run("abi", "vmware", "vmware", 1), 17,
                "vmware: GETVERSION -> version 6, EBX magic, product type in ECX",
                "vmware: GETHZ TSC Hz in EBX:EAX matches the timing leaf, bus Hz in ECX",
                "vmware: wrong magic -> EAX all ones, EBX untouched (no backdoor)",
                "vmware: STEALCLOCK enable -> 1");
    }

    @Test
    void bareHasNoHypervisorBitNoLeavesAndNoHypercalls() throws Exception {
        assertAllPassed(run("abi", "bare", "bare", 1), 7,
                "bare: CPUID.1:ECX.hypervisor is clear",
                "bare: leaves 0x40000000-0x40000010 are zero",
                "bare: VMCALL -> #UD");
    }

    @ParameterizedTest
    @ValueSource(strings = {"kvm", "hyperv", "xen", "vmware", "hyperv+kvm"})
    void garbageHypercallsAndMsrsLeaveGuestAndVmmAlive(String personality) throws Exception {
        TestGuests.Run r = run("abi", personality, "garbage", 1);
        assertAllPassed(r, 3, "garbage: every call returned to the guest", "garbage: CPUID signature unchanged afterwards");
        assertTrue(r.console().contains("garbage: 6000 MSR accesses"), r.describe());
    }

    @Test
    void kvmStealRecordGrowsWhileTheOtherVcpuSpins() throws Exception {
        assertAllPassed(runRoundRobin("steal", "kvm", "kvm", 2), 9,
                "steal: zero while only the BSP runs",
                "steal: grows while another vCPU runs",
                "steal: record version even and advancing",
                "steal: 20-80 % of elapsed kvmclock time with two spinning vCPUs");
    }

    @Test
    void xenRunstateRunnableTimeGrowsWhileTheOtherVcpuSpins() throws Exception {
        assertAllPassed(runRoundRobin("steal", "xen", "xen", 2), 8,
                "steal: time[RUNSTATE_runnable] grows while another vCPU runs",
                "steal: time[running] + time[runnable] = state_entry_time",
                "steal: 20-80 % of elapsed Xen system time with two spinning vCPUs");
    }

    @Test
    void vmwareStealClockGrowsWhileTheOtherVcpuSpins() throws Exception {
        assertAllPassed(runRoundRobin("steal", "vmware", "vmware", 2), 5,
                "steal: VMware steal clock 0 while only the BSP runs",
                "steal: VMware steal clock grows while another vCPU runs",
                "steal: 20-80 % of elapsed TSC cycles with two spinning vCPUs");
    }
}

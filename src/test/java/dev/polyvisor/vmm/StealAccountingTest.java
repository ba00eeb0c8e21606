package dev.polyvisor.vmm;

import org.junit.jupiter.api.Test;

import java.util.ArrayList;
import java.util.List;

import static org.junit.jupiter.api.Assertions.*;

class StealAccountingTest {
    private record Report(int vcpu, long ns) {}

    @Test
    void everyOtherRunnableVcpuIsChargedTheQuantum() {
        List<Report> reports = new ArrayList<>();
        StealAccounting s = new StealAccounting(4, (v, ns) -> reports.add(new Report(v, ns)));
        s.quantum(0, 1_000, v -> true);
        assertEquals(List.of(new Report(1, 1_000), new Report(2, 1_000), new Report(3, 1_000)), reports);
        assertEquals(0, s.stealNs(0), "the running vCPU steals nothing from itself");
        assertEquals(1_000, s.stealNs(3));
    }

    @Test
    void haltedOrUnstartedVcpusAccrueNothing() {
        List<Report> reports = new ArrayList<>();
        StealAccounting s = new StealAccounting(3, (v, ns) -> reports.add(new Report(v, ns)));
        s.quantum(1, 500, v -> v != 2); // vCPU 2 halted
        assertEquals(List.of(new Report(0, 500)), reports);
        assertEquals(0, s.stealNs(2));
    }

    @Test
    void roundRobinOfTwoSpinningVcpusGivesEachTheOthersRunTime() {
        StealAccounting s = new StealAccounting(2, (v, ns) -> {});
        for (int round = 0; round < 10; round++) {
            s.quantum(0, 300, v -> true);
            s.quantum(1, 200, v -> true);
        }
        assertEquals(2_000, s.stealNs(0), "vCPU 0 waited for vCPU 1's quanta");
        assertEquals(3_000, s.stealNs(1), "vCPU 1 waited for vCPU 0's quanta");
    }

    @Test
    void aSingleVcpuNeverHasSteal() {
        List<Report> reports = new ArrayList<>();
        StealAccounting s = new StealAccounting(1, (v, ns) -> reports.add(new Report(v, ns)));
        s.quantum(0, 10_000, v -> true);
        assertTrue(reports.isEmpty());
        assertEquals(0, s.stealNs(0));
    }

    @Test
    void emptyOrBackwardQuantaChargeNothing() {
        List<Report> reports = new ArrayList<>();
        StealAccounting s = new StealAccounting(2, (v, ns) -> reports.add(new Report(v, ns)));
        s.quantum(0, 0, v -> true);
        s.quantum(0, -5, v -> true);
        assertTrue(reports.isEmpty());
    }

    @Test
    void reportsReachThePersonalitiesSteal() throws Exception {
        // The sink the VMM uses is the personality stack: KVM's accumulated steal follows the accounting.
        try (var mem = new dev.polyvisor.memory.GuestMemory(1 << 20)) {
            var env = dev.polyvisor.personality.core.PersonalityEnv.of(mem, new dev.polyvisor.clock.VirtualClock(),
                    new NoInjector(), 2);
            var stack = dev.polyvisor.personality.PersonalityStack.of("kvm", List.of(), env);
            StealAccounting s = new StealAccounting(2, stack::addSteal);
            s.quantum(0, 7_000, v -> true);
            var kvm = stack.find(dev.polyvisor.personality.KvmPersonality.class).orElseThrow();
            assertEquals(7_000, kvm.stealNs(1));
            assertEquals(0, kvm.stealNs(0));
        }
    }

    private static final class NoInjector implements dev.polyvisor.personality.core.InterruptInjector {
        @Override public void fixed(int vcpu, int vector) {}
        @Override public void nmi(int vcpu) {}
        @Override public void setAutoEoiVectors(int vcpu, long[] vectors) {}
        @Override public void upcall(int vcpu, int vector) {}
        @Override public void wake(int vcpu) {}
        @Override public void flushTlb(int vcpu) {}
        @Override public void block(int vcpu, boolean ignoreIf, java.util.function.BooleanSupplier until, long deadlineNs) {}
        @Override public void shutdown(String reason) {}
    }
}

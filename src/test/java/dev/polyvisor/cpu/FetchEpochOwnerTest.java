package dev.polyvisor.cpu;

import dev.polyvisor.cpu.mmu.Mmu;
import dev.polyvisor.memory.GuestMemory;
import org.junit.jupiter.api.Test;

import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertNotEquals;
import static org.junit.jupiter.api.Assertions.assertTrue;

/**
 * Fetch epochs name their vCPU: the epochs of two vCPUs never coincide (a chain made by one is never
 * followed by the other), each new epoch of a vCPU is its own, and the run loop can tell whose a chain
 * slot is (Vcpu leaves another vCPU's slot alone).
 */
class FetchEpochOwnerTest {
    @Test
    void epochsCarryTheirVcpuAndNeverCoincide() {
        try (GuestMemory mem = new GuestMemory(1 << 20)) {
            TestPlatform p = new TestPlatform();
            Cpu a = new Cpu(0, mem, p), b = new Cpu(1, mem, p), c = new Cpu(63, mem, p);
            java.util.Set<Long> seen = new java.util.HashSet<>();
            for (int i = 0; i < 100; i++) {
                for (Cpu x : new Cpu[] {a, b, c}) {
                    x.mmu.newFetchEpoch();
                    assertEquals(x.id, Mmu.epochOwner(x.mmu.fetchEpoch));
                    assertNotEquals(0, x.mmu.fetchEpoch);
                    assertTrue(seen.add(x.mmu.fetchEpoch), "epoch repeated: " + x.mmu.fetchEpoch);
                }
            }
        }
    }
}

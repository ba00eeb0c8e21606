package dev.polyvisor.personality;

import dev.polyvisor.cpu.model.CpuModel;
import dev.polyvisor.personality.core.AbiElement;
import dev.polyvisor.personality.core.MsrAccess;
import org.junit.jupiter.api.AfterEach;
import org.junit.jupiter.api.Test;

import java.util.Map;

import static org.junit.jupiter.api.Assertions.*;

/** --abi-disable removes exactly the element: its CPUID bits and nothing else; its MSRs raise #GP. */
class AbiDisableTest {
    final TestVm vm = new TestVm(2);

    @AfterEach void close() { vm.close(); }

    /** Elements whose CPUID presence is a whole leaf's values rather than bits: the leaf offsets they may change. */
    static final Map<String, int[]> LEAF_VALUED = Map.of(
            "xen.hypercall-page", new int[] {2},
            "vmware.timing-leaf", new int[] {0, 0x10});

    @Test
    void disablingEachElementClearsExactlyItsBitsAndGpsItsMsrs() {
        for (String p : new String[] {"kvm", "hyperv", "xen", "vmware"}) {
            CpuidTable full = vm.stack(p).cpuidTable(CpuModel.qemu64(), 2);
            for (AbiElement e : AbiCatalog.contract(p).elements()) {
                PersonalityStack s = vm.stack(p, e.id());
                CpuidTable t = s.cpuidTable(CpuModel.qemu64(), 2);
                int[] allowedLeaves = LEAF_VALUED.getOrDefault(e.id(), new int[0]);
                for (int off = 0; off < 0x100; off++) {
                    int[] a = full.cpuid(0, 0x40000000 + off, 0), b = t.cpuid(0, 0x40000000 + off, 0);
                    final int o = off;
                    if (java.util.Arrays.stream(allowedLeaves).anyMatch(x -> x == o)) continue;
                    for (int r = 0; r < 4; r++) {
                        int expected = 0;
                        for (AbiElement.CpuidBit bit : e.cpuidBits())
                            if (bit.leafOffset() == off && bit.reg().index() == r) expected |= 1 << bit.bit();
                        assertEquals(expected, a[r] & expected, e.id() + ": its bits are advertised when enabled");
                        assertEquals(expected, a[r] ^ b[r], String.format("%s: leaf +0x%x reg %d changes exactly its bits", e.id(), off, r));
                    }
                }
                for (int msr : e.msrs()) {
                    if (p.equals("xen") && msr != 0x40000000) continue; // Xen uses 0x40000200 only behind Viridian
                    assertEquals(MsrAccess.GP, s.wrmsr(0, msr, 0), e.id() + " MSR 0x" + Integer.toHexString(msr));
                    assertEquals(MsrAccess.GP, s.rdmsr(0, msr), e.id() + " MSR 0x" + Integer.toHexString(msr));
                }
            }
        }
    }

    @Test
    void architecturalLeavesAreUntouchedByDisabling() {
        CpuidTable full = vm.stack("hyperv+kvm").cpuidTable(CpuModel.qemu64(), 2);
        CpuidTable less = vm.stack("hyperv+kvm", "hyperv.stimer", "kvm.pv-eoi").cpuidTable(CpuModel.qemu64(), 2);
        for (int leaf : new int[] {0, 1, 7, 0x80000000, 0x80000001, 0x80000006, 0x80000008})
            assertArrayEquals(full.cpuid(1, leaf, 0), less.cpuid(1, leaf, 0));
    }
}

package dev.polyvisor.personality;

import dev.polyvisor.cpu.model.CpuFeature;
import dev.polyvisor.cpu.model.CpuModel;
import org.junit.jupiter.api.AfterEach;
import org.junit.jupiter.api.Test;

import java.nio.charset.StandardCharsets;
import java.nio.ByteBuffer;
import java.nio.ByteOrder;

import static org.junit.jupiter.api.Assertions.*;

/** CPUID composition: arch/x86/kernel/cpu/hypervisor.c and hypervisor_cpuid_base() in asm/processor.h. */
class CpuidTableTest {
    final TestVm vm = new TestVm(2);

    @AfterEach void close() { vm.close(); }

    CpuidTable table(String spec, String... disabled) { return vm.stack(spec, disabled).cpuidTable(CpuModel.qemu64(), 2); }

    static String signature(int[] r) {
        ByteBuffer b = ByteBuffer.allocate(12).order(ByteOrder.LITTLE_ENDIAN);
        b.putInt(r[1]).putInt(r[2]).putInt(r[3]);
        return new String(b.array(), StandardCharsets.US_ASCII);
    }

    /** Linux's hypervisor_cpuid_base(sig, leaves): first base whose signature matches and EAX - base >= leaves. */
    static int linuxCpuidBase(CpuidTable t, String sig, int leaves) {
        for (int base = 0x40000000; Integer.compareUnsigned(base, 0x40010000) < 0; base += 0x100) {
            int[] r = t.cpuid(0, base, 0);
            if (signature(r).equals(sig) && (leaves == 0 || Integer.compareUnsigned(r[0] - base, leaves) >= 0)) return base;
        }
        return 0;
    }

    @Test
    void bareClearsTheHypervisorBitAndAnswersZerosEverywhereInTheRange() {
        CpuidTable t = table("bare");
        assertEquals(0, t.cpuid(0, 1, 0)[2] & CpuFeature.HYPERVISOR.mask());
        for (int leaf = 0x40000000; leaf <= 0x4000FFFF; leaf++) assertArrayEquals(new int[4], t.cpuid(1, leaf, 0));
        assertTrue(t.model().has(CpuFeature.INVARIANT_TSC), "bare keeps the model's invariant TSC");
    }

    @Test
    void kvmAloneSitsAtTheFirstBaseWithTheHypervisorBit() {
        CpuidTable t = table("kvm");
        assertNotEquals(0, t.cpuid(0, 1, 0)[2] & CpuFeature.HYPERVISOR.mask());
        int[] r = t.cpuid(0, 0x40000000, 0);
        assertEquals("KVMKVMKVM\0\0\0", signature(r));
        assertEquals(0x40000001, r[0]);
        assertEquals(0x40000000, linuxCpuidBase(t, "KVMKVMKVM\0\0\0", 0));
        assertEquals(0x01003AEB, t.cpuid(0, 0x40000001, 0)[0], "clocksource(2), nop-io-delay, steal, EOI, unhalt, TLB, IPI, poll, yield, stable");
        assertEquals(0, t.cpuid(0, 0x40000001, 0)[3], "no KVM_HINTS_REALTIME");
        assertArrayEquals(new int[4], t.cpuid(0, 0x40000002, 0));
        assertArrayEquals(new int[4], t.cpuid(0, 0x40000100, 0), "empty bases read as zeros");
        assertEquals(0, t.cpuid(0, 0x80000007, 0)[3] & (1 << 8), "invariant TSC hidden so kvm-clock stays current");
    }

    @Test
    void kvmWithClocksourceDisabledKeepsInvariantTsc() {
        assertNotEquals(0, table("kvm", "kvm.clocksource").cpuid(0, 0x80000007, 0)[3] & (1 << 8));
    }

    @Test
    void explicitBaseMovesTheSignature() {
        CpuidTable t = table("kvm:base=0x40000200");
        assertArrayEquals(new int[4], t.cpuid(0, 0x40000000, 0));
        assertEquals(0x40000201, t.cpuid(0, 0x40000200, 0)[0]);
        assertEquals(0x40000200, linuxCpuidBase(t, "KVMKVMKVM\0\0\0", 0));
    }

    @Test
    void architecturalLeavesComeFromTheModel() {
        CpuidTable t = table("kvm");
        assertArrayEquals(CpuModel.qemu64().leaf(0, 0, 1, 2), t.cpuid(1, 0, 0));
        assertEquals(1, t.cpuid(1, 1, 0)[1] >>> 24, "APIC ID of vCPU 1");
    }
}

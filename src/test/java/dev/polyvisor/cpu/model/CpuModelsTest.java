package dev.polyvisor.cpu.model;

import org.junit.jupiter.api.Test;

import static org.junit.jupiter.api.Assertions.*;

/** {@code --cpu} as QEMU spells {@code -cpu} (QEMU docs "x86 CPU models"; feature names from target/i386/cpu.c). */
class CpuModelsTest {
    @Test
    void qemu64IsTheDefaultAndMaxAddsWhatTheCpuImplements() {
        assertEquals(CpuModel.qemu64(), CpuModels.parse(null));
        assertEquals(CpuModel.qemu64(), CpuModels.parse("qemu64"));
        CpuModel max = CpuModels.parse("max");
        for (CpuFeature f : new CpuFeature[] {CpuFeature.RDTSCP, CpuFeature.RDPID, CpuFeature.UMIP, CpuFeature.TSC_DEADLINE,
                CpuFeature.PCID, CpuFeature.INVPCID, CpuFeature.TSC_ADJUST})
            assertTrue(max.has(f), f.name());
        assertTrue(max.features().containsAll(CpuModel.qemu64().features()));
        assertEquals("AuthenticAMD", max.vendor());
        // CPUID.7.0:ECX carries UMIP (bit 2), RDPID (22) and PKS (31); EBX TSC_ADJUST (1), SMEP (7),
        // ERMS (9), INVPCID (10), SMAP (20); CPUID.1:ECX PCID (17); CPUID.80000001H:EDX RDTSCP (bit 27).
        // PKU (ECX bit 3) only with +pku; OSPKE (ECX bit 4) is never the model's: the CPU sets it from CR4.PKE.
        assertEquals((1 << 2) | (1 << 22) | (1 << 31), max.leaf(7, 0, 0, 1)[2]);
        assertEquals(1 << 3, CpuModels.parse("max,+pku").leaf(7, 0, 0, 1)[2] & (1 << 3));
        assertEquals((1 << 1) | (1 << 7) | (1 << 9) | (1 << 10) | (1 << 20), max.leaf(7, 0, 0, 1)[1]);
        assertNotEquals(0, max.leaf(1, 0, 0, 1)[2] & (1 << 17));
        assertNotEquals(0, max.leaf(0x80000001, 0, 0, 1)[3] & (1 << 27));
        assertNotEquals(0, max.leaf(1, 0, 0, 1)[2] & (1 << 24), "TSC-deadline in CPUID.1:ECX[24]");
        assertNotEquals(0, max.leaf(1, 0, 0, 1)[2] & (1 << 21), "x2APIC in CPUID.1:ECX[21]");
        assertEquals(0xB, max.leaf(0, 0, 0, 1)[0], "leaf 0BH reported with x2APIC");
        assertEquals(3, max.leaf(0xB, 0, 3, 4)[3], "CPUID.0BH:EDX = x2APIC ID");
        assertEquals(2 << 8 | 1, max.leaf(0xB, 1, 3, 4)[2], "level 1 is the core level");
        assertEquals(4, max.leaf(0xB, 1, 3, 4)[1]);
        assertEquals(0, CpuModel.qemu64().leaf(0xB, 0, 3, 4)[3], "qemu64 stops at leaf 7");
    }

    @Test
    void featuresAreAddedAndRemovedByQemuName() {
        CpuModel m = CpuModels.parse("qemu64,+umip,-nx,rdtscp=on,lahf-lm=off");
        assertTrue(m.has(CpuFeature.UMIP));
        assertTrue(m.has(CpuFeature.RDTSCP));
        assertFalse(m.has(CpuFeature.NX));
        assertFalse(m.has(CpuFeature.LAHF_LM));
        assertEquals(CpuModel.qemu64(), CpuModels.parse("qemu64,-x2apic,-pcid,-invpcid"), "removing an absent feature is a no-op");
        assertTrue(CpuModels.parse("qemu64,+x2apic").has(CpuFeature.X2APIC));
        assertEquals("GenuineIntel", CpuModels.parse("max,vendor=GenuineIntel").vendor());
        assertTrue(CpuModels.parse("qemu64,force-emulation-prefix=on").forceEmulationPrefix());
        assertFalse(CpuModels.parse("qemu64").forceEmulationPrefix(), "KVM's prefix is opt-in");
        assertEquals(CpuModel.qemu64(), CpuModels.parse("qemu64,force-emulation-prefix=off"));
    }

    @Test
    void opteronG1IsQemusModelWithTheFeaturesPolyvisorImplements() {
        CpuModel m = CpuModels.parse("Opteron_G1,vendor=AuthenticAMD");
        assertEquals(0xF60, m.signature() & 0xFF0, "family 15 model 6");
        assertEquals(0x00000F61, m.leaf(1, 0, 0, 1)[0]);
        assertEquals(5, m.leaf(0, 0, 0, 1)[0], "basic leaves to 5");
        assertEquals(0x8000_0008, m.leaf(0x8000_0000, 0, 0, 1)[0]);
        int ext = m.leaf(0x8000_0001, 0, 0, 1)[3];
        assertNotEquals(0, ext & (1 << 11), "SYSCALL");
        assertNotEquals(0, ext & (1 << 29), "LM");
        assertEquals(0, m.leaf(0x8000_0001, 0, 0, 1)[2] & 1, "no LAHF/SAHF in 64-bit mode on the first Opterons");
        assertTrue(m.has(CpuFeature.SSE2));
        assertFalse(m.has(CpuFeature.SSE3), "QEMU lists SSE3, which Polyvisor does not implement");
    }

    @Test
    void whatTheCpuDoesNotImplementIsAOneLineError() {
        for (String bad : new String[] {"qemu64,+smx", "max,+vmx", "qemu64,xsave=on", "IvyBridge", "host", "Opteron_G2",
                "max,vendor=Intel", "max,phys-bits=36"}) {
            IllegalArgumentException e = assertThrows(IllegalArgumentException.class, () -> CpuModels.parse(bad), bad);
            assertFalse(e.getMessage().contains("\n"), e.getMessage());
        }
    }
}

package dev.polyvisor.cpu.model;

import org.junit.jupiter.api.Test;

import static org.junit.jupiter.api.Assertions.*;

/**
 * AMD's legacy performance-counter MSRs (AMD APM Vol. 2, 13.2.1: PerfEvtSel0-3 at C001_0000h-C001_0003h,
 * PerfCtr0-3 at C001_0004h-C001_0007h) as KVM's AMD PMU presents them (arch/x86/kvm/svm/pmu.c).
 */
class ModelMsrsTest {
    @Test
    void amdModelsImplementTheEightLegacyCounterMsrsPerVcpu() {
        ModelMsrs m = new ModelMsrs(CpuModel.qemu64(), 2);
        for (int i = 0xC0010000; i <= 0xC0010007; i++) {
            assertTrue(m.claims(i), Integer.toHexString(i));
            assertTrue(m.write(0, i, 0), "writing 0 never faults");
            assertEquals(0, m.read(0, i));
        }
        assertFalse(m.claims(0xC0010008), "PerfCtr3 is the last legacy counter");
        assertFalse(m.claims(0xC0010200), "no core performance counter extensions (PerfCtrExtCore not advertised)");
        m.write(1, ModelMsrs.AMD_PERF_CTR0, 0xFFFF);
        assertEquals(0xFFFF, m.read(1, ModelMsrs.AMD_PERF_CTR0), "a counter reads back what was written");
        assertEquals(0, m.read(0, ModelMsrs.AMD_PERF_CTR0), "each vCPU has its own counters");
    }

    @Test
    void countersAre48BitsWideAndEventSelectsDropKvmsReservedBits() {
        ModelMsrs m = new ModelMsrs(CpuModel.qemu64(), 1);
        assertTrue(m.write(0, ModelMsrs.AMD_PERF_CTR0 + 3, -1L));
        assertEquals((1L << 48) - 1, m.read(0, ModelMsrs.AMD_PERF_CTR0 + 3));
        assertTrue(m.write(0, ModelMsrs.AMD_PERF_CTL0 + 1, -1L));
        // bits 63:36, 21 and 19 are reserved (KVM pmu->reserved_bits = 0xfffffff000280000)
        assertEquals(0x0000_000F_FFD7_FFFFL, m.read(0, ModelMsrs.AMD_PERF_CTL0 + 1));
    }

    @Test
    void intelModelsHaveNoAmdCounterMsrs() {
        CpuModel intel = new CpuModel("GenuineIntel", 6, 6, 3, CpuModel.qemu64().features(), "x", CacheLeaves.qemuLegacy(),
                40, 48, 7, 0x80000008);
        ModelMsrs m = new ModelMsrs(intel, 1);
        assertFalse(m.claims(ModelMsrs.AMD_PERF_CTL0));
        assertFalse(m.write(0, ModelMsrs.AMD_PERF_CTL0, 0), "#GP(0) on Intel");
    }

    @Test
    void intelModelsKeepMiscEnableAsKvmDoes() {
        // SDM Vol. 4 Table 2-2 (IA32_MISC_ENABLE); KVM: bits 11-12 read-only (#GP on change), bit 7 ignored.
        ModelMsrs m = new ModelMsrs(CpuModels.parse("qemu64,vendor=GenuineIntel"), 1);
        assertTrue(m.claims(ModelMsrs.MISC_ENABLE));
        assertEquals(0x1801, m.read(0, ModelMsrs.MISC_ENABLE));
        assertTrue(m.write(0, ModelMsrs.MISC_ENABLE, 0x400C50809L | 0x1000 | 0x80));
        assertEquals(0x400C51809L, m.read(0, ModelMsrs.MISC_ENABLE), "stored, bit 7 ignored");
        assertFalse(m.write(0, ModelMsrs.MISC_ENABLE, 0), "clearing the read-only BTS/PEBS-unavailable bits is #GP");
        assertFalse(new ModelMsrs(CpuModel.qemu64(), 1).claims(ModelMsrs.MISC_ENABLE), "AMD parts have no MISC_ENABLE");
    }

    @Test
    void machineCheckGlobalsReportNoBanks() {
        // KVM get_msr_mce: MCG_CAP = the vCPU's mcg_cap (0: no banks); MCG_STATUS holds what is written.
        ModelMsrs m = new ModelMsrs(CpuModel.qemu64(), 1);
        assertEquals(0, m.read(0, ModelMsrs.MCG_CAP));
        assertFalse(m.write(0, ModelMsrs.MCG_CAP, 0));
        assertTrue(m.write(0, ModelMsrs.MCG_STATUS, 4));
        assertEquals(4, m.read(0, ModelMsrs.MCG_STATUS));
        assertFalse(m.claims(0x400), "no MC0_CTL");
    }

    @Test
    void amdModelsAnswerTheK8ConfigurationMsrsLinuxReadsUnguarded() {
        ModelMsrs m = new ModelMsrs(CpuModel.qemu64(), 2);
        assertEquals(0, m.read(0, ModelMsrs.AMD_SYSCFG), "no MtrrFixDramModEn: Linux leaves the fixed MTRRs alone");
        assertEquals(0, m.read(0, ModelMsrs.AMD_INT_PENDING_MSG), "no C1E: erratum 400's idle routine stays plain HLT");
        assertFalse(m.write(0, ModelMsrs.AMD_SYSCFG, 0), "read-only here, as under KVM");
        assertFalse(m.write(0, ModelMsrs.AMD_INT_PENDING_MSG, 0));
        // init_amd_k8: msr_set_bit(MSR_K7_HWCR, 6), the flush-filter disable KVM ignores
        assertTrue(m.write(0, ModelMsrs.AMD_HWCR, m.read(0, ModelMsrs.AMD_HWCR) | 1L << 6));
        assertEquals(0, m.read(0, ModelMsrs.AMD_HWCR));
        assertTrue(m.write(1, ModelMsrs.AMD_HWCR, 1L << 18), "McStatusWrEn is kept");
        assertEquals(1L << 18, m.read(1, ModelMsrs.AMD_HWCR));
        assertEquals(0, m.read(0, ModelMsrs.AMD_HWCR), "per vCPU");
        assertFalse(m.write(0, ModelMsrs.AMD_HWCR, 1L << 0), "any other bit is #GP(0)");
        ModelMsrs intel = new ModelMsrs(CpuModels.parse("qemu64,vendor=GenuineIntel"), 1);
        assertFalse(intel.claims(ModelMsrs.AMD_SYSCFG) || intel.claims(ModelMsrs.AMD_HWCR) || intel.claims(ModelMsrs.AMD_INT_PENDING_MSG),
                "Intel parts have none of them");
    }
}

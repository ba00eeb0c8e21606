package dev.polyvisor.cpu.model;

/**
 * The model-specific registers whose presence depends on the CPU model (its vendor and features) rather
 * than on the interpreter: one instance per VM, with per-vCPU storage. The VMM consults it for MSRs that
 * neither the CPU ({@code cpu.CpuMsrs}), the personalities nor the board claim; what it does not
 * {@linkplain #claims claim} raises #GP(0) as on hardware.
 *
 * <p><b>AMD legacy performance counters</b> (AMD vendors only; AMD APM Vol. 2, 13.2.1 "Performance
 * Counters", MSRs C001_0000h-C001_0003h PerfEvtSel0-3 and C001_0004h-C001_0007h PerfCtr0-3, present on
 * every AMD64 processor whether or not CPUID.80000001h:ECX.PerfCtrExtCore is set). They behave as KVM's
 * AMD PMU presents them to a guest (Linux arch/x86/kvm/svm/pmu.c, amd_pmu_set_msr/amd_pmu_get_msr with
 * four legacy counters): an event select keeps what is written except its reserved bits, which KVM
 * clears without faulting ({@code pmu->reserved_bits = 0xfffffff000280000}: bits 63:36, 21 and 19); a
 * counter is 48 bits wide ({@code pmc_bitmask}), so a write of any value is accepted and reads back its
 * low 48 bits. No event is counted: a counter holds what was last written. That is enough for what
 * guests do with them at start-up: Linux's {@code check_hw_exists()} (arch/x86/events/core.c) reads the
 * event selects, writes a counter and reads the value back; software that does not know the model writes
 * 0 to all eight (kvm-unit-tests' {@code pmu_init}).
 *
 * <p><b>IA32_MISC_ENABLE</b> (1A0h; Intel vendors only, SDM Vol. 4 Table 2-2) as KVM keeps it
 * (arch/x86/kvm/x86.c, MSR_IA32_MISC_ENABLE): QEMU's reset value 0x1801 (fast strings, BTS and PEBS
 * unavailable); changing the read-only bits 11 and 12 is #GP(0), writes to bit 7 (performance monitoring
 * available) are ignored, every other bit is stored. <b>IA32_MCG_CAP</b> (179h) reads 0 — no
 * machine-check banks — and <b>IA32_MCG_STATUS</b> (17Ah) holds what is written, as KVM answers them for
 * a vCPU without machine-check banks (arch/x86/kvm/x86.c get_msr_mce/set_msr_mce); writing MCG_CAP is
 * #GP(0).
 *
 * <p><b>AMD's K7/K8 configuration MSRs</b> (AMD vendors only), which Linux reads without a fault handler on
 * an AMD family 0Fh and later CPU such as qemu64 (arch/x86/kernel/cpu/mtrr/generic.c
 * k8_check_syscfg_dram_mod_en; arch/x86/kernel/process.c arch_post_acpi_subsys_init for erratum 400), as
 * KVM answers them (arch/x86/kvm/x86.c kvm_get_msr_common / kvm_set_msr_hwcr): <b>SYSCFG</b> (C001_0010h)
 * and <b>INT_PENDING_MSG</b> (C001_0055h) read 0 (no fixed-range MTRR DRAM modification, no C1E) and are
 * #GP(0) to write; <b>HWCR</b> (C001_0015h) reads 0 at reset, ignores writes to its flush-filter-disable (6),
 * IGNNE-emulation (8) and TLB-cache-disable (3) bits (Linux's K8 set-up sets bit 6, init_amd_k8), keeps
 * McStatusWrEn (18) when that is all that is written, and is #GP(0) for anything else.
 */
public final class ModelMsrs {
    /** AMD APM Vol. 2, 13.2.1: PerfEvtSel0 at C001_0000h (PerfEvtSel0-3), PerfCtr0 at C001_0004h (PerfCtr0-3). */
    public static final int AMD_PERF_CTL0 = 0xC001_0000, AMD_PERF_CTR0 = 0xC001_0004, AMD_LEGACY_COUNTERS = 4;
    /** Event-select bits KVM treats as reserved and drops on write (arch/x86/kvm/svm/pmu.c). */
    public static final long AMD_EVTSEL_RESERVED = 0xFFFF_FFF0_0028_0000L;
    /** The counters are 48 bits wide (AMD APM Vol. 2, 13.2.1; KVM pmc_bitmask). */
    public static final long AMD_CTR_MASK = (1L << 48) - 1;
    public static final int MCG_CAP = 0x179, MCG_STATUS = 0x17A, MISC_ENABLE = 0x1A0;
    public static final int AMD_SYSCFG = 0xC001_0010, AMD_HWCR = 0xC001_0015, AMD_INT_PENDING_MSG = 0xC001_0055;
    /** HWCR bits KVM drops on write (kvm_set_msr_hwcr), and McStatusWrEn, the one it keeps. */
    static final long HWCR_IGNORED = 1L << 3 | 1L << 6 | 1L << 8, HWCR_MCSTATUS_WREN = 1L << 18;
    /** Fast-string enable (bit 0), BTS unavailable (11), PEBS unavailable (12): QEMU's MSR_IA32_MISC_ENABLE_DEFAULT. */
    public static final long MISC_ENABLE_RESET = 0x1801;
    static final long MISC_ENABLE_RO = 0x1800, MISC_ENABLE_EMON = 0x80;

    private final boolean amd, intel;
    /** Per vCPU: PerfEvtSel0-3 then PerfCtr0-3, in MSR order. */
    private final long[][] amdPerf;
    private final long[] miscEnable, mcgStatus, hwcr;

    public ModelMsrs(CpuModel model, int vcpus) {
        this.amd = model.isAmd();
        this.intel = model.vendor().equals("GenuineIntel");
        this.amdPerf = new long[vcpus][2 * AMD_LEGACY_COUNTERS];
        this.miscEnable = new long[vcpus];
        this.mcgStatus = new long[vcpus];
        this.hwcr = new long[vcpus];
        java.util.Arrays.fill(miscEnable, MISC_ENABLE_RESET);
    }

    private boolean amdPerf(int index) {
        return amd && index >= AMD_PERF_CTL0 && index < AMD_PERF_CTR0 + AMD_LEGACY_COUNTERS;
    }

    /** Whether this model implements MSR {@code index}. */
    public boolean claims(int index) {
        return amdPerf(index) || index == MCG_CAP || index == MCG_STATUS || (intel && index == MISC_ENABLE)
                || amd && (index == AMD_SYSCFG || index == AMD_HWCR || index == AMD_INT_PENDING_MSG);
    }

    /** RDMSR of a claimed MSR. */
    public long read(int vcpu, int index) {
        if (!claims(index)) throw new IllegalArgumentException("MSR not claimed: 0x" + Integer.toHexString(index));
        return switch (index) {
            case MCG_CAP -> 0;
            case MCG_STATUS -> mcgStatus[vcpu];
            case MISC_ENABLE -> miscEnable[vcpu];
            case AMD_SYSCFG, AMD_INT_PENDING_MSG -> 0;
            case AMD_HWCR -> hwcr[vcpu];
            default -> amdPerf[vcpu][index - AMD_PERF_CTL0];
        };
    }

    /**
     * RDPMC counter {@code index}: on AMD, ECX 0-3 read PerfCtr0-3 (AMD APM Vol. 3 "RDPMC"; without
     * CPUID.80000001h:ECX.PerfCtrExtCore there are no others). Any other index is #GP(0).
     */
    public boolean hasCounter(int index) { return amd && index >= 0 && index < AMD_LEGACY_COUNTERS; }

    /** The value RDPMC returns for a counter {@link #hasCounter} accepts. */
    public long readCounter(int vcpu, int index) { return amdPerf[vcpu][AMD_LEGACY_COUNTERS + index]; }

    /** WRMSR of a claimed MSR; false means #GP(0). */
    public boolean write(int vcpu, int index, long value) {
        if (!claims(index)) return false;
        switch (index) {
            case MCG_CAP, AMD_SYSCFG, AMD_INT_PENDING_MSG -> { return false; }
            case AMD_HWCR -> {
                long v = value & ~HWCR_IGNORED;
                if (v != 0 && v != HWCR_MCSTATUS_WREN) return false;
                hwcr[vcpu] = v;
                return true;
            }
            case MCG_STATUS -> { mcgStatus[vcpu] = value; return true; }
            case MISC_ENABLE -> {
                long old = miscEnable[vcpu];
                if (((old ^ value) & MISC_ENABLE_RO) != 0) return false;
                miscEnable[vcpu] = (value & ~MISC_ENABLE_EMON) | (old & MISC_ENABLE_EMON);
                return true;
            }
            default -> { }
        }
        int i = index - AMD_PERF_CTL0;
        amdPerf[vcpu][i] = i < AMD_LEGACY_COUNTERS ? value & ~AMD_EVTSEL_RESERVED : value & AMD_CTR_MASK;
        return true;
    }
}

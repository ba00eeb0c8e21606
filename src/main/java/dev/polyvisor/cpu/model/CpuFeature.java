package dev.polyvisor.cpu.model;

/**
 * One CPUID feature bit: where it lives (leaf, register, bit) and its Linux name
 * ({@code arch/x86/include/asm/cpufeatures.h}). Add a constant here when the CPU starts implementing
 * the instruction or mechanism behind it, then add it to the model's feature set.
 */
public enum CpuFeature {
    // CPUID.1:EDX (SDM Vol. 2A, Table 3-11)
    FPU(1, CpuidReg.EDX, 0), VME(1, CpuidReg.EDX, 1), DE(1, CpuidReg.EDX, 2), PSE(1, CpuidReg.EDX, 3),
    TSC(1, CpuidReg.EDX, 4), MSR(1, CpuidReg.EDX, 5), PAE(1, CpuidReg.EDX, 6), MCE(1, CpuidReg.EDX, 7),
    CX8(1, CpuidReg.EDX, 8), APIC(1, CpuidReg.EDX, 9), SEP(1, CpuidReg.EDX, 11), MTRR(1, CpuidReg.EDX, 12),
    PGE(1, CpuidReg.EDX, 13), MCA(1, CpuidReg.EDX, 14), CMOV(1, CpuidReg.EDX, 15), PAT(1, CpuidReg.EDX, 16),
    PSE36(1, CpuidReg.EDX, 17), CLFSH(1, CpuidReg.EDX, 19), MMX(1, CpuidReg.EDX, 23), FXSR(1, CpuidReg.EDX, 24),
    SSE(1, CpuidReg.EDX, 25), SSE2(1, CpuidReg.EDX, 26), HTT(1, CpuidReg.EDX, 28),
    // CPUID.1:ECX (SDM Vol. 2A, Table 3-10); listed so they can be switched on as they are implemented.
    SSE3(1, CpuidReg.ECX, 0), SSSE3(1, CpuidReg.ECX, 9), CX16(1, CpuidReg.ECX, 13), PCID(1, CpuidReg.ECX, 17), SSE4_1(1, CpuidReg.ECX, 19),
    SSE4_2(1, CpuidReg.ECX, 20), X2APIC(1, CpuidReg.ECX, 21), POPCNT(1, CpuidReg.ECX, 23),
    TSC_DEADLINE(1, CpuidReg.ECX, 24), XSAVE(1, CpuidReg.ECX, 26), AVX(1, CpuidReg.ECX, 28),
    RDRAND(1, CpuidReg.ECX, 30),
    /** Set by {@code CpuidTable} when a personality other than bare is present, never by the model. */
    HYPERVISOR(1, CpuidReg.ECX, 31),
    // CPUID.7.0:EBX/ECX/EDX (SDM Vol. 2A, Table 3-8)
    TSC_ADJUST(7, CpuidReg.EBX, 1), SMEP(7, CpuidReg.EBX, 7), ERMS(7, CpuidReg.EBX, 9), INVPCID(7, CpuidReg.EBX, 10),
    SMAP(7, CpuidReg.EBX, 20), FSRM(7, CpuidReg.EDX, 4), UMIP(7, CpuidReg.ECX, 2), PKU(7, CpuidReg.ECX, 3),
    RDPID(7, CpuidReg.ECX, 22), PKS(7, CpuidReg.ECX, 31),
    // CPUID.80000001H:EDX / ECX (AMD APM Vol. 3, E.4.2)
    SYSCALL(0x8000_0001, CpuidReg.EDX, 11), NX(0x8000_0001, CpuidReg.EDX, 20),
    PDPE1GB(0x8000_0001, CpuidReg.EDX, 26), RDTSCP(0x8000_0001, CpuidReg.EDX, 27), LM(0x8000_0001, CpuidReg.EDX, 29),
    LAHF_LM(0x8000_0001, CpuidReg.ECX, 0), CMP_LEGACY(0x8000_0001, CpuidReg.ECX, 1),
    // CPUID.80000007H:EDX bit 8: invariant TSC (Linux sets CONSTANT_TSC and NONSTOP_TSC).
    INVARIANT_TSC(0x8000_0007, CpuidReg.EDX, 8);

    public final int leaf;
    public final CpuidReg reg;
    public final int bit;

    CpuFeature(int leaf, CpuidReg reg, int bit) {
        this.leaf = leaf;
        this.reg = reg;
        this.bit = bit;
    }

    public int mask() { return 1 << bit; }

    /** The Linux /proc/cpuinfo style name. */
    public String linuxName() { return name().toLowerCase(java.util.Locale.ROOT); }
}

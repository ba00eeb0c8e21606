package dev.polyvisor.vmm;

/**
 * A minimal CPU model in the shape of QEMU's {@code qemu64} (AuthenticAMD, family 6 model 6 stepping 3),
 * advertising only long mode basics: FPU, TSC, MSR, PAE, CX8, APIC, SEP, PGE, CMOV, PAT, CLFLUSH, MMX,
 * FXSR, SSE, SSE2 in leaf 1 EDX; SSE3 and CX16 in ECX; LM, NX, SYSCALL in 0x80000001. The hypervisor
 * bit (leaf 1 ECX[31]) is clear: this is the "bare" machine. Leaves above the maximum return the
 * highest basic leaf, as Intel documents and as guests tolerate (SDM Vol. 2A, CPUID).
 * The personality engineer's CpuidTable supersedes this through {@link CpuidSource}.
 */
public final class DefaultCpuid implements CpuidSource {
    private static final int MAX_BASIC = 0xD, MAX_EXT = 0x80000008;
    // "AuthenticAMD" in EBX, EDX, ECX order.
    private static final int VENDOR_EBX = 0x68747541, VENDOR_EDX = 0x69746E65, VENDOR_ECX = 0x444D4163;
    private static final int EDX1 = (1 << 0) | (1 << 4) | (1 << 5) | (1 << 6) | (1 << 8) | (1 << 9) | (1 << 11)
            | (1 << 13) | (1 << 15) | (1 << 16) | (1 << 19) | (1 << 23) | (1 << 24) | (1 << 25) | (1 << 26);
    private static final int ECX1 = (1 << 0) | (1 << 13);
    private static final int EDX_EXT1 = (1 << 11) | (1 << 20) | (1 << 29);
    private static final int ECX_EXT1 = 1; // LAHF/SAHF in long mode

    private final int vcpus;

    public DefaultCpuid(int vcpus) { this.vcpus = vcpus; }

    @Override
    public int[] cpuid(int vcpuId, int leaf, int subleaf) {
        if (leaf >= 0x40000000 && leaf <= 0x4000FFFF) return new int[4]; // no hypervisor leaves (bare)
        if (Integer.compareUnsigned(leaf, MAX_EXT) > 0 || (leaf >= 0 && leaf > MAX_BASIC))
            leaf = MAX_BASIC;
        return switch (leaf) {
            case 0 -> new int[] {MAX_BASIC, VENDOR_EBX, VENDOR_ECX, VENDOR_EDX};
            // family 6 model 6 stepping 3; EBX: CLFLUSH line 8 qwords, logical count, initial APIC id.
            case 1 -> new int[] {0x663, (vcpuId << 24) | (vcpus << 16) | (8 << 8), ECX1, EDX1};
            case 0x80000000 -> new int[] {MAX_EXT, VENDOR_EBX, VENDOR_ECX, VENDOR_EDX};
            case 0x80000001 -> new int[] {0x663, 0, ECX_EXT1, EDX_EXT1};
            case 0x80000002 -> ascii("QEMU Virtual CPU");
            case 0x80000003 -> ascii(" version 2.5+");
            case 0x80000004 -> new int[4];
            case 0x80000008 -> new int[] {0x3028, 0, 0, 0}; // 40 physical, 48 linear address bits
            default -> new int[4];
        };
    }

    private static int[] ascii(String s) {
        byte[] b = java.util.Arrays.copyOf(s.getBytes(java.nio.charset.StandardCharsets.US_ASCII), 16);
        int[] r = new int[4];
        for (int i = 0; i < 16; i++) r[i / 4] |= (b[i] & 0xFF) << (8 * (i % 4));
        return r;
    }
}

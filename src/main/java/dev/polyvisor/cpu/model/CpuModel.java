package dev.polyvisor.cpu.model;

import java.nio.charset.StandardCharsets;
import java.util.EnumSet;
import java.util.List;
import java.util.Objects;
import java.util.Set;

/**
 * The base CPU model: what CPUID answers for the architectural leaves (0 .. maxBasicLeaf and
 * 0x80000000 .. maxExtendedLeaf). Leaves above the maxima, the Intel-only leaves 2 and 4 and
 * everything the model does not describe read as zeros, as AMD parts do.
 *
 * <p>The feature set is data ({@link CpuFeature}): bits are added here as the CPU implements the
 * instructions behind them. {@link CpuFeature#HYPERVISOR} is never part of the model; the CPUID table
 * composition sets it when a personality other than bare is present.
 *
 * <p>Topology: one package, {@code vcpuCount} cores, APIC ID = vCPU index (QEMU's layout for
 * {@code -smp N,cores=N}): CPUID.1:EBX[31:24] APIC ID, [23:16] logical count with HTT,
 * CPUID.80000008H:ECX core count - 1 and APIC ID size, CMP_LEGACY on 0x80000001 (AMD APM E.4.7).
 */
public record CpuModel(String vendor, int family, int model, int stepping, Set<CpuFeature> features,
                       String brand, CacheLeaves caches, int physAddrBits, int virtAddrBits,
                       int maxBasicLeaf, int maxExtendedLeaf, boolean forceEmulationPrefix) {

    /**
     * AMD APM Vol. 3, E.4.2: 0x80000001 EDX bits 0-9, 12-17, 23, 24 mirror CPUID.1:EDX on AMD parts;
     * QEMU's CPUID_EXT2_AMD_ALIASES (target/i386/cpu.c) copies them the same way.
     */
    public static final int AMD_EDX_ALIASES = 0x0183_F3FF;

    /** A model without the forced-emulation prefix. */
    public CpuModel(String vendor, int family, int model, int stepping, Set<CpuFeature> features, String brand,
                    CacheLeaves caches, int physAddrBits, int virtAddrBits, int maxBasicLeaf, int maxExtendedLeaf) {
        this(vendor, family, model, stepping, features, brand, caches, physAddrBits, virtAddrBits, maxBasicLeaf, maxExtendedLeaf, false);
    }

    public CpuModel {
        Objects.requireNonNull(vendor);
        if (vendor.length() != 12) throw new IllegalArgumentException("CPUID vendor must be 12 characters: " + vendor);
        if (brand.length() > 47) throw new IllegalArgumentException("brand string longer than 47 characters: " + brand);
        if (features.contains(CpuFeature.HYPERVISOR))
            throw new IllegalArgumentException("the hypervisor bit comes from the personality, not the CPU model");
        features = Set.copyOf(features);
    }

    /**
     * QEMU's {@code qemu64} (target/i386/cpu.c builtin_x86_defs: AuthenticAMD, family 15 model 107 stepping 1,
     * what a guest of QEMU 7.2's {@code -cpu qemu64} reads in /proc/cpuinfo) reduced to what the emulated CPU
     * implements (reference/cpu-design.md 2.2): no SSE3/SSSE3/CX16/XSAVE/AVX/RDRAND/TSC-deadline/x2APIC.
     * The signature matters to guests: Linux marks a K8 of this revision X86_FEATURE_REP_GOOD
     * (arch/x86/kernel/cpu/amd.c init_amd_k8) and then copies and clears memory with REP MOVSQ/STOSQ
     * (copy_user_generic_string, clear_user_rep_good, clear_page_rep) instead of unrolled loops of MOVs, as it
     * does under QEMU; family 6 model 6 (QEMU's qemu32 and TCG max) gets the loops.
     */
    public static CpuModel qemu64() {
        Set<CpuFeature> f = EnumSet.of(
                CpuFeature.FPU, CpuFeature.DE, CpuFeature.PSE, CpuFeature.TSC, CpuFeature.MSR, CpuFeature.PAE,
                CpuFeature.CX8, CpuFeature.APIC, CpuFeature.SEP, CpuFeature.MTRR, CpuFeature.PGE, CpuFeature.CMOV,
                CpuFeature.PAT, CpuFeature.PSE36, CpuFeature.CLFSH, CpuFeature.MMX, CpuFeature.FXSR,
                CpuFeature.SSE, CpuFeature.SSE2,
                CpuFeature.SYSCALL, CpuFeature.NX, CpuFeature.LM, CpuFeature.LAHF_LM,
                CpuFeature.INVARIANT_TSC);
        return new CpuModel("AuthenticAMD", 15, 107, 1, f, "Polyvisor Virtual CPU (qemu64)",
                CacheLeaves.qemuLegacy(), 40, 48, 7, 0x8000_0008);
    }

    /**
     * Polyvisor's {@code max}: qemu64 plus every further feature the emulated CPU implements (QEMU's
     * {@code max} under TCG is likewise "all the accelerator can do", AuthenticAMD): RDTSCP with
     * IA32_TSC_AUX, RDPID, UMIP, PCID and INVPCID, IA32_TSC_ADJUST, the LAPIC's TSC-deadline mode and x2APIC mode,
     * 1 GiB pages, ERMS and FSRM, SMEP and SMAP (with STAC/CLAC), supervisor protection keys (PKS with
     * IA32_PKRS). User protection keys (PKU, RDPKRU/WRPKRU) are implemented but offered only as {@code +pku}:
     * with PKU, kvm-unit-tests' access test (which runs on {@code max}) checks ten times as many combinations
     * (19.2 million accesses, about 170 s of interpreter time against its 90 s limit).
     */
    public static CpuModel max() {
        Set<CpuFeature> f = EnumSet.copyOf(qemu64().features());
        f.addAll(List.of(CpuFeature.RDTSCP, CpuFeature.RDPID, CpuFeature.UMIP, CpuFeature.PCID, CpuFeature.INVPCID, CpuFeature.TSC_ADJUST, CpuFeature.TSC_DEADLINE, CpuFeature.X2APIC, CpuFeature.PDPE1GB,
                CpuFeature.ERMS, CpuFeature.FSRM, CpuFeature.SMEP, CpuFeature.SMAP, CpuFeature.PKS));
        return new CpuModel("AuthenticAMD", 6, 6, 3, f, "Polyvisor Virtual CPU (max)",
                CacheLeaves.qemuLegacy(), 40, 48, 7, 0x8000_0008);
    }

    /**
     * QEMU's {@code Opteron_G1} (target/i386/cpu.c builtin_x86_defs: AuthenticAMD, family 15 model 6
     * stepping 1, basic leaves to 5, extended to 0x80000008, "AMD Opteron 240 (Gen 1 Class Opteron)") with
     * the features Polyvisor implements; QEMU's VME, MCE, MCA and SSE3 are left out.
     */
    public static CpuModel opteronG1() {
        Set<CpuFeature> f = EnumSet.of(
                CpuFeature.FPU, CpuFeature.DE, CpuFeature.PSE, CpuFeature.TSC, CpuFeature.MSR, CpuFeature.PAE,
                CpuFeature.CX8, CpuFeature.APIC, CpuFeature.SEP, CpuFeature.MTRR, CpuFeature.PGE, CpuFeature.CMOV,
                CpuFeature.PAT, CpuFeature.PSE36, CpuFeature.CLFSH, CpuFeature.MMX, CpuFeature.FXSR,
                CpuFeature.SSE, CpuFeature.SSE2, CpuFeature.SYSCALL, CpuFeature.NX, CpuFeature.LM);
        return new CpuModel("AuthenticAMD", 15, 6, 1, f, "AMD Opteron 240 (Gen 1 Class Opteron)",
                CacheLeaves.qemuLegacy(), 40, 48, 5, 0x8000_0008);
    }

    /** The same model with another CPUID vendor string (QEMU's {@code vendor=} property). */
    public CpuModel withVendor(String v) {
        return new CpuModel(v, family, model, stepping, features, brand, caches, physAddrBits, virtAddrBits, maxBasicLeaf, maxExtendedLeaf, forceEmulationPrefix);
    }

    /**
     * The same model with KVM's forced-emulation prefix on or off: {@code ud2; .ascii "kvm"} (0F 0B 6B 76 6D)
     * before an instruction is skipped instead of raising #UD, as KVM does with its module parameter
     * {@code force_emulation_prefix=1} (arch/x86/kvm/x86.c, handle_ud), which test suites use to reach the
     * emulator. Every instruction is emulated here, so the prefix only marks the next one.
     */
    public CpuModel withForceEmulationPrefix(boolean on) {
        return new CpuModel(vendor, family, model, stepping, features, brand, caches, physAddrBits, virtAddrBits, maxBasicLeaf, maxExtendedLeaf, on);
    }

    public boolean has(CpuFeature f) { return features.contains(f); }

    /** With x2APIC the basic leaves reach 0BH, the extended topology leaf that reports the x2APIC ID. */
    public int effectiveMaxBasicLeaf() { return has(CpuFeature.X2APIC) ? Math.max(maxBasicLeaf, 0xB) : maxBasicLeaf; }

    public CpuModel with(CpuFeature f) {
        EnumSet<CpuFeature> s = EnumSet.noneOf(CpuFeature.class);
        s.addAll(features);
        s.add(f);
        return new CpuModel(vendor, family, model, stepping, s, brand, caches, physAddrBits, virtAddrBits, maxBasicLeaf, maxExtendedLeaf, forceEmulationPrefix);
    }

    public CpuModel without(CpuFeature f) {
        EnumSet<CpuFeature> s = EnumSet.noneOf(CpuFeature.class);
        s.addAll(features);
        s.remove(f);
        return new CpuModel(vendor, family, model, stepping, s, brand, caches, physAddrBits, virtAddrBits, maxBasicLeaf, maxExtendedLeaf, forceEmulationPrefix);
    }

    public boolean isAmd() { return vendor.equals("AuthenticAMD") || vendor.equals("HygonGenuine"); }

    /** CPUID.1:EAX signature (SDM Vol. 2A Figure 3-6): extended family/model used above 0xF/for family 6 and 0xF. */
    public int signature() {
        int fam = Math.min(family, 0xF), extFam = family > 0xF ? family - 0xF : 0;
        int mod = model & 0xF, extMod = (family == 6 || family >= 0xF) ? (model >> 4) & 0xF : 0;
        return (extFam << 20) | (extMod << 16) | (fam << 8) | (mod << 4) | (stepping & 0xF);
    }

    /**
     * CPUID for an architectural leaf. {@code vcpu} is the executing vCPU's index (its APIC ID);
     * {@code vcpuCount} the number of vCPUs in the VM. Returns {eax, ebx, ecx, edx}.
     */
    public int[] leaf(int leaf, int subleaf, int vcpu, int vcpuCount) {
        int[] r = new int[4];
        boolean extended = (leaf & 0x8000_0000) != 0;
        if (!extended && Integer.compareUnsigned(leaf, effectiveMaxBasicLeaf()) > 0) return r;
        if (extended && Integer.compareUnsigned(leaf, maxExtendedLeaf) > 0) return r;
        if (!extended && (leaf & 0xF000_0000) != 0) return r;
        switch (leaf) {
            case 0 -> {
                r[0] = effectiveMaxBasicLeaf();
                vendorInto(r);
            }
            case 1 -> {
                r[0] = signature();
                int logical = Math.max(1, vcpuCount);
                r[1] = ((vcpu & 0xFF) << 24) | (Math.min(logical, 255) << 16) | (8 << 8); // CLFLUSH 8*8 = 64 bytes
                r[2] = bits(1, CpuidReg.ECX, 0);
                r[3] = bits(1, CpuidReg.EDX, 0) | (logical > 1 ? CpuFeature.HTT.mask() : 0);
            }
            case 7 -> {
                if (subleaf == 0) {
                    r[1] = bits(7, CpuidReg.EBX, 0);
                    r[2] = bits(7, CpuidReg.ECX, 0);
                    r[3] = bits(7, CpuidReg.EDX, 0);
                }
            }
            case 0xB -> {
                // Extended topology (SDM Vol. 2A CPUID leaf 0BH), offered with x2APIC: level 0 SMT (one
                // thread per core), level 1 core (every vCPU a core of one package), then invalid levels;
                // EDX is the 32-bit x2APIC ID at every subleaf.
                int n = Math.max(1, vcpuCount);
                switch (subleaf) {
                    case 0 -> { r[0] = 0; r[1] = 1; r[2] = 1 << 8; }
                    case 1 -> { r[0] = 32 - Integer.numberOfLeadingZeros(n - 1); r[1] = n; r[2] = 2 << 8 | 1; }
                    default -> r[2] = subleaf & 0xFF;
                }
                r[3] = vcpu;
            }
            case 0x8000_0000 -> {
                r[0] = maxExtendedLeaf;
                vendorInto(r);
            }
            case 0x8000_0001 -> {
                r[0] = signature();
                int aliases = isAmd() ? bits(1, CpuidReg.EDX, 0) & AMD_EDX_ALIASES : 0;
                r[2] = bits(0x8000_0001, CpuidReg.ECX, 0) | (vcpuCount > 1 ? CpuFeature.CMP_LEGACY.mask() : 0);
                r[3] = bits(0x8000_0001, CpuidReg.EDX, 0) | aliases;
            }
            case 0x8000_0002, 0x8000_0003, 0x8000_0004 -> brandInto(r, leaf - 0x8000_0002);
            case 0x8000_0005 -> {
                r[0] = caches.l1TlbLarge();
                r[1] = caches.l1TlbSmall();
                r[2] = caches.l1d();
                r[3] = caches.l1i();
            }
            case 0x8000_0006 -> {
                r[0] = caches.l2TlbLarge();
                r[1] = caches.l2TlbSmall();
                r[2] = caches.l2();
                r[3] = caches.l3();
            }
            case 0x8000_0007 -> r[3] = bits(0x8000_0007, CpuidReg.EDX, 0);
            case 0x8000_0008 -> {
                r[0] = (virtAddrBits << 8) | physAddrBits;
                int n = Math.max(1, vcpuCount);
                int apicIdSize = 32 - Integer.numberOfLeadingZeros(n - 1); // ceil(log2(n))
                r[2] = (apicIdSize << 12) | ((n - 1) & 0xFF);
            }
            default -> { /* leaves 2..6 and others: zeros on this AMD model */ }
        }
        return r;
    }

    private int bits(int leaf, CpuidReg reg, int acc) {
        for (CpuFeature f : features) if (f.leaf == leaf && f.reg == reg) acc |= f.mask();
        return acc;
    }

    private void vendorInto(int[] r) {
        byte[] v = vendor.getBytes(StandardCharsets.US_ASCII);
        r[1] = le(v, 0);
        r[3] = le(v, 4);
        r[2] = le(v, 8);
    }

    private void brandInto(int[] r, int part) {
        byte[] b = new byte[48];
        byte[] s = brand.getBytes(StandardCharsets.US_ASCII);
        System.arraycopy(s, 0, b, 0, s.length); // NUL-terminated: length <= 47
        for (int i = 0; i < 4; i++) r[i] = le(b, part * 16 + i * 4);
    }

    static int le(byte[] b, int off) {
        return (b[off] & 0xFF) | (b[off + 1] & 0xFF) << 8 | (b[off + 2] & 0xFF) << 16 | (b[off + 3] & 0xFF) << 24;
    }
}

package dev.polyvisor.cpu;

/**
 * The model-specific registers the CPU implements itself (SDM Vol. 4, chapter 2; reference/cpu-design.md
 * 2.4). Most live in plain {@link Cpu} fields; this object holds the storage-only ones (MTRRs) and the
 * TSC offset. Everything else goes to {@link Platform#rdmsr}/{@link Platform#wrmsr}.
 */
public final class CpuMsrs {
    public static final int TSC = 0x10, TSC_ADJUST = 0x3B, APIC_BASE = 0x1B, MTRRCAP = 0xFE, SYSENTER_CS = 0x174, SYSENTER_ESP = 0x175,
            SYSENTER_EIP = 0x176, MTRR_PHYSBASE0 = 0x200, MTRR_PHYSMASK7 = 0x20F, MTRR_FIX64K = 0x250,
            MTRR_FIX16K_80000 = 0x258, MTRR_FIX16K_A0000 = 0x259, MTRR_FIX4K_C0000 = 0x268, MTRR_FIX4K_F8000 = 0x26F,
            PAT = 0x277, MTRR_DEF_TYPE = 0x2FF, PKRS = 0x6E1,
            EFER = 0xC0000080, STAR = 0xC0000081, LSTAR = 0xC0000082, CSTAR = 0xC0000083, SFMASK = 0xC0000084,
            FS_BASE = 0xC0000100, GS_BASE = 0xC0000101, KERNEL_GS_BASE = 0xC0000102, TSC_AUX = 0xC0000103;

    /** MTRRcap: 8 variable ranges, fixed ranges supported, write-combining supported. */
    static final long MTRRCAP_VALUE = 8 | (1 << 8) | (1 << 10);
    /** EFER bits this CPU accepts: SCE, LME, LMA (read-only), NXE. */
    static final long EFER_VALID = Cpu.EFER_SCE | Cpu.EFER_LME | Cpu.EFER_LMA | Cpu.EFER_NXE;
    /** Physical-address bits above MAXPHYADDR (40) are reserved in MTRR base/mask registers. */
    private static final long PHYS_RESERVED = ~((1L << 40) - 1);

    /** Added to {@link Platform#tsc} for RDTSC; a WRMSR to IA32_TSC sets it (SDM 17.17). */
    public long tscOffset;
    /**
     * IA32_TSC_ADJUST (SDM Vol. 3B 17.17.3), present when the model advertises CPUID.(EAX=07H,ECX=0):EBX
     * [bit 1] (set by the VMM): writing it moves the TSC by the difference, and a write to IA32_TSC moves it
     * by the TSC's change. Without the feature the MSR is #GP.
     */
    public boolean hasTscAdjust;
    /** CPUID.1:ECX.x2APIC[bit 21] is advertised: IA32_APIC_BASE.EXTD (bit 10) is writable (SDM Vol. 3A 11.12.1). */
    public boolean hasX2apic;
    /** CPUID.(EAX=07H,ECX=0):ECX.PKS[bit 31] is advertised: IA32_PKRS exists (SDM Vol. 4 Table 2-2); else it is #GP. */
    public boolean hasPks;
    public long tscAdjust;
    public long mtrrDefType;
    public final long[] mtrrVar = new long[16];
    /** 0x250, 0x258, 0x259, 0x268-0x26F. */
    public final long[] mtrrFixed = new long[11];

    /** The guest-visible time-stamp counter. */
    public static long tsc(Cpu c) { return c.platform.tsc(c.id) + c.msrs.tscOffset; }

    private static int fixedIndex(int msr) {
        return switch (msr) {
            case MTRR_FIX64K -> 0;
            case MTRR_FIX16K_80000 -> 1;
            case MTRR_FIX16K_A0000 -> 2;
            default -> msr >= MTRR_FIX4K_C0000 && msr <= MTRR_FIX4K_F8000 ? 3 + msr - MTRR_FIX4K_C0000 : -1;
        };
    }

    /** IA32_APIC_BASE.BSP (bit 8) is fixed: set only on vCPU 0 (SDM 10.4.4, Figure 10-5). */
    private static long bsp(Cpu c, long v) { return c.id == 0 ? v | 0x100 : v & ~0x100L; }

    /** A memory type byte valid in PAT and the fixed MTRRs: UC, WC, WT, WP, WB (and UC- in PAT). */
    private static boolean validTypes(long v, boolean pat) {
        for (int i = 0; i < 8; i++) {
            int t = (int) (v >>> (8 * i)) & 0xFF;
            if (!(t == 0 || t == 1 || t == 4 || t == 5 || t == 6 || (pat && t == 7))) return false;
        }
        return true;
    }

    /**
     * SDM Vol. 3A 11.12.5, Figure 11-27 ("x2APIC state transitions"): EXTD without EN is the invalid
     * state; x2APIC mode can be left only to disabled (not to xAPIC), and x2APIC mode can be entered only
     * from xAPIC mode (not from disabled). Each of these writes is #GP(0); KVM kvm_apic_set_base and
     * kvm_set_apic_base check the same.
     */
    static boolean validApicModeTransition(long oldBase, long newBase) {
        final long en = 0x800, extd = 0x400;
        boolean newEn = (newBase & en) != 0, newX2 = (newBase & extd) != 0;
        boolean oldEn = (oldBase & en) != 0, oldX2 = oldEn && (oldBase & extd) != 0;
        if (newX2 && !newEn) return false;
        if (oldX2 && newEn && !newX2) return false;
        return !(!oldEn && newX2);
    }

    /** RDMSR: the value, or throws #GP(0) when neither the CPU nor the platform implements the MSR. */
    public static long read(Cpu c, int msr) {
        CpuMsrs m = c.msrs;
        switch (msr) {
            case TSC: return tsc(c);
            case TSC_ADJUST: if (m.hasTscAdjust) return m.tscAdjust; break;
            case APIC_BASE: return bsp(c, c.apicBase);
            case MTRRCAP: return MTRRCAP_VALUE;
            case SYSENTER_CS: return c.sysenterCs;
            case SYSENTER_ESP: return c.sysenterEsp;
            case SYSENTER_EIP: return c.sysenterEip;
            case PAT: return c.pat;
            case MTRR_DEF_TYPE: return m.mtrrDefType;
            case EFER: return c.efer;
            case STAR: return c.star;
            case LSTAR: return c.lstar;
            case CSTAR: return c.cstar;
            case SFMASK: return c.sfmask;
            case FS_BASE: return c.segBase[Cpu.FS];
            case GS_BASE: return c.segBase[Cpu.GS];
            case KERNEL_GS_BASE: return c.kernelGsBase;
            case TSC_AUX: return c.tscAux;
            case PKRS: if (m.hasPks) return c.pkrs & 0xFFFF_FFFFL; break;
            default: break;
        }
        if (msr >= MTRR_PHYSBASE0 && msr <= MTRR_PHYSMASK7) return m.mtrrVar[msr - MTRR_PHYSBASE0];
        int fi = fixedIndex(msr);
        if (fi >= 0) return m.mtrrFixed[fi];
        if (PatchLevelMsr.owns(msr)) return PatchLevelMsr.read();
        Platform.MsrResult r = c.platform.rdmsr(c.id, msr);
        if (!r.ok()) throw c.gp0();
        return r.value();
    }

    /** WRMSR, with the reserved-bit and canonical checks of each register (#GP(0) on violation). */
    public static void write(Cpu c, int msr, long v) {
        CpuMsrs m = c.msrs;
        switch (msr) {
            case TSC -> {
                long old = tsc(c);
                m.tscOffset = v - c.platform.tsc(c.id);
                m.tscAdjust += v - old;
            }
            case TSC_ADJUST -> {
                if (!m.hasTscAdjust) throw c.gp0();
                m.tscOffset += v - m.tscAdjust;
                m.tscAdjust = v;
            }
            case APIC_BASE -> {
                // Bits 8 (BSP), 10 (x2APIC enable, only with x2APIC support), 11 (global enable), 12-39
                // (base); the rest reserved.
                if ((v & ~(0xFF_FFFF_F000L | 0x900L | (m.hasX2apic ? 0x400L : 0))) != 0) throw c.gp0();
                if (!validApicModeTransition(c.apicBase, v)) throw c.gp0();
                c.apicBase = bsp(c, v);
                c.platform.apicBaseWritten(c.id, c.apicBase);
            }
            case MTRRCAP -> throw c.gp0();
            case SYSENTER_CS -> c.sysenterCs = v & 0xFFFF_FFFFL;
            case SYSENTER_ESP -> c.sysenterEsp = canonicalOrGp(c, v);
            case SYSENTER_EIP -> c.sysenterEip = canonicalOrGp(c, v);
            case PAT -> {
                if (!validTypes(v, true)) throw c.gp0();
                c.pat = v;
            }
            case MTRR_DEF_TYPE -> {
                if ((v & ~0xCFFL) != 0 || !validTypes(v & 0xFF, false)) throw c.gp0();
                m.mtrrDefType = v;
            }
            case EFER -> writeEfer(c, v);
            case STAR -> c.star = v;
            case LSTAR -> c.lstar = canonicalOrGp(c, v);
            case CSTAR -> c.cstar = canonicalOrGp(c, v);
            case SFMASK -> c.sfmask = v & 0xFFFF_FFFFL;
            case FS_BASE -> c.segBase[Cpu.FS] = canonicalOrGp(c, v);
            case GS_BASE -> c.segBase[Cpu.GS] = canonicalOrGp(c, v);
            case KERNEL_GS_BASE -> c.kernelGsBase = canonicalOrGp(c, v);
            case TSC_AUX -> {
                if ((v >>> 32) != 0) throw c.gp0();
                c.tscAux = v;
            }
            case PKRS -> {
                // Bits 63:32 are reserved. The TLB's data entries were cached under the old rights.
                if (!m.hasPks || (v >>> 32) != 0) throw c.gp0();
                if ((int) v != c.pkrs) { c.pkrs = (int) v; c.mmu.flushData(); }
            }
            default -> writeOther(c, msr, v);
        }
    }

    private static void writeOther(Cpu c, int msr, long v) {
        CpuMsrs m = c.msrs;
        if (msr >= MTRR_PHYSBASE0 && msr <= MTRR_PHYSMASK7) {
            boolean base = ((msr - MTRR_PHYSBASE0) & 1) == 0;
            long reserved = PHYS_RESERVED | (base ? 0xF00L : 0x7FFL);
            if ((v & reserved) != 0 || (base && !validTypes(v & 0xFF, false))) throw c.gp0();
            m.mtrrVar[msr - MTRR_PHYSBASE0] = v;
            return;
        }
        int fi = fixedIndex(msr);
        if (fi >= 0) {
            if (!validTypes(v, false)) throw c.gp0();
            m.mtrrFixed[fi] = v;
            return;
        }
        if (PatchLevelMsr.owns(msr)) {
            PatchLevelMsr.write(v);
            return;
        }
        if (!c.platform.wrmsr(c.id, msr, v)) throw c.gp0();
    }

    private static long canonicalOrGp(Cpu c, long v) {
        if (!Segments.canonical(v)) throw c.gp0();
        return v;
    }

    /**
     * EFER (SDM Vol. 3A, 2.2.1 and 10.8.5): reserved bits are #GP; LME may not change while paging is
     * on; LMA is read-only (the value written is ignored). NXE changes what the TLB caches.
     */
    static void writeEfer(Cpu c, long v) {
        if ((v & ~EFER_VALID) != 0) throw c.gp0();
        if (((v ^ c.efer) & Cpu.EFER_LME) != 0 && (c.cr0 & Cpu.CR0_PG) != 0) throw c.gp0();
        long old = c.efer;
        c.efer = (v & ~Cpu.EFER_LMA) | (old & Cpu.EFER_LMA);
        if (((old ^ c.efer) & Cpu.EFER_NXE) != 0) c.mmu.flushAll();
    }
}

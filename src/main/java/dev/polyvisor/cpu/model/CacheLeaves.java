package dev.polyvisor.cpu.model;

/**
 * The AMD cache/TLB descriptor leaves 0x80000005 (L1) and 0x80000006 (L2/L3), register values as the
 * AMD APM Vol. 3 Appendix E.4.4/E.4.5 encodes them.
 *
 * <p>glibc 2.34-2.36 derives {@code non_temporal_threshold} from the L2/L3 sizes here on AMD; zeros make
 * memmove take the non-temporal path for small copies (reference/cpu-design.md 2.2, [G1][G2]).
 */
public record CacheLeaves(int l1TlbLarge, int l1TlbSmall, int l1d, int l1i,
                          int l2TlbLarge, int l2TlbSmall, int l2, int l3) {
    /** AMD associativity code for the L2/L3 descriptors (APM Table E-4): 16-way = 0x8. */
    static final int ASSOC_16 = 0x8;

    /**
     * QEMU's legacy AMD cache information (target/i386/cpu.c, "legacy" cache info used by qemu64):
     * 64 KiB 2-way L1D and L1I with 64-byte lines, 512 KiB 16-way L2, 16 MiB 16-way L3.
     */
    public static CacheLeaves qemuLegacy() {
        int l1d = (64 << 24) | (2 << 16) | (1 << 8) | 64;      // size KiB, assoc, lines/tag, line size
        int l1i = (64 << 24) | (2 << 16) | (1 << 8) | 64;
        int l2 = (512 << 16) | (ASSOC_16 << 12) | (1 << 8) | 64;
        int l3 = ((16 * 1024 / 512) << 18) | (ASSOC_16 << 12) | (1 << 8) | 64; // size in 512 KiB units
        // TLB descriptors: 255 entries fully associative for 2M/4M and 4K pages (QEMU's L1 TLB values),
        // L2 TLB 512 entries 4-way.
        int l1TlbLarge = 0x01FF_01FF;
        int l1TlbSmall = 0x01FF_01FF;
        int l2TlbLarge = 0x0000_0000;
        int l2TlbSmall = (0x4 << 28) | (512 << 16) | (0x4 << 12) | 512;
        return new CacheLeaves(l1TlbLarge, l1TlbSmall, l1d, l1i, l2TlbLarge, l2TlbSmall, l2, l3);
    }

    /** L2 size in KiB (ECX[31:16] of 0x80000006). */
    public int l2KiB() { return l2 >>> 16; }

    /** L3 size in KiB (EDX[31:18] of 0x80000006, 512 KiB units). */
    public int l3KiB() { return (l3 >>> 18) * 512; }
}

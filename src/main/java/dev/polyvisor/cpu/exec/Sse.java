package dev.polyvisor.cpu.exec;

import dev.polyvisor.cpu.Cpu;
import dev.polyvisor.cpu.Exceptions;
import dev.polyvisor.cpu.decode.Ea;
import dev.polyvisor.cpu.decode.Insn;
import dev.polyvisor.cpu.decode.OpcodeTable;
import dev.polyvisor.cpu.mmu.Mmu;

/**
 * Shared machinery for the SSE/SSE2 handler groups (SseIntOps, SseMoveOps, SseFpOps): the
 * availability checks, the XMM source operand fetch (register, aligned or unaligned m128, m64, m32,
 * m16) and the handler shapes.
 *
 * <p>Design note: instead of one class per opcode the SSE groups use a handful of handler shapes
 * whose per-instruction semantics is a final {@link Op} field (a static method reference). The
 * shapes keep operand decoding, fault ordering and alignment rules in one place; the ops read like
 * the SDM pseudo-code. The hot string-function forms can be specialised later without changing the
 * table.
 */
public final class Sse {
    private Sse() {}

    /** Source operand kinds: the memory access width and whether a 16-byte alignment check applies. */
    public static final int M128A = 0, M128U = 1, M64 = 2, M32 = 3, M16 = 4;

    /**
     * Legacy SSE exception conditions (SDM Vol. 2A, 2.4, the exception-type tables; Vol. 3A, 13.1.3):
     * #UD when CR0.EM=1 or CR4.OSFXSR=0, then #NM when CR0.TS=1.
     */
    public static void check(Cpu c) {
        if ((c.cr0 & Cpu.CR0_EM) != 0 || (c.cr4 & Cpu.CR4_OSFXSR) == 0) throw c.ud();
        if ((c.cr0 & Cpu.CR0_TS) != 0) throw c.fault(Exceptions.NM);
    }

    /** Legacy-SSE 128-bit memory operands must be 16-byte aligned (SDM Vol. 1, 11.4.1.1): #GP(0). */
    static long aligned16(Cpu c, long la) {
        if ((la & 15) != 0) throw c.gp0();
        return la;
    }

    /**
     * Makes sure a {@code size}-byte destination is writable on every page it touches before any byte
     * is written, so a #PF on the second page leaves memory unchanged (instructions are atomic w.r.t. faults).
     * A fault on the second page reports its first byte in CR2, as the AMD host does for MOVUPS.
     */
    static void probeWrite(Cpu c, long la, int size) {
        if (((la & 0xFFF) + size) > 0x1000) {
            c.mmu.translate(la, Mmu.WRITE);
            c.mmu.translate((la + size - 1) & ~0xFFFL, Mmu.WRITE);
        }
    }

    /**
     * The write check of a byte-masked store (MASKMOVQ, MASKMOVDQU) of {@code size} bytes at seg:base: every
     * page of the destination, whatever the mask (an all-zero mask too: the SDM leaves it implementation
     * dependent and the AMD host faults), the second page at its first byte, as that host reports it.
     */
    static void probeMasked(Cpu c, int seg, long base, long amask, int size) {
        long first = c.linear(seg, base), last = c.linear(seg, (base + size - 1) & amask);
        c.mmu.translate(first, Mmu.WRITE);
        if ((last ^ first) >>> 12 != 0) c.mmu.translate(last & ~0xFFFL, Mmu.WRITE);
    }

    /** Stores 16 bytes: both pages probed first. */
    static void store128(Cpu c, Ea ea, long lo, long hi) {
        long la = ea.lin(c);
        probeWrite(c, la, 16);
        c.mmu.write64(la, lo);
        c.mmu.write64(ea.lin(c, 8), hi);
    }

    /**
     * The semantics of one SSE form: combines destination register {@code d} (c.xmm[2d], c.xmm[2d+1])
     * with the source value {@code lo:hi} (memory forms narrower than 128 bits zero-extend) and
     * writes the result to register d.
     */
    @FunctionalInterface
    public interface Op { void apply(Cpu c, int d, long lo, long hi, int imm); }

    /** xmm, xmm/mem form. */
    static final class XmmRm extends Insn {
        final int dst, src, kind, imm;
        final Ea ea;
        final Op op;

        XmmRm(int dst, int src, Ea ea, int kind, int imm, Op op) {
            this.dst = dst; this.src = src; this.ea = ea; this.kind = kind; this.imm = imm; this.op = op;
        }

        @Override public void exec(Cpu c) {
            check(c);
            long lo, hi;
            if (ea == null) {
                lo = c.xmm[2 * src];
                hi = c.xmm[2 * src + 1];
            } else {
                long la = ea.lin(c);
                switch (kind) {
                    case M128A -> { aligned16(c, la); lo = c.mmu.read64(la); hi = c.mmu.read64(ea.lin(c, 8)); }
                    case M128U -> { lo = c.mmu.read64(la); hi = c.mmu.read64(ea.lin(c, 8)); }
                    case M64 -> { lo = c.mmu.read64(la); hi = 0; }
                    case M32 -> { lo = c.mmu.read32(la) & 0xFFFF_FFFFL; hi = 0; }
                    default -> { lo = c.mmu.read16(la); hi = 0; }
                }
            }
            op.apply(c, dst, lo, hi, imm);
        }
    }

    /** Factory for the xmm, xmm/mem shape (ModRM.reg is the destination). */
    static OpcodeTable.Factory rm(int kind, Op op) {
        return d -> new XmmRm(d.reg, d.isMem() ? -1 : d.rm, d.isMem() ? d.ea : null, kind, (int) d.imm & 0xFF, op);
    }

    /** Factory for a register-only xmm, xmm shape where ModRM.rm is the destination. */
    static OpcodeTable.Factory rmDest(Op op) {
        return d -> d.isMem() ? null : new XmmRm(d.rm, d.reg, null, M128U, 0, op);
    }

    /** xmm register to memory: {@code size} bytes (4, 8, 16) from the low end, or the high quadword. */
    static final class XmmStore extends Insn {
        final int src, size;
        final boolean align, high;
        final Ea ea;

        XmmStore(int src, Ea ea, int size, boolean align, boolean high) {
            this.src = src; this.ea = ea; this.size = size; this.align = align; this.high = high;
        }

        @Override public void exec(Cpu c) {
            check(c);
            long lo = c.xmm[2 * src], hi = c.xmm[2 * src + 1];
            if (size == 16) {
                if (align) aligned16(c, ea.lin(c));
                store128(c, ea, lo, hi);
            } else if (size == 8) {
                c.mmu.write64(ea.lin(c), high ? hi : lo);
            } else {
                c.mmu.write32(ea.lin(c), (int) lo);
            }
        }
    }

    static OpcodeTable.Factory store(int size, boolean align, boolean high) {
        return d -> d.isMem() ? new XmmStore(d.reg, d.ea, size, align, high) : null;
    }

    // ---- lane helpers (little-endian element i of a quadword) ----

    static int b(long q, int i) { return (int) (q >>> (8 * i)) & 0xFF; }

    static int w(long q, int i) { return (int) (q >>> (16 * i)) & 0xFFFF; }

    static long dw(long q, int i) { return (q >>> (32 * i)) & 0xFFFF_FFFFL; }

    /** Element {@code i} (0..15 bytes / 0..7 words / 0..3 dwords) of the 128-bit value lo:hi. */
    static long elem(long lo, long hi, int bits, int i) {
        int per = 64 / bits;
        long q = i < per ? lo : hi;
        int k = i % per;
        return bits == 64 ? q : (q >>> (bits * k)) & ((1L << bits) - 1);
    }

    static void set(Cpu c, int d, long lo, long hi) {
        c.xmm[2 * d] = lo;
        c.xmm[2 * d + 1] = hi;
    }
}

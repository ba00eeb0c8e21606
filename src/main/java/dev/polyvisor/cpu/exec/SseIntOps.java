package dev.polyvisor.cpu.exec;

import dev.polyvisor.cpu.Cpu;
import dev.polyvisor.cpu.decode.OpcodeTable;

import java.util.List;

import static dev.polyvisor.cpu.decode.OpcodeTable.*;
import static dev.polyvisor.cpu.exec.Sse.*;

/**
 * SSE2 128-bit integer instructions, 66 0F 60-76 and 66 0F D1-FE (SDM Vol. 1, 11.4.3; Vol. 2 per
 * instruction). The lane arithmetic is written once per 64-bit quadword ({@link #QUAD_OPS}, {@link
 * #unpackLow}, {@link #narrow}, {@link #shift}) and shared with the MMX (NP) forms in {@link MmxIntOps},
 * which apply it to one quadword where these forms apply it to two.
 */
public final class SseIntOps {
    private SseIntOps() {}

    /** An element-wise operation on unsigned element values (masked by the caller). */
    @FunctionalInterface
    interface Lane { long f(long a, long b); }

    static long sx(long v, int bits) { return (v << (64 - bits)) >> (64 - bits); }

    static long ssat(long v, int bits) {
        long max = (1L << (bits - 1)) - 1, min = -max - 1;
        return v > max ? max : Math.max(v, min);
    }

    static long usat(long v, int bits) {
        long max = (1L << bits) - 1;
        return v > max ? max : Math.max(v, 0);
    }

    /** Applies f to each {@code bits}-wide element of two quadwords. */
    static long lanes(long a, long b, int bits, Lane f) {
        if (bits == 64) return f.f(a, b);
        long m = (1L << bits) - 1, r = 0;
        for (int sh = 0; sh < 64; sh += bits) r |= (f.f((a >>> sh) & m, (b >>> sh) & m) & m) << sh;
        return r;
    }

    /**
     * Interleaves the elements of the low 32 bits of a and b (a0, b0, a1, b1, ...) into 64 bits: an MMX
     * PUNPCKL, and each half of an SSE2 one (SDM Vol. 2B PUNPCKLBW/WD/DQ).
     */
    static long unpackLow(long a, long b, int bits) {
        long m = (1L << bits) - 1, r = 0;
        for (int i = 0; i < 32 / bits; i++) {
            r |= ((a >>> (i * bits)) & m) << (2 * i * bits);
            r |= ((b >>> (i * bits)) & m) << ((2 * i + 1) * bits);
        }
        return r;
    }

    /** Interleaves the elements of quadwords a and b (a0, b0, a1, b1, ...) into 128 bits. */
    static void interleave(Cpu c, int d, long a, long b, int bits) {
        set(c, d, unpackLow(a, b, bits), unpackLow(a >>> 32, b >>> 32, bits));
    }

    /**
     * Narrows the {@code bits}-wide elements of a quadword to half width with signed or unsigned saturation,
     * into 32 bits (SDM Vol. 2B PACKSSWB/PACKSSDW/PACKUSWB).
     */
    static long narrow(long q, int bits, boolean signed) {
        int ob = bits / 2;
        long om = (1L << ob) - 1, r = 0;
        for (int i = 0; i < 64 / bits; i++) {
            long v = sx(q >>> (i * bits), bits);
            r |= ((signed ? ssat(v, ob) : usat(v, ob)) & om) << (i * ob);
        }
        return r;
    }

    /** PACKSS / PACKUS: narrows dst then src elements of {@code bits} to half width with saturation. */
    static void pack(Cpu c, int d, long slo, long shi, int bits, boolean signed) {
        set(c, d, narrow(c.xmm[2 * d], bits, signed) | narrow(c.xmm[2 * d + 1], bits, signed) << 32,
                narrow(slo, bits, signed) | narrow(shi, bits, signed) << 32);
    }

    /** Shifts by a count: kind 0 logical right, 1 arithmetic right, 2 left (SDM PSRLW/PSRAW/PSLLW). */
    static long shift(long q, int bits, int kind, long count) {
        boolean big = Long.compareUnsigned(count, bits - 1) > 0;
        if (big && kind != 1) return 0;
        int n = big ? bits - 1 : (int) count;
        return lanes(q, 0, bits, (a, unused) -> switch (kind) {
            case 0 -> a >>> n;
            case 1 -> sx(a, bits) >> n;
            default -> a << n;
        });
    }

    static Op shiftBy(int bits, int kind, boolean byImm) {
        return (c, d, lo, hi, imm) -> {
            long count = byImm ? imm : lo;
            c.xmm[2 * d] = shift(c.xmm[2 * d], bits, kind, count);
            c.xmm[2 * d + 1] = shift(c.xmm[2 * d + 1], bits, kind, count);
        };
    }

    /** PSRLDQ / PSLLDQ: byte shift of the whole register; counts above 15 clear it. */
    static void byteShift(Cpu c, int d, int n, boolean left) {
        long lo = c.xmm[2 * d], hi = c.xmm[2 * d + 1];
        if (n > 15) { set(c, d, 0, 0); return; }
        int s = n * 8;
        if (s == 0) return;
        if (left) {
            if (s >= 64) { hi = lo << (s - 64); lo = 0; }
            else { hi = (hi << s) | (lo >>> (64 - s)); lo <<= s; }
        } else {
            if (s >= 64) { lo = hi >>> (s - 64); hi = 0; }
            else { lo = (lo >>> s) | (hi << (64 - s)); hi >>>= s; }
        }
        set(c, d, lo, hi);
    }

    // SWAR forms of the hottest lane operations (glibc's SSE2 string functions): whole quadwords at
    // once instead of one lambda call per element (Hacker's Delight, 2-18 and 6-1). h has the top bit
    // of every lane set.
    static final long H8 = 0x8080_8080_8080_8080L, H16 = 0x8000_8000_8000_8000L, H32 = 0x8000_0000_8000_0000L;

    static long swarAdd(long a, long b, long h) { long l = ~h; return ((a & l) + (b & l)) ^ ((a ^ b) & h); }

    static long swarSub(long a, long b, long h) { long l = ~h; return ((a | h) - (b & l)) ^ ((a ^ ~b) & h); }

    static long swarEq(long a, long b, long h, int bits) {
        long l = ~h, x = a ^ b;
        long nonzero = (((x & l) + l) | x) & h;
        return ((nonzero ^ h) >>> (bits - 1)) * ((1L << bits) - 1);
    }

    static long minub(long a, long b) {
        long r = 0;
        for (int sh = 0; sh < 64; sh += 8) r |= Math.min((a >>> sh) & 0xFF, (b >>> sh) & 0xFF) << sh;
        return r;
    }

    static long maxub(long a, long b) {
        long r = 0;
        for (int sh = 0; sh < 64; sh += 8) r |= Math.max((a >>> sh) & 0xFF, (b >>> sh) & 0xFF) << sh;
        return r;
    }

    static long madd(long a, long b) {
        long r = 0;
        for (int i = 0; i < 2; i++) {
            int s = (int) (sx(a >>> (32 * i), 16) * sx(b >>> (32 * i), 16)
                    + sx(a >>> (32 * i + 16), 16) * sx(b >>> (32 * i + 16), 16));
            r |= (s & 0xFFFF_FFFFL) << (32 * i);
        }
        return r;
    }

    static long sad(long a, long b) {
        long s = 0;
        for (int i = 0; i < 8; i++) s += Math.abs(b(a, i) - b(b, i));
        return s;
    }

    /** An element-wise operation over one whole quadword (its {@code bits}-wide lanes handled inside). */
    static Lane per(int bits, Lane f) { return bits == 64 ? f : (a, b) -> lanes(a, b, bits, f); }

    /**
     * One element-wise integer instruction, {@code dst = q(dst, src)} per quadword: the same lane arithmetic
     * for the SSE2 form (66 0F opcode, two quadwords) and the MMX form (NP 0F opcode, one quadword; PADDQ,
     * PSUBQ and PMULUDQ on MMX registers are SSE2, PAVG/PMIN/PMAX/PMULHUW/PSADBW are SSE).
     */
    record QuadOp(String mnemonic, int opcode, Lane q) {}

    static final List<QuadOp> QUAD_OPS = List.of(
            // Compares (64-66, 74-76): all-ones lanes where true.
            new QuadOp("PCMPGTB", 0x64, per(8, (a, b) -> sx(a, 8) > sx(b, 8) ? -1 : 0)),
            new QuadOp("PCMPGTW", 0x65, per(16, (a, b) -> sx(a, 16) > sx(b, 16) ? -1 : 0)),
            new QuadOp("PCMPGTD", 0x66, per(32, (a, b) -> sx(a, 32) > sx(b, 32) ? -1 : 0)),
            new QuadOp("PCMPEQB", 0x74, (a, b) -> swarEq(a, b, H8, 8)),
            new QuadOp("PCMPEQW", 0x75, (a, b) -> swarEq(a, b, H16, 16)),
            new QuadOp("PCMPEQD", 0x76, (a, b) -> swarEq(a, b, H32, 32)),
            // Arithmetic and logic (D4-FE).
            new QuadOp("PADDQ", 0xD4, Long::sum),
            new QuadOp("PMULLW", 0xD5, per(16, (a, b) -> a * b)),
            new QuadOp("PSUBUSB", 0xD8, per(8, (a, b) -> Math.max(a - b, 0))),
            new QuadOp("PSUBUSW", 0xD9, per(16, (a, b) -> Math.max(a - b, 0))),
            new QuadOp("PMINUB", 0xDA, SseIntOps::minub),
            new QuadOp("PAND", 0xDB, (a, b) -> a & b),
            new QuadOp("PADDUSB", 0xDC, per(8, (a, b) -> Math.min(a + b, 0xFF))),
            new QuadOp("PADDUSW", 0xDD, per(16, (a, b) -> Math.min(a + b, 0xFFFF))),
            new QuadOp("PMAXUB", 0xDE, SseIntOps::maxub),
            new QuadOp("PANDN", 0xDF, (a, b) -> ~a & b),
            new QuadOp("PAVGB", 0xE0, per(8, (a, b) -> (a + b + 1) >>> 1)),
            new QuadOp("PAVGW", 0xE3, per(16, (a, b) -> (a + b + 1) >>> 1)),
            new QuadOp("PMULHUW", 0xE4, per(16, (a, b) -> (a * b) >>> 16)),
            new QuadOp("PMULHW", 0xE5, per(16, (a, b) -> (sx(a, 16) * sx(b, 16)) >> 16)),
            new QuadOp("PSUBSB", 0xE8, per(8, (a, b) -> ssat(sx(a, 8) - sx(b, 8), 8))),
            new QuadOp("PSUBSW", 0xE9, per(16, (a, b) -> ssat(sx(a, 16) - sx(b, 16), 16))),
            new QuadOp("PMINSW", 0xEA, per(16, (a, b) -> sx(a, 16) < sx(b, 16) ? a : b)),
            new QuadOp("POR", 0xEB, (a, b) -> a | b),
            new QuadOp("PADDSB", 0xEC, per(8, (a, b) -> ssat(sx(a, 8) + sx(b, 8), 8))),
            new QuadOp("PADDSW", 0xED, per(16, (a, b) -> ssat(sx(a, 16) + sx(b, 16), 16))),
            new QuadOp("PMAXSW", 0xEE, per(16, (a, b) -> sx(a, 16) > sx(b, 16) ? a : b)),
            new QuadOp("PXOR", 0xEF, (a, b) -> a ^ b),
            new QuadOp("PMULUDQ", 0xF4, (a, b) -> (a & 0xFFFF_FFFFL) * (b & 0xFFFF_FFFFL)),
            new QuadOp("PMADDWD", 0xF5, SseIntOps::madd),
            new QuadOp("PSADBW", 0xF6, SseIntOps::sad),
            new QuadOp("PSUBB", 0xF8, (a, b) -> swarSub(a, b, H8)),
            new QuadOp("PSUBW", 0xF9, (a, b) -> swarSub(a, b, H16)),
            new QuadOp("PSUBD", 0xFA, (a, b) -> swarSub(a, b, H32)),
            new QuadOp("PSUBQ", 0xFB, (a, b) -> a - b),
            new QuadOp("PADDB", 0xFC, (a, b) -> swarAdd(a, b, H8)),
            new QuadOp("PADDW", 0xFD, (a, b) -> swarAdd(a, b, H16)),
            new QuadOp("PADDD", 0xFE, (a, b) -> swarAdd(a, b, H32)));

    /** Shift kinds for {@link #shift}. */
    static final int SRL = 0, SRA = 1, SLL = 2;

    /**
     * A packed shift of {@code bits}-wide lanes: by a register/memory count at {@code opcode} (D1-F3), and by
     * imm8 at {@code immOpcode} /{@code immReg} (71-73), shared by the SSE2 and MMX forms.
     */
    record ShiftOp(String mnemonic, int opcode, int immOpcode, int immReg, int bits, int kind) {}

    static final List<ShiftOp> SHIFT_OPS = List.of(
            new ShiftOp("PSRLW", 0xD1, 0x71, 2, 16, SRL), new ShiftOp("PSRAW", 0xE1, 0x71, 4, 16, SRA),
            new ShiftOp("PSLLW", 0xF1, 0x71, 6, 16, SLL), new ShiftOp("PSRLD", 0xD2, 0x72, 2, 32, SRL),
            new ShiftOp("PSRAD", 0xE2, 0x72, 4, 32, SRA), new ShiftOp("PSLLD", 0xF2, 0x72, 6, 32, SLL),
            new ShiftOp("PSRLQ", 0xD3, 0x73, 2, 64, SRL), new ShiftOp("PSLLQ", 0xF3, 0x73, 6, 64, SLL));

    static void reg(OpcodeTable t, String mn, int op, Op f) {
        t.addPrefixed(mn, MAP_0F, op, P66, MODRM | ORACLE, Imm.NONE, rm(M128A, f));
    }

    /** dst = q(dst, src) on both quadwords. */
    static Op each64(Lane q) {
        return (c, d, lo, hi, imm) -> {
            c.xmm[2 * d] = q.f(c.xmm[2 * d], lo);
            c.xmm[2 * d + 1] = q.f(c.xmm[2 * d + 1], hi);
        };
    }

    public static void register(OpcodeTable t) {
        // Unpack / pack (66 0F 60-6D).
        String[] unpl = {"PUNPCKLBW", "PUNPCKLWD", "PUNPCKLDQ"};
        String[] unph = {"PUNPCKHBW", "PUNPCKHWD", "PUNPCKHDQ"};
        for (int i = 0; i < 3; i++) {
            int bits = 8 << i;
            reg(t, unpl[i], 0x60 + i, (c, d, lo, hi, imm) -> interleave(c, d, c.xmm[2 * d], lo, bits));
            reg(t, unph[i], 0x68 + i, (c, d, lo, hi, imm) -> interleave(c, d, c.xmm[2 * d + 1], hi, bits));
        }
        reg(t, "PUNPCKLQDQ", 0x6C, (c, d, lo, hi, imm) -> c.xmm[2 * d + 1] = lo);
        reg(t, "PUNPCKHQDQ", 0x6D, (c, d, lo, hi, imm) -> { c.xmm[2 * d] = c.xmm[2 * d + 1]; c.xmm[2 * d + 1] = hi; });
        reg(t, "PACKSSWB", 0x63, (c, d, lo, hi, imm) -> pack(c, d, lo, hi, 16, true));
        reg(t, "PACKUSWB", 0x67, (c, d, lo, hi, imm) -> pack(c, d, lo, hi, 16, false));
        reg(t, "PACKSSDW", 0x6B, (c, d, lo, hi, imm) -> pack(c, d, lo, hi, 32, true));

        // Shifts by xmm/m128 count (D1-D3, E1-E2, F1-F3) and by imm8 (71-73, register only); the byte shifts
        // PSRLDQ/PSLLDQ (73 /3, /7) exist only for XMM registers.
        for (ShiftOp s : SHIFT_OPS) {
            reg(t, s.mnemonic(), s.opcode(), shiftBy(s.bits(), s.kind(), false));
            shiftImm(t, s.mnemonic(), s.immOpcode(), s.immReg(), shiftBy(s.bits(), s.kind(), true));
        }
        shiftImm(t, "PSRLDQ", 0x73, 3, (c, d, lo, hi, imm) -> byteShift(c, d, imm, false));
        shiftImm(t, "PSLLDQ", 0x73, 7, (c, d, lo, hi, imm) -> byteShift(c, d, imm, true));

        // Compares and arithmetic (64-66, 74-76, D4-FE).
        for (QuadOp q : QUAD_OPS) reg(t, q.mnemonic(), q.opcode(), each64(q.q()));
    }

    /** 66 0F 71/72/73 /reg ib: the register operand is ModRM.rm; memory forms are #UD. */
    private static void shiftImm(OpcodeTable t, String mn, int op, int reg, Op f) {
        t.add(new Entry(mn + " xmm, imm8", MAP_0F, op, P66, reg, MODRM | REG_ONLY | ORACLE, Imm.IB,
                d -> d.isMem() ? null : new XmmRm(d.rm, d.rm, null, M128U, (int) d.imm & 0xFF, f)));
    }
}

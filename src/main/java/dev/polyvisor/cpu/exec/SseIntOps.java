package dev.polyvisor.cpu.exec;

import dev.polyvisor.cpu.Cpu;
import dev.polyvisor.cpu.decode.OpcodeTable;

import static dev.polyvisor.cpu.decode.OpcodeTable.*;
import static dev.polyvisor.cpu.exec.Sse.*;

/**
 * SSE2 128-bit integer instructions, 66 0F 60-76 and 66 0F D1-FE (SDM Vol. 1, 11.4.3; Vol. 2 per
 * instruction). Only the XMM (66-prefixed) forms exist here: the MMX (NP) forms are out of scope and
 * decode to #UD because no entry is registered for them.
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

    /** dst = f(dst, src) element-wise over 128 bits. */
    static Op each(int bits, Lane f) {
        return (c, d, lo, hi, imm) -> {
            c.xmm[2 * d] = lanes(c.xmm[2 * d], lo, bits, f);
            c.xmm[2 * d + 1] = lanes(c.xmm[2 * d + 1], hi, bits, f);
        };
    }

    /** Interleaves the elements of a and b (a0, b0, a1, b1, ...) into 128 bits. */
    static void interleave(Cpu c, int d, long a, long b, int bits) {
        long m = bits == 64 ? -1L : (1L << bits) - 1;
        int n = 64 / bits;
        long lo = 0, hi = 0;
        for (int i = 0; i < n; i++) {
            long ea = (a >>> (i * bits)) & m, eb = (b >>> (i * bits)) & m;
            int k = 2 * i; // output element index
            if (k < n) { lo |= ea << (k * bits); lo |= eb << ((k + 1) * bits); }
            else { hi |= ea << ((k - n) * bits); hi |= eb << ((k + 1 - n) * bits); }
        }
        set(c, d, lo, hi);
    }

    /** PACKSS / PACKUS: narrows dst then src elements of {@code bits} to half width with saturation. */
    static void pack(Cpu c, int d, long slo, long shi, int bits, boolean signed) {
        long[] in = {c.xmm[2 * d], c.xmm[2 * d + 1], slo, shi};
        int ob = bits / 2, per = 64 / bits;
        long om = (1L << ob) - 1;
        long lo = 0, hi = 0;
        for (int q = 0; q < 4; q++) {
            for (int i = 0; i < per; i++) {
                long v = sx(in[q] >>> (i * bits), bits);
                long s = (signed ? ssat(v, ob) : usat(v, ob)) & om;
                int k = q * per + i; // output element index 0..2*per*2-1
                int outPer = 64 / ob;
                if (k < outPer) lo |= s << (k * ob); else hi |= s << ((k - outPer) * ob);
            }
        }
        set(c, d, lo, hi);
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

    static void reg(OpcodeTable t, String mn, int op, Op f) {
        t.addPrefixed(mn, MAP_0F, op, P66, MODRM | ORACLE, Imm.NONE, rm(M128A, f));
    }

    static void regs(OpcodeTable t, String mn, int op, int bits, Lane f) { reg(t, mn, op, each(bits, f)); }

    public static void register(OpcodeTable t) {
        // Unpack / pack / compare (66 0F 60-6D, 74-76).
        String[] unpl = {"PUNPCKLBW", "PUNPCKLWD", "PUNPCKLDQ"};
        String[] unph = {"PUNPCKHBW", "PUNPCKHWD", "PUNPCKHDQ"};
        for (int i = 0; i < 3; i++) {
            int bits = 8 << i;
            reg(t, unpl[i], 0x60 + i, (c, d, lo, hi, imm) -> interleave(c, d, c.xmm[2 * d], lo, bits));
            reg(t, unph[i], 0x68 + i, (c, d, lo, hi, imm) -> interleave(c, d, c.xmm[2 * d + 1], hi, bits));
            regs(t, "PCMPGT" + "BWD".charAt(i), 0x64 + i, bits, (a, b) -> sx(a, bits) > sx(b, bits) ? -1 : 0);
            long h = i == 0 ? H8 : i == 1 ? H16 : H32;
            regs(t, "PCMPEQ" + "BWD".charAt(i), 0x74 + i, 64, (a, b) -> swarEq(a, b, h, bits));
        }
        reg(t, "PUNPCKLQDQ", 0x6C, (c, d, lo, hi, imm) -> c.xmm[2 * d + 1] = lo);
        reg(t, "PUNPCKHQDQ", 0x6D, (c, d, lo, hi, imm) -> { c.xmm[2 * d] = c.xmm[2 * d + 1]; c.xmm[2 * d + 1] = hi; });
        reg(t, "PACKSSWB", 0x63, (c, d, lo, hi, imm) -> pack(c, d, lo, hi, 16, true));
        reg(t, "PACKUSWB", 0x67, (c, d, lo, hi, imm) -> pack(c, d, lo, hi, 16, false));
        reg(t, "PACKSSDW", 0x6B, (c, d, lo, hi, imm) -> pack(c, d, lo, hi, 32, true));

        // Shifts by xmm/m128 count (D1-D3, E1-E2, F1-F3) and by imm8 (71-73, register only).
        reg(t, "PSRLW", 0xD1, shiftBy(16, 0, false));
        reg(t, "PSRLD", 0xD2, shiftBy(32, 0, false));
        reg(t, "PSRLQ", 0xD3, shiftBy(64, 0, false));
        reg(t, "PSRAW", 0xE1, shiftBy(16, 1, false));
        reg(t, "PSRAD", 0xE2, shiftBy(32, 1, false));
        reg(t, "PSLLW", 0xF1, shiftBy(16, 2, false));
        reg(t, "PSLLD", 0xF2, shiftBy(32, 2, false));
        reg(t, "PSLLQ", 0xF3, shiftBy(64, 2, false));
        shiftImm(t, "PSRLW", 0x71, 2, shiftBy(16, 0, true));
        shiftImm(t, "PSRAW", 0x71, 4, shiftBy(16, 1, true));
        shiftImm(t, "PSLLW", 0x71, 6, shiftBy(16, 2, true));
        shiftImm(t, "PSRLD", 0x72, 2, shiftBy(32, 0, true));
        shiftImm(t, "PSRAD", 0x72, 4, shiftBy(32, 1, true));
        shiftImm(t, "PSLLD", 0x72, 6, shiftBy(32, 2, true));
        shiftImm(t, "PSRLQ", 0x73, 2, shiftBy(64, 0, true));
        shiftImm(t, "PSRLDQ", 0x73, 3, (c, d, lo, hi, imm) -> byteShift(c, d, imm, false));
        shiftImm(t, "PSLLQ", 0x73, 6, shiftBy(64, 2, true));
        shiftImm(t, "PSLLDQ", 0x73, 7, (c, d, lo, hi, imm) -> byteShift(c, d, imm, true));

        // Arithmetic (D4-FE).
        regs(t, "PADDQ", 0xD4, 64, Long::sum);
        regs(t, "PMULLW", 0xD5, 16, (a, b) -> a * b);
        regs(t, "PSUBUSB", 0xD8, 8, (a, b) -> Math.max(a - b, 0));
        regs(t, "PSUBUSW", 0xD9, 16, (a, b) -> Math.max(a - b, 0));
        regs(t, "PMINUB", 0xDA, 64, SseIntOps::minub);
        regs(t, "PAND", 0xDB, 64, (a, b) -> a & b);
        regs(t, "PADDUSB", 0xDC, 8, (a, b) -> Math.min(a + b, 0xFF));
        regs(t, "PADDUSW", 0xDD, 16, (a, b) -> Math.min(a + b, 0xFFFF));
        regs(t, "PMAXUB", 0xDE, 64, SseIntOps::maxub);
        regs(t, "PANDN", 0xDF, 64, (a, b) -> ~a & b);
        regs(t, "PAVGB", 0xE0, 8, (a, b) -> (a + b + 1) >>> 1);
        regs(t, "PAVGW", 0xE3, 16, (a, b) -> (a + b + 1) >>> 1);
        regs(t, "PMULHUW", 0xE4, 16, (a, b) -> (a * b) >>> 16);
        regs(t, "PMULHW", 0xE5, 16, (a, b) -> (sx(a, 16) * sx(b, 16)) >> 16);
        regs(t, "PSUBSB", 0xE8, 8, (a, b) -> ssat(sx(a, 8) - sx(b, 8), 8));
        regs(t, "PSUBSW", 0xE9, 16, (a, b) -> ssat(sx(a, 16) - sx(b, 16), 16));
        regs(t, "PMINSW", 0xEA, 16, (a, b) -> sx(a, 16) < sx(b, 16) ? a : b);
        regs(t, "POR", 0xEB, 64, (a, b) -> a | b);
        regs(t, "PADDSB", 0xEC, 8, (a, b) -> ssat(sx(a, 8) + sx(b, 8), 8));
        regs(t, "PADDSW", 0xED, 16, (a, b) -> ssat(sx(a, 16) + sx(b, 16), 16));
        regs(t, "PMAXSW", 0xEE, 16, (a, b) -> sx(a, 16) > sx(b, 16) ? a : b);
        regs(t, "PXOR", 0xEF, 64, (a, b) -> a ^ b);
        regs(t, "PMULUDQ", 0xF4, 64, (a, b) -> (a & 0xFFFF_FFFFL) * (b & 0xFFFF_FFFFL));
        regs(t, "PMADDWD", 0xF5, 64, SseIntOps::madd);
        regs(t, "PSADBW", 0xF6, 64, SseIntOps::sad);
        regs(t, "PSUBB", 0xF8, 64, (a, b) -> swarSub(a, b, H8));
        regs(t, "PSUBW", 0xF9, 64, (a, b) -> swarSub(a, b, H16));
        regs(t, "PSUBD", 0xFA, 64, (a, b) -> swarSub(a, b, H32));
        regs(t, "PSUBQ", 0xFB, 64, (a, b) -> a - b);
        regs(t, "PADDB", 0xFC, 64, (a, b) -> swarAdd(a, b, H8));
        regs(t, "PADDW", 0xFD, 64, (a, b) -> swarAdd(a, b, H16));
        regs(t, "PADDD", 0xFE, 64, (a, b) -> swarAdd(a, b, H32));
    }

    /** 66 0F 71/72/73 /reg ib: the register operand is ModRM.rm; memory forms are #UD. */
    private static void shiftImm(OpcodeTable t, String mn, int op, int reg, Op f) {
        t.add(new Entry(mn + " xmm, imm8", MAP_0F, op, P66, reg, MODRM | REG_ONLY | ORACLE, Imm.IB,
                d -> d.isMem() ? null : new XmmRm(d.rm, d.rm, null, M128U, (int) d.imm & 0xFF, f)));
    }
}

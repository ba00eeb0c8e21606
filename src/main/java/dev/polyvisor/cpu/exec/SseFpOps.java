package dev.polyvisor.cpu.exec;

import dev.polyvisor.cpu.Cpu;
import dev.polyvisor.cpu.Flags;
import dev.polyvisor.cpu.decode.Ea;
import dev.polyvisor.cpu.decode.Insn;
import dev.polyvisor.cpu.decode.OpcodeTable;
import dev.polyvisor.cpu.exec.SoftFloat.Format;

import static dev.polyvisor.cpu.decode.OpcodeTable.*;
import static dev.polyvisor.cpu.exec.Sse.*;
import static dev.polyvisor.cpu.exec.SoftFloat.F32;
import static dev.polyvisor.cpu.exec.SoftFloat.F64;

/**
 * SSE/SSE2 floating-point arithmetic, comparisons and conversions (SDM Vol. 1, 10.4.2, 11.4.2; Vol. 2
 * per instruction). Semantics per lane come from {@link SseFloat}; the conversions with an MMX operand
 * (CVTPI2PS, CVTPS2PI, CVTTPS2PI, CVTPI2PD, CVTPD2PI, CVTTPD2PI: NP/66 0F 2A/2C/2D) are in {@link MmxConvertOps}.
 */
public final class SseFpOps {
    private SseFpOps() {}

    static final int ORA = MODRM | ORACLE;

    /** A per-lane operation: a is the destination lane, b the source lane, raw bits. */
    @FunctionalInterface
    interface Lane { long f(Cpu c, long a, long b, Format fmt, int imm); }

    static long s(long q, int i) { return (q >>> (32 * i)) & 0xFFFF_FFFFL; }

    static Op packedS(Lane fn) {
        return (c, d, lo, hi, imm) -> {
            long dl = c.xmm[2 * d], dh = c.xmm[2 * d + 1];
            int old = SseFloat.begin(c);
            long r0 = fn.f(c, s(dl, 0), s(lo, 0), F32, imm), r1 = fn.f(c, s(dl, 1), s(lo, 1), F32, imm);
            long r2 = fn.f(c, s(dh, 0), s(hi, 0), F32, imm), r3 = fn.f(c, s(dh, 1), s(hi, 1), F32, imm);
            SseFloat.end(c, old);
            set(c, d, (r0 & 0xFFFF_FFFFL) | r1 << 32, (r2 & 0xFFFF_FFFFL) | r3 << 32);
        };
    }

    static Op scalarS(Lane fn) {
        return (c, d, lo, hi, imm) -> {
            int old = SseFloat.begin(c);
            long r = fn.f(c, s(c.xmm[2 * d], 0), s(lo, 0), F32, imm);
            SseFloat.end(c, old);
            c.xmm[2 * d] = (c.xmm[2 * d] & ~0xFFFF_FFFFL) | (r & 0xFFFF_FFFFL);
        };
    }

    static Op packedD(Lane fn) {
        return (c, d, lo, hi, imm) -> {
            int old = SseFloat.begin(c);
            long r0 = fn.f(c, c.xmm[2 * d], lo, F64, imm), r1 = fn.f(c, c.xmm[2 * d + 1], hi, F64, imm);
            SseFloat.end(c, old);
            set(c, d, r0, r1);
        };
    }

    static Op scalarD(Lane fn) {
        return (c, d, lo, hi, imm) -> {
            int old = SseFloat.begin(c);
            long r = fn.f(c, c.xmm[2 * d], lo, F64, imm);
            SseFloat.end(c, old);
            c.xmm[2 * d] = r;
        };
    }

    /** Registers the PS, PD, SS, SD forms of one opcode. */
    static void fp4(OpcodeTable t, String mn, int op, Imm imm, int flags, Lane fn) {
        t.addPrefixed(mn + "PS", MAP_0F, op, NP, flags, imm, rm(M128A, packedS(fn)));
        t.addPrefixed(mn + "PD", MAP_0F, op, P66, flags, imm, rm(M128A, packedD(fn)));
        t.addPrefixed(mn + "SS", MAP_0F, op, PF3, flags, imm, rm(M32, scalarS(fn)));
        t.addPrefixed(mn + "SD", MAP_0F, op, PF2, flags, imm, rm(M64, scalarD(fn)));
    }

    static Lane arith(int kind) { return (c, a, b, f, imm) -> SseFloat.arith(c, kind, a, b, f); }

    public static void register(OpcodeTable t) {
        fp4(t, "SQRT", 0x51, Imm.NONE, ORA, arith(SseFloat.SQRT));
        fp4(t, "ADD", 0x58, Imm.NONE, ORA, arith(SseFloat.ADD));
        fp4(t, "MUL", 0x59, Imm.NONE, ORA, arith(SseFloat.MUL));
        fp4(t, "SUB", 0x5C, Imm.NONE, ORA, arith(SseFloat.SUB));
        fp4(t, "MIN", 0x5D, Imm.NONE, ORA, (c, a, b, f, imm) -> SseFloat.minMax(c, a, b, f, false));
        fp4(t, "DIV", 0x5E, Imm.NONE, ORA, arith(SseFloat.DIV));
        fp4(t, "MAX", 0x5F, Imm.NONE, ORA, (c, a, b, f, imm) -> SseFloat.minMax(c, a, b, f, true));
        fp4(t, "CMP", 0xC2, Imm.IB, ORA, (c, a, b, f, imm) ->
                SseFloat.cmpPredicate(c, a, b, f, imm & 7) ? (f == F64 ? -1L : 0xFFFF_FFFFL) : 0);

        // RCP/RSQRT approximations: not bit-identical to hardware; the oracle compares them within the
        // SDM's error bound (oracle.ApproximateResults).
        Lane rcp = (c, a, b, f, imm) -> SseFloat.approx(b, false), rsqrt = (c, a, b, f, imm) -> SseFloat.approx(b, true);
        t.addPrefixed("RSQRTPS", MAP_0F, 0x52, NP, ORA, Imm.NONE, rm(M128A, packedS(rsqrt)));
        t.addPrefixed("RSQRTSS", MAP_0F, 0x52, PF3, ORA, Imm.NONE, rm(M32, scalarS(rsqrt)));
        t.addPrefixed("RCPPS", MAP_0F, 0x53, NP, ORA, Imm.NONE, rm(M128A, packedS(rcp)));
        t.addPrefixed("RCPSS", MAP_0F, 0x53, PF3, ORA, Imm.NONE, rm(M32, scalarS(rcp)));

        // 0F 2E/2F: UCOMISS/UCOMISD (QNaN quiet), COMISS/COMISD (any NaN signals).
        t.addPrefixed("UCOMISS", MAP_0F, 0x2E, NP, ORA, Imm.NONE, rm(M32, comis(F32, false)));
        t.addPrefixed("UCOMISD", MAP_0F, 0x2E, P66, ORA, Imm.NONE, rm(M64, comis(F64, false)));
        t.addPrefixed("COMISS", MAP_0F, 0x2F, NP, ORA, Imm.NONE, rm(M32, comis(F32, true)));
        t.addPrefixed("COMISD", MAP_0F, 0x2F, P66, ORA, Imm.NONE, rm(M64, comis(F64, true)));

        // 0F 5A: CVTPS2PD, CVTPD2PS, CVTSS2SD, CVTSD2SS.
        t.addPrefixed("CVTPS2PD", MAP_0F, 0x5A, NP, ORA, Imm.NONE, rm(M64, (c, d, lo, hi, imm) -> {
            int old = SseFloat.begin(c);
            long r0 = SseFloat.floatToDouble(c, s(lo, 0)), r1 = SseFloat.floatToDouble(c, s(lo, 1));
            SseFloat.end(c, old);
            set(c, d, r0, r1);
        }));
        t.addPrefixed("CVTPD2PS", MAP_0F, 0x5A, P66, ORA, Imm.NONE, rm(M128A, (c, d, lo, hi, imm) -> {
            int old = SseFloat.begin(c);
            long r0 = SseFloat.doubleToFloat(c, lo), r1 = SseFloat.doubleToFloat(c, hi);
            SseFloat.end(c, old);
            set(c, d, r0 | r1 << 32, 0);
        }));
        t.addPrefixed("CVTSS2SD", MAP_0F, 0x5A, PF3, ORA, Imm.NONE, rm(M32, scalarD((c, a, b, f, imm) -> SseFloat.floatToDouble(c, s(b, 0)))));
        t.addPrefixed("CVTSD2SS", MAP_0F, 0x5A, PF2, ORA, Imm.NONE, rm(M64, (c, d, lo, hi, imm) -> {
            int old = SseFloat.begin(c);
            long r = SseFloat.doubleToFloat(c, lo);
            SseFloat.end(c, old);
            c.xmm[2 * d] = (c.xmm[2 * d] & ~0xFFFF_FFFFL) | r;
        }));

        // 0F 5B: CVTDQ2PS, CVTPS2DQ, CVTTPS2DQ.
        t.addPrefixed("CVTDQ2PS", MAP_0F, 0x5B, NP, ORA, Imm.NONE, rm(M128A, packedS((c, a, b, f, imm) -> SseFloat.fromInt(c, (int) b, F32))));
        t.addPrefixed("CVTPS2DQ", MAP_0F, 0x5B, P66, ORA, Imm.NONE, rm(M128A, packedS((c, a, b, f, imm) -> SseFloat.toInt(c, b, F32, 32, false))));
        t.addPrefixed("CVTTPS2DQ", MAP_0F, 0x5B, PF3, ORA, Imm.NONE, rm(M128A, packedS((c, a, b, f, imm) -> SseFloat.toInt(c, b, F32, 32, true))));

        // 0F E6: CVTTPD2DQ (66), CVTPD2DQ (F2), CVTDQ2PD (F3).
        t.addPrefixed("CVTTPD2DQ", MAP_0F, 0xE6, P66, ORA, Imm.NONE, rm(M128A, pd2dq(true)));
        t.addPrefixed("CVTPD2DQ", MAP_0F, 0xE6, PF2, ORA, Imm.NONE, rm(M128A, pd2dq(false)));
        t.addPrefixed("CVTDQ2PD", MAP_0F, 0xE6, PF3, ORA, Imm.NONE, rm(M64, (c, d, lo, hi, imm) -> {
            int old = SseFloat.begin(c);
            long r0 = SseFloat.fromInt(c, (int) lo, F64), r1 = SseFloat.fromInt(c, (int) (lo >> 32), F64);
            SseFloat.end(c, old);
            set(c, d, r0, r1);
        }));

        // 0F 2A: CVTSI2SS / CVTSI2SD xmm, r/m32 (r/m64 with REX.W).
        t.addPrefixed("CVTSI2SS", MAP_0F, 0x2A, PF3, ORA, Imm.NONE, cvtsi2(F32));
        t.addPrefixed("CVTSI2SD", MAP_0F, 0x2A, PF2, ORA, Imm.NONE, cvtsi2(F64));
        // 0F 2C/2D: CVTTSS2SI, CVTTSD2SI, CVTSS2SI, CVTSD2SI.
        t.addPrefixed("CVTTSS2SI", MAP_0F, 0x2C, PF3, ORA, Imm.NONE, cvt2si(F32, true));
        t.addPrefixed("CVTTSD2SI", MAP_0F, 0x2C, PF2, ORA, Imm.NONE, cvt2si(F64, true));
        t.addPrefixed("CVTSS2SI", MAP_0F, 0x2D, PF3, ORA, Imm.NONE, cvt2si(F32, false));
        t.addPrefixed("CVTSD2SI", MAP_0F, 0x2D, PF2, ORA, Imm.NONE, cvt2si(F64, false));
    }

    static Op comis(Format f, boolean signalQuiet) {
        return (c, d, lo, hi, imm) -> {
            long a = f == F64 ? c.xmm[2 * d] : s(c.xmm[2 * d], 0), b = f == F64 ? lo : s(lo, 0);
            int old = SseFloat.begin(c);
            int r = SseFloat.compare(c, a, b, f, signalQuiet);
            SseFloat.end(c, old);
            // SDM COMISS: unordered ZF,PF,CF = 111; greater 000; less 001; equal 100; OF, SF, AF cleared.
            c.ccOp = Flags.EFLAGS;
            c.ccSrc = switch (r) {
                case 2 -> Flags.ZF | Flags.PF | Flags.CF;
                case 1 -> 0;
                case -1 -> Flags.CF;
                default -> Flags.ZF;
            };
        };
    }

    static Op pd2dq(boolean truncate) {
        return (c, d, lo, hi, imm) -> {
            int old = SseFloat.begin(c);
            long r0 = SseFloat.toInt(c, lo, F64, 32, truncate), r1 = SseFloat.toInt(c, hi, F64, 32, truncate);
            SseFloat.end(c, old);
            set(c, d, r0 | r1 << 32, 0);
        };
    }

    static Factory cvtsi2(Format f) {
        return d -> {
            int size = d.rexW ? 8 : 4;
            return new SseMoveOps.XmmFromGpr(d.reg, d.isMem() ? -1 : d.rm, d.isMem() ? d.ea : null, size, 0, (c, x, v, hi, imm) -> {
                long sv = size == 4 ? (int) v : v;
                int old = SseFloat.begin(c);
                long r = SseFloat.fromInt(c, sv, f);
                SseFloat.end(c, old);
                if (f == F64) c.xmm[2 * x] = r;
                else c.xmm[2 * x] = (c.xmm[2 * x] & ~0xFFFF_FFFFL) | r;
            });
        };
    }

    static Factory cvt2si(Format f, boolean truncate) {
        return d -> new CvtToGpr(d.reg, d.isMem() ? -1 : d.rm, d.isMem() ? d.ea : null, f, d.rexW ? 64 : 32, truncate);
    }

    /** CVT(T)SS2SI / CVT(T)SD2SI r32/r64, xmm/m32/m64. */
    static final class CvtToGpr extends Insn {
        final int gpr, src, bits;
        final Ea ea;
        final Format f;
        final boolean truncate;

        CvtToGpr(int gpr, int src, Ea ea, Format f, int bits, boolean truncate) {
            this.gpr = gpr; this.src = src; this.ea = ea; this.f = f; this.bits = bits; this.truncate = truncate;
        }

        @Override public void exec(Cpu c) {
            check(c);
            long a;
            if (ea == null) a = f == F64 ? c.xmm[2 * src] : c.xmm[2 * src] & 0xFFFF_FFFFL;
            else a = f == F64 ? c.mmu.read64(ea.lin(c)) : c.mmu.read32(ea.lin(c)) & 0xFFFF_FFFFL;
            int old = SseFloat.begin(c);
            long r = SseFloat.toInt(c, a, f, bits, truncate);
            SseFloat.end(c, old);
            Regs.set(c, gpr, bits / 8, r);
        }
    }
}

package dev.polyvisor.cpu.exec;

import dev.polyvisor.cpu.Cpu;
import dev.polyvisor.cpu.decode.Ea;
import dev.polyvisor.cpu.decode.Insn;
import dev.polyvisor.cpu.decode.OpcodeTable;

import static dev.polyvisor.cpu.decode.OpcodeTable.*;
import static dev.polyvisor.cpu.exec.SoftFloat.F32;
import static dev.polyvisor.cpu.exec.SoftFloat.F64;

/**
 * The SSE/SSE2 conversions between MMX registers and XMM floating point (SDM Vol. 2A CVTPI2PS, CVTPI2PD,
 * CVTPS2PI, CVTTPS2PI, CVTPD2PI, CVTTPD2PI; NP/66 0F 2A, 2C, 2D). Lane arithmetic and MXCSR flags come from
 * {@link SseFloat}, as for CVTDQ2PS/CVTPS2DQ. Exceptions: the legacy-SSE conditions, then a pending x87
 * exception (#MF), then the memory operand, then SIMD floating point (#XM or #UD by CR4.OSXMMEXCPT), as in
 * {@link Mmx#checkSse}. The x87-to-MMX transition (TOP 0, tags valid) is made when an MMX register is an
 * operand: always for the *2PI forms, only with a register source for CVTPI2PS/PD (SDM CVTPI2PS: "When the
 * source operand is an MMX technology register, this instruction causes a transition ..."), whose memory
 * forms also ignore a pending x87 exception. As measured on the AMD host: the transition is made after the
 * memory operand is read (a #PF leaves the x87 state alone) and before a SIMD floating-point exception.
 */
public final class MmxConvertOps {
    private MmxConvertOps() {}

    static final int ORA = MODRM | ORACLE;

    public static void register(OpcodeTable t) {
        t.addPrefixed("CVTPI2PS xmm, mm/m64", MAP_0F, 0x2A, NP, ORA, Imm.NONE, d -> new CvtPi2(d.reg, d.rm & 7, d.isMem() ? d.ea : null, false));
        t.addPrefixed("CVTPI2PD xmm, mm/m64", MAP_0F, 0x2A, P66, ORA, Imm.NONE, d -> new CvtPi2(d.reg, d.rm & 7, d.isMem() ? d.ea : null, true));
        t.addPrefixed("CVTTPS2PI mm, xmm/m64", MAP_0F, 0x2C, NP, ORA, Imm.NONE, d -> new Cvt2Pi(d.reg & 7, d.rm, d.isMem() ? d.ea : null, false, true));
        t.addPrefixed("CVTTPD2PI mm, xmm/m128", MAP_0F, 0x2C, P66, ORA, Imm.NONE, d -> new Cvt2Pi(d.reg & 7, d.rm, d.isMem() ? d.ea : null, true, true));
        t.addPrefixed("CVTPS2PI mm, xmm/m64", MAP_0F, 0x2D, NP, ORA, Imm.NONE, d -> new Cvt2Pi(d.reg & 7, d.rm, d.isMem() ? d.ea : null, false, false));
        t.addPrefixed("CVTPD2PI mm, xmm/m128", MAP_0F, 0x2D, P66, ORA, Imm.NONE, d -> new Cvt2Pi(d.reg & 7, d.rm, d.isMem() ? d.ea : null, true, false));
    }

    /**
     * CVTPI2PS xmm, mm/m64: two signed dwords to singles in the low quadword (rounded per MXCSR), the high
     * quadword kept; CVTPI2PD xmm, mm/m64: to two doubles (exact).
     */
    static final class CvtPi2 extends Insn {
        final int xmm, mm;
        final Ea ea;
        final boolean toDouble;

        CvtPi2(int xmm, int mm, Ea ea, boolean toDouble) { this.xmm = xmm; this.mm = mm; this.ea = ea; this.toDouble = toDouble; }

        @Override public void exec(Cpu c) {
            long s;
            if (ea == null) {
                Mmx.checkSse(c);
                s = c.stMant[mm];
                Mmx.enter(c);
            } else {
                Sse.check(c); // no MMX register: no pending-x87 #MF and no transition (AMD host)
                s = c.mmu.read64(ea.lin(c));
            }
            int old = SseFloat.begin(c);
            long r0 = SseFloat.fromInt(c, (int) s, toDouble ? F64 : F32);
            long r1 = SseFloat.fromInt(c, (int) (s >> 32), toDouble ? F64 : F32);
            SseFloat.end(c, old);
            if (toDouble) Sse.set(c, xmm, r0, r1);
            else c.xmm[2 * xmm] = (r0 & 0xFFFF_FFFFL) | r1 << 32;
        }
    }

    /**
     * CVT(T)PS2PI mm, xmm/m64 (two singles) and CVT(T)PD2PI mm, xmm/m128 (two doubles; a 16-byte aligned
     * memory operand, else #GP(0)) to two signed dwords, rounded per MXCSR.RC or truncated; NaN and
     * out-of-range lanes give the integer indefinite 0x80000000 with IE.
     */
    static final class Cvt2Pi extends Insn {
        final int mm, xmm;
        final Ea ea;
        final boolean fromDouble, truncate;

        Cvt2Pi(int mm, int xmm, Ea ea, boolean fromDouble, boolean truncate) {
            this.mm = mm; this.xmm = xmm; this.ea = ea; this.fromDouble = fromDouble; this.truncate = truncate;
        }

        @Override public void exec(Cpu c) {
            Mmx.checkSse(c);
            long lo, hi;
            if (ea == null) {
                lo = c.xmm[2 * xmm];
                hi = c.xmm[2 * xmm + 1];
            } else if (fromDouble) {
                long la = Sse.aligned16(c, ea.lin(c));
                lo = c.mmu.read64(la);
                hi = c.mmu.read64(ea.lin(c, 8));
            } else {
                lo = c.mmu.read64(ea.lin(c));
                hi = 0;
            }
            Mmx.enter(c); // before a SIMD floating-point exception is delivered (AMD host)
            int old = SseFloat.begin(c);
            long r0, r1;
            if (fromDouble) {
                r0 = SseFloat.toInt(c, lo, F64, 32, truncate);
                r1 = SseFloat.toInt(c, hi, F64, 32, truncate);
            } else {
                r0 = SseFloat.toInt(c, lo & 0xFFFF_FFFFL, F32, 32, truncate);
                r1 = SseFloat.toInt(c, lo >>> 32, F32, 32, truncate);
            }
            SseFloat.end(c, old);
            Mmx.set(c, mm, (r0 & 0xFFFF_FFFFL) | r1 << 32);
        }
    }
}

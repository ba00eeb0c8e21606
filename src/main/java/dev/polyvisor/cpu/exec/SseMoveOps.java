package dev.polyvisor.cpu.exec;

import dev.polyvisor.cpu.Cpu;
import dev.polyvisor.cpu.decode.Ea;
import dev.polyvisor.cpu.decode.Insn;
import dev.polyvisor.cpu.decode.OpcodeTable;

import static dev.polyvisor.cpu.decode.OpcodeTable.*;
import static dev.polyvisor.cpu.exec.Sse.*;

/**
 * SSE/SSE2 data movement, shuffles and bitwise logic (SDM Vol. 1, 10.4.1, 10.4.4, 11.4.1, 11.4.4;
 * Vol. 2 per instruction). These never touch MXCSR. The MMX (NP 0F 6E/6F/7E/7F/70/C4/C5/D7/E7/F7) forms,
 * MOVQ2DQ and MOVDQ2Q are in {@link MmxOps}.
 */
public final class SseMoveOps {
    private SseMoveOps() {}

    static final Op COPY = (c, d, lo, hi, imm) -> set(c, d, lo, hi);
    static final Op COPY_ZX64 = (c, d, lo, hi, imm) -> set(c, d, lo, 0);

    /** Load from xmm/mem into ModRM.reg; store from ModRM.reg into xmm/mem (register form copies). */
    static Factory storeOrMove(int size, boolean align, Op regForm) {
        return d -> d.isMem() ? new XmmStore(d.reg, d.ea, size, align, false) : new XmmRm(d.rm, d.reg, null, M128U, 0, regForm);
    }

    /** Chooses the op by operand form (MOVSS/MOVSD/MOVLPS/MOVHPS differ between register and memory). */
    static Factory byForm(int memKind, Op memOp, Op regOp) {
        return d -> d.isMem() ? new XmmRm(d.reg, -1, d.ea, memKind, 0, memOp) : new XmmRm(d.reg, d.rm, null, M128U, 0, regOp);
    }

    static final int ORA = MODRM | ORACLE;

    public static void register(OpcodeTable t) {
        // 0F 10/11: MOVUPS, MOVUPD, MOVSS, MOVSD.
        t.addPrefixed("MOVUPS xmm, xmm/m128", MAP_0F, 0x10, NP, ORA, Imm.NONE, rm(M128U, COPY));
        t.addPrefixed("MOVUPD xmm, xmm/m128", MAP_0F, 0x10, P66, ORA, Imm.NONE, rm(M128U, COPY));
        t.addPrefixed("MOVSS xmm, xmm/m32", MAP_0F, 0x10, PF3, ORA, Imm.NONE, byForm(M32, COPY,
                (c, d, lo, hi, imm) -> c.xmm[2 * d] = (c.xmm[2 * d] & ~0xFFFF_FFFFL) | (lo & 0xFFFF_FFFFL)));
        t.addPrefixed("MOVSD xmm, xmm/m64", MAP_0F, 0x10, PF2, ORA, Imm.NONE, byForm(M64, COPY,
                (c, d, lo, hi, imm) -> c.xmm[2 * d] = lo));
        t.addPrefixed("MOVUPS xmm/m128, xmm", MAP_0F, 0x11, NP, ORA, Imm.NONE, storeOrMove(16, false, COPY));
        t.addPrefixed("MOVUPD xmm/m128, xmm", MAP_0F, 0x11, P66, ORA, Imm.NONE, storeOrMove(16, false, COPY));
        t.addPrefixed("MOVSS xmm/m32, xmm", MAP_0F, 0x11, PF3, ORA, Imm.NONE, storeOrMove(4, false,
                (c, d, lo, hi, imm) -> c.xmm[2 * d] = (c.xmm[2 * d] & ~0xFFFF_FFFFL) | (lo & 0xFFFF_FFFFL)));
        t.addPrefixed("MOVSD xmm/m64, xmm", MAP_0F, 0x11, PF2, ORA, Imm.NONE, storeOrMove(8, false,
                (c, d, lo, hi, imm) -> c.xmm[2 * d] = lo));

        // 0F 12/13/16/17: low/high quadword moves.
        Op setLo = (c, d, lo, hi, imm) -> c.xmm[2 * d] = lo;
        Op setHi = (c, d, lo, hi, imm) -> c.xmm[2 * d + 1] = lo;
        t.addPrefixed("MOVLPS xmm, m64 | MOVHLPS xmm, xmm", MAP_0F, 0x12, NP, ORA, Imm.NONE, byForm(M64, setLo,
                (c, d, lo, hi, imm) -> c.xmm[2 * d] = hi));
        t.addPrefixed("MOVLPD xmm, m64", MAP_0F, 0x12, P66, ORA | MEM_ONLY, Imm.NONE, rm(M64, setLo));
        t.addPrefixed("MOVLPS m64, xmm", MAP_0F, 0x13, NP, ORA | MEM_ONLY, Imm.NONE, store(8, false, false));
        t.addPrefixed("MOVLPD m64, xmm", MAP_0F, 0x13, P66, ORA | MEM_ONLY, Imm.NONE, store(8, false, false));
        t.addPrefixed("MOVHPS xmm, m64 | MOVLHPS xmm, xmm", MAP_0F, 0x16, NP, ORA, Imm.NONE, byForm(M64, setHi, setHi));
        t.addPrefixed("MOVHPD xmm, m64", MAP_0F, 0x16, P66, ORA | MEM_ONLY, Imm.NONE, rm(M64, setHi));
        t.addPrefixed("MOVHPS m64, xmm", MAP_0F, 0x17, NP, ORA | MEM_ONLY, Imm.NONE, store(8, false, true));
        t.addPrefixed("MOVHPD m64, xmm", MAP_0F, 0x17, P66, ORA | MEM_ONLY, Imm.NONE, store(8, false, true));

        // 0F 14/15: UNPCKLPS/PD, UNPCKHPS/PD.
        t.addPrefixed("UNPCKLPS", MAP_0F, 0x14, NP, ORA, Imm.NONE, rm(M128A, (c, d, lo, hi, imm) -> SseIntOps.interleave(c, d, c.xmm[2 * d], lo, 32)));
        t.addPrefixed("UNPCKLPD", MAP_0F, 0x14, P66, ORA, Imm.NONE, rm(M128A, setHi));
        t.addPrefixed("UNPCKHPS", MAP_0F, 0x15, NP, ORA, Imm.NONE, rm(M128A, (c, d, lo, hi, imm) -> SseIntOps.interleave(c, d, c.xmm[2 * d + 1], hi, 32)));
        t.addPrefixed("UNPCKHPD", MAP_0F, 0x15, P66, ORA, Imm.NONE, rm(M128A, (c, d, lo, hi, imm) -> set(c, d, c.xmm[2 * d + 1], hi)));

        // 0F 28/29/2B: aligned and non-temporal moves.
        t.addPrefixed("MOVAPS xmm, xmm/m128", MAP_0F, 0x28, NP, ORA, Imm.NONE, rm(M128A, COPY));
        t.addPrefixed("MOVAPD xmm, xmm/m128", MAP_0F, 0x28, P66, ORA, Imm.NONE, rm(M128A, COPY));
        t.addPrefixed("MOVAPS xmm/m128, xmm", MAP_0F, 0x29, NP, ORA, Imm.NONE, storeOrMove(16, true, COPY));
        t.addPrefixed("MOVAPD xmm/m128, xmm", MAP_0F, 0x29, P66, ORA, Imm.NONE, storeOrMove(16, true, COPY));
        t.addPrefixed("MOVNTPS m128, xmm", MAP_0F, 0x2B, NP, ORA | MEM_ONLY, Imm.NONE, store(16, true, false));
        t.addPrefixed("MOVNTPD m128, xmm", MAP_0F, 0x2B, P66, ORA | MEM_ONLY, Imm.NONE, store(16, true, false));

        // 0F 50: MOVMSKPS/PD; 66 0F D7: PMOVMSKB (register only).
        t.addPrefixed("MOVMSKPS r, xmm", MAP_0F, 0x50, NP, ORA | REG_ONLY, Imm.NONE, toGpr((lo, hi, imm) ->
                (lo >>> 31 & 1) | (lo >>> 62 & 2) | (hi >>> 29 & 4) | (hi >>> 60 & 8)));
        t.addPrefixed("MOVMSKPD r, xmm", MAP_0F, 0x50, P66, ORA | REG_ONLY, Imm.NONE, toGpr((lo, hi, imm) -> (lo >>> 63) | (hi >>> 62 & 2)));
        t.addPrefixed("PMOVMSKB r, xmm", MAP_0F, 0xD7, P66, ORA | REG_ONLY, Imm.NONE, toGpr((lo, hi, imm) -> {
            long m = 0;
            for (int i = 0; i < 8; i++) m |= ((lo >>> (8 * i + 7)) & 1) << i | ((hi >>> (8 * i + 7)) & 1) << (i + 8);
            return m;
        }));
        t.addPrefixed("PEXTRW r, xmm, imm8", MAP_0F, 0xC5, P66, ORA | REG_ONLY, Imm.IB, toGpr((lo, hi, imm) -> {
            int i = imm & 7;
            return w(i < 4 ? lo : hi, i & 3);
        }));

        // 0F 54-57: bitwise logic on packed single/double (same bits either way).
        String[] logic = {"AND", "ANDN", "OR", "XOR"};
        SseIntOps.Lane[] fs = {(a, b) -> a & b, (a, b) -> ~a & b, (a, b) -> a | b, (a, b) -> a ^ b};
        for (int i = 0; i < 4; i++) {
            t.addPrefixed(logic[i] + "PS", MAP_0F, 0x54 + i, NP, ORA, Imm.NONE, rm(M128A, SseIntOps.each64(fs[i])));
            t.addPrefixed(logic[i] + "PD", MAP_0F, 0x54 + i, P66, ORA, Imm.NONE, rm(M128A, SseIntOps.each64(fs[i])));
        }

        // 66 0F 6E / 7E, F3 0F 7E, 66 0F D6: MOVD/MOVQ.
        t.addPrefixed("MOVD/MOVQ xmm, r/m", MAP_0F, 0x6E, P66, ORA, Imm.NONE, fromGpr(COPY_ZX64));
        t.addPrefixed("MOVD/MOVQ r/m, xmm", MAP_0F, 0x7E, P66, ORA, Imm.NONE, d -> {
            int size = d.rexW ? 8 : 4;
            return d.isMem() ? new XmmStore(d.reg, d.ea, size, false, false) : new MovdToGpr(d.rm, d.reg, size);
        });
        t.addPrefixed("MOVQ xmm, xmm/m64", MAP_0F, 0x7E, PF3, ORA, Imm.NONE, rm(M64, COPY_ZX64));
        t.addPrefixed("MOVQ xmm/m64, xmm", MAP_0F, 0xD6, P66, ORA, Imm.NONE, storeOrMove(8, false, COPY_ZX64));

        // 66/F3 0F 6F / 7F: MOVDQA, MOVDQU; 66 0F E7 MOVNTDQ.
        t.addPrefixed("MOVDQA xmm, xmm/m128", MAP_0F, 0x6F, P66, ORA, Imm.NONE, rm(M128A, COPY));
        t.addPrefixed("MOVDQU xmm, xmm/m128", MAP_0F, 0x6F, PF3, ORA, Imm.NONE, rm(M128U, COPY));
        t.addPrefixed("MOVDQA xmm/m128, xmm", MAP_0F, 0x7F, P66, ORA, Imm.NONE, storeOrMove(16, true, COPY));
        t.addPrefixed("MOVDQU xmm/m128, xmm", MAP_0F, 0x7F, PF3, ORA, Imm.NONE, storeOrMove(16, false, COPY));
        t.addPrefixed("MOVNTDQ m128, xmm", MAP_0F, 0xE7, P66, ORA | MEM_ONLY, Imm.NONE, store(16, true, false));

        // 0F 70: PSHUFD, PSHUFHW, PSHUFLW.
        t.addPrefixed("PSHUFD", MAP_0F, 0x70, P66, ORA, Imm.IB, rm(M128A, (c, d, lo, hi, imm) -> {
            long r0 = elem(lo, hi, 32, imm & 3), r1 = elem(lo, hi, 32, imm >> 2 & 3);
            long r2 = elem(lo, hi, 32, imm >> 4 & 3), r3 = elem(lo, hi, 32, imm >> 6 & 3);
            set(c, d, r0 | r1 << 32, r2 | r3 << 32);
        }));
        t.addPrefixed("PSHUFHW", MAP_0F, 0x70, PF3, ORA, Imm.IB, rm(M128A, (c, d, lo, hi, imm) -> set(c, d, lo, shuf4w(hi, imm))));
        t.addPrefixed("PSHUFLW", MAP_0F, 0x70, PF2, ORA, Imm.IB, rm(M128A, (c, d, lo, hi, imm) -> set(c, d, shuf4w(lo, imm), hi)));

        // 66 0F C4: PINSRW xmm, r32/m16, imm8.
        t.addPrefixed("PINSRW xmm, r32/m16, imm8", MAP_0F, 0xC4, P66, ORA, Imm.IB, d ->
                new XmmFromGpr(d.reg, d.isMem() ? -1 : d.rm, d.isMem() ? d.ea : null, 2, (int) d.imm & 0xFF, (c, x, v, hi, imm) -> {
                    int i = imm & 7, q = 2 * x + (i >> 2), sh = 16 * (i & 3);
                    c.xmm[q] = (c.xmm[q] & ~(0xFFFFL << sh)) | ((v & 0xFFFF) << sh);
                }));

        // 0F C6: SHUFPS / SHUFPD.
        t.addPrefixed("SHUFPS", MAP_0F, 0xC6, NP, ORA, Imm.IB, rm(M128A, (c, d, lo, hi, imm) -> {
            long dl = c.xmm[2 * d], dh = c.xmm[2 * d + 1];
            long r0 = elem(dl, dh, 32, imm & 3), r1 = elem(dl, dh, 32, imm >> 2 & 3);
            long r2 = elem(lo, hi, 32, imm >> 4 & 3), r3 = elem(lo, hi, 32, imm >> 6 & 3);
            set(c, d, r0 | r1 << 32, r2 | r3 << 32);
        }));
        t.addPrefixed("SHUFPD", MAP_0F, 0xC6, P66, ORA, Imm.IB, rm(M128A, (c, d, lo, hi, imm) ->
                set(c, d, (imm & 1) == 0 ? c.xmm[2 * d] : c.xmm[2 * d + 1], (imm & 2) == 0 ? lo : hi)));

        // 66 0F F7: MASKMOVDQU; 0F C3: MOVNTI.
        t.addPrefixed("MASKMOVDQU xmm, xmm", MAP_0F, 0xF7, P66, ORA | REG_ONLY, Imm.NONE, d -> d.isMem() ? null
                : new MaskMovDqu(d.reg, d.rm, d.mode64 && d.segOverride < Cpu.FS ? Cpu.SEG_NONE : d.segOverride >= 0 ? d.segOverride : Cpu.DS,
                        d.addrSize == 8 ? -1L : d.addrSize == 4 ? 0xFFFF_FFFFL : 0xFFFF));
        t.addPrefixed("MOVNTI m32/m64, r", MAP_0F, 0xC3, NP, ORA | MEM_ONLY, Imm.NONE, d -> d.isMem() ? new Movnti(d.reg, d.ea, d.rexW ? 8 : 4) : null);
    }

    static long shuf4w(long q, int imm) {
        return w(q, imm & 3) | (long) w(q, imm >> 2 & 3) << 16 | (long) w(q, imm >> 4 & 3) << 32 | (long) w(q, imm >> 6 & 3) << 48;
    }

    /** A value computed from an XMM register (ModRM.rm) into a general register (ModRM.reg), zero-extended. */
    @FunctionalInterface
    interface ToGpr { long f(long lo, long hi, int imm); }

    static Factory toGpr(ToGpr f) {
        return d -> d.isMem() ? null : new XmmToGpr(d.reg, d.rm, (int) d.imm & 0xFF, f);
    }

    static final class XmmToGpr extends Insn {
        final int gpr, src, imm;
        final ToGpr f;
        XmmToGpr(int gpr, int src, int imm, ToGpr f) { this.gpr = gpr; this.src = src; this.imm = imm; this.f = f; }
        @Override public void exec(Cpu c) {
            check(c);
            c.r[gpr] = f.f(c.xmm[2 * src], c.xmm[2 * src + 1], imm);
        }
    }

    /** 66 0F 7E with a register destination: MOVD r32, xmm (zero-extends) / MOVQ r64, xmm. */
    static final class MovdToGpr extends Insn {
        final int gpr, src, size;
        MovdToGpr(int gpr, int src, int size) { this.gpr = gpr; this.src = src; this.size = size; }
        @Override public void exec(Cpu c) {
            check(c);
            Regs.set(c, gpr, size, c.xmm[2 * src]);
        }
    }

    /** xmm op= r/m (32 or 64 bits by REX.W, or {@code fixedSize}): MOVD/MOVQ, PINSRW, CVTSI2SS/SD. */
    static final class XmmFromGpr extends Insn {
        final int dst, gpr, size, imm;
        final Ea ea;
        final Op op;
        XmmFromGpr(int dst, int gpr, Ea ea, int size, int imm, Op op) {
            this.dst = dst; this.gpr = gpr; this.ea = ea; this.size = size; this.imm = imm; this.op = op;
        }
        @Override public void exec(Cpu c) {
            check(c);
            long v = ea == null ? Regs.get(c, gpr, size) : c.mmu.read(ea.lin(c), size);
            op.apply(c, dst, v, 0, imm);
        }
    }

    static Factory fromGpr(Op op) {
        return d -> new XmmFromGpr(d.reg, d.isMem() ? -1 : d.rm, d.isMem() ? d.ea : null, d.rexW ? 8 : 4, 0, op);
    }

    /**
     * MASKMOVDQU: byte-masked store of xmm1 to DS:rDI (SDM Vol. 2B). The whole destination is checked for
     * write access first, whatever the mask ({@link Sse#probeMasked}, as on the AMD host).
     */
    static final class MaskMovDqu extends Insn {
        final int src, mask, seg;
        final long amask;
        MaskMovDqu(int src, int mask, int seg, long amask) { this.src = src; this.mask = mask; this.seg = seg; this.amask = amask; }
        @Override public void exec(Cpu c) {
            check(c);
            long ml = c.xmm[2 * mask], mh = c.xmm[2 * mask + 1];
            long base = c.r[Cpu.RDI] & amask;
            probeMasked(c, seg, base, amask, 16);
            if (((ml | mh) & 0x8080_8080_8080_8080L) == 0) return;
            for (int i = 0; i < 16; i++) {
                long m = i < 8 ? ml : mh, v = i < 8 ? c.xmm[2 * src] : c.xmm[2 * src + 1];
                if ((m >>> (8 * (i & 7) + 7) & 1) != 0)
                    c.mmu.write8(c.linear(seg, (base + i) & amask), b(v, i & 7));
            }
        }
    }

    /** 0F C3: MOVNTI m32/m64, r32/r64 (a plain store here; no SSE enable checks apply, SDM Vol. 2B). */
    static final class Movnti extends Insn {
        final int src, size;
        final Ea ea;
        Movnti(int src, Ea ea, int size) { this.src = src; this.ea = ea; this.size = size; }
        @Override public void exec(Cpu c) { c.mmu.write(ea.lin(c), size, c.r[src]); }
    }
}

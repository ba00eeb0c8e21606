package dev.polyvisor.cpu.exec;

import dev.polyvisor.cpu.Cpu;
import dev.polyvisor.cpu.Exceptions;
import dev.polyvisor.cpu.decode.Insn;
import dev.polyvisor.cpu.decode.OpcodeTable;

import static dev.polyvisor.cpu.decode.OpcodeTable.*;
import static dev.polyvisor.cpu.exec.Mmx.*;

/**
 * MMX state and data movement (SDM Vol. 1, 9.4.1 and 9.5; Vol. 2 per instruction; AMD APM Vol. 5): EMMS,
 * MOVD/MOVQ between MMX registers, general registers and memory, the SSE/SSE2 moves and shuffles on MMX
 * registers (PSHUFW, PINSRW, PEXTRW, PMOVMSKB, MOVNTQ, MASKMOVQ) and the MMX/XMM moves MOVQ2DQ and
 * MOVDQ2Q. The arithmetic is in {@link MmxIntOps}; the register state and handler shapes in {@link Mmx}.
 *
 * <p>Linux 6.1 runs {@code fnclex; emms; fildl} in restore_fpregs_from_fpstate on AMD CPUs
 * (X86_BUG_FXSAVE_LEAK, arch/x86/kernel/fpu/core.c), and kvm-unit-tests' emulator test moves through
 * MMX registers (x86/emulator64.c, test_mmx and test_mmx_movq_mf).
 */
public final class MmxOps {
    private MmxOps() {}

    static final int ORA = MODRM | ORACLE;
    static final Op COPY = (dst, src, imm) -> src;

    public static void register(OpcodeTable t) {
        t.addPrefixed("EMMS", MAP_0F, 0x77, NP, ORACLE, Imm.NONE, d -> new Emms());

        // 0F 6E / 7E: MOVD mm, r/m32 and MOVQ mm, r/m64 (REX.W); the reverse direction (SDM Vol. 2B MOVD/MOVQ).
        t.addPrefixed("MOVD/MOVQ mm, r/m", MAP_0F, 0x6E, NP, ORA, Imm.NONE, d -> {
            int size = d.rexW ? 8 : 4;
            return fromGpr(size, size, COPY).make(d);
        });
        t.addPrefixed("MOVD/MOVQ r/m, mm", MAP_0F, 0x7E, NP, ORA, Imm.NONE, d -> {
            int size = d.rexW ? 8 : 4;
            return d.isMem() ? new MmStore(d.reg & 7, d.ea, size) : new MmToGpr(d.rm, d.reg & 7, size, 0, (v, imm) -> v);
        });

        // 0F 6F / 7F: MOVQ mm, mm/m64 and MOVQ mm/m64, mm; 0F E7: MOVNTQ m64, mm (a plain store here).
        t.addPrefixed("MOVQ mm, mm/m64", MAP_0F, 0x6F, NP, ORA, Imm.NONE, rm(M64, COPY));
        t.addPrefixed("MOVQ mm/m64, mm", MAP_0F, 0x7F, NP, ORA, Imm.NONE, d -> d.isMem() ? new MmStore(d.reg & 7, d.ea, 8)
                : new MmRm(d.rm & 7, d.reg & 7, null, M64, 0, COPY));
        t.addPrefixed("MOVNTQ m64, mm", MAP_0F, 0xE7, NP, ORA | MEM_ONLY, Imm.NONE, store(8));

        // SSE integer extensions on MMX registers (SDM Vol. 1, 10.4.4): 0F 70 PSHUFW, C4 PINSRW, C5 PEXTRW,
        // D7 PMOVMSKB, F7 MASKMOVQ.
        t.addPrefixed("PSHUFW mm, mm/m64, imm8", MAP_0F, 0x70, NP, ORA, Imm.IB, rm(M64, (dst, src, imm) -> SseMoveOps.shuf4w(src, imm)));
        t.addPrefixed("PINSRW mm, r32/m16, imm8", MAP_0F, 0xC4, NP, ORA, Imm.IB, fromGpr(4, 2, (dst, src, imm) -> {
            int sh = 16 * (imm & 3);
            return (dst & ~(0xFFFFL << sh)) | ((src & 0xFFFF) << sh);
        }));
        t.addPrefixed("PEXTRW r, mm, imm8", MAP_0F, 0xC5, NP, ORA | REG_ONLY, Imm.IB, d -> d.isMem() ? null
                : new MmToGpr(d.reg, d.rm & 7, 4, (int) d.imm & 0xFF, (v, imm) -> Sse.w(v, imm & 3)));
        t.addPrefixed("PMOVMSKB r, mm", MAP_0F, 0xD7, NP, ORA | REG_ONLY, Imm.NONE, d -> d.isMem() ? null
                : new MmToGpr(d.reg, d.rm & 7, 4, 0, (v, imm) -> byteSigns(v)));
        t.addPrefixed("MASKMOVQ mm, mm", MAP_0F, 0xF7, NP, ORA | REG_ONLY, Imm.NONE, d -> d.isMem() ? null
                : new MaskMovQ(d.reg & 7, d.rm & 7, implicitSeg(d), addrMask(d)));

        // F3 0F D6 MOVQ2DQ xmm, mm; F2 0F D6 MOVDQ2Q mm, xmm (SSE2; register only).
        t.addPrefixed("MOVQ2DQ xmm, mm", MAP_0F, 0xD6, PF3, ORA | REG_ONLY, Imm.NONE, d -> d.isMem() ? null : new MovQ2Dq(d.reg, d.rm & 7));
        t.addPrefixed("MOVDQ2Q mm, xmm", MAP_0F, 0xD6, PF2, ORA | REG_ONLY, Imm.NONE, d -> d.isMem() ? null : new MovDq2Q(d.reg & 7, d.rm));
    }

    /** The sign bit of each byte, bit i from byte i (PMOVMSKB). */
    static long byteSigns(long v) {
        long m = 0;
        for (int i = 0; i < 8; i++) m |= ((v >>> (8 * i + 7)) & 1) << i;
        return m;
    }

    /**
     * EMMS (SDM Vol. 2A): tag word = all empty; #UD with CR0.EM, #NM with CR0.TS, #MF with a pending unmasked
     * x87 exception (as on the AMD host). TOP goes to 0 as for every MMX instruction (SDM Vol. 3A, 12.2: "Each
     * time an MMX instruction is executed, the TOS value is set to 000B"), which the host-CPU oracle confirms.
     */
    static final class Emms extends Insn {
        @Override public void exec(Cpu c) {
            check(c);
            c.ftw = 0xFFFF;
            c.fpuTop = 0;
        }
    }

    /**
     * MASKMOVQ (SDM Vol. 2B): stores the bytes of mm1 whose mask byte in mm2 has its top bit set to DS:rDI.
     * As measured on the AMD host (the model's vendor): the x87-to-MMX transition is made before the
     * destination is checked, and the whole 8-byte destination is checked for write access whatever the
     * mask, an all-zero mask included (the SDM leaves that implementation dependent), the second page
     * reported at its first byte; nothing is written before both pages are known writable.
     */
    static final class MaskMovQ extends Insn {
        final int src, mask, seg;
        final long amask;

        MaskMovQ(int src, int mask, int seg, long amask) { this.src = src; this.mask = mask; this.seg = seg; this.amask = amask; }

        @Override public void exec(Cpu c) {
            check(c);
            enter(c);
            long m = c.stMant[mask], v = c.stMant[src];
            long base = c.r[Cpu.RDI] & amask;
            Sse.probeMasked(c, seg, base, amask, 8);
            for (int i = 0; i < 8; i++)
                if ((m >>> (8 * i + 7) & 1) != 0) c.mmu.write8(c.linear(seg, (base + i) & amask), Sse.b(v, i));
        }
    }

    /** MOVQ2DQ xmm, mm: XMM = zero-extended MM; the x87 state switches to MMX (SDM Vol. 2B MOVQ2DQ). */
    static final class MovQ2Dq extends Insn {
        final int xmm, mm;

        MovQ2Dq(int xmm, int mm) { this.xmm = xmm; this.mm = mm; }

        @Override public void exec(Cpu c) {
            checkSse(c);
            Sse.set(c, xmm, c.stMant[mm], 0);
            enter(c);
        }
    }

    /** MOVDQ2Q mm, xmm: MM = the low quadword of XMM (SDM Vol. 2B MOVDQ2Q). */
    static final class MovDq2Q extends Insn {
        final int mm, xmm;

        MovDq2Q(int mm, int xmm) { this.mm = mm; this.xmm = xmm; }

        @Override public void exec(Cpu c) {
            checkSse(c);
            long v = c.xmm[2 * xmm];
            enter(c);
            set(c, mm, v);
        }
    }
}

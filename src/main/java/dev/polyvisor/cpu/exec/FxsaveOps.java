package dev.polyvisor.cpu.exec;

import dev.polyvisor.cpu.Cpu;
import dev.polyvisor.cpu.Exceptions;
import dev.polyvisor.cpu.decode.Ea;
import dev.polyvisor.cpu.decode.Insn;
import dev.polyvisor.cpu.decode.OpcodeTable;
import dev.polyvisor.cpu.mmu.Mmu;

import static dev.polyvisor.cpu.decode.OpcodeTable.*;

/**
 * 0F AE /0-/3: FXSAVE, FXRSTOR, LDMXCSR, STMXCSR (SDM Vol. 2A/2B; image layout Vol. 1, 10.5.1, Table
 * 10-2). Registered as NP group members (a 66/F2/F3 prefix is #UD, as on hardware): /5-/7 (fences,
 * CLFLUSH) belong to the system group.
 *
 * <p>Image: 0 FCW, 2 FSW, 4 abridged FTW, 5 reserved (0), 6 FOP, 8 FIP, 16 FDP (REX.W: 64-bit each;
 * otherwise FIP[31:0], FCS, FDP[31:0], FDS with the selectors stored as 0 since they are not tracked),
 * 24 MXCSR, 28 MXCSR_MASK (0xFFFF: DAZ supported), 32 + 16*i ST(i) as 10 bytes followed by 6 reserved
 * bytes stored as 0, 160 + 16*i XMMi (16 registers in 64-bit mode, 8 otherwise). Bytes 416-511 (reserved
 * and software-available) are neither written nor read.
 *
 * <p>Vendor behaviour matched (the model is AuthenticAMD; checked against an AMD EPYC by the host-CPU
 * oracle): FXSAVE stores FOP, FIP and FDP only while an unmasked x87 exception is pending (FSW.ES = 1) and
 * zeros otherwise (AMD APM Vol. 5, FXSAVE: "does not save the x87 pointer registers ... except ... [when]
 * the exception-summary (ES) bit ... is set"); FXRSTOR recomputes FSW.ES and FSW.B from the loaded
 * exception flags and control-word masks instead of loading them (as FLDENV does).
 */
public final class FxsaveOps {
    private FxsaveOps() {}

    public static final int MXCSR_MASK = 0xFFFF;

    public static void register(OpcodeTable t) {
        t.add(new Entry("FXSAVE m512", MAP_0F, 0xAE, NP, 0, MODRM | MEM_ONLY | ORACLE, Imm.NONE, d -> d.isMem() ? new Fxsave(d.ea, d.rexW, d.mode64) : null));
        t.add(new Entry("FXRSTOR m512", MAP_0F, 0xAE, NP, 1, MODRM | MEM_ONLY | ORACLE, Imm.NONE, d -> d.isMem() ? new Fxrstor(d.ea, d.rexW, d.mode64) : null));
        t.add(new Entry("LDMXCSR m32", MAP_0F, 0xAE, NP, 2, MODRM | MEM_ONLY | ORACLE, Imm.NONE, d -> d.isMem() ? new Ldmxcsr(d.ea) : null));
        t.add(new Entry("STMXCSR m32", MAP_0F, 0xAE, NP, 3, MODRM | MEM_ONLY | ORACLE, Imm.NONE, d -> d.isMem() ? new Stmxcsr(d.ea) : null));
    }

    /** FXSAVE/FXRSTOR: #NM when CR0.TS or CR0.EM is set (SDM Vol. 2A, FXSAVE "Protected Mode Exceptions"). */
    static void checkFx(Cpu c) {
        if ((c.cr0 & (Cpu.CR0_TS | Cpu.CR0_EM)) != 0) throw c.fault(Exceptions.NM);
    }

    /**
     * Checks the whole 512-byte image before any of it is accessed, so that a #PF leaves no partial
     * image and a page fault wins over a reserved-MXCSR #GP. The order is the AMD one (observed on an
     * AMD EPYC): the page of the last byte first, reported with CR2 = la + 511, then the first byte.
     */
    static void probe(Cpu c, long la, int access) {
        c.mmu.translate(la + 511, access);
        c.mmu.translate(la, access);
    }

    static final class Fxsave extends Insn {
        final Ea ea;
        final boolean w64, mode64;
        Fxsave(Ea ea, boolean w64, boolean mode64) { this.ea = ea; this.w64 = w64; this.mode64 = mode64; }

        @Override public void exec(Cpu c) {
            checkFx(c);
            long la = ea.lin(c);
            if ((la & 15) != 0) throw c.gp0();
            probe(c, la, Mmu.WRITE);
            c.mmu.write16(ea.lin(c, 0), c.fcw);
            c.mmu.write16(ea.lin(c, 2), X87.status(c));
            c.mmu.write8(ea.lin(c, 4), X87.abridgedTag(c));
            c.mmu.write8(ea.lin(c, 5), 0);
            // AMD: the x87 pointers are saved only while an unmasked exception is pending (see the class comment).
            boolean pointers = (c.fsw & X87.ES) != 0;
            c.mmu.write16(ea.lin(c, 6), pointers ? c.fop & 0x7FF : 0);
            long fip = pointers ? c.fip : 0, fdp = pointers ? c.fdp : 0;
            if (w64) {
                c.mmu.write64(ea.lin(c, 8), fip);
                c.mmu.write64(ea.lin(c, 16), fdp);
            } else {
                c.mmu.write32(ea.lin(c, 8), (int) fip);
                c.mmu.write32(ea.lin(c, 12), 0); // FCS and reserved
                c.mmu.write32(ea.lin(c, 16), (int) fdp);
                c.mmu.write32(ea.lin(c, 20), 0); // FDS and reserved
            }
            c.mmu.write32(ea.lin(c, 24), c.mxcsr);
            c.mmu.write32(ea.lin(c, 28), MXCSR_MASK);
            for (int i = 0; i < 8; i++) {
                int p = X87.phys(c, i);
                c.mmu.write64(ea.lin(c, 32 + 16 * i), c.stMant[p]);
                c.mmu.write16(ea.lin(c, 40 + 16 * i), c.stExp[p]);
                c.mmu.write16(ea.lin(c, 42 + 16 * i), 0); // reserved bytes 10-15 of the slot: stored as 0
                c.mmu.write32(ea.lin(c, 44 + 16 * i), 0);
            }
            int n = mode64 ? 16 : 8;
            for (int i = 0; i < n; i++) {
                c.mmu.write64(ea.lin(c, 160 + 16 * i), c.xmm[2 * i]);
                c.mmu.write64(ea.lin(c, 168 + 16 * i), c.xmm[2 * i + 1]);
            }
        }
    }

    static final class Fxrstor extends Insn {
        final Ea ea;
        final boolean w64, mode64;
        Fxrstor(Ea ea, boolean w64, boolean mode64) { this.ea = ea; this.w64 = w64; this.mode64 = mode64; }

        @Override public void exec(Cpu c) {
            checkFx(c);
            long la = ea.lin(c);
            if ((la & 15) != 0) throw c.gp0();
            probe(c, la, Mmu.READ);
            // Read everything first so a fault or a bad MXCSR leaves the state unchanged.
            int fcw = c.mmu.read16(ea.lin(c, 0));
            int fsw = c.mmu.read16(ea.lin(c, 2));
            int ftw = c.mmu.read8(ea.lin(c, 4));
            int fop = c.mmu.read16(ea.lin(c, 6));
            long fip, fdp;
            if (w64) {
                fip = c.mmu.read64(ea.lin(c, 8));
                fdp = c.mmu.read64(ea.lin(c, 16));
            } else {
                fip = c.mmu.read32(ea.lin(c, 8)) & 0xFFFF_FFFFL;
                fdp = c.mmu.read32(ea.lin(c, 16)) & 0xFFFF_FFFFL;
            }
            int mxcsr = c.mmu.read32(ea.lin(c, 24));
            if ((mxcsr & ~MXCSR_MASK) != 0) throw c.gp0();
            long[] mant = new long[8];
            int[] se = new int[8];
            for (int i = 0; i < 8; i++) {
                mant[i] = c.mmu.read64(ea.lin(c, 32 + 16 * i));
                se[i] = c.mmu.read16(ea.lin(c, 40 + 16 * i));
            }
            int n = mode64 ? 16 : 8;
            long[] x = new long[2 * n];
            for (int i = 0; i < n; i++) {
                x[2 * i] = c.mmu.read64(ea.lin(c, 160 + 16 * i));
                x[2 * i + 1] = c.mmu.read64(ea.lin(c, 168 + 16 * i));
            }
            c.fcw = fcw & 0x1F7F | 0x40; // bit 6 reads as 1, bits 7 and 13-15 reserved (SDM Vol. 1, 8.1.5)
            X87.setStatus(c, fsw);
            X87Ops.updateSummary(c); // ES and B follow the loaded flags and masks
            c.fop = fop & 0x7FF;
            c.fip = fip;
            c.fdp = fdp;
            c.mxcsr = mxcsr;
            for (int i = 0; i < 8; i++) X87.setPhys(c, X87.phys(c, i), mant[i], se[i]);
            X87.setAbridgedTag(c, ftw);
            System.arraycopy(x, 0, c.xmm, 0, 2 * n);
        }
    }

    static final class Ldmxcsr extends Insn {
        final Ea ea;
        Ldmxcsr(Ea ea) { this.ea = ea; }
        @Override public void exec(Cpu c) {
            Sse.check(c);
            int v = c.mmu.read32(ea.lin(c));
            if ((v & ~MXCSR_MASK) != 0) throw c.gp0();
            c.mxcsr = v;
        }
    }

    static final class Stmxcsr extends Insn {
        final Ea ea;
        Stmxcsr(Ea ea) { this.ea = ea; }
        @Override public void exec(Cpu c) {
            Sse.check(c);
            c.mmu.write32(ea.lin(c), c.mxcsr);
        }
    }
}

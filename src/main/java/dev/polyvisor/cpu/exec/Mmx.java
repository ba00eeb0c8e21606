package dev.polyvisor.cpu.exec;

import dev.polyvisor.cpu.Cpu;
import dev.polyvisor.cpu.Exceptions;
import dev.polyvisor.cpu.decode.Decoded;
import dev.polyvisor.cpu.decode.Ea;
import dev.polyvisor.cpu.decode.Insn;
import dev.polyvisor.cpu.decode.OpcodeTable;

/**
 * The MMX register state and the shared machinery of the MMX handler groups ({@link MmxOps}, {@link
 * MmxIntOps}), in the style of {@link Sse}: the exception checks, the x87-to-MMX state transition and a
 * few handler shapes whose per-instruction semantics is a final {@link Op} field.
 *
 * <p>State (SDM Vol. 3A, 12.2 "The MMX State and MMX Register Aliasing", Table 12-2; SDM Vol. 1, 9.5): MMi is
 * the significand (bits 63:0) of physical x87 register Ri, i.e. {@code c.stMant[i]} itself, not a copy, so
 * FSAVE/FRSTOR, FXSAVE/FXRSTOR and the x87 instructions see exactly what MMX wrote. An MMX write also sets
 * Ri's sign/exponent (bits 79:64) to all ones. Every MMX instruction except EMMS sets TOP to 0 and every
 * tag to valid (00b, abridged FTW 0xFF). As measured on the AMD host (the model's vendor) and compared by
 * the host-CPU oracle, the transition is made after the instruction's memory operand is accessed, so an
 * instruction that raises #PF leaves the x87 state as it was; MASKMOVQ makes it before its write check.
 *
 * <p>MMX register numbers are ModRM fields without REX.R/REX.B (SDM Vol. 2A, 2.2.1.2: REX.R and REX.B extend
 * the ModRM fields only when they encode a general, SSE, control or debug register), so the factories mask
 * them with 7; a general-register operand (MOVD, PINSRW, PEXTRW, PMOVMSKB) keeps the REX bit.
 */
public final class Mmx {
    private Mmx() {}

    /**
     * MMX exception conditions (SDM Vol. 3A, 12.1, Table 12-1, "Action Taken By MMX Instructions for Different
     * Combinations of EM, MP and TS"; the "Protected Mode Exceptions" of each MMX instruction in Vol. 2):
     * #UD when CR0.EM=1, then #NM when CR0.TS=1, then #MF when an unmasked x87 exception is pending
     * (FSW.ES) and CR0.NE=1, the x87 instructions' rule (X87Ops).
     */
    public static void check(Cpu c) {
        if ((c.cr0 & Cpu.CR0_EM) != 0) throw c.ud();
        if ((c.cr0 & Cpu.CR0_TS) != 0) throw c.fault(Exceptions.NM);
        pendingX87(c);
    }

    /**
     * The SSE2 forms that touch MMX registers (MOVQ2DQ, MOVDQ2Q, CVTPI2PD, CVTPD2PI, CVTTPD2PI, CVTPI2PS,
     * CVTPS2PI, CVTTPS2PI): the legacy-SSE conditions (#UD also when CR4.OSFXSR=0) and then the pending
     * x87 exception, #MF (SDM Vol. 2B MOVQ2DQ "Protected Mode Exceptions").
     */
    public static void checkSse(Cpu c) {
        Sse.check(c);
        pendingX87(c);
    }

    /**
     * A pending unmasked x87 exception is #MF with CR0.NE set; with NE clear the CPU would signal FERR#
     * instead, which this PC leaves unconnected. KVM's emulator, which runs an instruction behind the
     * forced-emulation prefix, checks with an FWAIT on the host and injects #MF whatever the guest's NE says
     * (arch/x86/kvm/emulate.c flush_pending_x87_faults).
     */
    static void pendingX87(Cpu c) {
        if ((c.fsw & X87.ES) != 0 && ((c.cr0 & Cpu.CR0_NE) != 0 || c.forcedEmulation)) throw c.fault(Exceptions.MF);
    }

    /**
     * The x87-to-MMX transition every MMX instruction but EMMS makes: TOP = 0, all tags valid; FCW, the other
     * FSW bits, FIP, FDP and FOP are left alone (SDM Vol. 3A, 12.2, Table 12-2).
     */
    public static void enter(Cpu c) {
        c.fpuTop = 0;
        c.ftw = 0;
    }

    /** MMi: the significand of physical register Ri. */
    public static long get(Cpu c, int i) { return c.stMant[i]; }

    /** Writes MMi: the significand, and all ones in bits 79:64 (SDM Vol. 3A, 12.2). */
    public static void set(Cpu c, int i, long v) { X87.setPhys(c, i, v, 0xFFFF); }

    /** The semantics of one MMX form: the new destination value from the old one, the source and the imm8. */
    @FunctionalInterface
    public interface Op { long f(long dst, long src, int imm); }

    /** Source operand widths of {@link MmRm}: m64, or m32 zero-extended (the low unpacks read 32 bits). */
    static final int M64 = 8, M32 = 4;

    /** mm, mm/m64 (or mm/m32): {@code MM[dst] = op(MM[dst], source, imm)}. */
    static final class MmRm extends Insn {
        final int dst, src, width, imm;
        final Ea ea;
        final Op op;

        MmRm(int dst, int src, Ea ea, int width, int imm, Op op) {
            this.dst = dst; this.src = src; this.ea = ea; this.width = width; this.imm = imm; this.op = op;
        }

        @Override public void exec(Cpu c) {
            check(c);
            long s;
            if (ea == null) s = c.stMant[src];
            else if (width == M64) s = c.mmu.read64(ea.lin(c));
            else s = c.mmu.read32(ea.lin(c)) & 0xFFFF_FFFFL;
            long r = op.f(c.stMant[dst], s, imm);
            enter(c);
            set(c, dst, r);
        }
    }

    /** Factory for mm (ModRM.reg), mm/m (ModRM.rm) with a memory operand of {@code width} bytes. */
    static OpcodeTable.Factory rm(int width, Op op) {
        return d -> new MmRm(d.reg & 7, d.rm & 7, d.isMem() ? d.ea : null, width, (int) d.imm & 0xFF, op);
    }

    /** Factory for a register-only mm form whose destination (and source) is ModRM.rm (the imm8 shift groups). */
    static OpcodeTable.Factory rmOnly(Op op) {
        return d -> d.isMem() ? null : new MmRm(d.rm & 7, d.rm & 7, null, M64, (int) d.imm & 0xFF, op);
    }

    /** mm (ModRM.reg) op= r/m of {@code size} bytes (a GPR by ModRM.rm, or memory): MOVD/MOVQ mm, r/m; PINSRW. */
    static final class MmFromGpr extends Insn {
        final int dst, gpr, size, imm;
        final Ea ea;
        final Op op;

        MmFromGpr(int dst, int gpr, Ea ea, int size, int imm, Op op) {
            this.dst = dst; this.gpr = gpr; this.ea = ea; this.size = size; this.imm = imm; this.op = op;
        }

        @Override public void exec(Cpu c) {
            check(c);
            long v = ea == null ? Regs.get(c, gpr, size) : c.mmu.read(ea.lin(c), size);
            long r = op.f(c.stMant[dst], v, imm);
            enter(c);
            set(c, dst, r);
        }
    }

    /** mm (ModRM.reg) op= a GPR of {@code regSize} bytes (ModRM.rm, REX.B applies) or m{@code memSize}. */
    static OpcodeTable.Factory fromGpr(int regSize, int memSize, Op op) {
        return d -> d.isMem() ? new MmFromGpr(d.reg & 7, -1, d.ea, memSize, (int) d.imm & 0xFF, op)
                : new MmFromGpr(d.reg & 7, d.rm, null, regSize, (int) d.imm & 0xFF, op);
    }

    /** A value computed from an MM register (and imm8). */
    @FunctionalInterface
    interface Read { long f(long mm, int imm); }

    /** r (ModRM.reg or .rm by the factory) = f(MM[src]) with {@code size} bytes written as a GPR write does. */
    static final class MmToGpr extends Insn {
        final int gpr, src, size, imm;
        final Read f;

        MmToGpr(int gpr, int src, int size, int imm, Read f) {
            this.gpr = gpr; this.src = src; this.size = size; this.imm = imm; this.f = f;
        }

        @Override public void exec(Cpu c) {
            check(c);
            long v = f.f(c.stMant[src], imm);
            enter(c);
            Regs.set(c, gpr, size, v);
        }
    }

    /** Stores {@code size} bytes (4 or 8) of MM[src] to memory: MOVD m32, MOVQ m64, MOVNTQ. */
    static final class MmStore extends Insn {
        final int src, size;
        final Ea ea;

        MmStore(int src, Ea ea, int size) { this.src = src; this.ea = ea; this.size = size; }

        @Override public void exec(Cpu c) {
            check(c);
            c.mmu.write(ea.lin(c), size, c.stMant[src]);
            enter(c);
        }
    }

    static OpcodeTable.Factory store(int size) {
        return d -> d.isMem() ? new MmStore(d.reg & 7, d.ea, size) : null;
    }

    /** The segment and address-size mask of an implicit DS:rDI operand (MASKMOVQ), as MASKMOVDQU takes them. */
    static int implicitSeg(Decoded d) {
        return d.mode64 && d.segOverride < Cpu.FS ? Cpu.SEG_NONE : d.segOverride >= 0 ? d.segOverride : Cpu.DS;
    }

    static long addrMask(Decoded d) {
        return d.addrSize == 8 ? -1L : d.addrSize == 4 ? 0xFFFF_FFFFL : 0xFFFF;
    }
}

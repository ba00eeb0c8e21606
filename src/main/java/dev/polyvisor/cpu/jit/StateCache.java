package dev.polyvisor.cpu.jit;

import dev.polyvisor.cpu.Cpu;
import dev.polyvisor.cpu.decode.Ea;
import dev.polyvisor.cpu.decode.Insn;
import dev.polyvisor.cpu.exec.JitForms;

import java.lang.classfile.CodeBuilder;

import static dev.polyvisor.cpu.jit.TraceCompiler.CC_DST;
import static dev.polyvisor.cpu.jit.TraceCompiler.CC_OP;
import static dev.polyvisor.cpu.jit.TraceCompiler.CC_SRC;
import static dev.polyvisor.cpu.jit.TraceCompiler.CD_CPU;
import static dev.polyvisor.cpu.jit.TraceCompiler.CD_LONG_ARRAY;
import static dev.polyvisor.cpu.jit.TraceCompiler.CPU;
import static dev.polyvisor.cpu.jit.TraceCompiler.R0;
import static dev.polyvisor.cpu.jit.TraceCompiler.TMP;
import static java.lang.constant.ConstantDescs.CD_int;
import static java.lang.constant.ConstantDescs.CD_long;

/**
 * The guest registers and lazy-flag record of one compiled trace, held in JVM locals (reference/cpu-design.md
 * 1.10: "guest registers and lazy flags live in locals inside a region"), so that C2 keeps them in host registers
 * instead of loading and storing {@code Cpu.r} and {@code Cpu.cc*} at every instruction.
 *
 * <p>The registers the trace's inline forms name (and the flag record, if one of them sets it) are loaded at the
 * trace's start. The locals are then the truth; the Cpu's copy is brought up to date (only what is dirty, known at
 * compile time) before anything that reads it: a handler call (after which every cached value is loaded again,
 * since a handler may change any), {@code Flags.cond}, and every way out of the trace. A fault in an inline form
 * stores what was dirty before that instruction ({@link #dirty}, by instruction index, in the fault handler); a
 * fault in a handler stores nothing, the Cpu being the truth there (a REP string instruction may have moved
 * RSI/RDI before its fault).
 */
final class StateCache {
    /** Registers held in locals (bit n: r[n]), and whether the flag record is. */
    private final int cached;
    private final boolean flags;
    /** Registers whose local is newer than the Cpu's copy; whether the flag record's is. */
    private int dirtyRegs;
    private boolean dirtyFlags;

    /** Registers some inline form writes (the flag record is cached exactly when one sets it). */
    private final int written;

    private StateCache(int cached, boolean flags, int written) {
        this.cached = cached;
        this.flags = flags;
        this.written = written;
    }

    /**
     * Where a branch back to the trace's start joins: what any instruction writes may be dirty from the round
     * before (a one-pass compiler does not know the back edge's state yet; storing a clean value costs a store).
     */
    void assumeWritten() {
        dirtyRegs = written;
        dirtyFlags = flags;
    }

    /** What the inline forms of {@code insns} use: none when the forms are not inlined (every handler is called). */
    static StateCache of(Insn[] insns, boolean inlineForms) {
        int regs = 0, written = 0;
        boolean flags = false;
        if (inlineForms) for (Insn i : insns) {
            int dst = switch (JitForms.of(i)) {
                case JitForms.AluRR f -> { regs |= bit(f.src()); flags = true; yield f.dst(); }
                case JitForms.AluRI f -> { flags = true; yield f.dst(); }
                case JitForms.AluRM f -> { regs |= ea(f.ea()); flags = true; yield f.dst(); }
                case JitForms.ShiftRI f -> { flags = true; yield f.dst(); }
                case JitForms.ImulRR f -> { regs |= bit(f.rm()); flags = true; yield f.dst(); }
                case JitForms.MovRR f -> { regs |= bit(f.src()); yield f.dst(); }
                case JitForms.MovRI f -> f.dst();
                case JitForms.MovzxRR f -> { regs |= bit(f.src()); yield f.dst(); }
                case JitForms.CmovRR f -> { regs |= bit(f.rm()); yield f.dst(); }
                case JitForms.Lea f -> { regs |= ea(f.ea()); yield f.dst(); }
                case JitForms.LoadRM f -> { regs |= ea(f.ea()); yield f.dst(); }
                case JitForms.StoreMR f -> { regs |= bit(f.src()) | ea(f.ea()); yield -1; }
                case JitForms.StoreMI f -> { regs |= ea(f.ea()); yield -1; }
                case JitForms.UnaryRR f -> { flags |= f.op() != JitForms.NOT; yield f.reg(); }
                case JitForms.PushR f -> { regs |= bit(f.reg()); yield Cpu.RSP; }
                case JitForms.CmpNarrow f -> { regs |= bit(f.dst()) | (f.src() >= 0 ? bit(f.src()) : 0); flags = true; yield -1; }
                case JitForms.Movsx f -> { regs |= f.ea() != null ? ea(f.ea()) : bit(f.rm()); yield f.dst(); }
                case JitForms.SetccR f -> f.rm();
                case JitForms.RotateRI f -> { flags = true; yield f.reg(); }
                case JitForms.AluMI f -> { regs |= ea(f.ea()); flags = true; yield -1; }
                case JitForms.AluMR f -> { regs |= ea(f.ea()) | bit(f.src()); flags = true; yield -1; }
                case JitForms.PopR f -> { regs |= bit(Cpu.RSP); written |= bit(Cpu.RSP); yield f.reg(); }
                case JitForms.Jcc _, JitForms.JmpRel _, JitForms.Nop _ -> -1;
                case null -> -1;
            };
            if (dst >= 0) { regs |= bit(dst); written |= bit(dst); }
        }
        return new StateCache(regs, flags, written);
    }

    private static int bit(int reg) { return 1 << reg; }

    private static int ea(Ea.Shape e) {
        return switch (e.kind()) {
            case Ea.KIND_BASE -> bit(e.base());
            case Ea.KIND_BASE_INDEX -> bit(e.base()) | bit(e.index());
            case Ea.KIND_INDEX -> bit(e.index());
            default -> 0;
        };
    }

    private static int local(int reg) { return R0 + 2 * reg; }

    private boolean isCached(int reg) { return (cached & bit(reg)) != 0; }

    private static CodeBuilder regs(CodeBuilder code) { return code.aload(CPU).getfield(CD_CPU, "r", CD_LONG_ARRAY); }

    /** Pushes {@code r[reg] & mask}. */
    CodeBuilder get(CodeBuilder code, int reg, long mask) {
        if (isCached(reg)) code.lload(local(reg));
        else regs(code).loadConstant(reg).laload();
        if (mask != -1L) code.loadConstant(mask).land();
        return code;
    }

    /** {@code r[reg] =} the long on the stack. */
    void put(CodeBuilder code, int reg) {
        if (isCached(reg)) {
            code.lstore(local(reg));
            dirtyRegs |= bit(reg);
        } else {
            code.lstore(TMP);
            regs(code).loadConstant(reg).lload(TMP).lastore();
        }
    }

    /** The lazy-flag record: {@code ccOp = op, ccDst = the long in local res, ccSrc = the long on the stack}. */
    void flags(CodeBuilder code, int op, int res) {
        if (!flags) throw new IllegalStateException("the trace's scan missed a form that sets the flags");
        code.lstore(CC_SRC);
        code.loadConstant(op).istore(CC_OP);
        code.lload(res).lstore(CC_DST);
        dirtyFlags = true;
    }

    /** Stores the flag record if its locals are newer (before a call that reads it). */
    void flushFlags(CodeBuilder code) {
        if (dirtyFlags) storeFlags(code);
        dirtyFlags = false;
    }

    /** What is dirty now, for {@link #flush(CodeBuilder, long)} at an exit or in the fault handler. */
    long dirty() { return dirtyRegs | (dirtyFlags ? 1L << 32 : 0); }

    /** Stores everything dirty; afterwards the Cpu's copy is the locals'. */
    void flush(CodeBuilder code) {
        flush(code, dirty());
        dirtyRegs = 0;
        dirtyFlags = false;
    }

    /** Stores what {@code dirty} (a {@link #dirty()} value) names, without changing what the compiler tracks. */
    static void flush(CodeBuilder code, long dirty) {
        for (int r = 0; r < 16; r++) if ((dirty & bit(r)) != 0) regs(code).loadConstant(r).lload(local(r)).lastore();
        if ((dirty >>> 32) != 0) storeFlags(code);
    }

    private static void storeFlags(CodeBuilder code) {
        code.aload(CPU).iload(CC_OP).putfield(CD_CPU, "ccOp", CD_int);
        code.aload(CPU).lload(CC_DST).putfield(CD_CPU, "ccDst", CD_long);
        code.aload(CPU).lload(CC_SRC).putfield(CD_CPU, "ccSrc", CD_long);
    }

    /** Loads the flag record into its locals again (a call changed it in the Cpu, after {@link #flushFlags}). */
    void reloadFlags(CodeBuilder code) {
        code.aload(CPU).getfield(CD_CPU, "ccOp", CD_int).istore(CC_OP);
        code.aload(CPU).getfield(CD_CPU, "ccDst", CD_long).lstore(CC_DST);
        code.aload(CPU).getfield(CD_CPU, "ccSrc", CD_long).lstore(CC_SRC);
        dirtyFlags = false;
    }

    /** Loads every cached value from the Cpu (the trace's start, and after a handler). */
    void load(CodeBuilder code) {
        for (int r = 0; r < 16; r++) if (isCached(r)) regs(code).loadConstant(r).laload().lstore(local(r));
        if (flags) {
            code.aload(CPU).getfield(CD_CPU, "ccOp", CD_int).istore(CC_OP);
            code.aload(CPU).getfield(CD_CPU, "ccDst", CD_long).lstore(CC_DST);
            code.aload(CPU).getfield(CD_CPU, "ccSrc", CD_long).lstore(CC_SRC);
        }
        dirtyRegs = 0;
        dirtyFlags = false;
    }
}

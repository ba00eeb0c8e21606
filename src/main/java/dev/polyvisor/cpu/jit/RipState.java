package dev.polyvisor.cpu.jit;

import dev.polyvisor.cpu.decode.Insn;
import dev.polyvisor.cpu.exec.JitForms;

import java.lang.classfile.CodeBuilder;

import static dev.polyvisor.cpu.jit.TraceCompiler.BASE;
import static dev.polyvisor.cpu.jit.TraceCompiler.CD_CPU;
import static dev.polyvisor.cpu.jit.TraceCompiler.CPU;
import static java.lang.constant.ConstantDescs.CD_long;

/**
 * Where RIP is, at compile time: the trace's entry RIP is read once into the local BASE, and each instruction's
 * address is BASE plus a constant. The Cpu's rip and prevRip are stored only where something may read them:
 * both before a handler call, prevRip alone before an inline form that may fault (the fault handler restores
 * RIP from it; the MMU's slow paths, page walks and MMIO, do not read RIP), and rip at every way out; the
 * register-only forms, most of a hot loop, store neither (prevRip is no architectural state: only handlers and
 * the fault path read it).
 */
final class RipState {
    /** A RIP state for a block that starts {@code delta} bytes from the region's entry (BASE). */
    RipState(long delta) { next = delta; }

    /** The current instruction's offset from BASE, and the next one's. */
    long cur, next;
    /** Whether the Cpu's rip holds {@link #next} (stored for this instruction, or set by a branch). */
    boolean stored;

    void next(int len) { cur = next; next += len; stored = false; }

    /** Pushes BASE + {@code off}. */
    static void push(CodeBuilder code, long off) {
        code.lload(BASE);
        if (off != 0) code.loadConstant(off).ladd();
    }

    /** c.prevRip = this instruction; c.rip = the next one: the interpreter loop's state during exec. */
    void store(CodeBuilder code) {
        storePrev(code);
        code.aload(CPU);
        push(code, next);
        code.putfield(CD_CPU, "rip", CD_long);
        stored = true;
    }

    /** c.prevRip = this instruction, for a fault (a branch form then sets rip itself). */
    void storePrev(CodeBuilder code) {
        code.aload(CPU);
        push(code, cur);
        code.putfield(CD_CPU, "prevRip", CD_long);
    }

    /** c.rip = the next instruction, unless it already holds it. */
    void storeNext(CodeBuilder code) {
        if (stored) return;
        code.aload(CPU);
        push(code, next);
        code.putfield(CD_CPU, "rip", CD_long);
        stored = true;
    }

    /** The branch form set c.rip to BASE + {@code target} and stays in the trace (a followed direct JMP). */
    void jumped(long target) { next = target; stored = true; }

    /** BASE = c.rip: after a handler, which may have set RIP to anything. */
    void rebase(CodeBuilder code) {
        code.aload(CPU).getfield(CD_CPU, "rip", CD_long).lstore(BASE);
        next = 0;
        stored = true;
        rebased = true;
    }

    /** Whether a handler has run (or RIP was read back): BASE is no longer the trace's entry. */
    private boolean rebased;

    /**
     * Where a branch of this instruction by {@code rel} (mask {@code mask}) goes, as an offset from the region's
     * entry, when only inline forms ran since the block was entered (no rebase); else null.
     */
    Long target(long rel, long mask) { return !rebased && mask == -1L ? next + rel : null; }

    /**
     * The offsets from the region's entry of the branch targets {@link #loopsToStart} may see in a block that starts
     * {@code delta} bytes from it: the inline Jcc before the first handler (lengths, and followed JMPs).
     */
    static java.util.Set<Long> branchTargets(Insn[] insns, long delta) {
        java.util.Set<Long> targets = new java.util.HashSet<>();
        long off = delta;
        for (Insn insn : insns) {
            off += insn.len;
            switch (JitForms.of(insn)) {
                case JitForms.Jcc f -> { if (f.mask() == -1L) targets.add(off + f.rel()); }
                case JitForms.JmpRel f -> {
                    if (f.mask() != -1L) return targets;
                    off += f.rel();
                }
                case null -> { return targets; } // a handler: the compiler rebases after it
                default -> { }
            }
        }
        return targets;
    }
}

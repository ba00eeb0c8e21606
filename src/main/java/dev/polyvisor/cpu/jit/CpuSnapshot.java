package dev.polyvisor.cpu.jit;

import dev.polyvisor.cpu.Cpu;

import java.util.ArrayList;
import java.util.Arrays;
import java.util.List;

/**
 * The part of a {@link Cpu} that instructions of a trace may change, for the JIT's self-check:
 * {@link #user} is what a trace changes routinely (registers, RIP, flags, x87/SSE, CR2 from a #PF) and
 * is restored and compared; {@link #system} is everything else the check must see unchanged (segments,
 * control and descriptor-table registers, MSR fields, event state) for a run to be repeatable.
 */
record CpuSnapshot(long[] user, long[] system, double[] st, long fetchEpoch) {
    static CpuSnapshot of(Cpu c) {
        long[] u = new long[16 + 32 + 8 + 8 + 8 + 24];
        int k = 0;
        for (long v : c.r) u[k++] = v;
        for (long v : c.xmm) u[k++] = v;
        for (long v : c.stMant) u[k++] = v;
        for (int v : c.stExp) u[k++] = v;
        u[k++] = c.rip; u[k++] = c.prevRip; u[k++] = c.rflags; u[k++] = c.ccOp; u[k++] = c.ccDst; u[k++] = c.ccSrc;
        u[k++] = c.ccSrc2; u[k++] = c.traceExit ? 1 : 0; u[k++] = c.instructionsRetired; u[k++] = c.mxcsr;
        u[k++] = c.fpuTop; u[k++] = c.fcw; u[k++] = c.fsw; u[k++] = c.ftw; u[k++] = c.fop; u[k++] = c.fip; u[k++] = c.fdp;
        u[k++] = c.cr2;
        long[] s = new long[40 + 8];
        int j = 0;
        for (int i = 0; i < 10; i++) { s[j++] = c.segSel[i]; s[j++] = c.segBase[i]; s[j++] = c.segLimit[i]; s[j++] = c.segAttr[i]; }
        for (long v : c.dr) s[j++] = v;
        long[] more = {c.cr0, c.cr3, c.cr4, c.cr8, c.efer, c.gdtBase, c.gdtLimit, c.idtBase, c.idtLimit, c.xcr0, c.star,
                c.lstar, c.cstar, c.sfmask, c.kernelGsBase, c.tscAux, c.pat, c.sysenterCs, c.sysenterEsp, c.sysenterEip,
                c.apicBase, c.cpl, c.halted ? 1 : 0, c.interruptShadow ? 1 : 0, c.deliveries, c.nmiBlocked ? 1 : 0,
                c.pendingExit == null ? 0 : 1, c.msrs.tscOffset, c.msrs.tscAdjust, c.msrs.mtrrDefType};
        s = Arrays.copyOf(s, j + more.length);
        System.arraycopy(more, 0, s, j, more.length);
        return new CpuSnapshot(Arrays.copyOf(u, k), s, c.st.clone(), c.mmu.fetchEpoch);
    }

    /** Puts the user state back (the system state is unchanged whenever this is used). */
    void restore(Cpu c) {
        int k = 0;
        for (int i = 0; i < 16; i++) c.r[i] = user[k++];
        for (int i = 0; i < 32; i++) c.xmm[i] = user[k++];
        for (int i = 0; i < 8; i++) c.stMant[i] = user[k++];
        for (int i = 0; i < 8; i++) c.stExp[i] = (int) user[k++];
        c.rip = user[k++]; c.prevRip = user[k++]; c.rflags = user[k++]; c.ccOp = (int) user[k++]; c.ccDst = user[k++];
        c.ccSrc = user[k++]; c.ccSrc2 = user[k++]; c.traceExit = user[k++] != 0; c.instructionsRetired = user[k++];
        c.mxcsr = (int) user[k++]; c.fpuTop = (int) user[k++]; c.fcw = (int) user[k++]; c.fsw = (int) user[k++];
        c.ftw = (int) user[k++]; c.fop = (int) user[k++]; c.fip = user[k++]; c.fdp = user[k++]; c.cr2 = user[k++];
        System.arraycopy(st, 0, c.st, 0, 8);
    }

    private static final String[] USER_TAIL = {"rip", "prevRip", "rflags", "ccOp", "ccDst", "ccSrc", "ccSrc2", "traceExit",
            "instructionsRetired", "mxcsr", "fpuTop", "fcw", "fsw", "ftw", "fop", "fip", "fdp", "cr2"};

    private static String userName(int k) {
        if (k < 16) return "r" + k;
        if (k < 48) return "xmm[" + (k - 16) + "]";
        if (k < 56) return "stMant[" + (k - 48) + "]";
        if (k < 64) return "stExp[" + (k - 56) + "]";
        return USER_TAIL[k - 64];
    }

    /** Where prevRip sits in {@link #user}: saved and restored, but not compared. */
    private static final int PREV_RIP = 64 + 1;

    /**
     * The user-state differences from {@code other}, as "name: this vs other" (empty when equal). prevRip is left
     * out: it is no architectural state but the run loop's note for a fault, which compiled code stores only
     * before an instruction that may fault or reads it (TraceCompiler.RipState).
     */
    List<String> userDifferences(CpuSnapshot other) {
        List<String> d = new ArrayList<>();
        for (int k = 0; k < user.length; k++)
            if (k != PREV_RIP && user[k] != other.user[k]) d.add(String.format("%s: 0x%x vs 0x%x", userName(k), user[k], other.user[k]));
        for (int i = 0; i < 8; i++)
            if (Double.doubleToRawLongBits(st[i]) != Double.doubleToRawLongBits(other.st[i]))
                d.add("st[" + i + "]: " + st[i] + " vs " + other.st[i]);
        return d;
    }

    /** Same system state, and no TLB flush or mode change in between (same fetch epoch of the same vCPU). */
    boolean sameSystem(CpuSnapshot other) { return fetchEpoch == other.fetchEpoch && sameArchitecturalSystem(other); }

    /** Same system state (for comparing two machines, whose fetch epochs always differ). */
    boolean sameArchitecturalSystem(CpuSnapshot other) { return Arrays.equals(system, other.system); }
}

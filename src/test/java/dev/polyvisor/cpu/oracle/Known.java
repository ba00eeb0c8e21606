package dev.polyvisor.cpu.oracle;

import dev.polyvisor.cpu.Exceptions;

import java.util.List;
import java.util.Map;
import java.util.TreeMap;

/**
 * Differences between the host and the emulator whose cause is known and reported (other engineers'
 * open bugs, a spine limitation, a vendor difference): they are counted and printed in the oracle's
 * summary instead of failing the build. Every entry says why; remove it as soon as the cause is fixed
 * (the summary says when a form entry saw no mismatch).
 */
final class Known {
    private Known() {}

    /**
     * Forms with known, reported mismatches that are someone else's open bug: id -> reason. Their
     * mismatches are printed but do not fail the build.
     */
    static final Map<String, String> FORMS = forms();

    private static Map<String, String> forms() {
        Map<String, String> m = new TreeMap<>();
        for (String id : List.of("FIADD m32 | FCMOVB [DA /0]", "FIMUL m32 | FCMOVE [DA /1]", "FICOM m32 | FCMOVBE [DA /2]",
                "FICOMP m32 | FCMOVU [DA /3]", "FILD m32 | FCMOVNB [DB /0]", "FISTTP m32 | FCMOVNE [DB /1]",
                "FIST m32 | FCMOVNBE [DB /2]", "FISTP m32 | FCMOVNU [DB /3]"))
            m.put(id, "FCMOVcc with an empty ST0 or ST(i): the host signals stack underflow (IE|SF, C1 = 0) and loads"
                    + " the indefinite QNaN into ST0 (SDM FCMOVcc, #IS); the emulator moves the stale value");
        m.put("FNSTENV | FDECSTP/FINCSTP/FPREM1 [D9 /6]", "FXTRACT (D9 F4) is #UD in the emulator; FPREM1 (D9 F5)"
                + " quotient bits C0/C3/C1 differ from the host");
        m.put("FNSTCW | FPREM/FSQRT/FRNDINT/FSCALE [D9 /7]", "FPREM (D9 F8): the emulator computes the full remainder"
                + " and quotient bits where the host performs one partial reduction (exponent difference > 63: C2 = 1)");
        return m;
    }

    /** A class of differences with a known cause outside the oracle, recognised from the case and its results. */
    record KnownDifference(String name, String reason, Matcher matcher) {
        interface Matcher { boolean matches(OracleCase c, MachineState host, MachineState emu, List<String> diffs); }
    }

    /**
     * Known difference classes, each printed with its count in the summary. Keep this list short and
     * remove an entry as soon as its cause is fixed.
     */
    static final List<KnownDifference> DIFFERENCES = List.of(
            new KnownDifference("spine: #SS as #GP",
                    "a non-canonical address through an RSP/RBP base is #SS(0) on the host (SDM Vol. 3A 6.15,"
                            + " interrupt 12), but the MMU raises #GP(0): in 64-bit mode the decoder folds SS into 'no segment'",
                    (c, h, e, d) -> d.size() == 1 && h.trap == Exceptions.SS && e.trap == Exceptions.GP && c.enc().mem()
                            && ((c.enc().forcedRegs() >> 4 & 1) != 0 || (c.enc().forcedRegs() >> 5 & 1) != 0)),
            new KnownDifference("x87: C1 kept",
                    "x87 instructions that define C1 as 0 unless the stack overflows/underflows or the result was rounded up"
                            + " (SDM FLD/FADD/... 'FPU Flags Affected') leave the input C1 set in the emulator",
                    (c, h, e, d) -> d.size() == 1 && d.get(0).startsWith("fsw") && (h.fsw ^ e.fsw) == Undefined.C1
                            && (e.fsw & Undefined.C1) != 0));

    /** Index into {@link #DIFFERENCES} of the first class that explains a mismatch, or -1. */
    static int difference(OracleCase c, MachineState host, MachineState emu, List<String> diffs) {
        for (int k = 0; k < DIFFERENCES.size(); k++)
            if (DIFFERENCES.get(k).matcher().matches(c, host, emu, diffs)) return k;
        return -1;
    }
}

package dev.polyvisor.cpu;

/** Architectural exception vectors (SDM Vol. 3A, 6.3.1, Table 6-1) and their classes for #DF (Table 6-5). */
public final class Exceptions {
    public static final int DE = 0, DB = 1, NMI = 2, BP = 3, OF = 4, BR = 5, UD = 6, NM = 7, DF = 8,
            TS = 10, NP = 11, SS = 12, GP = 13, PF = 14, MF = 16, AC = 17, MC = 18, XM = 19;

    private Exceptions() {}

    /** Vectors that push an error code (SDM 6.13). */
    public static boolean hasErrorCode(int v) {
        return v == DF || v == TS || v == NP || v == SS || v == GP || v == PF || v == AC;
    }

    /**
     * Fault-class exceptions (SDM Vol. 3A Table 6-1, type "Fault"; #DB is a trap here: instruction
     * breakpoints are not implemented): their frame gets RFLAGS.RF set, so that returning to the faulting
     * instruction does not retrigger an instruction breakpoint (SDM Vol. 3A 18.3.1.1; AMD APM Vol. 2 13.1.1.7).
     */
    public static boolean faultClass(int v) {
        return v == DE || v == BR || v == UD || v == NM || v == TS || v == NP || v == SS || v == GP || v == PF
                || v == MF || v == AC || v == XM || v == 20 || v == 21; // 20 #VE, 21 #CP
    }

    /** Contributory exceptions (SDM Table 6-4). */
    public static boolean contributory(int v) {
        return v == DE || v == TS || v == NP || v == SS || v == GP;
    }

    public static String name(int v) {
        return switch (v) {
            case DE -> "#DE"; case DB -> "#DB"; case NMI -> "NMI"; case BP -> "#BP"; case OF -> "#OF";
            case BR -> "#BR"; case UD -> "#UD"; case NM -> "#NM"; case DF -> "#DF"; case TS -> "#TS";
            case NP -> "#NP"; case SS -> "#SS"; case GP -> "#GP"; case PF -> "#PF"; case MF -> "#MF";
            case AC -> "#AC"; case MC -> "#MC"; case XM -> "#XM";
            default -> "vector " + v;
        };
    }
}

package dev.polyvisor.cpu.oracle;

import dev.polyvisor.cpu.decode.OpcodeTable;

import java.util.Locale;

/**
 * Names of x87 instructions (D8-DF, 9B) for an encoding, from the opcode-map escape tables (SDM Vol. 2,
 * Appendix A.4): the table entry's mnemonic holds "memory form | register form", and a few register
 * forms of D9/DB are further selected by ModRM.rm.
 */
final class X87Names {
    private X87Names() {}

    static boolean isX87(OpcodeTable.Entry e) {
        return e.map() == OpcodeTable.MAP_1BYTE && (e.opcode() >= 0xD8 && e.opcode() <= 0xDF || e.opcode() == 0x9B);
    }

    private static final String[] D9_4 = {"FCHS", "FABS", null, null, "FTST", "FXAM", null, null};
    private static final String[] D9_6 = {"F2XM1", "FYL2X", "FPTAN", "FPATAN", "FXTRACT", "FPREM1", "FDECSTP", "FINCSTP"};
    private static final String[] D9_7 = {"FPREM", "FYL2XP1", "FSQRT", "FSINCOS", "FRNDINT", "FSCALE", "FSIN", "FCOS"};

    static String name(OpcodeTable.Entry e, Encoding enc) {
        if (e.opcode() == 0x9B) return "FWAIT";
        int op = e.opcode(), reg = e.reg();
        if (!enc.mem()) {
            int rm = enc.rmReg() & 7;
            if (op == 0xD9 && reg == 4 && D9_4[rm] != null) return D9_4[rm];
            if (op == 0xD9 && reg == 5) return "FLDCONST";
            if (op == 0xD9 && reg == 6) return D9_6[rm];
            if (op == 0xD9 && reg == 7) return D9_7[rm];
            if (op == 0xD9 && reg == 2) return "FNOP";
            if (op == 0xDB && reg == 4) return rm == 2 ? "FNCLEX" : rm == 3 ? "FNINIT" : "?";
        }
        String[] parts = e.mnemonic().split("\\|");
        String n = (enc.mem() || parts.length < 2 ? parts[0] : parts[1]).trim();
        int sp = n.indexOf(' ');
        return (sp < 0 ? n : n.substring(0, sp)).toUpperCase(Locale.ROOT);
    }

    /**
     * Register forms whose results are not bit-exact across implementations (transcendentals: the SDM
     * only bounds their error), so that host and emulator may legitimately differ.
     */
    static boolean inexact(int opcode, int reg, int rm) {
        if (opcode != 0xD9 || rm < 0) return false;
        if (reg == 6) return rm <= 3;                                   // F2XM1 FYL2X FPTAN FPATAN
        return reg == 7 && (rm == 1 || rm == 3 || rm == 6 || rm == 7); // FYL2XP1 FSINCOS FSIN FCOS
    }
}

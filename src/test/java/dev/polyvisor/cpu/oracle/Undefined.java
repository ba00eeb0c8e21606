package dev.polyvisor.cpu.oracle;

import dev.polyvisor.cpu.Flags;
import dev.polyvisor.cpu.decode.OpcodeTable;

import static dev.polyvisor.cpu.Flags.*;

/**
 * What the architecture leaves undefined for one case, so that the comparison ignores it. From the
 * "Flags Affected" sections of the SDM Vol. 2 instruction pages (the host is an AMD CPU, whose
 * undefined results differ from Intel's, so none of them may be compared).
 *
 * @param flags    RFLAGS bits whose value is undefined
 * @param regs     GPRs (bit n = register n) whose value is undefined
 * @param skip     the whole result is undefined (e.g. SHLD/SHRD with a count above the operand size);
 *                 the case is not compared and is counted separately
 * @param fsw      x87 status-word bits (condition codes) whose value is undefined
 */
record Undefined(int flags, int regs, boolean skip, int fsw) {
    static final Undefined NONE = new Undefined(0, 0, false, 0);

    Undefined(int flags, int regs, boolean skip) { this(flags, regs, skip, 0); }

    /** x87 condition-code bits of the status word. */
    static final int C0 = 1 << 8, C1 = 1 << 9, C2 = 1 << 10, C3 = 1 << 14;

    /**
     * @param hostFlags the host's RFLAGS after the instruction (BSF/BSR: ZF tells whether the source was 0)
     */
    static Undefined of(OpcodeTable.Entry e, Encoding enc, MachineState in, long hostFlags) {
        if (X87Names.isX87(e)) return x87(X87Names.name(e, enc));
        String k = Encoder.key(e);
        int bits = enc.opSize() * 8;
        return switch (k) {
            // MUL/IMUL: CF and OF defined; SF, ZF, AF, PF undefined.
            case "MUL", "IMUL" -> new Undefined(SF | ZF | AF | PF, 0, false);
            // DIV/IDIV: all six undefined.
            case "DIV", "IDIV" -> new Undefined(ARITH, 0, false);
            // Logic: AF undefined, the rest defined (OF = CF = 0).
            case "AND", "OR", "XOR", "TEST" -> new Undefined(AF, 0, false);
            // BT family: CF is the bit; OF, SF, AF, PF undefined; ZF unaffected.
            case "BT", "BTS", "BTR", "BTC" -> new Undefined(OF | SF | AF | PF, 0, false);
            // BSF/BSR: only ZF defined; with a zero source the destination is undefined.
            case "BSF", "BSR" -> new Undefined(CF | OF | SF | AF | PF,
                    (hostFlags & ZF) != 0 && enc.regField() >= 0 ? 1 << enc.regField() : 0, false);
            // BCD adjustments (valid outside 64-bit mode only, see Compat32): DAA/DAS leave OF undefined;
            // AAA/AAS define only AF and CF; AAM/AAD define only SF, ZF and PF.
            case "DAA", "DAS" -> new Undefined(OF, 0, false);
            case "AAA", "AAS" -> new Undefined(OF | SF | ZF | PF, 0, false);
            case "AAM", "AAD" -> new Undefined(OF | AF | CF, 0, false);
            // LZCNT/TZCNT: CF and ZF defined.
            case "LZCNT", "TZCNT" -> new Undefined(OF | SF | AF | PF, 0, false);
            // BSWAP with a 16-bit operand: result undefined.
            case "BSWAP" -> new Undefined(0, enc.opSize() == 2 ? 1 << enc.opcodeReg() : 0, false);
            case "SHL", "SAL", "SHR", "SAR" -> {
                int n = maskedCount(e, enc, in);
                if (n == 0) yield NONE; // count 0: flags unaffected (defined)
                int f = AF | (n > 1 ? OF : 0);
                // SHL/SHR with a count >= the operand size (8/16-bit only, after masking): CF undefined.
                if (!k.equals("SAR") && n >= bits) f |= CF;
                yield new Undefined(f, 0, false);
            }
            // Rotates affect CF and OF only; OF is undefined unless the masked count is 1.
            case "ROL", "ROR", "RCL", "RCR" -> {
                int n = maskedCount(e, enc, in);
                yield n > 1 ? new Undefined(OF, 0, false) : NONE;
            }
            case "SHLD", "SHRD" -> {
                int n = maskedCount(e, enc, in);
                if (n == 0) yield NONE;
                if (n > bits) yield new Undefined(ARITH, 0, true); // result and flags undefined
                yield new Undefined(AF | (n > 1 ? OF : 0), 0, false);
            }
            default -> NONE;
        };
    }

    /**
     * x87 condition codes per the "FPU Flags Affected" sections: comparisons, FXAM and FPREM define all
     * four; control and bookkeeping instructions leave all four undefined; everything else defines only
     * C1 (stack fault / round-up) and leaves C0, C2, C3 undefined.
     */
    static Undefined x87(String name) {
        int fsw = switch (name) {
            case "FCOM", "FCOMP", "FCOMPP", "FUCOM", "FUCOMP", "FUCOMPP", "FICOM", "FICOMP", "FTST", "FXAM",
                 "FPREM", "FPREM1", "FNINIT", "FNSAVE", "FRSTOR", "FLDENV" -> 0;
            // FCOMI family: the SDM clears C1 (no stack fault); the AMD host leaves it unchanged. Vendor difference.
            case "FCOMI", "FCOMIP", "FUCOMI", "FUCOMIP" -> C1;
            case "FNSTSW", "FNCLEX", "FLDCW", "FNSTCW", "FFREE", "FNOP", "FWAIT", "FBLD", "FBSTP", "FNSTENV" -> C0 | C1 | C2 | C3;
            default -> C0 | C2 | C3;
        };
        return new Undefined(0, 0, false, fsw);
    }

    /**
     * The shift count after masking to 5 bits (6 for 64-bit operands): from the immediate
     * (C0/C1, 0F A4, 0F AC), the constant 1 (D0/D1) or CL (D2/D3, 0F A5, 0F AD).
     */
    static int maskedCount(OpcodeTable.Entry e, Encoding enc, MachineState in) {
        int op = e.opcode();
        long raw;
        if (e.map() == OpcodeTable.MAP_1BYTE) {
            raw = switch (op) {
                case 0xD0, 0xD1 -> 1;
                case 0xD2, 0xD3 -> in.gpr[1];
                default -> enc.imm();
            };
        } else {
            raw = (op & 1) != 0 ? in.gpr[1] : enc.imm();
        }
        return (int) (raw & (enc.opSize() == 8 ? 0x3F : 0x1F));
    }

    /** The RFLAGS bits the oracle compares: the six arithmetic flags and DF. */
    static final int COMPARED_FLAGS = ARITH | Flags.DF;
}

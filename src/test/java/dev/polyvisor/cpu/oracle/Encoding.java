package dev.polyvisor.cpu.oracle;

import java.util.HexFormat;

/**
 * One synthesised encoding of an opcode-table form, with what the case generator and the flag masks
 * need to know about it.
 *
 * @param bytes      the instruction
 * @param opSize     effective operand size by the decoder's rules (1, 2, 4, 8)
 * @param mem        true for a memory operand (ModRM mod != 3, or a moffs form)
 * @param regField   ModRM.reg with REX.R (-1 without ModRM)
 * @param rmReg      ModRM.rm with REX.B for a register operand (-1 otherwise)
 * @param opcodeReg  register in the low opcode bits with REX.B (meaningful for "+r" forms)
 * @param rex        the REX byte, 0 if none
 * @param imm        the first immediate, sign-extended as the decoder does for IB (0 if none)
 * @param eaOffset   offset of the memory operand in the data page (-1 for register forms)
 * @param forcedRegs registers (bit n = GPR n) whose input values address the memory operand
 * @param forced     their values, indexed by register number
 */
record Encoding(byte[] bytes, int opSize, boolean mem, int regField, int rmReg, int opcodeReg, int rex, long imm,
                int eaOffset, int forcedRegs, long[] forced) {
    String hex() { return HexFormat.ofDelimiter(" ").formatHex(bytes); }
}

package dev.polyvisor.cpu.oracle;

import dev.polyvisor.cpu.decode.OpcodeTable;

/**
 * One differential test case: an encoding of a table form and the initial machine state.
 *
 * @param entry   the form the encoding was generated for
 * @param index   the case's number within its form (with the seed, enough to regenerate it)
 */
record OracleCase(OpcodeTable.Entry entry, int index, Encoding enc, MachineState input) {
    byte[] code() { return enc.bytes(); }
}

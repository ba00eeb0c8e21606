package dev.polyvisor.cpu.oracle;

import dev.polyvisor.cpu.decode.OpcodeTable;

/**
 * One differential test case: an encoding of a table form, optionally followed by a flag consumer
 * (see {@link FlagConsumer}), and the initial machine state.
 *
 * @param entry    the form the encoding was generated for
 * @param index    the case's number within its form (with the seed, enough to regenerate it)
 * @param code     the bytes run: {@code enc.bytes()} plus the consumer's bytes, if any
 * @param consumer description of the appended consumer, or null
 */
record OracleCase(OpcodeTable.Entry entry, int index, Encoding enc, MachineState input, byte[] code, String consumer) {
    OracleCase(OpcodeTable.Entry entry, int index, Encoding enc, MachineState input) {
        this(entry, index, enc, input, enc.bytes(), null);
    }

    /** The case runs in 32-bit compatibility mode (the mode is part of the input state). */
    boolean compat() { return input.compat; }
}

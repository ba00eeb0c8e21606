package dev.polyvisor.cpu.decode;

import dev.polyvisor.cpu.Cpu;

/**
 * One decoded instruction: an immutable handler object whose fields are its decoded operands
 * (reference/cpu-design.md 1.3). The run loop sets {@code c.prevRip}, advances {@code c.rip} by
 * {@link #len} and calls {@link #exec}; so during exec {@code c.rip} is the next instruction's
 * address (what RIP-relative operands and relative branches need) and a fault rolls RIP back.
 */
public abstract class Insn {
    /** Length in bytes (1..15); set by the decoder. */
    public int len;
    /** Ends the trace: branches, mode changes, exits, anything after which the next RIP is not rip+len. */
    public boolean endsTrace;
    /** The table entry it was decoded from, for tracing and tests. */
    public OpcodeTable.Entry entry;

    public abstract void exec(Cpu c);

    /** {@link #directTarget} of an instruction that is not a direct jump the trace builder may follow. */
    public static final long NO_TARGET = Long.MIN_VALUE;

    /**
     * For an unconditional direct jump in 64-bit mode (where RIP is the linear address): the address
     * it always continues at, given the address of the next instruction; else {@link #NO_TARGET}.
     * The trace builder decodes on at the target when it lies in the same page.
     */
    public long directTarget(long next) { return NO_TARGET; }

    @Override
    public String toString() { return entry == null ? getClass().getSimpleName() : entry.mnemonic(); }
}

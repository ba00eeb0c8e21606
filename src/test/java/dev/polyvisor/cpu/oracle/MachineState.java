package dev.polyvisor.cpu.oracle;

/**
 * The state one oracle case loads into, or reads back from, both the host CPU and the emulator:
 * the 16 GPRs (RSP included), RFLAGS, MXCSR, XMM0-15, the x87 registers and a 1024-byte window of the
 * scratch data page.
 * As an outcome it also carries the exception (trap vector, or {@link #NO_TRAP}), the #PF address,
 * the RIP after the instruction (or at the fault) and whether the page outside the window changed.
 */
final class MachineState {
    static final int NO_TRAP = -1;
    static final int WINDOW = 1024;

    /**
     * Input: run the case in 32-bit compatibility mode (CS 0x23, D=1, L=0; DS/ES/SS 0x2b), as a 32-bit
     * Linux process runs, instead of 64-bit mode. See {@link Compat32}.
     */
    boolean compat;
    final long[] gpr = new long[16];
    long rflags = 2;
    int mxcsr = 0x1F80;
    /** XMM0-15 as {lo, hi} pairs, like Cpu.xmm. */
    final long[] xmm = new long[32];
    final byte[] mem = new byte[WINDOW];
    /** x87: control word, status word (TOP included), abridged tag (bit n = physical register n not empty). */
    int fcw = 0x037F, fsw, ftw;
    /** ST(0)..ST(7) in stack order: 64-bit significand and sign/exponent word. */
    final long[] stMant = new long[8];
    final int[] stExp = new int[8];

    int trap = NO_TRAP;
    long faultAddr;
    /** Emulator side: the case ended in compatibility mode (a far transfer to CS 0x23): GPR upper halves are undefined. */
    boolean endedInCompat;
    /** The exception's error code (-1 if the vector has none); compared for #GP, #SS, #TS and #NP (SystemForms.errorCodeCompared). */
    int err = -1;
    long rip;
    /** Bit 0: the data page changed outside the window; bit 1: the code page changed. */
    int dirty;
    /** FNV-1a hash of the whole data page after the instruction (catches differing writes outside the window). */
    long pageHash;
}

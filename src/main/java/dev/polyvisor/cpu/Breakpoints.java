package dev.polyvisor.cpu;

/**
 * The debug-register breakpoints (SDM Vol. 3A 18.2, 18.3): DR0-DR3 with DR7's enables (L0-L3/G0-G3, bits
 * 0-7), R/W fields (bits 16+4n: 00 execute, 01 write, 11 read or write; 10 is an I/O breakpoint, not
 * implemented) and LEN fields (bits 18+4n: 1, 2, 8 or 4 bytes, the address aligned down to the length).
 *
 * <p>{@link #update} recomputes the decoded form whenever DR0-DR3 or DR7 change. While any breakpoint is
 * enabled, {@link Cpu#breakpointsArmed} makes the run loop take its one-instruction path, which checks the
 * execute breakpoints before each instruction and reports the data breakpoints that the MMU saw hit (the
 * MMU keeps pages holding a data breakpoint out of its TLB, so every access to them is checked). With no
 * breakpoint enabled nothing is checked anywhere.
 */
public final class Breakpoints {
    private Breakpoints() {}

    /** DR7 bits: GD (general detect, bit 13) and the fixed-one bit 10. */
    public static final long DR7_GD = 1L << 13, DR7_FIXED = 0x400;
    /** DR6 bits: B0-B3, BD (general detect), BS (single step). */
    public static final long DR6_B_MASK = 0xF, DR6_BD = 1L << 13, DR6_BS = 1L << 14;

    static final int RW_EXEC = 0, RW_WRITE = 1, RW_IO = 2, RW_ANY = 3;

    /** Byte length of a breakpoint from its LEN field (SDM Table 18-2: 00 = 1, 01 = 2, 10 = 8, 11 = 4). */
    static int length(int len) {
        return switch (len) {
            case 0 -> 1;
            case 1 -> 2;
            case 2 -> 8;
            default -> 4;
        };
    }

    static boolean enabled(long dr7, int n) { return ((dr7 >>> (2 * n)) & 3) != 0; }

    static int rw(long dr7, int n) { return (int) (dr7 >>> (16 + 4 * n)) & 3; }

    static int len(long dr7, int n) { return (int) (dr7 >>> (18 + 4 * n)) & 3; }

    /** Decodes DR0-DR3 and DR7 into {@link Cpu#breakpointsArmed}, the execute mask and the MMU's data breakpoints. */
    public static void update(Cpu c) {
        long dr7 = c.dr[7];
        int exec = 0, data = 0, writeOnly = 0;
        long[] start = new long[4], end = new long[4];
        for (int n = 0; n < 4; n++) {
            if (!enabled(dr7, n)) continue;
            int rw = rw(dr7, n);
            if (rw == RW_EXEC) {
                exec |= 1 << n;
            } else if (rw != RW_IO) {
                int size = length(len(dr7, n));
                long a = c.dr[n] & -(long) size;
                start[n] = a;
                end[n] = a + size - 1;
                data |= 1 << n;
                if (rw == RW_WRITE) writeOnly |= 1 << n;
            }
        }
        c.execBreakpoints = exec;
        c.breakpointsArmed = (exec | data) != 0;
        c.mmu.setDataBreakpoints(data, writeOnly, start, end);
    }

    /**
     * The execute breakpoints that match the instruction at linear address {@code la} (SDM 18.3.1.1: only
     * the first byte of the instruction, with LEN 00; other lengths are undefined and are matched the same way).
     */
    public static int instructionHits(Cpu c, long la) {
        int hits = 0;
        for (int n = 0, m = c.execBreakpoints; m != 0; n++, m >>>= 1)
            if ((m & 1) != 0 && c.dr[n] == la) hits |= 1 << n;
        return hits;
    }

    /**
     * Reports a #DB condition in DR6: B0-B3 are set for the breakpoints that matched and cleared for the
     * others, the other status bits are only ever set (SDM 18.2.3: the processor never clears them).
     */
    public static void reportInDr6(Cpu c, long bits) {
        c.dr[6] = (c.dr[6] & ~DR6_B_MASK) | bits;
    }
}

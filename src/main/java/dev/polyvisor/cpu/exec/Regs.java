package dev.polyvisor.cpu.exec;

import dev.polyvisor.cpu.Cpu;

/**
 * Register access by operand size (SDM Vol. 1, 3.4.1.1): 32-bit writes zero-extend to 64 bits,
 * 8- and 16-bit writes merge. Byte register numbers 16-19 are AH, CH, DH, BH (see Decoded.byteReg).
 */
public final class Regs {
    private Regs() {}

    public static long get(Cpu c, int n, int size) {
        return switch (size) {
            case 1 -> n >= 16 ? (c.r[n - 16] >>> 8) & 0xFF : c.r[n] & 0xFF;
            case 2 -> c.r[n] & 0xFFFF;
            case 4 -> c.r[n] & 0xFFFF_FFFFL;
            default -> c.r[n];
        };
    }

    public static void set(Cpu c, int n, int size, long v) {
        switch (size) {
            case 1 -> {
                if (n >= 16) c.r[n - 16] = (c.r[n - 16] & ~0xFF00L) | ((v & 0xFF) << 8);
                else c.r[n] = (c.r[n] & ~0xFFL) | (v & 0xFF);
            }
            case 2 -> c.r[n] = (c.r[n] & ~0xFFFFL) | (v & 0xFFFF);
            case 4 -> c.r[n] = v & 0xFFFF_FFFFL;
            default -> c.r[n] = v;
        }
    }

    public static long mask(int size) { return size == 8 ? -1L : (1L << (size * 8)) - 1; }

    /** Sign-extends the low {@code size} bytes of v to 64 bits. */
    public static long sext(long v, int size) {
        int sh = 64 - size * 8;
        return (v << sh) >> sh;
    }

    public static int sizeIdx(int size) {
        return switch (size) { case 1 -> 0; case 2 -> 1; case 4 -> 2; default -> 3; };
    }
}

package dev.polyvisor.cpu.exec;

import dev.polyvisor.cpu.Cpu;

/**
 * x87 register-stack state helpers (SDM Vol. 1, 8.1). The truth is the 80-bit image of each physical
 * register in {@code c.stMant} (64-bit significand with explicit integer bit) and {@code c.stExp}
 * (sign in bit 15, biased exponent in bits 14:0); {@code c.st} mirrors it as a double (rounded to
 * nearest) for readers that want a number. {@code c.fsw} holds the status word with the TOP field
 * (bits 13:11) kept separately in {@code c.fpuTop}; {@code c.ftw} is the full 2-bit-per-register tag
 * word indexed by physical register.
 */
public final class X87 {
    private X87() {}

    public static final int TAG_VALID = 0, TAG_ZERO = 1, TAG_SPECIAL = 2, TAG_EMPTY = 3;
    /** Status word bits (SDM Vol. 1, Figure 8-4). */
    public static final int SF = 1 << 6, ES = 1 << 7, C0 = 1 << 8, C1 = 1 << 9, C2 = 1 << 10, C3 = 1 << 14, B = 1 << 15;

    /** The status word as FNSTSW stores it. */
    public static int status(Cpu c) { return (c.fsw & ~0x3800) | (c.fpuTop & 7) << 11; }

    public static void setStatus(Cpu c, int v) {
        c.fsw = v & 0xFFFF & ~0x3800;
        c.fpuTop = (v >>> 11) & 7;
    }

    /** The tag a register's contents imply (SDM Vol. 1, 8.1.7). */
    public static int tagOf(long mant, int se) {
        int exp = se & 0x7FFF;
        if (exp == 0x7FFF) return TAG_SPECIAL;
        if (exp == 0) return mant == 0 ? TAG_ZERO : TAG_SPECIAL;
        return mant < 0 ? TAG_VALID : TAG_SPECIAL; // integer bit clear: unnormal
    }

    public static int tag(Cpu c, int phys) { return (c.ftw >>> (2 * phys)) & 3; }

    public static void setTag(Cpu c, int phys, int tag) {
        c.ftw = (c.ftw & ~(3 << (2 * phys))) | (tag << (2 * phys));
    }

    /** FXSAVE's abridged tag: one bit per physical register, 1 = not empty (SDM Vol. 1, 10.5.1.1). */
    public static int abridgedTag(Cpu c) {
        int a = 0;
        for (int i = 0; i < 8; i++) if (tag(c, i) != TAG_EMPTY) a |= 1 << i;
        return a;
    }

    /** Rebuilds the full tag word from an abridged one and the register contents (FXRSTOR). */
    public static void setAbridgedTag(Cpu c, int a) {
        int t = 0;
        for (int i = 0; i < 8; i++)
            t |= ((a >>> i & 1) == 0 ? TAG_EMPTY : tagOf(c.stMant[i], c.stExp[i])) << (2 * i);
        c.ftw = t;
    }

    /** Writes a physical register's image (not its tag). */
    public static void setPhys(Cpu c, int phys, long mant, int se) {
        c.stMant[phys] = mant;
        c.stExp[phys] = se & 0xFFFF;
        c.st[phys] = SoftFloat.extToDouble(mant, se);
    }

    /** Physical register number of ST(i). */
    public static int phys(Cpu c, int i) { return (c.fpuTop + i) & 7; }

    /** The FNINIT / FINIT state (SDM Vol. 2A, FINIT/FNINIT: FCW 037F, FSW 0, FTW all empty, pointers and FOP 0). */
    public static void init(Cpu c) {
        c.fcw = 0x037F;
        c.fsw = 0;
        c.fpuTop = 0;
        c.ftw = 0xFFFF;
        c.fop = 0;
        c.fip = 0;
        c.fdp = 0;
    }
}

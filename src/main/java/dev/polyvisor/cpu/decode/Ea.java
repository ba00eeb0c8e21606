package dev.polyvisor.cpu.decode;

import dev.polyvisor.cpu.Cpu;

/**
 * A decoded memory operand: computes the effective address (SDM Vol. 2, 2.1.5 / 2.2.1) and the linear
 * address through its segment. Subclasses cover the shapes so that the common ones cost no branches.
 * RIP-relative operands add {@code c.rip}, which is the next instruction's address during exec.
 */
public abstract sealed class Ea {
    static final int ABS = 0, BASE = 1, BASE_INDEX = 2, INDEX = 3, RIP = 4;
    public final int seg;
    public final long disp;
    /** 0xFFFF, 0xFFFF_FFFF or -1 by address size. */
    public final long mask;
    /**
     * The shape, for {@link #ea}: a switch on it inlines into every handler, where a virtual call on the
     * subclass would be megamorphic at the one shared call site. {@code base}/{@code index} are 0 when unused.
     */
    private final int kind;
    final int base, index, scale;
    /**
     * Non-zero when {@link #lin} needs no segment base in 64-bit mode (a hint only, checked with long64):
     * FLAT for ES/CS/DS, FLAT_STACK for SS, whose non-canonical addresses are #SS(0) rather than the MMU's #GP(0).
     */
    private final int flat;
    private static final int FLAT = 1, FLAT_STACK = 2;

    Ea(int kind, int seg, int base, int index, int scale, long disp, long mask) {
        this.kind = kind;
        this.seg = seg;
        this.base = base;
        this.index = index;
        this.scale = scale;
        this.disp = disp;
        this.mask = mask;
        this.flat = seg == Cpu.SEG_NONE ? FLAT : seg == Cpu.SEG_NONE_SS ? FLAT_STACK : 0;
    }

    /** The effective address (offset within the segment). */
    public final long ea(Cpu c) {
        long[] r = c.r;
        return switch (kind) {
            case BASE -> (r[base] + disp) & mask;
            case BASE_INDEX -> (r[base] + (r[index] << scale) + disp) & mask;
            case INDEX -> ((r[index] << scale) + disp) & mask;
            case RIP -> (c.rip + disp) & mask;
            default -> disp & mask;
        };
    }

    /** The linear address: segment base plus effective address (SEG_NONE has base 0 and is used only in 64-bit mode). */
    public final long lin(Cpu c) {
        if (flat != 0 && c.long64) {
            long a = ea(c);
            return flat == FLAT ? a : c.stackCanonical(a);
        }
        return c.linear(seg, ea(c));
    }

    /**
     * The operand's shape for the JIT ({@code cpu.jit}), which emits {@link #ea} and {@link #lin} as bytecode with
     * these values as constants. {@code kind} is one of {@link #ABS}... {@link #RIP} (the public copies below);
     * {@code flat} and {@code flatStack} say which 64-bit shortcut {@link #lin} takes.
     */
    public record Shape(int kind, int seg, int base, int index, int scale, long disp, long mask, boolean flat,
                        boolean flatStack) {}

    public static final int KIND_ABS = ABS, KIND_BASE = BASE, KIND_BASE_INDEX = BASE_INDEX, KIND_INDEX = INDEX, KIND_RIP = RIP;

    public final Shape shape() { return new Shape(kind, seg, base, index, scale, disp, mask, flat == FLAT, flat == FLAT_STACK); }

    /** The same operand displaced by {@code delta} bytes (for the second half of m16:64, FXSAVE fields...). */
    public final long lin(Cpu c, long delta) { return c.linear(seg, (ea(c) + delta) & mask); }

    public static final class Abs extends Ea {
        Abs(int seg, long disp, long mask) { super(ABS, seg, 0, 0, 0, disp, mask); }
    }

    public static final class Base extends Ea {
        Base(int seg, int base, long disp, long mask) { super(BASE, seg, base, 0, 0, disp, mask); }
    }

    public static final class BaseIndex extends Ea {
        BaseIndex(int seg, int base, int index, int scale, long disp, long mask) {
            super(BASE_INDEX, seg, base, index, scale, disp, mask);
        }
    }

    public static final class Index extends Ea {
        Index(int seg, int index, int scale, long disp, long mask) { super(INDEX, seg, 0, index, scale, disp, mask); }
    }

    public static final class Rip extends Ea {
        Rip(int seg, long disp, long mask) { super(RIP, seg, 0, 0, 0, disp, mask); }
    }
}

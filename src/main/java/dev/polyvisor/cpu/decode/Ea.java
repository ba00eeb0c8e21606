package dev.polyvisor.cpu.decode;

import dev.polyvisor.cpu.Cpu;

/**
 * A decoded memory operand: computes the effective address (SDM Vol. 2, 2.1.5 / 2.2.1) and the linear
 * address through its segment. Subclasses cover the shapes so that the common ones cost no branches.
 * RIP-relative operands add {@code c.rip}, which is the next instruction's address during exec.
 */
public abstract sealed class Ea {
    public final int seg;
    public final long disp;
    /** 0xFFFF, 0xFFFF_FFFF or -1 by address size. */
    public final long mask;

    Ea(int seg, long disp, long mask) {
        this.seg = seg;
        this.disp = disp;
        this.mask = mask;
    }

    /** The effective address (offset within the segment). */
    public abstract long ea(Cpu c);

    /** The linear address: segment base plus effective address. */
    public final long lin(Cpu c) { return c.linear(seg, ea(c)); }

    /** The same operand displaced by {@code delta} bytes (for the second half of m16:64, FXSAVE fields...). */
    public final long lin(Cpu c, long delta) { return c.linear(seg, (ea(c) + delta) & mask); }

    public static final class Abs extends Ea {
        Abs(int seg, long disp, long mask) { super(seg, disp, mask); }
        @Override public long ea(Cpu c) { return disp & mask; }
    }

    public static final class Base extends Ea {
        final int base;
        Base(int seg, int base, long disp, long mask) { super(seg, disp, mask); this.base = base; }
        @Override public long ea(Cpu c) { return (c.r[base] + disp) & mask; }
    }

    public static final class BaseIndex extends Ea {
        final int base, index, scale;
        BaseIndex(int seg, int base, int index, int scale, long disp, long mask) {
            super(seg, disp, mask); this.base = base; this.index = index; this.scale = scale;
        }
        @Override public long ea(Cpu c) { return (c.r[base] + (c.r[index] << scale) + disp) & mask; }
    }

    public static final class Index extends Ea {
        final int index, scale;
        Index(int seg, int index, int scale, long disp, long mask) { super(seg, disp, mask); this.index = index; this.scale = scale; }
        @Override public long ea(Cpu c) { return ((c.r[index] << scale) + disp) & mask; }
    }

    public static final class Rip extends Ea {
        Rip(int seg, long disp, long mask) { super(seg, disp, mask); }
        @Override public long ea(Cpu c) { return (c.rip + disp) & mask; }
    }
}

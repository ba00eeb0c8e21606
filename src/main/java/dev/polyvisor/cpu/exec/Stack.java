package dev.polyvisor.cpu.exec;

import dev.polyvisor.cpu.Cpu;
import dev.polyvisor.cpu.Exceptions;
import dev.polyvisor.cpu.Segments;

/**
 * Stack pushes and pops through SS with the stack-pointer width from SS.B or 64-bit mode
 * (SDM Vol. 1, 6.2.3). The value is written before RSP changes, so a faulting push leaves RSP intact.
 */
public final class Stack {
    private Stack() {}

    public static void push(Cpu c, int size, long v) {
        if (c.long64) { // 64-bit mode: RSP is the whole pointer and SS has no base
            long sp = c.stackCanonical(c.r[Cpu.RSP] - size, size);
            if (size == 8) c.mmu.write64(sp, v); else c.mmu.write(sp, size, v);
            c.r[Cpu.RSP] = sp;
            return;
        }
        int ss = c.stackSize;
        long sp = c.r[Cpu.RSP] - size;
        long off = ss == 4 ? sp & 0xFFFF_FFFFL : sp & 0xFFFF; // outside 64-bit mode: a 32- or 16-bit stack
        c.mmu.write(c.linear(Cpu.SS, withinLimit(c, off, size)), size, v);
        setSp(c, sp);
    }

    public static long pop(Cpu c, int size) {
        if (c.long64) {
            long sp = c.stackCanonical(c.r[Cpu.RSP], size);
            long v = size == 8 ? c.mmu.read64(sp) : c.mmu.read(sp, size);
            c.r[Cpu.RSP] = sp + size;
            return v;
        }
        long v = peek(c, size, 0);
        setSp(c, c.r[Cpu.RSP] + size);
        return v;
    }

    /** Reads {@code size} bytes at SP + offset without changing SP. */
    public static long peek(Cpu c, int size, long offset) {
        if (c.long64) {
            long sp = c.stackCanonical(c.r[Cpu.RSP] + offset, size);
            return size == 8 ? c.mmu.read64(sp) : c.mmu.read(sp, size);
        }
        int ss = c.stackSize;
        long sp = c.r[Cpu.RSP] + offset;
        long off = ss == 4 ? sp & 0xFFFF_FFFFL : sp & 0xFFFF; // outside 64-bit mode: a 32- or 16-bit stack
        return c.mmu.read(c.linear(Cpu.SS, withinLimit(c, off, size)), size);
    }

    /**
     * Outside 64-bit mode a stack access must lie wholly within SS's limit (SDM Vol. 3A, 5.3): an expand-up
     * segment allows offsets up to the limit, an expand-down one offsets above it up to 0xFFFF or 0xFFFFFFFF
     * (by SS.B). Else #SS(0) — e.g. a 4-byte push at ESP 2 on a flat 4 GiB stack, whose last byte lies past
     * 0xFFFFFFFF (the AMD host raises #SS there rather than wrapping; host-CPU oracle, compatibility mode).
     */
    public static long withinLimit(Cpu c, long off, int size) {
        long last = off + size - 1, lim = c.segLimit[Cpu.SS];
        int attr = c.segAttr[Cpu.SS];
        boolean expandDown = (attr & (Segments.A_CODE | Segments.A_CONFORMING)) == Segments.A_CONFORMING;
        long upper = (attr & Segments.A_DB) != 0 ? 0xFFFF_FFFFL : 0xFFFF;
        if (expandDown ? off <= lim || last > upper : last > lim) throw c.fault(Exceptions.SS, 0);
        return off;
    }

    /** Writes SP with the stack width: a 16-bit stack changes only SP (SDM Vol. 1, 6.2.3). */
    public static void setSp(Cpu c, long sp) {
        switch (c.stackSize) {
            case 8 -> c.r[Cpu.RSP] = sp;
            case 4 -> c.r[Cpu.RSP] = sp & 0xFFFF_FFFFL;
            default -> c.r[Cpu.RSP] = (c.r[Cpu.RSP] & ~0xFFFFL) | (sp & 0xFFFF);
        }
    }
}

package dev.polyvisor.cpu.oracle;

import java.util.Arrays;

/**
 * The state one oracle case loads into, or reads back from, both the host CPU and the emulator:
 * the 16 GPRs (RSP included), RFLAGS, MXCSR, XMM0-15 and a 256-byte window of the scratch data page.
 * As an outcome it also carries the exception (trap vector, or {@link #NO_TRAP}), the #PF address,
 * the RIP after the instruction (or at the fault) and whether the page outside the window changed.
 */
final class MachineState {
    static final int NO_TRAP = -1;
    static final int WINDOW = 256;

    final long[] gpr = new long[16];
    long rflags = 2;
    int mxcsr = 0x1F80;
    /** XMM0-15 as {lo, hi} pairs, like Cpu.xmm. */
    final long[] xmm = new long[32];
    final byte[] mem = new byte[WINDOW];

    int trap = NO_TRAP;
    long faultAddr;
    long rip;
    /** Bit 0: the data page changed outside the window; bit 1: the code page changed. */
    int dirty;

    MachineState copy() {
        MachineState s = new MachineState();
        System.arraycopy(gpr, 0, s.gpr, 0, 16);
        s.rflags = rflags;
        s.mxcsr = mxcsr;
        System.arraycopy(xmm, 0, s.xmm, 0, 32);
        System.arraycopy(mem, 0, s.mem, 0, WINDOW);
        s.trap = trap;
        s.faultAddr = faultAddr;
        s.rip = rip;
        s.dirty = dirty;
        return s;
    }

    @Override
    public boolean equals(Object o) {
        return o instanceof MachineState s && Arrays.equals(gpr, s.gpr) && rflags == s.rflags && mxcsr == s.mxcsr
                && Arrays.equals(xmm, s.xmm) && Arrays.equals(mem, s.mem) && trap == s.trap
                && faultAddr == s.faultAddr && rip == s.rip && dirty == s.dirty;
    }

    @Override
    public int hashCode() { return Arrays.hashCode(gpr) ^ Long.hashCode(rflags); }
}

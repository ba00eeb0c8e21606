package dev.polyvisor.personality;

import dev.polyvisor.cpu.GuestContext;
import dev.polyvisor.cpu.VcpuExit;

import java.util.HashMap;
import java.util.Map;

/**
 * Registers of one vCPU plus a page map for translate(): linear pages map to physical pages given by the
 * test; anything else is unmapped (-1).
 */
final class FakeContext implements GuestContext {
    final long[] regs = new long[16];
    final int vcpu;
    int cpl = 0;
    boolean longMode = true;
    final Map<Long, Long> pages = new HashMap<>();

    FakeContext(int vcpu) { this.vcpu = vcpu; }

    FakeContext map(long linearPage, long physPage) { pages.put(linearPage & ~0xFFFL, physPage & ~0xFFFL); return this; }

    /** Identity-maps [0, bytes). */
    FakeContext identity(long bytes) {
        for (long p = 0; p < bytes; p += 4096) pages.put(p, p);
        return this;
    }

    FakeContext set(int reg, long v) { regs[reg] = v; return this; }

    VcpuExit.Hypercall vmcall() { return new VcpuExit.Hypercall(true, this); }

    long rax() { return regs[0]; }

    @Override public int vcpuId() { return vcpu; }

    @Override public long reg(int n) { return regs[n]; }

    @Override public void setReg(int n, long value) { regs[n] = value; }

    @Override public int cpl() { return cpl; }

    @Override public boolean longMode() { return longMode; }

    @Override
    public long translate(long linear) {
        Long p = pages.get(linear & ~0xFFFL);
        return p == null ? -1 : p | (linear & 0xFFF);
    }

    static final int RAX = 0, RCX = 1, RDX = 2, RBX = 3, RSP = 4, RBP = 5, RSI = 6, RDI = 7,
            R8 = 8, R9 = 9, R10 = 10, R11 = 11;
}

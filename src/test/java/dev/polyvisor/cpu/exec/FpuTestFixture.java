package dev.polyvisor.cpu.exec;

import dev.polyvisor.cpu.Cpu;
import dev.polyvisor.cpu.CpuFault;
import dev.polyvisor.cpu.LongModeFixture;
import dev.polyvisor.cpu.TestPlatform;
import dev.polyvisor.cpu.decode.Decoder;
import dev.polyvisor.cpu.decode.Insn;
import dev.polyvisor.memory.GuestMemory;

/**
 * A CPU in 64-bit mode at CPL 0 (LongModeFixture's identity map, CR4.OSFXSR/OSXMMEXCPT set) that
 * executes single instructions given as hex bytes and reports the fault vector they raise.
 */
final class FpuTestFixture implements AutoCloseable {
    static final long CODE = 0x10000, DATA = 0x20000;

    final GuestMemory mem = new GuestMemory(4 << 20);
    final Cpu c = new Cpu(0, mem, new TestPlatform());
    final Decoder decoder = new Decoder(Isa.table());
    int lastError;

    FpuTestFixture() {
        // The shared 64-bit setup (identity map of the low 1 GiB with 2 MiB pages), plus the OS
        // enabling of SSE; the 2-4 MiB page is made not-present so page-crossing stores can fault.
        LongModeFixture.enterLongMode(c, 0x1000);
        mem.st64(0x3000 + 8, 0);
        c.cr4 |= Cpu.CR4_OSFXSR | Cpu.CR4_OSXMMEXCPT;
        c.cr0 |= Cpu.CR0_NE | Cpu.CR0_MP;
        c.cr0 &= ~(Cpu.CR0_EM | Cpu.CR0_TS);
        c.mmu.flushAll();
    }

    /** The first address of the not-present page. */
    static final long UNMAPPED = 2 << 20;

    /** Switches to flat 32-bit protected mode without paging (for the legacy FXSAVE format). */
    void protectedMode32() {
        LongModeFixture.enterProtected32(c);
        c.cr4 |= Cpu.CR4_OSFXSR | Cpu.CR4_OSXMMEXCPT;
    }

    static byte[] hex(String s) {
        String[] p = s.trim().split("\\s+");
        byte[] b = new byte[p.length];
        for (int i = 0; i < p.length; i++) b[i] = (byte) Integer.parseInt(p[i], 16);
        return b;
    }

    /** Executes one instruction; returns -1 on success or the fault vector (error code in lastError). */
    int exec(String bytes) {
        byte[] b = hex(bytes);
        mem.load(CODE, b);
        c.rip = CODE;
        Insn insn = decoder.decode(c, CODE);
        if (insn.len != b.length) throw new AssertionError("decoded length " + insn.len + " for " + bytes);
        c.prevRip = c.rip;
        c.rip += insn.len;
        try {
            insn.exec(c);
            return -1;
        } catch (CpuFault f) {
            c.rip = c.prevRip;
            lastError = f.errorCode;
            return f.vector;
        }
    }

    /** Executes one instruction that must not fault. */
    void ok(String bytes) {
        int v = exec(bytes);
        if (v >= 0) throw new AssertionError(bytes + " raised vector " + v);
    }

    void xmm(int n, long lo, long hi) { c.xmm[2 * n] = lo; c.xmm[2 * n + 1] = hi; }

    long lo(int n) { return c.xmm[2 * n]; }

    long hi(int n) { return c.xmm[2 * n + 1]; }

    void xmmF(int n, float f0, float f1, float f2, float f3) {
        xmm(n, (Float.floatToRawIntBits(f0) & 0xFFFF_FFFFL) | (long) Float.floatToRawIntBits(f1) << 32,
                (Float.floatToRawIntBits(f2) & 0xFFFF_FFFFL) | (long) Float.floatToRawIntBits(f3) << 32);
    }

    void xmmD(int n, double d0, double d1) { xmm(n, Double.doubleToRawLongBits(d0), Double.doubleToRawLongBits(d1)); }

    float f(int n, int i) { return Float.intBitsToFloat((int) (c.xmm[2 * n + i / 2] >>> (32 * (i & 1)))); }

    int fbits(int n, int i) { return (int) (c.xmm[2 * n + i / 2] >>> (32 * (i & 1))); }

    double d(int n, int i) { return Double.longBitsToDouble(c.xmm[2 * n + i]); }

    long rflags() { return c.getRflags() & 0x8D5; }

    @Override public void close() { mem.close(); }
}

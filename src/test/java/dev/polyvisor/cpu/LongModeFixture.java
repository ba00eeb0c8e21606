package dev.polyvisor.cpu;

import dev.polyvisor.cpu.exec.Isa;
import dev.polyvisor.memory.GuestMemory;

/**
 * A vCPU on fresh guest RAM, switched straight into 64-bit mode at CPL 0 by setting the Cpu fields
 * (no system instructions needed): an identity 4-level page table with 2 MiB pages covers the low
 * 1 GiB, CS is a 64-bit code segment (L=1), the data segments are flat. Tests load code at
 * {@link #CODE} and run it until HLT. {@link #enterProtected32} and {@link #enterReal16} give the
 * legacy modes for mode-dependent tests.
 */
public final class LongModeFixture implements AutoCloseable {
    public static final long PML4 = 0x1000, CODE = 0x10000, STACK_TOP = 0x1F0000, DATA = 0x200000;

    public final GuestMemory mem;
    public final TestPlatform platform = new TestPlatform();
    public final Cpu cpu;
    public final Vcpu vcpu;
    public final TraceCache traces;

    public LongModeFixture() { this(8L << 20); }

    public LongModeFixture(long ramSize) {
        mem = new GuestMemory(ramSize);
        cpu = new Cpu(0, mem, platform);
        traces = new TraceCache(Isa.table(), cpu.mmu.codePages());
        vcpu = new Vcpu(cpu, traces);
        enterLongMode(cpu, PML4);
        cpu.r[Cpu.RSP] = STACK_TOP;
    }

    /**
     * Builds an identity map of the low 1 GiB (PML4 at {@code pml4}, PDPT and PD in the next two pages;
     * 2 MiB pages with A and D preset) and enters 64-bit mode: CR0.PE|PG, CR4.PAE, EFER.LME|LMA, CS.L.
     */
    public static void enterLongMode(Cpu c, long pml4) {
        GuestMemory m = c.memory;
        long pdpt = pml4 + 0x1000, pd = pml4 + 0x2000;
        m.writePhys(pml4, 8, pdpt | 0x7);                       // P | RW | US
        m.writePhys(pdpt, 8, pd | 0x7);
        for (int i = 0; i < 512; i++) m.writePhys(pd + 8L * i, 8, ((long) i << 21) | 0xE7); // P RW US A D PS
        c.cr3 = pml4;
        c.cr4 |= Cpu.CR4_PAE;
        c.efer |= Cpu.EFER_LME | Cpu.EFER_LMA;
        c.cr0 |= Cpu.CR0_PE | Cpu.CR0_PG;
        flatSegments(c, 0xA09B, 0xC093);
        c.updateMode();
        c.mmu.flushAll();
    }

    /** 32-bit protected mode without paging, flat 4 GiB segments. */
    public static void enterProtected32(Cpu c) {
        c.cr0 = (c.cr0 | Cpu.CR0_PE) & ~Cpu.CR0_PG;
        c.efer = 0;
        c.cr4 = 0;
        flatSegments(c, 0xC09B, 0xC093);
        c.updateMode();
        c.mmu.flushAll();
    }

    /** Real mode with all segments 0. */
    public static void enterReal16(Cpu c) {
        c.cr0 &= ~(Cpu.CR0_PE | Cpu.CR0_PG);
        c.efer = 0;
        c.cr4 = 0;
        for (int s = 0; s < 6; s++) c.setRealSegment(s, 0);
        c.updateMode();
        c.mmu.flushAll();
    }

    private static void flatSegments(Cpu c, int codeAttr, int dataAttr) {
        for (int s = 0; s < 6; s++) {
            c.segBase[s] = 0;
            c.segLimit[s] = 0xFFFF_FFFFL;
            c.segAttr[s] = s == Cpu.CS ? codeAttr : dataAttr;
            c.segSel[s] = s == Cpu.CS ? 0x08 : 0x10;
        }
        c.updateMode();
    }

    /** Loads {@code code} followed by HLT at {@link #CODE}, points RIP at it and runs until an exit. */
    public VcpuExit run(byte[] code) {
        byte[] withHlt = java.util.Arrays.copyOf(code, code.length + 1);
        withHlt[code.length] = (byte) 0xF4;
        mem.load(CODE, withHlt);
        traces.flush(); // the loader wrote behind the CPU's back
        if (!cpu.long64 && (cpu.cr0 & Cpu.CR0_PE) == 0) {
            cpu.setRealSegment(Cpu.CS, (int) (CODE >>> 4)); // real mode: IP is 16 bits
            cpu.rip = 0;
        } else {
            cpu.rip = CODE;
        }
        cpu.halted = false;
        return vcpu.run(1_000_000);
    }

    /** Assembles (Intel syntax, for the current mode's width), runs until HLT and fails on any other exit. */
    public Cpu run(String asm) {
        int bits = cpu.long64 ? 64 : cpu.defOpSize == 4 ? 32 : 16;
        VcpuExit e = run(Asm.assemble(bits, asm));
        if (!(e instanceof VcpuExit.Halt))
            throw new AssertionError("expected HLT, got " + e + " at RIP 0x" + Long.toHexString(cpu.rip));
        return cpu;
    }

    /**
     * Decodes and executes exactly the one instruction {@code asm} at {@link #CODE} (outside the run loop,
     * so exception delivery is not involved); returns the fault it raised, or null. On a fault RIP is
     * rolled back as the run loop does.
     */
    public CpuFault step(String asm) {
        int bits = cpu.long64 ? 64 : cpu.defOpSize == 4 ? 32 : 16;
        mem.load(CODE, Asm.assemble(bits, asm));
        cpu.rip = CODE;
        dev.polyvisor.cpu.decode.Insn i = new dev.polyvisor.cpu.decode.Decoder(Isa.table()).decode(cpu, CODE);
        cpu.prevRip = cpu.rip;
        cpu.rip += i.len;
        try {
            i.exec(cpu);
            return null;
        } catch (CpuFault f) {
            cpu.rip = cpu.prevRip;
            return f;
        }
    }

    /** The six arithmetic flags. */
    public long flags() { return cpu.getRflags() & Flags.ARITH; }

    @Override public void close() { mem.close(); }
}

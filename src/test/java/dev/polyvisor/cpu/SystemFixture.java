package dev.polyvisor.cpu;

import dev.polyvisor.cpu.exec.Isa;
import dev.polyvisor.memory.GuestMemory;

import java.io.IOException;
import java.nio.file.Files;
import java.nio.file.Path;
import java.util.concurrent.TimeUnit;

/**
 * A small machine for system-architecture tests: guest memory with a Linux-like GDT, an IDT whose
 * every vector points at its own HLT stub, a TSS, identity-mapped page tables, and the GNU assembler
 * for test programs.
 *
 * <p>Layout (physical = linear): GDT 0x1000, IDT 0x2000, TSS 0x40000 (I/O bitmap at +0x68), PML4 0x4000,
 * PDPT 0x5000, PD 0x6000, pseudo-descriptors 0x0F00, kernel stack top 0x9000, IST stacks 0xA000/0xB000,
 * handler stubs 0x30000 + 16*vector, kernel code 0x10000, user code 0x20000, user stack top 0x28000.
 * The first 4 MiB are mapped with 2 MiB pages, user-accessible; 1 GiB and up is not mapped.
 */
final class SystemFixture implements AutoCloseable {
    static final long GDT = 0x1000, IDT = 0x2000, TSS = 0x40000, PML4 = 0x4000, PDPT = 0x5000, PD = 0x6000,
            PSEUDO = 0x0F00, KSTACK = 0x9000, IST1 = 0xA000, IST2 = 0xB000, STUBS = 0x30000, KCODE = 0x10000,
            UCODE = 0x20000, USTACK = 0x28000, UNMAPPED = 0x4000_0000L;
    /** Selectors, as Linux lays out its GDT (arch/x86/include/asm/segment.h) plus a 32-bit kernel CS. */
    static final int KCODE32 = 0x08, KCODE64 = 0x10, KDATA = 0x18, UCODE32 = 0x23, UDATA = 0x2B, UCODE64 = 0x33,
            TSS_SEL = 0x40;
    static final int TSS_IOMAP = 0x68;

    final GuestMemory mem = new GuestMemory(8 << 20);
    final TestPlatform platform = new TestPlatform();
    final Cpu cpu = new Cpu(0, mem, platform);
    final TraceCache traces = new TraceCache(Isa.table(), cpu.mmu.codePages());
    final Vcpu vcpu = new Vcpu(cpu, traces);

    SystemFixture() {
        long[] gdt = {
            0,
            seg(0, 0xFFFFF, 0x9A, 0xC), // 0x08 kernel code, 32-bit
            seg(0, 0xFFFFF, 0x9A, 0xA), // 0x10 kernel code, 64-bit
            seg(0, 0xFFFFF, 0x92, 0xC), // 0x18 kernel data
            seg(0, 0xFFFFF, 0xFA, 0xC), // 0x20 user code, 32-bit
            seg(0, 0xFFFFF, 0xF2, 0xC), // 0x28 user data
            seg(0, 0xFFFFF, 0xFA, 0xA), // 0x30 user code, 64-bit
            0,
        };
        for (int i = 0; i < gdt.length; i++) mem.writePhys(GDT + 8L * i, 8, gdt[i]);
        // TSS descriptor (0x40), 16 bytes for IA-32e mode; limit covers the I/O bitmap (8 KiB + 1).
        long tssLimit = TSS_IOMAP + 8192;
        mem.writePhys(GDT + 0x40, 8, seg(TSS, tssLimit, 0x89, 0));
        mem.writePhys(GDT + 0x48, 8, 0);
        // TSS: RSP0, IST1, IST2, I/O map base; every port denied by default.
        mem.writePhys(TSS + 4, 8, KSTACK);
        mem.writePhys(TSS + 0x24, 8, IST1);
        mem.writePhys(TSS + 0x2C, 8, IST2);
        mem.writePhys(TSS + 0x66, 2, TSS_IOMAP);
        for (int i = 0; i <= 8192; i++) mem.writePhys(TSS + TSS_IOMAP + i, 1, 0xFF);
        // HLT stubs.
        for (int v = 0; v < 256; v++) mem.writePhys(STUBS + 16L * v, 1, 0xF4);
        // Identity map of 4 MiB with 2 MiB pages (present, writable, user).
        mem.writePhys(PML4, 8, PDPT | 7);
        mem.writePhys(PDPT, 8, PD | 7);
        mem.writePhys(PD, 8, 0x000000 | 0x87);
        mem.writePhys(PD + 8, 8, 0x200000 | 0x87);
    }

    /** An 8-byte code/data/system descriptor: access byte (P DPL S type), flags nibble (G D/B L AVL). */
    static long seg(long base, long limit, int access, int flags) {
        return (limit & 0xFFFF) | ((base & 0xFFFFFF) << 16) | ((long) (access & 0xFF) << 40)
                | (((limit >>> 16) & 0xF) << 48) | ((long) (flags & 0xF) << 52) | (((base >>> 24) & 0xFF) << 56);
    }

    /** The stub address for a vector; after its HLT, RIP is one past it. */
    static long stub(int vector) { return STUBS + 16L * vector; }

    /** Long-mode IDT: a 16-byte gate per vector to its stub (type 0xE interrupt gate, DPL 0). */
    void idt64() {
        for (int v = 0; v < 256; v++) gate64(v, KCODE64, stub(v), 0xE, 0, 0);
        cpu.idtBase = IDT;
        cpu.idtLimit = 256 * 16 - 1;
    }

    void gate64(int vector, int sel, long off, int type, int dpl, int ist) {
        long lo = (off & 0xFFFF) | ((long) sel << 16) | ((long) ist << 32) | ((long) (0x80 | dpl << 5 | type) << 40)
                | ((off & 0xFFFF0000L) << 32);
        mem.writePhys(IDT + 16L * vector, 8, lo);
        mem.writePhys(IDT + 16L * vector + 8, 8, off >>> 32);
    }

    /** Protected-mode IDT: an 8-byte 32-bit interrupt gate per vector. */
    void idt32() {
        for (int v = 0; v < 256; v++) gate32(v, KCODE32, stub(v), 0xE, 0);
        cpu.idtBase = IDT;
        cpu.idtLimit = 256 * 8 - 1;
    }

    void gate32(int vector, int sel, long off, int type, int dpl) {
        long g = (off & 0xFFFF) | ((long) sel << 16) | ((long) (0x80 | dpl << 5 | type) << 40) | ((off & 0xFFFF0000L) << 32);
        mem.writePhys(IDT + 8L * vector, 8, g);
    }

    /** Loads a segment register's cache straight from the fixture GDT (test setup, no checks). */
    void loadSeg(int seg, int sel) {
        Segments.cache(cpu, seg, sel, mem.readPhys(GDT + (sel & ~7), 8));
    }

    /** Flat 32-bit protected mode at CPL 0, paging off, with the GDT and a 32-bit IDT. */
    void protected32() {
        cpu.cr0 = Cpu.CR0_PE | Cpu.CR0_ET;
        cpu.gdtBase = GDT;
        cpu.gdtLimit = 0x4F;
        loadSeg(Cpu.CS, KCODE32);
        for (int s : new int[] {Cpu.DS, Cpu.ES, Cpu.SS, Cpu.FS, Cpu.GS}) loadSeg(s, KDATA);
        idt32();
        cpu.r[Cpu.RSP] = KSTACK;
        cpu.updateMode();
    }

    /** 64-bit mode at CPL 0 with paging, the long-mode IDT and a loaded (busy) 64-bit TSS. */
    void long64() {
        cpu.gdtBase = GDT;
        cpu.gdtLimit = 0x4F;
        cpu.cr4 = Cpu.CR4_PAE;
        cpu.cr3 = PML4;
        cpu.efer = Cpu.EFER_LME | Cpu.EFER_LMA | Cpu.EFER_SCE;
        cpu.cr0 = Cpu.CR0_PE | Cpu.CR0_ET | Cpu.CR0_PG;
        loadSeg(Cpu.CS, KCODE64);
        for (int s : new int[] {Cpu.DS, Cpu.ES, Cpu.SS, Cpu.FS, Cpu.GS}) loadSeg(s, KDATA);
        mem.writePhys(GDT + 0x40, 8, mem.readPhys(GDT + 0x40, 8) | (2L << 40)); // busy
        Segments.cache(cpu, Cpu.TR, TSS_SEL, mem.readPhys(GDT + 0x40, 8));
        idt64();
        cpu.r[Cpu.RSP] = KSTACK;
        cpu.mmu.flushAll();
        cpu.updateMode();
    }

    /** Loads code behind the CPU's back, so decoded traces are dropped. */
    void load(long pa, byte[] code) {
        mem.load(pa, code);
        traces.flush();
    }

    /** Assembles and loads {@code src} at {@code origin}, then points CS:RIP there (CS base is 0). */
    void program(int bits, long origin, String src) {
        load(origin, asm(bits, origin, src));
        cpu.rip = origin;
        cpu.halted = false;
    }

    VcpuExit run() { return vcpu.run(10_000); }

    long read64(long pa) { return mem.readPhys(pa, 8); }

    long read32(long pa) { return mem.readPhys(pa, 4); }

    @Override public void close() { mem.close(); }

    /**
     * Assembles Intel-syntax source with GNU as for a flat image at {@code origin} ({@code bits}: 16, 32
     * or 64 selects the initial .codeNN; the source may switch).
     */
    static byte[] asm(int bits, long origin, String src) {
        try {
            Path dir = Files.createTempDirectory("pvasm");
            try {
                Path s = dir.resolve("t.s"), o = dir.resolve("t.o"), b = dir.resolve("t.bin");
                Files.writeString(s, ".intel_syntax noprefix\n.code" + bits + "\n" + src + "\n");
                exec(dir, "as", "--64", "-o", o.toString(), s.toString());
                exec(dir, "ld", "-m", "elf_x86_64", "-Ttext=0x" + Long.toHexString(origin), "-e", "0", "--oformat", "binary",
                        "-o", b.toString(), o.toString());
                return Files.readAllBytes(b);
            } finally {
                try (var l = Files.list(dir)) { l.forEach(p -> p.toFile().delete()); }
                Files.delete(dir);
            }
        } catch (IOException | InterruptedException e) {
            throw new IllegalStateException("assembling test code: " + e.getMessage(), e);
        }
    }

    private static void exec(Path dir, String... cmd) throws IOException, InterruptedException {
        Process p = new ProcessBuilder(cmd).directory(dir.toFile()).redirectErrorStream(true).start();
        String out = new String(p.getInputStream().readAllBytes());
        if (!p.waitFor(30, TimeUnit.SECONDS) || p.exitValue() != 0)
            throw new IllegalStateException(String.join(" ", cmd) + " failed: " + out);
    }
}

package dev.polyvisor.cpu.oracle;

import dev.polyvisor.cpu.Cpu;
import dev.polyvisor.cpu.CpuFault;
import dev.polyvisor.cpu.Exceptions;
import dev.polyvisor.cpu.Flags;
import dev.polyvisor.cpu.Segments;
import dev.polyvisor.cpu.TestPlatform;
import dev.polyvisor.cpu.decode.Decoder;
import dev.polyvisor.cpu.decode.Insn;
import dev.polyvisor.cpu.decode.OpcodeTable;
import dev.polyvisor.cpu.exec.Isa;
import dev.polyvisor.cpu.exec.X87;
import dev.polyvisor.memory.GuestMemory;

import java.util.Arrays;

/**
 * The emulator side of the oracle: a Cpu in 64-bit mode at CPL 3 (CS selector 0x33 with L=1 and
 * DPL 3, as a Linux user process runs), 4-level paging that maps the harness's code page (user,
 * read/write/execute, like the host's) and data page (user, read/write) at the same linear addresses as the host child process,
 * and nothing else. One instruction is decoded and executed exactly as the run loop does
 * (prevRip, rip += len, exec); a CpuFault rolls RIP back and is recorded as the trap vector instead
 * of being delivered, the way the host harness records the signal.
 */
final class EmulatedHost implements AutoCloseable {
    private static final long PML4 = 0x1000, PDPT = 0x2000, PD = 0x3000, PT_CODE = 0x4000, PT_DATA = 0x5000,
            PT_LOW = 0x6000;
    private static final long CODE_FRAME = 0x10000, DATA_FRAME = 0x11000;
    private static final long P = 1, RW = 2, US = 4, A = 0x20, D = 0x40, XD = 1L << 63;
    /** Supervisor-only tables and frame for the GDT page at {@link LinuxGdt#LA}. */
    private static final long PDPT_K = 0x7000, PD_K = 0x8000, PT_K = 0x9000, GDT_FRAME = 0x12000;

    static final byte[] PATTERN = new byte[4096];
    static {
        for (int i = 0; i < 4096; i++) PATTERN[i] = (byte) (i * 131 + 7); // as oracle_harness.c
    }

    private final GuestMemory mem = new GuestMemory(1 << 20);
    final Cpu cpu = new Cpu(0, mem, new TestPlatform());
    private final Decoder decoder = new Decoder(Isa.table());

    /** What the decoder made of the last case's bytes. */
    Insn decoded;
    /** An emulator failure other than a guest exception (a Java exception escaping a handler). */
    RuntimeException crash;

    /** The fixture under Linux's GDT. */
    EmulatedHost() { this(true); }

    /**
     * The fixture under the host's GDT as probed: without {@code user32Cs} the entry 0x23 is empty, as on a host
     * without IA-32 emulation ({@link LinuxGdt#descriptors(boolean)}), so 64-bit cases that name 0x23 compare the
     * host's #GP rather than a compatibility-mode entry the host cannot make.
     */
    EmulatedHost(boolean user32Cs) {
        map(HostHarness.CODE_ADDR, PT_CODE, CODE_FRAME, P | RW | US | A | D); // RWX, as the host's code page
        // The host's data page is PROT_READ|PROT_WRITE: no-execute, so a branch into it faults on the fetch.
        map(HostHarness.DATA_ADDR, PT_DATA, DATA_FRAME, P | RW | US | A | D | XD);
        // The harness's 16-bit alias exists only where vm.mmap_min_addr lets the host map it; elsewhere both
        // sides leave the page unmapped, so low targets (16-bit IPs, far pointers) fault alike.
        if (Compat32.LOW_WINDOW) map(HostHarness.LOW_ADDR, PT_LOW, DATA_FRAME, P | RW | US | A | D | XD);
        mapGdt(user32Cs);
        mem.load(CODE_FRAME, filled(0xCC));
        mem.load(DATA_FRAME, PATTERN);
        Cpu c = cpu;
        c.cr0 = Cpu.CR0_PE | Cpu.CR0_MP | Cpu.CR0_ET | Cpu.CR0_NE | Cpu.CR0_WP | Cpu.CR0_PG;
        c.cr4 = Cpu.CR4_PAE | Cpu.CR4_OSFXSR | Cpu.CR4_OSXMMEXCPT;
        c.efer = Cpu.EFER_SCE | Cpu.EFER_LME | Cpu.EFER_LMA | Cpu.EFER_NXE;
        c.cr3 = PML4;
        c.gdtBase = LinuxGdt.LA;
        c.gdtLimit = LinuxGdt.LIMIT;
        c.segSel[Cpu.LDTR] = 0;
        c.segAttr[Cpu.LDTR] = Segments.UNUSABLE; // a Linux process without modify_ldt() has no LDT
        resetSegments();
        LinuxUserEnvironment.install(c, mem); // IDT, TSS and TR: INT n and port I/O as in a Linux process
        c.mmu.flushAll();
        if (!c.long64 || c.cpl != 3) throw new IllegalStateException("fixture is not in 64-bit CPL 3 mode");
    }

    /**
     * User mode as the host process runs: CS 0x33 (or 0x23 in compatibility mode, see {@link #mode}), the
     * other selectors 0x2B; a far transfer of a case (RETF, IRET, far JMP/CALL) may change CS and SS.
     */
    private void resetSegments() {
        Cpu c = cpu;
        for (int s = 0; s < 6; s++) {
            c.segBase[s] = 0;
            c.segLimit[s] = 0xFFFF_FFFFL;
            c.segSel[s] = s == Cpu.CS ? (compat ? 0x23 : 0x33) : 0x2B;
            // Code: type 0xB, S, DPL 3, P, L (D in compatibility mode); data: type 3, S, DPL 3, P, D/B, G.
            c.segAttr[s] = s == Cpu.CS ? (compat ? 0xC0FB : 0xA0FB) : 0xC0F3;
            // A 64-bit process has null DS/ES/FS/GS (MOV r/m, Sreg reads 0); the harness loads DS/ES 0x2b for a
            // compatibility-mode case. FS/GS bases (glibc's TLS) are host addresses, not modelled.
            if (s == Cpu.FS || s == Cpu.GS || !compat && (s == Cpu.DS || s == Cpu.ES)) Segments.cacheNull(c, s, 0);
        }
        c.updateMode();
    }

    private boolean segmentsReset() {
        Cpu c = cpu;
        int data = compat ? 0x2B : 0; // a case may have loaded DS, ES or SS (MOV Sreg, LSS)
        return c.segSel[Cpu.CS] == (compat ? 0x23 : 0x33) && c.segSel[Cpu.SS] == 0x2B && c.long64 != compat && c.cpl == 3
                && c.segSel[Cpu.DS] == data && c.segSel[Cpu.ES] == data;
    }

    /** The GDT page: supervisor-only (descriptor reads are implicit supervisor accesses, SDM 4.6.1). */
    private void mapGdt(boolean user32Cs) {
        long la = LinuxGdt.LA, tbl = P | RW | A;
        mem.writePhys(PML4 + 8 * ((la >>> 39) & 0x1FF), 8, PDPT_K | tbl);
        mem.writePhys(PDPT_K + 8 * ((la >>> 30) & 0x1FF), 8, PD_K | tbl);
        mem.writePhys(PD_K + 8 * ((la >>> 21) & 0x1FF), 8, PT_K | tbl);
        mem.writePhys(PT_K + 8 * ((la >>> 12) & 0x1FF), 8, GDT_FRAME | P | RW | A | D | XD);
        long[] g = LinuxGdt.descriptors(user32Cs);
        for (int i = 0; i < g.length; i++) mem.writePhys(GDT_FRAME + 8L * i, 8, g[i]);
    }

    private static byte[] filled(int b) {
        byte[] a = new byte[4096];
        Arrays.fill(a, (byte) b);
        return a;
    }

    /** Identity of the whole path: PML4[0] -> PDPT[0] -> PD[la>>21] -> pt -> frame (all below 1 GiB). */
    private void map(long la, long pt, long frame, long pteFlags) {
        long tbl = P | RW | US | A;
        mem.writePhys(PML4 + 8 * ((la >>> 39) & 0x1FF), 8, PDPT | tbl);
        mem.writePhys(PDPT + 8 * ((la >>> 30) & 0x1FF), 8, PD | tbl);
        mem.writePhys(PD + 8 * ((la >>> 21) & 0x1FF), 8, pt | tbl);
        mem.writePhys(pt + 8 * ((la >>> 12) & 0x1FF), 8, frame | pteFlags);
    }

    private byte[] codeImage;
    /** The mode the next case runs in: 64-bit (CS 0x33) or compatibility mode (CS 0x23). */
    private boolean compat;

    /**
     * Switches the fixture between 64-bit mode and 32-bit compatibility mode, as the harness's far jump
     * does: CS 0x23 is the Linux user 32-bit code segment (type 0xB, DPL 3, D=1, L=0, G, limit 4 GiB:
     * LAR 0x00cffb00), CS 0x33 the 64-bit one (L=1). DS/ES/SS stay 0x2b (flat data, DPL 3), which is
     * what the harness loads for a compatibility-mode case.
     */
    void mode(boolean compatMode) {
        if (compatMode == compat) return;
        compat = compatMode;
        resetSegments();
        if (cpu.long64 == compatMode || cpu.cpl != 3) throw new IllegalStateException("fixture mode switch failed");
    }

    private static final int MAX_STEPS = 64;

    private static boolean isInt3(Insn insn) {
        return insn.entry != null && insn.entry.map() == OpcodeTable.MAP_1BYTE && insn.entry.opcode() == 0xCC;
    }

    /** The code page as the harness builds it: int3 everywhere, the instruction at CODE_OFF, the trailer. */
    private void loadCode(byte[] code) {
        if (!segmentsReset()) resetSegments(); // the previous case may have left through a far transfer
        byte[] img = filled(0xCC);
        System.arraycopy(code, 0, img, HostHarness.CODE_OFF, code.length);
        int t = compat ? HostHarness.TRAMP_OFF : HostHarness.CODE_OFF + code.length;
        // jmp [rip+pad]; int3 x pad; the 8-aligned host address (not modelled: zero), as oracle_harness.c.
        int pad = (8 - (t + 6) % 8) % 8;
        img[t] = (byte) 0xFF;
        img[t + 1] = 0x25;
        img[t + 2] = (byte) pad;
        for (int i = 3; i < 6; i++) img[t + i] = 0;
        for (int i = 0; i < 8; i++) img[t + 6 + pad + i] = 0;
        if (compat) Compat32.farJumpBack(img, HostHarness.CODE_OFF + code.length);
        mem.load(CODE_FRAME, img);
        codeImage = img;
    }

    /** Decodes {@code code} as the run would, without executing it (null if decoding threw). */
    Insn decodeOnly(byte[] code, boolean compatMode) {
        mode(compatMode);
        return decodeOnly(code);
    }

    /** Decodes {@code code} in the current mode, without executing it (null if decoding threw). */
    Insn decodeOnly(byte[] code) {
        loadCode(code);
        try {
            return decoder.decode(cpu, HostHarness.CODE_ADDR + HostHarness.CODE_OFF);
        } catch (RuntimeException e) {
            return null;
        }
    }

    /**
     * With the JIT forced on ({@code -Dpolyvisor.jit=on|always|check}), each instruction runs as a one-instruction
     * trace compiled by the JIT instead of through its handler, so the oracle compares the JIT's code (inline
     * forms and the fault contract) with the host CPU.
     */
    private static final boolean JIT = dev.polyvisor.cpu.jit.JitMode.fromSystemProperty() != dev.polyvisor.cpu.jit.JitMode.OFF;
    private static final dev.polyvisor.cpu.jit.TraceCompiler COMPILER = new dev.polyvisor.cpu.jit.TraceCompiler(true);

    /** Runs {@code insn} (RIP already past it) through a compiled one-instruction trace; faults propagate as from exec. */
    private static void jitExec(Cpu c, Insn insn) {
        dev.polyvisor.cpu.jit.CompiledTrace ct;
        try {
            ct = COMPILER.compile(new Insn[] {insn});
        } catch (Throwable e) {
            throw new IllegalStateException("the JIT cannot compile " + insn + ": " + e, e);
        }
        c.rip -= insn.len; // the compiled code sets prevRip and advances RIP itself
        ct.run(c, null);
    }

    /** Runs one instruction from {@code in}; returns the outcome in the harness's terms. */
    MachineState run(byte[] code, MachineState in) {
        Cpu c = cpu;
        mode(in.compat);
        loadCode(code);
        mem.load(DATA_FRAME + HostHarness.WIN_OFF, in.mem);
        System.arraycopy(in.gpr, 0, c.r, 0, 16);
        c.setRflags(in.rflags | Flags.IF);
        c.mxcsr = in.mxcsr;
        System.arraycopy(in.xmm, 0, c.xmm, 0, 32);
        c.fcw = in.fcw;
        X87.setStatus(c, in.fsw);
        for (int i = 0; i < 8; i++) X87.setPhys(c, X87.phys(c, i), in.stMant[i], in.stExp[i]);
        X87.setAbridgedTag(c, in.ftw);
        c.fop = 0;
        c.fip = 0;
        c.fdp = 0;
        c.halted = false;
        c.pendingExit = null;
        c.cr2 = 0;
        long start = HostHarness.CODE_ADDR + HostHarness.CODE_OFF;
        c.rip = start;
        decoded = null;
        crash = null;
        MachineState out = new MachineState();
        out.trap = MachineState.NO_TRAP;
        try {
            // One instruction, or a short sequence; a branch may leave it. Run until RIP reaches the trailer (the
            // host's "jmp [rip+0]" back to the harness), a trap, or a step limit. An INT3 (the code page is filled
            // with them) is a trap reported with RIP after it, as the host's SIGTRAP shows it.
            long end = start + code.length;
            int steps = 0;
            for (; steps < MAX_STEPS && c.rip != end; steps++) {
                c.prevRip = c.rip; // before decoding: an instruction fetch fault leaves RIP at the fetch
                Insn insn = decoder.decode(c, c.rip);
                if (decoded == null) decoded = insn;
                c.rip += insn.len;
                // The INT3 fill around the case; an INT3 of the case itself runs through the IDT (LinuxUserEnvironment),
                // so the emulator's own INT3 delivery is compared.
                if (isInt3(insn) && (c.prevRip < start || c.prevRip >= end)) {
                    out.trap = Exceptions.BP;
                    break;
                }
                if (JIT) jitExec(c, insn);
                else insn.exec(c);
                if (LinuxUserEnvironment.delivered(c)) break;
            }
            // INT n or INT1 (or the #GP a DPL-0 gate raises) went through the IDT: report it as the host's signal does.
            if (LinuxUserEnvironment.delivered(c)) LinuxUserEnvironment.reportDelivery(c, out);
            if (steps == MAX_STEPS) crash = new IllegalStateException("no trap and no trailer after " + MAX_STEPS + " instructions");
        } catch (CpuFault f) {
            c.rip = c.prevRip;
            out.trap = f.vector;
            out.faultAddr = f.vector == Exceptions.PF ? c.cr2 : 0;
            out.err = f.errorCode;
        } catch (RuntimeException e) {
            crash = e;
        }
        System.arraycopy(c.r, 0, out.gpr, 0, 16);
        out.endedInCompat = !compat && !c.long64;
        out.rflags = c.getRflags();
        out.mxcsr = c.mxcsr;
        System.arraycopy(c.xmm, 0, out.xmm, 0, 32);
        out.rip = c.rip;
        out.fcw = c.fcw;
        out.fsw = X87.status(c);
        out.ftw = X87.abridgedTag(c);
        for (int i = 0; i < 8; i++) {
            int p = X87.phys(c, i);
            out.stMant[i] = c.stMant[p];
            out.stExp[i] = c.stExp[p] & 0xFFFF;
        }
        byte[] page = mem.readBytes(DATA_FRAME, 4096);
        long h = 0xcbf29ce484222325L; // FNV-1a, as oracle_harness.c
        for (byte b : page) h = (h ^ (b & 0xFF)) * 0x100000001b3L;
        out.pageHash = h;
        System.arraycopy(page, HostHarness.WIN_OFF, out.mem, 0, MachineState.WINDOW);
        boolean dirty = !Arrays.equals(page, 0, HostHarness.WIN_OFF, PATTERN, 0, HostHarness.WIN_OFF)
                || !Arrays.equals(page, HostHarness.WIN_OFF + MachineState.WINDOW, 4096,
                        PATTERN, HostHarness.WIN_OFF + MachineState.WINDOW, 4096);
        if (dirty) mem.load(DATA_FRAME, PATTERN);
        byte[] codeNow = mem.readBytes(CODE_FRAME, 4096);
        int trailerEnd = HostHarness.CODE_OFF + code.length + (compat ? 14 : HostHarness.TRAILER);
        int tramp = HostHarness.TRAMP_OFF;
        boolean codeDirty = !Arrays.equals(codeNow, 0, HostHarness.CODE_OFF + code.length, codeImage, 0, HostHarness.CODE_OFF + code.length)
                || (compat ? !Arrays.equals(codeNow, trailerEnd, tramp, codeImage, trailerEnd, tramp)
                        || !Arrays.equals(codeNow, tramp + HostHarness.TRAILER, 4096, codeImage, tramp + HostHarness.TRAILER, 4096)
                    : !Arrays.equals(codeNow, trailerEnd, 4096, codeImage, trailerEnd, 4096));
        out.dirty = (dirty ? 1 : 0) | (codeDirty ? 2 : 0);
        return out;
    }

    @Override
    public void close() { mem.close(); }

}

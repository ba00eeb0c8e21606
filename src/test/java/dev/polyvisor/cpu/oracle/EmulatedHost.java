package dev.polyvisor.cpu.oracle;

import dev.polyvisor.cpu.Cpu;
import dev.polyvisor.cpu.CpuFault;
import dev.polyvisor.cpu.Exceptions;
import dev.polyvisor.cpu.Flags;
import dev.polyvisor.cpu.TestPlatform;
import dev.polyvisor.cpu.decode.Decoder;
import dev.polyvisor.cpu.decode.Insn;
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
 * of being delivered, the way the host harness records the signal. The GDT, IDT, TSS and selectors are
 * those of a Linux process ({@link LinuxUserEnvironment}); INT n, INT3 and INT1 are delivered through
 * that IDT and reported from the interrupt frame, as the kernel reports them in the signal frame.
 */
final class EmulatedHost implements AutoCloseable {
    private static final long PML4 = 0x1000, PDPT = 0x2000, PD = 0x3000, PT_CODE = 0x4000, PT_DATA = 0x5000;
    private static final long CODE_FRAME = 0x10000, DATA_FRAME = 0x11000;
    private static final long P = 1, RW = 2, US = 4, A = 0x20, D = 0x40;

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

    EmulatedHost() {
        map(HostHarness.CODE_ADDR, PT_CODE, CODE_FRAME, P | RW | US | A | D); // RWX, as the host's code page
        map(HostHarness.DATA_ADDR, PT_DATA, DATA_FRAME, P | RW | US | A | D);
        mem.load(CODE_FRAME, filled(0xCC));
        mem.load(DATA_FRAME, PATTERN);
        Cpu c = cpu;
        c.cr0 = Cpu.CR0_PE | Cpu.CR0_MP | Cpu.CR0_ET | Cpu.CR0_NE | Cpu.CR0_WP | Cpu.CR0_PG;
        c.cr4 = Cpu.CR4_PAE | Cpu.CR4_OSFXSR | Cpu.CR4_OSXMMEXCPT;
        c.efer = Cpu.EFER_SCE | Cpu.EFER_LME | Cpu.EFER_LMA | Cpu.EFER_NXE;
        c.cr3 = PML4;
        for (int s = 0; s < 6; s++) {
            c.segBase[s] = 0;
            c.segLimit[s] = 0xFFFF_FFFFL;
            c.segSel[s] = s == Cpu.CS ? 0x33 : 0x2B;
            // Code: type 0xB, S, DPL 3, P, L; data: type 3, S, DPL 3, P, D/B, G.
            c.segAttr[s] = s == Cpu.CS ? 0xA0FB : 0xC0F3;
        }
        LinuxUserEnvironment.install(c, mem); // GDT, IDT, TSS and the selectors of a Linux process
        c.updateMode();
        c.mmu.flushAll();
        if (!c.long64 || c.cpl != 3) throw new IllegalStateException("fixture is not in 64-bit CPL 3 mode");
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

    /** The code page as the harness builds it: int3 everywhere, the instruction at CODE_OFF, the trailer. */
    private void loadCode(byte[] code) {
        byte[] img = filled(0xCC);
        System.arraycopy(code, 0, img, HostHarness.CODE_OFF, code.length);
        int t = HostHarness.CODE_OFF + code.length;
        img[t] = (byte) 0xFF; // jmp [rip+0]; the 8-byte host address after it is not modelled
        img[t + 1] = 0x25;
        for (int i = 2; i < 14; i++) img[t + i] = 0;
        mem.load(CODE_FRAME, img);
        codeImage = img;
    }

    /** Decodes {@code code} as the run would, without executing it (null if decoding threw). */
    Insn decodeOnly(byte[] code) {
        loadCode(code);
        try {
            return decoder.decode(cpu, HostHarness.CODE_ADDR + HostHarness.CODE_OFF);
        } catch (RuntimeException e) {
            return null;
        }
    }

    /** Runs one instruction from {@code in}; returns the outcome in the harness's terms. */
    MachineState run(byte[] code, MachineState in) {
        Cpu c = cpu;
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
        LinuxUserEnvironment.enterUserMode(c); // a case may have loaded DS, ES or SS
        long start = HostHarness.CODE_ADDR + HostHarness.CODE_OFF;
        c.rip = start;
        decoded = null;
        crash = null;
        MachineState out = new MachineState();
        out.trap = MachineState.NO_TRAP;
        try {
            // One instruction, or a short sequence: run until RIP leaves the code (reaches the trailer).
            long end = start + code.length;
            for (int steps = 0; steps < 64 && c.rip >= start && c.rip < end; steps++) {
                Insn insn = decoder.decode(c, c.rip);
                if (decoded == null) decoded = insn;
                c.prevRip = c.rip;
                c.rip += insn.len;
                insn.exec(c);
                if (LinuxUserEnvironment.delivered(c)) break;
            }
            // INT n, INT3, INT1 (or the #GP a DPL-0 gate raises) went through the IDT: report it as the host's signal does.
            if (LinuxUserEnvironment.delivered(c)) LinuxUserEnvironment.reportDelivery(c, out);
        } catch (CpuFault f) {
            c.rip = c.prevRip;
            out.trap = f.vector;
            out.err = Math.max(f.errorCode, 0);
            out.faultAddr = f.vector == Exceptions.PF ? c.cr2 : 0;
        } catch (RuntimeException e) {
            crash = e;
        }
        System.arraycopy(c.r, 0, out.gpr, 0, 16);
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
        int trailerEnd = HostHarness.CODE_OFF + code.length + 14;
        boolean codeDirty = !Arrays.equals(codeNow, 0, HostHarness.CODE_OFF + code.length, codeImage, 0, HostHarness.CODE_OFF + code.length)
                || !Arrays.equals(codeNow, trailerEnd, 4096, codeImage, trailerEnd, 4096);
        out.dirty = (dirty ? 1 : 0) | (codeDirty ? 2 : 0);
        return out;
    }

    @Override
    public void close() { mem.close(); }

}

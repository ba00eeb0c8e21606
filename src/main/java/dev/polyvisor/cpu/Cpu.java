package dev.polyvisor.cpu;

import dev.polyvisor.cpu.mmu.Mmu;
import dev.polyvisor.memory.GuestMemory;

/**
 * Architectural state of one x86-64 logical processor. Fields are public and plain: instruction
 * handlers in {@code cpu.exec} read and write them directly on the hot path. Anything derived
 * (the mode fields below) is recomputed by {@link #updateMode()} whenever one of its inputs changes.
 */
public final class Cpu implements GuestContext {
    // Register numbers (SDM Vol. 2, 2.1.5) and segment indices.
    public static final int RAX = 0, RCX = 1, RDX = 2, RBX = 3, RSP = 4, RBP = 5, RSI = 6, RDI = 7;
    public static final int ES = 0, CS = 1, SS = 2, DS = 3, FS = 4, GS = 5, LDTR = 6, TR = 7,
            /** "no segment": base 0, used for ES/CS/DS in 64-bit mode. */ SEG_NONE = 8,
            /**
             * SS in 64-bit mode: base 0 like SEG_NONE, but a non-canonical address is #SS(0) instead of #GP(0)
             * (SDM Vol. 3A 6.15, interrupt 12; Vol. 1 3.3.7.1): stack pushes/pops and RSP/RBP-based operands.
             */ SEG_NONE_SS = 9;

    public static final long CR0_PE = 1, CR0_MP = 2, CR0_EM = 4, CR0_TS = 8, CR0_ET = 0x10, CR0_NE = 0x20,
            CR0_WP = 1L << 16, CR0_AM = 1L << 18, CR0_NW = 1L << 29, CR0_CD = 1L << 30, CR0_PG = 1L << 31;
    public static final long CR4_VME = 1, CR4_PVI = 2, CR4_TSD = 4, CR4_DE = 8, CR4_PSE = 0x10, CR4_PAE = 0x20,
            CR4_MCE = 0x40, CR4_PGE = 0x80, CR4_PCE = 0x100, CR4_OSFXSR = 0x200, CR4_OSXMMEXCPT = 0x400,
            CR4_PCIDE = 1L << 17,
            /** Supervisor-mode execution and access prevention, user and supervisor protection keys (SDM Vol. 3A 2.5, 4.6). */
            CR4_SMEP = 1L << 20, CR4_SMAP = 1L << 21, CR4_PKE = 1L << 22, CR4_PKS = 1L << 24;
    public static final long EFER_SCE = 1, EFER_LME = 1 << 8, EFER_LMA = 1 << 10, EFER_NXE = 1 << 11;

    public final int id;
    public final GuestMemory memory;
    public final Mmu mmu;
    public Platform platform;
    public InterruptSource interrupts = InterruptSource.NONE;

    // ---- general-purpose state ----
    public final long[] r = new long[16];
    public long rip;
    /** RIP of the instruction being executed (for faults and relative addressing bookkeeping). */
    public long prevRip;
    /** RFLAGS bits other than the six arithmetic ones (always includes bit 1). */
    public long rflags = 2;
    public int ccOp = Flags.EFLAGS;
    public long ccDst, ccSrc, ccSrc2;

    // ---- segments: ES CS SS DS FS GS LDTR TR, plus SEG_NONE and SEG_NONE_SS (base 0) ----
    public final int[] segSel = new int[10];
    public final long[] segBase = new long[10];
    public final long[] segLimit = new long[10];
    /** Descriptor attribute bits 8..23 of the high dword, i.e. type, S, DPL, P, AVL, L, D/B, G (as in VMX). */
    public final int[] segAttr = new int[10];

    public long gdtBase, idtBase;
    public int gdtLimit, idtLimit = 0x3FF;

    // ---- control, debug and model-specific state ----
    public long cr0 = CR0_ET | CR0_CD | CR0_NW, cr2, cr3, cr4, cr8;
    public long efer;
    public final long[] dr = new long[8];
    /** XCR0 (XSETBV/XGETBV): x87 state is always enabled (SDM Vol. 1, 13.3). */
    public long xcr0 = 1;
    public long star, lstar, cstar, sfmask, kernelGsBase, tscAux, pat = 0x0007040600070406L;
    public long sysenterCs, sysenterEsp, sysenterEip;
    public long apicBase = 0xFEE00900L;
    /**
     * CR4 bits the CPU implements but the CPU model does not advertise: writing them is #GP(0) like any
     * reserved bit (set by the VMM from the model; 0 lets everything implemented through).
     */
    public long cr4Reserved;
    /** STAC/CLAC are #UD unless the model advertises SMAP (CPUID.(EAX=07H,ECX=0):EBX.SMAP[bit 20]); set by the VMM. */
    public boolean smap;
    /**
     * PKRU, the user-mode protection-key rights (SDM Vol. 3A 4.6.2): bits 2i and 2i+1 are AD and WD of key i.
     * Read and written by RDPKRU/WRPKRU; a change drops the data translations the TLB cached under the old rights.
     */
    public int pkru;
    /** IA32_PKRS (MSR 6E1H), the supervisor-mode protection-key rights, laid out like PKRU. */
    public int pkrs;
    /**
     * KVM's forced-emulation prefix (0F 0B 6B 76 6D) is skipped instead of being #UD (set by the VMM from the
     * {@code force-emulation-prefix=on} CPU property, KVM's module parameter of that name).
     */
    public boolean forceEmulationPrefix;
    /**
     * The model's vendor is GenuineIntel: where the SDM and the APM disagree (far pointers with REX.W, code
     * breakpoints in a MOV SS shadow) the CPU behaves as Intel's manual says; otherwise as AMD's. Set by the VMM.
     */
    public boolean intel;
    /**
     * EDX after RESET or INIT: the processor's signature, as CPUID.1:EAX reports it (SDM Vol. 3A 9.1.4,
     * Table 9-1; AMD APM Vol. 2 14.1.3); the VMM sets the model's. 0x663 (family 6 model 6) until then.
     */
    public int resetSignature = 0x663;
    /**
     * The instruction running came behind KVM's forced-emulation prefix, so KVM's emulator runs it: where that
     * emulator does not do what the CPU does, the instruction does what KVM does (set by the decoder's wrapper).
     */
    public boolean forcedEmulation;
    /** INVPCID is #UD unless the model advertises it (CPUID.(EAX=07H,ECX=0):EBX.INVPCID[bit 10]); set by the VMM. */
    public boolean invpcid;
    /** MSR storage the CPU owns beyond the fields above (MTRRs, TSC offset). */
    public final CpuMsrs msrs = new CpuMsrs();

    // ---- x87 / SSE ----
    /** XMM0-15 as {lo, hi} pairs: xmm[2*n] = low quadword, xmm[2*n+1] = high quadword. */
    public final long[] xmm = new long[32];
    public int mxcsr = 0x1F80;
    /** x87 stack registers, physical order; values held as doubles (80-bit precision is not kept). */
    public final double[] st = new double[8];
    /** Raw 80-bit images for registers loaded with FLD m80 / FXRSTOR, so stores round-trip exactly. */
    public final long[] stMant = new long[8];
    public final int[] stExp = new int[8];
    public int fpuTop, fcw = 0x037F, fsw, ftw = 0xFFFF /* full tag word: all empty */, fop;
    public long fip, fdp;

    // ---- derived mode (updateMode) ----
    public int cpl;
    /** 64-bit mode: EFER.LMA and CS.L. */
    public boolean long64;
    /** Default operand size in bytes (2 or 4) and address size (2, 4 or 8) from CS.D / CS.L. */
    public int defOpSize = 2, defAddrSize = 2;
    /** Stack pointer width in bytes from SS.B (8 in 64-bit mode). */
    public int stackSize = 2;

    // ---- events ----
    public boolean halted;
    /** Interrupts are inhibited for one instruction after STI / MOV SS / POP SS. */
    public boolean interruptShadow;
    /** A DR0-DR3 breakpoint is enabled in DR7: the run loop goes one instruction at a time (see {@link Breakpoints}). */
    public boolean breakpointsArmed;
    /** The enabled execute breakpoints, one bit per DRn. */
    public int execBreakpoints;
    /** Set by MOV SS / POP SS: the debug traps of that instruction wait for the end of the next one (SDM 6.8.3). */
    public boolean movSsShadow;
    /** DR6 bits of debug traps held back by a MOV SS / POP SS, delivered after the next instruction. */
    public long pendingDebugTraps;
    /**
     * Set by SYSCALL and SYSRET: their single-step trap follows TF at the end of the instruction, not at its
     * start (QEMU raises it from RFLAGS after the instruction, helper_rechecking_single_step; kvm-unit-tests
     * x86/syscall.c checks it), so SYSRET into TF=1 code traps at once and SYSCALL that masks TF does not.
     */
    public boolean stepTrapAtEnd;
    /** Counts #DB exceptions delivered (not INT 1): a #DB absorbs debug traps held back by MOV SS. */
    public long debugDeliveries;
    /** Counts completed event deliveries (exceptions, interrupts, INT n): lets single-step see that an instruction delivered one. */
    public long deliveries;
    public boolean nmiBlocked;
    /** An NMI is latched (LAPIC NMI message, LINT1, a personality's NMI injection); delivered when not blocked. */
    public boolean nmiPending;
    /**
     * A second NMI latched while the first still waits and no NMI handler runs: two NMIs may be pending
     * then, as KVM allows (arch/x86/kvm/x86.c process_nmi: "allow two NMIs to be pending" when none is
     * in progress, since a vCPU that is not running cannot take the first one as fast as bare metal).
     */
    public boolean nmiSecondPending;
    /** Set by another thread to make run() return {@link VcpuExit.Interrupted}. */
    public volatile boolean stopRequested;
    /** Set by a taken branch that does not end its trace (Jcc): the run loop leaves the trace after it. */
    public boolean traceExit;
    public long instructionsRetired;
    /** An exit an instruction raised (HLT, shutdown); run() returns it after the instruction retires. */
    public VcpuExit pendingExit;

    final CpuFault fault = new CpuFault();

    public Cpu(int id, GuestMemory memory, Platform platform) {
        this.id = id;
        this.memory = memory;
        this.platform = platform;
        this.mmu = new Mmu(this, memory);
        reset();
    }

    /** Power-on / INIT state (SDM Vol. 3A, 10.1.1, Table 10-1): real mode at F000:FFF0. */
    public void reset() {
        java.util.Arrays.fill(r, 0);
        rip = 0xFFF0;
        rflags = 2;
        ccOp = Flags.EFLAGS;
        ccSrc = 0;
        for (int s = 0; s < 6; s++) setRealSegment(s, 0);
        segSel[CS] = 0xF000;
        segBase[CS] = 0xFFFF0000L;
        segAttr[LDTR] = 0x82;
        segAttr[TR] = 0x8B;
        segLimit[LDTR] = segLimit[TR] = 0xFFFF;
        gdtBase = idtBase = 0;
        gdtLimit = idtLimit = 0xFFFF;
        cr0 = CR0_ET | CR0_CD | CR0_NW;
        cr2 = cr3 = cr4 = cr8 = efer = 0;
        pkru = pkrs = 0;
        java.util.Arrays.fill(dr, 0);
        dr[6] = 0xFFFF0FF0L;
        dr[7] = Breakpoints.DR7_FIXED;
        pendingDebugTraps = 0;
        movSsShadow = stepTrapAtEnd = false;
        r[RDX] = resetSignature;
        mxcsr = 0x1F80;
        fcw = 0x037F;
        fsw = 0;
        ftw = 0xFFFF;
        fpuTop = 0;
        halted = false;
        interruptShadow = nmiBlocked = nmiPending = nmiSecondPending = false;
        updateMode();
        Breakpoints.update(this);
        mmu.flushAll();
    }

    /** Loads a segment register as real mode (and virtual-8086 mode) does: base = selector << 4. */
    public void setRealSegment(int seg, int sel) {
        segSel[seg] = sel & 0xFFFF;
        segBase[seg] = (long) (sel & 0xFFFF) << 4;
        segLimit[seg] = 0xFFFF;
        segAttr[seg] = seg == CS ? 0x9B : 0x93;
        if (seg == CS || seg == SS) updateMode();
    }

    /** Recomputes CPL and the decode/stack sizes from CR0, EFER, CS and SS (SDM Vol. 3A, 2.2 and 5.2.1). */
    public void updateMode() {
        boolean pe = (cr0 & CR0_PE) != 0;
        boolean lma = (efer & EFER_LMA) != 0;
        int csAttr = segAttr[CS];
        long64 = lma && (csAttr & 0x2000) != 0;
        if (!pe) cpl = 0;
        else if ((rflags & Flags.VM) != 0) cpl = 3;
        else cpl = segSel[CS] & 3;
        if (long64) {
            defOpSize = 4;
            defAddrSize = 8;
            stackSize = 8;
        } else {
            // The cached D/B bits decide even in real mode ("unreal" mode keeps a 32-bit SS, for example).
            boolean d = (csAttr & 0x4000) != 0;
            defOpSize = d ? 4 : 2;
            defAddrSize = d ? 4 : 2;
            stackSize = (segAttr[SS] & 0x4000) != 0 ? 4 : 2;
        }
        mmu.setPrivilege(cpl == 3);
        // Chained traces are trusted within one fetch epoch; a new decode mode must not reuse them.
        int m = decodeMode();
        if (m != lastDecodeMode) { lastDecodeMode = m; mmu.newFetchEpoch(); }
    }

    /** The decode mode at the last {@link #updateMode()}, to detect a change. */
    private int lastDecodeMode = -1;

    /** Mode key for the trace cache: decoding depends on exactly these bits. */
    public int decodeMode() { return (long64 ? 8 : 0) | defOpSize | (defAddrSize == 4 ? 16 : 0); }

    // ---- RFLAGS ----
    public long getRflags() { return (rflags & ~Flags.ARITH) | Flags.arith(this) | 2; }

    /** Writes all of RFLAGS (callers apply the privilege rules of POPF/IRET before calling). */
    public void setRflags(long v) {
        long old = rflags;
        rflags = (v & ~(long) Flags.ARITH & 0x3F7FD7L) | 2;
        ccSrc = v & Flags.ARITH;
        ccOp = Flags.EFLAGS;
        if (((old ^ rflags) & Flags.VM) != 0) updateMode();
    }

    public boolean interruptsEnabled() { return (rflags & Flags.IF) != 0; }

    // ---- faults ----
    /** Returns the preallocated fault for {@code throw c.fault(...)}; no error code. */
    public CpuFault fault(int vector) { return fault.set(vector, -1); }

    public CpuFault fault(int vector, int errorCode) { return fault.set(vector, errorCode); }

    public CpuFault gp0() { return fault.set(Exceptions.GP, 0); }

    public CpuFault ud() { return fault.set(Exceptions.UD, -1); }

    // ---- linear addresses ----
    /**
     * Segment base + effective address, truncated to 32 bits outside long mode (SDM Vol. 3A, 3.4). Outside
     * 64-bit mode, a protected-mode segment register holding a null selector cannot address memory:
     * #GP(0) (SDM Vol. 3A, 3.4.2 "null segment selector"; e.g. an FS: access in compatibility mode in a
     * 64-bit Linux process, whose FS selector is 0). Real and virtual-8086 mode have no null selectors.
     */
    public long linear(int seg, long ea) {
        long la = segBase[seg] + ea;
        if (long64) {
            if (seg == SEG_NONE_SS) return stackCanonical(la);
            return la;
        }
        if ((segAttr[seg] & Segments.UNUSABLE) != 0 && (cr0 & CR0_PE) != 0 && (rflags & Flags.VM) == 0) throw gp0();
        return la & 0xFFFF_FFFFL;
    }

    /** A 64-bit stack address: non-canonical is #SS(0) (SDM Vol. 3A 6.15); the MMU checks every other reference (#GP). */
    public long stackCanonical(long la) {
        if (((la << 16) >> 16) != la) throw fault(Exceptions.SS, 0);
        return la;
    }

    /** The same for a {@code size}-byte stack access: its last byte must be canonical too (the AMD host checks both ends). */
    public long stackCanonical(long la, int size) {
        long end = la + size - 1;
        if (((la << 16) >> 16) != la || ((end << 16) >> 16) != end) throw fault(Exceptions.SS, 0);
        return la;
    }

    // ---- GuestContext ----
    @Override public int vcpuId() { return id; }
    @Override public long reg(int n) { return r[n]; }
    @Override public void setReg(int n, long value) { r[n] = value; }
    @Override public int cpl() { return cpl; }
    @Override public boolean longMode() { return long64; }
    @Override public long translate(long linear) { return mmu.probe(linear); }
}

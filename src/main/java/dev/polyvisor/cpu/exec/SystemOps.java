package dev.polyvisor.cpu.exec;

import dev.polyvisor.cpu.Breakpoints;
import dev.polyvisor.cpu.Cpu;
import dev.polyvisor.cpu.CpuMsrs;
import dev.polyvisor.cpu.Exceptions;
import dev.polyvisor.cpu.Flags;
import dev.polyvisor.cpu.Interrupts;
import dev.polyvisor.cpu.Segments;
import dev.polyvisor.cpu.VcpuExit;
import dev.polyvisor.cpu.decode.Decoded;
import dev.polyvisor.cpu.decode.Ea;
import dev.polyvisor.cpu.decode.Insn;
import dev.polyvisor.cpu.decode.OpcodeTable;
import dev.polyvisor.cpu.mmu.Mmu;

import java.lang.invoke.VarHandle;

import static dev.polyvisor.cpu.decode.OpcodeTable.*;

/**
 * System instructions (SDM Vol. 2; Vol. 3A chapters 2, 5, 6, 10): interrupts and flags (INT n, CLI,
 * STI, PUSHF, POPF), control and debug registers, descriptor-table registers, MSRs, TSC, CPUID,
 * SYSCALL/SYSRET, SYSENTER/SYSEXIT, SWAPGS, cache and TLB maintenance, fences, hypercalls. Port I/O
 * is in {@link PortIoOps}.
 */
public final class SystemOps {
    private SystemOps() {}

    public static final long CR4_UMIP = 1L << 11, CR4_FSGSBASE = 1L << 16, CR4_OSXSAVE = 1L << 18;
    /**
     * CR4 bits this CPU accepts. Others (LA57, VMXE, CET, ...) are #GP(0): their features are not
     * implemented, so CPUID must not advertise them.
     */
    static final long CR4_VALID = 0x7FF | CR4_UMIP | CR4_FSGSBASE | Cpu.CR4_PCIDE | CR4_OSXSAVE
            | Cpu.CR4_SMEP | Cpu.CR4_SMAP | Cpu.CR4_PKE | Cpu.CR4_PKS;
    /** CR4 bits that change how translations are formed or checked: a change flushes the TLB (SDM Vol. 3A 4.10.4.1). */
    static final long CR4_PAGING = Cpu.CR4_PSE | Cpu.CR4_PAE | Cpu.CR4_PGE | Cpu.CR4_PCIDE
            | Cpu.CR4_SMEP | Cpu.CR4_SMAP | Cpu.CR4_PKE | Cpu.CR4_PKS;
    static final long CR0_VALID = Cpu.CR0_PE | Cpu.CR0_MP | Cpu.CR0_EM | Cpu.CR0_TS | Cpu.CR0_ET | Cpu.CR0_NE
            | Cpu.CR0_WP | Cpu.CR0_AM | Cpu.CR0_NW | Cpu.CR0_CD | Cpu.CR0_PG;

    public static void register(OpcodeTable t) {
        t.add("HLT", MAP_1BYTE, 0xF4, ENDS | PRIV, Imm.NONE, d -> new Hlt());
        t.add("CLI", MAP_1BYTE, 0xFA, ORACLE, Imm.NONE, d -> new Cli());
        t.add("STI", MAP_1BYTE, 0xFB, ENDS | ORACLE, Imm.NONE, d -> new Sti());
        t.add("PUSHF", MAP_1BYTE, 0x9C, D64 | ORACLE, Imm.NONE, d -> new Pushf(d.opSize));
        t.add("POPF", MAP_1BYTE, 0x9D, D64 | ENDS | ORACLE, Imm.NONE, d -> new Popf(d.opSize));
        t.add("INT3", MAP_1BYTE, 0xCC, ENDS | ORACLE, Imm.NONE, d -> new IntN(Exceptions.BP, Interrupts.SOFTWARE));
        t.add("INT imm8", MAP_1BYTE, 0xCD, ENDS | ORACLE, Imm.IB, d -> new IntN((int) d.imm & 0xFF, Interrupts.SOFTWARE));
        t.add("INTO", MAP_1BYTE, 0xCE, ENDS | NO64 | ORACLE, Imm.NONE, d -> new Into());
        t.add("INT1", MAP_1BYTE, 0xF1, ENDS | ORACLE, Imm.NONE, d -> new IntN(Exceptions.DB, Interrupts.ICEBP));
        t.add("UD2", MAP_0F, 0x0B, ENDS | ORACLE, Imm.NONE, d -> new Ud2());
        t.add("CLTS", MAP_0F, 0x06, PRIV, Imm.NONE, d -> new Clts());
        t.add("INVD", MAP_0F, 0x08, PRIV, Imm.NONE, d -> new CacheFlush());
        t.add("WBINVD", MAP_0F, 0x09, PRIV, Imm.NONE, d -> new CacheFlush());
        t.add("MOV r, CRn", MAP_0F, 0x20, MODRM | PRIV, Imm.NONE, d -> validCr(d.reg) ? new MovFromCr(d.reg, d.rm) : null);
        t.add("MOV CRn, r", MAP_0F, 0x22, MODRM | PRIV | ENDS, Imm.NONE, d -> validCr(d.reg) ? new MovToCr(d.reg, d.rm) : null);
        t.add("MOV r, DRn", MAP_0F, 0x21, MODRM | PRIV, Imm.NONE, d -> d.reg < 8 ? new MovFromDr(d.reg, d.rm) : null);
        t.add("MOV DRn, r", MAP_0F, 0x23, MODRM | PRIV | ENDS, Imm.NONE, d -> d.reg < 8 ? new MovToDr(d.reg, d.rm) : null);
        t.add("WRMSR", MAP_0F, 0x30, PRIV | ENDS, Imm.NONE, d -> new Wrmsr());
        t.add("RDTSC", MAP_0F, 0x31, 0, Imm.NONE, d -> new Rdtsc(false));
        t.add("RDMSR", MAP_0F, 0x32, PRIV, Imm.NONE, d -> new Rdmsr());
        t.add("RDPMC", MAP_0F, 0x33, 0, Imm.NONE, d -> new Rdpmc());
        t.addPrefixed("INVPCID", MAP_0F38, 0x82, P66, MODRM | MEM_ONLY, Imm.NONE, d -> new Invpcid(d.ea, d.reg, d.mode64));
        // F3 0F C7 /7 with a register operand: RDPID (without F3 it would be RDSEED, not implemented).
        t.addGroup("RDPID", MAP_0F, 0xC7, 7, REG_ONLY, Imm.NONE,
                d -> d.lastRepPrefix == PF3 ? new Rdpid(d.rm, c64(d)) : null);
        t.add("CPUID", MAP_0F, 0xA2, 0, Imm.NONE, d -> new Cpuid());
        t.add("SYSCALL", MAP_0F, 0x05, ENDS, Imm.NONE, d -> new Syscall());
        t.add("SYSRET", MAP_0F, 0x07, PRIV | ENDS, Imm.NONE, d -> new Sysret(d.opSize == 8));
        t.add("SYSENTER", MAP_0F, 0x34, ENDS | ORACLE, Imm.NONE, d -> new Sysenter());
        t.add("SYSEXIT", MAP_0F, 0x35, PRIV | ENDS, Imm.NONE, d -> new Sysexit(d.opSize == 8));

        // 0F 01: descriptor tables, MSW, INVLPG; the mod == 3 encodings are separate instructions.
        t.addGroup("SGDT / VMCALL", MAP_0F, 0x01, 0, 0, Imm.NONE,
                d -> d.isMem() ? new StoreDtr(d.ea, false) : rm(d) == 1 ? new Hypercall(false) : null);
        t.addGroup("SIDT / CLAC / STAC", MAP_0F, 0x01, 1, 0, Imm.NONE,
                d -> d.isMem() ? new StoreDtr(d.ea, true) : ssePrefixed(d) ? null : rm(d) == 2 ? new SetAc(false) : rm(d) == 3 ? new SetAc(true) : null);
        t.addGroup("RDPKRU / WRPKRU", MAP_0F, 0x01, 5, REG_ONLY, Imm.NONE,
                d -> ssePrefixed(d) ? null : rm(d) == 6 ? new Rdpkru() : rm(d) == 7 ? new Wrpkru() : null);
        t.addGroup("LGDT / XGETBV / XSETBV", MAP_0F, 0x01, 2, 0, Imm.NONE,
                d -> d.isMem() ? new LoadDtr(d.ea, false, d.opSize) : rm(d) == 0 ? new Xgetbv() : rm(d) == 1 ? new Xsetbv() : null);
        t.addGroup("LIDT / VMMCALL", MAP_0F, 0x01, 3, PRIV, Imm.NONE,
                d -> d.isMem() ? new LoadDtr(d.ea, true, d.opSize) : rm(d) == 1 ? new Hypercall(true) : null);
        t.addGroup("SMSW", MAP_0F, 0x01, 4, 0, Imm.NONE, d -> new Smsw(d.isMem() ? d.ea : null, d.rm, d.opSize));
        t.addGroup("LMSW", MAP_0F, 0x01, 6, PRIV | ENDS | OP16, Imm.NONE, d -> new Lmsw(SegmentOps.src(d)));
        t.addGroup("INVLPG / SWAPGS / RDTSCP", MAP_0F, 0x01, 7, ENDS, Imm.NONE,
                d -> d.isMem() ? new Invlpg(d.ea) : rm(d) == 0 ? new Swapgs() : rm(d) == 1 ? new Rdtsc(true) : null);

        // 0F AE /5 /6 /7 register forms are the fences; /7 memory is CLFLUSH. /0-/4 belong to the FPU/SSE group.
        // The fences are "NP" forms (SDM Vol. 2, 3.1.1.1): with 66, F2 or F3 they are #UD (or, on CPUs with the
        // feature, other instructions: TPAUSE, UMONITOR, INCSSP), as the AMD host shows.
        t.addGroup("LFENCE", MAP_0F, 0xAE, 5, ORACLE, Imm.NONE, d -> d.isMem() || ssePrefixed(d) ? null : new Fence());
        t.addGroup("MFENCE", MAP_0F, 0xAE, 6, ORACLE, Imm.NONE, d -> d.isMem() || ssePrefixed(d) ? null : new Fence());
        t.addGroup("SFENCE / CLFLUSH", MAP_0F, 0xAE, 7, ORACLE, Imm.NONE,
                d -> d.isMem() ? new Clflush(d.ea) : ssePrefixed(d) ? null : new Fence());
    }

    private static int rm(Decoded d) { return d.modrm & 7; }

    /** Whether the instruction is decoded for 64-bit mode (a fixed 64-bit operand there). */
    private static boolean c64(Decoded d) { return d.mode64; }

    /** A 66, F2 or F3 prefix, which an NP form does not allow. */
    static boolean ssePrefixed(Decoded d) { return d.opsizePrefix || d.lastRepPrefix != 0; }

    private static boolean validCr(int n) { return n == 0 || n == 2 || n == 3 || n == 4 || n == 8; }

    static int iopl(Cpu c) { return (int) (c.rflags & Flags.IOPL) >>> 12; }

    static boolean v86(Cpu c) { return (c.rflags & Flags.VM) != 0; }

    private static void requireCpl0(Cpu c) {
        if (c.cpl != 0) throw c.gp0();
    }

    // ------------------------------------------------------------------ interrupts and flags

    static final class Hlt extends Insn {
        @Override public void exec(Cpu c) {
            requireCpl0(c);
            c.halted = true;
        }
    }

    /**
     * CLI/STI (SDM Vol. 2): allowed when CPL <= IOPL (IOPL = 3 in virtual-8086 mode); otherwise #GP(0),
     * since VME/PVI are not implemented.
     */
    static void checkIfChange(Cpu c) {
        if ((c.cr0 & Cpu.CR0_PE) == 0) return;
        if (v86(c) ? iopl(c) != 3 : c.cpl > iopl(c)) throw c.gp0();
    }

    static final class Cli extends Insn {
        @Override public void exec(Cpu c) {
            checkIfChange(c);
            c.rflags &= ~Flags.IF;
        }
    }

    /** STI: interrupts stay blocked for one more instruction if IF was clear (SDM 6.8.3), so sti;hlt is atomic. */
    static final class Sti extends Insn {
        @Override public void exec(Cpu c) {
            checkIfChange(c);
            if ((c.rflags & Flags.IF) == 0) {
                c.rflags |= Flags.IF;
                c.interruptShadow = true;
            }
        }
    }

    /** PUSHF: the image has VM and RF clear (SDM Vol. 2 "PUSHF"). */
    static final class Pushf extends Insn {
        final int size;
        Pushf(int size) { this.size = size; }
        @Override public void exec(Cpu c) {
            if (v86(c) && iopl(c) != 3) throw c.gp0();
            Stack.push(c, size, c.getRflags() & ~(long) (Flags.VM | Flags.RF));
        }
    }

    /**
     * POPF (SDM Vol. 2 "POPF"): IOPL changes only at CPL 0, IF only when CPL <= IOPL; VM, VIP, VIF
     * never change; RF is cleared; AC and ID are free (ID toggling is how CPUID is detected).
     */
    static final class Popf extends Insn {
        final int size;
        Popf(int size) { this.size = size; }
        @Override public void exec(Cpu c) {
            if (v86(c) && iopl(c) != 3) throw c.gp0();
            long v = Stack.peek(c, size, 0);
            long changeable = Flags.ARITH | Flags.TF | Flags.DF | Flags.NT | Flags.AC | Flags.ID;
            if (c.cpl == 0 && !v86(c)) changeable |= Flags.IF | Flags.IOPL;
            else if (c.cpl <= iopl(c)) changeable |= Flags.IF;
            if (size == 2) changeable &= 0xFFFF;
            long cur = c.getRflags();
            Stack.setSp(c, c.r[Cpu.RSP] + size);
            c.setRflags((cur & ~changeable & ~(long) Flags.RF) | (v & changeable));
        }
    }

    /** INT n / INT3 / INT1: delivered with RIP at the next instruction (traps). */
    static final class IntN extends Insn {
        final int vector, kind;
        IntN(int vector, int kind) { this.vector = vector; this.kind = kind; }
        @Override public void exec(Cpu c) { Interrupts.deliver(c, vector, -1, kind); }
    }

    static final class Into extends Insn {
        @Override public void exec(Cpu c) {
            if (Flags.of(c)) Interrupts.deliver(c, Exceptions.OF, -1, Interrupts.SOFTWARE);
        }
    }

    /** UD2: #UD reported at the UD2 itself (Linux BUG()/WARN() rely on it). */
    static final class Ud2 extends Insn {
        @Override public void exec(Cpu c) { throw c.ud(); }
    }

    /**
     * CLAC / STAC (SDM Vol. 2A "CLAC", Vol. 2B "STAC"): clear or set EFLAGS.AC, which lets explicit
     * supervisor accesses reach user pages under SMAP; #UD without SMAP in CPUID or at CPL > 0.
     */
    static final class SetAc extends Insn {
        final boolean set;
        SetAc(boolean set) { this.set = set; }
        @Override public void exec(Cpu c) {
            if (!c.smap || c.cpl != 0) throw c.ud();
            if (set) c.rflags |= Flags.AC;
            else c.rflags &= ~(long) Flags.AC;
        }
    }

    /** RDPKRU (SDM Vol. 2B): #UD unless CR4.PKE, #GP(0) unless ECX = 0; EAX = PKRU, EDX = 0, at any CPL. */
    static final class Rdpkru extends Insn {
        @Override public void exec(Cpu c) {
            if ((c.cr4 & Cpu.CR4_PKE) == 0) throw c.ud();
            if ((int) c.r[Cpu.RCX] != 0) throw c.gp0();
            c.r[Cpu.RAX] = c.pkru & 0xFFFF_FFFFL;
            c.r[Cpu.RDX] = 0;
        }
    }

    /**
     * WRPKRU (SDM Vol. 2C): #UD unless CR4.PKE, #GP(0) unless ECX = EDX = 0; PKRU = EAX at any CPL. The
     * TLB's data entries were cached under the old rights, so a change drops them.
     */
    static final class Wrpkru extends Insn {
        @Override public void exec(Cpu c) {
            if ((c.cr4 & Cpu.CR4_PKE) == 0) throw c.ud();
            if ((int) c.r[Cpu.RCX] != 0 || (int) c.r[Cpu.RDX] != 0) throw c.gp0();
            int v = (int) c.r[Cpu.RAX];
            if (v != c.pkru) { c.pkru = v; c.mmu.flushData(); }
        }
    }

    // ------------------------------------------------------------------ control and debug registers

    static final class Clts extends Insn {
        @Override public void exec(Cpu c) {
            requireCpl0(c);
            c.cr0 &= ~Cpu.CR0_TS;
        }
    }

    static final class CacheFlush extends Insn {
        @Override public void exec(Cpu c) { requireCpl0(c); }
    }

    /** MOV from CRn: 64-bit in 64-bit mode, 32-bit otherwise (the ModRM mod field is ignored). */
    static final class MovFromCr extends Insn {
        final int cr, reg;
        MovFromCr(int cr, int reg) { this.cr = cr; this.reg = reg; }
        @Override public void exec(Cpu c) {
            requireCpl0(c);
            long v = switch (cr) {
                case 0 -> c.cr0;
                case 2 -> c.cr2;
                case 3 -> c.cr3;
                case 4 -> c.cr4;
                default -> {
                    int tprClass = c.platform.taskPriorityClass(c.id);
                    yield tprClass >= 0 ? tprClass : c.cr8;
                }
            };
            Regs.set(c, reg, c.long64 ? 8 : 4, v);
        }
    }

    static final class MovToCr extends Insn {
        final int cr, reg;
        MovToCr(int cr, int reg) { this.cr = cr; this.reg = reg; }
        @Override public void exec(Cpu c) {
            requireCpl0(c);
            long v = c.long64 ? c.r[reg] : c.r[reg] & 0xFFFF_FFFFL;
            switch (cr) {
                case 0 -> writeCr0(c, v);
                case 2 -> c.cr2 = v;
                case 3 -> writeCr3(c, v);
                case 4 -> writeCr4(c, v);
                default -> {
                    if ((v & ~0xFL) != 0) throw c.gp0();
                    c.cr8 = v;
                    c.platform.setTaskPriorityClass(c.id, (int) v);
                }
            }
        }
    }

    /**
     * CR0 (SDM Vol. 3A 2.5, Vol. 2 "MOV CR"): bits 63:32 are #GP, PG without PE and NW without CD are
     * #GP. Paging with EFER.LME activates IA-32e mode (LMA; needs CR4.PAE and a CS with L = 0), and
     * turning paging off leaves it (only from compatibility mode) (SDM 10.8.5).
     */
    public static void writeCr0(Cpu c, long v) {
        if ((v >>> 32) != 0) throw c.gp0();
        v = (v & CR0_VALID) | Cpu.CR0_ET;
        if ((v & Cpu.CR0_PG) != 0 && (v & Cpu.CR0_PE) == 0) throw c.gp0();
        if ((v & Cpu.CR0_NW) != 0 && (v & Cpu.CR0_CD) == 0) throw c.gp0();
        if ((v & Cpu.CR0_PG) == 0 && (c.cr4 & Cpu.CR4_PCIDE) != 0) throw c.gp0(); // SDM Vol. 2B MOV CR: PG off with PCIDE
        long old = c.cr0;
        boolean pgOn = (old & Cpu.CR0_PG) == 0 && (v & Cpu.CR0_PG) != 0;
        boolean pgOff = (old & Cpu.CR0_PG) != 0 && (v & Cpu.CR0_PG) == 0;
        if (pgOn && (c.efer & Cpu.EFER_LME) != 0) {
            if ((c.cr4 & Cpu.CR4_PAE) == 0 || (c.segAttr[Cpu.CS] & Segments.A_L) != 0) throw c.gp0();
            c.efer |= Cpu.EFER_LMA;
        }
        if (pgOff && (c.efer & Cpu.EFER_LMA) != 0) {
            if (c.long64) throw c.gp0();
            c.efer &= ~Cpu.EFER_LMA;
        }
        c.cr0 = v;
        if (((old ^ v) & (Cpu.CR0_PE | Cpu.CR0_PG | Cpu.CR0_WP)) != 0) c.mmu.flushAll();
        c.updateMode();
    }

    /**
     * CR3: in IA-32e mode bits above MAXPHYADDR (40) are reserved. With CR4.PCIDE, bits 11:0 are the PCID
     * and bit 63 asks not to flush that PCID's translations; bit 63 is not stored (SDM Vol. 3A 4.10.4.1).
     * The TLB is not tagged by PCID, so every load drops every non-global translation (4.10.4.1; an entry is
     * global only if CR4.PGE was set when it was filled, and a PGE change flushes everything): more
     * invalidation than asked is allowed.
     */
    public static void writeCr3(Cpu c, long v) {
        if ((c.cr4 & Cpu.CR4_PCIDE) != 0) v &= Long.MAX_VALUE;
        if ((c.efer & Cpu.EFER_LMA) != 0 && (v >>> 40) != 0) throw c.gp0();
        c.cr3 = v;
        c.mmu.flushNonGlobal();
    }

    /** CR4: unsupported bits are #GP; PAE cannot be cleared in IA-32e mode; paging-mode bits flush the TLB. */
    public static void writeCr4(Cpu c, long v) {
        if ((v & (~CR4_VALID | c.cr4Reserved)) != 0) throw c.gp0();
        if ((c.efer & Cpu.EFER_LMA) != 0 && (v & Cpu.CR4_PAE) == 0) throw c.gp0();
        long old = c.cr4;
        // SDM Vol. 2B MOV CR: setting PCIDE needs IA-32e mode and CR3[11:0] = 0.
        if ((v & ~old & Cpu.CR4_PCIDE) != 0 && ((c.efer & Cpu.EFER_LMA) == 0 || (c.cr3 & 0xFFF) != 0)) throw c.gp0();
        c.cr4 = v;
        if (((old ^ v) & CR4_PAGING) != 0) c.mmu.flushAll();
        c.updateMode();
    }

    /** DR4/DR5 alias DR6/DR7 unless CR4.DE (then #UD). DR6/DR7 have fixed-one bits and, in 64-bit mode, #GP on bits 63:32. */
    static int drIndex(Cpu c, int n) {
        if (n == 4 || n == 5) {
            if ((c.cr4 & Cpu.CR4_DE) != 0) throw c.ud();
            return n + 2;
        }
        return n;
    }

    /**
     * General detect (SDM Vol. 3A 18.2.4): with DR7.GD set, any MOV to or from a debug register is a #DB fault
     * with DR6.BD; the processor clears GD so that the handler can use the debug registers.
     */
    static void generalDetect(Cpu c) {
        if ((c.dr[7] & Breakpoints.DR7_GD) == 0) return;
        c.dr[7] &= ~Breakpoints.DR7_GD;
        c.dr[6] |= Breakpoints.DR6_BD;
        throw c.fault(Exceptions.DB);
    }

    static final class MovFromDr extends Insn {
        final int dr, reg;
        MovFromDr(int dr, int reg) { this.dr = dr; this.reg = reg; }
        @Override public void exec(Cpu c) {
            requireCpl0(c);
            int n = drIndex(c, dr);
            generalDetect(c);
            long v = switch (n) {
                case 6 -> (c.dr[6] & 0x1E00FL) | 0xFFFF0FF0L;
                case 7 -> (c.dr[7] & 0xFFFF_23FFL) | 0x400;
                default -> c.dr[n];
            };
            Regs.set(c, reg, c.long64 ? 8 : 4, v);
        }
    }

    static final class MovToDr extends Insn {
        final int dr, reg;
        MovToDr(int dr, int reg) { this.dr = dr; this.reg = reg; }
        @Override public void exec(Cpu c) {
            requireCpl0(c);
            int n = drIndex(c, dr);
            generalDetect(c);
            long v = c.long64 ? c.r[reg] : c.r[reg] & 0xFFFF_FFFFL;
            if ((n == 6 || n == 7) && (v >>> 32) != 0) throw c.gp0();
            c.dr[n] = v;
            if (n != 6) Breakpoints.update(c);
        }
    }

    // ------------------------------------------------------------------ descriptor-table registers, MSW

    /** LGDT/LIDT: 16-bit limit, then a 24-bit (16-bit operand), 32-bit, or 64-bit (64-bit mode) base. */
    static final class LoadDtr extends Insn {
        final Ea ea;
        final boolean idt;
        final int size;
        LoadDtr(Ea ea, boolean idt, int size) { this.ea = ea; this.idt = idt; this.size = size; }
        @Override public void exec(Cpu c) {
            requireCpl0(c);
            int limit = c.mmu.read16(ea.lin(c));
            long base;
            if (c.long64) {
                base = c.mmu.read64(ea.lin(c, 2));
                if (!Segments.canonical(base)) throw c.gp0();
            } else {
                base = c.mmu.read32(ea.lin(c, 2)) & (size == 2 ? 0xFF_FFFFL : 0xFFFF_FFFFL);
            }
            if (idt) { c.idtBase = base; c.idtLimit = limit; }
            else { c.gdtBase = base; c.gdtLimit = limit; }
        }
    }

    /** SGDT/SIDT: limit, then a 32-bit base (64-bit in 64-bit mode). */
    static final class StoreDtr extends Insn {
        final Ea ea;
        final boolean idt;
        StoreDtr(Ea ea, boolean idt) { this.ea = ea; this.idt = idt; }
        @Override public void exec(Cpu c) {
            SegmentOps.checkUmip(c);
            long base = idt ? c.idtBase : c.gdtBase;
            int limit = idt ? c.idtLimit : c.gdtLimit;
            long la = ea.lin(c);
            // Probe both ends first (the low one first, so CR2 names the first byte that faults).
            c.mmu.translate(la, Mmu.WRITE);
            c.mmu.translate(ea.lin(c, c.long64 ? 9 : 5), Mmu.WRITE);
            if (c.long64) c.mmu.write64(ea.lin(c, 2), base);
            else c.mmu.write32(ea.lin(c, 2), (int) base);
            c.mmu.write16(la, limit);
        }
    }

    static final class Smsw extends Insn {
        final Ea ea;
        final int reg, size;
        Smsw(Ea ea, int reg, int size) { this.ea = ea; this.reg = reg; this.size = size; }
        @Override public void exec(Cpu c) {
            SegmentOps.checkUmip(c);
            if (ea != null) c.mmu.write16(ea.lin(c), (int) c.cr0);
            else Regs.set(c, reg, size, c.cr0);
        }
    }

    /** LMSW: loads CR0 bits 0-3; it can set PE but never clear it. */
    static final class Lmsw extends Insn {
        final SegmentOps.Src16 src;
        Lmsw(SegmentOps.Src16 src) { this.src = src; }
        @Override public void exec(Cpu c) {
            requireCpl0(c);
            int v = src.get(c);
            writeCr0(c, (c.cr0 & ~0xFL) | (v & 0xF) | (c.cr0 & Cpu.CR0_PE));
        }
    }

    /**
     * INVPCID (SDM Vol. 2A "INVPCID"): #UD unless the model has it; #GP(0) at CPL > 0, for a type above 3,
     * for descriptor bits 63:12 set, for a non-canonical address (type 0), and for a non-zero PCID with
     * type 0 or 1 while CR4.PCIDE = 0. The TLB is not tagged by PCID: type 0 drops the address for every
     * PCID, types 1 and 3 every non-global translation, type 2 everything, which covers what each type must
     * invalidate.
     */
    static final class Invpcid extends Insn {
        final Ea ea;
        final int reg;
        final boolean wide;
        Invpcid(Ea ea, int reg, boolean wide) { this.ea = ea; this.reg = reg; this.wide = wide; }
        @Override public void exec(Cpu c) {
            if (!c.invpcid) throw c.ud();
            requireCpl0(c);
            long type = wide ? c.r[reg] : c.r[reg] & 0xFFFF_FFFFL;
            long la = ea.lin(c);
            long lo = c.mmu.read64(la), addr = c.mmu.read64(ea.lin(c, 8));
            if (Long.compareUnsigned(type, 3) > 0 || (lo >>> 12) != 0) throw c.gp0();
            if (type == 0 && !Segments.canonical(addr)) throw c.gp0();
            if (type <= 1 && (lo & 0xFFF) != 0 && (c.cr4 & Cpu.CR4_PCIDE) == 0) throw c.gp0();
            if (type == 0) c.mmu.invalidatePage(addr);
            else if (type == 2) c.mmu.flushAll();
            else c.mmu.flushNonGlobal();
        }
    }

    static final class Invlpg extends Insn {
        final Ea ea;
        Invlpg(Ea ea) { this.ea = ea; }
        @Override public void exec(Cpu c) {
            requireCpl0(c);
            c.mmu.invalidatePage(ea.lin(c));
        }
    }

    // ------------------------------------------------------------------ MSRs, TSC, CPUID

    static final class Rdmsr extends Insn {
        @Override public void exec(Cpu c) {
            requireCpl0(c);
            long v = CpuMsrs.read(c, (int) c.r[Cpu.RCX]);
            c.r[Cpu.RAX] = v & 0xFFFF_FFFFL;
            c.r[Cpu.RDX] = v >>> 32;
        }
    }

    static final class Wrmsr extends Insn {
        @Override public void exec(Cpu c) {
            requireCpl0(c);
            long v = (c.r[Cpu.RDX] << 32) | (c.r[Cpu.RAX] & 0xFFFF_FFFFL);
            CpuMsrs.write(c, (int) c.r[Cpu.RCX], v);
        }
    }

    /**
     * RDPMC (SDM Vol. 2B "RDPMC"; AMD APM Vol. 3 "RDPMC"): #GP(0) outside CPL 0 unless CR4.PCE is set, and
     * #GP(0) for a counter index the model does not have; otherwise EDX:EAX = the counter named by ECX.
     * A hypervisor's pseudo-counters (VMware's 0x10000-0x10002) are readable at any CPL.
     */
    static final class Rdpmc extends Insn {
        @Override public void exec(Cpu c) {
            int index = (int) c.r[Cpu.RCX];
            if ((c.cr4 & Cpu.CR4_PCE) == 0 && c.cpl != 0 && !c.platform.pseudoCounter(index)) throw c.gp0();
            dev.polyvisor.cpu.Platform.MsrResult r = c.platform.rdpmc(c.id, index);
            if (!r.ok()) throw c.gp0();
            c.r[Cpu.RAX] = r.value() & 0xFFFF_FFFFL;
            c.r[Cpu.RDX] = r.value() >>> 32;
        }
    }

    /**
     * RDPID (SDM Vol. 2B "RDPID"): the destination gets IA32_TSC_AUX, all 64 bits in 64-bit mode (the
     * operand size is fixed: 64 bits there, 32 bits elsewhere), with no privilege check.
     */
    static final class Rdpid extends Insn {
        final int reg;
        final boolean wide;
        Rdpid(int reg, boolean wide) { this.reg = reg; this.wide = wide; }
        @Override public void exec(Cpu c) { Regs.set(c, reg, wide ? 8 : 4, c.tscAux); }
    }

    /** RDTSC / RDTSCP: #GP(0) at CPL > 0 when CR4.TSD is set; RDTSCP also returns TSC_AUX in ECX. */
    static final class Rdtsc extends Insn {
        final boolean aux;
        Rdtsc(boolean aux) { this.aux = aux; }
        @Override public void exec(Cpu c) {
            if ((c.cr4 & Cpu.CR4_TSD) != 0 && c.cpl != 0 && (c.cr0 & Cpu.CR0_PE) != 0) throw c.gp0();
            long t = CpuMsrs.tsc(c);
            c.r[Cpu.RAX] = t & 0xFFFF_FFFFL;
            c.r[Cpu.RDX] = t >>> 32;
            if (aux) c.r[Cpu.RCX] = c.tscAux & 0xFFFF_FFFFL;
        }
    }

    static final class Cpuid extends Insn {
        static final int OSPKE = 1 << 4;
        @Override public void exec(Cpu c) {
            int leaf = (int) c.r[Cpu.RAX], subleaf = (int) c.r[Cpu.RCX];
            int[] r = c.platform.cpuid(c.id, leaf, subleaf);
            c.r[Cpu.RAX] = r[0] & 0xFFFF_FFFFL;
            c.r[Cpu.RBX] = r[1] & 0xFFFF_FFFFL;
            // CPUID.(EAX=07H,ECX=0):ECX.OSPKE[bit 4] reflects CR4.PKE (SDM Vol. 2A Table 3-8).
            int ospke = leaf == 7 && subleaf == 0 && (c.cr4 & Cpu.CR4_PKE) != 0 ? OSPKE : 0;
            c.r[Cpu.RCX] = (r[2] | ospke) & 0xFFFF_FFFFL;
            c.r[Cpu.RDX] = r[3] & 0xFFFF_FFFFL;
        }
    }

    /** VMCALL / VMMCALL: the platform's hypercall handler; #UD when nothing claims it. */
    static final class Hypercall extends Insn {
        final boolean vmmcall;
        Hypercall(boolean vmmcall) { this.vmmcall = vmmcall; }
        @Override public void exec(Cpu c) {
            if (!c.platform.hypercall(new VcpuExit.Hypercall(vmmcall, c))) throw c.ud();
        }
    }

    /** XGETBV (SDM Vol. 2): #UD unless CR4.OSXSAVE; only XCR0 exists (ECX = 0), else #GP(0). */
    static final class Xgetbv extends Insn {
        @Override public void exec(Cpu c) {
            if ((c.cr4 & CR4_OSXSAVE) == 0) throw c.ud();
            if ((int) c.r[Cpu.RCX] != 0) throw c.gp0();
            c.r[Cpu.RAX] = c.xcr0 & 0xFFFF_FFFFL;
            c.r[Cpu.RDX] = c.xcr0 >>> 32;
        }
    }

    /**
     * XSETBV: CPL 0, CR4.OSXSAVE, ECX = 0. Only x87 and SSE state components (bits 0-1) are supported,
     * and x87 must stay enabled; anything else is #GP(0).
     */
    static final class Xsetbv extends Insn {
        @Override public void exec(Cpu c) {
            if ((c.cr4 & CR4_OSXSAVE) == 0) throw c.ud();
            requireCpl0(c);
            long v = (c.r[Cpu.RDX] << 32) | (c.r[Cpu.RAX] & 0xFFFF_FFFFL);
            if ((int) c.r[Cpu.RCX] != 0 || (v & 1) == 0 || (v & ~3L) != 0) throw c.gp0();
            c.xcr0 = v;
        }
    }

    // ------------------------------------------------------------------ fast system calls

    /** SWAPGS: 64-bit mode only, CPL 0; exchanges GS.base and IA32_KERNEL_GS_BASE. */
    static final class Swapgs extends Insn {
        @Override public void exec(Cpu c) {
            if (!c.long64) throw c.ud();
            requireCpl0(c);
            long t = c.segBase[Cpu.GS];
            c.segBase[Cpu.GS] = c.kernelGsBase;
            c.kernelGsBase = t;
        }
    }

    /**
     * SYSCALL (SDM Vol. 2): RCX = next RIP, R11 = RFLAGS, CS/SS flat ring 0 from STAR[47:32],
     * RFLAGS &= ~SFMASK, RIP = LSTAR. From compatibility mode it goes to CSTAR, as on AMD (Intel raises
     * #UD there; Linux's 32-bit vDSO only uses SYSCALL where the vendor allows it, so this is a superset).
     */
    static final class Syscall extends Insn {
        @Override public void exec(Cpu c) {
            if ((c.efer & Cpu.EFER_LMA) == 0 || (c.efer & Cpu.EFER_SCE) == 0) throw c.ud();
            long target = c.long64 ? c.lstar : c.cstar;
            long flags = c.getRflags() & ~(long) Flags.RF;
            int sel = (int) (c.star >>> 32) & 0xFFFF;
            c.r[Cpu.RCX] = c.rip;
            c.r[11] = flags;
            c.setRflags(flags & ~c.sfmask);
            c.stepTrapAtEnd = true;
            Segments.loadFlat(c, Cpu.CS, sel & 0xFFFC, true, 0, true);
            Segments.loadFlat(c, Cpu.SS, (sel + 8) & 0xFFFC, false, 0, false);
            c.updateMode();
            c.rip = target;
        }
    }

    /**
     * SYSRET (SDM Vol. 2, Intel behaviour): #GP(0) at CPL > 0 and, for SYSRETQ, on a non-canonical RCX
     * (checked before anything changes). CS/SS from STAR[63:48], RFLAGS from R11.
     */
    static final class Sysret extends Insn {
        final boolean to64;
        Sysret(boolean to64) { this.to64 = to64; }
        @Override public void exec(Cpu c) {
            if (!c.long64 || (c.efer & Cpu.EFER_SCE) == 0) throw c.ud();
            requireCpl0(c);
            long rcx = c.r[Cpu.RCX];
            if (to64 && !Segments.canonical(rcx)) throw c.gp0();
            int base = (int) (c.star >>> 48) & 0xFFFF;
            c.setRflags((c.r[11] & 0x3C7FD7L) | 2);
            c.stepTrapAtEnd = true;
            Segments.loadFlat(c, Cpu.CS, ((to64 ? base + 16 : base) | 3) & 0xFFFF, true, 3, to64);
            Segments.loadFlat(c, Cpu.SS, ((base + 8) | 3) & 0xFFFF, false, 3, false);
            c.updateMode();
            c.rip = to64 ? rcx : rcx & 0xFFFF_FFFFL;
        }
    }

    /**
     * SYSENTER: ring 0 flat CS/SS from IA32_SYSENTER_CS, RSP/RIP from the MSRs; clears VM, IF, RF. The
     * model is AMD, where SYSENTER is #UD in long mode (AMD APM Vol. 3 "SYSENTER"; QEMU does the same for a
     * non-Intel vendor; the AMD EPYC host agrees); Linux uses it only on Intel. So only the legacy-mode
     * entry remains: 32-bit flat segments, ESP/EIP from the low halves of the MSRs.
     */
    static final class Sysenter extends Insn {
        @Override public void exec(Cpu c) {
            if ((c.efer & Cpu.EFER_LMA) != 0) throw c.ud();
            if ((c.cr0 & Cpu.CR0_PE) == 0 || (c.sysenterCs & 0xFFFC) == 0) throw c.gp0();
            int cs = (int) c.sysenterCs & 0xFFFC;
            c.rflags &= ~(long) (Flags.VM | Flags.IF | Flags.RF);
            Segments.loadFlat(c, Cpu.CS, cs, true, 0, false);
            Segments.loadFlat(c, Cpu.SS, cs + 8, false, 0, false);
            c.updateMode();
            c.r[Cpu.RSP] = c.sysenterEsp & 0xFFFF_FFFFL;
            c.rip = c.sysenterEip & 0xFFFF_FFFFL;
        }
    }

    /**
     * SYSEXIT: to ring 3, CS = SYSENTER_CS+16 (+32 for 64-bit), SS = CS+8; RIP = RDX, RSP = RCX. Like
     * SYSENTER it is #UD in long mode on the AMD model, before any privilege check (AMD APM Vol. 3
     * "SYSEXIT": invalid in long mode; QEMU does the same for a non-Intel vendor; an AMD host running it
     * natively agrees, while a KVM host emulates it with the privilege check first).
     */
    static final class Sysexit extends Insn {
        final boolean to64;
        Sysexit(boolean to64) { this.to64 = to64; }
        @Override public void exec(Cpu c) {
            if ((c.efer & Cpu.EFER_LMA) != 0) throw c.ud();
            if ((c.cr0 & Cpu.CR0_PE) == 0 || (c.sysenterCs & 0xFFFC) == 0) throw c.gp0();
            requireCpl0(c);
            long rip = c.r[Cpu.RDX], rsp = c.r[Cpu.RCX];
            if (to64 && (!Segments.canonical(rip) || !Segments.canonical(rsp))) throw c.gp0();
            int base = (int) c.sysenterCs & 0xFFFC;
            int cs = (to64 ? base + 32 : base + 16) | 3;
            Segments.loadFlat(c, Cpu.CS, cs, true, 3, to64);
            Segments.loadFlat(c, Cpu.SS, cs + 8, false, 3, false);
            c.updateMode();
            c.r[Cpu.RSP] = to64 ? rsp : rsp & 0xFFFF_FFFFL;
            c.rip = to64 ? rip : rip & 0xFFFF_FFFFL;
        }
    }

    // ------------------------------------------------------------------ caches, fences

    static final class Fence extends Insn {
        @Override public void exec(Cpu c) { VarHandle.fullFence(); }
    }

    /** CLFLUSH: checked like a byte read (it can #PF), but performs no access that a device could see. */
    static final class Clflush extends Insn {
        final Ea ea;
        Clflush(Ea ea) { this.ea = ea; }
        @Override public void exec(Cpu c) { c.mmu.translate(ea.lin(c), Mmu.READ); }
    }
}

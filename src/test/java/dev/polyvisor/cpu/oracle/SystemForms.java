package dev.polyvisor.cpu.oracle;

import dev.polyvisor.cpu.Exceptions;
import dev.polyvisor.cpu.decode.OpcodeTable.Entry;

import java.io.ByteArrayOutputStream;
import java.util.SplittableRandom;
import java.util.random.RandomGenerator;

import static dev.polyvisor.cpu.decode.OpcodeTable.*;

/**
 * The oracle's system family: user-mode forms that trap (INT3, INT1, INT n, UD2, CLI/STI, port I/O),
 * fences and CLFLUSH, the segment-register forms that are safe to run in the host process (MOV
 * from/to DS, ES, SS, PUSH FS/GS, LSS, LAR, LSL, VERR, VERW), and the "CPL-3 check" of every
 * privileged form (flag PRIV, plus LGDT and INVLPG/SWAPGS, which share a table entry with user-mode
 * forms): at CPL 3 each must raise the same exception as the host (#GP(0), or #UD where that is
 * checked first). The emulator side runs under {@link LinuxUserEnvironment}, the host's GDT and IDT.
 *
 * <p>Encodings and inputs here replace {@link Encoder}'s for these forms: selectors are drawn from
 * the interesting set (null with every RPL, the user selectors 0x23/0x2b/0x33 with every RPL, the
 * DPL-0 kernel selectors, LDT selectors, empty and system GDT slots, beyond the GDT limit), never the
 * per-CPU entry 0x78-0x7F whose limit is the host CPU number. A segment-register load is followed by
 * a store of that register into the window, so the loaded selector is compared.
 */
final class SystemForms {
    private SystemForms() {}

    enum Kind {
        /** INT3, INT1, INT n, UD2, CLI, STI: one fixed encoding with optional ignored prefixes. */
        TRAP,
        /** IN/OUT/INS/OUTS: #GP(0) at CPL 3 (no I/O bitmap). */
        PORT,
        /** LFENCE, MFENCE (register forms), SFENCE / CLFLUSH. */
        FENCE,
        /** MOV r/m, Sreg. */
        SREG_READ,
        /** MOV Sreg, r/m16 (DS, ES, SS; CS and 6/7 are #UD). */
        SREG_WRITE,
        LSS,
        /** LAR, LSL, VERR, VERW. */
        SEL_CHECK,
        /** PUSH FS, PUSH GS. */
        PUSH_SREG,
        /** A privileged form run at CPL 3. */
        CPL3,
        /** Not run, with a printed reason. */
        EXCLUDED
    }

    /** The host CPU's vendor is AMD (SYSENTER is then #UD in long mode, safe to run; /proc/cpuinfo vendor_id). */
    static final boolean AMD_HOST = hostVendor().equals("AuthenticAMD");

    private static String hostVendor() {
        try (var lines = java.nio.file.Files.lines(java.nio.file.Path.of("/proc/cpuinfo"))) {
            return lines.filter(l -> l.startsWith("vendor_id")).map(l -> l.substring(l.indexOf(':') + 1).trim())
                    .findFirst().orElse("");
        } catch (java.io.IOException | java.io.UncheckedIOException e) {
            return "";
        }
    }

    /** Encodings inside the checked forms that are never generated, and why (printed in the oracle's summary). */
    static final java.util.Map<String, String> NOT_GENERATED = notGenerated();

    private static java.util.Map<String, String> notGenerated() {
        java.util.Map<String, String> m = new java.util.LinkedHashMap<>();
        m.put("INT 0x80 (CD 80)", "a real 32-bit system call in the host process (its IDT gate is DPL 3)");
        m.put("MOV FS/GS, r/m16 (8E /4, /5)", "a selector load replaces the host process's TLS base (FS, glibc)");
        m.put("RDTSCP (0F 01 F9)", "the time-stamp counter and TSC_AUX (the host CPU number) differ by nature");
        m.put("0F 01 /7 register forms other than SWAPGS and RDTSCP",
                "AMD MONITORX, MWAITX, CLZERO (would zero a host cache line at RAX), RDPRU, INVLPGB, TLBSYNC: #UD in the model");
        m.put("XGETBV, XSETBV (0F 01 D0, D1)",
                "the qemu64 model has no XSAVE (CR4.OSXSAVE clear: #UD) while the host's XGETBV reads its XCR0");
        m.put("VMMCALL (0F 01 D9)", "a hypercall answered by the host's hypervisor, not by the CPU");
        m.put("LFENCE/MFENCE memory forms (0F AE /5, /6)",
                "XRSTOR and XSAVEOPT on the host (XSAVE state), #UD in the qemu64 model without XSAVE");
        return m;
    }

    /** Where the selector of a segment-register load is stored back for comparison. */
    static final int READBACK_OFF = 0x9F8;

    /** The form's kind in this family, or null when the form is not part of it. */
    static Kind kind(Entry e) {
        int op = e.opcode();
        if (e.map() == MAP_1BYTE) {
            switch (op) {
                // INTO (CE) is NO64: it runs in compatibility mode only (Compat32), #OF through the DPL-3 gate 4 when OF = 1.
                case 0xCC, 0xCD, 0xF1, 0xFA, 0xFB, 0xCE -> { return Kind.TRAP; }
                case 0xE4, 0xE5, 0xE6, 0xE7, 0xEC, 0xED, 0xEE, 0xEF, 0x6C, 0x6D, 0x6E, 0x6F -> { return Kind.PORT; }
                case 0x8C -> { return Kind.SREG_READ; }
                case 0x8E -> { return Kind.SREG_WRITE; }
                default -> { }
            }
        } else if (e.map() == MAP_0F) {
            switch (op) {
                case 0x0B -> { return Kind.TRAP; }
                case 0xAE -> { if (e.reg() >= 5) return Kind.FENCE; }
                case 0xB2 -> { return Kind.LSS; }
                case 0x02, 0x03 -> { return Kind.SEL_CHECK; }
                case 0x00 -> {
                    if (e.reg() == 4 || e.reg() == 5) return Kind.SEL_CHECK;
                    if (e.reg() == 0 || e.reg() == 1) return Kind.EXCLUDED;
                }
                case 0xA0, 0xA8 -> { return Kind.PUSH_SREG; }
                case 0xA1, 0xA9, 0xB4, 0xB5, 0xA2, 0x31, 0x33, 0x05 -> { return Kind.EXCLUDED; }
                case 0x34 -> { return AMD_HOST ? Kind.TRAP : Kind.EXCLUDED; } // SYSENTER: #UD in long mode on AMD
                case 0xC7 -> { if (e.reg() == 7) return Kind.EXCLUDED; } // RDPID
                case 0x01 -> {
                    if (e.reg() == 2 || e.reg() == 7) return Kind.CPL3; // LGDT; INVLPG / SWAPGS
                    if (e.reg() == 0 || e.reg() == 1 || e.reg() == 4 || e.reg() == 5) return Kind.EXCLUDED;
                }
                default -> { }
            }
        }
        if (e.map() == MAP_0F38 && e.opcode() == 0x82) return Kind.EXCLUDED; // INVPCID
        if (e.has(PRIV)) return Kind.CPL3;
        return null;
    }

    static boolean handles(Entry e) { return kind(e) != null; }

    /** The CPL-3 check family (counted apart from the user-mode forms in the summary). */
    static boolean cpl3Check(Entry e) { return kind(e) == Kind.CPL3; }

    /** Why a form of this family is not run on this host, or null (the UMIP forms' reason comes from the probe). */
    static String unsupported(Entry e, HostCapabilities host) {
        if (kind(e) == Kind.CPL3) {
            // A privileged form registered later with an operand shape the generator does not draw.
            switch (e.imm()) {
                case NONE, IB, IW, IZ, IV, GRP3 -> { }
                default -> { return "CPL-3 check: immediate kind " + e.imm() + " is not generated"; }
            }
            return null;
        }
        if (kind(e) != Kind.EXCLUDED) return null;
        int op = e.opcode();
        if (e.map() == MAP_0F38 && op == 0x82)
            return "INVPCID: whether it is #UD or #GP at CPL 3 depends on the host's CPUID (the model decides for the"
                    + " emulator), and at CPL 0 it is a TLB operation the host process cannot run";
        if (e.map() == MAP_0F) {
            switch (op) {
                case 0xA1, 0xA9 -> {
                    return "POP FS/GS loads FS/GS, and a selector load replaces the segment base: it would destroy the"
                            + " host process's TLS base (FS, glibc) that the harness itself runs on";
                }
                case 0xB4, 0xB5 -> {
                    return "LFS/LGS load FS/GS: a selector load replaces the host process's TLS base (FS, glibc)";
                }
                case 0xA2 -> { return "CPUID: the emulated model is qemu64 by design, not the host CPU"; }
                case 0x31 -> { return "RDTSC: the time-stamp counter differs between two machines by nature"; }
                case 0x33 -> {
                    return "RDPMC: the host's CR4.PCE at CPL 3 follows Linux's perf state (the rdpmc attribute and"
                            + " mmapped events, arch/x86/events/core.c), and its counters count while the model's do not";
                }
                case 0x05 -> { return "SYSCALL: would execute a real system call in the host process"; }
                case 0x34 -> {
                    return "SYSENTER: on an Intel host it enters the kernel's 32-bit system-call path (a real host system"
                            + " call); it is compared on AMD hosts only, where it is #UD in long mode";
                }
                case 0xC7 -> {
                    return "RDPID reads IA32_TSC_AUX, which Linux sets to the host CPU number (arch/x86/kernel/cpu/common.c"
                            + " setup_getcpu): it differs between two machines by nature";
                }
                case 0x00 -> { return (e.reg() == 0 ? "SLDT: " : "STR: ") + host.umip().reason(); }
                case 0x01 -> {
                    return switch (e.reg()) {
                        case 0 -> "SGDT: " + host.umip().reason() + " / VMCALL: handled by the host's hypervisor";
                        case 1 -> "SIDT: " + host.umip().reason() + " / CLAC, STAC: #UD at CPL 3 whatever the CPU, and at CPL 0"
                                + " they only change EFLAGS.AC";
                        case 5 -> "RDPKRU/WRPKRU: #UD or not follows the host kernel's CR4.PKE (set when the host CPU has PKU),"
                                + " not the model, and WRPKRU would change the host process's own protection-key rights";
                        default -> "SMSW: " + host.umip().reason();
                    };
                }
                default -> { }
            }
        }
        return "excluded";
    }

    /** A selector from the interesting set (never 0x78-0x7F, the per-CPU entry). */
    static int selector(RandomGenerator r) {
        for (;;) {
            int s = switch (r.nextInt(9)) {
                case 0 -> r.nextInt(4);                                            // null, any RPL
                case 1, 2, 3 -> new int[] {0x20, 0x28, 0x30}[r.nextInt(3)] | r.nextInt(4); // user selectors
                case 4 -> 0x08 + r.nextInt(0x18);                                   // DPL-0 kernel selectors
                case 5 -> (r.nextInt(0x2000) << 3) | 4 | r.nextInt(4);             // LDT (TI = 1): there is none
                case 6 -> 0x80 + r.nextInt(0x10000 - 0x80);                         // beyond the GDT limit
                case 7 -> 0x38 + r.nextInt(0x40);                                   // empty slot, TSS, LDT slot, TLS slots
                default -> r.nextInt(0x10000);
            };
            if ((s & 0xFFF8) != 0x78) return s;
        }
    }

    // ------------------------------------------------------------------ encodings

    /** An encoding of a form of this family; INT n draws only the vectors the host handles as Linux does. */
    static Encoding encode(Entry e, RandomGenerator r, HostCapabilities host) {
        Kind k = kind(e);
        return switch (k) {
            case TRAP -> trap(e, r, host);
            case PORT -> port(e, r);
            case FENCE -> e.reg() == 7 && r.nextBoolean() ? memoryForm(e, r) : register(e, r, e.reg(), r.nextInt(8), false);
            case SREG_READ -> withReg(Encoder.encode(e, r), e, r.nextInt(8));
            case SREG_WRITE -> withReg(Encoder.encode(e, r), e, new int[] {0, 2, 3, 0, 2, 3, 0, 2, 3, 1, 6, 7}[r.nextInt(12)]);
            case LSS, SEL_CHECK -> Encoder.encode(e, r);
            case PUSH_SREG -> pushSreg(e, r);
            case CPL3 -> cpl3(e, r);
            case EXCLUDED -> throw new IllegalArgumentException("excluded form " + e.mnemonic());
        };
    }

    /** Prefixes the processor ignores here: 66, REX (with W), occasionally both. */
    private static void ignoredPrefixes(ByteArrayOutputStream b, RandomGenerator r) {
        if (r.nextInt(6) == 0) b.write(0x66);
        if (r.nextInt(4) == 0) b.write(0x40 | r.nextInt(16));
    }

    private static Encoding simple(byte[] bytes, int opSize, long imm) {
        return new Encoding(bytes, opSize, false, -1, -1, 0, 0, imm, -1, 0, new long[16]);
    }

    private static Encoding trap(Entry e, RandomGenerator r, HostCapabilities host) {
        ByteArrayOutputStream b = new ByteArrayOutputStream();
        ignoredPrefixes(b, r);
        if (e.map() == MAP_0F) b.write(0x0F);
        b.write(e.opcode());
        long imm = 0;
        if (e.opcode() == 0xCD && e.map() == MAP_1BYTE) {
            // Never 0x80 (a real 32-bit system call on the host) nor a vector the host's hypervisor claims (probed).
            // 3 and 4 have DPL-3 gates; the rest are #GP(n*8+2).
            int v;
            do v = r.nextInt(3) == 0 ? 3 + r.nextInt(2) : r.nextInt(256); while (!host.intVectorUsable(v));
            b.write(v);
            imm = v;
        }
        return simple(b.toByteArray(), 4, imm);
    }

    private static Encoding port(Entry e, RandomGenerator r) {
        ByteArrayOutputStream b = new ByteArrayOutputStream();
        int op = e.opcode();
        boolean string = op <= 0x6F;
        boolean addr32 = string && r.nextInt(8) == 0;
        if (addr32) b.write(0x67);
        boolean p66 = r.nextInt(3) == 0;
        if (p66) b.write(0x66);
        if (string && r.nextBoolean()) b.write(r.nextInt(4) == 0 ? 0xF2 : 0xF3);
        int rex = r.nextInt(4) == 0 ? 0x40 | r.nextInt(16) : 0;
        if (rex != 0) b.write(rex);
        b.write(op);
        long imm = 0;
        if (op >= 0xE4 && op <= 0xE7) {
            imm = r.nextInt(256);
            b.write((int) imm);
        }
        int size = (op & 1) == 0 ? 1 : p66 ? 2 : 4;
        long[] forced = new long[16];
        int forcedRegs = 0;
        if (string && r.nextInt(4) != 0) {
            // Usually a pointer into the window: #GP(0) must come before any memory access either way.
            int reg = op <= 0x6D ? 7 : 6;
            forced[reg] = HostHarness.DATA_ADDR + 0x800 + r.nextInt(0x40);
            forcedRegs |= 1 << reg;
        }
        if (string && r.nextInt(3) == 0) {
            forced[1] = r.nextInt(4); // counts 0-3 (REP with a zero count)
            forcedRegs |= 1 << 1;
        }
        return new Encoding(b.toByteArray(), size, false, -1, -1, 0, rex, imm, -1, forcedRegs, forced);
    }

    /** A ModRM register form: prefixes, 0F, opcode, ModRM 11 reg rm. */
    private static Encoding register(Entry e, RandomGenerator r, int reg, int rm, boolean rexAllowed) {
        ByteArrayOutputStream b = new ByteArrayOutputStream();
        if (r.nextInt(8) == 0 && e.prefix() == ANY) b.write(0x66);
        int rex = rexAllowed && r.nextInt(3) == 0 ? 0x40 | r.nextInt(16) : 0;
        if (rex != 0) b.write(rex);
        if (e.map() == MAP_0F) b.write(0x0F);
        b.write(e.opcode());
        b.write(0xC0 | (reg & 7) << 3 | (rm & 7));
        return new Encoding(b.toByteArray(), 4, false, reg | ((rex >> 2 & 1) << 3), rm | ((rex & 1) << 3), 0, rex, 0, -1, 0, new long[16]);
    }

    private static Encoding memoryForm(Entry e, RandomGenerator r) {
        for (;;) {
            Encoding enc = Encoder.encode(e, r);
            if (enc.mem()) return enc;
        }
    }

    private static Encoding pushSreg(Entry e, RandomGenerator r) {
        ByteArrayOutputStream b = new ByteArrayOutputStream();
        boolean p66 = r.nextInt(3) == 0;
        if (p66) b.write(0x66);
        int rex = r.nextInt(3) == 0 ? 0x40 | r.nextInt(16) : 0;
        if (rex != 0) b.write(rex);
        b.write(0x0F);
        b.write(e.opcode());
        long[] forced = new long[16];
        // RSP inside the window, sometimes misaligned.
        forced[4] = HostHarness.DATA_ADDR + 0x900 + (r.nextBoolean() ? r.nextInt(0x20) * 8 : r.nextInt(0x100));
        int size = (rex & 8) != 0 ? 8 : p66 ? 2 : 8;
        return new Encoding(b.toByteArray(), size, false, -1, -1, 0, rex, 0, -1, 1 << 4, forced);
    }

    /** The privileged forms: register-only semantics where the SDM ignores mod, memory-only where reg forms are other instructions. */
    private static Encoding cpl3(Entry e, RandomGenerator r) {
        if (e.map() == MAP_0F) {
            switch (e.opcode()) {
                case 0x20, 0x21, 0x22, 0x23 -> {
                    // MOV CR/DR: mod is ignored (always a register); every CR/DR number, invalid ones are #UD.
                    return register(e, r, r.nextInt(8), r.nextInt(8), true);
                }
                case 0x01 -> {
                    // 0F 01 /2 and /3 register forms are XGETBV/XSETBV and VMMCALL (excluded); /7 register forms other
                    // than SWAPGS are RDTSCP (excluded) and AMD's MONITORX/MWAITX/CLZERO/RDPRU/INVLPGB.
                    if (e.reg() == 7 && r.nextInt(3) == 0) return register(e, r, 7, 0, false);
                    return memoryForm(e, r);
                }
                default -> { }
            }
        }
        return Encoder.encode(e, r);
    }

    /** Rewrites ModRM.reg (bits 5:3) of an Encoder encoding. */
    private static Encoding withReg(Encoding enc, Entry e, int reg) {
        byte[] b = enc.bytes().clone();
        int at = modrmIndex(b, e);
        b[at] = (byte) ((b[at] & ~0x38) | (reg & 7) << 3);
        int regField = (enc.regField() & 8) | (reg & 7);
        return new Encoding(b, enc.opSize(), enc.mem(), regField, enc.rmReg(), enc.opcodeReg(), enc.rex(), enc.imm(),
                enc.eaOffset(), enc.forcedRegs(), enc.forced());
    }

    /** Index of the ModRM byte: after legacy prefixes, REX, the map escape and the opcode. */
    static int modrmIndex(byte[] b, Entry e) {
        int i = 0;
        while (isLegacyPrefix(b[i] & 0xFF)) i++;
        if ((b[i] & 0xF0) == 0x40) i++;
        if (e.map() == MAP_0F) i++;
        return i + 1;
    }

    private static boolean isLegacyPrefix(int p) {
        return p == 0x26 || p == 0x2E || p == 0x36 || p == 0x3E || p == 0x64 || p == 0x65 || p == 0x66 || p == 0x67
                || p == 0xF0 || p == 0xF2 || p == 0xF3;
    }

    // ------------------------------------------------------------------ inputs and cases

    /** The standard input, with selectors placed where the form reads them and CLFLUSH sometimes off the mapped pages. */
    static MachineState input(SplittableRandom r, Entry e, Encoding enc) {
        MachineState s = HostCpuOracleTest.input(r, e, enc);
        Kind k = kind(e);
        int memAt = enc.mem() ? enc.eaOffset() - HostHarness.WIN_OFF : -1;
        switch (k) {
            case SREG_WRITE, SEL_CHECK -> {
                int sel = selector(r);
                if (enc.mem()) putLe(s.mem, memAt, sel, 2);
                else s.gpr[enc.rmReg()] = (s.gpr[enc.rmReg()] & ~0xFFFFL) | sel;
            }
            case LSS -> {
                // m16:16/32/64: the offset, then the selector. With REX.W the selector is placed after 8 bytes,
                // and another one after 4 (what an implementation that ignores REX.W would read).
                putLe(s.mem, memAt + enc.opSize(), selector(r), 2);
                if (enc.opSize() == 8 && r.nextBoolean()) putLe(s.mem, memAt + 4, selector(r), 2);
            }
            case FENCE -> {
                // CLFLUSH is checked like a read: one case in five moves the address 1-9 pages up, off the mapped pages (#PF).
                if (enc.mem() && enc.forcedRegs() != 0 && r.nextInt(5) == 0)
                    for (int g = 0; g < 16; g++) if ((enc.forcedRegs() >> g & 1) != 0) s.gpr[g] += 0x1000;
            }
            default -> { }
        }
        return s;
    }

    /** The case, with a store of the loaded segment register appended for loads (compared in the window). */
    static OracleCase oracleCase(Entry e, int index, Encoding enc, MachineState in) {
        int seg = switch (kind(e)) {
            case SREG_WRITE -> (enc.regField() & 7) == 1 || (enc.regField() & 7) > 5 ? -1 : enc.regField() & 7;
            case LSS -> 2;
            default -> -1;
        };
        if (seg < 0) return new OracleCase(e, index, enc, in);
        byte[] code = java.util.Arrays.copyOf(enc.bytes(), enc.bytes().length + 7);
        int at = enc.bytes().length;
        long la = HostHarness.DATA_ADDR + READBACK_OFF;
        code[at] = (byte) 0x8C;                 // MOV m16, Sreg
        code[at + 1] = (byte) (seg << 3 | 4);   // [SIB]
        code[at + 2] = 0x25;                    // no base, no index: disp32
        for (int i = 0; i < 4; i++) code[at + 3 + i] = (byte) (la >>> (8 * i));
        return new OracleCase(e, index, enc, in, code, "mov [abs], " + new String[] {"es", "cs", "ss", "ds"}[seg]);
    }

    private static void putLe(byte[] m, int at, long v, int n) {
        for (int i = 0; i < n; i++) if (at + i >= 0 && at + i < m.length) m[at + i] = (byte) (v >>> (8 * i));
    }

    /**
     * The error codes compared: #GP, #SS, #TS and #NP carry a selector or IDT index (or 0) that Linux
     * passes to the signal frame unchanged. #PF's is not compared: the kernel rewrites it (it sets the
     * user bit and reports any access to a kernel address as a protection fault, arch/x86/mm/fault.c
     * set_signal_archinfo); the other vectors push none and Linux reports 0.
     */
    static boolean errorCodeCompared(int trap) {
        return trap == Exceptions.GP || trap == Exceptions.SS || trap == Exceptions.TS || trap == Exceptions.NP;
    }
}

package dev.polyvisor.cpu.oracle;

import dev.polyvisor.cpu.decode.OpcodeTable.Entry;

import java.io.ByteArrayOutputStream;
import java.io.IOException;
import java.nio.file.Files;
import java.nio.file.Path;
import java.util.random.RandomGenerator;

import static dev.polyvisor.cpu.decode.OpcodeTable.*;

/**
 * Oracle cases in 32-bit compatibility mode (SDM Vol. 1, 3.2.1; Vol. 2, 2.2.1): the harness far-jumps to
 * the Linux user 32-bit code segment (0x23, D=1, L=0) and the emulator runs the same bytes with the same
 * CS. This covers the forms that are invalid in 64-bit mode (NO64: 82 /r, INC/DEC 40-4F, DAA, DAS, AAA,
 * AAS, AAM, AAD) and a share of every other form under the 32-bit decoding rules, which 64-bit mode never
 * exercises: no REX (40-4F are INC/DEC), default operand and address size 32 also for the d64 forms, 66
 * selecting 16-bit operands, 67 selecting 16-bit addressing with the ModRM forms [BX+SI], [BP+DI],
 * [SI], [BP+disp], disp16... (SDM Vol. 2, Table 2-1), and mod=00 r/m=101 meaning disp32 rather than
 * RIP-relative. The near branches and the stack forms are encoded by {@link Flow#encode32} (targets and ESP).
 *
 * <p>What is compared differs from 64-bit cases (see {@link #GPR_MASK}): the upper halves of RAX-RDI are
 * undefined after a return from compatibility mode to 64-bit mode (SDM Vol. 1, 3.4.1.1: "the upper 32
 * bits ... are undefined"; the host clears RSP's), and R8-R15 are not architecturally reachable from the
 * code under test.
 */
final class Compat32 {
    private Compat32() {}

    /** GPRs compared for a compatibility-mode case: the low 32 bits of RAX..RDI (registers 0-7). */
    static final long GPR_MASK = 0xFFFF_FFFFL;
    static final int GPRS = 8;

    /** Share of the cases of a form valid in both modes that run in compatibility mode (1 in N). */
    static final int SHARE = 4;

    /**
     * The harness maps the data page's alias at {@link HostHarness#LOW_ADDR} for 16-bit addressing; that
     * needs vm.mmap_min_addr at or below it (Linux's default is 65536 on many distributions, 4096 here).
     */
    static final boolean LOW_WINDOW = lowWindowMappable();

    private static boolean lowWindowMappable() {
        try {
            String v = Files.readString(Path.of("/proc/sys/vm/mmap_min_addr")).trim();
            return Long.parseLong(v) <= HostHarness.LOW_ADDR;
        } catch (IOException | NumberFormatException e) {
            return false;
        }
    }

    /** True for forms that exist only outside 64-bit mode: all of their cases run in compatibility mode. */
    static boolean only(Entry e) { return e.has(NO64); }

    /** Why a form cannot run in compatibility mode here, or null if it can. */
    static String unsupported(Entry e) {
        if (Flow.covers(e) && !Flow.coversCompat(e)) return "far control transfer: 64-bit mode only (Flow)";
        if (Flow.coversCompat(e)) return null; // near transfers and the stack: Flow.encode32
        if (e.has(ENDS) && !farPointer(e) && !into(e) && !popSs(e)) return "control transfer (ENDS): the harness only runs fall-through instructions";
        switch (e.imm()) {
            case NONE, IB, IW, IZ, IV, GRP3, MOFFS -> { }
            case AP -> { if (!farPointer(e)) return "immediate kind AP is generated for JMP/CALL ptr16:16/32 only"; }
            default -> { return "immediate kind " + e.imm() + " is not generated"; }
        }
        String k = Encoder.key(e);
        if (k.startsWith("XSAVE") || k.startsWith("XRSTOR"))
            return "XSAVE area (see Encoder.unsupported)";
        return null;
    }

    /** The trailer after a compatibility-mode case: jmp far 0x33:CODE_ADDR+TRAMP_OFF (EA ptr16:32). */
    static void farJumpBack(byte[] img, int at) {
        long tramp = HostHarness.CODE_ADDR + HostHarness.TRAMP_OFF;
        img[at] = (byte) 0xEA;
        for (int i = 0; i < 4; i++) img[at + 1 + i] = (byte) (tramp >>> (8 * i));
        img[at + 5] = 0x33;
        img[at + 6] = 0;
    }

    /**
     * A flag consumer that is valid in compatibility mode: {@link FlagConsumer#pick} with its REX-prefixed
     * variants (INC/DEC there, which would change the flags) drawn again.
     */
    static FlagConsumer.Consumer consumer(RandomGenerator r, int undefinedFlags) {
        for (int i = 0; i < 8; i++) {
            FlagConsumer.Consumer c = FlagConsumer.pick(r, undefinedFlags);
            if (c == null) return null;
            if ((c.bytes()[0] & 0xF0) != 0x40) return c;
        }
        return null;
    }

    static Encoding encode(Entry e, RandomGenerator r) {
        for (;;) {
            Encoding enc = Flow.coversCompat(e) ? Flow.encode32(e, r) : tryEncode(e, r);
            if (enc.bytes().length <= 15) return enc;
        }
    }

    /** A register value whose low 32 bits are {@code low}; the upper half is garbage the CPU must ignore. */
    private static long upperGarbage(RandomGenerator r, long low) {
        return (r.nextInt(3) == 0 ? 0 : r.nextLong() & 0xFFFF_FFFF_0000_0000L) | (low & 0xFFFF_FFFFL);
    }

    /** The generic compatibility-mode encoding (prefixes, opcode, ModRM, immediate), for {@link Flow#encode32}. */
    static Encoding generic(Entry e, RandomGenerator r) { return tryEncode(e, r); }

    private static Encoding tryEncode(Entry e, RandomGenerator r) {
        int mand = e.prefix();
        boolean p66;
        if (mand == ANY) p66 = r.nextInt(3) == 0;
        else p66 = (mand == PF2 || mand == PF3) && r.nextInt(8) == 0; // ignored with F2/F3 (SDM Vol. 2, 2.1.2)
        // Outside 64-bit mode every form, d64 and f64 ones included, has the CS.D default (SDM Vol. 2, 2.2.1.2).
        int os = p66 ? 2 : 4;
        if (e.has(OP16)) os = 2;
        int opSize = e.has(BYTE) ? 1 : os;

        boolean modrm = e.has(MODRM);
        boolean mem = Encoder.memoryOperand(e, r);

        int implicit = Encoder.implicitPointers(e);
        // 67: 16-bit addressing, through the data page's alias below 64 KiB.
        boolean addr16 = (mem || implicit != 0) && LOW_WINDOW && r.nextInt(3) == 0;
        long[] forced = new long[16];
        int forcedRegs = 0;
        int target = FxImage.covers(e) ? FxImage.eaTarget(r) : Encoder.windowTarget(r); // FXSAVE/FXRSTOR: see FxImage
        long targetLa = (addr16 ? HostHarness.LOW_ADDR : HostHarness.DATA_ADDR) + target;

        ByteArrayOutputStream tail = new ByteArrayOutputStream(); // ModRM onwards
        int regField = -1, rmReg = -1;
        if (modrm) {
            int reg = e.reg() >= 0 ? e.reg() : r.nextInt(8);
            regField = reg;
            if (!mem) {
                int rm;
                do rm = r.nextInt(8); while (X87Names.inexact(e.opcode(), e.reg(), rm) && e.map() == MAP_1BYTE);
                rmReg = rm;
                tail.write(0xC0 | reg << 3 | rm);
            } else if (addr16) {
                forcedRegs = modrm16(r, reg, targetLa, tail, forced);
            } else {
                forcedRegs = modrm32(r, reg, targetLa, tail, forced);
            }
        }
        int opcodeReg = e.opcode() & 7;
        if (e.imm() == Imm.AP) return farPointer(e, r, p66, opSize);
        if (stackForm(e)) {
            // PUSHA/POPA, PUSH ES/CS/SS/DS: ESP (SS is flat) points into the window with room for 8 dwords
            // either way; the upper half of RSP is garbage that a 32-bit stack must ignore.
            forced[4] = keepLow(r, HostHarness.DATA_ADDR + 0x700 + r.nextInt(0x201), 0xFFFF_FFFFL);
            forcedRegs |= 1 << 4;
        }
        int rep = 0;
        if (implicit != 0) {
            // String instructions, XLAT, MASKMOVDQU: ESI/EDI/EBX (SI/DI/BX with 67) address the window.
            long base = addr16 ? HostHarness.LOW_ADDR : HostHarness.DATA_ADDR;
            long mask = addr16 ? 0xFFFF : 0xFFFF_FFFFL;
            if ((implicit & 1 << 6) != 0) forced[6] = keepLow(r, base + 0x7C0 + r.nextInt(0x41), mask);
            if ((implicit & 1 << 7) != 0) forced[7] = keepLow(r, base + 0x800 + r.nextInt(0x41), mask);
            if ((implicit & 1 << 3) != 0) forced[3] = keepLow(r, base + HostHarness.WIN_OFF, mask);
            forcedRegs |= implicit;
            if (Encoder.isString(e) && r.nextBoolean()) {
                rep = (e.opcode() == 0xA6 || e.opcode() == 0xA7 || e.opcode() >= 0xAE) && r.nextBoolean() ? 0xF2 : 0xF3;
                forced[1] = keepLow(r, r.nextInt(9), mask); // at most 8 iterations of 4 bytes stay in the window
                forcedRegs |= 1 << 1;
            }
        }

        long imm = Encoder.immediate(e, opSize, regField, addr16 ? 2 : 4, targetLa, r, tail);

        ByteArrayOutputStream b = new ByteArrayOutputStream();
        // ES/SS/DS overrides: flat 0x2b data segments here; FS/GS hold null selectors in this process, so an
        // access through them is #GP(0) (Cpu.linear). Not CS: a write through a code segment is #GP(0) on the
        // host, and the emulator does not check segment types on writes.
        if (mem && r.nextInt(10) == 0) b.write(new int[] {0x26, 0x36, 0x3E, 0x64, 0x65}[r.nextInt(5)]);
        if (addr16) b.write(0x67);
        if (mem && e.has(LOCKABLE) && r.nextInt(4) == 0) b.write(0xF0);
        if (p66 || mand == P66) b.write(0x66);
        if (mand == PF2 || mand == PF3) b.write(mand);
        if (rep != 0) b.write(rep);
        Encoder.writeOpcode(b, e);
        b.writeBytes(tail.toByteArray());
        return new Encoding(b.toByteArray(), opSize, mem, regField, rmReg, opcodeReg, 0, imm, mem ? target : -1,
                forcedRegs, forced);
    }

    /** The compatibility-mode-only stack forms, whose ESP the generator points into the window. */
    static boolean stackForm(Entry e) {
        String k = Encoder.key(e);
        return e.has(NO64) && (k.equals("PUSHA") || k.equals("POPA") || k.equals("PUSH") || k.equals("POP") || farPointer(e));
    }

    /**
     * INTO (CE): #OF when OF=1, a trap through the IDT's DPL-3 gate 4 (Linux: SIGSEGV, trapno 4, RIP after
     * the INTO), which the emulator delivers through {@link LinuxUserEnvironment}; nothing when OF=0.
     */
    static boolean into(Entry e) { return e.map() == MAP_1BYTE && e.opcode() == 0xCE && e.has(NO64); }

    /** POP SS (17): ENDS for its interrupt shadow; the selector is checked as for POP DS (RPL = DPL = CPL). */
    static boolean popSs(Entry e) { return e.map() == MAP_1BYTE && e.opcode() == 0x17 && e.has(NO64); }

    /** JMP/CALL ptr16:16/32 (EA, 9A): valid outside 64-bit mode only. */
    static boolean farPointer(Entry e) {
        return e.map() == MAP_1BYTE && (e.opcode() == 0xEA || e.opcode() == 0x9A) && e.imm() == Imm.AP;
    }

    /**
     * Selectors for segment loads and far transfers under the Linux GDT ({@link LinuxGdt}): the user
     * segments with every RPL, null selectors (valid for DS/ES), kernel DPL-0 segments, the TSS, the empty
     * LDT/TLS slots, LDT selectors (no LDT) and selectors beyond the GDT limit. Never 0x78-0x7F: the per-CPU
     * entry's limit is the host CPU number. Never the null selectors 1-3: a host interrupt that lands between
     * the load and the MOV r32,Sreg that shows it returns through IRET, which may replace a null selector
     * with RPL != 0 by 0 (seen once in a 2,000,000-case run: DS=1 read back as 0), so the result is not
     * deterministic.
     */
    static int selector(RandomGenerator r) {
        int[] pick = {0x2B, 0x2B, 0x2B, 0x28, 0x29, 0x2A, 0x23, 0x20, 0x33, 0x31, 0, 0, 0x08, 0x10, 0x18, 0x1B,
                0x40, 0x50, 0x63, 0x2F, 0x0C, 0x80, 0x83};
        if (r.nextInt(8) != 0) return pick[r.nextInt(pick.length)];
        int s;
        do s = r.nextInt(0x10000); while ((s & 0xFFF8) == 0x78 || s >= 1 && s <= 3);
        return s;
    }

    /**
     * JMP/CALL ptr16:32 (ptr16:16 with 66). Targets: the end of the instruction in the same 32-bit code
     * segment (the case then completes through the harness's trailer), an INT3 of the code page through
     * 0x23 or through the 64-bit segment 0x33 (a #BP trap after the mode switch), an unmapped offset
     * (#PF on the fetch), or another selector (#GP, #NP). With 66 the 16-bit offset reaches only the
     * no-execute low alias of the data page. ESP points into the window for CALL's pushes.
     */
    private static Encoding farPointer(Entry e, RandomGenerator r, boolean p66, int opSize) {
        int offLen = p66 ? 2 : 4;
        int len = (p66 ? 1 : 0) + 1 + offLen + 2;
        long end = HostHarness.CODE_ADDR + HostHarness.CODE_OFF + len;
        int sel;
        long off;
        switch (r.nextInt(6)) {
            case 0, 1 -> { sel = 0x23 | (r.nextInt(4) == 0 ? 0 : 3); off = end; }
            case 2 -> { sel = r.nextBoolean() ? 0x23 : 0x33; off = HostHarness.CODE_ADDR + int3Offset(r, len); }
            case 3 -> { sel = 0x23; off = r.nextBoolean() ? 0x3000_0000L + r.nextInt(0x1000) : HostHarness.LOW_ADDR + r.nextInt(0x1000); }
            default -> {
                sel = selector(r);
                // Not the end through the 64-bit segment: the host would run the compatibility-mode trailer in
                // 64-bit mode (#UD), while the emulator stops at the trailer.
                boolean code64 = (sel & 0xFFFC) == 0x30;
                off = !code64 && r.nextBoolean() ? end : HostHarness.CODE_ADDR + int3Offset(r, len);
            }
        }
        ByteArrayOutputStream b = new ByteArrayOutputStream();
        if (p66) b.write(0x66);
        b.write(e.opcode());
        Encoder.writeLe(b, off, offLen);
        Encoder.writeLe(b, sel, 2);
        long[] forced = new long[16];
        forced[4] = keepLow(r, HostHarness.DATA_ADDR + 0x700 + r.nextInt(0x201), 0xFFFF_FFFFL);
        return new Encoding(b.toByteArray(), opSize, false, -1, -1, e.opcode() & 7, 0, off | (long) sel << 32, -1,
                1 << 4, forced);
    }

    /** An offset in the code page holding INT3: not the case's bytes, its trailer or the trampoline. */
    private static int int3Offset(RandomGenerator r, int len) {
        for (;;) {
            int o = r.nextInt(4096);
            if (o >= HostHarness.CODE_OFF && o < HostHarness.CODE_OFF + len + 8) continue;
            if (o >= HostHarness.TRAMP_OFF && o < HostHarness.TRAMP_OFF + 32) continue;
            return o;
        }
    }

    /**
     * POP ES/DS and LES/LDS: puts a {@link #selector} where the instruction reads it, and returns the
     * consumer "MOV r32, Sreg" that makes the loaded selector visible in a compared register; null for
     * other forms.
     */
    static FlagConsumer.Consumer segmentLoad(Entry e, Encoding enc, MachineState in, RandomGenerator r) {
        if (!e.has(NO64) || e.map() != MAP_1BYTE) return null;
        int seg;
        int at; // window offset of the selector
        switch (e.opcode()) {
            case 0x07, 0x17, 0x1F -> { // POP ES, POP SS, POP DS: the selector is the low word of the stack slot
                seg = e.opcode() == 0x07 ? 0 : e.opcode() == 0x17 ? 2 : 3;
                at = (int) ((in.gpr[4] & 0xFFFF_FFFFL) - HostHarness.DATA_ADDR) - HostHarness.WIN_OFF;
            }
            case 0xC4, 0xC5 -> { // LES, LDS: offset (2 or 4 bytes), then the selector
                seg = e.opcode() == 0xC4 ? 0 : 3;
                at = enc.eaOffset() - HostHarness.WIN_OFF + enc.opSize();
            }
            default -> { return null; }
        }
        int sel = selector(r);
        if (at >= 0 && at + 1 < in.mem.length) {
            in.mem[at] = (byte) sel;
            in.mem[at + 1] = (byte) (sel >>> 8);
        }
        int rm = new int[] {0, 1, 2, 3, 5, 6, 7}[r.nextInt(7)];
        return new FlagConsumer.Consumer(new byte[] {(byte) 0x8C, (byte) (0xC0 | seg << 3 | rm)},
                "MOV r32, " + (seg == 0 ? "ES" : seg == 2 ? "SS" : "DS"));
    }

    private static long keepLow(RandomGenerator r, long v, long mask) {
        return (r.nextLong() & ~mask) | (v & mask);
    }

    /**
     * 32-bit ModRM/SIB without REX (SDM Vol. 2, Tables 2-2 and 2-3): disp32 (mod 00 r/m 101, not
     * RIP-relative here), SIB without base or index, base (+disp8/disp32), base+index*scale(+disp).
     */
    private static int modrm32(RandomGenerator r, int reg, long targetLa, ByteArrayOutputStream tail, long[] forced) {
        int shape = r.nextInt(10);
        if (shape == 0) {
            tail.write(reg << 3 | 5);
            Encoder.writeLe(tail, targetLa, 4);
            return 0;
        }
        if (shape == 1) {
            tail.write(reg << 3 | 4);
            tail.write(4 << 3 | 5);
            Encoder.writeLe(tail, targetLa, 4);
            return 0;
        }
        if (shape <= 6) {
            int base = r.nextInt(8);
            int mod = shape <= 3 ? 0 : shape <= 5 ? 1 : 2;
            if (mod == 0 && base == 5) mod = 1; // [ebp] needs a displacement
            long disp = mod == 0 ? 0 : mod == 1 ? r.nextInt(256) - 128 : r.nextInt(1024) - 512;
            tail.write(mod << 6 | reg << 3 | (base == 4 ? 4 : base));
            if (base == 4) tail.write(4 << 3 | 4); // SIB: base esp, no index
            if (mod == 1) tail.write((int) disp);
            else if (mod == 2) Encoder.writeLe(tail, disp, 4);
            forced[base] = upperGarbage(r, targetLa - disp);
            return 1 << base;
        }
        int base = r.nextInt(8), index;
        do index = r.nextInt(8); while (index == 4 || index == base);
        int scale = r.nextInt(4);
        int mod = shape == 7 ? 0 : shape == 8 ? 1 : 2;
        if (mod == 0 && base == 5) mod = 1;
        long disp = mod == 0 ? 0 : mod == 1 ? r.nextInt(256) - 128 : r.nextInt(1024) - 512;
        long idx = r.nextInt(33) - 16;
        tail.write(mod << 6 | reg << 3 | 4);
        tail.write(scale << 6 | index << 3 | base);
        if (mod == 1) tail.write((int) disp);
        else if (mod == 2) Encoder.writeLe(tail, disp, 4);
        forced[base] = upperGarbage(r, targetLa - disp - (idx << scale));
        forced[index] = upperGarbage(r, idx);
        return 1 << base | 1 << index;
    }

    /**
     * 16-bit ModRM (SDM Vol. 2, Table 2-1): [BX+SI], [BX+DI], [BP+SI], [BP+DI], [SI], [DI], disp16 or
     * [BP+disp], [BX], each with disp8/disp16. The sum wraps at 64 KiB, so the index register gets any
     * 16-bit value and the base makes up the rest; bits 16-63 of both are garbage the CPU must ignore.
     */
    private static int modrm16(RandomGenerator r, int reg, long targetLa, ByteArrayOutputStream tail, long[] forced) {
        int rm = r.nextInt(8);
        int mod = r.nextInt(3);
        if (mod == 0 && rm == 6) { // disp16 absolute
            tail.write(reg << 3 | 6);
            Encoder.writeLe(tail, targetLa, 2);
            return 0;
        }
        long disp = mod == 0 ? 0 : mod == 1 ? r.nextInt(256) - 128 : (r.nextBoolean() ? r.nextInt(0x10000) : r.nextInt(1024) - 512);
        tail.write(mod << 6 | reg << 3 | rm);
        if (mod == 1) tail.write((int) disp);
        else if (mod == 2) Encoder.writeLe(tail, disp, 2);
        int base = switch (rm) { case 0, 1, 7 -> 3; case 2, 3, 6 -> 5; case 4 -> 6; default -> 7; };
        int index = switch (rm) { case 0, 2 -> 6; case 1, 3 -> 7; default -> -1; };
        long idx = index < 0 ? 0 : r.nextInt(4) == 0 ? r.nextInt(0x10000) : r.nextInt(33) - 16;
        forced[base] = keepLow(r, targetLa - disp - idx, 0xFFFF);
        int regs = 1 << base;
        if (index >= 0) {
            forced[index] = keepLow(r, idx, 0xFFFF);
            regs |= 1 << index;
        }
        return regs;
    }
}

package dev.polyvisor.cpu.oracle;

import dev.polyvisor.cpu.Flags;
import dev.polyvisor.cpu.decode.OpcodeTable;
import dev.polyvisor.cpu.decode.OpcodeTable.Entry;

import java.io.ByteArrayOutputStream;
import java.util.random.RandomGenerator;

import static dev.polyvisor.cpu.decode.OpcodeTable.*;

/**
 * Oracle cases for control transfers and the stack in 64-bit mode at CPL 3 (SDM Vol. 1, 6.2-6.5; Vol. 2
 * JMP, Jcc, CALL, RET, LOOP, JrCXZ, PUSH, POP, PUSHF, POPF, ENTER, LEAVE, far RET/JMP/CALL, IRET). The near
 * transfers and the stack forms also run a {@link Compat32#SHARE} of their cases in 32-bit compatibility mode
 * ({@link #encode32}: 32-bit EIP and ESP, see the comment there); far RET/JMP/CALL and IRET run in 64-bit mode only.
 *
 * <p>Landing: the harness fills the code page with INT3, so a taken branch to anywhere in it ends in a
 * #BP trap with RIP after the INT3 (the emulator fixture does the same, see {@link EmulatedHost}). Branch
 * targets are drawn mostly inside the code page before and after the instruction, never inside the
 * instruction itself (a loop the host would spin in) nor inside the return trailer; the trailer's first byte
 * is a valid target (it behaves as a fall-through). Other targets: the data page (no-execute: #PF on the
 * fetch), unmapped pages around the harness's pages and low memory (#PF, CR2 = target), non-canonical
 * addresses (#GP(0) at the branch) and the kernel half (#PF), never the vsyscall page (Linux would
 * emulate a call there).
 *
 * <p>Stack: RSP is forced into the compared window (misaligned in some cases), or now and then to an
 * unmapped, a page-boundary or a non-canonical address for the #PF and #SS paths; values popped by RET,
 * RETF and IRET are planted at RSP: code-page targets, selectors (0x33 mostly; 0x23, null, kernel DPL-0
 * selectors, the TSS, LDT selectors and selectors beyond the 16-entry GDT for the #GP(selector) paths),
 * RFLAGS images, and garbage. RFLAGS images popped by POPF and IRET never have TF set (the emulator has
 * no single-step trap yet); AC, ID, NT, DF and the arithmetic flags vary, and IF and IOPL vary too, which
 * CPL 3 must silently keep. Inputs also start with AC, NT or ID set now and then (IRET with NT=1 is #GP).
 *
 * <p>AMD behaviour (the emulated CPUID model is AMD, as is the host): in 64-bit mode a 66-prefixed near
 * branch (JMP, Jcc, CALL, RET, LOOP, JrCXZ) has a 16-bit operand size and truncates RIP to 16 bits
 * (Intel ignores 66 there).
 */
final class Flow {
    private Flow() {}

    enum Kind { REL, IND, RET, STACK, POPF, ENTER, LEAVE, FAR_RET, IRET, FAR_MEM }

    /** The family of a covered form, or null: the oracle handles everything else with {@link Encoder}. */
    static Kind kind(Entry e) {
        int op = e.opcode();
        if (e.map() == MAP_0F) return op >= 0x80 && op <= 0x8F ? Kind.REL : null;
        if (e.map() != MAP_1BYTE) return null;
        if (op >= 0x70 && op <= 0x7F || op == 0xEB || op == 0xE9 || op == 0xE8 || op >= 0xE0 && op <= 0xE3) return Kind.REL;
        if (op >= 0x50 && op <= 0x5F || op == 0x68 || op == 0x6A || op == 0x9C) return Kind.STACK;
        if (op == 0x8F && e.reg() == 0) return Kind.STACK;
        return switch (op) {
            case 0xFF -> switch (e.reg()) {
                case 2, 4 -> Kind.IND;
                case 6 -> Kind.STACK;
                case 3, 5 -> Kind.FAR_MEM;
                default -> null;
            };
            case 0xC3, 0xC2 -> Kind.RET;
            case 0x9D -> Kind.POPF;
            case 0xC8 -> Kind.ENTER;
            case 0xC9 -> Kind.LEAVE;
            case 0xCA, 0xCB -> Kind.FAR_RET;
            case 0xCF -> Kind.IRET;
            default -> null;
        };
    }

    static boolean covers(Entry e) { return kind(e) != null && !e.has(NO64); }

    /** Covered forms that also run in 32-bit compatibility mode (see {@link #encode32}): the near transfers and the stack. */
    static boolean coversCompat(Entry e) {
        Kind k = kind(e);
        return covers(e) && k != Kind.FAR_RET && k != Kind.IRET && k != Kind.FAR_MEM;
    }

    /** Forms that may leave the instruction: no flag consumer is appended to them. */
    static boolean transfersControl(Entry e) {
        Kind k = kind(e);
        return k != null && k != Kind.STACK && k != Kind.POPF && k != Kind.ENTER && k != Kind.LEAVE;
    }

    /** RFLAGS bits compared for these forms on top of {@link Undefined#COMPARED_FLAGS} (POPF, IRET, PUSHF). */
    static final long SYSTEM_FLAGS = Flags.TF | Flags.IF | Flags.IOPL | Flags.NT | Flags.AC | Flags.ID | Flags.VIF | Flags.VIP;

    static final long CODE_LO = HostHarness.CODE_ADDR, CODE_HI = HostHarness.CODE_ADDR + 0x1000;
    static final long INSN = HostHarness.CODE_ADDR + HostHarness.CODE_OFF;
    /** Stack pointers are drawn in [STACK_LO, STACK_HI) of the data page (inside the window). */
    static final int STACK_LO = HostHarness.WIN_OFF + 0x200, STACK_HI = HostHarness.WIN_OFF + 0x3F0;

    // ------------------------------------------------------------------ encodings

    static Encoding encode(Entry e, RandomGenerator r) {
        Kind k = kind(e);
        Encoding enc = switch (k) {
            case REL -> rel(e, r);
            case ENTER -> enter(r);
            case LEAVE -> leave(Encoder.encodeGeneric(e, r), r);
            default -> Encoder.encodeGeneric(e, r);
        };
        return withStack(e, enc, r);
    }

    /** Operand size of a near branch in 64-bit mode on AMD: 64, or 16 with 66 and no REX.W. */
    static int branchSize(boolean p66, boolean w) { return p66 && !w ? 2 : 8; }

    /** Jcc, JMP, CALL rel8/rel16/rel32, LOOPcc, JrCXZ: prefixes, opcode and a displacement aimed at a target. */
    private static Encoding rel(Entry e, RandomGenerator r) {
        boolean p66 = r.nextInt(8) == 0;
        boolean loop = e.map() == MAP_1BYTE && e.opcode() >= 0xE0 && e.opcode() <= 0xE3;
        boolean p67 = r.nextInt(loop ? 3 : 10) == 0;
        boolean rex = r.nextInt(4) == 0;
        int rexByte = rex ? 0x40 | r.nextInt(16) : 0;
        boolean w = (rexByte & 8) != 0;
        int size = branchSize(p66, w);
        int dispLen = e.imm() == Imm.IB ? 1 : size == 2 ? 2 : 4;
        ByteArrayOutputStream b = new ByteArrayOutputStream();
        if (r.nextInt(10) == 0) b.write(r.nextBoolean() ? 0x2E : 0x3E); // branch hints: no effect
        if (p67) b.write(0x67);
        if (p66) b.write(0x66);
        if (rex) b.write(rexByte);
        if (e.map() == MAP_0F) b.write(0x0F);
        b.write(e.opcode());
        int len = b.size() + dispLen;
        long next = INSN + len;
        long disp;
        if (size == 2) {
            disp = Inputs.immediate(r, dispLen); // RIP is truncated to 16 bits: a low, unmapped page
        } else {
            long target = dispLen == 1 ? nearTarget(r, next) : target(r, next, true);
            disp = target - next;
        }
        for (int i = 0; i < dispLen; i++) b.write((int) (disp >>> (8 * i)));
        long imm = dispLen == 1 ? (byte) disp : dispLen == 2 ? (short) disp : (int) disp;
        int forcedRegs = 0;
        long[] forced = new long[16];
        boolean jrcxz = loop && e.opcode() == 0xE3;
        if (loop && r.nextInt(jrcxz ? 2 : 3) == 0) { // counts that end the loop, or run JrCXZ's both ways
            forced[1] = jrcxz && r.nextBoolean() ? 0
                    : (r.nextBoolean() ? r.nextLong() & ~0xFFFF_FFFFL : 0) | new long[] {0, 1, 2, 0x1_0000_0000L, 0xFFFF_FFFFL}[r.nextInt(5)];
            forcedRegs |= 1 << 1;
        }
        return new Encoding(b.toByteArray(), size, false, -1, -1, -1, rexByte, imm, -1, forcedRegs, forced);
    }

    /** ENTER Iw, Ib: the nesting level mostly 0-31 (it is taken modulo 32), the allocation size anything. */
    private static Encoding enter(RandomGenerator r) {
        boolean p66 = r.nextInt(5) == 0;
        boolean rex = r.nextInt(4) == 0;
        int rexByte = rex ? 0x40 | r.nextInt(16) : 0;
        int size = p66 && (rexByte & 8) == 0 ? 2 : 8;
        int alloc = switch (r.nextInt(4)) {
            case 0 -> 0;
            case 1 -> r.nextInt(64);
            case 2 -> 0xFFFF - r.nextInt(16);
            default -> r.nextInt(4) == 0 ? r.nextInt(0x10000) : r.nextInt(0x700); // mostly a frame inside the page
        };
        int level = r.nextInt(4) == 0 ? r.nextInt(256) : r.nextInt(3) == 0 ? r.nextInt(3) : r.nextInt(32);
        ByteArrayOutputStream b = enterBytes(p66, rex ? rexByte : 0, alloc, level);
        long[] forced = new long[16];
        // The frame pointers copied from [rBP - size*i], i < level, lie inside the window (mostly).
        int lv = level & 31;
        int lo = Math.max(HostHarness.WIN_OFF, HostHarness.WIN_OFF + size * lv);
        forced[5] = r.nextInt(10) == 0 ? oddStack(r) : HostHarness.DATA_ADDR + lo + r.nextInt(HostHarness.WIN_OFF + MachineState.WINDOW - lo);
        // The pushes (level + 1 of them) stay inside the window too.
        int need = size * (lv + 1);
        forced[4] = HostHarness.DATA_ADDR + Math.max(STACK_LO, HostHarness.WIN_OFF + need) + r.nextInt(STACK_HI - Math.max(STACK_LO, HostHarness.WIN_OFF + need));
        return new Encoding(b.toByteArray(), size, false, -1, -1, -1, rexByte, alloc | (long) level << 16, -1, 1 << 4 | 1 << 5, forced);
    }

    /** LEAVE: rBP (the new stack pointer) mostly in the window, sometimes at an edge or non-canonical. */
    private static Encoding leave(Encoding enc, RandomGenerator r) {
        long[] f = enc.forced().clone();
        f[5] = r.nextInt(8) == 0 ? oddStack(r) : windowStack(r);
        return new Encoding(enc.bytes(), enc.opSize(), enc.mem(), enc.regField(), enc.rmReg(), enc.opcodeReg(), enc.rex(),
                enc.imm(), enc.eaOffset(), enc.forcedRegs() | 1 << 5, f);
    }

    /** Forces RSP (unless the memory operand already uses it) for every covered form. */
    private static Encoding withStack(Entry e, Encoding enc, RandomGenerator r) {
        if ((enc.forcedRegs() >> 4 & 1) != 0) return enc;
        long[] f = enc.forced().clone();
        f[4] = r.nextInt(12) == 0 ? oddStack(r) : windowStack(r);
        return new Encoding(enc.bytes(), enc.opSize(), enc.mem(), enc.regField(), enc.rmReg(), enc.opcodeReg(), enc.rex(),
                enc.imm(), enc.eaOffset(), enc.forcedRegs() | 1 << 4, f);
    }

    private static long windowStack(RandomGenerator r) {
        long sp = HostHarness.DATA_ADDR + STACK_LO + r.nextInt((STACK_HI - STACK_LO) / 8) * 8;
        return r.nextInt(6) == 0 ? sp + 1 + r.nextInt(7) : sp;
    }

    /** Stack pointers that fault or sit at an edge: unmapped, page ends, non-canonical, the code page. */
    private static long oddStack(RandomGenerator r) {
        return switch (r.nextInt(9)) {
            // Straddling the data page's ends: some slots of a frame mapped, some not (shows the read order).
            case 7 -> HostHarness.DATA_ADDR - 2 * (1 + r.nextInt(10));
            case 8 -> HostHarness.DATA_ADDR + 0x1000 - 2 * (1 + r.nextInt(20));
            case 0 -> HostHarness.DATA_ADDR;                          // pushes fault, pops read the page start
            case 1 -> HostHarness.DATA_ADDR + 0x1000;                 // pushes write the page end, pops fault
            case 2 -> HostHarness.CODE_ADDR + 0x3000 + 8 * r.nextInt(512); // unmapped
            case 3 -> 0x0000_8000_0000_0000L + 8 * r.nextInt(4);      // non-canonical (or just above the edge)
            case 4 -> 0xFFFF_8000_0000_0000L - 8 * r.nextInt(4);      // just below the upper half: non-canonical
            case 5 -> r.nextLong() | 1L << 62;                        // garbage, non-canonical
            default -> 0x0000_7FFF_FFFF_F000L + 8 * r.nextInt(4);     // canonical, unmapped, near the edge
        };
    }

    // ------------------------------------------------------------------ targets

    /** A target for a rel8 branch: within 127 bytes, in the code page, outside the instruction and the trailer. */
    private static long nearTarget(RandomGenerator r, long next) {
        int len = (int) (next - INSN);
        for (;;) {
            long t = r.nextInt(5) == 0 ? next : next - 128 + r.nextInt(256);
            if (landing(t, len)) return t;
        }
    }

    /** True when {@code t} is a code-page byte the harness leaves INT3 (or the trailer's first byte). */
    static boolean landing(long t, int len) {
        long next = INSN + len;
        if (t == next) return true;
        return t >= CODE_LO && t < CODE_HI && (t < INSN || t >= next + HostHarness.TRAILER);
    }

    /** ENTER Iw, Ib with an optional 66 and REX byte (0: none). */
    private static ByteArrayOutputStream enterBytes(boolean p66, int rexByte, int alloc, int level) {
        ByteArrayOutputStream b = new ByteArrayOutputStream();
        if (p66) b.write(0x66);
        if (rexByte != 0) b.write(rexByte);
        b.write(0xC8);
        b.write(alloc);
        b.write(alloc >>> 8);
        b.write(level);
        return b;
    }

    /** The fall-through (one time in six) or a code-page byte that {@code ok} accepts as a landing. */
    private static long landingByte(RandomGenerator r, long next, java.util.function.LongPredicate ok) {
        for (;;) {
            long t = r.nextInt(6) == 0 ? next : CODE_LO + r.nextInt(0x1000);
            if (ok.test(t)) return t;
        }
    }

    /** Case 6: the no-execute data page; case 7: the unmapped pages beside the code page (#PF on the fetch). */
    private static long pageFaultTarget(RandomGenerator r, int k) {
        return k == 6 ? HostHarness.DATA_ADDR + r.nextInt(0x1000)
                : HostHarness.CODE_ADDR + (r.nextBoolean() ? 0x1000 : -0x1000) + r.nextInt(0x1000);
    }

    /**
     * A branch target: mostly a landing byte in the code page; else (with {@code rel32Reach}) an address a
     * rel32 reaches from the code page, or (without) any 64-bit address.
     */
    static long target(RandomGenerator r, long next, boolean rel32Reach) {
        int len = (int) (next - INSN);
        int k = r.nextInt(10);
        if (k < 6) return landingByte(r, next, t -> landing(t, len));
        return switch (k) {
            case 6, 7 -> pageFaultTarget(r, k);
            case 8 -> rel32Reach ? r.nextInt(0x10000) : nonCanonical(r);   // low memory / non-canonical: #GP
            default -> rel32Reach ? HostHarness.CODE_ADDR + 0x7FFF_0000L + r.nextInt(0x10000) : farAddress(r);
        };
    }

    static long nonCanonical(RandomGenerator r) {
        return switch (r.nextInt(3)) {
            case 0 -> 0x0000_8000_0000_0000L + r.nextInt(0x100);
            case 1 -> 0xFFFF_7FFF_FFFF_FF00L + r.nextInt(0x100);
            default -> r.nextLong() & 0x7FFF_FFFF_FFFF_FFFFL | 1L << 60;
        };
    }

    /** Any canonical address away from the harness: user-half unmapped, or kernel half (not the vsyscall page). */
    static long farAddress(RandomGenerator r) {
        long v = r.nextBoolean() ? (r.nextLong() >>> 17) | 0x100_0000_0000L : 0xFFFF_8000_0000_0000L | r.nextLong() >>> 18;
        if ((v & ~0xFFFL) == 0xFFFF_FFFF_FF60_0000L) v = 0xFFFF_8000_0000_0000L;
        return v;
    }

    // ------------------------------------------------------------------ inputs

    /** Adjusts the generic input of a covered form: flags, planted stack values and branch targets. */
    static void input(RandomGenerator r, Entry e, Encoding enc, MachineState s) {
        Kind k = kind(e);
        if (k == null) return;
        if (s.compat) { input32(r, e, k, enc, s); return; }
        // System flags in the input: AC, NT, ID (TF never: no single-step in the emulator yet).
        // AC only for PUSHF with an aligned stack: with AC set the host raises #AC on a misaligned access at CPL 3
        // (Linux sets CR0.AM), which the emulator does not model.
        boolean pushf = e.map() == MAP_1BYTE && e.opcode() == 0x9C;
        if (r.nextInt(4) == 0) s.rflags |= (pushf && (s.gpr[4] & 7) == 0 && r.nextBoolean() ? Flags.AC : 0) | (r.nextBoolean() ? Flags.ID : 0);
        if (r.nextInt(8) == 0) s.rflags |= Flags.NT;
        long sp = s.gpr[4];
        // A frame popped by RETF or IRET (5 slots) lies wholly in the window, so that no RFLAGS image comes
        // from the page's fill pattern (which could set TF).
        if ((k == Kind.IRET || k == Kind.FAR_RET) && inWindow(sp) && !inWindow(sp + 5L * enc.opSize() - 1)) {
            sp -= 0x40;
            s.gpr[4] = sp;
        }
        long next = INSN + enc.bytes().length;
        switch (k) {
            case IND -> {
                long t = target(r, next, false);
                if (enc.mem()) put(s, enc.eaOffset(), enc.opSize(), t);
                else if (enc.rmReg() != 4) s.gpr[enc.rmReg()] = t;
            }
            case RET -> put(s, sp, enc.opSize() == 2 ? 2 : 8, target(r, next, false));
            case POPF -> put(s, sp, enc.opSize(), flagsImage(r));
            case FAR_RET -> farFrame(r, s, sp, farSize(enc), next, false);
            case IRET -> farFrame(r, s, sp, farSize(enc), next, true);
            case FAR_MEM -> {
                int size = farMemSize(enc);
                long at = HostHarness.DATA_ADDR + enc.eaOffset();
                int sel = selector(r);
                put(s, at, size, farTarget(r, next, size, sel));
                put(s, at + size, 2, sel);
            }
            default -> { }
        }
    }

    /**
     * Takes NT out of a generated input: the RFLAGS the case starts with and the image a POPF or IRET pops. For a
     * host that drops NT when it interrupts a user process ({@link HostCapabilities#ntKept}), where what a case
     * sees of NT would depend on interrupt timing. The draws are made as usual, so the other cases do not change.
     */
    static void clearNt(Entry e, Encoding enc, MachineState s) {
        s.rflags &= ~(long) Flags.NT;
        Kind k = kind(e);
        long sp = s.compat ? s.gpr[4] & 0xFFFF_FFFFL : s.gpr[4];
        long image = k == Kind.POPF ? sp : k == Kind.IRET && !s.compat ? sp + 2L * farSize(enc) : -1;
        long off = image + 1 - HostHarness.DATA_ADDR - HostHarness.WIN_OFF; // NT is bit 6 of the image's second byte
        if (image >= 0 && off >= 0 && off < MachineState.WINDOW) s.mem[(int) off] &= (byte) ~(Flags.NT >>> 8);
    }

    /** Operand size of far transfers and IRET: REX.W 8, 66 2, else 4 (see {@link Encoder}'s rules). */
    static int farSize(Encoding enc) { return enc.opSize(); }

    /** FF /3 and FF /5 on AMD: REX.W gives m16:32 like no prefix (see FarControlOps). */
    static int farMemSize(Encoding enc) { return enc.opSize() == 8 ? 4 : enc.opSize(); }

    /**
     * A far target offset. With the 32-bit code selector (compatibility mode) never the trailer's first byte: the
     * harness's 64-bit trailer means something else in 32-bit code.
     */
    private static long farTarget(RandomGenerator r, long next, int size, int sel) {
        long t;
        do t = target(r, next, false); while (sel == 0x23 && t == next);
        return size == 8 ? t : t & (size == 4 ? 0xFFFF_FFFFL : 0xFFFF);
    }

    /** RETF / IRET frame at RSP: RIP, CS (and RFLAGS, RSP, SS for IRET), each {@code size} bytes. */
    private static void farFrame(RandomGenerator r, MachineState s, long sp, int size, long next, boolean iret) {
        // Half of the frames are good ones (CS 0x33, SS 0x2B), so that the return itself is exercised often.
        boolean good = r.nextBoolean();
        int sel = good ? 0x33 : selector(r);
        put(s, sp, size, farTarget(r, next, size, sel));
        put(s, sp + size, size, (r.nextInt(4) == 0 ? r.nextLong() & ~0xFFFFL : 0) | sel);
        if (!iret) return;
        put(s, sp + 2L * size, size, flagsImage(r));
        put(s, sp + 3L * size, size, r.nextBoolean() ? windowStack(r) : r.nextLong());
        int ss = good ? 0x2B : switch (r.nextInt(8)) {
            case 0 -> r.nextInt(0x10000);
            case 1 -> 0;
            case 2 -> new int[] {0x18, 0x1B, 0x33, 0x2B & ~3, 0x2A, 0x80}[r.nextInt(6)];
            default -> 0x2B;
        };
        put(s, sp + 4L * size, size, (r.nextInt(4) == 0 ? r.nextLong() & ~0xFFFFL : 0) | ss);
    }

    /** Code selectors: 0x33 mostly, the 32-bit user code, and the #GP(selector) cases of the Linux GDT. */
    static int selector(RandomGenerator r) {
        return switch (r.nextInt(16)) {
            case 0 -> 0;                                 // null: #GP(0)
            case 1 -> 0x2B;                              // data segment: #GP(0x28)
            case 2 -> 0x10 | r.nextInt(4);               // kernel 64-bit code: RPL < 3 or DPL 0
            case 3 -> 0x08 | r.nextInt(4);               // kernel 32-bit code
            case 4 -> 0x80 + 8 * r.nextInt(64) | r.nextInt(4); // beyond the 16-entry GDT
            case 5 -> 0x40 | 3;                          // the TSS
            case 6 -> 0x37;                              // TI=1: there is no LDT
            case 7 -> 0x33 & ~3 | r.nextInt(3);          // 64-bit user code with RPL < 3
            case 8 -> 0x23;                              // 32-bit user code: compatibility mode
            case 9 -> 0x60 | 3;                          // an empty TLS slot
            default -> 0x33;
        };
    }

    /** An RFLAGS image for POPF or IRET: anything but TF (see the class comment). */
    static long flagsImage(RandomGenerator r) {
        long v = switch (r.nextInt(4)) {
            case 0 -> r.nextLong();
            case 1 -> r.nextInt(1 << 22);
            case 2 -> 2 | (r.nextLong() & (Flags.ARITH | Flags.DF));
            default -> 0x202 | (r.nextLong() & (Flags.ARITH | Flags.DF | Flags.AC | Flags.ID | Flags.NT | Flags.IOPL));
        };
        return v & ~(long) Flags.TF;
    }

    static boolean inWindow(long la) {
        long off = la - HostHarness.DATA_ADDR - HostHarness.WIN_OFF;
        return off >= 0 && off < MachineState.WINDOW;
    }

    /** Writes {@code size} bytes of {@code v} at linear address {@code la} when it lies in the window. */
    private static void put(MachineState s, long la, int size, long v) {
        for (int i = 0; i < size; i++) {
            long off = la + i - HostHarness.DATA_ADDR - HostHarness.WIN_OFF;
            if (off >= 0 && off < MachineState.WINDOW) s.mem[(int) off] = (byte) (v >>> (8 * i));
        }
    }

    private static void put(MachineState s, int pageOffset, int size, long v) {
        put(s, HostHarness.DATA_ADDR + pageOffset, size, v);
    }

    // ------------------------------------------------------------------ 32-bit compatibility mode

    /*
     * Compatibility mode (CS 0x23, D=1; SS 0x2b, B=1; SDM Vol. 1, 3.6 and 6.2): operand size 32, 16 with 66 (no
     * REX); EIP is 32 bits wide and wraps at 4 GiB (the branch computes (EIP + disp) mod 2^32), with a 16-bit
     * operand size the target is truncated to 16 bits (SDM Vol. 2 JMP/Jcc/CALL/RET: "IF OperandSize = 16 THEN
     * EIP <- tempEIP AND 0000FFFFH"), which the AMD host does too; the stack pointer is ESP (pushes and pops wrap at
     * 4 GiB, RSP's upper half is ignored and undefined afterwards, see Compat32.GPR_MASK). The whole 4 GiB is
     * reachable and CS is flat: targets are the INT3 bytes of the code page (not the compatibility trailer nor the
     * trampoline at TRAMP_OFF), the data page (no-execute: #PF), unmapped pages (#PF) and addresses past 4 GiB that
     * wrap to the top or the bottom of the address space (unmapped in the host process: #PF, CR2 = wrapped EIP).
     */

    /** A compatibility-mode encoding of a {@link #coversCompat} form, with ESP (and EBP, rCX) forced. */
    static Encoding encode32(Entry e, RandomGenerator r) {
        Encoding enc = switch (kind(e)) {
            case REL -> rel32(e, r);
            case ENTER -> enter32(r);
            case LEAVE -> withReg(Compat32.generic(e, r), 5, r.nextInt(8) == 0 ? oddStack32(r) : garbageHigh(r, windowStack(r)));
            default -> Compat32.generic(e, r);
        };
        if ((enc.forcedRegs() >> 4 & 1) != 0) return enc;
        return withReg(enc, 4, r.nextInt(12) == 0 ? oddStack32(r) : garbageHigh(r, windowStack(r)));
    }

    private static Encoding withReg(Encoding enc, int reg, long v) {
        long[] f = enc.forced().clone();
        f[reg] = v;
        return new Encoding(enc.bytes(), enc.opSize(), enc.mem(), enc.regField(), enc.rmReg(), enc.opcodeReg(), enc.rex(),
                enc.imm(), enc.eaOffset(), enc.forcedRegs() | 1 << reg, f);
    }

    /** Bits 32-63 garbage (now and then zero): a 32-bit stack and 32-bit EIP must ignore them. */
    private static long garbageHigh(RandomGenerator r, long low) {
        return (r.nextInt(3) == 0 ? 0 : r.nextLong() & 0xFFFF_FFFF_0000_0000L) | (low & 0xFFFF_FFFFL);
    }

    /** Jcc, JMP, CALL rel8/rel16/rel32, LOOPcc, JrCXZ in compatibility mode: 66 gives rel16 and a 16-bit IP, 67 CX. */
    private static Encoding rel32(Entry e, RandomGenerator r) {
        boolean p66 = r.nextInt(6) == 0;
        boolean loop = e.map() == MAP_1BYTE && e.opcode() >= 0xE0 && e.opcode() <= 0xE3;
        boolean p67 = r.nextInt(loop ? 3 : 10) == 0;
        int size = p66 ? 2 : 4;
        int dispLen = e.imm() == Imm.IB ? 1 : size;
        ByteArrayOutputStream b = new ByteArrayOutputStream();
        if (r.nextInt(10) == 0) b.write(r.nextBoolean() ? 0x2E : 0x3E);
        if (p67) b.write(0x67);
        if (p66) b.write(0x66);
        if (e.map() == MAP_0F) b.write(0x0F);
        b.write(e.opcode());
        int len = b.size() + dispLen;
        long next = INSN + len;
        long disp;
        if (size == 2) disp = Inputs.immediate(r, dispLen); // IP truncated to 16 bits: low memory (#PF)
        else if (dispLen == 1) disp = nearTarget(r, next) - next;
        else disp = (int) (target32(r, len) - next);          // mod 2^32: may wrap past 4 GiB either way
        for (int i = 0; i < dispLen; i++) b.write((int) (disp >>> (8 * i)));
        long imm = dispLen == 1 ? (byte) disp : dispLen == 2 ? (short) disp : (int) disp;
        int forcedRegs = 0;
        long[] forced = new long[16];
        boolean jrcxz = loop && e.opcode() == 0xE3;
        if (loop && r.nextInt(jrcxz ? 2 : 3) == 0) {
            forced[1] = garbageHigh(r, jrcxz && r.nextBoolean() ? 0
                    : (r.nextBoolean() ? r.nextInt() & 0xFFFF_0000L : 0) | new long[] {0, 1, 2, 0x1_0000L, 0xFFFFL, 0xFFFF_FFFFL}[r.nextInt(6)]);
            forcedRegs |= 1 << 1;
        }
        return new Encoding(b.toByteArray(), size, false, -1, -1, -1, 0, imm, -1, forcedRegs, forced);
    }

    /** ENTER in compatibility mode: 32-bit frames (16 with 66), EBP and ESP as {@link #enter} places them. */
    private static Encoding enter32(RandomGenerator r) {
        boolean p66 = r.nextInt(4) == 0;
        int size = p66 ? 2 : 4;
        int alloc = switch (r.nextInt(4)) {
            case 0 -> 0;
            case 1 -> r.nextInt(64);
            case 2 -> 0xFFFF - r.nextInt(16);
            default -> r.nextInt(4) == 0 ? r.nextInt(0x10000) : r.nextInt(0x700);
        };
        int level = r.nextInt(4) == 0 ? r.nextInt(256) : r.nextInt(3) == 0 ? r.nextInt(3) : r.nextInt(32);
        ByteArrayOutputStream b = enterBytes(p66, 0, alloc, level);
        long[] forced = new long[16];
        int lv = level & 31;
        int lo = HostHarness.WIN_OFF + size * lv;
        forced[5] = r.nextInt(10) == 0 ? oddStack32(r)
                : garbageHigh(r, HostHarness.DATA_ADDR + lo + r.nextInt(HostHarness.WIN_OFF + MachineState.WINDOW - lo));
        int need = size * (lv + 1);
        int spLo = Math.max(STACK_LO, HostHarness.WIN_OFF + need);
        forced[4] = garbageHigh(r, HostHarness.DATA_ADDR + spLo + r.nextInt(STACK_HI - spLo));
        return new Encoding(b.toByteArray(), size, false, -1, -1, -1, 0, alloc | (long) level << 16, -1, 1 << 4 | 1 << 5, forced);
    }

    /** 32-bit stack pointers that fault or sit at an edge; the upper half is garbage. */
    private static long oddStack32(RandomGenerator r) {
        long v = switch (r.nextInt(7)) {
            case 0 -> HostHarness.DATA_ADDR - 2 * (1 + r.nextInt(10));
            case 1 -> HostHarness.DATA_ADDR + 0x1000 - 2 * (1 + r.nextInt(20));
            case 2 -> HostHarness.DATA_ADDR;
            case 3 -> HostHarness.DATA_ADDR + 0x1000;
            case 4 -> HostHarness.CODE_ADDR + 0x3000 + 4 * r.nextInt(1024); // unmapped
            case 5 -> r.nextInt(8);                                        // pushes wrap below 0 to the top of 4 GiB
            default -> 0x1_0000_0000L - 1 - r.nextInt(8);                  // pops wrap past 4 GiB
        };
        return garbageHigh(r, v);
    }

    /** True when a compatibility-mode case may land at {@code t}: {@link #landing}, but not the trampoline. */
    private static boolean landing32(long t, int len) {
        long tramp = CODE_LO + HostHarness.TRAMP_OFF;
        return landing(t, len) && (t < tramp || t >= tramp + 32);
    }

    /** A 32-bit branch target: mostly an INT3 of the code page, else a fault anywhere in the 4 GiB. */
    static long target32(RandomGenerator r, int len) {
        long next = INSN + len;
        int k = r.nextInt(10);
        if (k < 6) return landingByte(r, next, t -> landing32(t, len));
        return switch (k) {
            case 6, 7 -> pageFaultTarget(r, k);
            case 8 -> r.nextInt(0x10000);                          // low memory (the data page's NX alias at LOW_ADDR)
            default -> r.nextBoolean() ? 0xFFFF_0000L + r.nextInt(0x10000) : 0x3000_0000L + r.nextInt(0x1000);
        };
    }

    /** Planted values for a compatibility-mode case: near return targets, POPF images, indirect targets. */
    private static void input32(RandomGenerator r, Entry e, Kind k, Encoding enc, MachineState s) {
        boolean pushf = e.map() == MAP_1BYTE && e.opcode() == 0x9C;
        if (r.nextInt(4) == 0) s.rflags |= (pushf && (s.gpr[4] & 7) == 0 && r.nextBoolean() ? Flags.AC : 0) | (r.nextBoolean() ? Flags.ID : 0);
        if (r.nextInt(8) == 0) s.rflags |= Flags.NT;
        long sp = s.gpr[4] & 0xFFFF_FFFFL;
        int len = enc.bytes().length;
        int size = enc.opSize();
        long mask = size == 2 ? 0xFFFF : 0xFFFF_FFFFL;
        switch (k) {
            case IND -> {
                long t = size == 2 ? r.nextInt(0x10000) : target32(r, len);
                if (enc.mem()) put(s, enc.eaOffset(), size, t);
                else if (enc.rmReg() != 4) s.gpr[enc.rmReg()] = size == 2 ? (s.gpr[enc.rmReg()] & ~mask) | t : garbageHigh(r, t);
            }
            case RET -> put(s, sp, size, size == 2 ? r.nextInt(0x10000) : target32(r, len));
            case POPF -> put(s, sp, size, flagsImage(r));
            default -> { }
        }
    }
}

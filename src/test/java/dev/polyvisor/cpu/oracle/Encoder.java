package dev.polyvisor.cpu.oracle;

import dev.polyvisor.cpu.decode.OpcodeTable;
import dev.polyvisor.cpu.decode.OpcodeTable.Entry;

import java.io.ByteArrayOutputStream;
import java.util.random.RandomGenerator;

import static dev.polyvisor.cpu.decode.OpcodeTable.*;

/**
 * Synthesises random valid encodings of one opcode-table entry (SDM Vol. 2, chapter 2): legacy
 * prefixes, the mandatory prefix, REX, the opcode map escape, ModRM/SIB/displacement and the
 * immediate. Operand size follows the decoder's rules (66, REX.W, D64/F64/OP16/BYTE). Memory
 * operands address the oracle's scratch window through every addressing shape: RIP-relative,
 * absolute, base, base+disp8/disp32, base+index*scale, and 32-bit addressing (67) with garbage in the
 * upper halves of the address registers; the registers used are recorded as "forced" inputs.
 */
final class Encoder {
    /** Memory operands land in [LO, HI) of the data page, inside the compared window. */
    static final int EA_LO = 0x790, EA_HI = 0x860;

    private Encoder() {}

    /** Why an entry cannot be encoded by this generator, or null if it can. */
    static String unsupported(Entry e) {
        boolean flow = Flow.covers(e); // control transfers and the stack: see Flow
        if (e.has(ENDS) && !flow) return "control transfer (ENDS): the harness only runs fall-through instructions";
        if (flow) return null;
        switch (e.imm()) {
            case NONE, IB, IW, IZ, IV, GRP3, MOFFS -> { }
            default -> { return "immediate kind " + e.imm() + " is not generated"; }
        }
        if (e.has(NO64)) return "invalid in 64-bit mode (NO64)";
        String k = key(e);
        if (k.startsWith("XSAVE") || k.startsWith("XRSTOR"))
            return "XSAVE area: larger than the compared window, and the emulated CPUID does not advertise XSAVE";
        return null;
    }

    static Encoding encode(Entry e, RandomGenerator r) {
        return Flow.covers(e) ? Flow.encode(e, r) : encodeGeneric(e, r);
    }

    /** An encoding by the generic rules of this class (also the base of {@link Flow}'s Ev and stack forms). */
    static Encoding encodeGeneric(Entry e, RandomGenerator r) {
        for (;;) {
            Encoding enc = tryEncode(e, r);
            if (enc.bytes().length <= 15) return enc;
        }
    }

    /** Whether this encoding gets a memory operand (ModRM.mod != 3), by the form's flags or at random. */
    static boolean memoryOperand(Entry e, RandomGenerator r) {
        boolean mem;
        if (e.imm() == Imm.MOFFS) mem = true;
        else if (!e.has(MODRM)) mem = false;
        else if (e.has(REG_ONLY)) mem = false;
        else if (e.has(MEM_ONLY)) mem = true;
        else mem = r.nextBoolean();
        if (X87Names.isX87(e) && e.has(MODRM)) {
            // "mem | reg" mnemonics with "-" on one side: that side is reserved in the escape tables (SDM Vol. 2
            // A.4); CPUs run undocumented aliases there (e.g. D9 D8+i as FSTP), so it is not generated.
            String[] halves = e.mnemonic().split("\\|");
            if (halves.length == 2 && halves[1].trim().equals("-")) mem = true;
            if (halves.length == 2 && halves[0].trim().equals("-")) mem = false;
        }
        return mem;
    }

    /** A memory operand's offset in the data page: inside the compared window, half of the time 16-byte aligned. */
    static int windowTarget(RandomGenerator r) {
        return EA_LO + (r.nextBoolean() ? r.nextInt(EA_HI - EA_LO) : r.nextInt((EA_HI - EA_LO) / 16) * 16);
    }

    /**
     * Appends the immediate (or the moffs address, {@code moffsLen} bytes by address size) to {@code tail} and
     * returns it (0 for none and for moffs). Iv is 8 bytes only with a 64-bit operand (MOV r64, imm64).
     */
    static long immediate(Entry e, int opSize, int regField, int moffsLen, long targetLa, RandomGenerator r,
                          ByteArrayOutputStream tail) {
        int immLen = switch (e.imm()) {
            case NONE -> 0;
            case IB -> 1;
            case IW -> 2;
            case IZ -> opSize == 2 ? 2 : 4;
            case IV -> opSize == 8 ? 8 : opSize == 2 ? 2 : opSize == 1 ? 1 : 4;
            case GRP3 -> (regField & 7) < 2 ? (opSize == 1 ? 1 : opSize == 2 ? 2 : 4) : 0;
            case MOFFS -> moffsLen;
            default -> throw new IllegalArgumentException("unsupported immediate " + e.imm()); // see unsupported()
        };
        if (e.imm() == Imm.MOFFS) {
            writeLe(tail, targetLa, immLen);
            return 0;
        }
        if (immLen == 0) return 0;
        long imm = Inputs.immediate(r, immLen);
        writeLe(tail, imm, immLen);
        return imm;
    }

    private static Encoding tryEncode(Entry e, RandomGenerator r) {
        int mand = e.prefix();
        boolean p66, w;
        if (mand == ANY) {
            int k = r.nextInt(7);
            p66 = k == 1 || k == 3 || k == 6;
            w = k == 2 || k == 3 || k == 5;
        } else {
            w = r.nextBoolean();
            // 66 is ignored when F2/F3 is the mandatory prefix (SDM Vol. 2, 2.1.2).
            p66 = (mand == PF2 || mand == PF3) && r.nextInt(8) == 0;
        }
        // Features the emulated CPUID does not advertise are masked out of the generated encodings:
        // REX.W 0F C7 /1 is CMPXCHG16B (CPUID.01H:ECX.CX16), which the model leaves #UD.
        if (key(e).equals("CMPXCHG8B")) w = false;
        int os;
        if (w) os = 8;
        else if (e.has(D64) || e.has(F64)) os = p66 ? 2 : 8; // f64 honours 66 on AMD (see Decoder)
        else os = p66 ? 2 : 4;
        if (e.has(OP16)) os = 2;
        int opSize = e.has(BYTE) ? 1 : os;

        boolean modrm = e.has(MODRM);
        boolean mem = memoryOperand(e, r);

        int rexR = 0, rexX = 0, rexB = 0;
        int implicit = implicitPointers(e);
        boolean addr32 = (mem || implicit != 0) && r.nextInt(10) == 0;
        long[] forced = new long[16];
        int forcedRegs = 0;
        // FXSAVE/FXRSTOR: see FxImage; MMX forms: see MmxForms (some operands run into the unmapped page).
        int target = FxImage.covers(e) ? FxImage.eaTarget(r) : MmxForms.covers(e) ? MmxForms.eaTarget(r) : windowTarget(r);
        long targetLa = HostHarness.DATA_ADDR + target;

        ByteArrayOutputStream tail = new ByteArrayOutputStream(); // ModRM onwards
        int regField = -1, rmReg = -1;
        int ripDispAt = -1; // offset of a RIP-relative disp32 within tail
        if (modrm) {
            int reg = e.reg() >= 0 ? e.reg() | (r.nextInt(4) == 0 ? 8 : 0) : r.nextInt(16);
            rexR = reg >> 3;
            regField = reg;
            if (!mem) {
                int rm;
                do rm = r.nextInt(16); while (X87Names.inexact(e.opcode(), e.reg(), rm & 7) && e.map() == MAP_1BYTE);
                rexB = rm >> 3;
                rmReg = rm;
                tail.write(0xC0 | (reg & 7) << 3 | (rm & 7));
            } else {
                int shape = r.nextInt(10);
                long upperB = addr32 ? r.nextLong() & 0xFFFF_FFFF_0000_0000L : 0;
                if (shape == 0) {
                    // RIP-relative: disp32 patched once the length is known.
                    tail.write((reg & 7) << 3 | 5);
                    ripDispAt = tail.size();
                    writeLe(tail, 0, 4);
                } else if (shape == 1) {
                    // Absolute disp32 through SIB with no base and no index.
                    tail.write((reg & 7) << 3 | 4);
                    tail.write(4 << 3 | 5);
                    writeLe(tail, targetLa, 4);
                } else if (shape <= 6) {
                    int base = r.nextInt(16);
                    int mod = shape <= 3 ? 0 : shape <= 5 ? 1 : 2;
                    if (mod == 0 && (base & 7) == 5) mod = 1; // [rbp]/[r13] need a displacement
                    long disp = mod == 0 ? 0 : mod == 1 ? r.nextInt(256) - 128 : r.nextInt(1024) - 512;
                    rexB = base >> 3;
                    tail.write(mod << 6 | (reg & 7) << 3 | ((base & 7) == 4 ? 4 : base & 7));
                    if ((base & 7) == 4) tail.write(4 << 3 | 4); // SIB: base rsp/r12, no index
                    if (mod == 1) tail.write((int) disp);
                    else if (mod == 2) writeLe(tail, disp, 4);
                    forced[base] = addr32 ? upperB | ((targetLa - disp) & 0xFFFF_FFFFL) : targetLa - disp;
                    forcedRegs |= 1 << base;
                } else {
                    int base = r.nextInt(16);
                    int index;
                    do index = r.nextInt(16); while (index == 4 || index == base);
                    int scale = r.nextInt(4);
                    int mod = shape == 7 ? 0 : shape == 8 ? 1 : 2;
                    if (mod == 0 && (base & 7) == 5) mod = 1;
                    long disp = mod == 0 ? 0 : mod == 1 ? r.nextInt(256) - 128 : r.nextInt(1024) - 512;
                    long idx = r.nextInt(33) - 16;
                    rexB = base >> 3;
                    rexX = index >> 3;
                    tail.write(mod << 6 | (reg & 7) << 3 | 4);
                    tail.write(scale << 6 | (index & 7) << 3 | (base & 7));
                    if (mod == 1) tail.write((int) disp);
                    else if (mod == 2) writeLe(tail, disp, 4);
                    long baseVal = targetLa - disp - (idx << scale);
                    if (addr32) {
                        forced[base] = upperB | (baseVal & 0xFFFF_FFFFL);
                        forced[index] = (r.nextLong() & 0xFFFF_FFFF_0000_0000L) | (idx & 0xFFFF_FFFFL);
                    } else {
                        forced[base] = baseVal;
                        forced[index] = idx;
                    }
                    forcedRegs |= 1 << base | 1 << index;
                }
            }
        } else {
            rexB = r.nextInt(2);
        }
        int opcodeReg = (e.opcode() & 7) | rexB << 3;
        int rep = 0;
        if (implicit != 0) {
            // Implicit memory operands (string instructions, MASKMOVDQU/MASKMOVQ, XLAT) must address the window too.
            long upper = addr32 ? r.nextLong() & 0xFFFF_FFFF_0000_0000L : 0;
            if ((implicit & 1 << 6) != 0) forced[6] = upper | HostHarness.DATA_ADDR + 0x7C0 + r.nextInt(0x41);
            if ((implicit & 1 << 7) != 0) forced[7] = upper | HostHarness.DATA_ADDR + 0x800 + r.nextInt(0x41);
            if ((implicit & 1 << 3) != 0) forced[3] = upper | HostHarness.DATA_ADDR + HostHarness.WIN_OFF;
            forcedRegs |= implicit;
            if (isString(e) && r.nextBoolean()) {
                rep = (e.opcode() == 0xA6 || e.opcode() == 0xA7 || e.opcode() >= 0xAE) && r.nextBoolean() ? 0xF2 : 0xF3;
                // At most 8 iterations of 8 bytes stay inside the window in either direction.
                forced[1] = (addr32 ? r.nextLong() & 0xFFFF_FFFF_0000_0000L : 0) | r.nextInt(9);
                forcedRegs |= 1 << 1;
            }
        }

        // Immediate (same size rules as Decoder.readImmediate).
        long imm = immediate(e, opSize, regField, addr32 ? 4 : 8, targetLa, r, tail);

        boolean rex = rexR + rexX + rexB > 0 || w || r.nextInt(4) == 0;
        ByteArrayOutputStream b = new ByteArrayOutputStream();
        if (mem && r.nextInt(10) == 0) b.write(new int[] {0x26, 0x2E, 0x36, 0x3E}[r.nextInt(4)]); // no-ops in 64-bit mode
        if (addr32) b.write(0x67);
        if (mem && e.has(LOCKABLE) && r.nextInt(4) == 0) b.write(0xF0);
        if (p66 || mand == P66) b.write(0x66);
        if (mand == PF2 || mand == PF3) b.write(mand);
        if (rep != 0) b.write(rep);
        int rexByte = rex ? 0x40 | (w ? 8 : 0) | rexR << 2 | rexX << 1 | rexB : 0;
        if (rex) b.write(rexByte);
        writeOpcode(b, e);
        int tailStart = b.size();
        b.writeBytes(tail.toByteArray());
        byte[] bytes = b.toByteArray();
        if (ripDispAt >= 0) {
            long next = HostHarness.CODE_ADDR + HostHarness.CODE_OFF + bytes.length;
            long disp = targetLa - next;
            for (int i = 0; i < 4; i++) bytes[tailStart + ripDispAt + i] = (byte) (disp >>> (8 * i));
        }
        return new Encoding(bytes, opSize, mem, regField, rmReg, opcodeReg, rexByte, imm, mem ? target : -1,
                forcedRegs, forced);
    }

    static boolean isString(Entry e) {
        int op = e.opcode();
        return e.map() == MAP_1BYTE && (op >= 0xA4 && op <= 0xA7 || op >= 0xAA && op <= 0xAF);
    }

    /** GPRs (bit n = register n) that an entry uses as implicit pointers: RSI/RDI for strings, RDI, RBX. */
    static int implicitPointers(Entry e) {
        if (isString(e)) {
            int op = e.opcode();
            if (op <= 0xA7) return 1 << 6 | 1 << 7;    // MOVS, CMPS: [RSI], [RDI]
            if (op == 0xAC || op == 0xAD) return 1 << 6; // LODS: [RSI]
            return 1 << 7;                              // STOS, SCAS: [RDI]
        }
        if (e.map() == MAP_1BYTE && e.opcode() == 0xD7) return 1 << 3; // XLAT: [RBX + AL]
        if (key(e).equals("MASKMOVDQU") || key(e).equals("MASKMOVQ")) return 1 << 7; // [RDI]
        return 0;
    }

    /** The opcode-map escape (0F, 0F 38, 0F 3A) and the opcode byte. */
    static void writeOpcode(ByteArrayOutputStream b, Entry e) {
        switch (e.map()) {
            case MAP_0F -> b.write(0x0F);
            case MAP_0F38 -> { b.write(0x0F); b.write(0x38); }
            case MAP_0F3A -> { b.write(0x0F); b.write(0x3A); }
            default -> { }
        }
        b.write(e.opcode());
    }

    static void writeLe(ByteArrayOutputStream o, long v, int n) {
        for (int i = 0; i < n; i++) o.write((int) (v >>> (8 * i)));
    }

    /** Mnemonic key for per-instruction rules: the first word, upper case ("SHL r/m, CL" gives "SHL"). */
    static String key(OpcodeTable.Entry e) {
        String m = e.mnemonic().trim();
        int sp = m.indexOf(' ');
        return (sp < 0 ? m : m.substring(0, sp)).toUpperCase(java.util.Locale.ROOT);
    }
}

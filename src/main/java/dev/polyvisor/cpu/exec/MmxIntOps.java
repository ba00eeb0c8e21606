package dev.polyvisor.cpu.exec;

import dev.polyvisor.cpu.decode.OpcodeTable;

import static dev.polyvisor.cpu.decode.OpcodeTable.*;
import static dev.polyvisor.cpu.exec.Mmx.*;
import static dev.polyvisor.cpu.exec.SseIntOps.*;

/**
 * MMX integer arithmetic, NP 0F 60-6B, 71-76 and D1-FE (SDM Vol. 1, 9.4; Vol. 2 per instruction): the
 * packed add/subtract (wrapping and saturating), multiplies, compares, logic, shifts, pack and unpack, plus
 * the SSE integer extensions (PAVGB/W, PMINUB, PMAXUB, PMINSW, PMAXSW, PMULHUW, PSADBW) and the SSE2 ones
 * (PADDQ, PSUBQ, PMULUDQ) on MMX registers. The lane arithmetic is {@link SseIntOps}': the 66-prefixed
 * XMM form of each opcode applies the same quadword function to both halves of an XMM register.
 */
public final class MmxIntOps {
    private MmxIntOps() {}

    static void mm(OpcodeTable t, String mn, int op, int width, Op f) {
        t.addPrefixed(mn + " mm, mm/m" + width * 8, MAP_0F, op, NP, MODRM | ORACLE, Imm.NONE, rm(width, f));
    }

    public static void register(OpcodeTable t) {
        // Unpacks (60-62 low halves, m32 source; 68-6A high halves, m64) and packs (63, 67, 6B). SDM Vol. 2B
        // PUNPCKLBW: the MMX low unpacks read only 32 bits from memory.
        String[] unpl = {"PUNPCKLBW", "PUNPCKLWD", "PUNPCKLDQ"};
        String[] unph = {"PUNPCKHBW", "PUNPCKHWD", "PUNPCKHDQ"};
        for (int i = 0; i < 3; i++) {
            int bits = 8 << i;
            mm(t, unpl[i], 0x60 + i, M32, (d, s, imm) -> unpackLow(d, s, bits));
            mm(t, unph[i], 0x68 + i, M64, (d, s, imm) -> unpackLow(d >>> 32, s >>> 32, bits));
        }
        mm(t, "PACKSSWB", 0x63, M64, (d, s, imm) -> narrow(d, 16, true) | narrow(s, 16, true) << 32);
        mm(t, "PACKUSWB", 0x67, M64, (d, s, imm) -> narrow(d, 16, false) | narrow(s, 16, false) << 32);
        mm(t, "PACKSSDW", 0x6B, M64, (d, s, imm) -> narrow(d, 32, true) | narrow(s, 32, true) << 32);

        // Compares, arithmetic and logic (64-66, 74-76, D4-FE).
        for (QuadOp q : QUAD_OPS) {
            Lane f = q.q();
            mm(t, q.mnemonic(), q.opcode(), M64, (d, s, imm) -> f.f(d, s));
        }

        // Shifts by an mm/m64 count (the whole 64-bit source is the count) and by imm8 (71-73 /2 /4 /6).
        for (ShiftOp s : SHIFT_OPS) {
            int bits = s.bits(), kind = s.kind();
            mm(t, s.mnemonic(), s.opcode(), M64, (d, src, imm) -> shift(d, bits, kind, src));
            t.add(new Entry(s.mnemonic() + " mm, imm8", MAP_0F, s.immOpcode(), NP, s.immReg(), MODRM | REG_ONLY | ORACLE, Imm.IB,
                    rmOnly((d, src, imm) -> shift(d, bits, kind, imm))));
        }
    }
}

package dev.polyvisor.cpu.exec;

import dev.polyvisor.cpu.Cpu;
import dev.polyvisor.cpu.decode.Decoded;
import dev.polyvisor.cpu.decode.Insn;
import dev.polyvisor.cpu.decode.OpcodeTable;

import static dev.polyvisor.cpu.decode.OpcodeTable.*;

/** Integer data movement and arithmetic (SDM Vol. 1, 7.3.1-7.3.2). */
public final class IntegerOps {
    private IntegerOps() {}

    public static void register(OpcodeTable t) {
        for (int r = 0; r < 8; r++) {
            final int reg = r;
            t.add("MOV r, imm", MAP_1BYTE, 0xB8 + r, ORACLE, Imm.IV, d -> new MovRegImm(reg | ((d.rex & 1) << 3), d.opSize, d.imm));
        }
    }

    /** B8+r: MOV r16/32/64, imm. */
    static final class MovRegImm extends Insn {
        final int reg, size;
        final long imm;
        MovRegImm(int reg, int size, long imm) { this.reg = reg; this.size = size; this.imm = imm; }
        @Override public void exec(Cpu c) { Regs.set(c, reg, size, imm); }
    }

    @SuppressWarnings("unused")
    private static int rexB(Decoded d) { return (d.rex & 1) << 3; }
}

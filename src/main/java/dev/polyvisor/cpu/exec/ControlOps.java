package dev.polyvisor.cpu.exec;

import dev.polyvisor.cpu.Cpu;
import dev.polyvisor.cpu.decode.Insn;
import dev.polyvisor.cpu.decode.OpcodeTable;

import static dev.polyvisor.cpu.decode.OpcodeTable.*;

/** Control transfer: JMP, Jcc, CALL, RET, LOOP (SDM Vol. 1, 7.3.8). */
public final class ControlOps {
    private ControlOps() {}

    public static void register(OpcodeTable t) {
        t.add("JMP rel8", MAP_1BYTE, 0xEB, ENDS | ORACLE, Imm.IB, d -> new JmpRel(d.imm, d.opSize));
        t.add("NOP", MAP_1BYTE, 0x90, ORACLE, Imm.NONE, d -> new Nop());
    }

    static final class JmpRel extends Insn {
        final long rel;
        final long mask;
        JmpRel(long rel, int opSize) { this.rel = rel; this.mask = opSize == 2 ? 0xFFFF : opSize == 4 ? 0xFFFF_FFFFL : -1L; }
        @Override public void exec(Cpu c) { c.rip = (c.rip + rel) & mask; }
    }

    static final class Nop extends Insn {
        @Override public void exec(Cpu c) { }
    }
}

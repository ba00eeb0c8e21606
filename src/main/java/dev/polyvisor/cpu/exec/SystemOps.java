package dev.polyvisor.cpu.exec;

import dev.polyvisor.cpu.Cpu;
import dev.polyvisor.cpu.decode.Insn;
import dev.polyvisor.cpu.decode.OpcodeTable;

import static dev.polyvisor.cpu.decode.OpcodeTable.*;

/** System instructions: HLT, port I/O, descriptor tables, control registers, MSRs (SDM Vol. 2/3). */
public final class SystemOps {
    private SystemOps() {}

    public static void register(OpcodeTable t) {
        t.add("HLT", MAP_1BYTE, 0xF4, ENDS | PRIV, Imm.NONE, d -> new Hlt());
        t.add("OUT imm8, AL", MAP_1BYTE, 0xE6, ENDS, Imm.IB, d -> new OutImm((int) d.imm & 0xFF, 1));
    }

    static final class Hlt extends Insn {
        @Override public void exec(Cpu c) {
            if (c.cpl != 0) throw c.gp0();
            c.halted = true;
        }
    }

    /** OUT imm8, AL/AX/EAX. TODO(system): IOPL / TSS I/O bitmap checks. */
    static final class OutImm extends Insn {
        final int port, size;
        OutImm(int port, int size) { this.port = port; this.size = size; }
        @Override public void exec(Cpu c) { c.platform.portOut(port, size, Regs.get(c, Cpu.RAX, size)); }
    }
}

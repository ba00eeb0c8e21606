package dev.polyvisor.cpu.exec;

import dev.polyvisor.cpu.Cpu;
import dev.polyvisor.cpu.Flags;
import dev.polyvisor.cpu.decode.Ea;
import dev.polyvisor.cpu.decode.Insn;

/**
 * ARPL r/m16, r16 (opcode 63 outside 64-bit mode, where 63 is MOVSXD; SDM Vol. 2, ARPL): raises the RPL
 * (bits 1:0) of the destination selector to the source's. ZF = 1 and the destination is written when it
 * was lower, else ZF = 0 and nothing is written; the other flags are unchanged. Always 16-bit (66 does
 * not change it). #UD in real-address and virtual-8086 mode; not privileged otherwise.
 */
final class Arpl extends Insn {
    final int rm, reg;
    final Ea ea;

    Arpl(int rm, int reg, Ea ea) { this.rm = rm; this.reg = reg; this.ea = ea; }

    @Override public void exec(Cpu c) {
        if ((c.cr0 & Cpu.CR0_PE) == 0 || (c.rflags & Flags.VM) != 0) throw c.ud();
        long dst = Alu.readRm(c, rm, ea, 2);
        int src = (int) Regs.get(c, reg, 2);
        boolean lower = (dst & 3) < (src & 3);
        if (lower) Alu.writeRm(c, rm, ea, 2, (dst & ~3L) | (src & 3));
        Flags.materialize(c);
        c.ccSrc = lower ? c.ccSrc | Flags.ZF : c.ccSrc & ~Flags.ZF;
    }
}

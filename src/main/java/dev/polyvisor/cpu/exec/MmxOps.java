package dev.polyvisor.cpu.exec;

import dev.polyvisor.cpu.Cpu;
import dev.polyvisor.cpu.Exceptions;
import dev.polyvisor.cpu.decode.Insn;
import dev.polyvisor.cpu.decode.OpcodeTable;

import static dev.polyvisor.cpu.decode.OpcodeTable.*;

/**
 * The MMX state instruction the kernel executes even though no MMX arithmetic is emulated: EMMS.
 * Linux 6.1 runs {@code fnclex; emms; fildl} in restore_fpregs_from_fpstate on AMD CPUs
 * (X86_BUG_FXSAVE_LEAK, arch/x86/kernel/fpu/core.c), so the qemu64 model (AuthenticAMD) needs it.
 */
public final class MmxOps {
    private MmxOps() {}

    public static void register(OpcodeTable t) {
        t.addPrefixed("EMMS", MAP_0F, 0x77, NP, ORACLE, Imm.NONE, d -> new Emms());
    }

    /**
     * EMMS (SDM Vol. 2A): tag word = all empty; #UD with CR0.EM, #NM with CR0.TS. Like every MMX
     * instruction it also sets TOP to 0 (SDM Vol. 1, 9.5.1), which the host-CPU oracle confirms.
     */
    static final class Emms extends Insn {
        @Override public void exec(Cpu c) {
            if ((c.cr0 & Cpu.CR0_EM) != 0) throw c.ud();
            if ((c.cr0 & Cpu.CR0_TS) != 0) throw c.fault(Exceptions.NM);
            // A pending unmasked x87 exception is reported first (SDM Vol. 2A EMMS: "#MF If there is a pending
            // FPU exception"), as on the AMD host.
            if ((c.fsw & X87.ES) != 0 && (c.cr0 & Cpu.CR0_NE) != 0) throw c.fault(Exceptions.MF);
            c.ftw = 0xFFFF;
            c.fpuTop = 0;
        }
    }
}

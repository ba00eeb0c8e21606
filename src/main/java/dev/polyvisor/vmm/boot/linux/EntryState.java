package dev.polyvisor.vmm.boot.linux;

import dev.polyvisor.cpu.Cpu;
import java.util.Arrays;

/**
 * The processor state a boot protocol hands to the kernel: operating mode, entry point, the
 * register carrying the boot information (RSI = boot_params for the 64-bit Linux protocol,
 * EBX = hvm_start_info for PVH), control registers and the GDT the loader built. All segments are
 * flat (base 0, limit 4 GiB); interrupts are off.
 */
public record EntryState(Mode mode, long rip, long rsi, long rbx, long rsp, long cr0, long cr3, long cr4, long efer,
                         long gdtBase, int gdtLimit, int codeSelector, int dataSelector) {
    public enum Mode {
        /** Long mode, 64-bit code segment, paging on (boot.rst, "64-bit BOOT PROTOCOL"). */
        LONG_64,
        /** 32-bit protected mode, paging off (xen/interface/hvm/start_info.h, PVH entry). */
        PROTECTED_32
    }

    // Descriptor attribute bits as Cpu.segAttr holds them: type | S<<4 | DPL<<5 | P<<7 | L<<13 | D/B<<14 | G<<15.
    static final int ATTR_CODE64 = 0xA09B, ATTR_CODE32 = 0xC09B, ATTR_DATA = 0xC093, ATTR_TSS32_BUSY = 0x008B;

    /** Puts the vCPU into this state, as a loader does before the first instruction of the kernel. */
    public void apply(Cpu c) {
        Arrays.fill(c.r, 0);
        c.r[Cpu.RSI] = rsi;
        c.r[Cpu.RBX] = rbx;
        c.r[Cpu.RSP] = rsp;
        c.rip = rip;
        c.prevRip = rip;
        c.setRflags(2); // IF, TF, VM, DF clear
        c.cr0 = cr0;
        c.cr3 = cr3;
        c.cr4 = cr4;
        c.efer = efer;
        c.gdtBase = gdtBase;
        c.gdtLimit = gdtLimit;
        flat(c, Cpu.CS, codeSelector, mode == Mode.LONG_64 ? ATTR_CODE64 : ATTR_CODE32);
        for (int s : new int[] {Cpu.ES, Cpu.SS, Cpu.DS, Cpu.FS, Cpu.GS}) flat(c, s, dataSelector, ATTR_DATA);
        // start_info.h: "tr: must be a 32-bit TSS (active) with a base of '0' and a limit of '0x67'".
        c.segSel[Cpu.TR] = 0;
        c.segBase[Cpu.TR] = 0;
        c.segLimit[Cpu.TR] = 0x67;
        c.segAttr[Cpu.TR] = ATTR_TSS32_BUSY;
        c.halted = false;
        c.interruptShadow = false;
        c.updateMode();
        c.mmu.flushAll();
    }

    private static void flat(Cpu c, int seg, int sel, int attr) {
        c.segSel[seg] = sel;
        c.segBase[seg] = 0;
        c.segLimit[seg] = 0xFFFF_FFFFL;
        c.segAttr[seg] = attr;
    }
}

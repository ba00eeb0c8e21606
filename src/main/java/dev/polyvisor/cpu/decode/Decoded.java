package dev.polyvisor.cpu.decode;

import dev.polyvisor.cpu.Cpu;

/**
 * Everything the decoder learned about one instruction, handed to the table entry's factory. Mutable
 * and reused by the decoder; factories copy what they need into the immutable handler they build.
 */
public final class Decoded {
    /** Linear address of the first byte. */
    public long ip;
    public int len;
    public boolean mode64;
    public int map, opcode;
    /** Effective operand size in bytes (1, 2, 4, 8) and address size (2, 4, 8). */
    public int opSize, addrSize;
    /** Operand size ignoring the entry's BYTE flag: for forms that mix sizes (MOVZX, ...). */
    public int fullOpSize;
    /** Segment override (Cpu.ES..GS) or -1. */
    public int segOverride;
    public int rex;
    public boolean rexW, lock, rep, repne, opsizePrefix, addrPrefix;
    /** The last of F2/F3 seen (0 if none): the mandatory-prefix selector. */
    public int lastRepPrefix;
    public boolean hasModrm;
    public int modrm, mod, reg, rm;
    /** Memory operand, when mod != 3. */
    public Ea ea;
    public long imm, imm2;

    void reset() {
        len = 0; map = 0; opcode = 0; opSize = 0; addrSize = 0; fullOpSize = 0; segOverride = -1; rex = 0;
        rexW = lock = rep = repne = opsizePrefix = addrPrefix = false; lastRepPrefix = 0;
        hasModrm = false; modrm = mod = reg = rm = 0; ea = null; imm = imm2 = 0;
    }

    public boolean isMem() { return hasModrm && mod != 3; }

    /**
     * The register number for an 8-bit operand field: 0-15 address the low bytes of r0-r15; without
     * REX, 4-7 mean AH, CH, DH, BH, which are returned as 16-19 (see {@link dev.polyvisor.cpu.exec.Regs}).
     */
    public int byteReg(int n) { return (rex == 0 && n >= 4 && n < 8) ? 16 + (n - 4) : n; }

    /** ModRM.reg as an operand register for the current size (byte registers mapped). */
    public int regOp() { return opSize == 1 ? byteReg(reg) : reg; }

    /** ModRM.rm as a register operand (mod == 3) for the current size. */
    public int rmOp() { return opSize == 1 ? byteReg(rm) : rm; }

    /** The default segment for a memory operand with this base register. */
    static int defaultSeg(boolean mode64, int segOverride, boolean stackBase) {
        // 64-bit mode ignores ES/CS/SS/DS overrides. Whether a non-canonical address is #SS or #GP follows
        // the base register, not the override: measured on the AMD host (the model's vendor), [rbp+8] and
        // ds:[rbp+8] are #SS(0) while ss:[rbx] and fs:[rbp+8] are #GP(0).
        if (mode64 && segOverride < Cpu.FS) return stackBase ? Cpu.SEG_NONE_SS : Cpu.SEG_NONE;
        if (segOverride >= 0) return segOverride;
        return stackBase ? Cpu.SS : Cpu.DS;
    }
}

package dev.polyvisor.cpu.oracle;

import dev.polyvisor.cpu.decode.OpcodeTable.Entry;

import java.util.random.RandomGenerator;
import java.util.regex.Pattern;

/**
 * The MMX forms in the oracle (dev.polyvisor.cpu.exec.Mmx): which entries they are, and their input. MM0-7
 * are the significands of the physical x87 registers R0-R7, so the oracle's x87 state carries them: the
 * harness loads ST(0..7) through FXRSTOR with a random TOP and tags, and compares FSW (TOP), the abridged
 * tag and every non-empty register afterwards, which after an MMX instruction is all eight with TOP 0
 * (SDM Vol. 3A, 12.2). The x87 generator's values are mostly normal numbers (integer bit set); MMX data
 * wants integer lanes, so for these forms most registers get a packed-integer value instead, with a random
 * sign/exponent word (an MMX read must ignore it, an MMX write must set it to all ones).
 */
final class MmxForms {
    private MmxForms() {}

    /** An "mm" operand in the mnemonic (not the "mm" of "xmm"), or EMMS. */
    private static final Pattern MM_OPERAND = Pattern.compile("(^|[^x])\\bmm\\b");

    static boolean covers(Entry e) {
        return MM_OPERAND.matcher(e.mnemonic()).find() || Encoder.key(e).equals("EMMS");
    }

    /**
     * A memory operand's offset in the data page: mostly in the compared window ({@link Encoder#windowTarget});
     * one in eight ends within 16 bytes of the page's end, so that m16/m32/m64/m128 operands either just fit or
     * run into the unmapped page after it: the #PF, its address, and that the faulting instruction leaves the
     * x87/MMX state alone (no TOP/tag transition) are then compared.
     */
    static int eaTarget(RandomGenerator r) {
        return r.nextInt(8) == 0 ? 0x1000 - 1 - r.nextInt(16) : Encoder.windowTarget(r);
    }

    /** Replaces about three in four x87 register values by packed-integer data (edge lanes, random bits). */
    static void input(RandomGenerator r, MachineState s) {
        for (int i = 0; i < 8; i++) {
            if (r.nextInt(4) == 0) continue;
            s.stMant[i] = Inputs.xmmHalf(r, 2 + r.nextInt(2));
            s.stExp[i] = r.nextInt(3) == 0 ? 0xFFFF : r.nextInt(0x10000);
        }
    }
}

package dev.polyvisor.cpu.oracle;

import dev.polyvisor.cpu.Flags;
import dev.polyvisor.cpu.decode.OpcodeTable;
import dev.polyvisor.cpu.exec.Isa;

import java.util.random.RandomGenerator;

/**
 * Flag consumers appended after a form under test, so that the emulator's lazy flags are read the way
 * real code reads them: through {@code Flags.cond} (with its fast paths for SUB/CMP and logic results)
 * rather than only through the materialised RFLAGS at the end of the case. Each one is a SETcc r8,
 * CMOVcc r, r or "Jcc +2; UD2" (taken: falls into the trailer; not taken: #UD at the UD2). The condition
 * never reads a flag the form leaves undefined.
 */
final class FlagConsumer {
    private FlagConsumer() {}

    /** The flags condition code cc reads (SDM Vol. 1, Appendix B). */
    static int reads(int cc) {
        return switch (cc >>> 1) {
            case 0 -> Flags.OF;
            case 1 -> Flags.CF;
            case 2 -> Flags.ZF;
            case 3 -> Flags.CF | Flags.ZF;
            case 4 -> Flags.SF;
            case 5 -> Flags.PF;
            case 6 -> Flags.SF | Flags.OF;
            default -> Flags.ZF | Flags.SF | Flags.OF;
        };
    }

    private static boolean present(int map, int opcode) {
        for (OpcodeTable.Entry e : Isa.table().entries()) if (e.map() == map && e.opcode() == opcode) return true;
        return false;
    }

    private static final boolean SETCC = present(OpcodeTable.MAP_0F, 0x90), CMOVCC = present(OpcodeTable.MAP_0F, 0x40),
            JCC = present(OpcodeTable.MAP_1BYTE, 0x70);

    /** A consumer's bytes and a one-word description, or null when no condition avoids undefined flags. */
    record Consumer(byte[] bytes, String what) {}

    static Consumer pick(RandomGenerator r, int undefinedFlags) {
        int cc = -1;
        for (int tries = 0; tries < 16; tries++) {
            int c = r.nextInt(16);
            if ((reads(c) & undefinedFlags) == 0) { cc = c; break; }
        }
        if (cc < 0) return null;
        int kind = r.nextInt(3);
        String name = String.format("%X", cc);
        if (kind == 0 && SETCC) {
            int rm = r.nextInt(16);
            boolean rex = rm >= 8 || r.nextBoolean();
            byte[] b = rex ? new byte[] {(byte) (0x40 | rm >> 3), 0x0F, (byte) (0x90 + cc), (byte) (0xC0 | rm & 7)}
                    : new byte[] {0x0F, (byte) (0x90 + cc), (byte) (0xC0 | rm & 7)};
            return new Consumer(b, "SETcc " + name);
        }
        if (kind == 1 && CMOVCC) {
            int reg = r.nextInt(16), rm = r.nextInt(16);
            boolean w = r.nextBoolean();
            byte[] b = {(byte) (0x40 | (w ? 8 : 0) | (reg >> 3) << 2 | rm >> 3), 0x0F, (byte) (0x40 + cc),
                    (byte) (0xC0 | (reg & 7) << 3 | rm & 7)};
            return new Consumer(b, "CMOVcc " + name);
        }
        if (JCC) return new Consumer(new byte[] {(byte) (0x70 + cc), 0x02, 0x0F, 0x0B}, "Jcc " + name + " +2; UD2");
        return null;
    }
}

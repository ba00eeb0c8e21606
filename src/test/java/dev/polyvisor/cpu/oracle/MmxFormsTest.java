package dev.polyvisor.cpu.oracle;

import dev.polyvisor.cpu.decode.OpcodeTable;
import dev.polyvisor.cpu.decode.OpcodeTable.Entry;
import dev.polyvisor.cpu.exec.Isa;
import org.junit.jupiter.api.Test;

import java.util.List;
import java.util.SplittableRandom;

import static org.junit.jupiter.api.Assertions.*;

/** Which opcode-table forms get MMX inputs and crossing memory operands in the oracle, and what those inputs are. */
class MmxFormsTest {
    static Entry form(int map, int opcode, int prefix, int reg) {
        return Isa.table().entries().stream()
                .filter(e -> e.map() == map && e.opcode() == opcode && e.prefix() == prefix && e.reg() == reg)
                .findFirst().orElseThrow();
    }

    @Test void mmxOperandFormsAreCoveredAndXmmOnlyFormsAreNot() {
        int np = OpcodeTable.NP, p66 = OpcodeTable.P66, m = OpcodeTable.MAP_0F;
        for (Entry e : List.of(form(m, 0x77, np, -1), form(m, 0xFC, np, -1), form(m, 0x6E, np, -1), form(m, 0x71, np, 2),
                form(m, 0xD6, OpcodeTable.PF3, -1), form(m, 0xD6, OpcodeTable.PF2, -1), form(m, 0x2A, p66, -1), form(m, 0x2D, np, -1)))
            assertTrue(MmxForms.covers(e), e.mnemonic());
        for (Entry e : List.of(form(m, 0xFC, p66, -1), form(m, 0x6E, p66, -1), form(m, 0x71, p66, 2), form(m, 0xD6, p66, -1),
                form(m, 0x2A, OpcodeTable.PF3, -1), form(m, 0x10, np, -1)))
            assertFalse(MmxForms.covers(e), e.mnemonic());
    }

    @Test void everyNoPrefixFormInTheMmxOpcodeRangesIsCovered() {
        // Without a prefix, 0F 60-7F and D0-FF hold only MMX forms (SDM Vol. 2D, Appendix A, Table A-3).
        for (Entry e : Isa.table().entries()) {
            if (e.map() != OpcodeTable.MAP_0F || e.prefix() != OpcodeTable.NP) continue;
            int op = e.opcode();
            if (op >= 0x60 && op <= 0x7F || op >= 0xD0) assertTrue(MmxForms.covers(e), e.mnemonic());
        }
    }

    @Test void inputsAreMostlyPackedIntegersAndOperandsSometimesReachThePageEnd() {
        SplittableRandom r = new SplittableRandom(7);
        int integerLike = 0, crossing = 0;
        for (int n = 0; n < 1000; n++) {
            MachineState s = new MachineState();
            Inputs.x87(r, s);
            MmxForms.input(r, s);
            for (int i = 0; i < 8; i++) if (s.stMant[i] >= 0) integerLike++; // the x87 generator's values are almost all normal
            int t = MmxForms.eaTarget(r);
            assertTrue(t >= Encoder.EA_LO && t < 0x1000, "offset " + t + " stays in the data page");
            if (t > 0x1000 - 16) crossing++;
        }
        assertTrue(integerLike > 2000, "integer bit clear in " + integerLike + " of 8000 registers");
        assertTrue(crossing > 60 && crossing < 200, crossing + " of 1000 operands near the page end");
    }
}

package dev.polyvisor.cpu.exec;

import dev.polyvisor.cpu.Cpu;
import dev.polyvisor.cpu.LongModeFixture;
import org.junit.jupiter.api.AfterEach;
import org.junit.jupiter.api.Test;

import static dev.polyvisor.cpu.Flags.*;
import static org.junit.jupiter.api.Assertions.*;

/** Opcode 63 outside 64-bit mode is ARPL (it was #UD until the oracle ran 63 in compatibility mode). */
class ArplTest {
    final LongModeFixture f = new LongModeFixture();
    final Cpu c = f.cpu;

    @AfterEach void close() { f.close(); }

    @Test void arplRaisesALowerRplAndSetsZf() {
        LongModeFixture.enterProtected32(c);
        f.run("mov eax, 0x123402b0\nmov ebx, 0x23\nstc\narpl ax, bx");
        assertEquals(0x123402B3L, c.r[Cpu.RAX] & 0xFFFF_FFFFL); // only the low word's RPL changes
        assertEquals(ZF | CF, f.flags() & (ZF | CF));         // CF untouched
    }

    @Test void arplLeavesAnEqualOrHigherRplAndClearsZf() {
        LongModeFixture.enterProtected32(c);
        f.run("mov eax, 0x2b\nmov ebx, 0x21\ncmp eax, eax\narpl ax, bx");
        assertEquals(0x2B, c.r[Cpu.RAX] & 0xFFFF_FFFFL);
        assertEquals(0, f.flags() & ZF);
    }

    @Test void opcode63IsStillMovsxdIn64BitMode() {
        f.run("mov ebx, 0x80000000\nmovsxd rax, ebx");
        assertEquals(0xFFFF_FFFF_8000_0000L, c.r[Cpu.RAX]);
    }
}

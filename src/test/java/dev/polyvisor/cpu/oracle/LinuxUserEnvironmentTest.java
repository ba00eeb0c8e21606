package dev.polyvisor.cpu.oracle;

import dev.polyvisor.cpu.Cpu;
import dev.polyvisor.cpu.Exceptions;
import org.junit.jupiter.api.Test;

import static org.junit.jupiter.api.Assertions.*;

/** The emulator side of the oracle reports INT n, INT3 and port I/O at CPL 3 as a Linux process sees them. */
class LinuxUserEnvironmentTest {
    static final long START = HostHarness.CODE_ADDR + HostHarness.CODE_OFF;

    private static MachineState run(EmulatedHost emu, int... code) {
        byte[] b = new byte[code.length];
        for (int i = 0; i < code.length; i++) b[i] = (byte) code[i];
        MachineState in = new MachineState();
        in.gpr[Cpu.RSP] = HostHarness.DATA_ADDR + 0x900;
        in.rflags = 2 | 0x801; // CF, OF
        MachineState out = emu.run(b, in);
        assertNull(emu.crash, () -> "emulator threw " + emu.crash);
        return out;
    }

    @Test
    void intToADpl0GateIsGeneralProtectionWithTheIdtErrorCodeAtTheInstruction() {
        try (EmulatedHost emu = new EmulatedHost()) {
            MachineState out = run(emu, 0xCD, 0x0E);
            assertEquals(Exceptions.GP, out.trap);
            assertEquals(0x0E * 8 + 2, out.err);
            assertEquals(START, out.rip);
            assertEquals(HostHarness.DATA_ADDR + 0x900, out.gpr[Cpu.RSP], "the user RSP from the frame");
            assertEquals(0x801, out.rflags & 0x801, "the user flags from the frame");
            assertEquals(3, emu.cpu.cpl, "back in user mode");
        }
    }

    @Test
    void int3AndInt4GoThroughTheirDpl3GatesAsTrapsWithRipAfter() {
        try (EmulatedHost emu = new EmulatedHost()) {
            MachineState bp = run(emu, 0xCC);
            assertEquals(Exceptions.BP, bp.trap);
            assertEquals(START + 1, bp.rip);
            MachineState of = run(emu, 0xCD, 0x04);
            assertEquals(Exceptions.OF, of.trap);
            assertEquals(START + 2, of.rip);
            assertEquals(-1, of.err, "a software interrupt pushes no error code");
        }
    }

    @Test
    void portIoAtCpl3WithoutAnIoBitmapIsGeneralProtection() {
        try (EmulatedHost emu = new EmulatedHost()) {
            MachineState out = run(emu, 0xE4, 0x80);
            assertEquals(Exceptions.GP, out.trap);
            assertEquals(0, out.err);
            assertEquals(START, out.rip);
        }
    }

    @Test
    void selectorsAreThoseOfA64BitLinuxProcessAgainAfterAMovDs() {
        try (EmulatedHost emu = new EmulatedHost()) {
            Cpu c = emu.cpu;
            // mov eax, 0x23; mov ds, eax: a readable code segment of DPL 3 is a valid data-segment load.
            run(emu, 0xB8, 0x23, 0, 0, 0, 0x8E, 0xD8);
            assertEquals(0x23, c.segSel[Cpu.DS]);
            run(emu, 0x90);
            assertEquals(0, c.segSel[Cpu.DS]);
            assertEquals(0, c.segSel[Cpu.FS]);
            assertEquals(0x2B, c.segSel[Cpu.SS]);
            assertEquals(0x33, c.segSel[Cpu.CS]);
        }
    }
}
